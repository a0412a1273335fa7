"""A database URL given as --database (or REVIEWRANK_DATABASE) is used as a URL, never as
a directory tree named after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reviewrank.service import CLI_MODULE
from reviewrank.service.app.settings import from_env
from tests.process import ServerProcess

WEIGHTS = Path(__file__).parents[2] / "data" / "weights.toml"
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/catalogue"  # port 1: nothing listens


def serve(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `reviewrank serve` in ``cwd`` until it exits (a hang detector: 60 s, where the
    old behaviour served an empty catalogue forever)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            CLI_MODULE,
            "serve",
            "--address",
            "127.0.0.1:0",
            *args,
        ],
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_unreachable_postgresql_url_as_database_fails_to_connect_and_creates_nothing(
    tmp_path: Path,
) -> None:
    done = serve(
        tmp_path, "--log-format", "json", "--database", UNREACHABLE, "--weights", str(WEIGHTS)
    )

    assert 1 == done.returncode
    assert f"reviewrank: cannot open the database {UNREACHABLE}: cannot connect" in done.stderr
    assert [] == list(tmp_path.iterdir())


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_url_of_another_scheme_as_database_is_refused_naming_it(tmp_path: Path, how: str) -> None:
    url = "mysql://nobody@127.0.0.1/catalogue"
    flag = ["--database", url] if how == "flag" else []
    env = {"REVIEWRANK_DATABASE": url} if how == "environment" else {}

    done = serve(tmp_path, *flag, env=env)

    assert 2 == done.returncode
    assert (
        f"reviewrank: database {url!r}: the database URL must start with sqlite:/// or "
        "postgresql://\n"
    ) == done.stderr
    assert [] == list(tmp_path.iterdir())


def test_a_sqlite_url_as_database_serves_that_file(tmp_path: Path) -> None:
    server = ServerProcess(
        "--database", "sqlite:///shop/rr.db", "--weights", str(WEIGHTS), cwd=tmp_path
    )
    try:
        assert (tmp_path / "shop" / "rr.db").is_file()
        assert ["shop"] == sorted(p.name for p in tmp_path.iterdir())
    finally:
        server.stop()


def test_a_url_in_the_database_variable_is_the_database_url() -> None:
    settings = from_env({"REVIEWRANK_DATABASE": UNREACHABLE})

    assert ("postgresql", UNREACHABLE) == (settings.storage.kind, settings.storage.url)


def test_a_database_flag_wins_over_a_url_in_the_variable() -> None:
    settings = from_env({"REVIEWRANK_DATABASE": UNREACHABLE}, database="/srv/rr.db")

    assert Path("/srv/rr.db") == settings.storage.path


def test_an_explicit_database_url_wins_over_a_url_as_database() -> None:
    settings = from_env({}, database=UNREACHABLE, database_url="sqlite:////srv/a.db")

    assert Path("/srv/a.db") == settings.storage.path


def test_a_url_as_database_flag_wins_over_the_url_variable_as_database_url_would() -> None:
    settings = from_env({"REVIEWRANK_DATABASE_URL": "sqlite:////srv/a.db"}, database=UNREACHABLE)

    assert UNREACHABLE == settings.storage.url
