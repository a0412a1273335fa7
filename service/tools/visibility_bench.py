"""``make bench-visibility``: how long a write takes to show in every worker's reads
under ``serve --workers N`` (issue 21: within 100 ms at p99).

One server of ``--workers`` processes sharing the port on a fresh copy of the demo
database, neither it nor this driver pinned. ``readers`` client connections are opened
(each a channel of its own: the kernel hands each worker connections, not calls), so
that every worker serves some of them. Then, ``writes`` times, a rating of a product no
one has rated yet is sent on one more connection (so one worker commits them all), at
random intervals of up to 0.1 s (writes in step with the feed's polls would all be read
soon after a poll), and from its acknowledgement every reader asks GetProductStats for
the product every millisecond until it is known: readers served by the worker that
committed it see it at once, the others once their worker's change feed has read it
(``feed_poll_seconds``). A read that fails is retried until the write is given up on.
The figure is the delay over every (write, reader) pair, and over the pairs that had to
wait for a feed; once quiet, once beside Rank load over 8 connections. Writes
bench/results/visibility.{md,json}.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from reviewrank.service.cli.loadgen import LoadSpec, run_load
from reviewrank.service.tools.bench_servers import serving
from reviewrank.service.tools.benchsuite import machine_facts, prepare
from reviewrank.service.tools.runs import write_tables
from reviewrank.service.tools.templates import product_ids, rank_templates
from reviewrank.v1 import feedback_pb2, feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
RANK = "reviewrank.v1.RankingService/Rank"
POLL_SECONDS = 0.001
GIVE_UP_SECONDS = 5.0


def _channel(target: str) -> grpc.Channel:
    # A subchannel of its own: channels to one target otherwise share a connection.
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


def _seen_after(stub: Any, product: str, acknowledged: float) -> float:
    """Milliseconds from ``acknowledged`` until ``stub`` knows ``product``, negative when
    its first read already did (its worker had no feed to wait for)."""
    request = ranking_pb2.GetProductStatsRequest(product_ids=[product])
    first = True
    while True:
        try:
            known = stub.GetProductStats(request, timeout=GIVE_UP_SECONDS).stats[0].known
        except grpc.RpcError:  # not seen, this time
            known = False
        now = time.perf_counter()
        if known:
            return (now - acknowledged) * (-1000 if first else 1000)
        if now - acknowledged > GIVE_UP_SECONDS:
            return float("inf")
        first = False
        time.sleep(POLL_SECONDS)


def measure_delays(target: str, readers: int, writes: int, tag: str) -> np.ndarray:
    """The delays (ms), one row per write, one column per reader; negative for a reader
    whose first read saw the write."""
    channels = [_channel(target) for _ in range(readers + 1)]
    try:
        writer = feedback_pb2_grpc.FeedbackServiceStub(channels[0])
        stubs = [ranking_pb2_grpc.RankingServiceStub(c) for c in channels[1:]]
        for stub in stubs:  # connected before measuring
            stub.GetProductStats(
                ranking_pb2.GetProductStatsRequest(product_ids=["warm-up"]), timeout=10
            )
        delays = np.zeros((writes, readers))
        pauses = random.Random(writes).random
        with ThreadPoolExecutor(readers) as pool:
            for n in range(writes):
                product = f"visibility-{tag}-{n}-{time.monotonic_ns()}"
                writer.SubmitRating(
                    feedback_pb2.SubmitRatingRequest(
                        event_id=product, product_id=product, user_id="visibility", stars=4
                    ),
                    timeout=10,
                )
                acknowledged = time.perf_counter()
                seen = functools.partial(_seen_after, product=product, acknowledged=acknowledged)
                delays[n] = list(pool.map(seen, stubs))
                time.sleep(0.1 * pauses())
        return delays
    finally:
        for channel in channels:
            channel.close()


@contextmanager
def _rank_load(
    target: str, ids: list[str], rps: float, seconds: float
) -> Iterator[dict[str, float]]:
    """Rank of 100 candidates at ``rps`` over 8 connections meanwhile; yields what the
    load reached (filled in once it ends)."""
    spec = LoadSpec(
        target, RANK, tuple(rank_templates(ids, 100)), concurrency=16, connections=8,
        duration=seconds, rps=rps,
    )  # fmt: skip
    reached: dict[str, float] = {}
    failed: list[BaseException] = []

    def load() -> None:
        try:
            report = run_load(spec)
        except BaseException as exc:  # raised again below, on the measuring thread
            failed.append(exc)
            return
        reached.update(rps=report.rps, errors=sum(report.errors.values()))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    time.sleep(2.0)  # the load driver's processes start
    try:
        yield reached
    finally:
        thread.join(seconds + 30)
    if failed:
        raise RuntimeError(f"the Rank load alongside failed: {failed[0]!r}") from failed[0]


def summary(signed: np.ndarray) -> dict[str, Any]:
    flat = np.abs(signed.ravel())
    waited = flat[signed.ravel() > 0]

    def percentiles(values: np.ndarray) -> dict[str, float]:
        if not values.size:
            return {}
        # A write never seen counts as the time given up after, as a timeout would.
        values = np.minimum(values, GIVE_UP_SECONDS * 1000)
        found = {p: float(np.percentile(values, q)) for p, q in (("p50", 50), ("p99", 99))}
        return found | {"max": float(values.max())}

    return {
        "pairs": int(flat.size),
        "pairs_waiting_for_a_feed": int(waited.size),
        "never_seen": int(np.isinf(flat).sum()),
        "all_ms": percentiles(flat),
        "waiting_ms": percentiles(waited),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    database = prepare(workdir, [])["real"]
    ids = product_ids(database)
    rows: dict[str, Any] = {}
    env = {"REVIEWRANK_WORKERS": str(args.workers)}
    with serving(database, env, pin=False) as server:
        server.wait_listening(args.workers)
        quiet = measure_delays(server.target, args.readers, args.writes, "quiet")
        rows["quiet"] = summary(quiet)
        print("quiet", json.dumps(rows["quiet"]), flush=True)
        seconds = args.writes * 0.15 + 10
        with _rank_load(server.target, ids, args.rank_rps, seconds) as reached:
            loaded = measure_delays(server.target, args.readers, args.writes, "loaded")
        name = f"beside Rank of 100 at {reached.get('rps', 0):,.0f}/s"
        rows[name] = summary(loaded) | {"rank_load": reached}
        print(name, json.dumps(rows[name]), flush=True)
    return rows


def write_results(rows: dict[str, Any], args: argparse.Namespace, out: Path) -> None:
    facts = machine_facts() | {"pinning": "none: server and driver share every CPU"}
    lines = [
        "# Writes seen by every worker",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {facts['machine']}:"
        f" `serve --workers {args.workers}` (default feed poll, 0.05 s) on the demo database,"
        f" unpinned; {args.writes} ratings of new products, each read by {args.readers}"
        " connections every millisecond from its acknowledgement until known"
        " (service/tools/visibility_bench.py). Waiting: the pairs whose reader's worker had"
        " to read the write from its change feed (the first read did not see it). Target:"
        " p99 at most 100 ms.",
        "",
        "| scenario | pairs | waiting | never seen | p50 ms | p99 ms | max ms"
        " | waiting p50 ms | waiting p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        every, waiting = row["all_ms"], row["waiting_ms"]
        lines.append(
            f"| {name} | {row['pairs']} | {row['pairs_waiting_for_a_feed']} "
            f"| {row['never_seen']} | {every['p50']:.1f} | {every['p99']:.1f} "
            f"| {every['max']:.1f} | {waiting.get('p50', 0):.1f} | {waiting.get('p99', 0):.1f} |"
        )
    write_tables(out, "visibility", lines, {"facts": facts, "args": vars(args), "rows": rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reviewrank.service.tools.visibility_bench", description=__doc__
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--readers", type=int, default=16, help="reading connections")
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--rank-rps", type=float, default=400.0, help="Rank load alongside")
    parser.add_argument("--workdir", default=str(ROOT / ".bench-data"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    if args.workers < 2 or args.readers < 1 or args.writes < 1 or args.rank_rps <= 0:
        parser.error(
            "needs --workers of 2 or more, at least one reader and one write, and a"
            " --rank-rps above 0"
        )
    rows = run(args)
    write_results(rows, args, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
