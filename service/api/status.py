"""The one place where domain exceptions become gRPC statuses."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from reviewrank.service.domain.errors import (
    DeadlineExpired,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    Overloaded,
    ReviewrankError,
    ShuttingDown,
    StorageUnavailable,
    Unauthenticated,
    VersionConflict,
)

STATUS_CODES: dict[type[ReviewrankError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DeadlineExpired: grpc.StatusCode.DEADLINE_EXCEEDED,
    VersionConflict: grpc.StatusCode.ABORTED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
}


def status_code(error: ReviewrankError) -> grpc.StatusCode:
    for kind in type(error).__mro__:
        code = STATUS_CODES.get(kind)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


# A status travels in the response's trailers, which clients cap (gRPC's default: 16 KiB
# in all): 1,000 refused events of a batch took 243 kB and reached the caller as
# RESOURCE_EXHAUSTED. So at most this many violations are sent (the first; a caller
# fixes them and resends), this many named in the message, each part cut this short.
MAX_SENT_VIOLATIONS = 20
MAX_NAMED_VIOLATIONS = 5
MAX_PART_CHARACTERS = 240


def _cut(text: str) -> str:
    return text if len(text) <= MAX_PART_CHARACTERS else text[: MAX_PART_CHARACTERS - 1] + "…"


def _message(error: InvalidArgument) -> str:
    """The message of a refusal: its own, or its first violations and how many more."""
    violations = error.violations
    if len(violations) <= MAX_NAMED_VIOLATIONS:
        return (
            _cut(str(error))
            if len(violations) <= 1
            else "; ".join(f"{_cut(f)}: {_cut(d)}" for f, d in violations)
        )
    named = "; ".join(f"{_cut(f)}: {_cut(d)}" for f, d in violations[:MAX_NAMED_VIOLATIONS])
    sent = min(len(violations), MAX_SENT_VIOLATIONS)
    return (
        f"{named}; and {len(violations) - MAX_NAMED_VIOLATIONS} more"
        f" ({len(violations)} in all, the first {sent} in the details)"
    )


def to_status(error: ReviewrankError) -> grpc.Status:
    """A gRPC status with the message and, for InvalidArgument, a google.rpc.BadRequest
    (of the first MAX_SENT_VIOLATIONS violations)."""
    code = status_code(error)
    message = status_pb2.Status(code=code.value[0], message=str(error))
    if isinstance(error, InvalidArgument) and error.violations:
        message.message = _message(error)
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=_cut(f), description=_cut(d))
                    for f, d in error.violations[:MAX_SENT_VIOLATIONS]
                ]
            )
        )
        message.details.append(detail)
    return rpc_status.to_status(message)


INTERNAL_CODE = code_pb2.INTERNAL
