"""The Prometheus endpoint of a real server, scraped after real traffic: the gRPC server
metrics move per method and status code, and the service's own metrics (events by
outcome, rejected events, write transactions, weights, priors) follow what happened."""

from __future__ import annotations

import socket
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reviewrank.service.api.server import create_server
from reviewrank.service.app.status import MAX_CHANNELS, OTHER_CHANNEL
from reviewrank.service.domain.errors import AddressInUse
from reviewrank.v1 import admin_pb2, admin_pb2_grpc, ranking_pb2
from tests.conftest import Client, make_settings
from tests.helpers import batch, candidates, like, poll_vote, rating, share
from tests.observability_helpers import RANK, Samples, scrape, scrape_text

METRICS = {"metrics_address": "127.0.0.1:0"}


def rank(client: Client, *products: str) -> None:
    client.ranking.Rank(ranking_pb2.RankRequest(candidates=candidates(*products)), timeout=10)


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_port_0_serves_metrics_on_a_free_port_exposed_on_the_server(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(**METRICS)

    assert client.server.metrics_port not in (None, 0, client.port)
    assert "grpc_server_started_total" in scrape(client).text


def test_no_metrics_address_serves_no_metrics(client: Client) -> None:
    assert (None, None) == (client.server.metrics, client.server.metrics_port)


def test_rpc_counters_and_latency_histogram_move_with_real_calls(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(**METRICS)
    for _ in range(3):
        rank(client, "a", "b")
    refused = code_of(lambda: rank(client, "a", "a"))  # a product twice
    health_pb2_grpc.HealthStub(client.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)

    m = scrape(client)

    assert grpc.StatusCode.INVALID_ARGUMENT == refused
    assert 4 == m("grpc_server_started_total", **RANK)
    assert 4 == m("grpc_server_msg_received_total", **RANK)
    assert 3 == m("grpc_server_handled_total", **RANK, grpc_code="OK")
    assert 1 == m("grpc_server_handled_total", **RANK, grpc_code="INVALID_ARGUMENT")
    assert 3 == m("grpc_server_msg_sent_total", **RANK)
    assert 4 == m("grpc_server_handling_seconds_count", **RANK)
    assert 4 == m("grpc_server_handling_seconds_bucket", **RANK, le="+Inf")
    assert 0 < m("grpc_server_handling_seconds_sum", **RANK) < 4 * 10
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for labels, value in m.series("grpc_server_handling_seconds_bucket").items()
        if dict(labels)["grpc_method"] == "Rank"
    )
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)  # cumulative
    assert 0.0005 == buckets[0][0]  # fine enough for sub-millisecond calls
    health_check = {
        "grpc_type": "unary",
        "grpc_service": "grpc.health.v1.Health",
        "grpc_method": "Check",
    }
    assert 1 == m("grpc_server_handled_total", **health_check, grpc_code="OK")
    # Every method's series exists from the start, so that rates work before its first call.
    top = {**RANK, "grpc_method": "Top"}
    assert (0, 0) == (
        m("grpc_server_started_total", **top),
        m("grpc_server_handled_total", **top, grpc_code="OK"),
    )


def test_events_by_outcome_and_rejected_events_are_counted(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(**METRICS)
    first = rating("p1", "u1", 5, at=1_700_000_100)
    assert 1 == client.feedback.SubmitRating(first, timeout=10).outcome  # APPLIED
    assert 2 == client.feedback.SubmitRating(first, timeout=10).outcome  # DUPLICATE
    older = rating("p1", "u1", 1, at=1_700_000_000)
    assert 3 == client.feedback.SubmitRating(older, timeout=10).outcome  # SUPERSEDED
    client.feedback.SubmitLike(like("p2", "u1"), timeout=10)
    bad_batch = batch(rating("p3", "u2", 4), rating("p3", "u3", 9), like("p3", "u4"))
    refused = code_of(lambda: client.feedback.SubmitBatch(bad_batch, timeout=10))

    m = scrape(client)

    assert grpc.StatusCode.INVALID_ARGUMENT == refused
    assert (2, 1, 1) == (
        m("reviewrank_events_total", outcome="applied"),
        m("reviewrank_events_total", outcome="duplicate"),
        m("reviewrank_events_total", outcome="superseded"),
    )
    # The whole batch is refused: its three events are not recorded.
    assert 3 == m("reviewrank_events_rejected_total", reason="invalid_argument")
    assert 4 == m("reviewrank_write_transactions_total", result="committed")
    assert 0 == m("reviewrank_write_transactions_total", result="failed")
    assert 4 == m("reviewrank_write_transaction_events_count")
    assert 4 == m("reviewrank_write_transaction_events_sum")  # one event each
    assert 4 == m("reviewrank_write_commit_seconds_count")
    assert 0 < m("reviewrank_write_commit_seconds_sum")
    assert (2, 3, 0) == (
        m("reviewrank_products"),
        m("reviewrank_sequence"),  # applied and superseded events take a sequence number
        m("reviewrank_writer_queue_depth"),
    )
    # One process applies its own commits before acknowledging them: no lag on any feed.
    assert {0.0} == set(m.series("reviewrank_change_feed_lag_events").values())
    assert 1 == m("reviewrank_storage_ok")


def test_events_are_counted_by_kind_and_channel_with_channels_bounded(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(**METRICS)
    client.feedback.SubmitRating(rating("p1", "u1", 5), timeout=10)
    first = share("p1", "u1", channel="instagram")
    client.feedback.SubmitBatch(batch(first, share("p1", "u2"), like("p1", "u3")), timeout=10)
    client.feedback.SubmitShare(first, timeout=10)  # DUPLICATE: not counted again
    for i in range(MAX_CHANNELS + 5):  # a caller inventing channels
        client.feedback.SubmitShare(share("p2", f"v{i}", channel=f"made-up-{i}"), timeout=10)

    m = scrape(client)

    kinds = m.series("reviewrank_events_by_kind_total")
    assert (1, 1, 1, 1) == (
        m("reviewrank_events_by_kind_total", kind="rating", channel=""),
        m("reviewrank_events_by_kind_total", kind="like", channel=""),
        m("reviewrank_events_by_kind_total", kind="share", channel="instagram"),
        m("reviewrank_events_by_kind_total", kind="share", channel=""),
    )
    channels = {dict(labels)["channel"] for labels in kinds}
    assert MAX_CHANNELS == len(channels - {"", OTHER_CHANNEL})  # instagram and 19 made up
    assert 5 + 1 == m("reviewrank_events_by_kind_total", kind="share", channel=OTHER_CHANNEL)


def test_poll_votes_are_counted_and_the_strengths_fit_is_shown(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(**METRICS)
    votes = [poll_vote("q", f"u{i}", ["a", "b", "c"], "a", channel="story") for i in range(3)]
    client.feedback.SubmitBatch(batch(*votes), timeout=10)
    deadline = time.monotonic() + 20
    while (m := scrape(client))("reviewrank_poll_votes") < 3:
        assert time.monotonic() < deadline, "no fit of the poll strengths"
        time.sleep(0.05)

    assert 3 == m("reviewrank_events_by_kind_total", kind="poll_vote", channel="story")
    assert 0 < m("reviewrank_poll_fit_seconds")
    assert 0 == m("reviewrank_poll_fit_pending")  # no vote since


def test_refused_calls_are_counted_by_code_but_their_events_are_not_read(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(api_token="api-token-for-metrics", **METRICS)
    refused = code_of(lambda: client.feedback.SubmitRating(rating("p", "u", 4), timeout=10))
    no_admin = admin_pb2_grpc.AdminServiceStub(client.channel)
    admin_refused = code_of(lambda: no_admin.GetWeights(admin_pb2.GetWeightsRequest()))

    m = scrape(client)

    assert (grpc.StatusCode.UNAUTHENTICATED,) * 2 == (refused, admin_refused)
    submit = {
        "grpc_type": "unary",
        "grpc_service": "reviewrank.v1.FeedbackService",
        "grpc_method": "SubmitRating",
    }
    assert 1 == m("grpc_server_handled_total", **submit, grpc_code="UNAUTHENTICATED")
    get_weights = {
        **submit,
        "grpc_service": "reviewrank.v1.AdminService",
        "grpc_method": "GetWeights",
    }
    assert 1 == m("grpc_server_handled_total", **get_weights, grpc_code="UNAUTHENTICATED")
    assert {} == m.series("reviewrank_events_rejected_total")


def test_weights_version_and_reloads_by_outcome_but_no_weights_or_priors(
    start_server: Callable[..., Client], tmp_path: Path
) -> None:
    client = start_server(**METRICS)
    text = (tmp_path / "weights.toml").read_text()
    client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=text), timeout=10)
    invalid = code_of(
        lambda: client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml="x = ["))
    )
    client.admin.RollbackWeights(admin_pb2.RollbackWeightsRequest(version=1), timeout=10)
    conflict = code_of(
        lambda: client.admin.ReloadWeights(
            admin_pb2.ReloadWeightsRequest(toml=text, expected_version=1)
        )
    )

    m = scrape(client)

    assert (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ABORTED) == (invalid, conflict)
    assert 3 == m("reviewrank_weights_version")
    assert (1, 1, 1, 1) == (
        m("reviewrank_weights_reloads_total", trigger="rpc", source="inline", outcome="applied"),
        m("reviewrank_weights_reloads_total", trigger="rpc", source="inline", outcome="invalid"),
        m("reviewrank_weights_reloads_total", trigger="rpc", source="inline", outcome="conflict"),
        m("reviewrank_weights_reloads_total", trigger="rpc", source="rollback", outcome="applied"),
    )
    # A scrape needs no token: no prior or weight values, and no profile names.
    exposed = scrape_text(client.server.metrics_port or 0).splitlines()
    assert [] == [line for line in exposed if "reviewrank_prior" in line]
    assert [] == [line for line in exposed if 'profile="' in line]


def test_process_metrics_are_exported(start_server: Callable[..., Client]) -> None:
    m = scrape(start_server(**METRICS))

    assert 0 < m("process_resident_memory_bytes")
    assert 0 < m("process_start_time_seconds")
    assert "python_info" in {name for name, _ in m.values}


def test_stopping_the_server_closes_the_metrics_port(start_server: Callable[..., Client]) -> None:
    client = start_server(**METRICS)
    port = client.server.metrics_port
    assert port is not None
    scrape_text(port)

    client.server.stop(grace=1.0)

    with pytest.raises(urllib.error.URLError):
        scrape_text(port)


def test_a_metrics_port_in_use_stops_the_start_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        settings = make_settings(tmp_path, metrics_address=address)

        with pytest.raises(AddressInUse, match=f"cannot serve metrics on {address}"):
            create_server(settings)

    # Nothing was left open: the same database and weights serve at once.
    server, _port = create_server(make_settings(tmp_path, metrics_address="127.0.0.1:0"))
    try:
        assert 1 == Samples(scrape_text(server.metrics_port or 0))("reviewrank_weights_version")
    finally:
        server.stop(grace=1.0)
