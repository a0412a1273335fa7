"""Runs ``reviewrank serve`` as a real subprocess and finds the port it bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from reviewrank.service import CLI_MODULE


class ServerProcess:
    def __init__(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        command = [
            sys.executable,
            "-m",
            CLI_MODULE,
            "serve",
            "--address",
            "127.0.0.1:0",
            "--log-format",
            "json",
            *args,
        ]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[dict[str, object]] = []
        self._port: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(30) or self._port is None:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {self.lines}")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"event": "raw", "text": line.rstrip()}
            self.lines.append(record)
            if record.get("event") == "serving":
                self._port = int(record["port"])  # type: ignore[call-overload]
                self._ready.set()
        self._ready.set()

    @property
    def port(self) -> int:
        assert self._port is not None
        return self._port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def events(self) -> list[str]:
        return [str(r.get("event")) for r in self.lines]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        time.sleep(0)
