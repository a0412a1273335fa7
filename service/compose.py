"""The composition root: the application built from settings, with its store.

The one place that knows both the application and the storage adapters; the server,
the workers and the command line build the application here.
"""

from __future__ import annotations

from functools import partial

from reviewrank.service.app.application import Application
from reviewrank.service.app.settings import Settings
from reviewrank.service.app.status import Observers
from reviewrank.service.app.waits import CpuTurn
from reviewrank.service.storage.factory import open_checked_store


def build_application(
    settings: Settings, observers: Observers | None = None, writer_turn: CpuTurn | None = None
) -> Application:
    """The application on the database ``settings`` name, checked and loaded; it calls
    ``observers`` as things happen (the server's metrics), and its writer thread takes
    ``writer_turn``s (the server's fair turns)."""
    return Application(settings, partial(open_checked_store, settings), observers, writer_turn)
