"""``reviewrank status``: the server's state at a glance, from AdminService.GetStatus.

It sends the admin token (--token, else REVIEWRANK_ADMIN_TOKEN or _FILE), as the
``reviewrank admin`` commands do.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from reviewrank.service.cli.common import admin_call, settings_from, when
from reviewrank.service.cli.tables import render
from reviewrank.v1 import admin_pb2


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def _service(name: str) -> str:
    return name.rpartition(".")[2] if name else "server"


def summary(status: Any, target: str) -> str:
    """The readable summary of a GetStatusResponse."""
    health = ", ".join(f"{_service(h.service)} {h.status}" for h in status.health) or "-"
    events = status.events_since_start
    outcomes = ", ".join(
        f"{events.get(name, 0):,} {name}" for name in ("applied", "duplicate", "superseded")
    )
    lines = [
        f"reviewrank {status.version} at {target}",
        f"up          {_duration(status.uptime_seconds)} (since {when(status.started_at)})",
        f"health      {health}",
        "storage     "
        + ("ok: writes commit" if status.storage_ok else "FAILING: writes answer UNAVAILABLE"),
        f"products    {status.products:,}",
        f"sequence    {status.seq:,} (change feed lag {status.change_feed_lag:,})",
        f"events      since start: {outcomes}; {status.erasures_since_start:,} erasures",
        f"writes      since start: {status.transactions_since_start:,} transactions committed, "
        f"{status.failed_transactions_since_start:,} failed",
        f"queue       {status.queue_depth:,} waiting of {status.queue_capacity:,}",
        f"weights     version {status.weights_version}, default profile {status.default_profile}",
        "",
        render(
            (
                "profile",
                "prior mean C",
                "strength m",
                "source",
                "likes prior",
                "shares prior",
                "sentiment prior",
            ),
            [
                (
                    p.profile,
                    p.mean,
                    p.strength,
                    p.source,
                    _beta(p.likes_alpha, p.likes_beta),
                    _gamma(p.shares_shape, p.shares_rate_days),
                    _sentiment(p.sentiment_mean, p.sentiment_strength),
                )
                for p in status.priors
            ],
        ),
    ]
    return "\n".join(lines)


def _gamma(shape: float, rate_days: float) -> str:
    return f"Gamma({shape:.3g}, {rate_days:.3g} d)" if shape > 0 and rate_days > 0 else "-"


def _sentiment(mean: float, strength: float) -> str:
    return f"C={mean:+.3f} m={strength:.3g}" if strength > 0 else "-"


def _beta(alpha: float, beta: float) -> str:
    return f"Beta({alpha:.3g}, {beta:.3g})" if alpha > 0 and beta > 0 else "-"


def cmd_status(args: argparse.Namespace) -> int:
    response = admin_call(args, "GetStatus", admin_pb2.GetStatusRequest())
    if isinstance(response, int):
        return response
    print(summary(response, args.server or settings_from(args).address))
    return 0


def register(commands: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    status = commands.add_parser(
        "status", help="the server's state at a glance (needs the admin token)"
    )
    client_options(status)
    status.set_defaults(handler=cmd_status)
