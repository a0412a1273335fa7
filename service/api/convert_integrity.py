"""AdminService's manipulation-defence messages (ListBursts, DecideBurst,
ListBurstDecisions) to plain values (validating every field) and back."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from reviewrank.service.api.validation import InputLimits, Violations
from reviewrank.service.app.store import BurstDecision
from reviewrank.service.app.vote_weights import WeighPass
from reviewrank.service.domain.errors import InvalidArgument
from reviewrank.v1 import admin_pb2

LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z, the last a Timestamp holds
BURSTS_LIMIT = 100
BURSTS_MAX_LIMIT = 1000
_KINDS = {
    True: admin_pb2.BURST_DECISION_CONFIRM,
    False: admin_pb2.BURST_DECISION_DISMISS,
}


def _stamp(micros: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def bursts_limit(request: admin_pb2.ListBurstsRequest) -> int:
    """The request's limit (0: BURSTS_LIMIT)."""
    if request.limit > BURSTS_MAX_LIMIT:
        raise InvalidArgument([("limit", f"must be at most {BURSTS_MAX_LIMIT}")])
    return request.limit or BURSTS_LIMIT


def bursts_response(weighed: WeighPass, limit: int, enabled: bool) -> admin_pb2.ListBurstsResponse:
    return admin_pb2.ListBurstsResponse(
        bursts=[
            admin_pb2.Burst(
                product_id=b.product_id,
                start=_stamp(b.start_us),
                end=_stamp(b.end_us),
                votes=b.votes,
                expected=b.expected,
                damping=b.damping,
                dismissed=b.dismissed,
            )
            for b in weighed.bursts[:limit]
        ],
        low_weight_voters=[
            admin_pb2.LowWeightVoter(user_id=v.user_id, votes=v.votes, least_weight=v.least)
            for v in weighed.low_weight[:limit]
        ],
        total_bursts=len(weighed.bursts),
        total_low_weight_voters=weighed.low_weight_total,
        weighed_at=_stamp(int(weighed.at * 1e6)) if weighed.at else None,
        votes_weighed=weighed.votes,
        damped_votes=weighed.damped_votes,
        enabled=enabled,
    )


def _micros(request: admin_pb2.DecideBurstRequest, field: str, problems: Violations) -> int:
    """A timestamp field in microseconds (ListBursts gives whole microseconds)."""
    if not request.HasField(field):
        problems.add(field, "is required: the time ListBursts gave")
        return 0
    stamp: Timestamp = getattr(request, field)
    if not 0 <= stamp.seconds <= LAST_SECOND:
        problems.add(field, "must be from 1970-01-01 to 9999-12-31")
        return 0
    if not 0 <= stamp.nanos < 1_000_000_000 or stamp.nanos % 1000:
        problems.add(field, "nanos must be whole microseconds in [0, 999999000]")
        return 0
    return int(stamp.seconds) * 1_000_000 + int(stamp.nanos) // 1000


def decide_request(
    request: admin_pb2.DecideBurstRequest, limits: InputLimits
) -> tuple[str, int, int, bool]:
    """The burst named (product, first and last vote in µs) and whether it is confirmed."""
    problems = Violations(limits)
    problems.identifier(request.product_id, "product_id")
    start = _micros(request, "start", problems)
    end = _micros(request, "end", problems)
    if request.HasField("start") and request.HasField("end") and end < start:
        problems.add("end", "must not be before start")
    if request.decision not in _KINDS.values():
        problems.add("decision", "must be BURST_DECISION_CONFIRM or BURST_DECISION_DISMISS")
    problems.raise_if_any()
    return request.product_id, start, end, request.decision == admin_pb2.BURST_DECISION_CONFIRM


def _decision(d: BurstDecision) -> admin_pb2.BurstDecision:
    return admin_pb2.BurstDecision(
        product_id=d.product_id,
        start=_stamp(d.start_us),
        end=_stamp(d.end_us),
        decision=_KINDS[d.confirmed],
        actor=d.actor,
        reason=d.reason,
        decided_at=_stamp(d.decided_at_us),
    )


def decide_response(decision: BurstDecision, applied: bool) -> admin_pb2.DecideBurstResponse:
    return admin_pb2.DecideBurstResponse(decision=_decision(decision), applied=applied)


def decisions_response(
    decisions: list[BurstDecision],
) -> admin_pb2.ListBurstDecisionsResponse:
    return admin_pb2.ListBurstDecisionsResponse(decisions=[_decision(d) for d in decisions])
