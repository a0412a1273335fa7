"""``make bench``: the benchmark suite, measured in one run, side by side.

Every server runs as a real ``reviewrank serve`` subprocess pinned to CPU 0; the load
driver (service/cli/loadgen.py) runs in client processes pinned to CPU 1 (on a machine
with one CPU nothing is pinned). Throughput and server CPU per request (from
/proc/<pid>/stat) are reported as ratios to BenchService.Echo, which decodes and
encodes a Rank-shaped message of the same size: the ceiling of gRPC in Python on this
machine, measured in the same run in two server modes (the threaded server Rank runs
on, with the same options and interceptors; a bare grpc.aio server), the better one
being the ceiling. Echo and Rank are also measured with no interceptor at all.

Writes bench/results/results.md and results.json; then the abuse scenarios
(service/tools/abuse_bench.py: normal Rank with each attack alongside) write abuse.md and
abuse.json beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reviewrank.service.cli.dataset import read_reviews
from reviewrank.service.cli.loadgen import LoadReport, LoadSpec, run_load
from reviewrank.service.tools.bench_servers import AioEcho, Server, serving
from reviewrank.service.tools.runs import CLIENT_CPUS, SERVER_CPUS, fresh_copy
from reviewrank.service.tools.templates import (
    batch_templates,
    like_templates,
    product_ids,
    rank_templates,
    rating_templates,
    share_templates,
    top_templates,
)

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


@dataclass
class Row:
    scenario: str
    catalogue: str
    report: LoadReport
    server_cpu_us: float  # server CPU per request, microseconds
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suite:
    duration: float
    warmup: float
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def measure(
        self,
        server: Server,
        scenario: str,
        catalogue: str,
        method: str,
        templates: list[str],
        concurrency: int = 50,
        rps: float | None = None,
        processes: int = 1,
        connections: int = 1,
        events_per_call: int = 1,
        unpinned: bool = False,
        alongside: Alongside | None = None,
    ) -> Row:
        """One scenario; with ``alongside``, that other load runs at the same time (its
        calls' server CPU is then counted in this row's)."""
        spec = LoadSpec(
            target=server.target,
            method=method,
            templates=tuple(templates),
            concurrency=concurrency,
            processes=processes,
            connections=connections,
            duration=self.duration,
            rps=rps,
            cpus=None if unpinned else CLIENT_CPUS,
            warmup=self.warmup,
        )
        side: list[LoadReport] = []
        driver = None
        if alongside is not None:
            side_spec = replace(
                spec, method=alongside.method, templates=tuple(alongside.templates),
                concurrency=4, rps=alongside.rps,
            )  # fmt: skip
            driver = threading.Thread(target=lambda: side.append(run_load(side_spec)))
        before = server.cpu_seconds()
        if driver is not None:
            driver.start()
        report = run_load(spec)
        if driver is not None:
            driver.join()
        cpu = server.cpu_seconds() - before
        # The warm-up's calls are unmeasured: scale the CPU to the measured share of calls.
        measured_share = self.duration / (self.duration + self.warmup)
        row = Row(scenario, catalogue, report, cpu * measured_share / max(report.count, 1) * 1e6)
        if events_per_call > 1:
            row.extra["events_per_second"] = report.rps * events_per_call
        if alongside is not None:
            done = side[0] if side else None
            errors = (
                ""
                if done and not done.errors
                else f" (errors {dict(done.errors) if done else 'unknown'})"
            )
            row.extra["alongside"] = (
                f"{done.rps if done else 0:.0f} {alongside.method.rsplit('/', 1)[-1]}/s{errors}"
            )
        self.rows.append(row)
        print(
            f"{scenario:<34} {catalogue:<8} {report.rps:9.0f} rps  p99 "
            f"{report.latency_ms.get('p99', 0):7.2f} ms  cpu {row.server_cpu_us:7.0f} us/req"
            f"  errors {report.errors or 0}",
            flush=True,
        )
        return row


@dataclass(frozen=True)
class Alongside:
    """A load run at the same time as a scenario: a fixed rate of these calls."""

    method: str
    templates: list[str]
    rps: float


def common_arguments(parser: argparse.ArgumentParser, synthetic: str) -> None:
    """The options every benchmark of synthetic catalogues takes."""
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument(
        "--synthetic", default=synthetic, help="synthetic catalogue sizes, comma-separated"
    )
    parser.add_argument("--workdir", help="where the databases go (kept between runs)")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")


def machine_facts() -> dict[str, str]:
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs,"
        f" {platform.python_implementation()} {platform.python_version()}",
        "pinning": f"server on CPUs {sorted(SERVER_CPUS)}, load driver on {list(CLIENT_CPUS)}"
        if SERVER_CPUS and CLIENT_CPUS
        else "no pinning (one CPU)",
    }


def _rps(row: Row) -> float:
    return row.report.rps


def prepare(workdir: Path, sizes: list[int], real: bool = True) -> dict[str, Path]:
    from reviewrank.service.cli import main as cli
    from reviewrank.service.tools.synthetic import write_catalogue

    # The real catalogue as imported, copied afresh for every run: the ingest scenarios
    # write into it, and a database grown by earlier runs would make each run slower.
    databases = {}
    if real:
        pristine = workdir / "real.db"
        if not pristine.exists():
            cli.main(["import", "--database", str(pristine), "--quiet"])
        databases["real"] = fresh_copy(pristine, workdir / "real-run.db")
    for size in sizes:
        name = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
        path = workdir / f"synthetic-{name}.db"
        if not path.exists():
            print(f"writing a synthetic catalogue of {size:,} products", flush=True)
            write_catalogue(path, size)
        # Copied too: a scenario writes into it while Top is measured.
        databases[name] = fresh_copy(path, workdir / f"synthetic-{name}-run.db")
    return databases


def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.synthetic.split(",") if s]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="reviewrank-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    databases = prepare(workdir, sizes)
    suite = Suite(duration=args.duration, warmup=args.warmup)
    suite.facts.update(
        machine_facts(),
        duration_seconds=args.duration,
        warmup_seconds=args.warmup,
    )
    real_ids = product_ids(databases["real"])
    echo = "reviewrank.v1.BenchService/Echo"
    rank = "reviewrank.v1.RankingService/Rank"

    # Echo and Rank on the real catalogue, in one server.
    with serving(databases["real"]) as server:
        suite.measure(server, "echo 100 candidates", "real", echo, rank_templates(real_ids, 100))
        for size in (10, 100, 1000):
            suite.measure(
                server, f"rank {size} candidates", "real", rank, rank_templates(real_ids, size)
            )
        for size in (100, 1000):
            columns = rank_templates(real_ids, size, columns=True)
            suite.measure(server, f"rank {size} candidates as columns", "real", rank, columns)
        best = next(r for r in suite.rows if r.scenario == "rank 100 candidates")
        half = suite.measure(
            server, "rank 100 at half max rate", "real", rank, rank_templates(real_ids, 100),
            rps=best.report.rps / 2,
        )  # fmt: skip
        half.extra["target_rps"] = best.report.rps / 2
        top = top_templates(databases["real"])
        suite.measure(
            server, "top 20 per category", "real", "reviewrank.v1.RankingService/Top", top
        )
        stats = [
            json.dumps({"productIds": random.Random(i).sample(real_ids, 100)}) for i in range(16)
        ]
        suite.measure(
            server, "product stats 100 ids", "real",
            "reviewrank.v1.RankingService/GetProductStats", stats,
        )  # fmt: skip
        feedback = "reviewrank.v1.FeedbackService/"
        ratings, likes = rating_templates(real_ids), like_templates(real_ids)
        suite.measure(
            server, "submit rating c=1", "real", feedback + "SubmitRating", ratings, concurrency=1
        )
        suite.measure(server, "submit rating c=50", "real", feedback + "SubmitRating", ratings)
        suite.measure(server, "submit like c=50", "real", feedback + "SubmitLike", likes)
        suite.measure(
            server, "submit share c=50", "real", feedback + "SubmitShare",
            share_templates(real_ids),
        )  # fmt: skip
        for size in (100, 1000):
            suite.measure(
                server, f"submit batch of {size}", "real", feedback + "SubmitBatch",
                batch_templates(real_ids, size), concurrency=4, events_per_call=size,
            )  # fmt: skip
        suite.measure(
            server, "submit batch of 1000 shares", "real", feedback + "SubmitBatch",
            batch_templates(real_ids, 1000, kind="share"), concurrency=4, events_per_call=1000,
        )  # fmt: skip
        suite.measure(
            server, "submit batch of 1000 poll votes", "real", feedback + "SubmitBatch",
            batch_templates(real_ids, 1000, kind="pollVote"), concurrency=4,
            events_per_call=1000,
        )  # fmt: skip
        # Comments: scored on receipt (VADER) from the demo reviews' texts (310 characters
        # on average), and sent with the sender's score.
        texts = [r.text for r in read_reviews() if r.text]
        suite.measure(
            server, "submit batch of 1000 comments, review texts", "real",
            feedback + "SubmitBatch",
            batch_templates(real_ids, 1000, kind="comment", texts=texts),
            concurrency=4, events_per_call=1000,
        )  # fmt: skip
        suite.measure(
            server, "submit batch of 1000 comments, scores", "real", feedback + "SubmitBatch",
            batch_templates(real_ids, 1000, kind="comment"), concurrency=4, events_per_call=1000,
        )  # fmt: skip
    with serving(databases["real"], {"REVIEWRANK_BENCH_BARE": "1"}) as server:
        suite.measure(
            server, "echo 100, no interceptor", "real", echo, rank_templates(real_ids, 100)
        )
        suite.measure(
            server, "rank 100, no interceptor", "real", rank, rank_templates(real_ids, 100)
        )

    # The other way of serving gRPC in Python.
    aio = AioEcho()
    try:
        suite.measure(
            aio, "echo 100, bare grpc.aio server", "-", echo, rank_templates(real_ids, 100)
        )
    finally:
        aio.stop()

    # Every core: one process versus two workers, neither pinned (the load driver shares).
    # The kernel hands each worker connections, not calls: 16 of them, or the two client
    # processes' connections would land on one worker half the time.
    suite.facts["workers"] = "server and load driver unpinned, sharing both CPUs"
    for workers in (1, 2):
        with serving(databases["real"], {"REVIEWRANK_WORKERS": str(workers)}, pin=False) as server:
            server.wait_listening(workers)
            suite.measure(
                server, f"rank 100, {workers} worker(s), unpinned", "real", rank,
                rank_templates(real_ids, 100), processes=2, connections=8, unpinned=True,
            )  # fmt: skip

    for name, database in databases.items():
        if name == "real":
            continue
        ids = product_ids(database)
        with serving(database) as server:
            suite.facts[f"start-up {name}"] = {
                "ready_seconds": round(server.ready_seconds, 2),
                "rss_mb": round(server.rss_mb(), 1),
            }
            ranked = {
                size: suite.measure(
                    server, f"rank {size} candidates", name, rank, rank_templates(ids, size)
                )
                for size in (10, 100, 1000)
            }
            writes = Alongside(
                "reviewrank.v1.FeedbackService/SubmitRating", rating_templates(ids), 50.0
            )
            top = top_templates(database)
            most = suite.measure(
                server, "top 20 per category", name, "reviewrank.v1.RankingService/Top", top
            )
            # Latency without the queueing of a saturated closed loop.
            half = suite.measure(
                server, "top 20 at half max rate", name, "reviewrank.v1.RankingService/Top",
                top, rps=most.report.rps / 2,
            )  # fmt: skip
            half.extra["target_rps"] = most.report.rps / 2
            # The same while ratings arrive: each write makes the kept order stale.
            busy = suite.measure(
                server, "top 20 at half max rate, 50 writes/s", name,
                "reviewrank.v1.RankingService/Top", top, rps=most.report.rps / 2,
                alongside=writes,
            )  # fmt: skip
            busy.extra["target_rps"] = most.report.rps / 2
            # Rank 100 at half its maximum rate while ratings arrive: each write changes
            # the fitted prior and the kept scores.
            busy = suite.measure(
                server, "rank 100 at half max rate, 50 writes/s", name, rank,
                rank_templates(ids, 100), rps=ranked[100].report.rps / 2, alongside=writes,
            )  # fmt: skip
            busy.extra["target_rps"] = ranked[100].report.rps / 2
        del ids
    with serving(workdir / "empty.db") as server:
        suite.facts["start-up empty"] = {
            "ready_seconds": round(server.ready_seconds, 2),
            "rss_mb": round(server.rss_mb(), 1),
        }
    ceiling = choose_ceiling(suite)
    write_results(suite, ceiling, Path(args.out))
    if args.abuse_duration > 0:  # normal Rank with each attack alongside: abuse.{md,json}
        from reviewrank.service.tools import abuse_bench

        plan = abuse_bench.Plan(duration=args.abuse_duration, warmup=args.warmup)
        abuse_bench.measure(workdir, Path(args.out), plan)
    return 0


def choose_ceiling(suite: Suite) -> Row:
    """The better echo of the two server modes (the threaded server through reviewrank's
    interceptors, a bare grpc.aio server). The rows without interceptors are compared
    with each other: Rank's ratio goes into its notes."""
    modes = ("echo 100 candidates", "echo 100, bare grpc.aio server")
    ceiling = max((r for r in suite.rows if r.scenario in modes), key=_rps)
    bare = {r.scenario: r for r in suite.rows if r.scenario.endswith("no interceptor")}
    echo, rank = bare.get("echo 100, no interceptor"), bare.get("rank 100, no interceptor")
    if echo is not None and rank is not None:
        rank.extra["× echo without interceptor"] = round(rank.report.rps / echo.report.rps, 2)
    return ceiling


def start_up_table(suite: Suite) -> list[str]:
    """The start-ups measured, as the lines of a table (after an empty line)."""
    lines = ["", "| start-up | ready (s) | resident memory (MB) |", "|---|---:|---:|"]
    for key, value in suite.facts.items():
        if key.startswith("start-up"):
            lines.append(f"| {key[9:]} | {value['ready_seconds']} | {value['rss_mb']} |")
    return lines


def rows_as_json(suite: Suite) -> list[dict[str, Any]]:
    return [
        {
            "scenario": r.scenario,
            "catalogue": r.catalogue,
            "server_cpu_us": r.server_cpu_us,
            **r.extra,
            "report": r.report.to_json(),
        }
        for r in suite.rows
    ]


def write_results(suite: Suite, ceiling: Row, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# reviewrank benchmark",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" on {suite.facts['machine']};"
        f" {suite.facts['pinning']}; {suite.duration:g} s per scenario after {suite.warmup:g} s"
        " of warm-up; closed loop at concurrency 50 unless noted. Ratios are to the echo"
        f" ceiling measured in the same run, the better server mode ({ceiling.scenario}:"
        f" {ceiling.report.rps:.0f} rps, {ceiling.server_cpu_us:.0f} us of server CPU per"
        " call).",
        "",
        "| scenario | catalogue | rps | × echo rps | p50 ms | p99 ms"
        " | server CPU µs/call | × echo CPU | errors | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in suite.rows:
        lat = row.report.latency_ms
        notes = ", ".join(
            f"{k.replace('_', ' ')} {v}"
            if isinstance(v, str)
            else f"{k.replace('_', ' ')} {v:,.2f}"
            if abs(v) < 10
            else f"{k.replace('_', ' ')} {v:,.0f}"
            for k, v in row.extra.items()
            if isinstance(v, str | float | int)
        )
        lines.append(
            f"| {row.scenario} | {row.catalogue} | {row.report.rps:,.0f} |"
            f" {row.report.rps / ceiling.report.rps:.2f} | {lat.get('p50', 0):.2f} |"
            f" {lat.get('p99', 0):.2f} | {row.server_cpu_us:,.0f} |"
            f" {row.server_cpu_us / ceiling.server_cpu_us:.2f} |"
            f" {sum(row.report.errors.values()) or ''} | {notes} |"
        )
    lines += start_up_table(suite)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    data = {
        "facts": suite.facts,
        "ceiling": {"rps": ceiling.report.rps, "server_cpu_us": ceiling.server_cpu_us},
        "rows": rows_as_json(suite),
    }
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {out / 'results.md'} and {out / 'results.json'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reviewrank.service.tools.benchsuite", description=__doc__
    )
    common_arguments(parser, "100000,1000000")
    parser.add_argument(
        "--abuse-duration", type=float, default=5.0,
        help="seconds of normal Rank per abuse scenario (tools/abuse_bench.py); 0 skips them",
    )  # fmt: skip
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
