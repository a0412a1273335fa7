"""``make bench-ab``: a paired A/B of this tree against another checkout of reviewrank.

Both versions are served at once, each a ``reviewrank serve`` process on a fresh copy of
the real catalogue, both pinned to the server CPU; the load driver (service/cli/loadgen.py)
runs on the client CPUs and loads them in turn, in alternating order round after round.
Each round gives a ratio new/old of throughput and of server CPU per call; the medians
of those paired ratios vary by about 2 % where runs one after another vary by 30 %.

The other checkout needs its own environment (``make install`` there); ``make bench-ab``
makes one from a git revision in ``.bench-data/ab-old``. A setting is compared the same
way: this tree against itself (``old`` = ``.``), each side given its own ``REVIEWRANK_*``
variables (``--old-env``, ``--new-env``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reviewrank.service import CLI_MODULE
from reviewrank.service.app.settings import DATA_DIR, ENV_PREFIX, Settings, from_env
from reviewrank.service.cli.loadgen import LoadSpec, run_load
from reviewrank.service.tools.bench_servers import free_port
from reviewrank.service.tools.runs import CLIENT_CPUS, SERVER_CPUS, fresh_copy
from reviewrank.service.tools.templates import (
    batch_templates,
    product_ids,
    rank_templates,
    rating_templates,
)

ROOT = Path(__file__).resolve().parents[2]
_TICKS = os.sysconf("SC_CLK_TCK")
RANK = "reviewrank.v1.RankingService/Rank"
BATCH = "reviewrank.v1.FeedbackService/SubmitBatch"
RATING = "reviewrank.v1.FeedbackService/SubmitRating"


def _cli_module(tree: Path) -> str:
    """The command line's module in that checkout's layout (its .venv installs it)."""
    if '"reviewrank.service"' in (tree / "pyproject.toml").read_text():
        return CLI_MODULE
    return "service.cli.main" if (tree / "service/cli/main.py").exists() else "service.cli"


def _weights_of(tree: Path) -> Path:
    """The checkout's own shipped weights (its profiles and their priors are part of what
    is compared), else this tree's."""
    own = tree / "data" / "weights.toml"
    return own if own.is_file() else DATA_DIR / "weights.toml"


class Served:
    """``reviewrank serve`` from one checkout (with the command line it has)."""

    def __init__(self, tree: Path, database: Path, env: dict[str, str] | None = None) -> None:
        module = _cli_module(tree)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                str(tree / ".venv/bin/python"), "-m", module, "serve",
                "--address", f"127.0.0.1:{self.port}", "--database", str(database),
                "--weights", str(_weights_of(tree)), "--log-level", "warning",
            ],
            cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        if SERVER_CPUS:
            os.sched_setaffinity(self.proc.pid, SERVER_CPUS)
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(600):
                try:
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    return
                except grpc.RpcError:
                    time.sleep(0.1)
        raise RuntimeError(f"the server of {tree} did not start")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _shown(env: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in env.items())


SCENARIO_NAMES = (
    "Rank, 100 candidates",
    "Rank, 100 candidates, 4 connections",
    "Rank, 1,000 candidates",
    "SubmitBatch, 1,000 events",
    "SubmitRating, concurrency 50",
    "SubmitBatch, 1,000 poll votes",  # (an old tree from before poll votes: leave it out)
)


def measure(
    old_tree: Path,
    workdir: Path,
    rounds: int,
    seconds: float,
    new_columns: bool = False,
    env: dict[str, dict[str, str]] | None = None,
    only: str = "",
) -> str:
    """The paired ratios as a Markdown table. ``new_columns``: the new version is sent
    Rank's candidates as columns (candidate_ids, candidate_relevances), the old one the
    same candidates as messages. ``env``: variables for the "old" and "new" servers.
    ``only``: the scenarios whose name holds this text (default every one)."""
    workdir.mkdir(parents=True, exist_ok=True)
    pristine = workdir / "real.db"
    if not pristine.exists():
        subprocess.run(
            [sys.executable, "-m", CLI_MODULE, "import", "--database", str(pristine),
             "--quiet"],
            cwd=ROOT, check=True,
        )  # fmt: skip
    ids = product_ids(pristine)

    def ranks(size: int) -> dict[str, tuple[str, ...]]:
        sent = tuple(rank_templates(ids, size))
        return {"old": sent, "new": tuple(rank_templates(ids, size, columns=new_columns))}

    batches = tuple(batch_templates(ids, 1000))
    ratings = tuple(rating_templates(ids))
    ballots = tuple(batch_templates(ids, 1000, kind="pollVote"))
    every = [
        (RANK, ranks(100), 50, 1),
        (RANK, ranks(100), 50, 4),
        (RANK, ranks(1000), 50, 1),
        (BATCH, {"old": batches, "new": batches}, 4, 1),
        (RATING, {"old": ratings, "new": ratings}, 50, 1),
        (BATCH, {"old": ballots, "new": ballots}, 4, 1),
    ]
    scenarios = [
        (name, *rest)
        for name, rest in zip(SCENARIO_NAMES, every, strict=True)
        if only.lower() in name.lower()
    ]
    env = env or {}
    servers: dict[str, Served] = {}
    seen: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        for version, tree in (("old", old_tree), ("new", ROOT)):
            database = fresh_copy(pristine, workdir / f"{version}.db")
            servers[version] = Served(tree, database, env.get(version))
        for n in range(rounds):
            order = ("old", "new") if n % 2 == 0 else ("new", "old")
            for name, method, templates, concurrency, connections in scenarios:
                for version in order:
                    server = servers[version]
                    spec = LoadSpec(
                        server.target, method, templates[version], concurrency=concurrency,
                        connections=connections, duration=seconds, cpus=CLIENT_CPUS, warmup=1.0,
                    )  # fmt: skip
                    before = server.cpu_seconds()
                    report = run_load(spec)
                    used = server.cpu_seconds() - before
                    # the CPU clock also ran through the warm-up: count its calls too
                    calls = report.count + report.rps * spec.warmup
                    # A stalled window (no call answered) pairs nothing: rate 0, no CPU/call.
                    per_call = used / calls if report.count else float("nan")
                    seen.setdefault((name, version), []).append((report.rps, per_call))
                    print(f"round {n}: {name}, {version}: {report.rps:.1f} calls/s", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    lines = [
        f"Paired A/B, {rounds} rounds of {seconds:g} s (+1 s warm-up), old = {old_tree}"
        + "".join(f", {side}: {_shown(e)}" for side, e in env.items() if e),
        "",
        "| scenario | old calls/s | new calls/s | new/old (median, range) | CPU/call new/old |",
        "|---|---:|---:|---|---:|",
    ]
    for name, *_ in scenarios:
        old, new = seen[(name, "old")], seen[(name, "new")]
        # Rounds where either side answered no call pair nothing.
        pairs = [(a, b) for a, b in zip(old, new, strict=True) if a[0] and b[0]]
        if not pairs:
            lines.append(f"| {name} | – | – | no round answered on both sides | – |")
            continue
        ratios = [b[0] / a[0] for a, b in pairs]
        cpu = [b[1] / a[1] for a, b in pairs]
        lines.append(
            f"| {name} | {statistics.median(a[0] for a in old):,.1f} "
            f"| {statistics.median(b[0] for b in new):,.1f} "
            f"| {statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) "
            f"| {statistics.median(cpu):.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reviewrank.service.tools.paired_ab", description=__doc__
    )
    parser.add_argument("old", type=Path, help="the other checkout (with its own .venv)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (default 6)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario and version")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench-data" / "ab")
    parser.add_argument(
        "--new-columns",
        action="store_true",
        help="send this tree's server Rank's candidates as columns (the old one as messages)",
    )
    parser.add_argument(
        "--only", default="", help="only the scenarios whose name holds this, e.g. SubmitBatch"
    )
    for side in ("old", "new"):
        parser.add_argument(
            f"--{side}-env",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"a REVIEWRANK_* variable for the {side} server (repeatable)",
        )
    args = parser.parse_args(argv)
    env: dict[str, dict[str, str]] = {}
    known = {ENV_PREFIX + f.name.upper() for f in fields(Settings)}
    for side, given in (("old", args.old_env), ("new", args.new_env)):
        for item in given:
            name, equals, value = item.partition("=")
            if not equals or not name.startswith(ENV_PREFIX):
                parser.error(f"--{side}-env {item!r}: expected REVIEWRANK_NAME=VALUE")
            if name not in known:
                parser.error(f"--{side}-env {item!r}: {name} is not a setting of this tree")
            env.setdefault(side, {})[name] = value
        try:  # this tree's checks, before a server is started in vain
            from_env(env.get(side, {}))
        except ValueError as exc:
            parser.error(f"--{side}-env: {exc}")
    if not any(args.only.lower() in name.lower() for name in SCENARIO_NAMES):
        parser.error(f"--only {args.only!r}: no scenario's name holds it ({SCENARIO_NAMES})")
    if not (args.old / ".venv/bin/python").exists():
        parser.error(f"{args.old} has no .venv: run make install there")
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    old = args.old.resolve()
    print(measure(old, args.workdir, args.rounds, args.seconds, args.new_columns, env, args.only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
