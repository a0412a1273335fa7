"""A ``reviewrank serve`` subprocess for the abuse benchmark: loopback port 0, its log
drained by a thread, stopped with SIGTERM and, past its grace, SIGKILL."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from reviewrank.service import CLI_MODULE
from reviewrank.service.app.settings import DATA_DIR
from reviewrank.service.cli.scratch import serving_port

GRACE_SECONDS = 5.0  # the servers' shutdown grace
STOP_MARGIN = 5.0  # SIGTERM, then this long past the grace before SIGKILL
START_SECONDS = 60.0


class ServedProcess:
    """A ``reviewrank serve`` subprocess on a loopback port 0, its log drained by a thread
    (a full stderr pipe would stall the server, and attacks make it log a lot)."""

    def __init__(
        self,
        database: Path,
        admin_token: str,
        grace_seconds: float = GRACE_SECONDS,
        cpus: set[int] | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        """``settings``: ``REVIEWRANK_*`` variables for this server."""
        command = [
            sys.executable, "-m", CLI_MODULE, "serve", "--address", "127.0.0.1:0",
            "--database", str(database), "--weights", str(DATA_DIR / "weights.toml"),
            "--log-format", "json", "--log-level", "info", "--log-sample-rate", "0",
            "--metrics-address", "127.0.0.1:0",
        ]  # fmt: skip
        env = {
            **os.environ,
            "REVIEWRANK_ADMIN_TOKEN": admin_token,
            "REVIEWRANK_GRACE_SECONDS": str(grace_seconds),
            **(settings or {}),
        }
        self.grace_seconds = grace_seconds
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if cpus:
            os.sched_setaffinity(self.proc.pid, cpus)
        self.log: collections.deque[str] = collections.deque(maxlen=200)
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(START_SECONDS) or not self.port:
            self.kill()
            raise RuntimeError("server did not start: " + "\n".join(self.log))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())
            found = None if self.port else serving_port(line)
            if found is not None:
                self.port = found
                self._ready.set()
        self._ready.set()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def terminate(self) -> tuple[float, bool]:
        """SIGTERM, then SIGKILL if still running after the grace and a margin: (seconds
        until it ended, whether it needed SIGKILL)."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(self.grace_seconds + STOP_MARGIN)
            return time.monotonic() - started, False
        except subprocess.TimeoutExpired:
            self.kill()
            return time.monotonic() - started, True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
