"""Fixtures: a real reviewrank server on a loopback port 0, with a real SQLite file."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from reviewrank.service.api.auth import BearerToken
from reviewrank.service.api.server import ReviewrankServer, create_server
from reviewrank.service.app.settings import Settings
from reviewrank.service.app.store import DatabaseURL, Store
from reviewrank.service.ops.logs import configure
from reviewrank.service.storage.factory import open_store
from reviewrank.v1 import admin_pb2_grpc, feedback_pb2_grpc, ranking_pb2_grpc


@dataclass
class Client:
    server: ReviewrankServer
    port: int
    settings: Settings
    channel: grpc.Channel
    feedback: feedback_pb2_grpc.FeedbackServiceStub
    ranking: ranking_pb2_grpc.RankingServiceStub
    admin: admin_pb2_grpc.AdminServiceStub
    # FeedbackService sending the admin token, as ForgetUser needs (`feedback` sends none).
    eraser: feedback_pb2_grpc.FeedbackServiceStub

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


configure("json", "warning")


# Weights the tests rely on (the shipped data/weights.toml is tuned, and may change).
TEST_WEIGHTS = """
default_profile = "default"

[profiles.default]
confidence = 0.95
weights = { bayesian_average = 0.6, wilson = 0.25, relevance = 0.15 }
prior = { mean = "catalogue", strength = 10 }

[profiles.reviews_only]
weights = { bayesian_average = 0.7, wilson = 0.3 }
prior = { mean = "catalogue", strength = 10 }

[profiles.auto]
weights = { bayesian_average = 1 }
prior = { mean = "auto", strength = "auto" }

[profiles.auto_moments]
weights = { bayesian_average = 1 }
prior = { mean = "auto", strength = "auto", estimator = "moments" }

[profiles.by_category]
weights = { bayesian_average = 1 }

[profiles.by_category.prior]
mean = "auto"
strength = "auto"
per_category = true
min_category_ratings = 5
min_category_products = 2

[profiles.by_category_moments]
weights = { bayesian_average = 1 }

[profiles.by_category_moments.prior]
mean = "auto"
strength = "auto"
per_category = true
estimator = "moments"
min_category_ratings = 5
min_category_products = 2

[profiles.fixed]
weights = { bayesian_average = 1 }
prior = { mean = 2.5, strength = 4 }

[profiles.alternatives]
confidence = 0.9
weights = { star_lower_bound = 1, beta_mean = 1, beta_lower_bound = 1 }
likes_prior = { alpha = 2, beta = 1 }
stars_prior = { pseudo_count = 1 }

[profiles.recent]
half_life_days = 30
weights = { bayesian_average = 0.5, wilson = 0.5 }
prior = { mean = 3.0, strength = 2 }

[profiles.shared]
weights = { shares = 1 }
prior = { mean = 3.0, strength = 2 }
shares = { half_life_days = 30, prior = { shape = 0.5, rate_days = 50 } }
channels = { store = 2, instagram = 0.5 }

[profiles.shared_auto]
weights = { bayesian_average = 0.5, shares = 0.5 }
prior = { mean = 3.0, strength = 2 }

[profiles.commented]
weights = { sentiment = 1 }
prior = { mean = 3.0, strength = 2 }
sentiment = { prior = { mean = 0.0, strength = 2 } }

[profiles.commented_auto]
weights = { bayesian_average = 0.5, sentiment = 0.5 }
prior = { mean = 3.0, strength = 2 }

[profiles.commented_by_channel]
weights = { sentiment = 1 }
prior = { mean = 3.0, strength = 2 }
sentiment = { prior = { mean = 0.0, strength = 2 } }
channels = { store = 3, instagram = 0 }

[profiles.polled]
weights = { polls = 1 }
prior = { mean = 3.0, strength = 2 }

[profiles.polled_and_rated]
weights = { bayesian_average = 0.5, polls = 0.5 }
prior = { mean = 3.0, strength = 2 }
"""


# The admin token of test servers; the `admin` stub of a Client sends it.
ADMIN_TOKEN = "test-admin-token-3f9c"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    weights = tmp_path / "weights.toml"
    if not weights.exists():
        weights.write_text(TEST_WEIGHTS)
    base = Settings(
        address="127.0.0.1:0",
        database=tmp_path / "reviewrank.db",
        weights=weights,
        log_format="json",
        log_level="warning",
        grace_seconds=5.0,
        admin_token=ADMIN_TOKEN,
        # No vote weighing unless a test asks (tests/api/test_manipulation_defences.py):
        # tests send several votes on a product within a second, which is a burst.
        integrity_seconds=0.0,
    )
    return base.with_overrides(**overrides)


# The storage backends. A test module runs its tests on both with
# `pytestmark = both_backends`; otherwise tests run on SQLite, the embedded default.
BACKENDS = ("sqlite", "postgresql")
both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend a test's servers and stores use (parametrized by ``both_backends``)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The test's database as a URL: a fresh PostgreSQL database, or "" (the SQLite file
    of make_settings). Every server a test starts shares it, as restarts must."""
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return ""


@pytest.fixture
def make_store(tmp_path: Path, database_url: str) -> Iterator[Callable[[], Store]]:
    """Opens the test's database (a SQLite file, or the fresh PostgreSQL database) as a
    store; each call opens it again (a restart). All are closed at the end."""
    where = (
        DatabaseURL.parse(database_url)
        if database_url
        else DatabaseURL.for_path(tmp_path / "store.db")
    )
    opened: list[Store] = []

    def make() -> Store:
        store = open_store(where)
        opened.append(store)
        return store

    yield make
    for store in opened:
        with contextlib.suppress(Exception):  # closed by the test already
            store.close()


@pytest.fixture
def start_server(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Client]]:
    """Starts servers on demand (each on port 0); stops them all at the end."""
    started: list[Client] = []

    def start(**overrides: object) -> Client:
        if database_url:
            overrides.setdefault("database_url", database_url)
        settings = make_settings(tmp_path, **overrides)
        server, port = create_server(settings)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        with_admin_token = grpc.intercept_channel(channel, BearerToken(settings.admin_token))
        client = Client(
            server=server,
            port=port,
            settings=settings,
            channel=channel,
            feedback=feedback_pb2_grpc.FeedbackServiceStub(channel),
            ranking=ranking_pb2_grpc.RankingServiceStub(channel),
            admin=admin_pb2_grpc.AdminServiceStub(with_admin_token),
            eraser=feedback_pb2_grpc.FeedbackServiceStub(with_admin_token),
        )
        started.append(client)
        return client

    yield start
    for client in started:
        client.server.stop(grace=1.0)
        client.channel.close()


@pytest.fixture
def client(start_server: Callable[..., Client]) -> Client:
    return start_server()


# -- PostgreSQL: one throwaway cluster for the session (tests/pg_cluster.py) -----------------

import typing  # noqa: E402 (the cluster module, and psycopg, load only when a test needs them)

if typing.TYPE_CHECKING:
    from tests.pg_cluster import PostgresCluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A real PostgreSQL server for the session. Missing binaries fail the tests (never a
    skip): `make test` installs them with .ci/install-postgres."""
    from tests.pg_cluster import PostgresCluster, PostgresUnavailable

    cluster = PostgresCluster()
    try:
        cluster.start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster) -> Iterator[str]:
    """The URL of a fresh, empty database of its own; dropped after the test."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url.rsplit("/", 1)[1])
