"""Imports the shipped reviews data set as feedback events.

Each review becomes a star rating and a like (recommended) or dislike (not
recommended) by the review's reviewer. The events go through exactly what a
SubmitBatch call goes through: a SubmitBatchRequest, the same validation and
conversion, and the application's group-committed write; with ``--server``
they are sent to a running server over gRPC instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TextIO

from google.protobuf.timestamp_pb2 import Timestamp
from reviewrank.v1 import feedback_pb2

from service.cli.dataset import Review
from service.domain.values import Outcome


def review_events(review: Review) -> tuple[feedback_pb2.FeedbackEvent, feedback_pb2.FeedbackEvent]:
    occurred = Timestamp(
        seconds=review.occurred_at_us // 1_000_000, nanos=(review.occurred_at_us % 1_000_000) * 1000
    )
    rating = feedback_pb2.SubmitRatingRequest(
        event_id=f"wcr-{review.row}-rating",
        product_id=review.product_id,
        user_id=review.user_id,
        stars=review.stars,
        occurred_at=occurred,
        category=review.category,
    )
    like = feedback_pb2.SubmitLikeRequest(
        event_id=f"wcr-{review.row}-like",
        product_id=review.product_id,
        user_id=review.user_id,
        value=feedback_pb2.LIKE if review.recommended else feedback_pb2.DISLIKE,
        occurred_at=occurred,
    )
    return feedback_pb2.FeedbackEvent(rating=rating), feedback_pb2.FeedbackEvent(like=like)


def batches(
    reviews: Iterable[Review], batch_size: int
) -> Iterator[feedback_pb2.SubmitBatchRequest]:
    """SubmitBatchRequests of at most batch_size events (reviews are never split)."""
    per_batch = max(1, batch_size // 2)
    iterator = iter(reviews)
    while chunk := list(islice(iterator, per_batch)):
        request = feedback_pb2.SubmitBatchRequest()
        for review in chunk:
            request.events.extend(review_events(review))
        yield request


@dataclass
class ImportReport:
    reviews: int = 0
    events: int = 0
    applied: int = 0
    duplicate: int = 0
    superseded: int = 0
    seconds: float = 0.0

    def count(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.events += 1
            if outcome is Outcome.APPLIED:
                self.applied += 1
            elif outcome is Outcome.DUPLICATE:
                self.duplicate += 1
            else:
                self.superseded += 1


class Progress:
    """A one-line progress bar on a terminal (plain periodic lines otherwise)."""

    def __init__(self, total: int, out: TextIO = sys.stderr, width: int = 40) -> None:
        self.total, self.out, self.width = max(total, 1), out, width
        self._tty = out.isatty()
        self._last_percent = -1

    def update(self, done: int) -> None:
        percent = min(100, done * 100 // self.total)
        if self._tty:
            filled = self.width * percent // 100
            bar = "#" * filled + "-" * (self.width - filled)
            self.out.write(f"\r[{bar}] {percent:3d}% {done}/{self.total}")
            self.out.flush()
        elif percent // 25 != self._last_percent // 25 or percent == 100:
            self.out.write(f"imported {done}/{self.total} ({percent}%)\n")
        self._last_percent = percent

    def close(self) -> None:
        if self._tty:
            self.out.write("\n")


def run_import(
    reviews: list[Review],
    submit: Callable[[feedback_pb2.SubmitBatchRequest], Iterable[Outcome]],
    batch_size: int,
    progress: Progress | None = None,
) -> ImportReport:
    report = ImportReport(reviews=len(reviews))
    started = time.perf_counter()
    done = 0
    for request in batches(reviews, batch_size):
        report.count(submit(request))
        done += len(request.events) // 2
        if progress:
            progress.update(done)
    if progress:
        progress.close()
    report.seconds = time.perf_counter() - started
    return report
