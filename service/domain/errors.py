"""Domain exceptions. They name what went wrong in the service's own terms;
service/api/status.py maps them, in one table, to gRPC status codes."""

from __future__ import annotations

from collections.abc import Iterable


class ReviewrankError(Exception):
    """Base of every error the service reports to its callers."""


class InvalidArgument(ReviewrankError):
    """The request is malformed; ``violations`` holds (field path, description) pairs."""

    def __init__(self, violations: Iterable[tuple[str, str]], message: str = "") -> None:
        self.violations = tuple(violations)
        super().__init__(
            message or "; ".join(f"{f}: {d}" for f, d in self.violations) or "invalid argument"
        )


def too_many_items(maximum: int, count: int | None = None) -> str:
    """The description of a repeated field holding more than ``maximum`` items (``count``,
    or None when reading stopped at the limit)."""
    got = "more were sent" if count is None else f"got {count}"
    return f"must contain at most {maximum} items ({got})"


class NotFound(ReviewrankError):
    """A named thing (e.g. a weights profile) does not exist."""


class StorageUnavailable(ReviewrankError):
    """The store could not commit: nothing was acknowledged."""


class Overloaded(ReviewrankError):
    """Too much work is queued; the caller should back off and retry."""


class DeadlineExpired(ReviewrankError):
    """The caller's deadline passed before the work could start."""


class ShuttingDown(ReviewrankError):
    """The server is stopping and takes no new writes."""


class VersionConflict(ReviewrankError):
    """A conditional change expected another version to be in force (someone else won)."""


class Unauthenticated(ReviewrankError):
    """The call carries no valid credentials (the message never repeats what was sent)."""


class FailedPrecondition(ReviewrankError):
    """The server is not set up for this call (e.g. admin RPCs with no admin token)."""


class OutOfRange(ReviewrankError):
    """A value past what exists (a min_seq beyond every committed write)."""


class StoreError(Exception):
    """A database operation failed. ``fault``: the storage itself is failing (disk full,
    read-only, I/O, a lock held too long, the connection lost), not one write."""

    def __init__(self, message: str, *, fault: bool) -> None:
        super().__init__(message)
        self.fault = fault


class StorageProbeFailed(Exception):
    """The database cannot take a write now (see the message)."""


class AddressInUse(RuntimeError):
    """The listening address cannot be bound (another server has it, or it is not local)."""
