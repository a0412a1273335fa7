"""What only the PostgreSQL store has to get right: several writers at once (replicas),
connections lost under it, and commits notified to followers. On a real server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from reviewrank.service.app.store import DatabaseURL
from reviewrank.service.domain.errors import StoreError
from reviewrank.service.domain.values import LikeEvent, LikeValue, Outcome, RatingEvent
from reviewrank.service.storage.postgres import writes
from reviewrank.service.storage.postgres.store import PostgresStore
from reviewrank.service.storage.postgres.writes import COPY_FROM
from tests.pg_cluster import PostgresCluster


@pytest.fixture
def stores(pg_url: str) -> Iterator[list[PostgresStore]]:
    opened = [PostgresStore(pg_url) for _ in range(3)]
    yield opened
    for store in opened:
        store.close()


def test_replicas_writing_at_once_take_dense_sequence_numbers_and_lose_nothing(
    stores: list[PostgresStore],
) -> None:
    seqs: list[int] = []
    lock = threading.Lock()

    def write(replica: int) -> None:
        for group in range(30):
            events = [
                RatingEvent(f"r{replica}-{group}-{i}", f"p{i % 4}", f"u{group % 6}", 1 + i % 5, i)
                for i in range(5)
            ]
            events.append(LikeEvent(f"l{replica}-{group}", "p0", f"u{replica}", LikeValue.LIKE, 1))
            applied = stores[replica].apply([events])
            with lock:
                seqs.extend(r.seq for r in applied.results[0] if r.seq)  # type: ignore[union-attr]

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert list(range(1, 3 * 30 * 6 + 1)) == sorted(seqs)
    assert 3 * 30 * 6 == stores[0].last_seq() == stores[0].count_events()
    assert [] == stores[0].aggregate_mismatches()


def test_products_created_by_several_replicas_are_numbered_without_gaps(
    stores: list[PostgresStore],
) -> None:
    for i in range(9):
        stores[i % 3].apply([[RatingEvent(f"e{i}", f"new-{i}", "u", 3, 1)]])

    table = stores[1].load_products()

    assert list(range(1, 10)) == table.idx.tolist()


def test_a_write_is_retried_on_a_new_connection_when_its_connection_was_killed(
    pg_url: str,
) -> None:
    store = PostgresStore(pg_url)
    try:
        store.apply([[RatingEvent("first", "p", "u", 4, 1)]])
        with psycopg.connect(pg_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'reviewrank' AND pid <> pg_backend_pid()) AS t"
            ).fetchone()
        assert killed is not None and killed[0] >= 1

        applied = store.apply([[RatingEvent("second", "p", "v", 2, 1)]])

        assert [Outcome.APPLIED] == [r.outcome for r in applied.results[0]]  # type: ignore[union-attr]
        assert (2, 6) == (applied.products[0].rating_count, applied.products[0].star_sum)
    finally:
        store.close()


def test_a_replayed_group_after_an_unknown_commit_outcome_is_all_duplicate(
    stores: list[PostgresStore],
) -> None:
    """What a retry after a lost acknowledgement sees: the first commit stands, once."""
    events = [RatingEvent("once", "p", "u", 5, 1), LikeEvent("twice", "p", "u", LikeValue.LIKE, 1)]
    stores[0].apply([events])

    replay = stores[1].apply([events])

    assert [Outcome.DUPLICATE] * 2 == [r.outcome for r in replay.results[0]]  # type: ignore[union-attr]
    assert (1, 5, 1) == (
        stores[1].load_products().rating_count[0],
        stores[1].load_products().star_sum[0],
        stores[1].load_products().likes[0],
    )


def test_a_follower_is_woken_by_another_replicas_commit_long_before_its_poll(
    stores: list[PostgresStore],
) -> None:
    follower = stores[0].follower()
    try:
        follower.wait(0)  # connects and LISTENs
        threading.Timer(0.2, lambda: stores[1].apply([[RatingEvent("x", "p", "u", 3, 1)]])).start()
        started = time.monotonic()

        follower.wait(60)

        assert time.monotonic() - started < 30  # woken by NOTIFY, not by the 60 s timeout
        assert 1 == follower.last_seq()
        assert ["p"] == follower.load_products(after_seq=0).product_ids
    finally:
        follower.close()


def test_an_unreachable_server_is_a_storage_fault_naming_the_host_without_the_password() -> None:
    url = "postgresql://reviewrank:s3cret@127.0.0.1:1/nowhere"

    with pytest.raises(StoreError) as raised:
        PostgresStore(url, connect_timeout_seconds=1)

    assert raised.value.fault
    assert "127.0.0.1:1" in str(raised.value)
    assert "s3cret" not in str(raised.value)
    assert "s3cret" not in DatabaseURL.parse(url).display


def test_migrating_twice_applies_nothing_the_second_time(stores: list[PostgresStore]) -> None:
    assert [] == stores[0].migrate()
    assert [
        "m001_initial",
        "m002_erasure",
        "m003_weights_history",
        "m004_rowid_tables",
        "m006_shop_catalogue",
        "m007_shares",
        "m008_listing_time",
        "m009_comments",
        "m010_poll_votes",
        "m011_events_seq_brin",
        "m012_burst_decisions",
        "m013_verified_purchase",
    ] == stores[0].applied_migrations()


def test_large_groups_copied_in_end_as_small_groups_written_row_by_row_do(
    stores: list[PostgresStore], pg_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From COPY_FROM events a group is copied in: new votes copied, votes replacing one in
    force upserted; the same events in groups too small for COPY end the same."""
    first = [RatingEvent(f"a{i}", f"p{i % 7}", f"u{i}", 1 + i % 5, 10) for i in range(100)]
    second: list[RatingEvent | LikeEvent] = [
        RatingEvent(f"b{i}", f"p{i % 7}", f"u{i}", 5 - i % 5, 20 if i % 2 else 5)
        for i in range(150)  # odd: newer, replaces; even below 100: older, superseded
    ]
    second += [LikeEvent(f"l{i}", f"p{i % 3}", f"u{i}", LikeValue.LIKE, 1) for i in range(80)]
    assert len(first) >= COPY_FROM and len(second) >= COPY_FROM
    groups: list[list[RatingEvent | LikeEvent]] = [list(first), second]
    copied: list[tuple[str, int]] = []  # (statement, rows) of every COPY, still run
    real_copy = writes._copy_rows

    def copy_rows(cur: Any, statement: str, types: list[str], rows: Any) -> None:
        rows = list(rows)
        copied.append((statement.split()[1], len(rows)))
        real_copy(cur, statement, types, rows)

    monkeypatch.setattr(writes, "_copy_rows", copy_rows)
    small = PostgresStore(pg_cluster.create_database("copy_small_groups"))
    try:
        big_outcomes = [
            r.outcome
            for group in groups
            for r in stores[0].apply([group]).results[0]  # type: ignore[union-attr]
        ]
        small_outcomes = [
            r.outcome
            for group in groups
            for start in range(0, len(group), 10)
            for r in small.apply([group[start : start + 10]]).results[0]  # type: ignore[union-attr]
        ]
        big, little = stores[0].load_products(), small.load_products()

        # The second group's new keys (u100 to u149, and the likes) were copied in, although
        # it also replaced votes in force and held duplicate-free re-votes.
        assert [("events", 100), ("ratings", 100), ("events", 230), ("ratings", 50)] == [
            c for c in copied if c[0] != "likes"
        ][:4]
        assert ("likes", 80) in copied
        assert small_outcomes == big_outcomes
        assert Outcome.SUPERSEDED in big_outcomes and Outcome.APPLIED in big_outcomes
        assert little.product_ids == big.product_ids
        for column in ("rating_count", "star_sum", "likes", "dislikes"):
            assert getattr(little, column).tolist() == getattr(big, column).tolist(), column
        assert [] == stores[0].aggregate_mismatches() == small.aggregate_mismatches()
    finally:
        small.close()
        pg_cluster.drop_database("copy_small_groups")
