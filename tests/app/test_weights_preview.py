"""PreviewWeights: how top-k results would change under candidate weights, applying nothing."""

from __future__ import annotations

import grpc
import pytest

from reviewrank.v1 import admin_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import field_violations
from tests.weights_helpers import WEIGHTS_A, WEIGHTS_B, rank_request, reload, scored, seed

# The candidate weights rank by the search's relevance alone: the order the search sent.
BY_RELEVANCE = """
default_profile = "main"
[profiles.main]
weights = { relevance = 1 }
"""


@pytest.fixture
def seeded(client: Client) -> Client:
    seed(client)
    reload(client, WEIGHTS_A)
    return client


def sample(*products: str) -> admin_pb2.CandidateList:
    return admin_pb2.CandidateList(candidates=rank_request(list(products)).candidates)


def preview(client: Client, **fields: object) -> admin_pb2.PreviewWeightsResponse:
    return client.admin.PreviewWeights(admin_pb2.PreviewWeightsRequest(**fields))  # type: ignore[arg-type]


def test_preview_reports_the_top_k_under_each_set_and_what_moves(seeded: Client) -> None:
    products = [f"p{i:02d}" for i in range(10)]
    now = [p for p, _ in scored(seeded.ranking.Rank(rank_request(products)))][:3]

    response = preview(seeded, toml=BY_RELEVANCE, samples=[sample(*products)], top_k=3)

    [change] = response.changes
    assert (now, ["p00", "p01", "p02"]) == (list(change.current_top), list(change.candidate_top))
    assert [p for p in ["p00", "p01", "p02"] if p not in now] == list(change.moved_in)
    assert [p for p in now if p not in ["p00", "p01", "p02"]] == list(change.moved_out)
    assert len(set(now) & {"p00", "p01", "p02"}) / 3 == pytest.approx(change.overlap)


def test_preview_gives_every_shown_products_rank_on_both_sides(seeded: Client) -> None:
    products = [f"p{i:02d}" for i in range(10)]
    full_now = [p for p, _ in scored(seeded.ranking.Rank(rank_request(products)))]

    response = preview(seeded, toml=BY_RELEVANCE, samples=[sample(*products)], top_k=3)

    shifts = {
        s.product_id: (s.current_rank, s.candidate_rank, s.shift)
        for s in response.changes[0].shifts
    }
    expected = {
        p: (full_now.index(p) + 1, products.index(p) + 1, products.index(p) - full_now.index(p))
        for p in set(full_now[:3]) | set(products[:3])
    }
    assert expected == shifts


def test_preview_changes_nothing(seeded: Client) -> None:
    before = seeded.ranking.Rank(rank_request())
    history = seeded.admin.ListWeightHistory(admin_pb2.ListWeightHistoryRequest())

    preview(seeded, toml=WEIGHTS_B, samples=[sample("p01", "p02", "p03")], categories=["cat-x"])

    after = seeded.ranking.Rank(rank_request())
    assert (before.weights_version, scored(before)) == (after.weights_version, scored(after))
    assert history == seeded.admin.ListWeightHistory(admin_pb2.ListWeightHistoryRequest())


def test_preview_of_a_categorys_top_compares_top_results(seeded: Client) -> None:
    now = seeded.ranking.Top(ranking_pb2.TopRequest(category="cat-x", limit=5))
    seeded.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=WEIGHTS_B))
    then = seeded.ranking.Top(ranking_pb2.TopRequest(category="cat-x", limit=5))
    seeded.admin.RollbackWeights(admin_pb2.RollbackWeightsRequest(version=2))

    response = preview(seeded, toml=WEIGHTS_B, categories=["cat-x"], top_k=5)

    [change] = response.changes
    assert (
        "category cat-x",
        [r.product_id for r in now.results],
        [r.product_id for r in then.results],
    ) == (
        change.sample,
        list(change.current_top),
        list(change.candidate_top),
    )


def test_preview_of_a_new_half_life_keeps_no_decayed_sums(seeded: Client) -> None:
    decayed = BY_RELEVANCE.replace("[profiles.main]", "[profiles.main]\nhalf_life_days = 3")
    half_lives = set(seeded.server.app.catalogue.half_lives)

    response = preview(seeded, toml=decayed, samples=[sample("p01", "p02")])

    assert ["p01", "p02"] == list(response.changes[0].candidate_top)
    assert half_lives == seeded.server.app.catalogue.half_lives


def test_preview_with_no_toml_compares_the_weights_file_on_disk(seeded: Client) -> None:
    seeded.settings.weights.write_text(BY_RELEVANCE)

    response = preview(seeded, samples=[sample("p05", "p04")])

    assert (2, ["p05", "p04"]) == (
        response.current_version,
        list(response.changes[0].candidate_top),
    )


def test_preview_of_invalid_weights_names_the_key(seeded: Client) -> None:
    with pytest.raises(grpc.RpcError) as info:
        preview(seeded, toml=WEIGHTS_B.replace("0.8", "1.8"), samples=[sample("p01")])

    assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
    assert {"profiles.main.confidence"} == set(field_violations(info.value))


def test_preview_names_the_bad_candidate_of_a_sample(seeded: Client) -> None:
    with pytest.raises(grpc.RpcError) as info:
        preview(seeded, toml=WEIGHTS_B, samples=[sample("p01"), sample("p01", "p01")])

    assert {"samples[1].candidates[1].product_id"} == set(field_violations(info.value))


def test_preview_needs_something_to_compare(seeded: Client) -> None:
    with pytest.raises(grpc.RpcError) as info:
        preview(seeded, toml=WEIGHTS_B)

    assert {"samples"} == set(field_violations(info.value))


def test_preview_of_a_profile_only_the_candidate_has_compares_it_with_the_default_in_force(
    seeded: Client,
) -> None:
    products = [f"p{i:02d}" for i in range(10)]
    now = [p for p, _ in scored(seeded.ranking.Rank(rank_request(products)))][:3]
    candidate = BY_RELEVANCE.replace("[profiles.main]", "[profiles.new_one]").replace(
        '"main"', '"new_one"'
    )

    response = preview(
        seeded, toml=candidate, profile="new_one", samples=[sample(*products)], top_k=3
    )

    [change] = response.changes
    assert (now, ["p00", "p01", "p02"]) == (list(change.current_top), list(change.candidate_top))
