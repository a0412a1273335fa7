"""Reloading the weights file on SIGHUP and when it changes on disk (file watch)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reviewrank.service.api.auth import client_channel
from reviewrank.v1 import admin_pb2, admin_pb2_grpc
from tests.conftest import ADMIN_TOKEN, Client
from tests.process import ServerProcess
from tests.weights_helpers import WEIGHTS_A, WEIGHTS_B

GET = admin_pb2.GetWeightsRequest()


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    weights = tmp_path / "weights.toml"
    weights.write_text(WEIGHTS_A)
    server = ServerProcess(
        "--database",
        str(tmp_path / "db.sqlite"),
        "--weights",
        str(weights),
        env={"REVIEWRANK_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    channel = client_channel(server.target, token=ADMIN_TOKEN)
    yield server, weights, admin_pb2_grpc.AdminServiceStub(channel)
    channel.close()
    server.stop()


def test_sighup_reloads_the_weights_file(served) -> None:  # type: ignore[no-untyped-def]
    server, weights, admin = served
    weights.write_text(WEIGHTS_B)

    os.kill(server.proc.pid, signal.SIGHUP)

    assert wait_for(lambda: admin.GetWeights(GET).version == 2)
    current = admin.GetWeights(GET)
    assert (WEIGHTS_B, "sighup") == (current.source_toml, current.trigger)


def test_sighup_with_the_file_unchanged_makes_no_new_version(served) -> None:  # type: ignore[no-untyped-def]
    server, _weights, admin = served

    os.kill(server.proc.pid, signal.SIGHUP)

    assert wait_for(lambda: "weights file unchanged: nothing applied" in server.events())
    assert 1 == admin.GetWeights(GET).version
    history = admin.ListWeightHistory(admin_pb2.ListWeightHistoryRequest())
    assert [1] == [entry.version for entry in history.versions]


def test_sighup_with_an_invalid_file_keeps_the_weights_and_logs_the_key(served) -> None:  # type: ignore[no-untyped-def]
    server, weights, admin = served
    weights.write_text(WEIGHTS_B.replace("0.8", "1.8"))

    os.kill(server.proc.pid, signal.SIGHUP)

    assert wait_for(lambda: "weights reload refused: the weights in force stay" in server.events())
    [refused] = [r for r in server.lines if r.get("event", "").startswith("weights reload refused")]  # type: ignore[union-attr]
    assert ["profiles.main.confidence: must be a number strictly between 0 and 1"] == refused[
        "problems"
    ]
    assert (1, WEIGHTS_A) == (admin.GetWeights(GET).version, admin.GetWeights(GET).source_toml)
    assert None is server.proc.poll()  # still serving


@pytest.fixture
def watched(start_server: Callable[..., Client]) -> Client:
    return start_server(weights_watch_seconds=0.02)


def test_the_file_watch_reloads_a_changed_weights_file(watched: Client) -> None:
    watched.settings.weights.write_text(WEIGHTS_B)

    assert wait_for(lambda: watched.admin.GetWeights(GET).version == 2)
    current = watched.admin.GetWeights(GET)
    assert (WEIGHTS_B, "file-watch") == (current.source_toml, current.trigger)


def test_the_file_watch_keeps_the_weights_when_the_new_file_is_invalid(watched: Client) -> None:
    watched.settings.weights.write_text(WEIGHTS_B.replace("0.8", "1.8"))
    time.sleep(0.3)  # many polls

    assert 1 == watched.admin.GetWeights(GET).version


def test_the_file_watch_applies_a_fix_after_an_invalid_file(watched: Client) -> None:
    watched.settings.weights.write_text(WEIGHTS_B.replace("0.8", "1.8"))
    time.sleep(0.1)

    watched.settings.weights.write_text(WEIGHTS_B)

    assert wait_for(lambda: watched.admin.GetWeights(GET).source_toml == WEIGHTS_B)
    assert 2 == watched.admin.GetWeights(GET).version


def test_the_file_watch_ignores_a_rewrite_with_the_same_content(watched: Client) -> None:
    text = watched.settings.weights.read_text()

    watched.settings.weights.write_text(text)
    time.sleep(0.3)

    assert 1 == watched.admin.GetWeights(GET).version


def test_without_the_setting_a_changed_file_is_not_reloaded(client: Client) -> None:
    client.settings.weights.write_text(WEIGHTS_B)
    time.sleep(0.3)

    assert 1 == client.admin.GetWeights(GET).version
