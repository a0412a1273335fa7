"""Health per service through a real storage fault (a write lock held by another process),
seen by health Watch streams, the metrics and AdminService.GetStatus; and the
``reviewrank status`` summary an operator reads."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reviewrank.service import __version__
from reviewrank.service.api.server import FEEDBACK_SERVICE
from reviewrank.service.cli import main as cli
from reviewrank.v1 import admin_pb2, ranking_pb2
from tests.conftest import ADMIN_TOKEN, Client
from tests.helpers import (
    batch,
    candidates,
    like,
    rating,
    wait_for_health,
    write_lock_held_elsewhere,
)
from tests.observability_helpers import scrape

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
RANKING_SERVICE = "reviewrank.v1.RankingService"
ADMIN_SERVICE = "reviewrank.v1.AdminService"
SERVICES = ["", FEEDBACK_SERVICE, RANKING_SERVICE, ADMIN_SERVICE]


class Watcher:
    """A health Watch stream of one service, recording every status it is sent."""

    def __init__(self, client: Client, service: str) -> None:
        stub = health_pb2_grpc.HealthStub(client.channel)
        self.call = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=30)
        self.statuses: list[int] = []
        self.first = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for response in self.call:
                self.statuses.append(response.status)
                self.first.set()
        except grpc.RpcError:
            pass

    def stop(self) -> list[int]:
        self.call.cancel()
        self.thread.join(5)
        return self.statuses


def test_a_storage_fault_turns_only_the_feedback_service_not_serving_until_it_recovers(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(
        busy_timeout_ms=200, storage_probe_seconds=0.05, metrics_address="127.0.0.1:0"
    )
    client.feedback.SubmitRating(rating("p1", "u1", 4), timeout=10)
    watchers = {service: Watcher(client, service) for service in SERVICES}
    for watcher in watchers.values():
        assert watcher.first.wait(5)

    with write_lock_held_elsewhere(client.settings.database):
        with pytest.raises(grpc.RpcError) as failed:
            client.feedback.SubmitRating(rating("p1", "u2", 5), timeout=10)
        wait_for_health(client, FEEDBACK_SERVICE, NOT_SERVING)
        during = scrape(client)
        status = client.admin.GetStatus(admin_pb2.GetStatusRequest(), timeout=10)
        ranked = client.ranking.Rank(
            ranking_pb2.RankRequest(candidates=candidates("p1", "p2")), timeout=10
        )

    wait_for_health(client, FEEDBACK_SERVICE, SERVING)
    client.feedback.SubmitLike(like("p1", "u3"), timeout=10)
    after = scrape(client)
    seen = {service: watcher.stop() for service, watcher in watchers.items()}

    assert grpc.StatusCode.UNAVAILABLE == failed.value.code()
    assert {
        "": [SERVING],
        FEEDBACK_SERVICE: [SERVING, NOT_SERVING, SERVING],
        RANKING_SERVICE: [SERVING],
        ADMIN_SERVICE: [SERVING],
    } == seen
    assert ["p1", "p2"] == [r.product_id for r in ranked.results]  # rankings from memory
    assert (0, 0, 1, 1, 1) == (
        during("reviewrank_storage_ok"),
        during("reviewrank_serving", service=FEEDBACK_SERVICE),
        during("reviewrank_serving", service=RANKING_SERVICE),
        during("reviewrank_serving", service=ADMIN_SERVICE),
        during("reviewrank_serving", service=""),
    )
    assert 1 == during("reviewrank_events_rejected_total", reason="storage_unavailable")
    assert 1 <= during("reviewrank_write_transactions_total", result="failed")
    assert not status.storage_ok
    assert {
        "": "SERVING",
        FEEDBACK_SERVICE: "NOT_SERVING",
        RANKING_SERVICE: "SERVING",
        ADMIN_SERVICE: "SERVING",
    } == {h.service: h.status for h in status.health}
    assert (1, 1) == (
        after("reviewrank_storage_ok"),
        after("reviewrank_serving", service=FEEDBACK_SERVICE),
    )


def test_get_status_reports_what_an_operator_asks_first(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 5), timeout=10)
    client.feedback.SubmitRating(rating("p2", "u1", 3), timeout=10)
    duplicate = rating("p2", "u2", 4)
    client.feedback.SubmitRating(duplicate, timeout=10)
    client.feedback.SubmitRating(duplicate, timeout=10)

    status = client.admin.GetStatus(admin_pb2.GetStatusRequest(), timeout=10)

    assert (__version__, 2, 3, 1, "default") == (
        status.version,
        status.products,
        status.seq,
        status.weights_version,
        status.default_profile,
    )
    assert {"applied": 3, "duplicate": 1, "superseded": 0} == dict(status.events_since_start)
    assert (4, 0, 0) == (
        status.transactions_since_start,
        status.failed_transactions_since_start,
        status.queue_depth,
    )
    assert client.settings.writer_queue_size == status.queue_capacity
    assert status.storage_ok
    assert 0 <= status.uptime_seconds < 60
    assert 0 == status.change_feed_lag
    fixed = next(p for p in status.priors if p.profile == "fixed")
    assert (2.5, 4.0, "fixed") == (fixed.mean, fixed.strength, fixed.source)
    assert {"", FEEDBACK_SERVICE, RANKING_SERVICE, ADMIN_SERVICE} <= {
        h.service for h in status.health
    }


def test_status_command_prints_a_readable_summary(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 5), timeout=10)

    code = cli.main(["status", "--server", client.target, "--token", ADMIN_TOKEN])

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert 0 == code
    assert f"reviewrank {__version__} at {client.target}" == lines[0]
    assert "storage     ok: writes commit" in lines
    assert "products    1" in lines
    assert "sequence    1 (change feed lag 0)" in lines
    assert "events      since start: 1 applied, 0 duplicate, 0 superseded; 0 erasures" in lines
    assert "queue       0 waiting of 10,000" in lines
    assert "weights     version 1, default profile default" in lines
    assert any(line.startswith("health      server SERVING") for line in lines)
    assert any(line.split()[:4] == ["fixed", "2.5000", "4.0000", "fixed"] for line in lines)


def test_status_command_needs_the_admin_token(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["status", "--server", client.target, "--token", "not-the-token"])

    assert 1 == code
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_the_status_shows_a_profiles_prior_refitted_after_writes_nobody_ranked_since(
    client: Client,
) -> None:
    client.feedback.SubmitBatch(batch(*(rating(f"p{i}", f"u{i}", 5) for i in range(5))))
    first = client.admin.GetStatus(admin_pb2.GetStatusRequest(), timeout=10)
    client.feedback.SubmitBatch(batch(*(rating(f"q{i}", f"v{i}", 1) for i in range(20))))

    later = client.admin.GetStatus(admin_pb2.GetStatusRequest(), timeout=10)

    before = next(p for p in first.priors if p.profile == "default")
    after = next(p for p in later.priors if p.profile == "default")
    assert 5.0 == pytest.approx(before.mean)
    assert 1.8 == pytest.approx(after.mean)  # (5 x 5 + 20 x 1) / 25: every rating counted
