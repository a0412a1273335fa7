"""Imports the shipped reviews data set, or a shop's own rows, as feedback events.

Each review becomes a star rating and a like (recommended) or dislike (not
recommended) by the review's reviewer. The events go through exactly what a
SubmitBatch call goes through: a SubmitBatchRequest, the same validation and
conversion, and the application's group-committed write; with ``--server``
they are sent to a running server over gRPC instead. A shop's rows
(service/cli/shop_data.py) go the same way, in :func:`run_rows`, which maps the
fields a refusal names back to the rows they came from.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TextIO

from google.protobuf.timestamp_pb2 import Timestamp

from reviewrank.service.cli.dataset import Review
from reviewrank.service.cli.shop_data import BadRow, Row
from reviewrank.service.domain.errors import InvalidArgument
from reviewrank.service.domain.values import Outcome
from reviewrank.v1 import feedback_pb2


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


QUIET_SECONDS = 1.0  # no progress lines off a terminal for an import this short


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Progress on stderr with the rate and the time left: a rich progress bar on a
    terminal, else a line at each quarter (for logs; none for a moment's work)."""

    def __init__(
        self,
        total: int,
        out: TextIO = sys.stderr,
        unit: str = "reviews",
        verb: str = "imported",
    ) -> None:
        self.total, self.out = max(total, 1), out
        self.unit, self.verb = unit, verb
        self._last_percent = -1
        self._started = time.monotonic()
        self._done = 0
        self._written = False
        self._bar = _bar(out, verb, unit, self.total) if out.isatty() else None

    def _line(self, done: int, percent: int) -> str:
        elapsed = time.monotonic() - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f"ETA {_clock((self.total - done) / rate)}" if rate and done < self.total else "done"
        return f"{done:,}/{self.total:,} {self.unit} ({percent}%), {rate:,.0f}/s, {left}"

    def update(self, done: int) -> None:
        self._done = done
        if self._bar is not None:
            elapsed = time.monotonic() - self._started
            rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 else ""
            self._bar.update(self._bar.task_ids[0], completed=done, rate=rate)
            return
        percent = min(100, done * 100 // self.total)
        if (
            percent // 25 != self._last_percent // 25
            and percent > 0
            and time.monotonic() - self._started >= QUIET_SECONDS
        ):
            self.out.write(f"{self.verb} {self._line(done, percent)}\n")
            self._written = True
        self._last_percent = percent

    def close(self, finished: bool = True) -> None:
        """Ends the progress: as all done (``finished``), else where it stopped."""
        if self._bar is not None:
            if finished:  # (a file's rows were counted by lines: the total was an estimate)
                total = max(self._done, 1)
                self._bar.update(self._bar.task_ids[0], total=total, completed=self._done)
            self._bar.stop()
        elif not finished:
            return
        elif self._written and self._last_percent < 100:
            self.total = max(self._done, 1)
            self.out.write(f"{self.verb} {self._line(self._done, 100)}\n")


def _bar(out: TextIO, verb: str, unit: str, total: int) -> Any:
    """A started rich progress bar: done of total, percent, rate and time left."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    bar = RichProgress(
        TextColumn(verb),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=Console(file=out),
    )
    bar.add_task(verb, total=total, rate="")
    bar.start()
    return bar


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


# -- a shop's own rows (service/cli/shop_data.py) ---------------------------------------------

# One event's field in a violation: events[3].rating.stars -> (3, "stars").
_EVENT_FIELD = re.compile(
    r"events\[(\d+)\](?:\.(?:rating|like|share|comment|poll_vote))?(?:\.(\w+))?(?:\[\d+\])?"
)
# A field whose row column has another name: a poll vote's product chosen is the row's
# product_id.
_COLUMN_OF = {"chosen": "product_id"}
Problems = tuple[tuple[str, str], ...]
Submit = Callable[[feedback_pb2.SubmitBatchRequest], Sequence[Outcome] | None]
OnRefused = Callable[[int, Problems, Any], None]


class ImportStopped(Exception):
    """The import cannot go on (the server failed, not a row): the message says why."""


def refused_events(error: InvalidArgument, count: int) -> dict[int, Problems]:
    """The events a refusal names, each with its (column, description) pairs; the column of
    a field is its name (``events[3].rating.stars``: ``stars``). A refusal of the request
    as a whole stops the import."""
    refused: dict[int, list[tuple[str, str]]] = {}
    for field, description in error.violations:
        match = _EVENT_FIELD.fullmatch(field)
        if match is None or int(match[1]) >= count:
            raise ImportStopped(f"the batch was refused: {error}")
        column = _COLUMN_OF.get(match[2] or "", match[2] or "")
        refused.setdefault(int(match[1]), []).append((column, description))
    if not refused:
        raise ImportStopped(f"the batch was refused: {error}")
    return {i: tuple(problems) for i, problems in refused.items()}


@dataclass
class RowReport(ImportReport):
    rows: int = 0
    refused: int = 0
    valid: int = 0  # (a dry run: events the server's rules accept)


def run_rows(
    rows: Iterable[Row | BadRow],
    submit: Submit,
    batch_size: int,
    on_refused: OnRefused,
    progress: Progress | None = None,
) -> RowReport:
    """Sends the rows in SubmitBatch requests of at most batch_size events. A row that is no
    event, or an event the batch's refusal names, is refused (on_refused) and the rest of
    its batch sent again: a batch commits all its events or none. ``submit`` returns the
    outcomes, or None when it only checks (a dry run)."""
    report = RowReport()
    started = time.perf_counter()
    pending: list[Row | BadRow] = []

    def flush() -> None:
        """Sends the pending rows; reports the refused ones in the order of their lines."""
        refused = [(row.line, row.problems, row.raw) for row in pending if isinstance(row, BadRow)]
        rows = [row for row in pending if isinstance(row, Row)]
        while rows:
            request = feedback_pb2.SubmitBatchRequest(events=[row.event for row in rows])
            try:
                outcomes = submit(request)
            except InvalidArgument as exc:
                bad = refused_events(exc, len(rows))
                refused.extend((rows[i].line, bad[i], rows[i].raw) for i in bad)
                rows = [row for i, row in enumerate(rows) if i not in bad]
                continue
            if outcomes is None:
                report.valid += len(rows)
            else:
                report.count(outcomes)
            rows = []
        for line, problems, raw in sorted(refused, key=lambda refusal: refusal[0]):
            report.refused += 1
            on_refused(line, problems, raw)
        pending.clear()

    for item in rows:
        report.rows += 1
        pending.append(item)
        if len(pending) >= batch_size:
            flush()
        if progress:
            progress.update(report.rows)
    flush()
    if progress:
        progress.close()
    report.seconds = time.perf_counter() - started
    return report
