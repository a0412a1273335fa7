"""``reviewrank serve`` refuses to start, with a clear message and exit status 1, when it
cannot listen or cannot store feedback; and how its process starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reviewrank.service import CLI_MODULE
from reviewrank.service.cli.dataset import DATA_DIR
from reviewrank.service.storage.sqlite.store import SQLiteStore
from tests.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            CLI_MODULE,
            "serve",
            "--log-format",
            "json",
            "--weights",
            str(DATA_DIR / "weights.toml"),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def last_line(stderr: str) -> str:
    """The message of the last line, a JSON record (the servers here log JSON)."""
    record = json.loads(stderr.strip().splitlines()[-1])
    assert "error" == record["level"]
    return str(record["event"])


def test_a_second_server_on_the_same_port_exits_1_naming_the_address(tmp_path: Path) -> None:
    first = ServerProcess(
        "--database", str(tmp_path / "one.db"), "--weights", str(DATA_DIR / "weights.toml")
    )
    try:
        address = f"127.0.0.1:{first.port}"

        second = serve("--address", address, "--database", str(tmp_path / "two.db"))

        assert 1 == second.returncode
        assert last_line(second.stderr).startswith(f"reviewrank: cannot listen on {address}")
        assert "Traceback" not in second.stderr
        assert first.proc.poll() is None  # the first one is unharmed
    finally:
        first.stop()


def test_a_database_that_cannot_be_created_exits_1_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    database = blocker / "reviewrank.db"

    result = serve("--address", "127.0.0.1:0", "--database", str(database))

    assert 1 == result.returncode
    assert last_line(result.stderr).startswith(f"reviewrank: cannot open the database {database}")
    assert "Traceback" not in result.stderr


def test_a_database_that_cannot_be_written_exits_1_naming_it(tmp_path: Path) -> None:
    database = tmp_path / "reviewrank.db"
    SQLiteStore(database).close()
    immutable = subprocess.run(["chattr", "+i", str(database)], capture_output=True, check=False)
    if immutable.returncode:
        pytest.skip("the immutable attribute is not supported here (needs root and ext4/xfs)")
    try:
        result = serve("--address", "127.0.0.1:0", "--database", str(database))
    finally:
        subprocess.run(["chattr", "-i", str(database)], check=True)

    assert 1 == result.returncode
    line = last_line(result.stderr)
    assert line.startswith("reviewrank: "), line
    assert str(database) in line
    assert "cannot be written" in line or "cannot open" in line
    assert "Traceback" not in result.stderr


def test_the_server_starts_without_importing_scipy_stats() -> None:
    """scipy.stats takes about half a second to import; the server needs only two of its
    quantile functions, which scipy.special has."""
    program = (
        "import sys, reviewrank.service.compose, reviewrank.service.api.server;"
        " print('scipy.stats' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )

    assert "False" == completed.stdout.strip()


def _nice_values(pid: int) -> list[int]:
    """The nice value of each of the process's threads (field 19 of /proc/.../stat)."""
    values = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        values.append(int(stat.rsplit(")", 1)[1].split()[16]))
    return values


@pytest.mark.parametrize(("setting", "lowered"), [(None, [10]), ("3", [3]), ("0", [])])
def test_the_writer_thread_alone_runs_below_the_servers_priority(
    tmp_path: Path, setting: str | None, lowered: list[int]
) -> None:
    env = {"REVIEWRANK_INTEGRITY_SECONDS": "0"}  # (no vote weigher: its thread is at 19)
    if setting is not None:
        env["REVIEWRANK_WRITER_NICE"] = setting
    server = ServerProcess("--database", str(tmp_path / "db.sqlite"), env=env)
    try:
        values = _nice_values(server.proc.pid)
    finally:
        server.stop()

    assert lowered == [v for v in values if v != 0]
    assert len(values) > 5  # the other threads (gRPC's, the feed's...) were read too


def test_the_vote_weigher_runs_at_the_lowest_priority(tmp_path: Path) -> None:
    server = ServerProcess("--database", str(tmp_path / "db.sqlite"))
    try:
        deadline = time.monotonic() + 10.0  # (the thread lowers itself as it starts)
        while 19 not in (values := _nice_values(server.proc.pid)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        server.stop()

    assert [10, 19] == sorted(v for v in values if v != 0)
    assert len(values) > 5  # the other threads (gRPC's, the feed's...) were read too
