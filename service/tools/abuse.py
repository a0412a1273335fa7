"""Hostile traffic against a running server, one plain function per attack of issue 17.

Each attack talks to the server only through its public gRPC API (and, for the weights
TOML bombs, the admin token the server was started with), from ``clients`` channels of
their own (separate TCP connections), and stops by itself: at ``duration`` seconds, at
``max_calls`` calls, or as soon as ``stop`` is set, whichever comes first. Every call has
a deadline, and the calls still waiting for an answer at the end are cancelled, so a hung
server cannot hang the attacker. Each returns what it saw: calls by
status code, and anomalies (answers that are wrong although the call succeeded, such as a
NaN score).

The attacks run in an event loop of their own (grpc.aio), so one thread holds hundreds
of open streams or calls in flight; call ``run_scenario`` from any thread.
"""

from __future__ import annotations

import asyncio
import math
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from reviewrank.v1 import admin_pb2, feedback_pb2, ranking_pb2

SETTLE_SECONDS = 0.3  # after the end, callers have this long to finish before they are cancelled
CALL_TIMEOUT = 5.0  # deadline of each abusive call (a stream's: its whole life)
PATIENT_TIMEOUT = 60.0  # the TOML bombs' deadline (see weights_toml_bombs)
MAX_U64 = 2**64 - 1

HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
RANK = "/reviewrank.v1.RankingService/Rank"
TOP = "/reviewrank.v1.RankingService/Top"
STATS = "/reviewrank.v1.RankingService/GetProductStats"
SUBMIT_RATING = "/reviewrank.v1.FeedbackService/SubmitRating"
RELOAD_WEIGHTS = "/reviewrank.v1.AdminService/ReloadWeights"
PREVIEW_WEIGHTS = "/reviewrank.v1.AdminService/PreviewWeights"

MIB = 1024 * 1024


@dataclass
class AbuseReport:
    """What one attack saw: its calls by status code ("OK" or a grpc.StatusCode name)."""

    scenario: str
    clients: int
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)
    unfinished: int = 0  # calls still waiting for an answer at the end, cancelled then

    @property
    def calls(self) -> int:
        """Calls answered (with any status)."""
        return sum(self.statuses.values())

    @property
    def sent(self) -> int:
        return self.calls + self.unfinished

    def brief(self) -> str:
        """e.g. "OK 12, RESOURCE_EXHAUSTED 3; NaN score 12" """
        text = ", ".join(f"{code} {n}" for code, n in self.statuses.most_common()) or "no calls"
        if self.anomalies:
            text += "; " + ", ".join(f"{what} {n}" for what, n in self.anomalies.most_common())
        if self.unfinished:
            text += f"; {self.unfinished} unanswered at the end"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "clients": self.clients,
            "seconds": round(self.seconds, 3),
            "sent": self.sent,
            "statuses": dict(self.statuses),
            "anomalies": dict(self.anomalies),
            "unfinished": self.unfinished,
        }


@dataclass(frozen=True)
class Attack:
    """How long and how hard: ``slots`` concurrent callers spread over ``clients``
    connections, each calling in a loop until ``duration``, ``max_calls`` or ``stop``."""

    target: str
    clients: int = 4
    duration: float = 5.0
    max_calls: int = 100_000
    stop: threading.Event | None = None
    admin_token: str = ""
    # Set once the callers are launched (the payloads of some take a moment to build).
    started: threading.Event = field(default_factory=threading.Event)

    def stopping(self, end: float) -> bool:
        return time.monotonic() >= end or (self.stop is not None and self.stop.is_set())


def _identity(data: bytes) -> bytes:
    return data


class _Calls:
    """The raw callables of one connection: requests and answers as bytes."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.watch = channel.unary_stream(
            HEALTH_WATCH,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )

    def unary(self, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
        return self.channel.unary_unary(
            method, request_serializer=_identity, response_deserializer=_identity
        )


# One call of an attack: returns the status name and an anomaly ("" if none).
Step = Callable[[_Calls, int], Awaitable[tuple[str, str]]]


async def _unary(
    calls: _Calls,
    method: str,
    payload: bytes,
    metadata: tuple[tuple[str, str], ...] = (),
    timeout: float = CALL_TIMEOUT,
) -> tuple[str, bytes]:
    try:
        answer = await calls.unary(method)(payload, timeout=timeout, metadata=metadata)
    except grpc.aio.AioRpcError as error:
        return error.code().name, b""
    return "OK", answer


async def _drive(attack: Attack, name: str, slots: int, step: Step) -> AbuseReport:
    report = AbuseReport(name, attack.clients)
    options = [
        ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per client
        ("grpc.max_send_message_length", 64 * MIB),
        ("grpc.max_receive_message_length", 64 * MIB),
    ]
    channels = [
        grpc.aio.insecure_channel(attack.target, options=options) for _ in range(attack.clients)
    ]
    connections = [_Calls(c) for c in channels]
    budget = [attack.max_calls]
    begin = time.monotonic()
    end = begin + attack.duration

    async def caller(slot: int) -> None:
        calls = connections[slot % len(connections)]
        n = slot
        while not attack.stopping(end) and budget[0] > 0:
            budget[0] -= 1
            status, anomaly = await step(calls, n)
            report.statuses[status] += 1
            if anomaly:
                report.anomalies[anomaly] += 1
            n += slots

    tasks = [asyncio.ensure_future(caller(i)) for i in range(slots)]
    attack.started.set()
    try:
        while not attack.stopping(end) and not all(t.done() for t in tasks):
            await asyncio.sleep(0.05)
        # Callers between two calls stop by themselves; the calls still waiting for an
        # answer are cancelled (an attacker who stops does not wait for the server).
        settle = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < settle and not all(t.done() for t in tasks):
            await asyncio.sleep(0.02)
        report.unfinished = sum(not t.done() for t in tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close(grace=None)
    report.seconds = time.monotonic() - begin
    return report


# -- 1. Health Watch churn: open, read the first answer, cancel, in a loop -----------------


def watch_churn(attack: Attack) -> AbuseReport:
    async def step(calls: _Calls, n: int) -> tuple[str, str]:
        stream = calls.watch(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        try:
            await stream.read()
            return "OK", ""
        except grpc.aio.AioRpcError as error:
            return error.code().name, ""
        finally:
            stream.cancel()

    return _run(attack, "health watch churn", attack.clients, step)


# -- 2. Idle Watch streams: hold about 600 open, doing nothing ------------------------------


def idle_watches(attack: Attack, streams: int = 600) -> AbuseReport:
    end = time.monotonic() + attack.duration

    async def step(calls: _Calls, n: int) -> tuple[str, str]:
        remaining = max(end - time.monotonic(), 0.1)
        stream = calls.watch(health_pb2.HealthCheckRequest(), timeout=remaining + 1)
        try:
            await stream.read()
            while not attack.stopping(end):  # held open, unread
                await asyncio.sleep(0.1)
            return "OK", ""
        except grpc.aio.AioRpcError as error:
            await asyncio.sleep(0.1)  # refused: try again a little later
            return error.code().name, ""
        finally:
            stream.cancel()

    return _run(attack, f"{streams} idle health watches", streams, step)


# -- 3. Waiters on a sequence number that will never come ----------------------------------


def unreachable_min_seq(attack: Attack, waiters: int = 200) -> AbuseReport:
    payload = ranking_pb2.TopRequest(limit=20, min_seq=MAX_U64).SerializeToString()

    async def step(calls: _Calls, n: int) -> tuple[str, str]:
        status, _ = await _unary(calls, TOP, payload)
        return status, ""

    return _run(attack, f"{waiters} Top waiting for min_seq 2^64-1", waiters, step)


# -- 4. Oversized and cut-short requests, sent as raw bytes --------------------------------


def _repeated(tag: int, items: list[bytes]) -> bytes:
    """Length-delimited field ``tag`` once per item (each item shorter than 128 bytes)."""
    key = bytes([tag << 3 | 2])
    return b"".join(key + bytes([len(i)]) + i for i in items)


def oversized_payloads(limit: int = 4 * MIB) -> list[tuple[str, str, bytes]]:
    """(label, method, bytes): a GetProductStats of a million short ids (just under
    ``limit``), the same cut short by one byte, and a Rank of about 280,000 candidates
    filling ``limit`` cut short by one byte (a truncated length-delimited field)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    short_ids = [f"{a}{b}".encode() for a in alphabet for b in alphabet]
    count = min(1_000_000, (limit - 16) // 4)
    stats = _repeated(1, [short_ids[i % len(short_ids)] for i in range(count)])
    # product_id (field 1, 2 bytes), then relevance (field 2, the double 1.5 as fixed64).
    candidate = [b"\x0a\x02" + i + b"\x11" + struct.pack("<d", 1.5) for i in short_ids]
    rank = _repeated(1, candidate)
    rank = rank * (limit // len(rank))
    return [
        ("stats 1M ids", STATS, stats),
        ("stats cut by 1 byte", STATS, stats[:-1]),
        ("rank cut short", RANK, rank[:-1]),
    ]


def oversized_requests(attack: Attack) -> AbuseReport:
    payloads = oversized_payloads()

    async def step(calls: _Calls, n: int) -> tuple[str, str]:
        _, method, payload = payloads[n % len(payloads)]
        status, _ = await _unary(calls, method, payload)
        return status, ""

    return _run(attack, "4 MiB and cut-short requests", attack.clients, step)


# -- 5. A flood of 1,000 concurrent callers on Rank and SubmitRating -----------------------


def rank_payload(size: int = 100, prefix: str = "syn-") -> bytes:
    """A Rank of ``size`` candidates ``<prefix>0``, ``<prefix>1``..., relevances 1 to 7."""
    candidates = [
        ranking_pb2.Candidate(product_id=f"{prefix}{i}", relevance=1.0 + i % 7) for i in range(size)
    ]
    return bytes(ranking_pb2.RankRequest(candidates=candidates).SerializeToString())


def flood(attack: Attack, callers: int = 1000) -> AbuseReport:
    rank = rank_payload()

    async def step(calls: _Calls, n: int) -> tuple[str, str]:
        if n % 2:
            rating = feedback_pb2.SubmitRatingRequest(
                event_id=f"flood-{uuid.uuid4().hex}",
                product_id=f"syn-{n % 1000}",
                user_id=f"flood-{n}",
                stars=1 + n % 5,
            )
            status, _ = await _unary(calls, SUBMIT_RATING, rating.SerializeToString())
        else:
            status, _ = await _unary(calls, RANK, rank)
        return status, ""

    return _run(attack, f"flood of {callers} Rank/SubmitRating callers", callers, step)


def heavy_ranks(attack: Attack, callers: int = 200, size: int = 5000) -> AbuseReport:
    """Valid Rank calls of the most candidates allowed, as many at once as the server lets
    a connection have: each costs a thousand times a shop's search in CPU."""
    rank = rank_payload(size)

    async def step(calls: _Calls, n: int) -> tuple[str, str]:
        status, _ = await _unary(calls, RANK, rank)
        return status, ""

    return _run(attack, f"{callers} callers of Rank with {size} candidates", callers, step)


# -- 6. Huge finite relevances -------------------------------------------------------------


def huge_relevances(attack: Attack) -> AbuseReport:
    request = ranking_pb2.RankRequest(
        candidates=[
            ranking_pb2.Candidate(product_id="huge-high", relevance=1e308),
            ranking_pb2.Candidate(product_id="huge-low", relevance=-1e308),
            ranking_pb2.Candidate(product_id="huge-middle", relevance=0.0),
        ]
    ).SerializeToString()

    async def step(calls: _Calls, n: int) -> tuple[str, str]:
        status, answer = await _unary(calls, RANK, request)
        if status != "OK":
            return status, ""
        results = ranking_pb2.RankResponse.FromString(answer).results
        if any(not math.isfinite(r.score) for r in results):
            return status, "non-finite score"
        if results and results[0].product_id != "huge-high":
            return status, "huge-high not ranked first"
        return status, ""

    return _run(attack, "relevances of ±1e308", attack.clients, step)


# -- 7. Weights TOML bombs through the admin RPCs ------------------------------------------


def toml_bombs(deep: int = 500, dotted_key_bytes: int = 40_000) -> list[str]:
    """Arrays nested ``deep`` levels, and a dotted key ``a.a.a…`` of about that many bytes."""
    nested = "x = " + "[" * deep + "]" * deep + "\n"
    dotted = ".".join(["a"] * (dotted_key_bytes // 2)) + " = 1\n"
    return [nested, dotted]


def weights_toml_bombs(attack: Attack, dotted_key_bytes: int = 40_000) -> AbuseReport:
    bombs = toml_bombs(dotted_key_bytes=dotted_key_bytes)
    metadata = (("authorization", f"Bearer {attack.admin_token}"),)
    requests = [
        (RELOAD_WEIGHTS, admin_pb2.ReloadWeightsRequest(toml=bomb, actor="abuse")) for bomb in bombs
    ] + [
        (PREVIEW_WEIGHTS, admin_pb2.PreviewWeightsRequest(toml=bomb, categories=[""]))
        for bomb in bombs
    ]

    async def step(calls: _Calls, n: int) -> tuple[str, str]:
        method, request = requests[n % len(requests)]
        # A patient attacker (waits for each answer): a bomb the server is still parsing
        # after the caller gave up would pile up, up to 1.3 GB of memory each.
        payload = request.SerializeToString()
        status, _ = await _unary(calls, method, payload, metadata, timeout=PATIENT_TIMEOUT)
        return status, ""

    return _run(attack, "weights TOML bombs (admin)", attack.clients, step)


def _run(attack: Attack, name: str, slots: int, step: Step) -> AbuseReport:
    return asyncio.run(_drive(attack, name, slots, step))


@dataclass(frozen=True)
class Scenario:
    key: str
    finding: int
    run: Callable[[Attack], AbuseReport]
    # REVIEWRANK_* variables of the server attacked (none: the defaults).
    settings: dict[str, str] | None = None


# The health churn last: on a server that deadlocks under it, nothing after it would run.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("idle-watches", 2, idle_watches),
    Scenario("min-seq-waiters", 3, unreachable_min_seq),
    Scenario("oversized", 4, oversized_requests),
    Scenario("flood", 5, flood),
    # The same against a server allowing each connection 8 calls at once (32 by default).
    Scenario("flood-8-streams", 5, flood, {"REVIEWRANK_MAX_STREAMS_PER_CONNECTION": "8"}),
    Scenario("heavy-ranks", 5, heavy_ranks),
    Scenario("huge-relevance", 6, huge_relevances),
    Scenario("toml-bombs", 7, weights_toml_bombs),
    Scenario("watch-churn", 1, watch_churn),
)


def scenario(key: str) -> Scenario:
    return next(s for s in SCENARIOS if s.key == key)
