"""Rank over gRPC on a catalogue large enough for the id hash table (service/app/id_index.py):
every candidate gets its own product's numbers, read back from the database."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from reviewrank.service.app import snapshot
from reviewrank.service.app.id_index import TABLE_FROM
from reviewrank.service.compose import build_application
from reviewrank.service.domain.values import RatingEvent
from reviewrank.service.tools.synthetic import write_catalogue
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client, make_settings
from tests.helpers import explaining

PRODUCTS = TABLE_FROM + 500


@pytest.fixture(scope="module")
def large_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    database = tmp_path_factory.mktemp("large") / "reviewrank.db"
    write_catalogue(database, PRODUCTS, seed=7)
    return database


@pytest.fixture
def large(large_database: Path, tmp_path: Path, start_server: Callable[..., Client]) -> Client:
    database = tmp_path / "reviewrank.db"
    database.write_bytes(large_database.read_bytes())
    return start_server(database=database)


def _stored(database: Path) -> dict[str, tuple[int, int, int]]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT product_id, rating_count, likes, dislikes FROM products")
        return {p: (r, likes, dislikes) for p, r, likes, dislikes in rows}


def _candidates(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    known = [f"syn-{i}" for i in rng.sample(range(PRODUCTS), count - count // 10)]
    # Not in the catalogue: an id with a byte more, a non-ASCII one, another prefix.
    unknown = [f"syn-{rng.randrange(PRODUCTS)}x" for _ in range(count // 30)]
    unknown += [f"syn-{rng.randrange(PRODUCTS)}é" for _ in range(count // 30)]
    unknown += [f"sy-{rng.randrange(PRODUCTS)}" for _ in range(count // 10 - 2 * (count // 30))]
    candidates = list(dict.fromkeys(known + unknown))
    rng.shuffle(candidates)
    return candidates


def _rank(client: Client, ids: list[str], explain: bool) -> ranking_pb2.RankResponse:
    request = ranking_pb2.RankRequest(
        candidates=[
            ranking_pb2.Candidate(product_id=p, relevance=float(i % 7)) for i, p in enumerate(ids)
        ],
        explain=explain,
    )
    stub = explaining(client) if explain else client.ranking
    response: ranking_pb2.RankResponse = stub.Rank(request, timeout=30)
    return response


@pytest.mark.parametrize("count", [1000, 50, 10])  # bulk decoding or not; id by id
def test_rank_on_a_large_catalogue_explains_each_candidate_with_its_own_numbers(
    large: Client, count: int
) -> None:
    stored = _stored(large.settings.database)
    assert PRODUCTS == len(stored)
    ids = _candidates(count, seed=count)
    explained = _rank(large, ids, explain=True)
    seen = {
        r.product_id: (r.explanation.rating_count, r.explanation.likes, r.explanation.dislikes)
        for r in explained.results
    }
    assert {p: stored.get(p, (0, 0, 0)) for p in ids} == seen
    known = {r.product_id for r in explained.results if r.explanation.known}
    assert {p for p in ids if p in stored and sum(stored[p])} == known


@pytest.mark.parametrize("count", [1000, 50])
def test_rank_on_a_large_catalogue_scores_as_its_explanations_do(large: Client, count: int) -> None:
    ids = _candidates(count, seed=count + 1)
    explained = {r.product_id: r.score for r in _rank(large, ids, explain=True).results}
    quick = _rank(large, ids, explain=False).results
    assert len(ids) == len(quick)
    assert explained == pytest.approx({r.product_id: r.score for r in quick}, rel=1e-12)


def test_ratings_written_on_a_large_catalogue_reach_rank_for_new_and_old_products(
    large: Client,
) -> None:
    stored = _stored(large.settings.database)
    new = [f"new-{i}-ü" if i % 2 else f"new-{i}" for i in range(300)]
    old = "syn-1234"
    seq = 0
    for i, product_id in enumerate([*new, old]):
        seq = large.feedback.SubmitRating(
            feedback_pb2.SubmitRatingRequest(
                event_id=f"e-{i}", product_id=product_id, user_id="u-1", stars=4
            ),
            timeout=10,
        ).seq
    ids = [*new, old, *_candidates(500, seed=3)]
    request = ranking_pb2.RankRequest(
        candidates=[ranking_pb2.Candidate(product_id=p, relevance=1.0) for p in ids],
        explain=True,
        min_seq=seq,
    )
    results = explaining(large).Rank(request).results
    counts = {r.product_id: r.explanation.rating_count for r in results}
    assert [1] * len(new) == [counts[p] for p in new]
    assert stored[old][0] + 1 == counts[old]


def test_a_large_catalogue_restarts_from_its_snapshot_as_from_a_full_read(
    large_database: Path, tmp_path: Path
) -> None:
    database = tmp_path / "reviewrank.db"
    database.write_bytes(large_database.read_bytes())
    settings = make_settings(tmp_path, database=database)
    first = build_application(settings)
    new = [RatingEvent(f"e{i}", f"new-{i}-ß", "u1", 1 + i % 5, 1000 + i) for i in range(200)]
    first.submit([*new, RatingEvent("e-old", "syn-77", "u1", 2, 5000)], timeout=10)
    first.close()  # writes the snapshot
    assert snapshot.path_for(database).exists()

    from_snapshot = build_application(settings.with_overrides(snapshot=False))
    snapshot.path_for(database).unlink()
    full = build_application(settings.with_overrides(snapshot=False))
    try:
        assert (True, True) == (
            from_snapshot.catalogue._index.uses_table,
            full.catalogue._index.uses_table,
        )
        mine, theirs = from_snapshot.catalogue.columns(), full.catalogue.columns()
        assert (theirs.product_ids, theirs.idx.tolist(), theirs.rating_count.tolist()) == (
            mine.product_ids,
            mine.idx.tolist(),
            mine.rating_count.tolist(),
        )
        ids = [f"new-{i}-ß" for i in range(200)] + ["syn-77", "nope"]
        assert full.catalogue.lookup(ids).idx.tolist() == (
            from_snapshot.catalogue.lookup(ids).idx.tolist()
        )
        assert 0 == from_snapshot.catalogue.lookup(["nope"]).idx[0]
    finally:
        from_snapshot.close()
        full.close()
