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
        draw(st.sampled_from(["q0", "q1", "q2"])),
        draw(st.sampled_from(["u0", "u1", "u2"])),
        tuple(shown),
        draw(st.sampled_from(shown)),
        draw(st.integers(0, 5)),  # ties and older votes: superseded ones
    )


groups = st.lists(
    st.lists(
        st.one_of(
            st.lists(poll_vote(), min_size=1, max_size=6),
            st.builds(Erasure, st.sampled_from(["u0", "u1", "u2"])),
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


@both_backends
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=groups)
def test_votes_read_since_over_those_read_before_are_the_votes_in_force(
    make_store: object, history: list[list[list[PollVoteEvent] | Erasure]]
) -> None:
    store: Store = make_store()  # type: ignore[operator]
    follower = store.follower()
    try:
        held = follower.load_poll_rows()
        for group in history:
            store.apply(group)
            changed = follower.load_poll_rows(after_seq=held.seq)
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


def test_votes_read_since_are_not_looked_up_through_each_users_votes(tmp_path: Path) -> None:
    # A user id voting in every poll (a bot, or "guest" for every anonymous visitor) made
    # a read of k new votes cost k times that user's votes: minutes of lag at 40,000.
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply(
        [[PollVoteEvent(f"e{i}", f"q{i}", "guest", ("a", "b"), "a", 10) for i in range(50)]]
    )
    before = store.last_seq()
    store.apply([[PollVoteEvent("later", "q-new", "guest", ("a", "c"), "c", 10)]])
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)

    changed = store.load_poll_rows(after_seq=before)

    store.conn.set_trace_callback(None)
    [read] = [s for s in statements if "IN (SELECT event_id" in s]
    plan = " ".join(row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + read))
    assert (1, "poll_votes_vote" in plan) == (changed.votes, False)
    store.close()


def test_more_new_votes_than_a_page_are_read_as_every_vote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "_POLL_PAGE", 3)
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.apply([[PollVoteEvent("a", "q", "u", ("a", "b"), "a", 10)]])
    before = store.last_seq()
    store.apply([[PollVoteEvent(f"e{i}", f"q{i}", "v", ("a", "b"), "b", 10) for i in range(4)]])

    changed = store.load_poll_rows(after_seq=before)

    assert (None, 5, 5) == (changed.since, changed.votes, changed.in_force)
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
