"""``make bench-abuse``: normal Rank latency with each attack of service/tools/abuse.py alongside.

Each row runs against a fresh ``reviewrank serve`` subprocess (loopback, port 0, a fresh
copy of the database), so that a server an attack broke cannot spoil the next row: first
normal Rank calls alone (the baseline), then, one server each, the same calls with each
attack running alongside from ``clients`` abusive connections. After the attack the
server must answer Check and Rank within ``RECOVERY_SECONDS``, then stop on SIGTERM within
its grace period (plus a margin); one still running then is killed and the row says it
needed SIGKILL. The health Watch churn runs last: it deadlocks today's server for good.

Writes bench/results/abuse.md and abuse.json.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reviewrank.service.tools.abuse import SCENARIOS, AbuseReport, Attack, Scenario, rank_payload
from reviewrank.service.tools.runs import CLIENT_CPUS, SERVER_CPUS, fresh_copy
from reviewrank.service.tools.served_process import (
    GRACE_SECONDS,
    START_SECONDS,
    STOP_MARGIN,
    ServedProcess,
)
from reviewrank.v1 import ranking_pb2, ranking_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
RANK_METHOD = "/reviewrank.v1.RankingService/Rank"
RECOVERY_SECONDS = 5.0  # Check and Rank must each answer within this after an attack
HEALTHY = {"check": "SERVING", "rank": "OK"}  # what answers() finds on a working server


def answers(target: str, timeout: float = RECOVERY_SECONDS) -> dict[str, str]:
    """Whether the server answers now: Check's status ("SERVING"...) and Rank's ("OK" or
    the status code), each with its own deadline."""
    found = {}
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
            found["check"] = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.RpcError as error:
            found["check"] = error.code().name
        try:
            ranking_pb2_grpc.RankingServiceStub(channel).Rank(
                ranking_pb2.RankRequest.FromString(rank_payload(10)), timeout=timeout
            )
            found["rank"] = "OK"
        except grpc.RpcError as error:
            found["rank"] = error.code().name
    return found


@dataclass
class Outcome:
    """One attack against one server: what the attack saw, whether the server answered
    afterwards, and how it stopped."""

    scenario: str
    abuse: AbuseReport | None
    answers: dict[str, str]
    stop_seconds: float
    needed_sigkill: bool
    # What ran alongside the attack found (the bench: normal Rank's count, latencies, errors).
    during: dict[str, Any] = field(default_factory=dict)

    @property
    def recovered(self) -> bool:
        return self.answers == HEALTHY and not self.needed_sigkill


def attack_alongside(
    scenario: Scenario | None,
    database: Path,
    seconds: float,
    during: Callable[[str], dict[str, Any]] | None = None,
    clients: int = 4,
    cpus: set[int] | None = None,
) -> Outcome:
    """A fresh server on ``database``; ``scenario`` (None: no attack) for up to ``seconds``,
    while ``during(target)`` runs if given (from the attack's start; the attack stops when
    it returns); then the recovery checks and a SIGTERM stop."""
    token = secrets.token_hex(16)
    settings = scenario.settings if scenario is not None else None
    server = ServedProcess(database, token, cpus=cpus, settings=settings)
    try:
        stop = threading.Event()
        reports: list[AbuseReport] = []
        attacker = None
        if scenario is not None:
            attack = Attack(server.target, clients, seconds, stop=stop, admin_token=token)
            run = scenario.run
            attacker = threading.Thread(target=lambda: reports.append(run(attack)), daemon=True)
            attacker.start()
            attack.started.wait(START_SECONDS)
        measured = during(server.target) if during is not None else None
        if attacker is not None:
            if measured is None:
                attacker.join(seconds + 30)
            stop.set()
            attacker.join(30)  # an attack ends within a second of its stop
        found = answers(server.target)
        stopped, killed = server.terminate()
    finally:
        server.kill()
    return Outcome(
        scenario.key if scenario else "none",
        reports[0] if reports else None,
        found,
        stopped,
        killed,
        measured or {},
    )


async def _open_loop(
    target: str, payload: bytes, rps: float, duration: float, warmup: float, timeout: float
) -> tuple[list[float], dict[str, int]]:
    """Rank calls sent at a fixed rate whatever the answers' pace (a call that times out
    counts with its deadline as latency): the latencies (ms) and errors of the calls sent
    after the warm-up."""
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    async with grpc.aio.insecure_channel(target) as channel:
        with contextlib.suppress(TimeoutError):  # the calls then fail with their deadlines
            await asyncio.wait_for(channel.channel_ready(), timeout)
        call = channel.unary_unary(RANK_METHOD)

        async def one(measured: bool) -> None:
            sent = time.perf_counter()
            code = ""
            try:
                await call(payload, timeout=timeout)
            except grpc.aio.AioRpcError as error:
                code = error.code().name
            if measured:
                latencies.append((time.perf_counter() - sent) * 1000)
                if code:
                    errors[code] += 1

        calls = []
        start = time.perf_counter()
        for n in range(int((warmup + duration) * rps)):
            offset = n / rps
            await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
            calls.append(asyncio.ensure_future(one(offset >= warmup)))
        await asyncio.gather(*calls)
    return latencies, dict(errors)


def _probe(
    target: str, payload: bytes, rps: float, duration: float, warmup: float, cpus: Any
) -> tuple[list[float], dict[str, int]]:
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    return asyncio.run(_open_loop(target, payload, rps, duration, warmup, RECOVERY_SECONDS))


def normal_rank(
    duration: float, warmup: float, rps: float, cpus: Any, prefix: str = "syn-"
) -> Callable[[str], dict[str, Any]]:
    """A ``during`` function: Rank of 100 candidates, open loop at ``rps``, from a process
    of its own (so that the attacker's work in this one does not delay it)."""
    payload = rank_payload(100, prefix)

    def measure(target: str) -> dict[str, Any]:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            job = pool.submit(_probe, target, payload, rps, duration, warmup, cpus)
            latencies, errors = job.result(timeout=warmup + duration + 3 * RECOVERY_SECONDS + 60)
        ms = np.asarray(latencies)
        summary: dict[str, Any] = {"count": int(ms.size), "errors": errors, "rps_sent": rps}
        if ms.size:
            summary["latency_ms"] = {
                p: float(np.percentile(ms, q)) for p, q in (("p50", 50), ("p90", 90), ("p99", 99))
            } | {"max": float(ms.max())}
        return summary

    return measure


def _fresh(source: Path, workdir: Path, name: str) -> Path:
    return fresh_copy(source, workdir / f"abuse-{name}.db")


@dataclass(frozen=True)
class Plan:
    """Normal Rank for ``duration`` seconds after ``warmup``, at ``rps`` calls a second,
    beside each scenario (those in ``only``, or all) from ``clients`` connections."""

    duration: float = 5.0
    warmup: float = 1.0
    rps: float = 50.0
    clients: int = 4
    only: tuple[str, ...] | None = None


def run_suite(database: Path, workdir: Path, plan: Plan) -> list[Outcome]:
    """The baseline, then every scenario of the plan, each on a fresh server."""
    measure = normal_rank(plan.duration, plan.warmup, plan.rps, CLIENT_CPUS)
    # The attack outlasts the measurement: the load driver's process takes a moment to
    # start, and the attack stops as soon as the measurement returns.
    attack_seconds = plan.duration + plan.warmup + 10.0
    chosen = [s for s in SCENARIOS if plan.only is None or s.key in plan.only]
    outcomes = []
    for scenario in [None, *chosen]:
        name = scenario.key if scenario else "none"
        copy = _fresh(database, workdir, name)
        outcome = attack_alongside(
            scenario, copy, attack_seconds, measure, plan.clients, cpus=SERVER_CPUS
        )
        outcomes.append(outcome)
        print(_line(outcome, outcomes[0]), flush=True)
    return outcomes


def _p(outcome: Outcome, which: str) -> float:
    return float(outcome.during.get("latency_ms", {}).get(which, 0.0))


def _line(outcome: Outcome, baseline: Outcome) -> str:
    ratio = _p(outcome, "p50") / max(_p(baseline, "p50"), 1e-9)
    return (
        f"{outcome.scenario:<16} p50 {_p(outcome, 'p50'):8.2f} ms  p99 {_p(outcome, 'p99'):8.2f}"
        f" ms  x{ratio:6.2f}  errors {outcome.during.get('errors') or 0}  after {outcome.answers}"
        f"  stop {outcome.stop_seconds:.1f} s{' SIGKILL' if outcome.needed_sigkill else ''}"
        f"  abuse: {outcome.abuse.brief() if outcome.abuse else '-'}"
    )


def write_results(outcomes: list[Outcome], facts: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    baseline = outcomes[0]
    base_p50 = max(_p(baseline, "p50"), 1e-9)
    lines = [
        "# reviewrank under abuse",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {facts['machine']}"
        f" ({facts.get('pinning', '')}):"
        f" normal Rank of 100 candidates, open loop at {facts['rps']:g} calls/s, measured for"
        f" {facts['duration_seconds']:g} s after {facts['warmup_seconds']:g} s of warm-up (a call"
        f" that times out counts as its {RECOVERY_SECONDS:g} s deadline), alone"
        f" and then with each attack of service/tools/abuse.py running alongside from"
        f" {facts['clients']} abusive connections, each row on a fresh server (loopback)."
        f" Target: p50 within 2x the baseline's, and every server answers Check and Rank"
        f" within {RECOVERY_SECONDS:g} s afterwards and stops on SIGTERM within its"
        f" {GRACE_SECONDS:g} s grace (+{STOP_MARGIN:g} s) without SIGKILL.",
        "",
        "| scenario | finding | Rank p50 ms | Rank p99 ms | × baseline p50 | errors of normal"
        " calls | p50 within 2× | abuse calls by status | SIGTERM to exit (s)"
        " | recovered without SIGKILL |",
        "|---|---:|---:|---:|---:|---|---|---|---:|---|",
    ]
    findings = {s.key: s.finding for s in SCENARIOS}
    for o in outcomes:
        errors = ", ".join(f"{k} {v}" for k, v in (o.during.get("errors") or {}).items())
        after = "yes" if o.recovered else "no: " + _why_not(o)
        lines.append(
            f"| {o.scenario} | {findings.get(o.scenario, '')} | {_p(o, 'p50'):.2f} |"
            f" {_p(o, 'p99'):.2f} | {_p(o, 'p50') / base_p50:.2f} | {errors} |"
            f" {'yes' if _p(o, 'p50') <= 2 * base_p50 else 'no'} |"
            f" {o.abuse.brief() if o.abuse else ''} | {o.stop_seconds:.1f} | {after} |"
        )
    (out / "abuse.md").write_text("\n".join(lines) + "\n")
    data = {
        "facts": facts,
        "rows": [
            {
                "scenario": o.scenario,
                "finding": findings.get(o.scenario),
                "p50_ms": _p(o, "p50"),
                "p99_ms": _p(o, "p99"),
                "ratio_to_baseline_p50": _p(o, "p50") / base_p50,
                "rank": o.during,
                "abuse": o.abuse.to_json() if o.abuse else None,
                "answers_after": o.answers,
                "stop_seconds": round(o.stop_seconds, 2),
                "needed_sigkill": o.needed_sigkill,
                "recovered": o.recovered,
            }
            for o in outcomes
        ],
    }
    (out / "abuse.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {out / 'abuse.md'} and {out / 'abuse.json'}")


def _why_not(outcome: Outcome) -> str:
    reasons = [f"{k} {v}" for k, v in outcome.answers.items() if v not in ("SERVING", "OK")]
    if outcome.needed_sigkill:
        reasons.append("needed SIGKILL")
    return ", ".join(reasons)


def synthetic_database(workdir: Path, products: int = 10_000) -> Path:
    """A synthetic catalogue (ids ``syn-<i>``), written once into ``workdir``."""
    from reviewrank.service.tools.synthetic import write_catalogue

    path = workdir / f"abuse-synthetic-{products}.db"
    if not path.exists():
        write_catalogue(path, products)
    return path


def measure(workdir: Path, out: Path, plan: Plan) -> bool:
    """The whole suite on a synthetic catalogue in ``workdir``, its table written to
    ``out``; whether every server recovered without SIGKILL."""
    import platform

    workdir.mkdir(parents=True, exist_ok=True)
    database = synthetic_database(workdir)
    outcomes = run_suite(database, workdir, plan)
    facts = {
        "pinning": f"server on CPUs {sorted(SERVER_CPUS)}, normal client on {list(CLIENT_CPUS)},"
        " attackers unpinned"
        if SERVER_CPUS and CLIENT_CPUS
        else "no pinning (one CPU)",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python"
        f" {platform.python_version()}",
        "catalogue": "synthetic, 10,000 products",
        "rps": plan.rps,
        "duration_seconds": plan.duration,
        "warmup_seconds": plan.warmup,
        "clients": plan.clients,
    }
    write_results(outcomes, facts, out)
    return all(o.recovered for o in outcomes)


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="reviewrank-abuse-"))
    only = tuple(args.only.split(",")) if args.only else None
    plan = Plan(args.duration, args.warmup, args.rps, args.clients, only)
    return 0 if measure(workdir, Path(args.out), plan) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reviewrank.service.tools.abuse_bench", description=__doc__
    )
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per row")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--rps", type=float, default=50.0, help="normal Rank calls per second")
    parser.add_argument("--clients", type=int, default=4, help="abusive connections")
    parser.add_argument("--only", help="scenario keys, comma-separated (default: all)")
    parser.add_argument("--workdir", help="where the databases go")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
