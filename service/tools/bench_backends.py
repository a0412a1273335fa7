"""``make bench-postgres``: ingest and Rank on PostgreSQL beside SQLite, in one run.

The same real catalogue (the demo data set) in both databases: a SQLite file and a
PostgreSQL database (a throwaway local cluster, as the tests start, unless
``--database-url`` names one). The same server code, pinned the same way, measured by
the same load driver; both durable (SQLite ``synchronous=FULL``; PostgreSQL with
``fsync`` and ``synchronous_commit`` on). Writes results to
``bench/results/backends.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reviewrank.service.app.store import DatabaseURL
from reviewrank.service.storage.factory import open_store
from reviewrank.service.storage.transfer import export_to, import_from
from reviewrank.service.tools.bench_servers import serving
from reviewrank.service.tools.benchsuite import RESULTS, Suite, prepare
from reviewrank.service.tools.templates import (
    batch_templates,
    product_ids,
    rank_templates,
    rating_templates,
)


def copy_database(source: Path, url: str) -> float:
    """Copies the SQLite database into the (empty) database at ``url`` the way an operator
    would, with export and import (service/storage/transfer.py); returns seconds."""
    started = time.perf_counter()
    dump = source.with_name(source.name + ".export.jsonl")
    sqlite = open_store(DatabaseURL.for_path(source))
    target = open_store(DatabaseURL.parse(url))
    try:
        export_to(sqlite, dump)
        import_from(target, dump)
    finally:
        sqlite.close()
        target.close()
        dump.unlink(missing_ok=True)
    import psycopg  # settle the copied tables now, not under the measured load

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return time.perf_counter() - started


def measure(suite: Suite, backend: str, database: Path, env: dict[str, str]) -> dict[str, Any]:
    ids = product_ids(database)
    rank = "reviewrank.v1.RankingService/Rank"
    feedback = "reviewrank.v1.FeedbackService/"
    with serving(database, env) as server:
        facts: dict[str, Any] = {"ready_seconds": round(server.ready_seconds, 2)}
        suite.measure(server, "rank 100 candidates", backend, rank, rank_templates(ids, 100))
        suite.measure(
            server, "submit rating c=50", backend, feedback + "SubmitRating", rating_templates(ids)
        )
        suite.measure(
            server, "submit batch of 1000", backend, feedback + "SubmitBatch",
            batch_templates(ids, 1000), concurrency=4, events_per_call=1000,
        )  # fmt: skip
    return facts


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="reviewrank-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    real = prepare(workdir, [])["real"]
    sqlite_copy = workdir / "backends-sqlite.db"  # the writes must not grow the shared one
    shutil.copyfile(real, sqlite_copy)
    cluster = None
    url = args.database_url
    if not url:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from tests.pg_cluster import PostgresCluster  # the tests' throwaway cluster

        cluster = PostgresCluster().start()
        url = cluster.create_database("reviewrank_bench")
    suite = Suite(duration=args.duration, warmup=args.warmup)
    try:
        copy_seconds = copy_database(sqlite_copy, url)
        facts = {
            "sqlite": measure(suite, "sqlite", sqlite_copy, {}),
            "postgresql": measure(
                suite, "postgresql", sqlite_copy, {"REVIEWRANK_DATABASE_URL": url}
            ),
        }
        facts["postgresql"]["export_import_seconds"] = round(copy_seconds, 2)
    finally:
        if cluster is not None:
            cluster.stop()
    write(suite, facts, Path(args.out))
    return 0


def write(suite: Suite, facts: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    by = {(r.scenario, r.catalogue): r for r in suite.rows}
    lines = [
        "| scenario | SQLite | PostgreSQL | PostgreSQL / SQLite |",
        "|---|---:|---:|---:|",
    ]
    for scenario in dict.fromkeys(r.scenario for r in suite.rows):
        a, b = by[(scenario, "sqlite")], by[(scenario, "postgresql")]
        key = "events_per_second" if "events_per_second" in a.extra else None
        va = a.extra[key] if key else a.report.rps
        vb = b.extra[key] if key else b.report.rps
        unit = "events/s" if key else "rps"
        lines.append(
            f"| {scenario} | {va:,.0f} {unit}, p99 {a.report.latency_ms.get('p99', 0):.1f} ms"
            f" | {vb:,.0f} {unit}, p99 {b.report.latency_ms.get('p99', 0):.1f} ms"
            f" | {vb / va:.2f} |"
        )
    lines.append(
        f"| start-up, real catalogue | {facts['sqlite']['ready_seconds']} s"
        f" | {facts['postgresql']['ready_seconds']} s | |"
    )
    (out / "backends.md").write_text("\n".join(lines) + "\n")
    rows = [
        {
            "scenario": r.scenario,
            "backend": r.catalogue,
            "rps": round(r.report.rps, 1),
            "p99_ms": r.report.latency_ms.get("p99"),
            "server_cpu_us": round(r.server_cpu_us, 1),
            "errors": r.report.errors,
            **r.extra,
        }
        for r in suite.rows
    ]
    (out / "backends.json").write_text(json.dumps({"rows": rows, "facts": facts}, indent=2))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reviewrank.service.tools.bench_backends", description=__doc__
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--workdir", help="where the SQLite databases go (kept between runs)")
    parser.add_argument("--database-url", help="an empty PostgreSQL database to use instead")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
