"""Scratch servers: ``serve --scratch`` serves a throwaway copy of its SQLite database, so
that benchmarks and trials that write (``reviewrank bench``, the ghz configs through
``make bench-server``) leave the database named as it was. The copy is taken with
SQLite's online backup (consistent while a server writes the original) and removed when
the server stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from reviewrank.service import CLI_MODULE
from reviewrank.service.app.settings import Settings

START_SECONDS = 60.0


def scratch_settings(settings: Settings) -> tuple[Settings, Path]:
    """Settings serving a copy of the SQLite database in a new temporary folder (an empty
    database if there is none yet), and that folder; ValueError for PostgreSQL."""
    storage = settings.storage
    if storage.path is None:
        raise ValueError(
            "--scratch copies a SQLite database; for PostgreSQL, serve a database made for it"
        )
    folder = Path(tempfile.mkdtemp(prefix="reviewrank-scratch-"))
    copy = folder / "scratch.db"
    if storage.path.exists():
        try:
            with (
                contextlib.closing(
                    sqlite3.connect(f"file:{storage.path}?mode=ro", uri=True)
                ) as source,
                contextlib.closing(sqlite3.connect(copy)) as target,
            ):
                source.backup(target)
        except sqlite3.Error as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise ValueError(f"cannot copy {storage.path}: {exc}") from None
    return replace(settings, database=copy, database_url=""), folder


def serving_port(line: str) -> int | None:
    """The port of a ``reviewrank serve`` JSON log line saying it serves; None otherwise."""
    if '"serving"' not in line:
        return None
    try:
        return int(json.loads(line)["port"])
    except (ValueError, KeyError):
        return None


@contextlib.contextmanager
def scratch_server(database: Path | None = None, temp_root: Path | None = None) -> Iterator[str]:
    """A ``reviewrank serve --scratch`` subprocess on a free loopback port (the configured
    database, or ``database``), stopped on leaving; yields its HOST:PORT. ``temp_root``:
    where its copy goes (default: the system's temporary folder)."""
    command = [
        sys.executable, "-m", CLI_MODULE, "serve", "--scratch",
        "--address", "127.0.0.1:0", "--log-format", "json", "--log-level", "info",
    ]  # fmt: skip
    if database is not None:
        command += ["--database", str(database)]
    env = {**os.environ, "REVIEWRANK_LOG_SAMPLE_RATE": "0"}
    if temp_root is not None:
        env["TMPDIR"] = str(temp_root)
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    port: list[int] = []
    ready = threading.Event()
    last: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:  # read to the end: a full pipe would stall the server
            found = None if port else serving_port(line)
            if found is not None:
                port.append(found)
                ready.set()
            if not port:
                last[:] = [line.strip()]
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not ready.wait(START_SECONDS) or not port:
            detail = last[0] if last else "no output"
            raise RuntimeError(f"the scratch server did not start: {detail}")
        yield f"127.0.0.1:{port[0]}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
