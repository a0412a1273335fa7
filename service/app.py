"""The application layer: everything the servicers call, with no gRPC in it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from service.catalogue import Catalogue
from service.domain import Erasure, ErasureResult, Event, WriteResult
from service.errors import DeadlineExpired, StorageUnavailable
from service.ranker import Ranker
from service.settings import Settings
from service.store import AppliedGroup, SQLiteStore, StorageProbeFailed
from service.weights import WeightsRegistry, WeightsState
from service.weights_admin import WeightsAdmin
from service.writer import Writer

log = structlog.get_logger("reviewrank.app")


@dataclass(frozen=True)
class Status:
    products: int
    events: int
    seq: int
    weights_version: int
    queue_depth: int


class Application:
    """Owns the store, the in-memory catalogue, the writer thread and the weights."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        started = time.perf_counter()
        self.weights = WeightsRegistry()
        self.store = _open_store(settings)
        self.catalogue = Catalogue()
        self.catalogue.load(self.store.load_products())
        self.ranker = Ranker(self.catalogue, self.weights)
        # The weights file, or the latest version applied (service/weights_admin.py).
        self.weights_admin = WeightsAdmin(
            settings, self.weights, self.store, self.catalogue, self.ranker
        )
        try:
            self.weights_admin.start_up()
        except ValueError:
            self.store.conn.close()
            raise
        half_lives = {
            p.half_life_seconds
            for p in self.weights.current.profiles.profiles.values()
            if p.half_life_seconds is not None
        }
        if half_lives:  # before the writer starts, so that no write falls in between
            self.catalogue.enable_decay(sorted(half_lives), self.store.load_votes())
        self._listeners_lock = threading.Lock()
        self._storage_listeners: list[Callable[[bool], None]] = []
        self.writer = Writer(
            self.store,
            on_commit=self._on_commit,
            queue_size=settings.writer_queue_size,
            group_max_events=settings.writer_group_max_events,
            on_health=self._on_storage_health,
            probe_seconds=settings.storage_probe_seconds,
            min_free_bytes=settings.storage_min_free_bytes,
        )
        # Weights changes now run on the writer thread, between transactions.
        self.weights_admin.attach(self.writer.run_exclusive)
        self.weights_admin.start_background()
        log.info(
            "application ready",
            database=str(settings.database),
            synchronous=settings.synchronous.upper(),
            products=len(self.catalogue),
            seq=self.catalogue.seq,
            weights_version=self.weights.current.version,
            seconds=round(time.perf_counter() - started, 3),
        )
        if settings.synchronous.upper() == "NORMAL":
            log.warning(
                "durability downgraded: synchronous=NORMAL may lose the last commits on power loss"
            )

    def _on_commit(self, group: AppliedGroup) -> None:
        self.catalogue.apply(group.products, group.seq, group.votes)

    def submit(self, events: Sequence[Event], timeout: float | None) -> list[WriteResult]:
        """Commits the events (in one transaction) and returns one result per event."""
        try:
            return self.writer.write(events, timeout)
        except TimeoutError:
            raise DeadlineExpired("deadline passed while waiting for the commit") from None

    def forget_user(self, user_id: str, timeout: float | None) -> ErasureResult:
        """Erases the user's votes and events in one transaction (group-committed with the
        other writes, so that rankings reflect it once it returns)."""
        try:
            result = self.writer.erase(Erasure(user_id), timeout)
        except TimeoutError:
            raise DeadlineExpired("deadline passed while waiting for the commit") from None
        # No user id in the log: it is the personal data being erased.
        log.info(
            "user forgotten",
            ratings_removed=result.ratings_removed,
            likes_removed=result.likes_removed,
            events_erased=result.events_erased,
            seq=result.seq,
        )
        return result

    @property
    def storage_ok(self) -> bool:
        """False from a failed commit until a probe write succeeds again."""
        return self.writer.healthy

    def add_storage_listener(self, listener: Callable[[bool], None]) -> None:
        """Calls ``listener(ok)`` now and whenever the storage fails or recovers."""
        with self._listeners_lock:
            self._storage_listeners.append(listener)
            listener(self.writer.healthy)

    def _on_storage_health(self, ok: bool) -> None:
        with self._listeners_lock:
            for listener in self._storage_listeners:
                listener(ok)

    def weights_state(self) -> WeightsState:
        return self.weights.current

    def status(self) -> Status:
        return Status(
            products=len(self.catalogue),
            events=self.catalogue.seq,
            seq=self.catalogue.seq,
            weights_version=self.weights.current.version,
            queue_depth=self.writer.queue_depth,
        )

    def close(self) -> None:
        """Commits what is queued, checkpoints the WAL and closes the database."""
        self.weights_admin.close()
        self.writer.close()
        try:
            self.store.close()
        except sqlite3.Error as exc:  # the WAL keeps every commit: it is replayed at next start
            log.error("WAL checkpoint failed at shutdown", error=str(exc))


def _open_store(settings: Settings) -> SQLiteStore:
    """Opens the database and proves that it can commit a write: a server that cannot
    store feedback refuses to start, naming the file and the cause."""
    path = settings.database
    try:
        store = SQLiteStore(
            path, synchronous=settings.synchronous, busy_timeout_ms=settings.busy_timeout_ms
        )
    except (sqlite3.Error, OSError) as exc:
        raise StorageUnavailable(f"cannot open the database {path}: {exc}") from exc
    try:
        store.probe()
    except StorageProbeFailed as exc:
        store.conn.close()
        raise StorageUnavailable(f"the database {path} cannot be written: {exc}") from exc
    return store
