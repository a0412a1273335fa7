"""Group commit: one thread owns the database connection and commits queued writes together.

Callers enqueue a job (the events of one RPC) and wait on its future. The
writer takes every job waiting (up to a cap on events), applies them in one
transaction, updates the in-memory catalogue, and only then completes the
futures: an acknowledgement always follows a commit. A job whose caller's
deadline has passed before its transaction starts is dropped unapplied.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import structlog

from service.domain import Event, WriteResult
from service.errors import DeadlineExpired, Overloaded, ShuttingDown, StorageUnavailable
from service.store import AppliedGroup, SQLiteStore

log = structlog.get_logger("reviewrank.writer")


@dataclass
class _Job:
    events: Sequence[Event]
    deadline: float | None  # time.monotonic() value
    future: Future[list[WriteResult]] = field(default_factory=Future)


_STOP = object()


class Writer:
    def __init__(
        self,
        store: SQLiteStore,
        on_commit: Callable[[AppliedGroup], None],
        queue_size: int = 10_000,
        group_max_events: int = 5000,
    ) -> None:
        self._store = store
        self._on_commit = on_commit
        self._queue: queue.Queue[_Job | object] = queue.Queue(maxsize=queue_size)
        self._group_max_events = group_max_events
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="reviewrank-writer", daemon=True)
        self._thread.start()

    def submit(
        self, events: Sequence[Event], deadline: float | None = None
    ) -> Future[list[WriteResult]]:
        """Queues events for the next commit; raises Overloaded when the queue is full."""
        if self._closed:
            raise ShuttingDown("the server is shutting down")
        job = _Job(events, deadline)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Overloaded("too many writes waiting; retry with backoff") from None
        return job.future

    def write(self, events: Sequence[Event], timeout: float | None = None) -> list[WriteResult]:
        """Submits and waits for the commit."""
        deadline = None if timeout is None else time.monotonic() + timeout
        future = self.submit(events, deadline)
        return future.result(timeout=timeout)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> None:
        """Stops taking jobs, commits those already queued, then stops the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def _take_group(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, events, stop = [first], len(first.events), False
        while events < self._group_max_events:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            assert isinstance(item, _Job)
            jobs.append(item)
            events += len(item.events)
        return jobs, stop

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, _Job)
            jobs, stop = self._take_group(item)
            try:
                self._commit(jobs)
            except Exception as exc:  # a bug must not leave callers waiting forever
                log.exception("writer failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(StorageUnavailable(f"write failed: {exc}"))
            if stop:
                return

    def _commit(self, jobs: list[_Job]) -> None:
        now = time.monotonic()
        live = []
        for job in jobs:
            if job.deadline is not None and job.deadline <= now:
                job.future.set_exception(
                    DeadlineExpired("deadline passed before the write started")
                )
            elif job.future.set_running_or_notify_cancel():
                live.append(job)
        if not live:
            return
        try:
            group = self._store.apply([job.events for job in live])
        except sqlite3.Error as exc:
            if len(live) > 1:
                # Commit each job on its own so that one cannot fail the others.
                for job in live:
                    self._commit_alone(job)
                return
            log.error("write failed", error=str(exc), events=len(live[0].events))
            live[0].future.set_exception(StorageUnavailable(f"write not committed: {exc}"))
            return
        self._on_commit(group)
        for job, results in zip(live, group.results, strict=True):
            job.future.set_result(results)

    def _commit_alone(self, job: _Job) -> None:
        try:
            group = self._store.apply([job.events])
        except sqlite3.Error as exc:
            log.error("write failed", error=str(exc), events=len(job.events))
            job.future.set_exception(StorageUnavailable(f"write not committed: {exc}"))
            return
        self._on_commit(group)
        job.future.set_result(group.results[0])
