"""Fair turns: the work of calls runs one (or ``width``) at a time, shared fairly between
connections, so that a client flooding the server slows itself, not everyone else.

Python runs one thread at a time, so a server running 64 calls at once serves each of
them 64 times slower, and a client that keeps 60 calls in flight gets 60 shares of the
CPU against a shop search's one. Instead, a call takes a turn before its work and gives
it back after; waiting calls are served in start-time fair queuing order between
connections (Goyal, Vin & Cheng, "Start-time fair queueing", SIGCOMM 1996): each call
is tagged ``start = max(virtual time, finish tag of its connection's previous call)``,
the connection's finish tag moves on by the call's cost (its seconds holding the turn,
estimated from the connection's last call until known), and the smallest tag goes next.
A connection that was idle starts at the current virtual time, ahead of every
backlogged one: a light client waits for at most about one call of each flooding
connection, however many calls they keep in flight, and connections that flood share
the CPU equally by time, not by calls.

Calls of a connection never wait for each other: while one connection alone holds
turns, its calls run as they come (handing a turn from thread to thread costs about a
fifth of a cheap Rank's CPU, and there is no one to be fair to). A call of another
connection then waits until those drop below ``width``, and from there on every call
takes its turn, until no call waits.

The writer thread takes turns too, as a connection of its own (``WRITER_THREAD``), for
what follows each commit (the catalogue's update, the answers): never while it waits
for the database. A call's turn lasts until grpcio has queued its answer
(service/api/admission.py).

A call waiting for its commit or a ``min_seq`` gives its turn back meanwhile
(service/app/waits.py), so group commit still gathers many writes. A turn is taken
after the request has arrived and been decoded: a slow sender never holds one.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

# A connection answered more than ERRORS_FREE errors of its own making (invalid input, a
# min_seq never committed...) within a second gets each further one ERROR_PAUSE seconds
# late: a client looping on a refused call otherwise costs the server thousands of calls a
# second, whose handling by gRPC no turn can share out.
ERRORS_FREE = 20
ERROR_PAUSE = 0.2

# The connection name the writer thread's turns go under (peers read "ipv4:...", "unix:...").
WRITER_THREAD = "(writer thread)"

_FIRST_ESTIMATE = 0.001  # seconds: the cost assumed of a connection's first call
_PRUNE_AT = 4096  # finish tags kept before those no longer ahead of virtual time are dropped


class _Waiter:
    __slots__ = ("abandoned", "gate", "granted", "light")

    def __init__(self, light: bool) -> None:
        self.light = light
        self.granted = False
        self.abandoned = False
        self.gate = threading.Lock()
        self.gate.acquire()


class Turn:
    """A call's turn; ``give_back`` may be called more than once (the first counts)."""

    __slots__ = ("_connection", "_estimate", "_given_back", "_since", "_turns")

    def __init__(self, turns: FairTurns, connection: str, estimate: float) -> None:
        self._turns = turns
        self._connection = connection
        self._estimate = estimate
        self._since = time.perf_counter()
        self._given_back = False

    def give_back(self) -> None:
        if self._given_back:
            return
        self._given_back = True
        cost = time.perf_counter() - self._since
        self._turns._release(self._connection, cost - self._estimate, cost)


class RenewableTurn:
    """The turn a call or a server thread holds: the first it took, or the one it took
    again after letting the light calls waiting go first (``pass_if_waited_for``)."""

    __slots__ = ("_connection", "_time_left", "_turns", "turn")

    def __init__(
        self,
        turns: FairTurns,
        connection: str,
        turn: Turn | None,
        time_left: Callable[[], float | None] = lambda: None,
    ) -> None:
        """``time_left``: how long the holder may wait for its next turn (None: as long
        as it takes); past it, it carries on without one (a call past its deadline, which
        grpcio fails anyway)."""
        self._turns = turns
        self._connection = connection
        self._time_left = time_left
        self.turn = turn

    def give_back(self) -> None:
        if self.turn is not None:
            self.turn.give_back()
            self.turn = None

    def pass_if_waited_for(self) -> None:
        """Only for the calls of connections that were not backlogged (a shop's search):
        between the calls of a flood, passing would only hand turns around."""
        if self.turn is None or not self._turns.light_waiting:
            return
        self.turn.give_back()
        self.turn = self._turns.take(self._connection, self._time_left())


class FairTurns:
    """At most ``width`` calls hold a turn at once; the others wait, fairly (module doc)."""

    def __init__(self, width: int) -> None:
        if width < 1:
            raise ValueError("width must be at least 1")
        self.width = width
        self._lock = threading.Lock()
        self._running = 0
        self._holding: dict[str, int] = {}  # connection -> its calls holding a turn
        self._queue: list[tuple[float, int, _Waiter, str]] = []  # (start, order, ..., connection)
        self._finish: dict[str, float] = {}  # connection -> finish tag of its latest call
        self._cost: dict[str, float] = {}  # connection -> cost of its latest call
        self._errors: dict[str, tuple[float, int]] = {}  # connection -> (window, errors)
        self._virtual = 0.0
        self._order = itertools.count()
        self._prune_at = _PRUNE_AT
        self.waiting = 0  # calls waiting for a turn now (for metrics and tests)
        # Of them, those whose connection was not backlogged when they came (its calls
        # done, by virtual time): long work lets these go first (``light_waiting``).
        self.light_waiting = 0

    def take(self, connection: str, timeout: float | None = None) -> Turn | None:
        """Waits for a turn; None if ``timeout`` seconds passed first."""
        with self._lock:
            estimate = self._cost.get(connection, _FIRST_ESTIMATE)
            previous = self._finish.get(connection, 0.0)
            start = max(self._virtual, previous)
            self._finish[connection] = start + estimate
            if not self._queue and (
                self._running < self.width
                or (len(self._holding) == 1 and connection in self._holding)
            ):
                self._running += 1
                self._holding[connection] = self._holding.get(connection, 0) + 1
                self._virtual = start
                return Turn(self, connection, estimate)
            waiter = _Waiter(light=previous <= self._virtual)
            heapq.heappush(self._queue, (start, next(self._order), waiter, connection))
            self.waiting += 1
            self.light_waiting += waiter.light
        # A call without a deadline has about 9e18 s remaining, which Lock.acquire refuses
        # (OverflowError): from threading.TIMEOUT_MAX on, it waits without a timeout.
        wait = -1.0 if timeout is None or timeout >= threading.TIMEOUT_MAX else max(timeout, 0.0)
        try:
            acquired = waiter.gate.acquire(timeout=wait)
        except BaseException:  # left queued, it would be handed a turn nobody gives back
            if not self._abandon(waiter, connection, estimate):
                Turn(self, connection, estimate).give_back()  # handed over meanwhile
            raise
        if acquired:
            return Turn(self, connection, estimate)
        return (
            None
            if self._abandon(waiter, connection, estimate)
            else Turn(self, connection, estimate)
        )

    def _abandon(self, waiter: _Waiter, connection: str, estimate: float) -> bool:
        """Takes a waiter whose wait ended without the gate out of the queue; False if it
        was handed the turn just then (the caller then holds it)."""
        with self._lock:
            if waiter.granted:  # handed over just as the wait ran out: keep it
                return False
            waiter.abandoned = True
            self.waiting -= 1
            self.light_waiting -= waiter.light
            if connection in self._finish:
                self._finish[connection] -= estimate
        return True

    def for_thread(self, name: str) -> Callable[[], RenewableTurn]:
        """How a server thread of the application (the writer) takes turns as a connection
        named ``name``: the function waits for a turn and returns it. Its work is then
        shared out with the callers' instead of competing with them for Python's lock
        outside any turn."""

        def take() -> RenewableTurn:
            return RenewableTurn(self, name, self.take(name))

        return take

    def pause_after_error(self, connection: str) -> float:
        """Counts an error of the connection's making; the seconds to hold its answer back.
        Errors are counted in windows of a second, each opened by the first error after the
        last one closed."""
        now = time.monotonic()
        with self._lock:
            opened, count = self._errors.get(connection, (now, 0))
            if now - opened >= 1.0:
                opened, count = now, 0
            count += 1
            self._errors[connection] = (opened, count)
            if len(self._errors) > _PRUNE_AT:
                self._errors = {c: e for c, e in self._errors.items() if now - e[0] < 1.0}
        return ERROR_PAUSE if count > ERRORS_FREE else 0.0

    def _release(self, connection: str, correction: float, cost: float) -> None:
        with self._lock:
            if connection in self._finish:
                self._finish[connection] += correction
            self._cost[connection] = cost
            held = self._holding[connection] - 1
            if held:
                self._holding[connection] = held
            else:
                del self._holding[connection]
            if len(self._finish) > self._prune_at:  # (before a hand-over, which returns)
                self._prune()
            while self._queue and self._running <= self.width:
                start, _, waiter, next_connection = heapq.heappop(self._queue)
                if waiter.abandoned:
                    continue
                waiter.granted = True
                self.waiting -= 1
                self.light_waiting -= waiter.light
                self._virtual = start
                self._holding[next_connection] = self._holding.get(next_connection, 0) + 1
                waiter.gate.release()  # the turn passes on; _running is unchanged
                return
            self._running -= 1

    def _prune(self) -> None:
        """Forgets the connections not ahead of virtual time (as if never seen: the same
        tag) and not waiting; keeps the dict from growing with every connection seen."""
        waiting = {entry[3] for entry in self._queue}
        keep = {c: f for c, f in self._finish.items() if f > self._virtual or c in waiting}
        self._finish = keep
        self._cost = {c: v for c, v in self._cost.items() if c in keep}
        self._prune_at = max(_PRUNE_AT, 2 * len(keep))
