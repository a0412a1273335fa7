"""``reviewrank serve --workers N``: N server processes sharing one port and one database.

Python runs one thread of Python at a time per process, so one process uses about one
core. The supervisor reserves the port (a socket bound with SO_REUSEPORT that never
listens, so that no other program takes the port), creates or upgrades the database
schema, then starts N ``reviewrank serve`` worker processes that bind the same port
with SO_REUSEPORT: the kernel spreads connections across them. All write to the same
database, SQLite or PostgreSQL (one transaction at a time, in sequence-number order)
and follow each other's writes through the change feed (service/app/feed.py). The
supervisor forwards SIGTERM, SIGINT and SIGHUP to the workers, restarts a worker that
dies, and exits when they have all stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from types import FrameType

import structlog

from reviewrank.service import CLI_MODULE
from reviewrank.service.app.settings import Settings, to_env

log = structlog.get_logger("reviewrank.workers")

_RESTART_DELAY = 1.0


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def reserve_port(address: str) -> tuple[socket.socket, int]:
    """A bound, non-listening SO_REUSEPORT socket on the address; its port."""
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reserved = socket.socket(family, socket.SOCK_STREAM)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        reserved.bind((host, port))
    except OSError as exc:
        reserved.close()
        from reviewrank.service.domain.errors import AddressInUse

        raise AddressInUse(f"cannot listen on {address}: {exc.strerror}") from None
    return reserved, int(reserved.getsockname()[1])


def prepare_database(settings: Settings) -> None:
    """Creates or upgrades the schema once, before any worker opens the database: an
    upgrade that copies the event log (m004) can take longer than the others would wait
    for the write lock. A database that cannot be written stops the start here, once,
    rather than in every worker again and again. Its WAL is judged here, before any
    worker opens it (service/storage/sqlite/integrity.py); each worker runs quick_check itself."""
    from reviewrank.service.storage.factory import open_checked_store

    open_checked_store(settings.with_overrides(integrity_check=False))[0].close()


def supervise(settings: Settings) -> int:
    reserved, port = reserve_port(settings.address)
    try:
        prepare_database(settings)
    except BaseException:
        reserved.close()
        raise
    host, _ = split_address(settings.address)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    stopping = threading.Event()
    lock = threading.Lock()
    children: dict[int, subprocess.Popen[bytes]] = {}

    def start(worker: int) -> None:
        worker_settings = replace(
            settings, address=address, workers=1, reuse_port=True, worker_id=worker
        )
        env = {**os.environ, **to_env(worker_settings)}
        command = [sys.executable, "-m", CLI_MODULE, "serve"]
        children[worker] = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping.set()
        with lock:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    with lock:
        for worker in range(1, settings.workers + 1):
            start(worker)
    log.info(
        "workers started",
        address=address,
        port=port,
        workers=settings.workers,
        pids=[c.pid for c in children.values()],
    )
    try:
        while True:
            time.sleep(0.2)
            with lock:
                finished = {w: c.poll() for w, c in children.items() if c.poll() is not None}
                if stopping.is_set():
                    if len(finished) == len(children):
                        break
                    continue
                for worker, code in finished.items():
                    log.error("worker exited; restarting it", worker=worker, code=code)
                    time.sleep(_RESTART_DELAY)
                    start(worker)
    finally:
        reserved.close()
    codes = [c.returncode for c in children.values()]
    log.info("server stopped", workers=len(codes), exit_codes=codes)
    return max((abs(c) for c in codes), default=0)
