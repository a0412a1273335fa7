"""The application layer: everything the servicers call, with no gRPC in it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from service.catalogue import Catalogue
from service.domain import Event, WriteResult
from service.errors import DeadlineExpired
from service.ranker import Ranker
from service.settings import Settings
from service.store import AppliedGroup, SQLiteStore
from service.weights import WeightsRegistry, WeightsState
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
        self.weights.load_file(settings.weights)
        self.store = SQLiteStore(
            settings.database,
            synchronous=settings.synchronous,
            busy_timeout_ms=settings.busy_timeout_ms,
        )
        self.catalogue = Catalogue()
        self.catalogue.load(self.store.load_products())
        half_lives = {
            p.half_life_seconds
            for p in self.weights.current.profiles.profiles.values()
            if p.half_life_seconds is not None
        }
        if half_lives:  # before the writer starts, so that no write falls in between
            self.catalogue.enable_decay(sorted(half_lives), self.store.load_votes())
        self.ranker = Ranker(self.catalogue, self.weights)
        self.writer = Writer(
            self.store,
            on_commit=self._on_commit,
            queue_size=settings.writer_queue_size,
            group_max_events=settings.writer_group_max_events,
        )
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
        self.writer.close()
        self.store.close()
