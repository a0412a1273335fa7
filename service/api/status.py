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


def to_status(error: ReviewrankError) -> grpc.Status:
    """A gRPC status with the message and, for InvalidArgument, a google.rpc.BadRequest."""
    code = status_code(error)
    message = status_pb2.Status(code=code.value[0], message=str(error))
    if isinstance(error, InvalidArgument) and error.violations:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in error.violations
                ]
            )
        )
        message.details.append(detail)
    return rpc_status.to_status(message)


INTERNAL_CODE = code_pb2.INTERNAL
