"""The servers a benchmark measures: ``reviewrank serve`` subprocesses pinned to the
server's CPUs (with their CPU ticks read from /proc), the bare grpc.aio echo server, and
what /proc/net/tcp says about their sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reviewrank.service import CLI_MODULE
from reviewrank.service.app.settings import DATA_DIR
from reviewrank.service.tools.runs import SERVER_CPUS

_TICKS = os.sysconf("SC_CLK_TCK")


LISTENING, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def sockets_on(port: int, state: str) -> int:
    """This machine's TCP sockets whose local port is ``port``, in ``state`` (Linux)."""
    count = 0
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            count += int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state
    return count


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A ``reviewrank serve`` subprocess on a free port, pinned to SERVER_CPUS."""

    def __init__(
        self,
        database: Path,
        env: dict[str, str] | None = None,
        *args: str,
        pin: bool = True,
        python: str | None = None,
    ) -> None:
        """``python``: the interpreter to serve with (another checkout's, for before and
        after figures); this one's by default."""
        self.port = free_port()
        command = [
            python or sys.executable, "-m", CLI_MODULE, "serve",
            "--address", f"127.0.0.1:{self.port}",
            "--database", str(database), "--weights", str(DATA_DIR / "weights.toml"),
            "--log-format", "json", "--log-level", "warning", *args,
        ]  # fmt: skip
        environment = {**os.environ, "REVIEWRANK_BENCH_ECHO": "1", **(env or {})}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            command,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if SERVER_CPUS and pin:  # before it has imported anything heavy
            os.sched_setaffinity(self.proc.pid, SERVER_CPUS)
        self.ready_seconds = self._wait_serving()

    def _wait_serving(self, timeout: float = 120.0) -> float:
        """Seconds from the process start until the health service answers SERVING."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        # Reconnect at once: the default backoff (a second, then more) would be measured
        # as start-up time.
        fast = [
            ("grpc.initial_reconnect_backoff_ms", 20),
            ("grpc.min_reconnect_backoff_ms", 20),
            ("grpc.max_reconnect_backoff_ms", 50),
        ]
        with grpc.insecure_channel(self.target, options=fast) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.perf_counter() - self.started < timeout:
                if self.proc.poll() is not None:
                    break
                try:
                    response = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.perf_counter() - self.started
                except grpc.RpcError:
                    time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError(
            f"server did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
        )

    def wait_listening(self, processes: int, timeout: float = 60.0) -> None:
        """Until ``processes`` sockets listen on the port (each of ``--workers``): health
        answers as soon as one does, and a connection made before the others listen
        stays with it."""
        deadline = time.monotonic() + timeout
        while sockets_on(self.port, LISTENING) < processes:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"fewer than {processes} processes listen on {self.port}")
            time.sleep(0.05)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time of the server process and its children (the workers, with --workers)."""
        total = 0.0
        pids = [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        return total

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class AioEcho(Server):
    """BenchService.Echo alone on a bare grpc.aio server (service/api/echo.py)."""

    def __init__(self) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "reviewrank.service.api.echo", self.target]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if SERVER_CPUS:
            os.sched_setaffinity(self.proc.pid, SERVER_CPUS)
        import grpc

        with grpc.insecure_channel(self.target) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        self.ready_seconds = time.perf_counter() - self.started


@contextmanager
def serving(
    database: Path, env: dict[str, str] | None = None, pin: bool = True, python: str | None = None
) -> Iterator[Server]:
    server = Server(database, env, pin=pin, python=python)
    try:
        yield server
    finally:
        server.stop()
