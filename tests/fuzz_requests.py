"""Coverage-guided fuzzing (atheris/libFuzzer) of every method of a real server.

Run by tests/api/test_fuzz.py as ``python -m tests.fuzz_requests`` with FUZZ_DIR (work
directory) and FUZZ_RUNS (inputs to try). The server runs in this process, on a
loopback port, with the service package instrumented, so libFuzzer is guided by
the server's own code paths (decoding, validation, storage). Each input picks a
method by its first byte, then either sends the rest as the raw request bytes or,
when the second byte is odd, builds a well-formed message with extreme field values
from it; calls carry the admin token unless the second byte says otherwise. Any
INTERNAL or UNKNOWN status is a crash; every 250 inputs and at the end the server
must still be healthy and answer a valid call. A summary is written to
FUZZ_DIR/summary.json.
"""

from __future__ import annotations

import collections
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["service"]):
    import grpc
    from google.protobuf import message_factory
    from google.protobuf.descriptor import FieldDescriptor
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from reviewrank.service.api.server import FEEDBACK_SERVICE, create_server
    from reviewrank.service.app.settings import Settings
    from reviewrank.service.cli.dataset import DATA_DIR
    from reviewrank.service.ops.logs import configure
    from reviewrank.v1 import feedback_pb2, feedback_pb2_grpc, ranking_pb2
    from tests.methods import ADMIN_TOKEN, AUTH, Method, all_methods

FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
STRUCTURED_DEPTH = 4


def seeds(methods: list[Method]) -> dict[str, bytes]:
    """A valid request for each method: where mutation starts."""
    rating = feedback_pb2.SubmitRatingRequest(
        event_id="e-1", product_id="1078", user_id="u-1", stars=4, category="Dresses"
    )
    rating.occurred_at.seconds = 1_700_000_000
    like = feedback_pb2.SubmitLikeRequest(
        event_id="e-2", product_id="1078", user_id="u-1", value=feedback_pb2.LIKE
    )
    share = feedback_pb2.SubmitShareRequest(
        event_id="e-3", product_id="1078", user_id="u-2", channel="instagram"
    )
    comment = feedback_pb2.SubmitCommentRequest(
        event_id="e-4", product_id="1078", user_id="u-3", text="Lovely fit!", channel="app"
    )
    poll_vote = feedback_pb2.SubmitPollVoteRequest(
        event_id="e-5", poll_id="outfits", user_id="u-4", shown=["1078", "834"], chosen="834"
    )
    examples: dict[str, Any] = {
        "SubmitRating": rating,
        "SubmitPollVote": poll_vote,
        "SubmitComment": comment,
        "SubmitLike": like,
        "SubmitShare": share,
        "SubmitBatch": feedback_pb2.SubmitBatchRequest(
            events=[
                feedback_pb2.FeedbackEvent(rating=rating),
                feedback_pb2.FeedbackEvent(like=like),
                feedback_pb2.FeedbackEvent(share=share),
                feedback_pb2.FeedbackEvent(comment=comment),
                feedback_pb2.FeedbackEvent(poll_vote=poll_vote),
            ]
        ),
        "ForgetUser": feedback_pb2.ForgetUserRequest(user_id="u-1"),
        "Rank": ranking_pb2.RankRequest(
            candidates=[
                ranking_pb2.Candidate(product_id="1078", relevance=2.0),
                ranking_pb2.Candidate(product_id="834", relevance=1.0),
            ],
            explain=True,
        ),
        "Top": ranking_pb2.TopRequest(category="Dresses", limit=5),
        "GetProductStats": ranking_pb2.GetProductStatsRequest(product_ids=["1078", "834"]),
        "Check": health_pb2.HealthCheckRequest(service=FEEDBACK_SERVICE),
    }
    out = {}
    for index, method in enumerate(methods):
        name = method.path.rsplit("/", 1)[1]
        example = examples.get(name)
        body = example.SerializeToString() if example is not None else b""
        out[f"seed-{index:02d}-{name}"] = bytes([index, 0]) + body
    return out


def build(provider: atheris.FuzzedDataProvider, descriptor: Any, depth: int = 0) -> Any:
    """A well-formed message whose field values come from the fuzzer (often extreme)."""
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not provider.remaining_bytes() or not provider.ConsumeBool():
            continue
        count = 1
        if field.is_repeated:
            count = provider.ConsumeIntInRange(0, 8)
            if provider.ConsumeIntInRange(0, 31) == 0:
                count = provider.ConsumeIntInRange(990, 1010)  # around the batch limits
        for _ in range(count):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if depth >= STRUCTURED_DEPTH:
                    break
                value = build(provider, field.message_type, depth + 1)
                if field.message_type.GetOptions().map_entry:  # a map: one entry
                    getattr(message, field.name)[value.key] = value.value
                elif field.is_repeated:
                    getattr(message, field.name).add().CopyFrom(value)
                else:
                    getattr(message, field.name).CopyFrom(value)
                continue
            value = scalar(provider, field)
            if value is None:
                continue
            if field.is_repeated:
                getattr(message, field.name).append(value)
            else:
                setattr(message, field.name, value)
    return message


def scalar(provider: atheris.FuzzedDataProvider, field: Any) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        length = provider.ConsumeIntInRange(0, 200)
        if provider.ConsumeIntInRange(0, 63) == 0:
            length = 200_000  # far over every length limit
        return provider.ConsumeUnicodeNoSurrogates(length)
    if kind == FieldDescriptor.TYPE_BYTES:
        return provider.ConsumeBytes(provider.ConsumeIntInRange(0, 64))
    if kind == FieldDescriptor.TYPE_BOOL:
        return provider.ConsumeBool()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        special = provider.ConsumeIntInRange(0, 7)
        return (
            [math.nan, math.inf, -math.inf, 0.0, -0.0][special]
            if special < 5
            else (
                provider.ConsumeRegularFloat()
                if kind == FieldDescriptor.TYPE_DOUBLE
                else provider.ConsumeFloatInRange(-3e38, 3e38)
            )
        )
    if kind == FieldDescriptor.TYPE_ENUM:
        return provider.ConsumeIntInRange(-3, 10)
    if kind in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
    ):
        return provider.ConsumeIntInRange(-(2**31), 2**31 - 1)
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return provider.ConsumeIntInRange(0, 2**32 - 1)
    if kind in (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
    ):
        return provider.ConsumeIntInRange(-(2**63), 2**63 - 1)
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return provider.ConsumeIntInRange(0, 2**64 - 1)
    return None


def main() -> None:
    workdir = Path(os.environ["FUZZ_DIR"])
    runs = int(os.environ.get("FUZZ_RUNS", "3000"))
    configure("json", "critical")
    settings = Settings(
        address="127.0.0.1:0",
        database=workdir / "fuzz.db",
        weights=DATA_DIR / "weights.toml",
        log_format="json",
        log_level="critical",
        grace_seconds=1.0,
        admin_token=ADMIN_TOKEN,
    )
    server, port = create_server(settings)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    methods = all_methods()
    corpus = workdir / "corpus"
    corpus.mkdir(exist_ok=True)
    for name, data in seeds(methods).items():
        (corpus / name).write_bytes(data)
    codes: collections.Counter[str] = collections.Counter()
    state = {"runs": 0, "structured": 0, "health_checks": 0}
    started = time.monotonic()

    def check_healthy() -> None:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", FEEDBACK_SERVICE):
            status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert status.status == health_pb2.HealthCheckResponse.SERVING, service
        feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)
        probe = feedback_pb2.SubmitRatingRequest(
            event_id=f"health-{state['health_checks']}", product_id="p", user_id="u", stars=3
        )
        answer = feedback.SubmitRating(probe, timeout=10)
        assert answer.outcome in (feedback_pb2.APPLIED, feedback_pb2.SUPERSEDED), answer
        state["health_checks"] += 1

    def finish() -> None:
        check_healthy()
        summary = {
            "runs": state["runs"],
            "structured": state["structured"],
            "raw": state["runs"] - state["structured"],
            "health_checks": state["health_checks"],
            "codes": dict(codes),
            "methods": len(methods),
            "seconds": round(time.monotonic() - started, 1),
            "aggregate_mismatches": server.app.store.aggregate_mismatches(),
        }
        (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
        channel.close()
        server.stop(grace=1.0)
        sys.stdout.flush()
        os._exit(0)  # libFuzzer would go on; the run count is ours

    def test_one_input(data: bytes) -> None:
        state["runs"] += 1
        if len(data) >= 2:
            method = methods[data[0] % len(methods)]
            if data[1] % 2:
                state["structured"] += 1
                provider = atheris.FuzzedDataProvider(data[2:])
                payload = build(provider, method.request).SerializeToString()
            else:
                payload = data[2:]
            timeout = 0.05 if method.server_streaming else 10
            metadata = () if data[1] & 6 == 6 else AUTH  # mostly with the admin token
            try:
                method.call_raw(channel, payload, timeout=timeout, metadata=metadata)
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
                if code in FORBIDDEN:
                    raise AssertionError(
                        f"{method.path} answered {code.name} ({error.details()}) "
                        f"to {payload[:200]!r}"
                    ) from None
            codes[code.name] += 1
        if state["runs"] % 250 == 0:
            check_healthy()
        if state["runs"] >= runs:
            finish()

    seed = os.environ.get("FUZZ_SEED", "1")
    atheris.Setup(
        [
            sys.argv[0],
            f"-seed={seed}",
            "-max_len=4096",
            "-len_control=0",
            "-timeout=30",
            "-rss_limit_mb=4096",
            f"-artifact_prefix={workdir}/",
            str(corpus),
        ],
        test_one_input,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main()
