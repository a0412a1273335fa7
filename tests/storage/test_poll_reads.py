"""Store.load_poll_rows after a sequence number: the votes read before, with those put in
force since read over them, are the votes in force, on SQLite and PostgreSQL; an erasure
shows in the count of votes in force (the poll fitter then reads them all)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviewrank.service.app.store import DatabaseURL, PollRows, Store
from reviewrank.service.domain.values import Erasure, PollVoteEvent
from reviewrank.service.storage.factory import open_store
from reviewrank.service.storage.postgres import reads as pg_reads
from reviewrank.service.storage.sqlite import reads
from reviewrank.service.storage.sqlite.store import SQLiteStore
from tests.conftest import both_backends

PRODUCTS = [f"p{k}" for k in range(6)]


@st.composite
def poll_vote(draw: st.DrawFn) -> PollVoteEvent:
    shown = draw(st.lists(st.sampled_from(PRODUCTS), min_size=2, max_size=3, unique=True))
    return PollVoteEvent(
        draw(st.sampled_from([f"e{k}" for k in range(40)])),  # repeats: duplicates
        draw(st.sampled_from([f"q{k}" for k in range(5)])),
        draw(st.sampled_from([f"u{k}" for k in range(5)])),
        tuple(shown),
        draw(st.sampled_from(shown)),
        draw(st.integers(0, 5)),  # ties and older votes: superseded ones
    )


groups = st.lists(
    st.lists(
        st.one_of(
            st.lists(poll_vote(), min_size=1, max_size=6),
            st.builds(Erasure, st.sampled_from([f"u{k}" for k in range(5)])),
        ),
        min_size=1,
        max_size=2,
    ),
    min_size=1,
    max_size=6,
)


def _votes(rows: PollRows) -> list[tuple[int, tuple[tuple[int, bool], ...]]]:
    """Each vote's number with its (product idx, chosen) rows, in order."""
    out: dict[int, list[tuple[int, bool]]] = {}
    for vote, idx, chosen in zip(
        rows.vote.tolist(), rows.product_idx.tolist(), rows.chosen.tolist(), strict=True
    ):
        out.setdefault(vote, []).append((idx, chosen))
    return sorted((vote, tuple(sorted(pairs))) for vote, pairs in out.items())


@pytest.fixture
def make_store(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    def make() -> Store:
        if backend == "postgresql":  # a fresh database per example
            url = request.getfixturevalue("pg_cluster").create_database()
            return open_store(DatabaseURL.parse(url))
        return open_store(DatabaseURL.for_path(tmp_path_factory.mktemp("polls") / "db.sqlite"))

    yield make


def _read_since_over_read_before(
    store: Store, history: list[list[list[PollVoteEvent] | Erasure]]
) -> None:
    """After each group of the history: the votes read since the last read, over those
    read then, are the votes in force (unless an erasure took some away)."""
    follower = store.follower()
    try:
        held = follower.load_poll_rows()
        for group in history:
            store.apply(group)
            changed = follower.load_poll_rows(after_seq=held.seq, mark=held.mark)
            merged = held.merged(changed)
            every = follower.load_poll_rows()

            erased = any(isinstance(job, Erasure) for job in group)
            assert (every.seq, every.in_force) == (changed.seq, changed.in_force)
            assert every.in_force == every.votes
            if merged.votes == changed.in_force:
                assert _votes(every) == _votes(merged)
            else:
                assert erased  # only what an erasure took away is missed
            held = every
    finally:
        follower.close()
        store.close()


@both_backends
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=groups)
def test_votes_read_since_over_those_read_before_are_the_votes_in_force(
    make_store: object, history: list[list[list[PollVoteEvent] | Erasure]]
) -> None:
    _read_since_over_read_before(make_store(), history)  # type: ignore[operator]


@pytest.mark.parametrize("voters_share", [0.0, 1.0], ids=["every-vote", "voters-votes"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=groups)
def test_each_way_of_reading_replaced_votes_reads_the_votes_in_force(
    voters_share: float,
    history: list[list[list[PollVoteEvent] | Erasure]],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reads, "_VOTERS_SHARE", voters_share)
    path = tmp_path_factory.mktemp("ways") / "db.sqlite"
    _read_since_over_read_before(SQLiteStore(path), history)


@both_backends
def test_a_vote_replaced_by_a_newer_one_is_read_since_under_its_own_number(
    make_store: object,
) -> None:
    store: Store = make_store()  # type: ignore[operator]
    follower = store.follower()
    try:
        store.apply([[PollVoteEvent("a", "q", "u", ("p1", "p2"), "p1", 10)]])
        store.apply([[PollVoteEvent("b", "q", "v", ("p1", "p2"), "p1", 10)]])
        before = follower.load_poll_rows()
        store.apply([[PollVoteEvent("c", "q", "u", ("p2", "p3"), "p3", 20)]])

        changed = follower.load_poll_rows(after_seq=before.seq)

        assert (1, 2) == (changed.votes, changed.in_force)
        u_before = [v for v, _ in _votes(before) if v in set(changed.vote.tolist())]
        assert 1 == len(u_before)  # the same number as u's vote had
        assert _votes(follower.load_poll_rows()) == _votes(before.merged(changed))
    finally:
        follower.close()
        store.close()


def _changes_read(store: SQLiteStore, before: PollRows) -> tuple[PollRows, list[str]]:
    """Store.load_poll_rows after a read, with the query plans of the reads of vote rows."""
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    changed = store.load_poll_rows(after_seq=before.seq, mark=before.mark)
    store.conn.set_trace_callback(None)
    plans = [
        " ".join(row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + s))
        for s in statements
        if "group_concat" in s
    ]
    return changed, plans


def _first_votes(user: str, count: int, prefix: str = "e") -> list[PollVoteEvent]:
    return [PollVoteEvent(f"{prefix}{i}", f"q{i}", user, ("a", "b"), "a", 10) for i in range(count)]


def test_first_votes_since_are_read_as_the_rows_after_the_last_reads_mark(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply([_first_votes("u", 20)])
    before = store.load_poll_rows()
    store.apply([[PollVoteEvent(f"n{i}", "q-new", f"v{i}", ("a", "c"), "c", 10) for i in range(3)]])

    changed, plans = _changes_read(store, before)

    assert (3, 23, 1) == (changed.votes, changed.in_force, len(plans))
    assert "event_id" not in plans[0]
    assert (20, 23) == (before.mark, changed.mark)
    store.close()


def test_a_replaced_vote_since_is_read_through_its_users_votes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply([[PollVoteEvent(f"e{i}", "q", f"u{i}", ("a", "b"), "a", 10) for i in range(100)]])
    before = store.load_poll_rows()
    store.apply([[PollVoteEvent("again", "q", "u3", ("a", "c"), "c", 20)]])

    changed, plans = _changes_read(store, before)

    assert (1, 100, 1) == (changed.votes, changed.in_force, len(plans))
    assert "poll_votes_vote (user_id=?)" in plans[0]
    store.close()


def test_votes_read_since_are_not_looked_up_through_a_user_holding_most_votes(
    tmp_path: Path,
) -> None:
    # A user id voting in every poll (a bot, or "guest" for every anonymous visitor): a
    # pass over every vote costs a fraction of reaching that user's through the index.
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply([_first_votes("guest", 50)])
    store.apply([[PollVoteEvent("other", "q-other", "u", ("a", "b"), "b", 10)]])
    before = store.load_poll_rows()
    store.apply([[PollVoteEvent("again", "q7", "guest", ("a", "c"), "c", 20)]])

    changed, plans = _changes_read(store, before)

    assert (1, 51, 1) == (changed.votes, changed.in_force, len(plans))
    assert "poll_votes_vote" not in plans[0]
    store.close()


@pytest.mark.parametrize(
    ("voter", "since_kept", "votes", "in_force"),
    [("u", False, 4, 4), ("w", True, 4, 8)],
    ids=["replaced-votes-read-as-every-vote", "first-votes-read-alone"],
)
def test_more_votes_since_than_a_page_are_read_alone_only_if_all_first_votes(
    voter: str,
    since_kept: bool,
    votes: int,
    in_force: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reads, "_POLL_PAGE", 3)
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply([_first_votes("u", 4)])
    before = store.load_poll_rows()
    store.apply([[PollVoteEvent(f"n{i}", f"q{i}", voter, ("a", "b"), "b", 20) for i in range(4)]])

    changed = store.load_poll_rows(after_seq=before.seq, mark=before.mark)

    expected = (before.seq if since_kept else None, votes, in_force)
    assert expected == (changed.since, changed.votes, changed.in_force)
    store.close()


def test_a_vote_taking_the_rowid_of_an_erased_one_is_not_missed(tmp_path: Path) -> None:
    # The largest rowid's vote erased, a new row takes that rowid again: not after the
    # mark, so the count of rows after it disagrees with the votes applied.
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply([_first_votes("u", 3)])
    store.apply([[PollVoteEvent("last", "q-last", "gone", ("a", "b"), "a", 10)]])
    before = store.load_poll_rows()
    store.apply([Erasure("gone")])
    store.apply([[PollVoteEvent("new", "q-new", "w", ("a", "c"), "c", 10)]])

    changed = store.load_poll_rows(after_seq=before.seq, mark=before.mark)

    assert [(4, ((1, False), (3, True)))] == _votes(changed)
    store.close()


def test_votes_whose_keys_share_a_hash_are_still_read_one_by_one_on_postgresql(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_key_one_hash = pg_reads._POLL_ROWS.format(
        number="0::int8", source="poll_votes AS v", where=""
    )
    monkeypatch.setattr(pg_reads, "_EVERY_POLL_VOTE", every_key_one_hash)
    store = open_store(DatabaseURL.parse(pg_url))
    try:
        store.apply([[PollVoteEvent(f"e{i}", f"q{i}", "u", ("a", "b"), "a", 10) for i in range(3)]])

        rows = store.load_poll_rows()

        assert (3, 3, 3) == (rows.votes, rows.in_force, int(rows.chosen.sum()))
    finally:
        store.close()
