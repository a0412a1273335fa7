"""ReloadWeights, GetWeights, ListWeightHistory and RollbackWeights over a real server."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import grpc
import pytest

from reviewrank.v1 import admin_pb2, ranking_pb2
from tests.conftest import TEST_WEIGHTS, Client
from tests.helpers import field_violations
from tests.weights_helpers import (
    WEIGHTS_A,
    WEIGHTS_B,
    rank_request,
    reload,
    scored,
    seed,
    version,
)


@pytest.fixture
def seeded(client: Client) -> Client:
    seed(client)
    return client


def test_an_inline_reload_applies_a_new_version_that_rank_reports(seeded: Client) -> None:
    response = reload(seeded, WEIGHTS_A)

    ranked = seeded.ranking.Rank(rank_request())

    assert (2, 1, "inline") == (
        response.weights.version,
        response.previous_version,
        response.weights.source,
    )
    assert (2, "main") == (ranked.weights_version, ranked.profile)


def test_a_reload_with_no_toml_rereads_the_weights_file(client: Client) -> None:
    client.settings.weights.write_text(WEIGHTS_B)

    response = reload(client)

    assert (2, str(client.settings.weights), WEIGHTS_B) == (
        response.weights.version,
        response.weights.source,
        response.weights.source_toml,
    )


def _with_main(profile: str) -> str:
    return f'default_profile = "main"\n\n[profiles.main]\n{profile}\n'


INVALID = [
    pytest.param(
        _with_main("weights = { bayesian_average = 1, wilson = -0.5 }"),
        "profiles.main.weights.wilson",
        id="negative-weight",
    ),
    pytest.param(
        _with_main("weights = { bayesian_average = 0, wilson = 0 }"),
        "profiles.main.weights",
        id="all-zero-weights",
    ),
    pytest.param(
        _with_main("confidence = 1.0\nweights = { wilson = 1 }"),
        "profiles.main.confidence",
        id="confidence-1",
    ),
    pytest.param(
        _with_main("confidence = 0\nweights = { wilson = 1 }"),
        "profiles.main.confidence",
        id="confidence-0",
    ),
    pytest.param(
        _with_main("weights = { popularity = 1 }"),
        "profiles.main.weights.popularity",
        id="unknown-component",
    ),
    pytest.param(_with_main("weights = { wilson = 1"), "toml", id="malformed-toml"),
    pytest.param(
        _with_main("half_life_days = -3\nweights = { wilson = 1 }"),
        "profiles.main.half_life_days",
        id="negative-half-life",
    ),
    pytest.param(
        _with_main("weights = { wilson = 1 }\nprior = { mean = 7 }"),
        "profiles.main.prior.mean",
        id="prior-mean-off-scale",
    ),
    pytest.param(
        _with_main("weights = { wilson = 1 }").replace('"main"', '"other"', 1),
        "default_profile",
        id="unknown-default-profile",
    ),
    pytest.param(
        _with_main("weights = { wilson = 1 }\nlimits = { max_candidates = 999999 }"),
        "profiles.main.limits.max_candidates",
        id="limit-above-the-servers",
    ),
    pytest.param(
        _with_main("weights = { wilson = 1 }") + "[traffic]\nshares = { main = 0.5 }\n",
        "traffic.shares",
        id="traffic-shares-not-summing-to-1",
    ),
    pytest.param(
        _with_main("weights = { wilson = 1 }") + "[traffic]\nshares = { main = 0.5, x = 0.5 }\n",
        "traffic.shares.x",
        id="traffic-share-of-no-profile",
    ),
]


@pytest.mark.parametrize(("toml", "key"), INVALID)
def test_invalid_weights_are_refused_naming_the_key(seeded: Client, toml: str, key: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        reload(seeded, toml)

    assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
    assert key in field_violations(info.value)


@pytest.mark.parametrize(("toml", "key"), INVALID)
def test_invalid_weights_leave_the_weights_in_force(seeded: Client, toml: str, key: str) -> None:
    before = scored(seeded.ranking.Rank(rank_request()))

    with pytest.raises(grpc.RpcError):
        reload(seeded, toml)

    after = seeded.ranking.Rank(rank_request())
    assert (1, before) == (after.weights_version, scored(after))
    assert 1 == len(seeded.admin.ListWeightHistory(admin_pb2.ListWeightHistoryRequest()).versions)


def test_an_invalid_weights_file_is_refused_naming_the_key(client: Client) -> None:
    client.settings.weights.write_text(_with_main("weights = { wilson = -1 }"))

    with pytest.raises(grpc.RpcError) as info:
        reload(client)

    assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
    assert {"profiles.main.weights.wilson"} == set(field_violations(info.value))
    assert 1 == version(client)


def test_a_missing_weights_file_is_refused_naming_it(client: Client) -> None:
    client.settings.weights.unlink()

    with pytest.raises(grpc.RpcError) as info:
        reload(client)

    assert {"weights_file"} == set(field_violations(info.value))
    assert 1 == version(client)


def test_a_reload_expecting_a_stale_version_is_aborted_and_changes_nothing(
    client: Client,
) -> None:
    reload(client, WEIGHTS_A)  # someone else's reload: version 2

    with pytest.raises(grpc.RpcError) as info:
        reload(client, WEIGHTS_B, expected_version=1)

    assert grpc.StatusCode.ABORTED == info.value.code()
    current = client.admin.GetWeights(admin_pb2.GetWeightsRequest())
    assert (2, WEIGHTS_A) == (current.version, current.source_toml)


def test_a_reload_expecting_the_version_in_force_applies(client: Client) -> None:
    reload(client, WEIGHTS_A)

    response = reload(client, WEIGHTS_B, expected_version=2)

    assert (3, WEIGHTS_B) == (response.weights.version, response.weights.source_toml)


def test_get_weights_tells_who_applied_the_version_and_why(client: Client) -> None:
    reload(client, WEIGHTS_A, actor="alice", reason="spring campaign")

    current = client.admin.GetWeights(admin_pb2.GetWeightsRequest())

    assert ("rpc", "alice", "spring campaign") == (current.trigger, current.actor, current.reason)


def test_get_weights_reports_each_profiles_limits_and_the_traffic_split(client: Client) -> None:
    toml = (
        WEIGHTS_A
        + """
[profiles.main.limits]
max_candidates = 100
top_max_limit = 10

[profiles.other]
weights = { wilson = 1 }

[traffic]
salt = "s1"
shares = { main = 0.75, other = 0.25 }
"""
    )
    reload(client, toml)

    current = client.admin.GetWeights(admin_pb2.GetWeightsRequest())

    limits = {
        p.name: (p.limits.max_candidates, p.limits.top_default_limit, p.limits.top_max_limit)
        for p in current.profiles
    }
    assert {"main": (100, 10, 10), "other": (5000, 20, 1000)} == limits
    assert ([("main", 0.75), ("other", 0.25)], "s1") == (
        [(t.profile, t.share) for t in current.traffic],
        current.traffic_salt,
    )


def test_history_lists_every_version_newest_first(client: Client) -> None:
    reload(client, WEIGHTS_A, actor="alice", reason="campaign")
    reload(client, WEIGHTS_B)

    history = client.admin.ListWeightHistory(admin_pb2.ListWeightHistoryRequest())

    rows = [(v.version, v.source, v.trigger, v.actor, v.reason) for v in history.versions]
    assert [
        (3, "inline", "rpc", "", ""),
        (2, "inline", "rpc", "alice", "campaign"),
        (1, str(client.settings.weights), "startup", "", ""),
    ] == rows
    assert 3 == history.current_version


def test_history_carries_each_versions_content_hash(client: Client) -> None:
    reload(client, WEIGHTS_A)

    history = client.admin.ListWeightHistory(
        admin_pb2.ListWeightHistoryRequest(include_content=True)
    )

    assert [hashlib.sha256(v.content.encode()).hexdigest() for v in history.versions] == [
        v.content_sha256 for v in history.versions
    ]
    assert [WEIGHTS_A, TEST_WEIGHTS] == [v.content for v in history.versions]


def test_history_pages_follow_each_other(client: Client) -> None:
    for toml in (WEIGHTS_A, WEIGHTS_B, WEIGHTS_A, WEIGHTS_B):
        reload(client, toml)
    seen = []
    token = ""
    while True:
        page = client.admin.ListWeightHistory(
            admin_pb2.ListWeightHistoryRequest(page_size=2, page_token=token)
        )
        seen.append([v.version for v in page.versions])
        token = page.next_page_token
        if not token:
            break

    assert [[5, 4], [3, 2], [1]] == seen


def test_rollback_restores_exactly_the_earlier_results(seeded: Client) -> None:
    reload(seeded, WEIGHTS_A)
    under_a = scored(seeded.ranking.Rank(rank_request()))
    reload(seeded, WEIGHTS_B)
    under_b = scored(seeded.ranking.Rank(rank_request()))

    response = seeded.admin.RollbackWeights(admin_pb2.RollbackWeightsRequest(version=2))

    ranked = seeded.ranking.Rank(rank_request())
    assert under_a != under_b
    assert (4, under_a) == (ranked.weights_version, scored(ranked))
    assert (2, "rollback", WEIGHTS_A) == (
        response.weights.rollback_of,
        response.weights.source,
        response.weights.source_toml,
    )


def test_rollback_is_recorded_in_the_history(client: Client) -> None:
    reload(client, WEIGHTS_A)
    client.admin.RollbackWeights(
        admin_pb2.RollbackWeightsRequest(version=1, actor="bob", reason="campaign over")
    )

    [latest, *_] = client.admin.ListWeightHistory(admin_pb2.ListWeightHistoryRequest()).versions

    assert (3, 1, "bob", "campaign over") == (
        latest.version,
        latest.rollback_of,
        latest.actor,
        latest.reason,
    )


def test_rollback_to_an_unknown_version_is_not_found(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.admin.RollbackWeights(admin_pb2.RollbackWeightsRequest(version=9))

    assert grpc.StatusCode.NOT_FOUND == info.value.code()
    assert 1 == version(client)


def test_rollback_expecting_a_stale_version_is_aborted(client: Client) -> None:
    reload(client, WEIGHTS_A)

    with pytest.raises(grpc.RpcError) as info:
        client.admin.RollbackWeights(
            admin_pb2.RollbackWeightsRequest(version=1, expected_version=1)
        )

    assert grpc.StatusCode.ABORTED == info.value.code()
    assert 2 == version(client)


def test_a_reload_over_rpc_survives_a_restart(start_server: Callable[..., Client]) -> None:
    first = start_server()
    reload(first, WEIGHTS_A, actor="alice")
    first.server.stop(grace=1.0)

    second = start_server()

    current = second.admin.GetWeights(admin_pb2.GetWeightsRequest())
    assert (2, WEIGHTS_A, "alice") == (current.version, current.source_toml, current.actor)


def test_a_weights_file_edited_while_stopped_wins_at_restart(
    start_server: Callable[..., Client],
) -> None:
    first = start_server()
    reload(first, WEIGHTS_A)
    first.server.stop(grace=1.0)
    first.settings.weights.write_text(WEIGHTS_B)

    second = start_server()

    current = second.admin.GetWeights(admin_pb2.GetWeightsRequest())
    assert (3, WEIGHTS_B, "startup") == (current.version, current.source_toml, current.trigger)


def test_a_restart_with_nothing_changed_keeps_the_version(
    start_server: Callable[..., Client],
) -> None:
    first = start_server()
    first.server.stop(grace=1.0)

    second = start_server()

    history = second.admin.ListWeightHistory(admin_pb2.ListWeightHistoryRequest())
    assert (1, [1]) == (history.current_version, [v.version for v in history.versions])


def test_a_rank_over_the_profiles_candidate_limit_is_refused(client: Client) -> None:
    reload(client, WEIGHTS_A + "limits = { max_candidates = 5 }\n")

    with pytest.raises(grpc.RpcError) as info:
        client.ranking.Rank(rank_request([f"q{i}" for i in range(6)]))

    assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
    assert {"candidates"} == set(field_violations(info.value))


def test_top_pages_default_to_the_profiles_page_size(seeded: Client) -> None:
    reload(seeded, WEIGHTS_A + "limits = { top_default_limit = 4, top_max_limit = 6 }\n")

    page = seeded.ranking.Top(ranking_pb2.TopRequest())

    assert 4 == len(page.results)


def test_top_pages_above_the_profiles_maximum_are_refused(seeded: Client) -> None:
    reload(seeded, WEIGHTS_A + "limits = { top_max_limit = 6 }\n")

    with pytest.raises(grpc.RpcError) as info:
        seeded.ranking.Top(ranking_pb2.TopRequest(limit=7))

    assert {"limit"} == set(field_violations(info.value))
