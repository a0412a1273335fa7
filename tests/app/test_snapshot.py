"""The catalogue snapshot: a fast start that gives exactly what a full read gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reviewrank.service.app import snapshot
from reviewrank.service.app.application import Application
from reviewrank.service.compose import build_application
from reviewrank.service.domain.values import LikeEvent, LikeValue, RatingEvent
from tests.conftest import make_settings


def events(n: int, prefix: str) -> list[RatingEvent | LikeEvent]:
    out: list[RatingEvent | LikeEvent] = []
    for i in range(n):
        out.append(
            RatingEvent(f"{prefix}r{i}", f"p{i % 37}", f"u{i}", 1 + i % 5, 1000 + i, f"c{i % 4}")
        )
        out.append(LikeEvent(f"{prefix}l{i}", f"p{i % 29}", f"u{i}", LikeValue.LIKE, 1000 + i))
    return out


def state(app: Application) -> tuple[object, ...]:
    c = app.catalogue.columns()
    return (
        c.product_ids, c.category_code.tolist(), c.category_names, c.rating_count.tolist(),
        c.star_sum.tolist(), c.histogram.tolist(), c.likes.tolist(), c.dislikes.tolist(),
        app.catalogue.seq,
    )  # fmt: skip


def test_start_from_snapshot_plus_later_changes_equals_a_full_read(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, snapshot_min_products=1)
    first = build_application(settings)
    first.submit(events(200, "a"), timeout=10)
    first.close()  # writes the snapshot
    assert snapshot.path_for(settings.database).exists()
    # Changes the snapshot does not have: written with snapshots off.
    later = build_application(settings.with_overrides(snapshot=False))
    later.submit(events(50, "b"), timeout=10)
    later.close()

    from_snapshot = build_application(settings.with_overrides(snapshot=False))
    snapshot.path_for(settings.database).rename(tmp_path / "kept.npz")
    full = build_application(settings.with_overrides(snapshot=False))
    try:
        assert state(full) == state(from_snapshot)
    finally:
        from_snapshot.close()
        full.close()


def test_snapshot_of_another_database_is_not_used(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, snapshot_min_products=1)
    app = build_application(settings)
    app.submit(events(30, "a"), timeout=10)
    app.close()
    other = settings.with_overrides(database=tmp_path / "other.db")
    snapshot.path_for(settings.database).rename(snapshot.path_for(other.database))

    fresh = build_application(other)
    try:
        assert 0 == len(fresh.catalogue)
    finally:
        fresh.close()


def test_damaged_snapshot_falls_back_to_a_full_read(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, snapshot_min_products=1)
    app = build_application(settings)
    app.submit(events(30, "a"), timeout=10)
    expected = state(app)
    app.close()
    snapshot.path_for(settings.database).write_bytes(b"not a snapshot")

    again = build_application(settings)
    try:
        assert expected == state(again)
    finally:
        again.close()


def test_snapshot_round_trips_every_column(tmp_path: Path) -> None:
    columns = snapshot.CatalogueColumns(
        seq=7, idx=np.array([1, 2, 4]), product_ids=["a", "é", "c"],
        category_code=np.array([0, -1, 1], dtype=np.int32), category_names=["x", "y"],
        rating_count=np.array([1, 2, 3]), star_sum=np.array([5, 6, 7]),
        histogram=np.arange(15).reshape(3, 5), likes=np.array([0, 1, 2]),
        dislikes=np.array([3, 4, 5]), shares=np.array([6, 0, 9]), row_seq=np.array([1, 5, 7]),
        listed_at_us=np.array([10, 2**40, 0]), active=np.array([True, False, True]),
        comments=np.array([2, 0, 1]), sentiment_sum=np.array([-15_000, 0, 9_999]),
        sentiment_squares=np.array([125_000_000, 0, 99_980_001]),
        polls_shown=np.array([3, 0, 2]), polls_won=np.array([1, 0, 2]),
    )  # fmt: skip
    path = tmp_path / "s.npz"

    snapshot.save(columns, path)
    loaded = snapshot.load(path)

    assert (7, ["a", "é", "c"], ["x", "y"]) == (
        loaded.seq,
        loaded.product_ids,
        loaded.category_names,
    )
    assert [1, 2, 4] == loaded.idx.tolist()
    assert columns.histogram.tolist() == loaded.histogram.tolist()
    assert [True, False, True] == loaded.active.tolist()
    assert [6, 0, 9] == loaded.shares.tolist()
    assert [10, 2**40, 0] == loaded.listed_at_us.tolist()
    assert [2, 0, 1] == loaded.comments.tolist()
    assert [-15_000, 0, 9_999] == loaded.sentiment_sum.tolist()
    assert [125_000_000, 0, 99_980_001] == loaded.sentiment_squares.tolist()
