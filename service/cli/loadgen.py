"""A ghz-like load driver: grpc.aio clients in several processes, closed or open loop.

Requests are built from JSON (protobuf JSON mapping) per method. A template may use
``{{n}}`` (the request's number, unique across processes) and ``{{uuid}}``: those are
substituted per request; templates without them are serialized once. Several
templates are used in turn, which is how candidate lists vary between calls.

Latency is measured per call from send to answer (perf_counter_ns); the summary gives
count, errors by status code, requests per second and min/mean/p50/p90/p95/p99/max.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
import numpy.typing as npt

_MS = 1e6  # nanoseconds per millisecond


@dataclass(frozen=True)
class LoadSpec:
    target: str
    method: str  # "pkg.Service/Method" or "/pkg.Service/Method"
    templates: tuple[str, ...]  # JSON request bodies
    concurrency: int = 50
    processes: int = 1
    # TCP connections per client process (ghz --connections), the calls spread over them
    # in turn: a server of several processes sharing a port (SO_REUSEPORT) is handed
    # connections, not calls, so a single connection would load a single process.
    connections: int = 1
    duration: float | None = 10.0  # seconds; or None with `total`
    total: int | None = None  # requests in all
    rps: float | None = None  # open loop at this rate (all processes together); None = closed
    timeout: float = 20.0
    cpus: tuple[int, ...] | None = None  # pin the client processes to these CPUs
    metadata: tuple[tuple[str, str], ...] = ()
    warmup: float = 0.0  # seconds of calls before measuring

    @property
    def full_method(self) -> str:
        return self.method if self.method.startswith("/") else "/" + self.method


@dataclass
class LoadReport:
    method: str
    count: int
    duration: float
    errors: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    concurrency: int = 0
    processes: int = 0
    connections: int = 0  # per process
    target_rps: float | None = None

    @property
    def rps(self) -> float:
        return self.count / self.duration if self.duration > 0 else 0.0

    @property
    def ok(self) -> int:
        return self.count - sum(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rps"] = self.rps
        return data

    def summary(self) -> str:
        lat = self.latency_ms
        lines = [
            "Summary:",
            f"  Method:       {self.method}",
            f"  Count:        {self.count}",
            f"  Total:        {self.duration:.2f} s",
            f"  Slowest:      {lat.get('max', 0):.2f} ms",
            f"  Fastest:      {lat.get('min', 0):.2f} ms",
            f"  Average:      {lat.get('mean', 0):.2f} ms",
            f"  Requests/sec: {self.rps:.2f}",
            "",
            "Latency distribution:",
        ]
        lines += [f"  {p} % in {lat.get(f'p{p}', 0):.2f} ms" for p in (50, 90, 95, 99)]
        lines += ["", "Status code distribution:"]
        lines.append(f"  [OK]   {self.ok} responses")
        lines += [f"  [{code}]   {n} responses" for code, n in sorted(self.errors.items())]
        return "\n".join(lines)


def _message_class(full_method: str, request: bool = True) -> Any:
    """The request (or response) class of a method of a service in reviewrank.v1 or health."""
    from google.protobuf import descriptor_pool, message_factory

    import reviewrank.v1.admin_pb2
    import reviewrank.v1.bench_pb2
    import reviewrank.v1.feedback_pb2
    import reviewrank.v1.ranking_pb2  # noqa: F401  (registers the descriptors)

    service_name, _, method_name = full_method.strip("/").partition("/")
    service = descriptor_pool.Default().FindServiceByName(service_name)
    method = service.methods_by_name[method_name]
    descriptor = method.input_type if request else method.output_type
    return message_factory.GetMessageClass(descriptor)


def request_problem(full_method: str, templates: Sequence[str]) -> str | None:
    """What is wrong with a method name or a request template, in a line (None: nothing):
    checked before any call, so that a typo is one line, not a traceback per process."""
    from google.protobuf import json_format

    try:
        cls = _message_class(full_method)
    except KeyError:  # (no such service, or no such method, "" included)
        return f"--call {full_method!r}: no such service or method (want e.g. {_EXAMPLE_CALL})"
    for i, template in enumerate(templates):
        text = template.replace("{{n}}", "1").replace("{{uuid}}", uuid.uuid4().hex)
        try:
            json_format.Parse(text, cls())
        except json_format.ParseError as exc:
            which = f"request {i + 1}" if len(templates) > 1 else "the request"
            reason = " ".join(str(exc).split())  # (protobuf's messages may span lines)
            return f"{which} is not a valid {cls.DESCRIPTOR.full_name}: {reason}"
    return None


_EXAMPLE_CALL = "reviewrank.v1.RankingService/Rank"


def _with_uuid_slot(template: str, cls: Any) -> tuple[bytes, bytes] | None:
    """For a template whose only placeholder is ``{{uuid}}``: its serialization with a
    random stand-in for the uuid, and the stand-in (None when that cannot be done).

    A uuid is 32 hex digits, as long as the stand-in, so that swapping the bytes of one
    for the other leaves every length prefix right: the request is then serialized once,
    not parsed from JSON again for every call."""
    from google.protobuf import json_format

    if template.replace("{{uuid}}", "").count("{{") or "{{uuid}}" not in template:
        return None
    slot = uuid.uuid4().hex
    try:
        encoded = bytes(
            json_format.Parse(template.replace("{{uuid}}", slot), cls()).SerializeToString()
        )
    except json_format.ParseError:
        return None
    if encoded.count(slot.encode()) != template.count("{{uuid}}"):
        return None  # the uuid went into something other than a string field as is
    return encoded, slot.encode()


def _encoder(full_method: str, templates: Sequence[str]) -> Any:
    """A function n -> serialized request, cycling through the templates."""
    from google.protobuf import json_format

    cls = _message_class(full_method)
    fixed: list[bytes | None] = []
    slotted: list[tuple[bytes, bytes] | None] = []
    for template in templates:
        slotted.append(_with_uuid_slot(template, cls))
        if "{{" in template:
            fixed.append(None)
        else:
            fixed.append(json_format.Parse(template, cls()).SerializeToString())

    def encode(n: int) -> bytes:
        i = n % len(templates)
        done = fixed[i]
        if done is not None:
            return done
        slot = slotted[i]
        if slot is not None:
            return slot[0].replace(slot[1], uuid.uuid4().hex.encode())
        text = templates[i].replace("{{n}}", str(n))
        if "{{uuid}}" in text:
            text = text.replace("{{uuid}}", uuid.uuid4().hex)
        return bytes(json_format.Parse(text, cls()).SerializeToString())

    return encode


async def _drive(
    spec: LoadSpec, index: int, share: int, start_at: float
) -> tuple[npt.NDArray[np.int64], Counter[str], float, float]:
    import grpc

    encode = _encoder(spec.full_method, spec.templates)
    options: list[tuple[str, int]] = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    if spec.connections > 1:  # else channels to one target share one connection
        options.append(("grpc.use_local_subchannel_pool", 1))
    latencies: list[int] = []
    errors: Counter[str] = Counter()
    async with contextlib.AsyncExitStack() as channels:
        calls = []
        for _ in range(spec.connections):
            channel = await channels.enter_async_context(
                grpc.aio.insecure_channel(spec.target, options=options)
            )
            await channel.channel_ready()
            calls.append(channel.unary_unary(spec.full_method))
        counter = itertools.count(index, spec.processes)  # unique across processes
        per_process_rate = None if spec.rps is None else spec.rps / spec.processes
        while time.time() < start_at:  # all processes start together
            await asyncio.sleep(0.001)
        begin = time.perf_counter()
        measure_from = begin + spec.warmup
        end = None if spec.duration is None else measure_from + spec.duration
        budget = [share]

        slots = max(
            spec.concurrency // spec.processes
            + (1 if index < spec.concurrency % spec.processes else 0),
            1,
        )
        # Open loop: each slot sends every `interval` seconds, the slots evenly staggered.
        interval = None if per_process_rate is None else slots / per_process_rate

        async def worker(slot: int) -> None:
            call = calls[slot % len(calls)]
            due = time.perf_counter() + (0 if interval is None else interval * slot / slots)
            while True:
                now = time.perf_counter()
                if end is not None and now >= end:
                    return
                if spec.total is not None:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                if interval is not None:
                    if due > now:
                        await asyncio.sleep(due - now)
                    due += interval
                payload = encode(next(counter))
                sent = time.perf_counter_ns()
                try:
                    await call(payload, timeout=spec.timeout, metadata=spec.metadata or None)
                    code = ""
                except grpc.aio.AioRpcError as error:
                    code = error.code().name
                if sent / 1e9 >= measure_from:
                    latencies.append(time.perf_counter_ns() - sent)
                    if code:
                        errors[code] += 1

        await asyncio.gather(*(worker(i) for i in range(slots)))
        finished = time.perf_counter()
    return np.asarray(latencies, dtype=np.int64), errors, measure_from, finished


def _process(spec: LoadSpec, index: int, share: int, start_at: float) -> tuple[Any, ...]:
    if spec.cpus:
        os.sched_setaffinity(0, set(spec.cpus))
    latencies, errors, began, finished = asyncio.run(_drive(spec, index, share, start_at))
    return latencies, dict(errors), began, finished


def run_load(spec: LoadSpec) -> LoadReport:
    """Runs the load in ``spec.processes`` client processes and merges what they measured."""
    if spec.duration is None and spec.total is None:
        raise ValueError("give a duration or a total")
    if spec.connections < 1:
        raise ValueError("connections must be at least 1")
    shares = [(spec.total or 0) // spec.processes] * spec.processes
    for i in range((spec.total or 0) % spec.processes):
        shares[i] += 1
    start_at = time.time() + 1.0 + 0.3 * spec.processes  # time for the processes to start
    with ProcessPoolExecutor(spec.processes, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_process, spec, i, shares[i], start_at) for i in range(spec.processes)
        ]
        parts = [f.result() for f in futures]
    latencies = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part[1])
    began = min(p[2] for p in parts)
    finished = max(p[3] for p in parts)
    report = LoadReport(
        method=spec.full_method,
        count=int(latencies.size),
        duration=finished - began,
        errors=dict(errors),
        concurrency=spec.concurrency,
        processes=spec.processes,
        connections=spec.connections,
        target_rps=spec.rps,
    )
    if latencies.size:
        ms = latencies / _MS
        report.latency_ms = {
            "min": float(ms.min()),
            "mean": float(ms.mean()),
            "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)),
            "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
        }
    return report


def write_json(report: LoadReport, path: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(report.to_json(), out, indent=2)
