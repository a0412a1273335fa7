"""Reloading the weights file in the background: on SIGHUP, and when the file changes.

One thread serves both: a SIGHUP (``request_reload``, safe in a signal handler) wakes it
at once; when the ``weights_watch_seconds`` setting is > 0 it also polls the file that
often, and reloads when the file's content changed since last seen and is not the
content in force. A reload refused or failed is logged, and the weights in force stay.
"""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from reviewrank.service.app.weights import WeightsRegistry, content_hash
from reviewrank.service.app.weights_admin import WeightsAdmin
from reviewrank.service.domain.errors import InvalidArgument, ReviewrankError

log = structlog.get_logger("reviewrank.weights")

BACKGROUND_TIMEOUT = 60.0  # seconds a SIGHUP or file-watch reload may wait for the writer


class WeightsWatch:
    """The background thread (started here) that reloads the weights file through
    ``admin``. ``seen_hash``: the file's content hash when it was last read."""

    def __init__(
        self,
        admin: WeightsAdmin,
        registry: WeightsRegistry,
        path: Path,
        interval: float,
        seen_hash: str,
    ) -> None:
        self._admin = admin
        self._registry = registry
        self._path = path
        self._interval = interval or None
        self._seen_hash = seen_hash
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._background, name="reviewrank-weights", daemon=True
        )
        self._thread.start()

    def request_reload(self) -> None:
        """Asks the background thread to reload the weights file (safe in a signal handler)."""
        self._wake.set()

    def _background(self) -> None:
        while True:
            woken = self._wake.wait(self._interval)
            if self._stop.is_set():
                return
            if woken:
                self._wake.clear()
                if self._in_force():
                    log.info(
                        "weights file unchanged: nothing applied",
                        trigger="sighup",
                        version=self._registry.current.version,
                    )
                else:
                    self._reload_in_background("sighup")
            elif self._file_changed():
                self._reload_in_background("file-watch")

    def _file_hash(self) -> str | None:
        """The SHA-256 of the file's content; None when it cannot be read (a reload says
        why)."""
        try:
            return content_hash(self._path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def _in_force(self) -> bool:
        """True when the file holds exactly the weights in force (a reload would only make
        a new version of them)."""
        return self._file_hash() == self._registry.current.content_sha256

    def _file_changed(self) -> bool:
        """True when the file's content changed since last seen and is not in force.

        The content is hashed at every poll (weights files are small): a modification time
        can miss a rewrite of the same size within one clock tick."""
        digest = self._file_hash()
        if digest is None or digest == self._seen_hash:
            return False
        self._seen_hash = digest
        return digest != self._registry.current.content_sha256

    def _reload_in_background(self, trigger: str) -> None:
        before = self._registry.current.version
        try:
            self._admin.reload(trigger=trigger, timeout=BACKGROUND_TIMEOUT)
        except InvalidArgument as exc:
            log.error(
                "weights reload refused: the weights in force stay",
                trigger=trigger,
                version=before,
                problems=[f"{key}: {problem}" for key, problem in exc.violations],
            )
        except ReviewrankError as exc:
            log.error("weights reload failed", trigger=trigger, version=before, error=str(exc))
        except Exception:  # the thread must survive anything
            log.exception("weights reload failed", trigger=trigger, version=before)

    def close(self) -> None:
        """Stops the background thread (before the writer closes)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(BACKGROUND_TIMEOUT)
