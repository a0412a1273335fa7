"""``reviewrank admin bursts|decide|decisions``: the manipulation defences' findings,
and an admin's decisions on them, from the command line.

    reviewrank admin bursts [--limit N]
    reviewrank admin decide confirm|dismiss BURST --actor WHO [--reason WHY]
    reviewrank admin decisions

A burst is named as ``bursts`` prints it: PRODUCT:FIRST-LAST, its first and last vote's
times in microseconds since 1970.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from reviewrank.service.cli.common import admin_call, count, when
from reviewrank.service.cli.tables import render
from reviewrank.v1 import admin_pb2

_DECISIONS = {
    "confirm": admin_pb2.BURST_DECISION_CONFIRM,
    "dismiss": admin_pb2.BURST_DECISION_DISMISS,
}


def burst_name(product_id: str, start: Timestamp, end: Timestamp) -> str:
    return f"{product_id}:{start.ToMicroseconds()}-{end.ToMicroseconds()}"


def parse_burst(text: str) -> tuple[str, Timestamp, Timestamp]:
    """PRODUCT:FIRST-LAST (as ``bursts`` prints it), for argparse."""
    product, _, times = text.rpartition(":")
    first, _, last = times.partition("-")
    if not product or not first.isdigit() or not last.isdigit():
        raise argparse.ArgumentTypeError(
            f"not a burst as `reviewrank admin bursts` names it (PRODUCT:FIRST-LAST, times "
            f"in microseconds since 1970): {text!r}"
        )
    if int(last) < int(first):
        raise argparse.ArgumentTypeError(f"LAST is before FIRST in {text!r}")
    start, end = Timestamp(), Timestamp()
    try:
        start.FromMicroseconds(int(first))
        end.FromMicroseconds(int(last))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"times out of range in {text!r}") from None
    return product, start, end


def cmd_bursts(args: argparse.Namespace) -> int:
    response = admin_call(args, "ListBursts", admin_pb2.ListBurstsRequest(limit=args.limit))
    if isinstance(response, int):
        return response
    if not response.enabled:
        print("the server weighs no votes (integrity_seconds = 0)")
        return 0
    damped = ", ".join(f"{n} {kind}s" for kind, n in sorted(response.damped_votes.items()))
    print(
        f"{response.votes_weighed:,} votes weighed at {when(response.weighed_at)}; "
        f"damped: {damped or 'none'}"
    )
    rows = [
        (
            burst_name(b.product_id, b.start, b.end),
            when(b.start),
            when(b.end),
            b.votes,
            f"{b.expected:g}",
            f"{b.damping:.2f}",
            "dismissed" if b.dismissed else "",
        )
        for b in response.bursts
    ]
    headers = ("burst", "first vote", "last vote", "votes", "expected", "weight", "decision")
    print(render(headers, rows) if rows else "no burst damps now")
    if response.total_bursts > len(rows):
        print(f"… {response.total_bursts - len(rows)} more (--limit)")
    voters = [(v.user_id, v.votes, f"{v.least_weight:.2f}") for v in response.low_weight_voters]
    if voters:
        print(render(("low-weight voter", "votes", "least weight"), voters))
    if response.total_low_weight_voters > len(voters):
        print(f"… {response.total_low_weight_voters - len(voters)} more voters (--limit)")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    product, start, end = args.burst
    request = admin_pb2.DecideBurstRequest(
        product_id=product,
        start=start,
        end=end,
        decision=_DECISIONS[args.decision],
        actor=args.actor,
        reason=args.reason,
    )
    response = admin_call(args, "DecideBurst", request)
    if isinstance(response, int):
        return response
    d = response.decision
    done = "in force" if response.applied else "recorded; in force at the next weighing"
    print(f"{args.decision}ed {burst_name(d.product_id, d.start, d.end)}: {done}")
    return 0


def cmd_decisions(args: argparse.Namespace) -> int:
    response = admin_call(args, "ListBurstDecisions", admin_pb2.ListBurstDecisionsRequest())
    if isinstance(response, int):
        return response
    kinds = {v: k for k, v in _DECISIONS.items()}
    rows = [
        (
            when(d.decided_at),
            kinds.get(d.decision, "?"),
            burst_name(d.product_id, d.start, d.end),
            d.actor,
            d.reason,
        )
        for d in response.decisions
    ]
    print(render(("decided", "decision", "burst", "actor", "reason"), rows) if rows else "none")
    return 0


def register(sub: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Adds bursts, decide and decisions to ``reviewrank admin``."""
    bursts = sub.add_parser(
        "bursts",
        help="bursts of votes damped now, and low-weight voters",
        description="The bursts of votes the manipulation defences damp now: each named "
        "PRODUCT:FIRST-LAST (its first and last vote, microseconds since 1970), as `decide` "
        "takes it; its votes; `expected`, the most votes the product's own rate brings in "
        "one of the burst's windows but rarely; `weight`, the least weight of its votes (0: "
        "they count as none); `dismissed` when an admin kept it damped. Then the voters "
        "with a vote weighing under 0.5 (ids only).",
    )
    bursts.add_argument(
        "--limit", type=count, default=20, help="most of each to show (20; 0: 100, at most 1000)"
    )
    client_options(bursts)
    bursts.set_defaults(handler=cmd_bursts)

    decide = sub.add_parser(
        "decide",
        help="confirm (count in full) or dismiss (keep damped)",
        description="Records an admin's decision on a burst `bursts` lists. confirm: its "
        "votes count in full, and it leaves the list (final: it cannot be dismissed after). "
        "dismiss: its votes stay damped and it never ages out (it can still be confirmed).",
    )
    decide.add_argument(
        "decision", choices=sorted(_DECISIONS), help="confirm: count in full; dismiss: keep damped"
    )
    decide.add_argument("burst", type=parse_burst, help="PRODUCT:FIRST-LAST, as bursts names it")
    decide.add_argument("--actor", required=True, help="who decides (kept with the decision)")
    decide.add_argument("--reason", default="", help="why (kept with the decision)")
    client_options(decide)
    decide.set_defaults(handler=cmd_decide)

    decisions = sub.add_parser("decisions", help="every decision on a burst, newest first")
    client_options(decisions)
    decisions.set_defaults(handler=cmd_decisions)
