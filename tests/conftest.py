"""Fixtures: a real reviewrank server on a loopback port 0, with a real SQLite file."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from reviewrank.v1 import admin_pb2_grpc, feedback_pb2_grpc, ranking_pb2_grpc

from service.dataset import DATA_DIR
from service.logs import configure
from service.server import ReviewrankServer, create_server
from service.settings import Settings


@dataclass
class Client:
    server: ReviewrankServer
    port: int
    settings: Settings
    channel: grpc.Channel
    feedback: feedback_pb2_grpc.FeedbackServiceStub
    ranking: ranking_pb2_grpc.RankingServiceStub
    admin: admin_pb2_grpc.AdminServiceStub

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


configure("json", "warning")


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    weights = tmp_path / "weights.toml"
    if not weights.exists():
        shutil.copy(DATA_DIR / "weights.toml", weights)
    base = Settings(
        address="127.0.0.1:0",
        database=tmp_path / "reviewrank.db",
        weights=weights,
        log_format="json",
        log_level="warning",
        grace_seconds=5.0,
    )
    return base.with_overrides(**overrides)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Client]]:
    """Starts servers on demand (each on port 0); stops them all at the end."""
    started: list[Client] = []

    def start(**overrides: object) -> Client:
        settings = make_settings(tmp_path, **overrides)
        server, port = create_server(settings)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        client = Client(
            server=server,
            port=port,
            settings=settings,
            channel=channel,
            feedback=feedback_pb2_grpc.FeedbackServiceStub(channel),
            ranking=ranking_pb2_grpc.RankingServiceStub(channel),
            admin=admin_pb2_grpc.AdminServiceStub(channel),
        )
        started.append(client)
        return client

    yield start
    for client in started:
        client.channel.close()
        client.server.stop(grace=1.0)


@pytest.fixture
def client(start_server: Callable[..., Client]) -> Client:
    return start_server()
