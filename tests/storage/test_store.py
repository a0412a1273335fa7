"""Both stores, on real SQLite files and a real PostgreSQL server: vote semantics against a
plain model, recount, persistence."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviewrank.service.app.store import AppliedGroup, DatabaseURL, Store
from reviewrank.service.domain.errors import StoreError
from reviewrank.service.domain.values import (
    Erasure,
    Event,
    EventBatch,
    LikeEvent,
    LikeValue,
    Outcome,
    PollVoteEvent,
    ProductRow,
    RatingEvent,
    WriteResults,
)
from reviewrank.service.storage.common import product_row
from reviewrank.service.storage.factory import open_store
from reviewrank.service.storage.sqlite.bulk import write_columns, write_rows
from reviewrank.service.storage.sqlite.store import SQLiteStore
from reviewrank.service.storage.tables import PRODUCT_COLUMNS
from tests.conftest import both_backends

PRODUCTS = ["p0", "p1", "p2"]
USERS = ["u0", "u1", "u2"]

ratings = st.builds(
    RatingEvent,
    event_id=st.sampled_from([f"e{i}" for i in range(40)]),
    product_id=st.sampled_from(PRODUCTS),
    user_id=st.sampled_from(USERS),
    stars=st.integers(1, 5),
    occurred_at_us=st.integers(0, 20),
)
likes = st.builds(
    LikeEvent,
    event_id=st.sampled_from([f"e{i}" for i in range(40)]),
    product_id=st.sampled_from(PRODUCTS),
    user_id=st.sampled_from(USERS),
    value=st.sampled_from(list(LikeValue)),
    occurred_at_us=st.integers(0, 20),
)
event_lists = st.lists(st.lists(st.one_of(ratings, likes), min_size=1, max_size=6), max_size=12)


class Model:
    """The vote semantics in plain Python."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.votes: dict[tuple[str, str, str], tuple[int, str, int]] = {}

    def apply(self, event: Event) -> Outcome:
        if event.event_id in self.seen:
            return Outcome.DUPLICATE
        self.seen.add(event.event_id)
        kind = "rating" if isinstance(event, RatingEvent) else "like"
        value = event.stars if isinstance(event, RatingEvent) else int(event.value)
        key = (kind, event.product_id, event.user_id)
        current = self.votes.get(key)
        if current is not None and current[:2] >= (event.occurred_at_us, event.event_id):
            return Outcome.SUPERSEDED
        self.votes[key] = (event.occurred_at_us, event.event_id, value)
        return Outcome.APPLIED

    def aggregates(self, product: str) -> tuple[int, int, tuple[int, ...], int, int]:
        stars = [v[2] for (k, p, _), v in self.votes.items() if k == "rating" and p == product]
        votes = [v[2] for (k, p, _), v in self.votes.items() if k == "like" and p == product]
        histogram = tuple(stars.count(s) for s in range(1, 6))
        return len(stars), sum(stars), histogram, votes.count(1), votes.count(-1)


@both_backends
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(jobs=event_lists)
def test_store_matches_the_model_and_its_own_recount(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    jobs: list[list[Event]],
) -> None:
    if backend == "postgresql":  # a fresh database per example
        where = DatabaseURL.parse(request.getfixturevalue("pg_cluster").create_database())
    else:
        where = DatabaseURL.for_path(tmp_path_factory.mktemp("store") / "db.sqlite")
    store = open_store(where)
    model = Model()
    try:
        for start in range(0, len(jobs), 3):  # several jobs per transaction, like group commit
            group = jobs[start : start + 3]
            applied = store.apply(group)
            expected = [[model.apply(e) for e in job] for job in group]
            assert expected == [[r.outcome for r in job] for job in applied.results]
        table = store.load_products()
        for i, product in enumerate(table.product_ids):
            got = (
                int(table.rating_count[i]),
                int(table.star_sum[i]),
                tuple(int(x) for x in table.histogram[i]),
                int(table.likes[i]),
                int(table.dislikes[i]),
            )
            assert model.aggregates(product) == got
        assert [] == store.aggregate_mismatches()
    finally:
        store.close()


@both_backends
def test_sequence_numbers_are_dense_and_skip_duplicates(make_store: Callable[[], Store]) -> None:
    store = make_store()
    event = RatingEvent("a", "p", "u", 3, 10)

    group = store.apply([[event, event, RatingEvent("b", "p", "v", 4, 10)]])

    assert [1, 0, 2] == [r.seq for r in group.results[0]]
    assert 2 == group.seq == store.last_seq()
    store.close()


@both_backends
def test_commit_returns_the_final_state_of_each_touched_product(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()

    group = store.apply([[RatingEvent("a", "p", "u", 3, 10), RatingEvent("b", "p", "u", 5, 20)]])

    [row] = group.products
    assert (1, 5, (0, 0, 0, 0, 1), 2) == (row.rating_count, row.star_sum, row.histogram, row.seq)
    store.close()


@both_backends
def test_committed_events_persist_across_reopen(make_store: Callable[[], Store]) -> None:
    store = make_store()
    store.apply([[RatingEvent("a", "p", "u", 4, 10), LikeEvent("b", "p", "u", LikeValue.LIKE, 10)]])
    store.close()

    reopened = make_store()
    table = reopened.load_products()

    assert (["p"], [1], [4], [1], 2) == (
        table.product_ids,
        table.rating_count.tolist(),
        table.star_sum.tolist(),
        table.likes.tolist(),
        table.seq,
    )
    reopened.close()


def test_store_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")

    mode = store.conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = store.conn.execute("PRAGMA synchronous").fetchone()[0]

    assert ("wal", 2) == (mode, sync)  # 2 = FULL
    store.close()


@both_backends
def test_load_products_after_a_sequence_returns_only_later_changes(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    store.apply([[RatingEvent("a", "p1", "u", 4, 10)]])
    store.apply([[RatingEvent("b", "p2", "u", 4, 10)]])

    assert ["p2"] == store.load_products(after_seq=1).product_ids
    store.close()


def test_rows_changed_since_a_sequence_number_are_found_by_its_index(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply([[RatingEvent(f"e{i}", f"p{i}", "u", 4, 10) for i in range(50)]])
    store.apply([[RatingEvent("later", "p7", "u2", 5, 10)]])
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)

    changed = store.load_products(after_seq=store.last_seq() - 1)

    store.conn.set_trace_callback(None)
    [read] = [s for s in statements if "FROM products" in s]
    plan = " ".join(row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + read))
    assert (["p7"], True, False) == (
        changed.product_ids,
        "INDEX products_seq" in plan,
        "SCAN products" in plan,
    )
    store.close()


ODD_IDS = ["plain", 'quo"te', "back\\slash", "tab\tand\nnewline", "ünïcødé-✓", "x" * 200, "{[,]}"]


@both_backends
def test_every_product_reads_back_as_written_whatever_its_id(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    events = [
        RatingEvent(f"e{i}", pid, f"u{i}", 1 + i % 5, 10, category=f"c {pid[:3]}")
        for i, pid in enumerate(ODD_IDS)
    ]
    store.apply([events, [LikeEvent("like", ODD_IDS[1], "u9", LikeValue.LIKE, 10)]])

    table = make_store().load_products()

    assert sorted(ODD_IDS) == sorted(table.product_ids)
    by_id = dict(zip(table.product_ids, range(len(table.product_ids)), strict=True))
    got = [
        (table.categories[by_id[p]], int(table.rating_count[by_id[p]]),
         int(table.star_sum[by_id[p]]), int(table.likes[by_id[p]]))
        for p in ODD_IDS
    ]  # fmt: skip
    expected = [(f"c {p[:3]}", 1, 1 + i % 5, int(i == 1)) for i, p in enumerate(ODD_IDS)]
    assert expected == got


@both_backends
def test_writes_from_two_connections_add_up(make_store: Callable[[], Store]) -> None:
    """Each SQLite store keeps the rows it wrote between groups: another connection's
    write must be seen, not overwritten with the remembered row."""
    first, second = make_store(), make_store()

    first.apply([[RatingEvent("a", "p", "u1", 5, 10)]])
    second.apply([[RatingEvent("b", "p", "u2", 3, 10)]])
    group = first.apply(
        [[RatingEvent("c", "p", "u3", 1, 10), LikeEvent("d", "p", "u1", LikeValue.LIKE, 10)]]
    )

    [row] = group.products
    assert (3, 9, (1, 0, 1, 0, 1), 1, 4) == (
        row.rating_count,
        row.star_sum,
        row.histogram,
        row.likes,
        row.seq,
    )
    assert [] == first.aggregate_mismatches()
    first.close()
    second.close()


def test_a_failed_group_leaves_no_remembered_row_behind(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply([[RatingEvent("a", "p", "u1", 5, 10)]])
    # A like value the table refuses, in a group that changed p first: all rolled back.
    bad_like = EventBatch(["c"], ["q"], ["u2"], [2], [10], [""], ["like"])

    with pytest.raises(StoreError):
        store.apply([[RatingEvent("b", "p", "u2", 4, 10)], Erasure("nobody"), bad_like])
    group = store.apply([[RatingEvent("d", "p", "u3", 2, 10)]])

    assert [(2, 7)] == [(row.rating_count, row.star_sum) for row in group.products]
    assert [] == store.aggregate_mismatches()
    store.close()


@pytest.mark.parametrize("rows", [0, 1, 15, 16, 17, 300, 600])
def test_rows_are_written_in_bulk_as_given(tmp_path: Path, rows: int) -> None:
    conn = sqlite3.connect(tmp_path / "bulk.db", isolation_level=None)
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, w REAL)")
    wanted = [(i, f"v{i}", i / 2) for i in range(rows)]

    write_columns(
        conn,
        "INSERT INTO t (k, v, w) VALUES {values}",
        [list(c) for c in zip(*wanted, strict=True)] or [[], [], []],
    )
    write_rows(
        conn,
        "UPDATE t SET v = d.column2 FROM (VALUES {values}) AS d WHERE t.k = d.column1",
        [(i, f"x{i}") for i in range(0, rows, 2)],
    )

    expected = [(i, f"x{i}" if i % 2 == 0 else f"v{i}", i / 2) for i in range(rows)]
    assert expected == conn.execute("SELECT k, v, w FROM t ORDER BY k").fetchall()


# Groups of jobs: batches of events, or erasures (whose event ids are then replays).
# Most ids are new, some are replays of a few: most batches take the insert-first path.
_ids = st.one_of(st.uuids().map(str), st.sampled_from([f"e{i}" for i in range(6)]))
_events = st.one_of(
    st.builds(
        RatingEvent,
        event_id=_ids,
        product_id=st.sampled_from(PRODUCTS),
        user_id=st.sampled_from(USERS),
        stars=st.integers(1, 5),
        occurred_at_us=st.integers(0, 20),
        category=st.sampled_from(["", "c1", "c2"]),
    ),
    st.builds(
        LikeEvent,
        event_id=_ids,
        product_id=st.sampled_from(PRODUCTS),
        user_id=st.sampled_from(USERS),
        value=st.sampled_from(list(LikeValue)),
        occurred_at_us=st.integers(0, 20),
    ),
    st.lists(st.sampled_from(PRODUCTS), min_size=2, max_size=3, unique=True).flatmap(
        lambda shown: st.builds(
            PollVoteEvent,
            event_id=_ids,
            poll_id=st.sampled_from(["q1", "q2"]),
            user_id=st.sampled_from(USERS),
            shown=st.just(tuple(shown)),
            chosen=st.sampled_from(shown),
            occurred_at_us=st.integers(0, 20),
        )
    ),
)
jobs_with_erasures = st.lists(
    st.one_of(
        st.lists(_events, min_size=1, max_size=6),
        st.builds(Erasure, user_id=st.sampled_from(USERS)),
    ),
    max_size=15,
)


def _dump(store: SQLiteStore) -> list[tuple[str, list[tuple[object, ...]]]]:
    return [(table, sorted(rows, key=repr)) for table, rows in store.export(chunk=1000)]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(jobs=jobs_with_erasures)
def test_writing_a_batch_as_new_first_ends_as_looking_ids_and_votes_up_first(
    tmp_path_factory: pytest.TempPathFactory, jobs: list[list[Event] | Erasure]
) -> None:
    """SQLiteStore writes a batch of distinct new ids as if every vote were the first on
    its key, and falls back when an insert finds a row (an id recorded before, a vote in
    force): every result, product row, vote change and stored row is as if it had looked
    the ids and votes up first."""
    where = tmp_path_factory.mktemp("paths")
    first, looked_up = SQLiteStore(where / "first.db"), SQLiteStore(where / "looked-up.db")
    looked_up.insert_first = False
    try:
        for start in range(0, len(jobs), 3):
            group = jobs[start : start + 3]
            a, b = first.apply(group, now_us=start), looked_up.apply(group, now_us=start)
            assert (a.results, a.products, list(a.votes), a.seq, a.seq_before) == (
                b.results,
                b.products,
                list(b.votes),
                b.seq,
                b.seq_before,
            )
        assert _dump(looked_up) == _dump(first)
        assert [] == first.aggregate_mismatches()
    finally:
        first.close()
        looked_up.close()


def _stored_rows(path: Path) -> dict[str, ProductRow]:
    """Every product row in the database file, read by a connection of its own."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(f"SELECT {PRODUCT_COLUMNS} FROM products").fetchall()
    return {row[1]: product_row(row) for row in rows}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(jobs=jobs_with_erasures)
def test_the_rows_a_commit_returns_are_the_rows_it_stored(
    tmp_path_factory: pytest.TempPathFactory, jobs: list[list[Event] | Erasure]
) -> None:
    """Rows whose poll counts alone moved are written by a narrower statement than the
    others: either way, the rows handed to the catalogue are those in the database."""
    path = tmp_path_factory.mktemp("rows") / "db.sqlite"
    store = SQLiteStore(path)
    try:
        for start in range(0, len(jobs), 3):
            group = store.apply(jobs[start : start + 3], now_us=start)
            stored = _stored_rows(path)

            assert {row.product_id: stored[row.product_id] for row in group.products} == {
                row.product_id: row for row in group.products
            }
    finally:
        store.close()


def _outcomes(group: AppliedGroup) -> list[Outcome]:
    [results] = group.results
    assert isinstance(results, WriteResults)
    return results.outcomes


def test_a_batch_of_new_votes_is_written_without_looking_anything_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply([[RatingEvent("a", "p", "u1", 5, 10)]])
    store.apply([Erasure("u1")])  # erased ids are still looked up (by hash)
    looked_up: list[str] = []

    def spy(name: str) -> None:
        method = getattr(SQLiteStore, name)

        def counted(self: SQLiteStore, *args: object) -> object:
            looked_up.append(name)
            return method(self, *args)

        monkeypatch.setattr(SQLiteStore, name, counted)

    spy("_known_event_ids")
    spy("_current_votes")

    fresh = store.apply([[RatingEvent("b", "p", "u2", 4, 20), RatingEvent("c", "q", "u2", 3, 20)]])
    assert ([], [Outcome.APPLIED] * 2) == (looked_up, _outcomes(fresh))

    # u2 voted on p before: the votes in force are read (ratings and likes), not the ids.
    again = store.apply(
        [[RatingEvent("d", "p", "u2", 1, 5), LikeEvent("e", "p", "u3", LikeValue.LIKE, 20)]]
    )
    assert ["_current_votes", "_current_votes"] == looked_up
    assert [Outcome.SUPERSEDED, Outcome.APPLIED] == _outcomes(again)
    assert [("d", "SUPERSEDED"), ("e", "APPLIED")] == store.conn.execute(
        "SELECT event_id, outcome FROM events WHERE event_id IN ('d', 'e') ORDER BY seq"
    ).fetchall()

    # An id recorded before (b) or erased before (a): everything is looked up.
    looked_up.clear()
    replay = store.apply([[RatingEvent("b", "p", "u2", 4, 20), RatingEvent("a", "z", "u9", 1, 1)]])
    assert ["_known_event_ids", "_current_votes", "_current_votes"] == looked_up
    assert [Outcome.DUPLICATE] * 2 == _outcomes(replay)
    assert (6, 4) == (store.last_seq(), store.count_events())  # b, c, d, e (a was erased)
    assert [] == store.aggregate_mismatches()
    store.close()
