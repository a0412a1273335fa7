"""The application layer: everything the servicers call, with no gRPC in it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from reviewrank.ranking.profiles import comment_channel_needs, decay_needs
from reviewrank.service.app import weights_history
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.catalogue_snapshot import load_catalogue, save_snapshot
from reviewrank.service.app.feed import ChangeFeed
from reviewrank.service.app.memory import release_free_memory
from reviewrank.service.app.min_seq import LatestSeq, MinSeqGate
from reviewrank.service.app.poll_fitter import PollFitter
from reviewrank.service.app.preview import Preview, Sample
from reviewrank.service.app.priors import prior_source
from reviewrank.service.app.rank_query import RankQuery, RankResult
from reviewrank.service.app.ranker import ProductStats, Ranker, Ranking
from reviewrank.service.app.settings import Settings
from reviewrank.service.app.status import (
    Counters,
    EventCounts,
    KindCounts,
    Observers,
    PriorInForce,
    Status,
)
from reviewrank.service.app.store import (
    SQLITE,
    AppliedGroup,
    BurstDecision,
    Store,
    StoreOpener,
)
from reviewrank.service.app.vote_weights import VoteWeigher, WeighPass
from reviewrank.service.app.waits import CpuTurn
from reviewrank.service.app.weights import ServerLimits, WeightsRegistry, WeightsState
from reviewrank.service.app.weights_admin import NOTE_MAX_LENGTH, WeightsAdmin
from reviewrank.service.app.weights_history import HistoryEntry
from reviewrank.service.app.weights_watch import WeightsWatch
from reviewrank.service.app.writer import Writer
from reviewrank.service.domain.errors import (
    DeadlineExpired,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    StorageUnavailable,
    StoreError,
)
from reviewrank.service.domain.values import (
    CatalogueEntry,
    CatalogueResult,
    CatalogueUpsert,
    Erasure,
    ErasureResult,
    Event,
    EventBatch,
    WriteResults,
)

log = structlog.get_logger("reviewrank.app")


class Application:
    """Owns the store, the in-memory catalogue, the writer thread and the weights."""

    def __init__(
        self,
        settings: Settings,
        open_store: StoreOpener,
        observers: Observers | None = None,
        writer_turn: CpuTurn | None = None,
    ) -> None:
        """``open_store(meanwhile)`` opens the database, checked, calling ``meanwhile(store)``
        while the check runs; it returns the store and why writes are refused ("" if they
        are not). service.compose.build_application passes service.storage's.
        ``observers``: called as things happen (service/app/status.py), fixed here.
        ``writer_turn``: how the writer thread takes its turns on the CPU (Writer).

        Built in the order each part needs the ones before it: the store and catalogue,
        the weights in force, the writer thread, the weights' administration (changes
        run on the writer thread), the change feed, and last the weights file's watch."""
        observers = observers or Observers()
        self.settings = settings
        started = time.perf_counter()
        self.started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()
        self.event_counts = EventCounts()
        self.kind_counts = KindCounts()
        self.weights = WeightsRegistry()
        self.catalogue = Catalogue()
        # The catalogue loads while the database is checked.
        self.store, self.damage = open_store(self._load_catalogue)
        release_free_memory()  # what the load's temporary objects took (service/app/memory.py)
        self.ranker = Ranker(self.catalogue, self.weights)
        # The weights file, or the latest version applied (service/app/weights_history.py).
        limits = ServerLimits(settings.max_candidates, settings.max_top_limit)
        try:
            history, file_hash = weights_history.start_up(
                settings.weights, limits, self.weights, self.store
            )
        except (ValueError, StoreError) as exc:
            with contextlib.suppress(StoreError):
                self.store.close()
            if isinstance(exc, StoreError):  # e.g. a new weights file, writes refused
                raise StorageUnavailable(
                    f"cannot record the weights in the database {self.store.location}: {exc}"
                ) from exc
            raise
        needs = decay_needs(self.weights.current.profiles.profiles.values())
        if needs:  # before the writer starts, so that no write falls in between
            shares_only = not any(need.stars for need in needs.values())
            self.catalogue.enable_decay(needs, self.store.load_votes(shares_only=shares_only))
        channels = comment_channel_needs(self.weights.current.profiles.profiles.values())
        if channels:  # (as the decayed sums, before the writer starts)
            self.catalogue.enable_comment_channels(channels, self.store.load_comment_rows)
        # The manipulation defences' weigher, made once the writer runs (below); commits
        # tell it votes were written.
        self.integrity: VoteWeigher | None = None
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
            observers=observers.transaction,
            nice=settings.writer_nice,
            cpu_turn=writer_turn,
        )
        # Weights changes run on the writer thread, between transactions.
        self._weights_admin = WeightsAdmin(
            settings,
            self.weights,
            self.store,
            self.catalogue,
            self.ranker,
            history,
            self.writer.run_exclusive,
            observers.weights_change,
        )
        # Writes made by other processes (workers, replicas, a concurrent import).
        self.feed = ChangeFeed(
            self.store.follower(),
            self.catalogue,
            settings.feed_poll_seconds,
            applying=self._own_commit,
        )
        # Poll strengths, refitted after poll votes change (service/app/poll_fitter.py).
        self.polls = PollFitter(self.store.follower(), self.catalogue)
        # The manipulation defences: every vote weighed (service/app/vote_weights.py).
        if settings.integrity_seconds > 0:
            reader = self.store.follower()
            self.integrity = VoteWeigher(
                reader, self.catalogue, reader.load_burst_decisions, settings.integrity_seconds
            )
        # min_seq: the store's latest seq on a connection of its own (SQLite: the store's
        # is the writer's; PostgreSQL's store reads on its pool, safe from any thread).
        self._seq_reader = self.store.follower() if settings.storage.kind == SQLITE else None
        self.min_seq = MinSeqGate(
            self.feed,
            lambda: self.catalogue.seq,
            LatestSeq((self._seq_reader or self.store).last_seq),
            settings.min_seq_wait_seconds,
            settings.min_seq_max_waiting,
        )
        # SIGHUP and the weights file's watch (service/app/weights_watch.py).
        self._weights_watch = WeightsWatch(
            self._weights_admin,
            self.weights,
            settings.weights,
            settings.weights_watch_seconds,
            file_hash,
        )
        log.info(
            "application ready",
            database=self.store.location,
            backend=settings.storage.kind,
            synchronous=settings.synchronous.upper(),
            products=len(self.catalogue),
            seq=self.catalogue.seq,
            weights_version=self.weights.current.version,
            seconds=round(time.perf_counter() - started, 3),
        )
        if settings.storage.kind == SQLITE and not settings.integrity_check:
            log.warning("database not checked for corruption at start-up: integrity_check off")
        if settings.storage.kind == SQLITE and settings.synchronous.upper() == "NORMAL":
            log.warning(
                "durability downgraded: synchronous=NORMAL may lose the last commits on power loss"
            )

    def _load_catalogue(self, store: Store) -> None:
        self.store = store
        load_catalogue(self.catalogue, store, self.settings.database, self._snapshots)

    def _own_commit(self) -> int:
        """The sequence number up to which the writer is committing writes of this process
        that follow what the catalogue holds, or has committed them and is yet to apply
        them to the catalogue (0: none): the change feed need not read those rows.

        (The writer applies a commit once it has a turn, which under load may be tens of
        milliseconds: the feed used to read the rows back meanwhile, at every poll.)"""
        before, after = self.store.committing
        if after and before <= self.catalogue.seq:
            return after
        return 0

    def _on_commit(self, group: AppliedGroup) -> None:
        try:
            self.catalogue.apply(group.products, group.seq, group.votes, group.seq_before)
        except BaseException:
            self.store.committing = (0, 0)  # not applied: the change feed reads them back
            raise
        self.event_counts.add(group.results)
        if self.integrity is not None and group.products:
            self.integrity.note_writes()  # (a flag: the weigher's thread does the work)

    def submit(self, events: Sequence[Event], timeout: float | None) -> WriteResults:
        """Commits the events (in one transaction) and returns one result per event."""
        self._writable()
        if self.settings.event_categories == "ignore":
            events = EventBatch.of(events).without_categories()
        try:
            results = self.writer.write(events, timeout)
        except TimeoutError:
            raise DeadlineExpired("deadline passed while waiting for the commit") from None
        self.kind_counts.add(EventBatch.of(events), results)
        return results

    def upsert_products(
        self, entries: Sequence[CatalogueEntry], timeout: float | None
    ) -> CatalogueResult:
        """Sets products as the shop's catalogue says (one transaction): from then on
        feedback events never change their category, and Top leaves out the delisted."""
        self._writable()
        try:
            return self.writer.upsert_catalogue(CatalogueUpsert(tuple(entries)), timeout)
        except TimeoutError:
            raise DeadlineExpired("deadline passed while waiting for the commit") from None

    def forget_user(self, user_id: str, timeout: float | None) -> ErasureResult:
        """Erases the user's votes and events in one transaction (group-committed with the
        other writes, so that rankings reflect it once it returns)."""
        self._writable()
        try:
            result = self.writer.erase(Erasure(user_id), timeout)
        except TimeoutError:
            raise DeadlineExpired("deadline passed while waiting for the commit") from None
        if self.integrity is not None:
            self.integrity.forget(user_id)
        # No user id in the log: it is the personal data being erased.
        log.info(
            "user forgotten",
            ratings_removed=result.ratings_removed,
            likes_removed=result.likes_removed,
            shares_removed=result.shares_removed,
            comments_removed=result.comments_removed,
            events_erased=result.events_erased,
            seq=result.seq,
        )
        return result

    def _writable(self) -> None:
        if self.damage:
            raise FailedPrecondition(f"writes refused: {self.damage}")

    @property
    def storage_ok(self) -> bool:
        """False from a failed commit until a probe write succeeds again, and always on a
        database found damaged at start-up."""
        return self.writer.healthy and not self.damage

    def add_storage_listener(self, listener: Callable[[bool], None]) -> None:
        """Calls ``listener(ok)`` now and whenever the storage fails or recovers."""
        with self._listeners_lock:
            self._storage_listeners.append(listener)
            listener(self.storage_ok)

    def _on_storage_health(self, ok: bool) -> None:
        with self._listeners_lock:
            for listener in self._storage_listeners:
                listener(ok and not self.damage)

    # -- the weights (AdminService; service/app/weights_admin.py) -----------------------------

    def weights_state(self) -> WeightsState:
        """The weights in force."""
        return self.weights.current

    def reload_weights(
        self,
        toml: str = "",
        expected_version: int = 0,
        actor: str = "",
        reason: str = "",
        timeout: float | None = None,
    ) -> tuple[WeightsState, int]:
        """Applies TOML sent inline, or (empty) the weights file; returns the new state and
        the version it replaced."""
        return self._weights_admin.reload(toml, expected_version, actor, reason, timeout=timeout)

    def rollback_weights(
        self,
        version: int,
        expected_version: int = 0,
        actor: str = "",
        reason: str = "",
        timeout: float | None = None,
    ) -> tuple[WeightsState, int]:
        """Re-applies an earlier version's content as a new version."""
        return self._weights_admin.rollback(
            version, expected_version, actor, reason, timeout=timeout
        )

    def weights_history(self) -> list[HistoryEntry]:
        """Every version applied, newest first."""
        return self._weights_admin.history()

    def preview_weights(
        self,
        toml: str,
        profile: str,
        samples: Sequence[Sample],
        categories: Sequence[str],
        top_k: int,
        timeout: float | None = None,
    ) -> Preview:
        """How each sample's top-k would change under candidate weights; nothing applied."""
        return self._weights_admin.preview(toml, profile, samples, categories, top_k, timeout)

    def request_weights_reload(self) -> None:
        """Reloads the weights file in the background (SIGHUP; safe in a signal handler)."""
        self._weights_watch.request_reload()

    # -- the manipulation defences (service/app/vote_weights.py) ------------------------------

    def weighed(self) -> WeighPass:
        """The last weighing of the votes (empty when the defences are off)."""
        return WeighPass() if self.integrity is None else self.integrity.last

    def burst_decisions(self, timeout: float | None = None) -> list[BurstDecision]:
        """Every decision on a burst, newest first (read on the writer thread: SQLite's
        store connection is that thread's)."""
        try:
            made: Any = self.writer.run_exclusive(self.store.load_burst_decisions, timeout)
        except TimeoutError:
            raise DeadlineExpired("deadline passed while waiting to read the decisions") from None
        return list(reversed(made))

    def decide_burst(
        self,
        product_id: str,
        start_us: int,
        end_us: int,
        confirmed: bool,
        actor: str,
        reason: str,
        timeout: float | None,
    ) -> tuple[BurstDecision, bool]:
        """Records an admin's decision on a listed burst (on the writer thread, as a weights
        change), then weighs the votes again with it; returns the decision and whether
        that weighing ended before ``timeout``."""
        violations = []
        if not actor.strip():
            violations.append(("actor", "is required: who decides"))
        for field, value in (("actor", actor), ("reason", reason)):
            if len(value) > NOTE_MAX_LENGTH or not value.isprintable():
                violations.append(
                    (field, f"must be at most {NOTE_MAX_LENGTH} printable characters")
                )
        if violations:
            raise InvalidArgument(violations)
        weigher = self.integrity
        if weigher is None:
            raise FailedPrecondition("the server weighs no votes (integrity_seconds is 0)")
        # (A burst that grew since it was listed is still the one the admin saw: one
        # more vote must not turn a decision into NOT_FOUND. It covers what was seen.)
        listed = [
            b
            for b in weigher.last.bursts
            if (b.product_id, b.start_us) == (product_id, start_us) and b.end_us >= end_us
        ]
        if listed and listed[0].dismissed and not confirmed:
            raise FailedPrecondition("that burst is dismissed already (ListBurstDecisions)")
        if not listed:
            raise NotFound(
                f"no burst of product {product_id!r} from {start_us} to {end_us} µs is listed: "
                "ListBursts shows the bursts that damp now"
            )
        self._writable()
        decision = BurstDecision(
            product_id, start_us, end_us, confirmed, actor, reason, int(time.time() * 1e6)
        )
        try:
            self.writer.run_exclusive(lambda: self.store.save_burst_decision(decision), timeout)
        except TimeoutError:
            raise DeadlineExpired("deadline passed while waiting to record the decision") from None
        log.info(
            "burst decided",
            product_id=product_id,
            start_us=start_us,
            end_us=end_us,
            decision="confirm" if confirmed else "dismiss",
            actor=actor,
        )
        applied = weigher.wait_for_pass(10.0 if timeout is None else min(timeout, 10.0))
        return decision, applied

    # -- what it tells of itself (service/app/status.py) ---------------------------------------

    def change_feed_lag(self) -> dict[str, int]:
        """Sequence numbers committed in the database (as last read by the change feed) but
        not yet in this process's memory. Own commits are applied before they are
        acknowledged; others' (workers, replicas, an import) within a feed poll."""
        return {"database": self.feed.lag}

    def wait_for_seq(self, seq: int) -> None:
        """Returns once every change up to ``seq`` is reflected here (read your writes on
        any process); OutOfRange for a ``seq`` never committed, Unavailable if this
        process cannot catch up in time (service/app/min_seq.py)."""
        if seq:
            self.min_seq.wait_for(seq)

    def rank(self, query: RankQuery) -> RankResult:
        """The query's candidates ordered, once ``query.min_seq`` is reflected here."""
        self.wait_for_seq(query.min_seq)
        return self.ranker.rank(query)

    def top(
        self,
        category: str,
        limit: int,
        page_token: str,
        profile: str,
        explain: bool,
        user_id: str = "",
        min_seq: int = 0,
    ) -> Ranking:
        """A page of the best products (of a category), once ``min_seq`` is reflected."""
        self.wait_for_seq(min_seq)
        return self.ranker.top(category, limit, page_token, profile, explain, user_id, min_seq)

    def product_stats(
        self, product_ids: Sequence[str], profile: str, min_seq: int = 0
    ) -> tuple[list[ProductStats], int]:
        """The products' numbers and the weights version, once ``min_seq`` is reflected."""
        self.wait_for_seq(min_seq)
        return self.ranker.product_stats(product_ids, profile)

    def priors_in_force(self) -> tuple[PriorInForce, ...]:
        """Each profile's global prior as rankings use it now."""
        state = self.weights.current
        priors = []
        for name, profile in state.profiles.profiles.items():
            prior = self.ranker.priors.in_force(profile.prior)
            likes = self.ranker.priors.likes_in_force(profile.prior, profile.likes_prior)
            source = prior_source(profile.prior)
            shares = (0.0, 0.0)
            weighing = profile.share_weighing
            if weighing is not None:
                gamma = self.ranker.share_priors.prior(weighing, profile.shares.prior)
                shares = (gamma.shape, gamma.rate)
            sentiment = (0.0, 0.0)
            if profile.weighs_sentiment:
                said = self.ranker.priors.sentiment_in_force(profile)
                sentiment = (said.mean, said.strength)
            priors.append(
                PriorInForce(name, prior.mean, prior.strength, source, likes, shares, sentiment)
            )
        return tuple(priors)

    def counters(self) -> Counters:
        """What the application counts and holds now (each value cheap to read)."""
        stats = self.writer.stats
        return Counters(
            products=len(self.catalogue),
            seq=self.catalogue.seq,
            weights_version=self.weights.current.version,
            queue_depth=self.writer.queue_depth,
            queue_capacity=self.settings.writer_queue_size,
            storage_ok=self.storage_ok,
            outcomes=self.event_counts.outcomes(),
            erasures=self.event_counts.erasures,
            transactions=stats.transactions,
            failed_transactions=stats.failed_transactions,
            writes_expired=stats.dropped_expired,
            change_feed_lags=self.change_feed_lag(),
            poll_votes=0 if self.polls.last is None else self.polls.last.votes,
            poll_fit_seconds=0.0 if self.polls.last is None else self.polls.last.seconds,
            poll_fit_pending=self.polls.pending,
            kinds=self.kind_counts.counts(),
            damped_votes=self.weighed().damped_votes,
        )

    def status(self) -> Status:
        """The counters, with the start time, the default profile and the priors in force."""
        return Status(
            **vars(self.counters()),
            started_at=self.started_at,
            uptime_seconds=time.monotonic() - self._started_monotonic,
            default_profile=self.weights.current.profiles.default,
            priors=self.priors_in_force(),
        )

    def close(self) -> None:
        """Commits what is queued, checkpoints the WAL and closes the database."""
        self._weights_watch.close()
        self.ranker.close()
        self.feed.close()
        self.polls.close()
        if self.integrity is not None:
            self.integrity.close()
        if self._seq_reader is not None:
            self._seq_reader.close()
        self.writer.close()
        if (
            self._snapshots
            and not self.damage
            and len(self.catalogue) >= self.settings.snapshot_min_products
        ):
            save_snapshot(self.catalogue, self.store, self.settings.database)
        try:
            self.store.close()
        except StoreError as exc:  # the WAL keeps every commit: it is replayed at next start
            log.error("closing the database failed", error=str(exc))

    @property
    def _snapshots(self) -> bool:
        """Catalogue snapshots are for the embedded database: a PostgreSQL replica's local
        file would go stale with every other replica's write."""
        return self.settings.snapshot and self.settings.storage.kind == SQLITE
