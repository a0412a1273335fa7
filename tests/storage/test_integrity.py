"""Integrity at start-up, against the real server (``reviewrank serve`` as a subprocess, on
real SQLite files): a damaged or edited catalogue snapshot means a full read, said in the
log; a database with overwritten pages, or whose WAL was damaged after a crash (committed
transactions about to be dropped), is served read-only: every write is refused with
FAILED_PRECONDITION naming the problem and FeedbackService health is NOT_SERVING."""

from __future__ import annotations

import random
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reviewrank.service.api.server import FEEDBACK_SERVICE
from reviewrank.service.app import snapshot
from reviewrank.service.cli.dataset import DATA_DIR
from reviewrank.service.storage.sqlite import wal_check
from reviewrank.v1 import feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.cli.test_start_up import last_line, serve
from tests.helpers import batch, next_id, rating, sqlite_rows
from tests.process import ServerProcess

PRODUCTS = [f"p{i}" for i in range(20)]
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


class Server:
    """One ``reviewrank serve`` on a database, with its log and stubs."""

    def __init__(self, database: Path) -> None:
        self.process = ServerProcess(
            "--database",
            str(database),
            "--weights",
            str(DATA_DIR / "weights.toml"),
            env={"REVIEWRANK_SNAPSHOT_MIN_PRODUCTS": "1"},
        )
        self.channel = grpc.insecure_channel(self.process.target)
        self.feedback = feedback_pb2_grpc.FeedbackServiceStub(self.channel)
        self.ranking = ranking_pb2_grpc.RankingServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def send(self, batches: int, size: int = 100) -> set[str]:
        """Acknowledged event ids of ``batches`` batches (one transaction each)."""
        acknowledged: set[str] = set()
        for _ in range(batches):
            request = batch(
                *(rating(random.choice(PRODUCTS), next_id("u"), 1 + i % 5) for i in range(size))
            )
            self.feedback.SubmitBatch(request, timeout=30)
            acknowledged |= {e.rating.event_id for e in request.events}
        return acknowledged

    def stats(self) -> dict[str, tuple[int, ...]]:
        response = self.ranking.GetProductStats(
            ranking_pb2.GetProductStatsRequest(product_ids=PRODUCTS), timeout=10
        )
        return {s.product_id: (s.rating_count, *s.stars_histogram) for s in response.stats}

    def feedback_health(self) -> int:
        request = health_pb2.HealthCheckRequest(service=FEEDBACK_SERVICE)
        return int(self.health.Check(request, timeout=5).status)

    def log(self, event: str) -> list[dict[str, object]]:
        return [line for line in self.process.lines if line.get("event") == event]

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): the snapshot is written."""
        self.channel.close()
        self.process.proc.send_signal(signal.SIGTERM)
        assert 0 == self.process.wait()

    def kill(self) -> None:
        self.channel.close()
        self.process.stop()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.channel.close()
        server.process.stop()


def start(servers: list[Server], database: Path) -> Server:
    server = Server(database)
    servers.append(server)
    return server


def stored_stats(database: Path) -> dict[str, tuple[int, ...]]:
    rows = sqlite_rows(
        database, "SELECT product_id, rating_count, s1, s2, s3, s4, s5 FROM products"
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def assert_writes_refused(server: Server, naming: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        server.send(1)
    assert grpc.StatusCode.FAILED_PRECONDITION == refused.value.code()
    assert naming in (refused.value.details() or "")
    assert NOT_SERVING == server.feedback_health()


# -- the catalogue snapshot -------------------------------------------------------------------

FULL_READ = "catalogue snapshot not used: reading every product from the database"


def stopped_cleanly(servers: list[Server], tmp_path: Path, batches: int = 5) -> Path:
    """A database written to by a server then stopped (so with a snapshot)."""
    database = tmp_path / "reviewrank.db"
    first = start(servers, database)
    first.send(batches)
    first.stop()
    return database


def test_a_snapshot_from_a_clean_shutdown_is_used(tmp_path: Path, servers: list[Server]) -> None:
    database = stopped_cleanly(servers, tmp_path)

    again = start(servers, database)

    assert 1 == len(again.log("catalogue loaded from snapshot"))
    assert stored_stats(database) == again.stats()


def test_a_truncated_snapshot_means_a_full_read_said_in_the_log(
    tmp_path: Path, servers: list[Server]
) -> None:
    database = stopped_cleanly(servers, tmp_path)
    path = snapshot.path_for(database)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    again = start(servers, database)

    [warning] = again.log(FULL_READ)
    assert "warning" == warning["level"]
    assert stored_stats(database) == again.stats()


def test_a_snapshot_edited_into_another_valid_file_is_not_served(
    tmp_path: Path, servers: list[Server]
) -> None:
    database = stopped_cleanly(servers, tmp_path)
    path = snapshot.path_for(database)
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["rating_count"] = arrays["rating_count"] + 1000  # a consistent-looking edit
    arrays["histogram"][:, 4] += 1000
    arrays["star_sum"] = arrays["star_sum"] + 5000
    with open(path, "wb") as out:
        np.savez(out, **arrays)  # type: ignore[arg-type]

    again = start(servers, database)

    [warning] = again.log(FULL_READ)
    assert "digest" in str(warning["problem"])
    assert stored_stats(database) == again.stats()


# -- a corrupt database -----------------------------------------------------------------------


def overwrite_pages(database: Path, table: str, count: int) -> None:
    """Overwrites ``count`` of the table's pages with random bytes (the file closed)."""
    with sqlite3.connect(database) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [
            row[0] for row in conn.execute("SELECT pageno FROM dbstat WHERE name = ?", (table,))
        ]
    conn.close()
    rng = random.Random(17)
    with open(database, "r+b") as file:
        for page in rng.sample(pages, count):
            file.seek((page - 1) * page_size)
            file.write(rng.randbytes(page_size))


def test_a_database_with_overwritten_pages_refuses_every_write(
    tmp_path: Path, servers: list[Server]
) -> None:
    database = stopped_cleanly(servers, tmp_path, 40)
    overwrite_pages(database, "events", 4)
    events_before = sqlite_rows(database, "SELECT value FROM meta WHERE key = 'seq'")

    server = start(servers, database)

    assert_writes_refused(server, "the database is corrupt")
    assert stored_stats(database) == server.stats()  # reads go on
    [refusal] = server.log("writes refused: the database is damaged; serving reads only")
    assert "error" == refusal["level"]
    assert events_before == sqlite_rows(database, "SELECT value FROM meta WHERE key = 'seq'")


def _frames(wal: Path) -> tuple[int, int]:
    """(page size, whole frames) of a WAL file."""
    data = wal.read_bytes()
    page_size = int.from_bytes(data[8:12], "big")
    return page_size, (len(data) - 32) // (24 + page_size)


def test_a_byte_flipped_in_the_wal_after_a_crash_is_found_and_writes_are_refused(
    tmp_path: Path, servers: list[Server]
) -> None:
    database = tmp_path / "reviewrank.db"
    first = start(servers, database)
    acknowledged = first.send(60)
    first.kill()  # SIGKILL: the WAL keeps the commits
    wal = database.with_name(database.name + "-wal")
    page_size, frames = _frames(wal)
    data = bytearray(wal.read_bytes())
    data[32 + (frames // 2) * (24 + page_size) + 24 + page_size // 2] ^= 0x10
    wal.write_bytes(data)

    server = start(servers, database)

    assert_writes_refused(server, "WAL was found damaged")
    [found] = server.log("the WAL is damaged: committed transactions in it are lost")
    kept = Path(str(found["kept_copy"]))
    assert bytes(data) == kept.read_bytes()
    stored = {row[0] for row in sqlite_rows(database, "SELECT event_id FROM events")}
    assert acknowledged - stored, "the damage should have cost acknowledged events"
    server.stop()

    # Still refused at the next start, until an operator moves the copy away.
    again = start(servers, database)
    assert_writes_refused(again, str(kept))
    again.stop()
    kept.rename(tmp_path / "inspected-wal")
    after = start(servers, database)
    after.send(1)
    assert SERVING == after.feedback_health()


def test_a_wal_cut_short_by_a_crash_is_normal(tmp_path: Path, servers: list[Server]) -> None:
    database = tmp_path / "reviewrank.db"
    first = start(servers, database)
    acknowledged = first.send(30)
    first.kill()
    wal = database.with_name(database.name + "-wal")
    page_size, _ = _frames(wal)
    last = wal.read_bytes()[-(24 + page_size) :]
    # A transaction cut short: a frame of the current WAL (its salts), not a commit,
    # whose page was not all written; then half a frame.
    torn = last[:4] + bytes(4) + last[8:24] + last[24 : 24 + page_size // 2]
    torn += random.randbytes(page_size // 2) + last[: (24 + page_size) // 2]
    with open(wal, "ab") as file:
        file.write(torn)

    server = start(servers, database)

    server.send(1)
    assert SERVING == server.feedback_health()
    assert [] == server.log("the WAL is damaged: committed transactions in it are lost")
    assert 1 == len(
        server.log("the WAL ends in a transaction cut short (normal after a crash): dropped")
    )
    stored = {row[0] for row in sqlite_rows(database, "SELECT event_id FROM events")}
    assert acknowledged <= stored


# -- the WAL check against SQLite's own replay --------------------------------------------------


def _wal_database(path: Path, transactions: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, y BLOB)")
    for _ in range(transactions):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t (y) VALUES (?)", [(random.randbytes(100),)] * 20)
        conn.execute("COMMIT")
    return conn


def _copy(source: Path, target: Path, wal: bytes) -> None:
    target.write_bytes(source.read_bytes())
    target.with_name(target.name + "-wal").write_bytes(wal)


def test_the_wal_check_agrees_with_what_sqlite_replays(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    conn = _wal_database(source, 300)  # kept open: the WAL stays
    wal = (tmp_path / "source.db-wal").read_bytes()
    copy = tmp_path / "copy.db"
    _copy(source, copy, wal)
    intact = wal_check.inspect(copy.with_name("copy.db-wal"))
    assert intact is not None
    assert (intact.frames, 0, 0) == (intact.replayed, intact.first_bad, intact.lost_transactions)

    page_size, frames = _frames(copy.with_name("copy.db-wal"))
    damaged = bytearray(wal)
    damaged[32 + (frames // 3) * (24 + page_size) + 100] ^= 0x01
    _copy(source, copy, bytes(damaged))
    report = wal_check.inspect(copy.with_name("copy.db-wal"))
    assert report is not None and report.damaged
    with sqlite3.connect(copy) as reader:
        replayed_rows = reader.execute("SELECT count(*) FROM t").fetchone()[0]
    reader.close()
    # SQLite keeps the transactions before the damaged one; the damaged one and the
    # report's lost transactions after it are dropped.
    assert 300 * 20 == replayed_rows + 20 * (1 + report.lost_transactions)
    conn.close()


def test_the_wal_check_counts_a_damaged_header_as_losing_everything(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    conn = _wal_database(source, 50)
    wal = bytearray((tmp_path / "source.db-wal").read_bytes())
    wal[20] ^= 0x01  # salt-2 of the header
    target = tmp_path / "damaged-wal"
    target.write_bytes(wal)
    report = wal_check.inspect(target)
    assert report is not None
    # The table's creation and the 50 inserts: every transaction in the WAL.
    assert (-1, 0, 51) == (report.first_bad, report.replayed, report.lost_transactions)
    conn.close()


def test_a_database_whose_products_cannot_be_read_exits_1_naming_it(
    tmp_path: Path, servers: list[Server]
) -> None:
    database = stopped_cleanly(servers, tmp_path, 5)
    snapshot.path_for(database).unlink()
    overwrite_pages(database, "products", 1)  # a small table: its only page

    result = serve("--address", "127.0.0.1:0", "--database", str(database))

    assert 1 == result.returncode
    line = last_line(result.stderr)
    assert str(database) in line
    assert "malformed" in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated: no zip directory
        lambda data: data[:100],
        lambda data: b"PK\x03\x04" + bytes(200),
        lambda data: data.replace(b"histogram", b"histogrem"),  # an array missing
    ],
)
def test_a_damaged_snapshot_file_is_refused_with_a_reason(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "s.npz"
    ids = [f"p{i}" for i in range(100)]
    columns = snapshot.CatalogueColumns(
        seq=7, idx=np.arange(1, 101), product_ids=ids,
        category_code=np.zeros(100, dtype=np.int32), category_names=["c"],
        rating_count=np.ones(100, dtype=np.int64), star_sum=np.full(100, 5),
        histogram=np.tile([0, 0, 0, 0, 1], (100, 1)), likes=np.zeros(100, dtype=np.int64),
        dislikes=np.zeros(100, dtype=np.int64), shares=np.zeros(100, dtype=np.int64),
        listed_at_us=np.zeros(100, dtype=np.int64),
        comments=np.zeros(100, dtype=np.int64), sentiment_sum=np.zeros(100, dtype=np.int64),
        sentiment_squares=np.zeros(100, dtype=np.int64),
            polls_shown=np.zeros(100, dtype=np.int64), polls_won=np.zeros(100, dtype=np.int64),
            row_seq=np.arange(1, 101),
        active=np.ones(100, dtype=bool),
    )  # fmt: skip
    snapshot.save(columns, path)
    path.write_bytes(damage(path.read_bytes()))

    with pytest.raises(snapshot.SnapshotDamaged):
        snapshot.load(path)
