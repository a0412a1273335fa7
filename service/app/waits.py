"""Waits that give the caller's turn back, and long work that lets others run.

The API edge may run a call's work only while the call holds a turn (fair turns between
connections: service/api/turns.py). A call that then waits for something other than
the CPU (its commit, a ``min_seq``) should not keep others from running meanwhile: the
code that waits does so inside ``giving_turn_back()``, and the turn goes to the next
caller. What remains of the call after such a wait (its answer) runs without a turn.
Work that may take long (a Rank of thousands of candidates) calls ``let_others_run()``
between its steps: if another call waits for a turn, this one goes behind it.

The turn is kept per thread; with none held (tests, tools, the writer's own thread)
both do nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

_held = threading.local()


class HeldTurn(Protocol):
    def give_back(self) -> None:
        """Gives the turn back (at most once; later calls do nothing)."""

    def pass_if_waited_for(self) -> None:
        """If another call waits for a turn, gives this one back and waits for the next."""


# Waits for a turn on the CPU (for a server thread of its own: the writer) and returns it.
CpuTurn = Callable[[], HeldTurn]


def hold(turn: HeldTurn | None) -> None:
    """Records the turn this thread's call holds (None: it holds none)."""
    _held.turn = turn


@contextmanager
def giving_turn_back() -> Iterator[None]:
    """Gives this thread's turn back (once) before the block waits."""
    turn: HeldTurn | None = getattr(_held, "turn", None)
    if turn is not None:
        _held.turn = None
        turn.give_back()
    yield


def let_others_run() -> None:
    """Between two steps of long work: the calls waiting for a turn go first."""
    turn: HeldTurn | None = getattr(_held, "turn", None)
    if turn is not None:
        turn.pass_if_waited_for()
