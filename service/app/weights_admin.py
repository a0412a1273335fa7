"""Changing the weights at runtime: reload and rollback; and previewing a change.

Every change is validated first, on the caller's thread: an invalid profile set is
refused with each bad key named and changes nothing. A valid one is applied on the
writer thread, between two transactions (Writer.run_exclusive), in this order:

1. the conditional check (``expected_version``), which is race-free there because
   every change runs on that one thread;
2. time-decayed sums for any half-life the catalogue does not keep yet, built from
   every vote in the database: no write can commit meanwhile, so none is missed;
3. the new version is recorded in the ``weights_history`` table (its own transaction);
4. the registry switches to the new state in one reference assignment.

Start-up is service/app/weights_history.py's; SIGHUP and the file watch,
service/app/weights_watch.py's (they reload through here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog

from reviewrank.ranking.profiles import (
    Profile,
    ProfileSet,
    comment_channel_needs,
    decay_needs,
)
from reviewrank.service.app.catalogue import Catalogue, decayed_from_votes
from reviewrank.service.app.preview import Preview, Sample, compare
from reviewrank.service.app.ranker import Ranker
from reviewrank.service.app.settings import Settings
from reviewrank.service.app.store import Store
from reviewrank.service.app.weights import (
    FILE_FIELD,
    ServerLimits,
    WeightsRegistry,
    WeightsState,
    parse_toml,
    read_file,
)
from reviewrank.service.app.weights_history import HistoryEntry, WeightsHistory, save_entry
from reviewrank.service.domain.errors import (
    DeadlineExpired,
    InvalidArgument,
    NotFound,
    StorageUnavailable,
    StoreError,
    VersionConflict,
)

log = structlog.get_logger("reviewrank.weights")

T = TypeVar("T")
NOTE_MAX_LENGTH = 256  # actor and reason


def _check_note(value: str, field: str, violations: list[tuple[str, str]]) -> None:
    if len(value) > NOTE_MAX_LENGTH or not value.isprintable():
        violations.append((field, f"must be at most {NOTE_MAX_LENGTH} printable characters"))


def _profile_of(profiles: ProfileSet, name: str, which: str) -> Profile:
    profile = profiles.get(name)
    if profile is None:
        known = ", ".join(sorted(profiles.profiles))
        raise InvalidArgument([("profile", f"no profile {name!r} in {which} (known: {known})")])
    return profile


class WeightsAdmin:
    """Owns changes to the weights registry (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        registry: WeightsRegistry,
        store: Store,
        catalogue: Catalogue,
        ranker: Ranker,
        history: WeightsHistory,
        run_exclusive: Callable[[Callable[[], object], float | None], object],
        listeners: Sequence[Callable[[str, str, str], None]] = (),
    ) -> None:
        """``history``: as service/app/weights_history.py's start_up left it.
        ``run_exclusive``: runs a change on the writer thread, between two transactions
        (Writer.run_exclusive). ``listeners``: each called with (trigger, source, outcome) after
        every reload or rollback asked for (Observers.weights_change)."""
        self._path: Path = settings.weights
        self._registry = registry
        self._store = store
        self._catalogue = catalogue
        self._ranker = ranker
        self._limits = ServerLimits(settings.max_candidates, settings.max_top_limit)
        self._history = history
        self._run_exclusive = run_exclusive
        self._reload_listeners = tuple(listeners)

    def _counted(self, trigger: str, source_kind: str, change: Callable[[], T]) -> T:
        outcome = "failed"
        try:
            result = change()
            outcome = "applied"
            return result
        except InvalidArgument:
            outcome = "invalid"
            raise
        except VersionConflict:
            outcome = "conflict"
            raise
        except NotFound:
            outcome = "not_found"
            raise
        finally:
            for listener in self._reload_listeners:
                try:
                    listener(trigger, source_kind, outcome)
                except Exception:
                    log.exception("weights reload listener failed")

    # -- changes -----------------------------------------------------------------------------

    def reload(
        self,
        toml: str = "",
        expected_version: int = 0,
        actor: str = "",
        reason: str = "",
        trigger: str = "rpc",
        timeout: float | None = None,
    ) -> tuple[WeightsState, int]:
        """Applies TOML sent inline, or (empty) the weights file; returns the new state and
        the version it replaced."""
        return self._counted(
            trigger,
            "inline" if toml else "file",
            lambda: self._reload(toml, expected_version, actor, reason, trigger, timeout),
        )

    def _reload(
        self,
        toml: str,
        expected_version: int,
        actor: str,
        reason: str,
        trigger: str,
        timeout: float | None,
    ) -> tuple[WeightsState, int]:
        violations: list[tuple[str, str]] = []
        _check_note(actor, "actor", violations)
        _check_note(reason, "reason", violations)
        if violations:
            raise InvalidArgument(violations)
        if toml:
            text, kind, source, field = toml, "inline", "inline", "toml"
        else:
            text, kind, source, field = read_file(self._path), "file", str(self._path), FILE_FIELD
        profiles = parse_toml(text, field, self._limits)

        def apply() -> tuple[WeightsState, int]:
            return self._apply(
                profiles, text, kind, source, trigger, actor, reason, None, expected_version
            )

        return self._exclusive(apply, timeout)

    def rollback(
        self,
        version: int,
        expected_version: int = 0,
        actor: str = "",
        reason: str = "",
        timeout: float | None = None,
    ) -> tuple[WeightsState, int]:
        """Re-applies an earlier version's content as a new version."""
        return self._counted(
            "rpc",
            "rollback",
            lambda: self._rollback(version, expected_version, actor, reason, timeout),
        )

    def _rollback(
        self,
        version: int,
        expected_version: int,
        actor: str,
        reason: str,
        timeout: float | None,
    ) -> tuple[WeightsState, int]:
        violations: list[tuple[str, str]] = []
        if version == 0:
            violations.append(("version", "is required"))
        _check_note(actor, "actor", violations)
        _check_note(reason, "reason", violations)
        if violations:
            raise InvalidArgument(violations)
        entry = self._history.entry(version)
        profiles = parse_toml(entry.content, "version", self._limits)

        def apply() -> tuple[WeightsState, int]:
            return self._apply(
                profiles,
                entry.content,
                "rollback",
                "rollback",
                "rpc",
                actor,
                reason,
                version,
                expected_version,
            )

        return self._exclusive(apply, timeout)

    def _apply(
        self,
        profiles: ProfileSet,
        text: str,
        source_kind: str,
        source: str,
        trigger: str,
        actor: str,
        reason: str,
        rollback_of: int | None,
        expected_version: int,
    ) -> tuple[WeightsState, int]:
        """On the writer thread: check, prepare, record, switch."""
        current = self._registry.current
        if expected_version and expected_version != current.version:
            raise VersionConflict(
                f"version {current.version} is in force, not {expected_version}: "
                "someone changed the weights meanwhile; review them and retry"
            )
        needs = decay_needs(profiles.profiles.values())
        missing = self._catalogue.decay_missing(needs)
        if missing:
            shares_only = not any(need.stars for need in missing.values())
            self._catalogue.enable_decay(needs, self._store.load_votes(shares_only=shares_only))
        channels = comment_channel_needs(profiles.profiles.values())
        if self._catalogue.comment_channels_missing(channels):
            self._catalogue.enable_comment_channels(channels, self._store.load_comment_rows)
        entry = self._history.new_entry(
            text, source_kind, source, trigger, actor, reason, rollback_of
        )
        save_entry(self._store, entry)
        self._history.append(entry)
        state = entry.state(profiles)
        self._registry.install(state)
        log.info(
            "weights applied",
            version=state.version,
            previous_version=current.version,
            trigger=trigger,
            source=source,
            rollback_of=rollback_of,
            actor=actor,
            reason=reason,
            content_sha256=state.content_sha256,
        )
        return state, current.version

    def _exclusive(self, fn: Callable[[], T], timeout: float | None) -> T:
        try:
            result: Any = self._run_exclusive(fn, timeout)
        except TimeoutError:
            raise DeadlineExpired(
                "deadline passed while the weights change waited for the writer; "
                "GetWeights tells whether it was applied"
            ) from None
        except StoreError as exc:
            raise StorageUnavailable(
                f"the weights could not be recorded, so they were not changed: {exc}"
            ) from None
        return result  # type: ignore[no-any-return]

    # -- reads -------------------------------------------------------------------------------

    def history(self) -> list[HistoryEntry]:
        """Every version applied, newest first."""
        return self._history.newest_first()

    def preview(
        self,
        toml: str,
        profile_name: str,
        samples: Sequence[Sample],
        categories: Sequence[str],
        top_k: int,
        timeout: float | None = None,
    ) -> Preview:
        """How each sample's top-k would change under a candidate profile set (TOML sent
        inline, or the weights file as it is now); a profile new in the candidate set is
        compared with the default profile in force. Nothing is applied or kept."""
        text, field = (toml, "toml") if toml else (read_file(self._path), FILE_FIELD)
        candidate_set = parse_toml(text, field, self._limits)
        current = self._registry.current
        candidate = _profile_of(candidate_set, profile_name, "the candidate weights")
        # A profile the candidate adds is compared with what callers get now: the default.
        current_profile = current.profiles.get(profile_name) or _profile_of(
            current.profiles, "", "the weights in force"
        )
        extra = None
        channels = comment_channel_needs([candidate])
        if self._catalogue.comment_channels_missing(channels):
            # Kept from now on (12 bytes a product and channel): read between transactions.
            self._exclusive(
                lambda: self._catalogue.enable_comment_channels(
                    channels, self._store.load_comment_rows
                ),
                timeout,
            )
        missing = self._catalogue.decay_missing(candidate.decay_needs)
        if missing:
            # Read every vote between two transactions; the sums are built here, and dropped.
            shares_only = not any(need.stars for need in missing.values())
            votes = self._exclusive(
                lambda: self._store.load_votes(shares_only=shares_only), timeout
            )
            extra = {h: decayed_from_votes(h, votes, 1, need) for h, need in missing.items()}
        changes = []
        for i, sample in enumerate(samples):
            before = self._ranker.order_candidates(
                current_profile, sample.product_ids, sample.relevance
            )
            after = self._ranker.order_candidates(
                candidate, sample.product_ids, sample.relevance, extra
            )
            changes.append(compare(f"samples[{i}]", before, after, top_k))
        for category in categories:
            before = self._ranker.order_catalogue(current_profile, category)
            after = self._ranker.order_catalogue(candidate, category, extra)
            label = f"category {category}" if category else "catalogue"
            changes.append(compare(label, before, after, top_k))
        return Preview(current.version, current_profile.name, candidate.name, changes)
