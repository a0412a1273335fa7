"""``make bench-writes``: Rank and Top while ratings stream in, beside the same scenario
without writes, on large synthetic catalogues (issue 21).

For each catalogue and each of Rank of 100 candidates and Top of a category, a server of
its own on a fresh copy (pinned as in service/tools/benchsuite.py): the call measured
closed loop, then at half that rate alone, with 50 and with 500 SubmitRating a second
alongside. The figure that matters is the p99 with writes against the p99 without, on
the same server. Writes bench/results/writes.{md,json}.

``--python`` serves with another checkout's interpreter instead (its ``.venv/bin/python``),
and ``--rank-rps``/``--top-rps`` fix the rates, so that two versions can be measured
alike, one after the other.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from reviewrank.service.tools.bench_servers import serving
from reviewrank.service.tools.benchsuite import (
    Alongside,
    Row,
    Suite,
    common_arguments,
    machine_facts,
    prepare,
    rows_as_json,
    start_up_table,
)
from reviewrank.service.tools.runs import fresh_copy
from reviewrank.service.tools.templates import (
    product_ids,
    rank_templates,
    rating_templates,
    top_templates,
)

RANK = "reviewrank.v1.RankingService/Rank"
TOP = "reviewrank.v1.RankingService/Top"
SUBMIT_RATING = "reviewrank.v1.FeedbackService/SubmitRating"
WRITE_RATES = (50.0, 500.0)


def measure_catalogue(
    suite: Suite,
    name: str,
    database: Path,
    python: str | None = None,
    rates: dict[str, float] | None = None,
) -> None:
    """The scenarios on one catalogue, rows appended to ``suite``; each "with writes" row
    gets its p99 as a multiple of the quiet row's (``p99_x_quiet``)."""
    ids = product_ids(database)
    reads = {
        "rank 100": (RANK, rank_templates(ids, 100)),
        "top 20": (TOP, top_templates(database)),
    }
    writes = rating_templates(ids)
    for label, (method, templates) in reads.items():
        # A fresh server and database for each: the writes of one would otherwise reach
        # the next's quiet row (a prior put in force a minute later, say).
        copy = fresh_copy(database, database.with_name(f"{database.stem}-{label[:3]}.db"))
        with serving(copy, python=python) as server:
            suite.facts.setdefault(
                f"start-up {name}",
                {
                    "ready_seconds": round(server.ready_seconds, 2),
                    "rss_mb": round(server.rss_mb(), 1),
                },
            )
            rate = (rates or {}).get(label)
            if rate is None:
                most = suite.measure(server, f"{label}, closed loop", name, method, templates)
                rate = most.report.rps / 2
            quiet = suite.measure(
                server, f"{label} at {rate:.0f}/s", name, method, templates, rps=rate
            )
            for writes_per_second in WRITE_RATES:
                busy = suite.measure(
                    server, f"{label} at {rate:.0f}/s, {writes_per_second:.0f} writes/s", name,
                    method, templates, rps=rate,
                    alongside=Alongside(SUBMIT_RATING, writes, writes_per_second),
                )  # fmt: skip
                busy.extra["p99_x_quiet"] = _p99(busy) / max(_p99(quiet), 1e-9)


def _p99(row: Row) -> float:
    return float(row.report.latency_ms.get("p99", 0.0))


def write_results(suite: Suite, out: Path, name: str = "writes") -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# reviewrank: reads while ratings stream in",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on"
        f" {suite.facts['machine']}; {suite.facts['pinning']}; {suite.duration:g} s per"
        f" scenario after {suite.warmup:g} s of warm-up; reads open loop at the rate named"
        " (half the closed-loop maximum unless fixed), writes SubmitRating at the rate named"
        " from 4 callers. Target (issue 21): p99 with writes at most 2x the p99 without.",
        "",
        "| scenario | catalogue | rps | p50 ms | p99 ms | p99 × without writes"
        " | server CPU µs/call | errors | writes done |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in suite.rows:
        lat = row.report.latency_ms
        ratio = row.extra.get("p99_x_quiet")
        lines.append(
            f"| {row.scenario} | {row.catalogue} | {row.report.rps:,.0f} |"
            f" {lat.get('p50', 0):.2f} | {lat.get('p99', 0):.2f} |"
            f" {'' if ratio is None else f'{ratio:.2f}'} | {row.server_cpu_us:,.0f} |"
            f" {sum(row.report.errors.values()) or ''} | {row.extra.get('alongside', '')} |"
        )
    lines += start_up_table(suite)
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    data = {"facts": suite.facts, "rows": rows_as_json(suite)}
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {out / (name + '.md')} and {out / (name + '.json')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reviewrank.service.tools.writes_bench", description=__doc__
    )
    common_arguments(parser, "1000000")
    parser.add_argument("--name", default="writes", help="results file name, without suffix")
    parser.add_argument("--python", help="serve with this interpreter (another checkout's)")
    parser.add_argument("--rank-rps", type=float, help="Rank's rate (default: half its maximum)")
    parser.add_argument("--top-rps", type=float, help="Top's rate (default: half its maximum)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.synthetic.split(",") if s]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="reviewrank-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    databases = prepare(workdir, sizes, real=False)
    suite = Suite(duration=args.duration, warmup=args.warmup)
    suite.facts.update(machine_facts(), server_python=args.python or sys.executable)
    rates = {
        key: value
        for key, value in (("rank 100", args.rank_rps), ("top 20", args.top_rps))
        if value is not None
    }
    for name, database in databases.items():
        measure_catalogue(suite, name, database, args.python, rates)
    write_results(suite, Path(args.out), args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
