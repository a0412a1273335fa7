"""Group commit: one thread owns the database connection and commits queued writes together.

Callers enqueue a job (the events of one RPC) and wait on its future. The
writer takes every job waiting (up to a cap on events), applies them in one
transaction, updates the in-memory catalogue, and only then completes the
futures: an acknowledgement always follows a commit. A job whose caller's
deadline has passed before its transaction starts is dropped unapplied.

Storage faults (disk full, read-only or failing files, a lock held elsewhere) fail
the jobs of that transaction with StorageUnavailable (nothing of them is written)
and mark the storage unhealthy; while it is, a small test write (a probe) runs at
most every ``probe_seconds``, and the storage is healthy again once one commits
with enough free space on the disk. Writes are still attempted meanwhile: one that
commits is acknowledged, one that fails is answered UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import structlog

from reviewrank.service.app.priority import lower_priority
from reviewrank.service.app.store import AppliedGroup, Job, JobResult, Store
from reviewrank.service.app.waits import CpuTurn, giving_turn_back
from reviewrank.service.domain.errors import (
    DeadlineExpired,
    Overloaded,
    ShuttingDown,
    StorageProbeFailed,
    StorageUnavailable,
    StoreError,
)
from reviewrank.service.domain.values import (
    CatalogueResult,
    CatalogueUpsert,
    Erasure,
    ErasureResult,
    Event,
    WriteResults,
)

log = structlog.get_logger("reviewrank.writer")


@dataclass
class _Job:
    payload: Job
    deadline: float | None  # time.monotonic() value
    future: Future[JobResult] = field(default_factory=Future)

    @property
    def size(self) -> int:
        if isinstance(self.payload, Erasure):
            return 1
        if isinstance(self.payload, CatalogueUpsert):
            return len(self.payload.entries)
        return len(self.payload)


@dataclass
class WriterStats:
    """Counters since start: how well group commit groups (transactions vs jobs)."""

    transactions: int = 0
    jobs: int = 0
    events: int = 0
    failed_transactions: int = 0
    dropped_expired: int = 0


_STOP = object()


@dataclass
class _Task:
    """Work that runs alone on the writer thread, between two transactions (run_exclusive)."""

    fn: Callable[[], object]
    deadline: float | None  # time.monotonic() value
    future: Future[object] = field(default_factory=Future)


class Writer:
    def __init__(
        self,
        store: Store,
        on_commit: Callable[[AppliedGroup], None],
        queue_size: int = 10_000,
        group_max_events: int = 5000,
        on_health: Callable[[bool], None] | None = None,
        probe_seconds: float = 1.0,
        min_free_bytes: int = 0,
        observers: Sequence[Callable[[int, int, float], None]] = (),
        cpu_turn: CpuTurn | None = None,
        nice: int = 0,
    ) -> None:
        """``observers``: each called on the writer thread after each committed transaction
        with its number of jobs, of events and the seconds it took (Observers.transaction);
        they are fixed here, before the thread starts. ``cpu_turn``: waits for the writer's
        turn on the CPU among the callers' (service/api/turns.py) and returns it; what
        follows each commit (the catalogue's update, the answers) runs in one. Without it
        the writer runs whenever it has work. ``nice``: how many steps below the server's
        scheduling priority the writer thread runs (Linux; Settings.writer_nice)."""
        self._store = store
        self._on_commit = on_commit
        self._on_health = on_health
        self._probe_seconds = probe_seconds
        self._min_free_bytes = min_free_bytes
        self._queue: queue.Queue[_Job | object] = queue.Queue(maxsize=queue_size)
        self._group_max_events = group_max_events
        self._lock = threading.Lock()
        self._closed = False
        self._healthy = True
        self._next_probe = 0.0
        self.stats = WriterStats()
        self._observers = tuple(observers)
        self._cpu_turn = cpu_turn
        self._nice = nice
        self._held: _Task | None = None  # a task met while grouping jobs: it runs next
        self._thread = threading.Thread(target=self._run, name="reviewrank-writer", daemon=True)
        self._thread.start()

    def submit(self, payload: Job, deadline: float | None = None) -> Future[JobResult]:
        """Queues events (or an erasure, or catalogue entries) for the next commit; raises
        Overloaded at once when the queue is full, ShuttingDown once the writer is closing."""
        job = _Job(payload, deadline)
        with self._lock:  # no job can slip in behind the stop marker
            if self._closed:
                raise ShuttingDown("the server is shutting down")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise Overloaded("too many writes waiting; retry with backoff") from None
        return job.future

    def write(self, events: Sequence[Event], timeout: float | None = None) -> WriteResults:
        """Submits and waits for the commit."""
        result = self._committed(events, timeout)
        assert isinstance(result, WriteResults)
        return result

    def erase(self, erasure: Erasure, timeout: float | None = None) -> ErasureResult:
        """Submits an erasure and waits for its commit."""
        result = self._committed(erasure, timeout)
        assert isinstance(result, ErasureResult)
        return result

    def upsert_catalogue(
        self, upsert: CatalogueUpsert, timeout: float | None = None
    ) -> CatalogueResult:
        """Submits catalogue entries and waits for their commit."""
        result = self._committed(upsert, timeout)
        assert isinstance(result, CatalogueResult)
        return result

    def _committed(self, payload: Job, timeout: float | None) -> JobResult:
        """Submits and waits for the commit, the caller's turn given back meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        future = self.submit(payload, deadline)
        with giving_turn_back():
            return future.result(timeout=timeout)

    def run_exclusive(self, fn: Callable[[], object], timeout: float | None = None) -> object:
        """Runs ``fn`` on the writer thread between two transactions and returns its result
        (or raises its exception). No write commits while it runs, so it sees the database
        and the catalogue in step: e.g. sums built from every vote miss no concurrent write.
        It is not run if ``timeout`` passes before it starts (TimeoutError)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        task = _Task(fn, deadline)
        with self._lock:
            if self._closed:
                raise ShuttingDown("the server is shutting down")
            try:
                self._queue.put_nowait(task)
            except queue.Full:
                raise Overloaded("too many writes waiting; retry with backoff") from None
        with giving_turn_back():
            return task.future.result(timeout=timeout)

    def _run_task(self, task: _Task) -> None:
        if task.deadline is not None and task.deadline <= time.monotonic():
            task.future.set_exception(TimeoutError("deadline passed before the task started"))
            return
        if not task.future.set_running_or_notify_cancel():
            return
        try:
            result = task.fn()
        except BaseException as exc:  # handed to the caller; the writer thread carries on
            task.future.set_exception(exc)
        else:
            task.future.set_result(result)

    @property
    def healthy(self) -> bool:
        """False from a failed commit until a probe write succeeds."""
        return self._healthy

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> None:
        """Stops taking jobs, commits those already queued, then stops the thread."""
        with self._lock:
            first = not self._closed
            self._closed = True
        if first:
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def _take_group(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, events, stop = [first], first.size, False
        while events < self._group_max_events:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            if isinstance(item, _Task):  # runs after this group, in queue order
                self._held = item
                break
            assert isinstance(item, _Job)
            jobs.append(item)
            events += item.size
        return jobs, stop

    def _next(self) -> _Job | object | None:
        """The next queued item; None when it is time to probe the failed storage."""
        if self._held is not None:
            held, self._held = self._held, None
            return held
        if self._healthy:
            return self._queue.get()
        wait = self._next_probe - time.monotonic()
        if wait > 0:
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:  # nothing to write meanwhile: time to probe
                self._probe()
                return None
        self._probe()
        return None

    def _probe(self) -> None:
        self._next_probe = time.monotonic() + self._probe_seconds
        try:
            self._store.probe(self._min_free_bytes)
        except StorageProbeFailed as exc:
            log.debug("storage still failing", error=str(exc))
            return
        except Exception:  # the writer thread must survive anything
            log.exception("storage probe failed unexpectedly")
            return
        self._set_health(True, "")

    def _set_health(self, healthy: bool, reason: str) -> None:
        if healthy == self._healthy:
            return
        self._healthy = healthy
        if healthy:
            log.info("storage recovered: writes are accepted again")
        else:
            self._next_probe = time.monotonic() + self._probe_seconds
            log.error("storage failed: writes fail until it recovers", error=reason)
        if self._on_health is not None:
            try:
                self._on_health(healthy)
            except Exception:
                log.exception("storage health listener failed")

    def _run(self) -> None:
        if self._nice:
            lower_priority(self._nice, "writer_nice")
        while True:
            item = self._next()
            if item is None:
                continue
            if item is _STOP:
                return
            if isinstance(item, _Task):
                self._run_task(item)
                continue
            assert isinstance(item, _Job)
            jobs, stop = self._take_group(item)
            try:
                self._commit(jobs)
            except Exception as exc:  # a bug must not leave callers waiting forever
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(StorageUnavailable(f"write failed: {exc}"))
                with contextlib.suppress(Exception):  # nor kill this thread
                    log.exception("writer failed")
            if stop:
                return

    def _commit(self, jobs: list[_Job]) -> None:
        now = time.monotonic()
        live = []
        for job in jobs:
            if job.deadline is not None and job.deadline <= now:
                self.stats.dropped_expired += 1
                job.future.set_exception(
                    DeadlineExpired("deadline passed before the write started")
                )
            # A running job is one retried on its own after its group failed.
            elif job.future.running() or job.future.set_running_or_notify_cancel():
                live.append(job)
        if not live:
            return
        started = time.perf_counter()
        try:
            group = self._store.apply([job.payload for job in live])
        except StoreError as exc:
            self.stats.failed_transactions += 1
            if len(live) > 1 and not exc.fault:
                # Something in one job: commit each on its own so that it cannot fail the others.
                for job in live:
                    self._commit([job])
                return
            if exc.fault:
                self._set_health(False, str(exc))
            log.error(
                "write failed", error=str(exc), jobs=len(live), events=sum(j.size for j in live)
            )
            for job in live:
                job.future.set_exception(StorageUnavailable(f"nothing was written: {exc}"))
            return
        seconds = time.perf_counter() - started
        events = sum(job.size for job in live)
        self.stats.transactions += 1
        self.stats.jobs += len(live)
        self.stats.events += events
        # The catalogue's update and the answers in a turn. Not the transaction: much of it
        # runs in SQLite without Python's lock, which searches should use meanwhile (a turn
        # over the statements: light Rank p50 beside 4 connections of batch writes 32-46
        # ms against 8-10 ms without), and it may wait for the database.
        turn = self._cpu_turn() if self._cpu_turn is not None else None
        try:
            self._on_commit(group)
            for observe in self._observers:
                try:
                    observe(len(live), events, seconds)
                except Exception:  # a metrics problem must not fail acknowledged writes
                    log.exception("transaction observer failed")
            if turn is not None:  # the searches waiting go before the answers
                turn.pass_if_waited_for()
            for job, results in zip(live, group.results, strict=True):
                job.future.set_result(results)
        finally:
            if turn is not None:
                turn.give_back()
