"""Real storage faults on a running server: a full disk (a small tmpfs filled up), files
made unwritable (the immutable attribute, which stops root too), and a write lock held
by another process. Each time: writes fail with UNAVAILABLE and nothing of them is
stored, FeedbackService health turns NOT_SERVING while rankings keep being served,
nothing acknowledged is lost, and everything recovers once the fault is gone."""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from reviewrank.service.api.server import FEEDBACK_SERVICE
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import (
    batch,
    health,
    like,
    rating,
    sqlite_rows,
    stored_event_ids,
    wait_for_health,
    write_lock_held_elsewhere,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
RANKING_SERVICE = "reviewrank.v1.RankingService"


def integrity(database: Path) -> str:
    return str(sqlite_rows(database, "PRAGMA integrity_check")[0][0])


class Traffic:
    """Sends batches and remembers which were acknowledged and which failed."""

    def __init__(self, client: Client, size: int = 200, pad: int = 100) -> None:
        self.client = client
        self.size = size
        self.pad = pad
        self.acknowledged: set[str] = set()
        self.failed: list[feedback_pb2.SubmitBatchRequest] = []
        self.codes: list[grpc.StatusCode] = []
        self.sent = 0

    def send(self) -> grpc.StatusCode:
        self.sent += 1
        n = self.sent
        request = batch(
            *(
                rating(f"p{i % 20}", f"user-{n}-{i}-" + "x" * self.pad, 1 + i % 5)
                if i % 3
                else like(f"p{i % 20}", f"user-{n}-{i}-" + "y" * self.pad)
                for i in range(self.size)
            )
        )
        try:
            self.client.feedback.SubmitBatch(request, timeout=30)
        except grpc.RpcError as error:
            self.codes.append(error.code())
            self.failed.append(request)
            return error.code()  # type: ignore[no-any-return]
        self.codes.append(grpc.StatusCode.OK)
        self.acknowledged |= {e.rating.event_id or e.like.event_id for e in request.events}
        return grpc.StatusCode.OK

    def failed_ids(self) -> set[str]:
        return {e.rating.event_id or e.like.event_id for r in self.failed for e in r.events}

    def resend_failed(self) -> None:
        for request in self.failed:
            response = self.client.feedback.SubmitBatch(request, timeout=30)
            # Nothing of a failed batch had been stored: all of it is new now.
            assert {feedback_pb2.APPLIED} == {r.outcome for r in response.results}
            self.acknowledged |= {e.rating.event_id or e.like.event_id for e in request.events}
        self.failed = []


def assert_degraded_but_reading(client: Client) -> None:
    assert NOT_SERVING == health(client, FEEDBACK_SERVICE)
    assert SERVING == health(client, RANKING_SERVICE)
    assert SERVING == health(client, "")
    response = client.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=["p1"]), timeout=5
    )
    assert response.stats[0].known


def assert_nothing_lost(client: Client, traffic: Traffic) -> None:
    database = client.settings.database
    assert traffic.acknowledged <= stored_event_ids(database)
    assert [] == client.server.app.store.aggregate_mismatches()
    assert "ok" == integrity(database)


# -- a full disk ----------------------------------------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs: a real filesystem that runs out of space (needs root, CAP_SYS_ADMIN)."""
    mount_point = tmp_path / "small-fs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(path: Path) -> Path:
    filler = path / "filler"
    with open(filler, "wb") as f:
        block = b"\0" * 65536
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with contextlib.suppress(OSError), open(filler, "ab") as f:  # the last few bytes too
        while True:
            f.write(b"\0")
            f.flush()
    return filler


def test_a_full_disk_fails_writes_cleanly_and_they_recover_when_space_returns(
    small_filesystem: Path, start_server: Callable[..., Client]
) -> None:
    client = start_server(
        database=small_filesystem / "reviewrank.db",
        storage_probe_seconds=0.05,
        storage_min_free_bytes=512 * 1024,
    )
    traffic = Traffic(client)
    for _ in range(3):
        assert grpc.StatusCode.OK == traffic.send()
    filler = fill(small_filesystem)

    for _ in range(5):
        traffic.send()
    assert grpc.StatusCode.UNAVAILABLE in traffic.codes
    assert set(traffic.codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    assert_degraded_but_reading(client)
    time.sleep(0.5)  # probes keep failing while the disk stays full
    assert_degraded_but_reading(client)
    assert not traffic.failed_ids() & stored_event_ids(client.settings.database)

    filler.unlink()
    wait_for_health(client, FEEDBACK_SERVICE, SERVING)
    traffic.resend_failed()
    assert grpc.StatusCode.OK == traffic.send()
    assert_nothing_lost(client, traffic)


# -- unwritable files -----------------------------------------------------------------------


def chattr(flag: str, *paths: Path) -> bool:
    result = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, check=False)
    return result.returncode == 0


@pytest.fixture
def immutable_supported(tmp_path: Path) -> Iterator[None]:
    probe = tmp_path / "chattr-probe"
    probe.write_bytes(b"x")
    if not chattr("+i", probe):
        pytest.skip("the immutable attribute is not supported here (needs root and ext4/xfs)")
    chattr("-i", probe)
    yield


def test_unwritable_database_files_fail_writes_and_recover(
    tmp_path: Path, immutable_supported: None, start_server: Callable[..., Client]
) -> None:
    client = start_server(storage_probe_seconds=0.05, storage_min_free_bytes=0)
    database = client.settings.database
    traffic = Traffic(client, size=50, pad=10)
    for _ in range(3):
        assert grpc.StatusCode.OK == traffic.send()
    # The database and its WAL (not the shared-memory index, which SQLite maps into memory).
    files = [database, database.with_name(database.name + "-wal")]
    assert chattr("+i", *files)
    try:
        assert grpc.StatusCode.UNAVAILABLE == traffic.send()
        with pytest.raises(grpc.RpcError) as info:
            existing_user = "user-1-1-" + "x" * 10
            client.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id=existing_user))
        assert grpc.StatusCode.UNAVAILABLE == info.value.code()
        assert_degraded_but_reading(client)
        time.sleep(0.3)
        assert grpc.StatusCode.UNAVAILABLE == traffic.send()
        assert_degraded_but_reading(client)
    finally:
        chattr("-i", *files)

    wait_for_health(client, FEEDBACK_SERVICE, SERVING)
    assert not traffic.failed_ids() & stored_event_ids(database)
    traffic.resend_failed()
    assert grpc.StatusCode.OK == traffic.send()
    assert_nothing_lost(client, traffic)


# -- a lock held elsewhere ------------------------------------------------------------------


def test_a_write_lock_held_by_another_process_fails_writes_until_released(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(busy_timeout_ms=200, storage_probe_seconds=0.05)
    database = client.settings.database
    traffic = Traffic(client, size=20, pad=0)
    assert grpc.StatusCode.OK == traffic.send()
    with write_lock_held_elsewhere(database):
        started = time.monotonic()
        assert grpc.StatusCode.UNAVAILABLE == traffic.send()
        assert time.monotonic() - started < 3  # the busy timeout, not a hang
        assert_degraded_but_reading(client)

    wait_for_health(client, FEEDBACK_SERVICE, SERVING)
    traffic.resend_failed()
    assert_nothing_lost(client, traffic)


# -- a broken log stream --------------------------------------------------------------------


def test_a_broken_log_stream_never_stops_writes(
    start_server: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """stderr closed (a dead log collector): the error logs of a storage fault are
    dropped, and the writer thread goes on answering."""
    import io

    client = start_server(busy_timeout_ms=100, storage_probe_seconds=0.05)
    broken = io.StringIO()
    broken.close()
    monkeypatch.setattr("sys.stderr", broken)
    holder = sqlite3.connect(str(client.settings.database), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(grpc.RpcError) as info:
            client.feedback.SubmitRating(rating("p", "u", 3), timeout=10)
        assert grpc.StatusCode.UNAVAILABLE == info.value.code()
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    wait_for_health(client, FEEDBACK_SERVICE, SERVING)
    response = client.feedback.SubmitRating(rating("p", "u", 3), timeout=10)
    assert feedback_pb2.APPLIED == response.outcome
