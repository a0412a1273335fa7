"""A throwaway PostgreSQL cluster for the tests: initdb into a temporary directory, run
`postgres` on a free loopback port, remove everything again on stop().

PostgreSQL refuses to run as root; when the tests run as root, initdb and the server run
as the `postgres` system user (the temporary directory is then owned by that user).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import psycopg
from psycopg import sql

BINDIR_ENV = "REVIEWRANK_TEST_PG_BINDIR"
INSTALL_HINT = (
    "Install the PostgreSQL server (Debian/Ubuntu: `sudo apt-get install postgresql`; "
    "`make test` runs .ci/install-postgres, which does that), or point "
    f"{BINDIR_ENV} at the directory holding initdb and postgres."
)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
PORT_ATTEMPTS = 5
# The server's messages when its port is taken (the server runs with LC_ALL=C).
PORT_TAKEN = re.compile(r"could not bind|could not create any TCP/IP sockets|already in use")

# Settings suited to tests. fsync stays on: the tests check durability semantics.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "fsync": "on",
    "log_min_messages": "warning",
    "log_destination": "stderr",
    "logging_collector": "off",
}


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries (initdb, postgres) are not installed."""


class PostgresStartError(RuntimeError):
    """initdb or the server failed; the message ends with the tail of the log."""


def _version_key(path: str) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin; non-numeric versions sort first."""
    version = Path(path).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (-1,)


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres"))


def find_bindir() -> Path:
    """The directory of initdb and postgres: $REVIEWRANK_TEST_PG_BINDIR, else `pg_config
    --bindir`, else the newest /usr/lib/postgresql/*/bin, else initdb's directory on PATH."""
    looked: list[str] = []
    override = os.environ.get(BINDIR_ENV)
    if override:
        if _has_server(Path(override)):
            return Path(override)
        raise PostgresUnavailable(
            f"{BINDIR_ENV}={override} holds no executable initdb and postgres. {INSTALL_HINT}"
        )
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_server(Path(out)):
            return Path(out)
        looked.append(f"`{pg_config} --bindir` ({out or 'failed'})")
    else:
        looked.append("pg_config (not on PATH)")
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key)[::-1]:
        if _has_server(Path(candidate)):
            return Path(candidate)
    looked.append("/usr/lib/postgresql/*/bin")
    initdb = shutil.which("initdb")
    if initdb is not None and _has_server(Path(initdb).resolve().parent):
        return Path(initdb).resolve().parent
    looked.append("initdb on PATH")
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found; looked at "
        f"{', '.join(looked)}. {INSTALL_HINT}"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresCluster:
    """One PostgreSQL cluster in a temporary directory; trust authentication, superuser
    `postgres`, reachable at url() on 127.0.0.1:port.

    with PostgresCluster() as cluster:
        url = cluster.create_database()
    """

    _names = itertools.count(1)

    def __init__(self, bindir: Path | None = None) -> None:
        self._bindir = bindir
        self._base: Path | None = None
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        # When root: run initdb and postgres as the postgres system user.
        self._user: pwd.struct_passwd | None = None

    # -- where things are ------------------------------------------------------------------

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    @property
    def base(self) -> Path:
        """The temporary directory: data/, server.log and the unix socket."""
        if self._base is None:
            raise RuntimeError("the cluster is not started")
        return self._base

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        return self.base / "server.log"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the cluster is not started")
        return self._port

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, RuntimeError):
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Self:
        if self._base is not None:
            raise RuntimeError("the cluster is already started")
        bindir = self.bindir  # PostgresUnavailable before anything is created
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root, PostgreSQL needs the `postgres` system user to run as, "
                    f"and there is none. {INSTALL_HINT}"
                ) from None
        # Under /tmp: short enough for a unix socket path, and its parents are traversable
        # by the postgres user. mkdtemp makes it 0o700.
        self._base = Path(tempfile.mkdtemp(prefix="reviewrank-pg-", dir=_tmp_root()))
        try:
            if self._user is not None:
                os.chown(self._base, self._user.pw_uid, self._user.pw_gid)
            self._initdb(bindir)
            self._start_server(bindir)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove the temporary directory. Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------------------

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection as the superuser."""
        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10)

    def create_database(self, name: str | None = None) -> str:
        """Creates an empty database (a unique name unless given); returns its URL."""
        if name is None:
            name = f"test_{next(self._names)}_{uuid.uuid4().hex[:8]}"
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drops a database, closing whatever connections it still has."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # -- internals ---------------------------------------------------------------------------

    def _spawn(self, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Popen as the postgres user when root, in a C-locale environment without PG*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        user = self._user
        if user is not None:
            env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
        return subprocess.Popen(
            command,
            env=env,
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
            **kwargs,
        )

    def _initdb(self, bindir: Path) -> None:
        command = [
            str(bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C",  # no dependence on the machine's installed locales
            "--no-sync",
        ]
        process = self._spawn(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if process.returncode != 0:
            tail = output.decode(errors="replace").splitlines()[-40:]
            raise PostgresStartError(
                f"initdb failed (exit {process.returncode}):\n" + "\n".join(tail)
            )

    def _start_server(self, bindir: Path) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (open for the server's lifetime)
        if self._user is not None:
            os.chown(self.log_path, self._user.pw_uid, self._user.pw_gid)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            log_start = self._log.tell()
            settings = {
                **SERVER_SETTINGS,
                "port": str(port),
                "unix_socket_directories": str(self.base),
            }
            command = [str(bindir / "postgres"), "-D", str(self.data_dir)]
            for key, value in settings.items():
                command += ["-c", f"{key}={value}"]
            # A process group of its own: a Ctrl-C of the test run reaches pytest, whose
            # teardown then stops the server (after the databases are dropped).
            self._process = self._spawn(
                command, stdout=self._log, stderr=subprocess.STDOUT, process_group=0
            )
            self._port = port
            if self._wait_ready():
                return
            process, self._process = self._process, None
            if process is not None:
                _terminate(process)
            new_log = self.log_path.read_bytes()[log_start:].decode(errors="replace")
            if attempt < PORT_ATTEMPTS and PORT_TAKEN.search(new_log):
                continue  # another process took the port between free_port() and the bind
            raise PostgresStartError(
                f"the PostgreSQL server in {self.data_dir} did not start on port {port} "
                f"(attempt {attempt}); {self.log_path} ends with:\n{self.log_tail()}"
            )

    def _wait_ready(self) -> bool:
        """True once the server accepts connections; False if it exited or timed out.

        Waits for the status "ready" in postmaster.pid, written by this server, before it
        connects: if another process took the port, a connection would reach that one."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.poll() is not None:
                return False
            if _pid_file_status(self.data_dir, process.pid) == "ready":
                try:
                    with psycopg.connect(self.url(), connect_timeout=5):
                        return True
                except psycopg.OperationalError:
                    pass
            time.sleep(0.02)
        return False


def _pid_file_status(data_dir: Path, pid: int) -> str | None:
    """The status line of postmaster.pid ("starting", "ready", ...) if `pid` wrote it."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8 or lines[0].strip() != str(pid):
        return None
    return lines[7].strip()


def _tmp_root() -> str | None:
    return "/tmp" if os.path.isdir("/tmp") else None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown; immediate shutdown, then SIGKILL, if the server does not stop."""
    for sig, wait in (
        (signal.SIGINT, STOP_TIMEOUT),
        (signal.SIGQUIT, 10.0),
        (signal.SIGKILL, 10.0),
    ):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
