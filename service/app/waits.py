"""Waits that give the caller's turn back.

The API edge may run a call's work only while the call holds a turn (fair turns between
connections: service/api/turns.py). A call that then waits for something other than
the CPU (its commit, a ``min_seq``) should not keep others from running meanwhile: the
code that waits does so inside ``giving_turn_back()``, and the turn goes to the next
caller. What remains of the call after such a wait (its answer) runs without a turn.

The turn is kept per thread; with none held (tests, tools, the writer's own thread)
``giving_turn_back()`` does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_held = threading.local()


def hold(give_back: Callable[[], None] | None) -> None:
    """Records how this thread's call gives its turn back (None: it holds none)."""
    _held.give_back = give_back


@contextmanager
def giving_turn_back() -> Iterator[None]:
    """Gives this thread's turn back (once) before the block waits."""
    give_back: Callable[[], None] | None = getattr(_held, "give_back", None)
    if give_back is not None:
        _held.give_back = None
        give_back()
    yield
