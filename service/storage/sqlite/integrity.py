"""Start-up checks of an embedded (SQLite) database: did it lose acknowledged events, is
it corrupt? A server that finds either keeps serving what it can read and refuses every
write (FAILED_PRECONDITION), rather than acknowledging more events on a damaged store.

- Before SQLite opens the file: the WAL's frames (wal_check.py). A damaged frame
  followed by committed transactions means SQLite's recovery is about to drop them; a copy
  of the WAL is kept aside first (``<database>-wal.damaged-<time>``). While such a copy
  lies there, writes stay refused: the operator restores a backup (or exports what is
  left, ``reviewrank export``) and then moves the copy away.
- After opening: ``PRAGMA quick_check`` (B-tree structure, every page; not the indexes'
  agreement with their tables), while the catalogue loads: 0.31 s of CPU for a million
  products (71 MB), 1.3 s with 3 million events as well (544 MB), warm cache. It adds
  no wall time to a full read, and about its own time to a start from the snapshot.
  ``REVIEWRANK_INTEGRITY_CHECK=false`` skips it.

PostgreSQL keeps its own WAL and (with data checksums on) page checksums: nothing here.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import structlog

from reviewrank.service.domain.errors import StorageUnavailable
from reviewrank.service.storage.sqlite import wal_check

log = structlog.get_logger("reviewrank.integrity")

ADVICE = (
    "restore the database from a backup, or export what can be read (reviewrank export)"
    " and import it into a new database"
)
_REPORTED_PROBLEMS = 5  # lines of quick_check's answer quoted in the message


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


def kept_wal_copies(database: Path) -> list[Path]:
    return sorted(database.parent.glob(database.name + "-wal.damaged-*"))


def _open_elsewhere(database: Path) -> bool:
    """True if some process holds a lock on the database's shared-memory file (it has the
    database open: its WAL is live and was judged by whoever opened it first). Read from
    /proc/locks: opening the file to ask would drop this process's own SQLite locks on
    it (POSIX locks go with any close). Unknown (no /proc): False."""
    try:
        inode = os.stat(database.with_name(database.name + "-shm")).st_ino
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        device = next((f for f in fields if f.count(":") == 2), "")
        if device.rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def check_wal(database: Path) -> str:
    """Judges the WAL before SQLite replays it; returns the problem ("" if none). Raises
    StorageUnavailable if it is damaged and cannot be copied aside (e.g. a full disk)."""
    wal = wal_path(database)
    if wal.exists() and not _open_elsewhere(database):
        started = time.perf_counter()
        try:
            report = wal_check.inspect(wal)
        except OSError as exc:  # SQLite will say more when it opens the files
            log.warning("could not check the WAL", wal=str(wal), error=str(exc))
            report = None
        seconds = round(time.perf_counter() - started, 3)
        if report is not None and report.damaged:
            try:
                copy = wal_check.keep_copy(wal)
            except OSError as exc:  # not opened: SQLite would drop what the copy keeps
                raise StorageUnavailable(
                    f"the WAL {wal} is damaged ({report.describe()}) and could not be copied"
                    f" aside ({exc}): copy it elsewhere before starting; {ADVICE}"
                ) from exc
            log.error(
                "the WAL is damaged: committed transactions in it are lost",
                wal=str(wal),
                found=report.describe(),
                kept_copy=str(copy),
                advice=ADVICE,
                seconds=seconds,
            )
        elif report is not None and report.replayed < report.frames:
            log.warning(
                "the WAL ends in a transaction cut short (normal after a crash): dropped",
                wal=str(wal),
                frames=report.frames,
                replayed=report.replayed,
                seconds=seconds,
            )
    kept = kept_wal_copies(database)
    if not kept:
        return ""
    return (
        f"the database's WAL was found damaged (a copy is kept at {kept[-1]}): committed"
        " events were lost; writes are refused until an operator restores the database and"
        " moves that copy away"
    )


def quick_check(conn: sqlite3.Connection) -> str:
    """Runs PRAGMA quick_check; returns the problem ("" if the database is sound)."""
    started = time.perf_counter()
    try:
        rows = [str(r[0]) for r in conn.execute(f"PRAGMA quick_check({_REPORTED_PROBLEMS})")]
    except sqlite3.DatabaseError as exc:
        rows = [str(exc)]
    log.info(
        "database checked", check="quick_check", seconds=round(time.perf_counter() - started, 3)
    )
    if rows == ["ok"]:
        return ""
    lines = [line.strip("* ") for row in rows for line in row.splitlines()]
    return f"the database is corrupt (PRAGMA quick_check: {'; '.join(filter(None, lines))})"


class QuickCheck:
    """PRAGMA quick_check on a read-only connection of its own, in a thread: SQLite runs it
    without holding the GIL, so it overlaps the catalogue's load (mostly Python) on a
    second core. ``result()`` waits for it."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._found = ""
        self._thread = threading.Thread(target=self._run, name="reviewrank-quick-check")
        self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(f"file:{self._database}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            self._found = f"the database cannot be checked: {exc}"
            return
        try:
            self._found = quick_check(conn)
        finally:
            conn.close()

    def result(self) -> str:
        self._thread.join()
        return self._found


def refuse_writes_log(database: str, problem: str) -> None:
    log.error(
        "writes refused: the database is damaged; serving reads only",
        database=database,
        problem=problem,
        advice=ADVICE,
    )
