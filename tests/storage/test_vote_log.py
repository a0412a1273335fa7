"""The storage of issue 23's vote weights and burst decisions, on real SQLite files and the
real PostgreSQL of the test session: Store.load_vote_log (every rating and like in force
with its voter and verified purchase flag, and the follower's), the flags stored,
replaced and carried by an export and import, and the burst decisions recorded, read
back in the order made, and carried by an export and import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reviewrank.service.app.store import (
    VOTE_LIKE,
    VOTE_RATING,
    BurstDecision,
    DatabaseURL,
    Follower,
    Store,
    VoteLogRows,
)
from reviewrank.service.domain.values import (
    CommentEvent,
    Erasure,
    Event,
    LikeEvent,
    LikeValue,
    PollVoteEvent,
    RatingEvent,
    ShareEvent,
)
from reviewrank.service.storage.factory import open_store
from reviewrank.service.storage.sqlite import reads
from reviewrank.service.storage.sqlite.store import SQLiteStore
from reviewrank.service.storage.transfer import export_to, import_from
from tests.conftest import both_backends
from tests.pg_cluster import PostgresCluster

# A vote as the tests compare them: (product id, user id, kind code, value, occurred_at_us).
Vote = tuple[str, str, int, int, int]

DECISIONS = [
    BurstDecision("p1", 1_000, 2_000, True, "admin", "a launch campaign", 3_000),
    BurstDecision("p2", 1_500, 1_600, False, "ops", "bought reviews: «5 ★» ×40", 3_100),
    BurstDecision("p1", 5_000, 9_000, False, "admin", "", 9_500),
]


@pytest.fixture
def store(make_store: Callable[[], Store]) -> Store:
    """The test's database, empty (a SQLite file, or a PostgreSQL database)."""
    return make_store()


@pytest.fixture
def follower(store: Store) -> Iterator[Follower]:
    reader = store.follower()
    yield reader
    reader.close()


@pytest.fixture
def other_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """Another empty database of the test's backend (an import's target)."""
    if backend == "sqlite":
        opened = open_store(DatabaseURL.for_path(tmp_path / "other.db"))
        yield opened
        opened.close()
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database()
    opened = open_store(DatabaseURL.parse(url))
    yield opened
    opened.close()
    cluster.drop_database(url.rsplit("/", 1)[1])


def votes_of(rows: VoteLogRows, store: Store) -> list[Vote]:
    """The vote log's rows with their products' ids, sorted (the log has no order)."""
    products = store.load_products()
    ids = dict(zip(products.idx.tolist(), products.product_ids, strict=True))
    columns = (rows.product_idx, rows.user_id, rows.kind, rows.value, rows.occurred_at_us)
    return sorted(
        (ids[idx], user, kind, value, at)
        for idx, user, kind, value, at in zip(*(c.tolist() for c in columns), strict=True)
    )


@both_backends
def test_the_vote_log_holds_each_rating_in_force_with_its_voter_and_stars(store: Store) -> None:
    store.apply([[RatingEvent("e1", "p1", "u1", 4, 100), RatingEvent("e2", "p2", "ü-ser", 1, 110)]])

    assert [("p1", "u1", VOTE_RATING, 4, 100), ("p2", "ü-ser", VOTE_RATING, 1, 110)] == votes_of(
        store.load_vote_log(), store
    )


@both_backends
def test_a_replaced_rating_shows_its_newest_value_in_the_vote_log(store: Store) -> None:
    store.apply([[RatingEvent("e1", "p1", "u1", 2, 100)]])
    store.apply([[RatingEvent("e2", "p1", "u1", 5, 200), RatingEvent("e3", "p1", "u1", 3, 50)]])

    assert [("p1", "u1", VOTE_RATING, 5, 200)] == votes_of(store.load_vote_log(), store)


@both_backends
def test_likes_and_dislikes_in_force_are_in_the_vote_log_as_plus_and_minus_one(
    store: Store,
) -> None:
    store.apply(
        [[LikeEvent("e1", "p1", "u1", LikeValue.LIKE, 100),
          LikeEvent("e2", "p1", "u2", LikeValue.DISLIKE, 110),
          LikeEvent("e3", "p2", "u1", LikeValue.LIKE, 120),
          LikeEvent("e4", "p2", "u1", LikeValue.DISLIKE, 130)]]  # replaces e3
    )  # fmt: skip

    assert [
        ("p1", "u1", VOTE_LIKE, 1, 100),
        ("p1", "u2", VOTE_LIKE, -1, 110),
        ("p2", "u1", VOTE_LIKE, -1, 130),
    ] == votes_of(store.load_vote_log(), store)


@both_backends
def test_a_withdrawn_like_is_not_in_the_vote_log(store: Store) -> None:
    store.apply([[LikeEvent("e1", "p1", "u1", LikeValue.LIKE, 100)]])
    store.apply([[LikeEvent("e2", "p1", "u1", LikeValue.CLEAR, 200)]])

    assert [] == votes_of(store.load_vote_log(), store)


@both_backends
def test_shares_comments_and_poll_votes_are_not_in_the_vote_log(store: Store) -> None:
    store.apply(
        [[RatingEvent("e1", "p1", "u1", 3, 100),
          ShareEvent("e2", "p1", "u2", 110, "web"),
          CommentEvent("e3", "p1", "u3", 5_000, 120, "store", "en", "vader-3.3.2"),
          PollVoteEvent("e4", "q1", "u4", ("p1", "p2"), "p2", 130)]]
    )  # fmt: skip

    assert [("p1", "u1", VOTE_RATING, 3, 100)] == votes_of(store.load_vote_log(), store)


@both_backends
def test_an_erased_users_votes_leave_the_vote_log(store: Store) -> None:
    store.apply(
        [[RatingEvent("e1", "p1", "u1", 3, 100),
          LikeEvent("e2", "p1", "u1", LikeValue.LIKE, 110),
          RatingEvent("e3", "p1", "u2", 5, 120)]]
    )  # fmt: skip
    store.apply([Erasure("u1")])

    assert [("p1", "u2", VOTE_RATING, 5, 120)] == votes_of(store.load_vote_log(), store)


@both_backends
def test_an_empty_database_has_an_empty_vote_log(store: Store) -> None:
    rows = store.load_vote_log()

    assert [0, 0, 0, 0, 0] == [
        rows.product_idx.size, rows.user_id.size, rows.kind.size, rows.value.size,
        rows.occurred_at_us.size,
    ]  # fmt: skip


@both_backends
def test_the_follower_reads_the_votes_in_force_as_the_store_does(
    store: Store, follower: Follower
) -> None:
    store.apply(
        [[RatingEvent("e1", "p1", "u1", 4, 100),
          LikeEvent("e2", "p2", "u1", LikeValue.DISLIKE, 110),
          LikeEvent("e3", "p2", "u2", LikeValue.LIKE, 120)]]
    )  # fmt: skip
    store.apply(
        [[RatingEvent("e4", "p1", "u1", 2, 200), LikeEvent("e5", "p2", "u2", LikeValue.CLEAR, 210)]]
    )

    assert [("p1", "u1", VOTE_RATING, 2, 200), ("p2", "u1", VOTE_LIKE, -1, 110)] == votes_of(
        follower.load_vote_log(), store
    )


def test_sqlite_reads_every_vote_once_a_page_of_rowids_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (PostgreSQL reads the vote log in one statement.)
    monkeypatch.setattr(reads, "_VOTE_LOG_PAGE_ROWS", 3)
    events: list[Event] = [
        RatingEvent(f"r{i}", f"p{i % 4}", f"u{i}", 1 + i % 5, i) for i in range(11)
    ]
    events += [LikeEvent(f"l{i}", f"p{i % 3}", f"u{i}", LikeValue(1 - i % 3), i) for i in range(8)]
    store.apply([events])
    store.apply([Erasure("u3")])  # a gap in the rowids of each table

    ratings = [(f"p{i % 4}", f"u{i}", VOTE_RATING, 1 + i % 5, i) for i in range(11)]
    likes = [(f"p{i % 3}", f"u{i}", VOTE_LIKE, 1 - i % 3, i) for i in range(8) if i % 3 != 1]
    expected = sorted(vote for vote in ratings + likes if vote[1] != "u3")
    assert expected == votes_of(store.load_vote_log(), store)


@both_backends
def test_burst_decisions_are_read_back_in_the_order_they_were_made(store: Store) -> None:
    for decision in DECISIONS:
        store.save_burst_decision(decision)

    assert DECISIONS == store.load_burst_decisions()


@both_backends
def test_a_database_without_burst_decisions_reads_none(store: Store) -> None:
    assert [] == store.load_burst_decisions()


@both_backends
def test_the_follower_reads_the_burst_decisions_the_store_made(
    store: Store, follower: Follower
) -> None:
    for decision in DECISIONS:
        store.save_burst_decision(decision)

    assert DECISIONS == follower.load_burst_decisions()


@both_backends
def test_burst_decisions_are_kept_across_a_restart(
    store: Store, make_store: Callable[[], Store]
) -> None:
    store.save_burst_decision(DECISIONS[0])
    store.close()

    assert [DECISIONS[0]] == make_store().load_burst_decisions()


@both_backends
def test_an_export_and_import_carry_the_burst_decisions(
    store: Store, other_store: Store, tmp_path: Path
) -> None:
    store.apply([[RatingEvent("e1", "p1", "u1", 4, 100)]])
    for decision in DECISIONS:
        store.save_burst_decision(decision)
    export_to(store, tmp_path / "export.jsonl")

    import_from(other_store, tmp_path / "export.jsonl")

    assert DECISIONS == other_store.load_burst_decisions()


@both_backends
def test_a_decision_made_after_an_import_comes_after_the_imported_ones(
    store: Store, other_store: Store, tmp_path: Path
) -> None:
    for decision in DECISIONS[:2]:
        store.save_burst_decision(decision)
    export_to(store, tmp_path / "export.jsonl")
    import_from(other_store, tmp_path / "export.jsonl")

    other_store.save_burst_decision(DECISIONS[2])

    assert DECISIONS == other_store.load_burst_decisions()


@both_backends
def test_a_sqlite_export_with_burst_decisions_imports_into_either_backend(
    other_store: Store, tmp_path: Path
) -> None:
    source = SQLiteStore(tmp_path / "source.db")
    try:
        for decision in DECISIONS:
            source.save_burst_decision(decision)
        export_to(source, tmp_path / "export.jsonl")
    finally:
        source.close()

    import_from(other_store, tmp_path / "export.jsonl")

    assert DECISIONS == other_store.load_burst_decisions()


def flags_of(rows: VoteLogRows, store: Store) -> list[tuple[str, str, int, bool]]:
    """The vote log's (product id, user id, kind code, verified), sorted."""
    products = store.load_products()
    ids = dict(zip(products.idx.tolist(), products.product_ids, strict=True))
    columns = (rows.product_idx, rows.user_id, rows.kind, rows.verified)
    return sorted(
        (ids[idx], user, kind, verified)
        for idx, user, kind, verified in zip(*(c.tolist() for c in columns), strict=True)
    )


@both_backends
def test_verified_purchases_are_in_the_vote_log_with_their_flag(store: Store) -> None:
    store.apply(
        [[RatingEvent("e1", "p1", "u1", 4, 100, verified=True),
          RatingEvent("e2", "p1", "u2", 5, 110),
          LikeEvent("e3", "p1", "u1", LikeValue.LIKE, 120, verified=True),
          LikeEvent("e4", "p1", "u2", LikeValue.DISLIKE, 130)]]
    )  # fmt: skip

    assert [
        ("p1", "u1", VOTE_LIKE, True), ("p1", "u1", VOTE_RATING, True),
        ("p1", "u2", VOTE_LIKE, False), ("p1", "u2", VOTE_RATING, False),
    ] == flags_of(store.load_vote_log(), store)  # fmt: skip


@both_backends
def test_a_newer_vote_replaces_the_verified_flag_with_its_own(store: Store) -> None:
    store.apply(
        [[RatingEvent("e1", "p1", "u1", 4, 100, verified=True),
          LikeEvent("e2", "p1", "u1", LikeValue.LIKE, 100),
          RatingEvent("e3", "p1", "u2", 4, 100)]]
    )  # fmt: skip

    store.apply(
        [[RatingEvent("e4", "p1", "u1", 2, 200),
          LikeEvent("e5", "p1", "u1", LikeValue.DISLIKE, 200, verified=True),
          RatingEvent("e6", "p1", "u2", 1, 50, verified=True)]]  # older: SUPERSEDED
    )  # fmt: skip

    assert [
        ("p1", "u1", VOTE_LIKE, True), ("p1", "u1", VOTE_RATING, False),
        ("p1", "u2", VOTE_RATING, False),
    ] == flags_of(store.load_vote_log(), store)  # fmt: skip


@both_backends
def test_a_large_batch_keeps_each_votes_flag_when_new_and_when_replacing(store: Store) -> None:
    # (from 64 rows a vote table's new rows are copied in on PostgreSQL, the others upserted)
    count = 80
    first: list[Event] = [RatingEvent(f"r{i}", "p1", f"u{i}", 3, 100, verified=i % 2 == 0)
                          for i in range(count)]  # fmt: skip
    store.apply([first])
    second: list[Event] = [RatingEvent(f"s{i}", "p1", f"u{i}", 4, 200, verified=i % 3 == 0)
                           for i in range(0, count, 2)]  # fmt: skip
    second += [RatingEvent(f"n{i}", "p2", f"u{i}", 4, 200, verified=i % 5 == 0)
               for i in range(count)]  # fmt: skip

    store.apply([second])

    expected = sorted(
        [("p1", f"u{i}", VOTE_RATING, i % 3 == 0 if i % 2 == 0 else False) for i in range(count)]
        + [("p2", f"u{i}", VOTE_RATING, i % 5 == 0) for i in range(count)]
    )
    assert expected == flags_of(store.load_vote_log(), store)


@both_backends
def test_the_follower_reads_the_verified_flags(store: Store, follower: Follower) -> None:
    store.apply(
        [[RatingEvent("e1", "p1", "u1", 4, 100, verified=True),
          LikeEvent("e2", "p2", "u2", LikeValue.LIKE, 110, verified=True),
          LikeEvent("e3", "p2", "u3", LikeValue.LIKE, 110)]]
    )  # fmt: skip

    assert [
        ("p1", "u1", VOTE_RATING, True), ("p2", "u2", VOTE_LIKE, True),
        ("p2", "u3", VOTE_LIKE, False),
    ] == flags_of(follower.load_vote_log(), store)  # fmt: skip


def test_sqlite_reads_each_votes_flag_a_page_of_rowids_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "_VOTE_LOG_PAGE_ROWS", 3)
    events: list[Event] = [
        RatingEvent(f"r{i}", f"p{i % 4}", f"u{i}", 1 + i % 5, i, verified=i % 4 == 1)
        for i in range(11)
    ]
    store.apply([events])

    expected = sorted((f"p{i % 4}", f"u{i}", VOTE_RATING, i % 4 == 1) for i in range(11))
    assert expected == flags_of(store.load_vote_log(), store)


@both_backends
def test_an_export_and_import_carry_the_verified_flags(
    store: Store, other_store: Store, tmp_path: Path
) -> None:
    store.apply(
        [[RatingEvent("e1", "p1", "u1", 4, 100, verified=True),
          RatingEvent("e2", "p1", "u2", 4, 100),
          LikeEvent("e3", "p1", "u2", LikeValue.LIKE, 100, verified=True)]]
    )  # fmt: skip
    export_to(store, tmp_path / "export.jsonl")

    import_from(other_store, tmp_path / "export.jsonl")

    assert [
        ("p1", "u1", VOTE_RATING, True), ("p1", "u2", VOTE_LIKE, True),
        ("p1", "u2", VOTE_RATING, False),
    ] == flags_of(other_store.load_vote_log(), other_store)  # fmt: skip
