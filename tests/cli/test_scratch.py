"""Scratch servers (service/cli/scratch.py) and ``reviewrank bench`` against one: load that
writes leaves the database it was pointed at as it was."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc

from reviewrank.service import CLI_MODULE
from reviewrank.service.cli.scratch import scratch_server
from reviewrank.v1 import feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.helpers import rating

ROOT = Path(__file__).resolve().parents[2]


def events_in(database: Path) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def database_with_one_rating(tmp_path: Path) -> Path:
    database = tmp_path / "kept.db"
    rows = tmp_path / "one.csv"
    rows.write_text("product_id,user_id,occurred_at,stars\np1,u1,2024-01-01T00:00:00Z,5\n")
    done = reviewrank("import", "--data", str(rows), "--database", str(database))
    assert 0 == done.returncode, done.stderr
    return database


def reviewrank(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", CLI_MODULE, *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_writes_to_a_scratch_server_leave_its_database_as_it_was(tmp_path: Path) -> None:
    database = database_with_one_rating(tmp_path)

    with scratch_server(database) as target, grpc.insecure_channel(target) as channel:
        feedback_pb2_grpc.FeedbackServiceStub(channel).SubmitRating(
            rating("p1", "u2", 1, event_id="scratch-1"), timeout=10
        )
        stats = ranking_pb2_grpc.RankingServiceStub(channel).GetProductStats(
            ranking_pb2.GetProductStatsRequest(product_ids=["p1"]), timeout=10
        )
        assert 2 == stats.stats[0].rating_count  # the copy holds the original's rating

    assert 1 == events_in(database)


def test_a_scratch_server_removes_its_copy_when_it_stops(tmp_path: Path) -> None:
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    with scratch_server(tmp_path / "kept.db", temp_root):
        assert 1 == len(list(temp_root.glob("reviewrank-scratch-*/scratch.db")))

    assert [] == list(temp_root.iterdir())


def test_scratch_refuses_postgresql_in_one_line() -> None:
    done = reviewrank(
        "serve", "--scratch", "--database-url", "postgresql://nobody@127.0.0.1:1/none"
    )

    assert 2 == done.returncode
    assert "--scratch copies a SQLite database" in done.stderr
    assert "Traceback" not in done.stderr


def test_bench_without_server_loads_a_scratch_copy_of_the_configured_database(
    tmp_path: Path,
) -> None:
    database = database_with_one_rating(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "REVIEWRANK_DATABASE": str(database)}
    request = '{"eventId":"b-{{uuid}}","productId":"p1","userId":"u{{n}}","stars":2}'

    done = reviewrank(
        "bench", "--call", "reviewrank.v1.FeedbackService/SubmitRating", "-d", request,
        "-n", "50", "-c", "5", env=env,
    )  # fmt: skip

    assert 0 == done.returncode, done.stderr
    assert "[OK]   50 responses" in done.stdout
    assert 1 == events_in(database)


def test_bench_names_an_unknown_method_in_one_line() -> None:
    done = reviewrank("bench", "--call", "reviewrank.v1.RankingService/Rnak", "-d", "{}")

    assert 2 == done.returncode
    assert "reviewrank bench: --call 'reviewrank.v1.RankingService/Rnak': no such" in done.stderr
    assert 1 == len(done.stderr.strip().splitlines())


def test_bench_names_a_request_that_is_not_json_in_one_line() -> None:
    done = reviewrank("bench", "--call", "reviewrank.v1.RankingService/Rank", "-d", "{bad")

    assert 2 == done.returncode
    assert "the request is not a valid reviewrank.v1.RankRequest" in done.stderr
    assert 1 == len(done.stderr.strip().splitlines())


def test_bench_names_a_field_the_request_does_not_have_in_one_line() -> None:
    done = reviewrank(
        "bench", "--call", "reviewrank.v1.RankingService/Rank", "-d", '{"candidatez": []}'
    )

    assert 2 == done.returncode
    assert "candidatez" in done.stderr
    assert 1 == len(done.stderr.strip().splitlines())
