"""The in-memory mirror of the products table: numpy arrays indexed by ``products.idx``.

The writer thread sets rows after each commit (before acknowledging), so a read that
starts after an acknowledgement sees the write. Readers copy the rows they need under
the lock, then compute without it; what they get is defined in
service/app/catalogue_views.py.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Counts, Evidence
from reviewrank.ranking.polls import MIN_SHOWN, PollVotes
from reviewrank.ranking.profiles import CommentWeighing, DecayNeed, ShareWeighing
from reviewrank.ranking.rating_groups import CategoryRatingGroups, RatingGroups, RatingTally
from reviewrank.ranking.shares import exposure_days
from reviewrank.service.app.catalogue_views import (
    Gathered,
    Histograms,
    Listing,
    Lookup,
    RowIds,
    ScoringRows,
    Snapshot,
)
from reviewrank.service.app.category_codes import NO_CATEGORY, CategoryCodes
from reviewrank.service.app.comment_channels import CommentChannels
from reviewrank.service.app.damped import DampedParts
from reviewrank.service.app.decayed import DecayedAggregates
from reviewrank.service.app.id_index import EncodedIds, IdIndex
from reviewrank.service.app.snapshot import CatalogueColumns, columns_of
from reviewrank.service.app.store import CommentRows, PollRows, ProductTable, VoteTable
from reviewrank.service.domain.values import SENTIMENT_SCALE, ProductRow, VoteChange
from reviewrank.service.domain.voting import VoteChanges

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# Decayed sums of half-lives the catalogue does not keep, by half-life (a preview's).
Extra = Mapping[float, DecayedAggregates] | None
# Generations whose changed rows are remembered (ScoringRows): enough for readers that
# catch up after every few writes; one that falls further behind rebuilds from all rows.
CHANGE_LOG_LENGTH = 512
# The columns of counts a product row sets, named as in ProductRow and ProductTable.
_COUNT_COLUMNS = (
    "rating_count", "star_sum", "histogram", "likes", "dislikes", "shares", "listed_at_us",
    "comments", "sentiment_sum", "sentiment_squares", "polls_shown", "polls_won",
)  # fmt: skip


def _newest_of_each(rows: Sequence[ProductRow]) -> Sequence[ProductRow]:
    """The rows, but of a product named twice only its newest row (the one applying a
    row at a time would leave: the first of the highest sequence number)."""
    if len({row.idx for row in rows}) == len(rows):
        return rows
    newest: dict[int, ProductRow] = {}
    for row in rows:
        held = newest.get(row.idx)
        if held is None or row.seq > held.seq:
            newest[row.idx] = row
    return list(newest.values())


class Catalogue:
    # The columns, indexed by products.idx (_allocate makes and grows them).
    rating_count: IntArray
    star_sum: IntArray
    histogram: IntArray  # (rows, 5): s1..s5
    likes: IntArray
    dislikes: IntArray
    shares: IntArray  # users who shared each product
    listed_at_us: IntArray  # when each was first seen (the exposure of its share rate)
    comments: IntArray  # users whose comment on each product is in force
    sentiment_sum: IntArray  # their scores' sum, in 1/SENTIMENT_SCALE
    sentiment_squares: IntArray  # the sum of their squares (the sentiment prior's fit)
    polls_shown: IntArray  # poll votes in force whose poll showed each product
    polls_won: IntArray  # those that chose it
    poll_strength: npt.NDArray[np.float64]  # Bradley-Terry strengths in force (1: prior)
    row_seq: IntArray  # the sequence number of each row's last change
    category_code: npt.NDArray[np.int32]  # NO_CATEGORY for none
    active: npt.NDArray[np.bool_]  # False: delisted by the shop's catalogue

    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.Lock()
        # id <-> row; row 0 is never used (SQLite rowids start at 1).
        self._index = IdIndex()
        self._categories = CategoryCodes()
        self._display: dict[int, str] = {}  # idx -> display fields (JSON), where any
        self._size = 1
        self._allocate(max(capacity, 2))
        # Every change up to `seq` is reflected; `generation` moves at every change (caches).
        self.seq = 0
        self.generation = 0
        self._decayed: dict[float, DecayedAggregates] = {}
        # Products written here while other processes also wrote: their decayed sums are
        # recomputed from the votes by the change feed (service/app/feed.py).
        self._decay_dirty: set[int] = set()
        # Comments summed per channel some profile weighs (service/app/comment_channels.py),
        # and the products whose sums the change feed recomputes (as _decay_dirty).
        self._comment_channels: CommentChannels | None = None
        self._comment_dirty: set[int] = set()
        # (generation, rows it changed) for the latest generations (changed_rows).
        self._changes: deque[tuple[int, IntArray]] = deque(maxlen=CHANGE_LOG_LENGTH)
        # The star histograms summed by rating count, kept as rows change: what the
        # marginal prior is fitted on (rating_groups), without reading every row.
        self._tally = RatingTally()
        # Moves whenever some product's poll counts change, and the event is set: the
        # poll strengths are then refitted (service/app/poll_fitter.py).
        self.poll_generation = 0
        self.polls_changed = threading.Event()
        # What the manipulation defences take off each product's sums (service/app/damped.py),
        # set by the vote weigher (service/app/vote_weights.py); profiles with defences on
        # score the sums less these.
        self._damped = DampedParts.none()

    def _allocate(self, capacity: int) -> None:
        """Grows every column to ``capacity`` rows, keeping what they hold. Counts in 32
        bits (2.1 billion ratings of one product is enough): a million products'
        aggregates then take 36 MB instead of 72 MB."""
        columns = (  # name, shape of one row, type, value of a row not set yet
            ("rating_count", (), np.int32, 0), ("star_sum", (), np.int32, 0),
            ("histogram", (5,), np.int32, 0), ("likes", (), np.int32, 0),
            ("dislikes", (), np.int32, 0), ("shares", (), np.int32, 0),
            ("listed_at_us", (), np.int64, 0), ("comments", (), np.int32, 0),
            ("sentiment_sum", (), np.int64, 0), ("sentiment_squares", (), np.int64, 0),
            ("polls_shown", (), np.int32, 0), ("polls_won", (), np.int32, 0),
            ("poll_strength", (), np.float64, 1.0), ("row_seq", (), np.int64, 0),
            ("category_code", (), np.int32, NO_CATEGORY),
            ("active", (), np.bool_, True),  # listed unless the shop's catalogue says not
        )  # fmt: skip
        for name, shape, dtype, empty in columns:
            new = np.full((capacity, *shape), empty, dtype=dtype)
            old = getattr(self, name, None)
            if old is not None:
                new[: old.shape[0]] = old
            setattr(self, name, new)
        channels = getattr(self, "_comment_channels", None)
        if channels is not None:
            channels.grow(capacity)

    def __len__(self) -> int:
        return len(self._index)

    def _set_rows(
        self,
        idx: IntArray,
        product_ids: Sequence[str],
        categories: Sequence[str],
        counts: Mapping[str, npt.ArrayLike],
        row_seq: npt.ArrayLike,
        active: npt.ArrayLike,
        more_categories: Sequence[str],
        display: Sequence[str],
    ) -> None:
        """Sets these rows (distinct, within the columns: _rows_before grows them) to
        the values given, a column at a time (lock held); ``counts`` by column name
        (_COUNT_COLUMNS). A numpy assignment per column rather than per row and column:
        a commit of 1,000 poll votes (1,560 rows) applied in 7 ms instead of 20 (profiled)."""
        if not idx.size:
            return
        shown = np.asarray(counts["polls_shown"])
        won = np.asarray(counts["polls_won"])
        if (self.polls_shown[idx] != shown).any() or (self.polls_won[idx] != won).any():
            self.poll_generation += 1
            self.polls_changed.set()
        elif shown.any() and self._unchanged(idx, counts)[shown > 0].any():
            # A row some poll showed was written with every count as it was: poll votes
            # that moved no count (a user's newer vote swapping the products of another's)
            # may have changed the strengths. The fitter looks (cheaply when no vote
            # changed: PollFitter.fit_once); a rating and the like do not wake it.
            self.poll_generation += 1
            self.polls_changed.set()
        for name in _COUNT_COLUMNS:
            getattr(self, name)[idx] = counts[name]
        self.row_seq[idx] = row_seq
        self.active[idx] = active
        code = self._categories.code
        self.category_code[idx] = [code(category) for category in categories]
        index_add, set_more, displays = self._index.add, self._categories.set_more, self._display
        for i, product_id, more, fields in zip(
            idx.tolist(), product_ids, more_categories, display, strict=True
        ):
            index_add(product_id, i)
            set_more(i, more)
            if fields:
                displays[i] = fields
            else:
                displays.pop(i, None)
        self._size = max(self._size, int(idx.max()) + 1)

    def _unchanged(
        self, idx: npt.NDArray[np.int64], counts: Mapping[str, npt.ArrayLike]
    ) -> npt.NDArray[np.bool_]:
        """Which of these rows the counts given leave as they are."""
        same = np.ones(idx.size, dtype=bool)
        for name in _COUNT_COLUMNS:
            held = getattr(self, name)[idx]
            equal = held == np.asarray(counts[name]).reshape(held.shape)
            same &= equal if equal.ndim == 1 else equal.all(axis=1)
        return same

    def load(self, table: ProductTable) -> None:
        """Replaces everything with a bulk-loaded products table."""
        self.load_columns(columns_of(table))

    def load_columns(self, columns: CatalogueColumns) -> None:
        """Replaces everything with these columns (from the database or a snapshot)."""
        with self._lock:
            idx = columns.idx
            size = int(idx.max()) + 1 if idx.size else 1
            for name in (
                "rating_count", "star_sum", "histogram", "likes", "dislikes", "shares",
                "listed_at_us", "comments", "sentiment_sum", "sentiment_squares", "polls_shown",
                "polls_won", "poll_strength", "row_seq",
            ):  # fmt: skip
                delattr(self, name)
            del self.category_code
            del self.active
            self._allocate(max(1024, size))
            self.rating_count[idx] = columns.rating_count
            self.star_sum[idx] = columns.star_sum
            self.histogram[idx] = columns.histogram
            self.likes[idx] = columns.likes
            self.dislikes[idx] = columns.dislikes
            self.shares[idx] = columns.shares
            self.listed_at_us[idx] = columns.listed_at_us
            self.comments[idx] = columns.comments
            self.sentiment_sum[idx] = columns.sentiment_sum
            self.sentiment_squares[idx] = columns.sentiment_squares
            self.polls_shown[idx] = columns.polls_shown
            self.polls_won[idx] = columns.polls_won
            if columns.polls_shown.any():  # (no poll vote: nothing to fit, nothing read)
                self.poll_generation += 1
                self.polls_changed.set()
            self.row_seq[idx] = columns.row_seq
            self.category_code[idx] = columns.category_code
            self.active[idx] = columns.active
            self._categories.reset(columns.category_names, columns.more_categories)
            self._display = dict(columns.display)
            self._index.replace(columns.product_ids, idx)
            self._size = size
            self._tally = RatingTally()
            self._tally.add(self.histogram[1:size], self.category_code[1:size])
            self.seq = columns.seq
            self.generation += 1
            self._changes.clear()  # everything changed: readers start again from all rows

    def columns(self) -> CatalogueColumns:
        """A copy of every product as columns (for a snapshot)."""
        with self._lock:
            idx = self._index.used_rows()
            ids = self._index.ids
            return CatalogueColumns(
                seq=self.seq,
                idx=idx,
                product_ids=[ids[i] for i in idx.tolist()],
                category_code=self.category_code[idx].copy(),
                category_names=list(self._categories.names),
                rating_count=self.rating_count[idx].copy(),
                star_sum=self.star_sum[idx].copy(),
                histogram=self.histogram[idx].copy(),
                likes=self.likes[idx].copy(),
                dislikes=self.dislikes[idx].copy(),
                shares=self.shares[idx].copy(),
                listed_at_us=self.listed_at_us[idx].copy(),
                comments=self.comments[idx].copy(),
                sentiment_sum=self.sentiment_sum[idx].copy(),
                sentiment_squares=self.sentiment_squares[idx].copy(),
                polls_shown=self.polls_shown[idx].copy(),
                polls_won=self.polls_won[idx].copy(),
                row_seq=self.row_seq[idx].copy(),
                active=self.active[idx].copy(),
                more_categories=self._categories.more_texts(),
                display=dict(self._display),
            )

    def apply(
        self,
        rows: Sequence[ProductRow],
        seq: int,
        votes: Sequence[VoteChange] = (),
        seq_before: int | None = None,
    ) -> None:
        """Sets the state of products just committed here (rows are absolute, not deltas).

        ``votes`` are the vote replacements behind them, for the time-decayed sums;
        ``seq_before`` the database's sequence number before the transaction: when it is
        beyond ``self.seq``, another process wrote in between, and the change feed fills
        the gap (applying a row only if it is newer than the one held).
        """
        with self._lock:
            contiguous = seq_before is None or seq_before <= self.seq
            rows = _newest_of_each(rows)
            idx = np.fromiter((row.idx for row in rows), dtype=np.int64, count=len(rows))
            touched, before, codes_before = self._rows_before(set(idx.tolist()))
            row_seq = np.fromiter((row.seq for row in rows), dtype=np.int64, count=len(rows))
            # A row not newer than the one held: the change feed read this commit (or a
            # later one) first, and its decayed sums, recomputed from the votes, include it.
            newer = row_seq > self.row_seq[idx]
            if not newer.all():
                rows = [row for row, new in zip(rows, newer.tolist(), strict=True) if new]
                idx, row_seq = idx[newer], row_seq[newer]
            if rows:
                fields = ProductRow._fields
                column = dict(zip(fields, zip(*rows, strict=True), strict=True))
                self._set_rows(
                    idx,
                    column["product_id"],
                    column["category"],
                    column,
                    row_seq,
                    column["active"],
                    column["more_categories"],
                    column["display"],
                )
            applied = set(idx.tolist())
            self._tally.replace(
                before, self.histogram[touched], codes_before, self.category_code[touched]
            )
            if self._decayed:
                if contiguous:
                    mine = [change for change in votes if change.product_idx in applied]
                    for decayed in self._decayed.values():
                        decayed.apply(mine)
                else:
                    self._decay_dirty.update(change.product_idx for change in votes)
            if contiguous and self._damped.size:  # (a damped vote's part follows it)
                damped = self._damped
                hit = np.isin(np.fromiter(applied, np.int64, len(applied)), damped.idx)
                if hit.any():
                    held = set(damped.idx.tolist())
                    moved = votes.replacements() if isinstance(votes, VoteChanges) else votes
                    self._damped = damped.adjusted(c for c in moved if c.product_idx in held)
            if self._comment_channels is not None:
                if contiguous:
                    self._comment_channels.apply(
                        [change for change in votes if change.product_idx in applied]
                    )
                else:
                    self._comment_dirty.update(change.product_idx for change in votes)
            if contiguous:
                self.seq = max(self.seq, seq)
            self._next_generation(np.fromiter(applied, dtype=np.int64, count=len(applied)))

    def apply_feed(
        self, table: ProductTable, votes: VoteTable | None, comments: CommentRows | None = None
    ) -> None:
        """Applies rows read by the change feed at ``table.seq``: each only if newer than
        the state held. ``votes``: the votes of these products and of the dirty ones, read
        in the same snapshot (needed when decayed sums are kept); ``comments`` likewise
        their comments of the channels kept apart (comment_channel_names)."""
        with self._lock:
            changed = table.idx[:0]
            if table.idx.size:
                capacity = self.rating_count.shape[0]
                top = int(table.idx.max())
                if top >= capacity:
                    self._allocate(max(top + 1, 2 * capacity))
                newer = table.row_seq > self.row_seq[table.idx]
                changed = table.idx[newer]
                rows = changed.tolist()
                touched, before, codes_before = self._rows_before(set(rows))
                at = np.flatnonzero(newer)
                positions = at.tolist()
                self._set_rows(
                    changed,
                    [table.product_ids[i] for i in positions],
                    [table.categories[i] for i in positions],
                    {name: getattr(table, name)[at] for name in _COUNT_COLUMNS},
                    table.row_seq[at],
                    table.active[at],
                    [table.more_categories.get(i, "") for i in rows],
                    [table.display.get(i, "") for i in rows],
                )
                self._tally.replace(
                    before, self.histogram[touched], codes_before, self.category_code[touched]
                )
            if self._decayed and votes is not None:
                candidates = set(table.idx.tolist()) | self._decay_dirty
                # A product whose held state is newer than the snapshot stays dirty.
                ready = np.array(
                    sorted(i for i in candidates if self.row_seq[i] <= table.seq), dtype=np.int64
                )
                if ready.size:
                    subset = votes.subset(np.isin(votes.product_idx, ready))
                    for decayed in self._decayed.values():
                        decayed.reset(ready, subset)
                self._decay_dirty = candidates - set(ready.tolist())
            if self._comment_channels is not None and comments is not None:
                candidates = set(table.idx.tolist()) | self._comment_dirty
                ready = np.array(
                    sorted(i for i in candidates if self.row_seq[i] <= table.seq), dtype=np.int64
                )
                if ready.size:
                    mine = comments.subset(np.isin(comments.product_idx, ready))
                    self._comment_channels.reset(ready, mine)
                self._comment_dirty = candidates - set(ready.tolist())
            self.seq = max(self.seq, table.seq)
            self._next_generation(changed)

    def _rows_before(self, rows: set[int]) -> tuple[IntArray, IntArray, IntArray]:
        """These rows' index, star counts and category codes before they change (lock
        held), the columns grown to hold them: the caller then updates the rating tally
        with their change."""
        touched = np.fromiter(rows, dtype=np.int64, count=len(rows))
        if touched.size and int(touched.max()) >= self.histogram.shape[0]:
            self._allocate(max(int(touched.max()) + 1, 2 * self.histogram.shape[0]))
        return touched, self.histogram[touched], self.category_code[touched].astype(np.int64)

    def _next_generation(self, changed: IntArray) -> None:
        """Moves to the next generation, remembering the rows it changed (lock held)."""
        self.generation += 1
        self._changes.append((self.generation, changed.astype(np.int64, copy=False)))

    def lookup(self, product_ids: Sequence[str], encoded: EncodedIds | None = None) -> Lookup:
        """The products' rows (0 for unknown ones) and the generation they were read at;
        ``encoded``, the ids' bytes, speeds up a lookup in a large catalogue."""
        with self._lock:
            return Lookup(self._index.rows(product_ids, encoded), self.generation)

    def amount(self, idx: IntArray) -> IntArray:
        """How much feedback backs each row: ratings + likes + dislikes (the tie-break)."""
        with self._lock:
            total = self.rating_count[idx] + self.likes[idx] + self.dislikes[idx]
        return total.astype(np.int64, copy=False)

    def set_damped(self, parts: DampedParts) -> int:
        """Takes these as the damped parts of the products' sums; the rows whose part
        changed move to a new generation (cached scores then take them again). Returns
        how many rows changed."""
        with self._lock:
            changed = parts.changed_against(self._damped)
            self._damped = parts
            if changed.size:
                self._next_generation(changed)
            return int(changed.size)

    def damped_votes(self, product_ids: Sequence[str]) -> FloatArray:
        """What the defences leave out of each product's ratings, likes and dislikes, as
        votes: shape (products, 3), zeros for those without a damped part."""
        with self._lock:
            rows = self._index.rows(product_ids, None)
            damped = self._damped
        out = np.zeros((len(product_ids), 3))
        where, mine = damped.match(rows)
        out[where, 0] = damped.rating_count[mine]
        out[where, 1] = damped.likes[mine]
        out[where, 2] = damped.dislikes[mine]
        return out

    def vote_total(self) -> int:
        """Ratings, likes and dislikes in force over every product."""
        with self._lock:
            size = self._size
            total = self.rating_count[:size].sum(dtype=np.int64) + self.likes[:size].sum(
                dtype=np.int64
            )
            return int(total + self.dislikes[:size].sum(dtype=np.int64))

    def weighing_inputs(self) -> tuple[FloatArray, npt.NDArray[np.int32]]:
        """Every row's listing time (Unix seconds) and category code (NO_CATEGORY for
        none), row 0 included: what vote weights are computed with."""
        with self._lock:
            size = self._size
            return self.listed_at_us[:size] / 1e6, self.category_code[:size].copy()

    def changed_rows(
        self,
        since: int | None = None,
        listing: bool = False,
        comments: CommentWeighing | None = None,
        weighed: bool = False,
    ) -> ScoringRows | None:
        """The rows changed after generation ``since``, with their evidence (plain counts;
        comments weighed by channel as ``comments`` says), as of now; every row in use
        when ``since`` is None. None when the change log no longer reaches back to
        ``since`` (the caller then starts again from every row). ``listing``: with
        whether each is listed and its other categories (not for None)."""
        if since is None:
            return self.rows_between(0, None, comments, weighed)
        with self._lock:
            size = self._size
            missed = self.generation - since
            if missed < 0 or missed > len(self._changes):
                return None
            if missed and self._changes[-missed][0] != since + 1:
                return None
            recent = [self._changes[-k][1] for k in range(missed, 0, -1)]
            idx = np.unique(np.concatenate(recent)) if recent else np.zeros(0, np.int64)
            active = more = None
            if listing:
                active = self.active[idx]
                more = tuple(self._categories.more_codes(i) for i in idx.tolist())
            return ScoringRows(
                self.generation,
                idx,
                self._evidence(idx, None, 0.0, comments=comments, weighed=weighed),
                self.category_code[idx],
                size,
                active,
                more,
            )

    def _evidence_of(
        self, part: slice, comments: CommentWeighing | None = None, weighed: bool = False
    ) -> Evidence:
        """Copies of the counts of a range of rows (lock held): slices copied are several
        times faster than rows taken. Comments weighed by channel as ``comments`` says;
        the damped parts left out when ``weighed``."""
        evidence = Evidence(
            rating_count=self.rating_count[part].copy(),
            star_sum=self.star_sum[part].copy(),
            likes=self.likes[part].copy(),
            dislikes=self.dislikes[part].copy(),
            histogram=self.histogram[part].copy(),
            comments=self.comments[part].copy(),
            sentiment_sum=self.sentiment_sum[part] / SENTIMENT_SCALE,
            poll_strength=self.poll_strength[part].copy(),
            polls_shown=self.polls_shown[part].copy(),
            polls_won=self.polls_won[part].copy(),
        )
        if weighed:
            rows = np.arange(part.start, part.stop, dtype=np.int64)
            evidence = self._damped.less(evidence, rows, None, 0.0)
        if comments is None:
            return evidence
        count, total = self._weighed_comments(part, comments)
        return replace(evidence, comments=count, sentiment_sum=total)

    def _weighed_comments(
        self, rows: IntArray | slice, weighing: CommentWeighing
    ) -> tuple[FloatArray, FloatArray]:
        """The rows' comment counts and sums of scores with the channels weighed (lock
        held; the channels are kept: enable_comment_channels)."""
        channels = self._comment_channels
        if channels is None or not weighing.names <= channels.names:
            raise KeyError(f"comment sums of channels {sorted(weighing.names)} are not kept")
        return channels.weighted(rows, weighing, self.comments[rows], self.sentiment_sum[rows])

    def rows_between(
        self,
        start: int,
        stop: int | None,
        comments: CommentWeighing | None = None,
        weighed: bool = False,
    ) -> ScoringRows:
        """Rows ``start`` to ``stop`` (None: the last in use), with their evidence, as of
        now: a whole catalogue can be read a part at a time, holding the lock briefly."""
        with self._lock:
            size = self._size
            stop = size if stop is None else min(stop, size)
            start = min(start, stop)
            part = slice(start, stop)
            evidence = self._evidence_of(part, comments, weighed)
            codes = self.category_code[part].copy()
            idx = np.arange(start, stop, dtype=np.int64)
            return ScoringRows(self.generation, idx, evidence, codes, size)

    @property
    def decay_dirty(self) -> list[int]:
        with self._lock:
            return sorted(self._decay_dirty)

    @property
    def keeps_decayed_sums(self) -> bool:
        return bool(self._decayed)

    def decay_missing(self, needs: Mapping[float, DecayNeed]) -> dict[float, DecayNeed]:
        """What of ``needs`` (ranking.profiles.decay_needs) the kept sums lack: each
        half-life to build, with all it must hold (what the kept one holds too)."""
        with self._lock:
            missing: dict[float, DecayNeed] = {}
            for half_life, need in needs.items():
                kept = self._decayed.get(half_life)
                if kept is None:
                    missing[half_life] = need
                elif not need.within(kept.need):
                    missing[half_life] = need.with_(kept.need)
            return missing

    def enable_decay(self, needs: Mapping[float, DecayNeed], votes: VoteTable) -> None:
        """Keeps time-decayed sums of these half-lives (seconds) holding what each need
        says, built from every vote (a kept one holding less is replaced); ``votes`` may
        be shares only if no need is of stars.

        The caller must make sure no write is applied between reading ``votes`` and the end
        of this call: before the writer starts, or on the writer thread between two
        transactions (Writer.run_exclusive). The sums are built before taking the lock, so
        readers are not held up meanwhile.
        """
        built = [
            decayed_from_votes(h, votes, self.rating_count.shape[0], need)
            for h, need in self.decay_missing(needs).items()
        ]
        with self._lock:
            for decayed in built:
                kept = self._decayed.get(decayed.half_life)
                if kept is None or not decayed.need.within(kept.need):
                    self._decayed[decayed.half_life] = decayed

    def comment_channels_missing(self, names: frozenset[str]) -> frozenset[str]:
        """Those of these comment channels whose sums are not kept."""
        with self._lock:
            held = frozenset() if self._comment_channels is None else self._comment_channels.names
        return names - held

    @property
    def comment_dirty(self) -> list[int]:
        with self._lock:
            return sorted(self._comment_dirty)

    @property
    def comment_channel_names(self) -> frozenset[str]:
        """The comment channels whose sums are kept (the change feed reads theirs)."""
        channels = self._comment_channels
        return frozenset() if channels is None else channels.names

    def enable_comment_channels(
        self, names: frozenset[str], read: Callable[[frozenset[str]], CommentRows]
    ) -> None:
        """Keeps the comments of these channels summed apart too (with those kept), built
        from the comments ``read`` returns for them all. As enable_decay, the caller makes
        sure no write is applied meanwhile."""
        wanted = names | self.comment_channel_names
        if wanted == self.comment_channel_names:
            return
        built = CommentChannels(wanted, self.rating_count.shape[0])
        built.load(read(wanted))
        with self._lock:
            built.grow(self.rating_count.shape[0])
            self._comment_channels = built
            self._comment_dirty.clear()

    @property
    def stars_decayed(self) -> bool:
        """Whether some decayed sums kept hold stars and likes (then the change feed reads
        every kind of vote, else shares only)."""
        return any(decayed.stars for decayed in self._decayed.values())

    @property
    def half_lives(self) -> set[float]:
        return set(self._decayed)

    def _evidence(
        self,
        idx: npt.NDArray[np.int64],
        half_life: float | None,
        now: float,
        extra: Extra = None,
        comments: CommentWeighing | None = None,
        weighed: bool = False,
    ) -> Evidence:
        """The rows' evidence (lock held): decayed to ``now`` for a half-life, comments
        weighed by channel as ``comments`` says, the damped parts left out when
        ``weighed``."""
        evidence = self._plain_evidence(idx, half_life, now, extra, comments)
        return self._damped.less(evidence, idx, half_life, now) if weighed else evidence

    def _plain_evidence(
        self,
        idx: npt.NDArray[np.int64],
        half_life: float | None,
        now: float,
        extra: Extra,
        comments: CommentWeighing | None,
    ) -> Evidence:
        """The rows' evidence as _evidence gives it, every vote counted in full."""
        if comments is None:
            counted: Counts = self.comments[idx]
            sentiment = self.sentiment_sum[idx] / SENTIMENT_SCALE
        else:
            counted, sentiment = self._weighed_comments(idx, comments)
        strength = self.poll_strength[idx]
        shown, won = self.polls_shown[idx], self.polls_won[idx]
        if half_life is not None:  # (comments and polls are not decayed)
            decayed = self._decayed_of(half_life, now, extra, DecayNeed(stars=True))
            return replace(
                decayed.evidence(idx, now),
                comments=counted,
                sentiment_sum=sentiment,
                poll_strength=strength,
                polls_shown=shown,
                polls_won=won,
            )
        return Evidence(
            rating_count=self.rating_count[idx],
            star_sum=self.star_sum[idx],
            likes=self.likes[idx],
            dislikes=self.dislikes[idx],
            histogram=self.histogram[idx],
            comments=counted,
            sentiment_sum=sentiment,
            poll_strength=strength,
            polls_shown=shown,
            polls_won=won,
        )

    def _decayed_of(
        self, half_life: float, now: float, extra: Extra, need: DecayNeed
    ) -> DecayedAggregates:
        """The decayed sums of this half-life holding what ``need`` says, kept or in
        ``extra`` (lock held)."""
        decayed = self._decayed.get(half_life)
        if (decayed is None or not need.within(decayed.need)) and extra is not None:
            decayed = extra.get(half_life, decayed)
        if decayed is None:
            raise KeyError(f"no decayed aggregates for half-life {half_life} s")
        decayed.maybe_rebase(now)
        return decayed

    def _with_shares(
        self,
        evidence: Evidence,
        idx: IntArray,
        weighing: ShareWeighing | None,
        now: float,
        extra: Extra,
    ) -> Evidence:
        """The evidence with the rows' decayed shares and exposure (_share_columns); as it
        is for None (lock held)."""
        if weighing is None:
            return evidence
        shares, exposure = self._share_columns(idx, weighing, now, extra)
        return replace(evidence, shares=shares, exposure=exposure)

    def _share_columns(
        self, idx: IntArray, weighing: ShareWeighing, now: float, extra: Extra
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The rows' decayed shares (weighted by channel) and exposure in days
        (ranking.shares) at ``now`` (lock held)."""
        half_life, channels = weighing
        sums = self._decayed_of(half_life, now, extra, DecayNeed(channels=weighing.names))
        listed = self.listed_at_us[idx] / 1e6
        return sums.shares_at(idx, now, channels), exposure_days(listed, now, half_life)

    def gather(
        self,
        product_ids: Sequence[str],
        half_life: float | None = None,
        now: float = 0.0,
        extra: Extra = None,
        encoded: EncodedIds | None = None,
        shares: ShareWeighing | None = None,
        comments: CommentWeighing | None = None,
        weighed: bool = False,
    ) -> Gathered:
        """The products' aggregates (time-decayed to ``now`` when a half-life is given),
        with their decayed shares and exposure when a share half-life is, their comments
        weighed by channel as ``comments`` says, and the damped parts left out when
        ``weighed`` (``raw`` keeps plain counts).

        ``extra``: decayed sums of half-lives the catalogue does not keep (a preview's);
        ``encoded``: the ids' bytes, if at hand (see lookup).
        """
        with self._lock:
            weighed = weighed and self._damped.size > 0  # (no second copy when none is)
            idx = self._index.rows(product_ids, encoded)  # unknown: row 0, all zeros
            raw = self._evidence(idx, None, now)
            evidence = raw
            if half_life is not None or comments is not None or weighed:
                evidence = self._evidence(idx, half_life, now, extra, comments, weighed)
            evidence = self._with_shares(evidence, idx, shares, now, extra)
            codes = self.category_code[idx]
        return Gathered(evidence, raw, idx > 0, codes, self._categories.names)

    def listing(self, product_ids: Sequence[str]) -> list[Listing]:
        """What the shop's catalogue says of each product (nothing of unknown ones)."""
        with self._lock:
            idx = self._index.rows(product_ids, None)
            return [
                Listing(not listed, self._categories.more_of(row), self._display.get(row, ""))
                for row, listed in zip(idx.tolist(), self.active[idx].tolist(), strict=True)
            ]

    def sharers(self, product_ids: Sequence[str]) -> list[int]:
        """How many users shared each product (0 for unknown ones)."""
        with self._lock:
            idx = self._index.rows(product_ids, None)
            sharers: list[int] = self.shares[idx].tolist()
            return sharers

    def code_of_category(self, name: str) -> int | None:
        """The code of a category some product is or was in (None: none ever was)."""
        with self._lock:
            return self._categories.codes.get(name)

    def category_names(self) -> list[str]:
        with self._lock:
            return list(self._categories.names)

    def ids_of(self, rows: Sequence[int]) -> list[str]:
        """The product ids of these rows (idx values), each in use."""
        with self._lock:
            ids = self._index.ids
            return [ids[row] for row in rows]

    def display_of(self, rows: Sequence[int]) -> list[str]:
        """The display fields (JSON, "" for none) of the products at these idx values."""
        with self._lock:
            return [self._display.get(row, "") for row in rows]

    def rating_groups(self) -> tuple[int, RatingGroups]:
        """The generation, and every rated product's star sums grouped by its number of
        ratings: what the marginal prior is fitted on, kept as rows change (a copy of a
        few arrays as long as the largest rating count, not of every row)."""
        with self._lock:
            return self.generation, self._tally.groups()

    def category_rating_groups(self) -> tuple[int, CategoryRatingGroups, int]:
        """The generation, every rated product's star sums grouped by its category and
        number of ratings (what the per-category prior is fitted on, kept as rows
        change), and the number of categories."""
        with self._lock:
            groups = self._tally.category_groups()
            return self.generation, groups, len(self._categories.names)

    def share_exposures(
        self, weighing: ShareWeighing, now: float, extra: Extra = None
    ) -> tuple[int, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The generation, and every product's decayed shares and exposure in days at
        ``now`` as a profile weighs them, from sums kept or in ``extra`` (what the share
        prior is fitted on)."""
        with self._lock:
            rows = self._index.used_rows()
            return self.generation, *self._share_columns(rows, weighing, now, extra)

    def comment_sums(
        self,
    ) -> tuple[int, IntArray, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The generation, and every product's comments, sum of scores and sum of squared
        scores (scores in [−1, 1]): what the sentiment prior is fitted on."""
        with self._lock:
            size = self._size
            scale = float(SENTIMENT_SCALE)
            return (
                self.generation,
                self.comments[1:size].copy(),
                self.sentiment_sum[1:size] / scale,
                self.sentiment_squares[1:size] / (scale * scale),
            )

    def poll_rows(self, rows: PollRows) -> tuple[int, PollVotes, FloatArray]:
        """The poll generation; the poll votes as ranking.polls' flat arrays, those that
        name a product not held yet, lost one (a product missing from the join), or do
        not choose exactly one of their products left out; and the strengths in force,
        one per row from 0 (the start of the next fit)."""
        with self._lock:
            generation = self.poll_generation
            size = self._size
            start = self.poll_strength[:size].copy()
        vote, idx, chosen = rows.vote, rows.product_idx, rows.chosen  # (in vote order)
        if not vote.size:
            return generation, PollVotes(idx, np.zeros(1, dtype=np.int64), idx), start
        starts = np.flatnonzero(np.concatenate([[True], vote[1:] != vote[:-1]]))
        sizes = np.diff(np.append(starts, vote.size))
        held = (idx > 0) & (idx < size)
        chosen_of = vote[chosen]  # (one per vote, in vote order, if each chose one)
        if (
            held.all()
            and chosen_of.size == starts.size
            and np.all(chosen_of[1:] != chosen_of[:-1])
            and sizes.min() >= MIN_SHOWN
        ):  # every vote kept (most fits: a third of this one's cost on 334,000 votes)
            offsets = np.append(starts, vote.size)
            return generation, PollVotes(idx, offsets, idx[chosen]), start
        beyond = np.add.reduceat((~held).astype(np.int64), starts)
        picks = np.add.reduceat(chosen.astype(np.int64), starts)
        keep = (beyond == 0) & (picks == 1) & (sizes >= MIN_SHOWN)
        kept_rows = np.repeat(keep, sizes)
        offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(sizes[keep], out=offsets[1:])
        return generation, PollVotes(idx[kept_rows], offsets, idx[chosen & kept_rows]), start

    def set_poll_strengths(self, strengths: FloatArray, tolerance: float) -> int:
        """Puts fitted strengths (one per row from 0) in force: rows whose strength moved by
        more than ``tolerance`` (relative) change, as if written. Returns how many."""
        with self._lock:
            n = min(strengths.shape[0], self._size)
            held = self.poll_strength[:n]
            moved = np.flatnonzero(np.abs(strengths[:n] - held) > tolerance * held)
            if moved.size:
                self.poll_strength[moved] = strengths[moved]
                self._next_generation(moved.astype(np.int64))
            return int(moved.size)

    def histograms(self, likes: bool = False) -> Histograms:
        """What priors are fitted on; each product's likes and dislikes too if ``likes``."""
        with self._lock:
            size = self._size
            return Histograms(
                seq=self.generation,
                histogram=self.histogram[1:size].copy(),
                category_code=self.category_code[1:size].copy(),
                n_categories=len(self._categories.names),
                likes=self.likes[1:size].copy() if likes else None,
                dislikes=self.dislikes[1:size].copy() if likes else None,
            )

    def snapshot(
        self,
        half_life: float | None = None,
        now: float = 0.0,
        extra: Extra = None,
        shares: ShareWeighing | None = None,
        comments: CommentWeighing | None = None,
        weighed: bool = False,
    ) -> Snapshot:
        with self._lock:
            size = self._size
            weighed = weighed and self._damped.size > 0
            rows = np.arange(1, size, dtype=np.int64)
            raw = self._evidence(rows, None, now)
            evidence = raw
            if half_life is not None or comments is not None or weighed:
                evidence = self._evidence(rows, half_life, now, extra, comments, weighed)
            evidence = self._with_shares(evidence, rows, shares, now, extra)
            return Snapshot(
                seq=self.generation,
                through_seq=self.seq,
                product_ids=RowIds(self._index.ids, size),
                evidence=evidence,
                raw=raw,
                category_code=self.category_code[1:size].copy(),
                categories=dict(self._categories.codes),
                active=self.active[1:size].copy(),
                also_in=self._categories.members(),
            )

    def snapshot_in_parts(
        self,
        rows_per_part: int,
        between: Callable[[], None],
        comments: CommentWeighing | None = None,
        weighed: bool = False,
    ) -> Snapshot:
        """A snapshot of plain counts read ``rows_per_part`` rows at a time, holding the
        lock for one part only (a million rows at once held writers and lookups for about
        10 ms), ``between`` called between two parts. Its generation and sequence number are
        those of the first part: rows written while it is read are newer than it says, and
        whoever keeps it must take the rows changed since that generation for newer."""
        with self._lock:
            size = self._size
            seq, through_seq = self.generation, self.seq
            product_ids = RowIds(self._index.ids, size)
            categories = dict(self._categories.codes)
            also_in = self._categories.members()
            damped = self._damped
        parts: list[tuple[Evidence, npt.NDArray[np.int32], npt.NDArray[np.bool_]]] = []
        for start in range(1, max(size, 2), rows_per_part):  # (one part, empty, if no row)
            if parts:
                between()
            with self._lock:
                part = slice(start, min(start + rows_per_part, size))
                evidence = self._evidence_of(part, comments)
                parts.append((evidence, self.category_code[part].copy(), self.active[part].copy()))
        joined = Evidence(
            **{
                name: np.concatenate([getattr(e, name) for e, _, _ in parts])
                for name in _PLAIN_EVIDENCE
            }
        )
        evidence = joined
        if weighed:  # (the damped parts as of the first part, as its generation)
            evidence = damped.less(joined, np.arange(1, 1 + len(product_ids)), None, 0.0)
        return Snapshot(
            seq=seq,
            through_seq=through_seq,
            product_ids=product_ids,
            evidence=evidence,
            raw=joined,
            category_code=np.concatenate([c for _, c, _ in parts]),
            categories=categories,
            active=np.concatenate([a for _, _, a in parts]),
            also_in=also_in,
        )


# The columns of the evidence of plain (not decayed) counts.
_PLAIN_EVIDENCE = (
    "rating_count", "star_sum", "likes", "dislikes", "histogram", "comments", "sentiment_sum",
    "poll_strength", "polls_shown", "polls_won",
)  # fmt: skip


def decayed_from_votes(
    half_life: float, votes: VoteTable, capacity: int, need: DecayNeed
) -> DecayedAggregates:
    """Time-decayed sums of one half-life (seconds) over every vote given, holding what
    ``need`` says."""
    decayed = DecayedAggregates(half_life, capacity, channels=need.channels, stars=need.stars)
    decayed.load(votes)
    return decayed
