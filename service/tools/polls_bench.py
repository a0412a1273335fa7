"""``make bench-polls``: how long a poll vote takes to move the poll strengths (issue 22),
while votes trickle in over many votes in force.

The strengths are refitted in the background after votes (service/app/poll_fitter.py),
so a vote moves them once a fit that read it is put in force. For each scenario: a
server (pinned as the other benches) on a fresh copy of the demo database is sent
``--votes`` poll votes in batches of 1,000, then, beside a trickle of 10 votes every
0.1 s on those polls, ``--probes`` times a probe: one vote between two products no vote
has shown (their strength is the prior's 1.0 until a fit reads a vote on them), timed
from its acknowledgement until GetProductStats gives the chosen one a strength other
than 1.0. Scenarios: the votes answer ``--polls`` polls, each shown alike to its voters;
or each vote shows its own products. Writes bench/results/polls.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from reviewrank.service.tools.bench_servers import serving
from reviewrank.service.tools.benchsuite import machine_facts, prepare
from reviewrank.service.tools.runs import write_tables
from reviewrank.service.tools.templates import product_ids
from reviewrank.v1 import feedback_pb2, feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
BATCH = 1_000
TRICKLE = 10  # votes every TRICKLE_SECONDS
TRICKLE_SECONDS = 0.1
POLL_SECONDS = 0.005  # between reads of a probe's strength
GIVE_UP_SECONDS = 60.0
PROBE_PRODUCTS = 2  # a probe's products

Ballot = tuple[list[str], str]  # products shown, the one chosen


def ballots(products: list[str], polls: int | None, seed: int) -> Callable[[], Ballot]:
    """Votes of 2-4 of ``products``: on one of ``polls`` sets drawn once, each shown in
    its own order, or (None) on products of their own."""
    rng = random.Random(seed)
    sets = [rng.sample(products, rng.randint(2, 4)) for _ in range(polls or 0)]

    def draw() -> Ballot:
        shown = list(rng.choice(sets)) if sets else rng.sample(products, rng.randint(2, 4))
        rng.shuffle(shown)
        return shown, rng.choice(shown)

    return draw


def _events(draw: Callable[[], Ballot], tag: str, start: int, count: int) -> list[Any]:
    events = []
    for n in range(start, start + count):
        shown, chosen = draw()
        vote = feedback_pb2.SubmitPollVoteRequest(
            event_id=f"{tag}-{n}", poll_id=f"{tag}-poll-{n}", user_id=f"{tag}-user-{n}",
            shown=shown, chosen=chosen,
        )  # fmt: skip
        events.append(feedback_pb2.FeedbackEvent(poll_vote=vote))
    return events


def _strength(stub: Any, product: str) -> float:
    request = ranking_pb2.GetProductStatsRequest(product_ids=[product])
    return float(stub.GetProductStats(request, timeout=10).stats[0].poll_strength)


def probe_lag(feedback: Any, ranking: Any, products: list[str], tag: str) -> float:
    """Seconds from the acknowledgement of one vote between ``products`` (no vote showed
    them yet) until the first one's strength is no longer the prior's 1.0."""
    if _strength(ranking, products[0]) != 1.0:
        raise RuntimeError(f"probe product {products[0]} has a strength already")
    vote = feedback_pb2.SubmitPollVoteRequest(
        event_id=f"{tag}-probe", poll_id=f"{tag}-probe", user_id=f"{tag}-prober",
        shown=products, chosen=products[0],
    )  # fmt: skip
    feedback.SubmitPollVote(vote, timeout=10)
    acknowledged = time.perf_counter()
    while _strength(ranking, products[0]) == 1.0:
        if time.perf_counter() - acknowledged > GIVE_UP_SECONDS:
            return float("inf")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - acknowledged


def _trickle(target: str, draw: Callable[[], Ballot], stop: threading.Event) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
        sent = 0
        while not stop.wait(TRICKLE_SECONDS):
            batch = feedback_pb2.SubmitBatchRequest(events=_events(draw, "trickle", sent, TRICKLE))
            stub.SubmitBatch(batch, timeout=10)
            sent += TRICKLE


def scenario(
    database: Path, votes: int, polls: int | None, probes: int, seed: int, python: str | None = None
) -> dict[str, Any]:
    """The probes' lags (s) in one scenario, with how long the votes took to send."""
    ids = product_ids(database)
    random.Random(seed).shuffle(ids)
    probe_ids, voted = ids[: probes * PROBE_PRODUCTS], ids[probes * PROBE_PRODUCTS :]
    draw = ballots(voted, polls, seed)
    served = serving(database, python=python)
    with served as server, grpc.insecure_channel(server.target) as channel:
        feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)
        ranking = ranking_pb2_grpc.RankingServiceStub(channel)
        started = time.perf_counter()
        for start in range(0, votes, BATCH):
            events = _events(draw, "seed", start, min(BATCH, votes - start))
            feedback.SubmitBatch(feedback_pb2.SubmitBatchRequest(events=events), timeout=60)
        sent = time.perf_counter() - started
        probe_lag(feedback, ranking, probe_ids[:PROBE_PRODUCTS], "settle")  # caught up
        stop = threading.Event()
        trickle = threading.Thread(target=_trickle, args=(server.target, draw, stop))
        trickle.start()
        try:
            lags = [
                probe_lag(feedback, ranking, probe_ids[k : k + PROBE_PRODUCTS], f"probe{k}")
                for k in range(PROBE_PRODUCTS, probes * PROBE_PRODUCTS, PROBE_PRODUCTS)
            ]
        finally:
            stop.set()
            trickle.join()
    found = np.minimum(np.array(lags), GIVE_UP_SECONDS)
    return {
        "votes": votes,
        "polls": polls,
        "seconds_to_send": round(sent, 2),
        "probes": len(lags),
        "never_seen": int(np.isinf(lags).sum()),
        "lag_s": {
            "p50": float(np.percentile(found, 50)),
            "p90": float(np.percentile(found, 90)),
            "max": float(found.max()),
        },
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, Any] = {}
    for name, polls in (
        (f"{args.votes:,} votes over {args.polls:,} polls", args.polls),
        (f"{args.votes:,} votes, each on products of its own", None),
    ):
        database = prepare(workdir, [])["real"]  # a fresh copy for each
        rows[name] = scenario(database, args.votes, polls, args.probes, args.seed, args.python)
        print(name, json.dumps(rows[name]), flush=True)
    return rows


def write_results(rows: dict[str, Any], args: argparse.Namespace, out: Path) -> None:
    facts = machine_facts()
    lines = [
        "# Poll votes moving the poll strengths",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {facts['machine']},"
        f" {facts['pinning']}: each scenario's votes sent in batches of {BATCH:,} to a fresh"
        f" copy of the demo database, then, beside {TRICKLE} votes every {TRICKLE_SECONDS} s,"
        f" {args.probes - 1} probes, each a vote between two products no vote had shown,"
        " timed from its acknowledgement until the chosen one's strength moved off the"
        " prior's 1.0 (service/tools/polls_bench.py).",
        "",
        "| scenario | s to send | probes | never seen | lag p50 s | lag p90 s | lag max s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lag = row["lag_s"]
        lines.append(
            f"| {name} | {row['seconds_to_send']:.1f} | {row['probes']} | {row['never_seen']}"
            f" | {lag['p50']:.2f} | {lag['p90']:.2f} | {lag['max']:.2f} |"
        )
    write_tables(out, "polls", lines, {"facts": facts, "args": vars(args), "rows": rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reviewrank.service.tools.polls_bench", description=__doc__
    )
    parser.add_argument("--votes", type=int, default=100_000, help="poll votes in force")
    parser.add_argument("--polls", type=int, default=3_000, help="polls of the first scenario")
    parser.add_argument("--probes", type=int, default=21, help="the first settles the fits")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--python", help="the interpreter to serve with (another checkout's, for before/after)"
    )
    parser.add_argument("--workdir", default=str(ROOT / ".bench-data"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    if args.votes < 1 or args.polls < 1 or args.probes < 2:
        parser.error("needs a vote, a poll and two probes at least")
    rows = run(args)
    write_results(rows, args, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
