"""The demo as `make serve` runs it: the real reviews imported, then served and ranked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from reviewrank.service.cli import main as cli
from reviewrank.service.cli.dataset import DATA_DIR
from reviewrank.service.storage.sqlite.store import SQLiteStore
from reviewrank.v1 import ranking_pb2, ranking_pb2_grpc
from tests.conftest import ADMIN_TOKEN
from tests.process import ServerProcess

# 834: 150 reviews, mean 4.54, 93 % recommend; 1078: 1,024 reviews, mean 4.20, 82 %;
# 4: a single 5-star review; 1084: 72 reviews, mean 3.46, 71 %; 973: two 1-star reviews.
FIVE = ["973", "4", "1084", "1078", "834"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ServerProcess]]:
    database = tmp_path_factory.mktemp("demo") / "demo.db"
    assert 0 == cli.main(["import", "--database", str(database), "--quiet"])
    server = ServerProcess(
        "--database",
        str(database),
        "--weights",
        str(DATA_DIR / "weights.toml"),
        env={"REVIEWRANK_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    yield database, server
    server.proc.terminate()
    server.wait()


def test_import_loads_every_review_as_a_rating_and_a_like(demo: tuple[Path, ServerProcess]) -> None:
    database, _server = demo
    store = SQLiteStore(database)
    try:
        ratings = store.conn.execute("SELECT count(*), sum(stars) FROM ratings").fetchone()
        likes = store.conn.execute("SELECT sum(value = 1), sum(value = -1) FROM likes").fetchone()
        products = store.conn.execute("SELECT count(*) FROM products").fetchone()[0]
        assert (23486, 1206) == (ratings[0], products)
        assert (19314, 4172) == tuple(likes)
        assert [] == store.aggregate_mismatches()
    finally:
        store.close()


def test_second_import_changes_nothing(
    demo: tuple[Path, ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    database, _server = demo

    assert 0 == cli.main(["import", "--database", str(database), "--quiet"])

    assert "0 applied, 46972 duplicate" in capsys.readouterr().out


def test_five_products_come_back_in_a_review_driven_order(demo: tuple[Path, ServerProcess]) -> None:
    _database, server = demo
    request = ranking_pb2.RankRequest(
        candidates=[ranking_pb2.Candidate(product_id=p, relevance=1.0) for p in FIVE]
    )
    with grpc.insecure_channel(server.target) as channel:
        results = ranking_pb2_grpc.RankingServiceStub(channel).Rank(request, timeout=10).results

    order = [r.product_id for r in results]
    assert ["834", "1078"] == order[:2]
    assert "973" == order[-1]


def test_rank_command_prints_a_table(
    demo: tuple[Path, ServerProcess],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _database, server = demo
    monkeypatch.setenv("REVIEWRANK_ADMIN_TOKEN", ADMIN_TOKEN)  # --explain sends it

    assert 0 == cli.main(["rank", *FIVE, "--server", server.target, "--explain"])

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["#", "product", "score"]
    assert "834" == lines[2].split()[1]
    assert lines[-1].startswith("profile default")


def test_top_command_pages_through_a_category(
    demo: tuple[Path, ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    _database, server = demo

    assert 0 == cli.main(
        ["top", "--category", "Dresses", "--limit", "3", "--server", server.target]
    )

    out = capsys.readouterr().out
    assert 3 == sum(1 for line in out.splitlines() if line[:1].isdigit())
    assert "next page: --page-token" in out


def test_stats_command_prints_the_histogram(
    demo: tuple[Path, ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    _database, server = demo

    assert 0 == cli.main(["stats", "1078", "--server", server.target])

    assert "33 59 136 234 562" in capsys.readouterr().out


def test_stats_command_prints_the_prior_each_product_is_shrunk_toward(
    demo: tuple[Path, ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    _database, server = demo

    assert 0 == cli.main(["stats", "1078", "834", "--server", server.target])

    out = capsys.readouterr().out
    priors = re.findall(r" ([1-5]\.\d\d) / (\d+\.\d) ", out)
    assert 2 == len(priors), out
    assert all(1.0 <= float(c) <= 5.0 and float(m) > 0 for c, m in priors)
    assert "prior auto/marginal/category" in out  # the shipped profiles' prior


def test_stats_command_says_a_product_it_does_not_know_is_not_known(
    demo: tuple[Path, ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    _database, server = demo

    assert 0 == cli.main(["stats", "no-such-product", "--server", server.target])

    [row] = [line for line in capsys.readouterr().out.splitlines() if "no-such-product" in line]
    assert (True, False) == ("not known" in row, " yes " in row)


def test_health_command_exits_zero_when_serving(
    demo: tuple[Path, ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    _database, server = demo

    assert 0 == cli.main(["health", "--server", server.target])
    assert "SERVING" == capsys.readouterr().out.strip()


def test_client_command_reports_a_bad_request_plainly(
    demo: tuple[Path, ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    _database, server = demo

    assert 1 == cli.main(["rank", "a", "--profile", "nope", "--server", server.target])
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
