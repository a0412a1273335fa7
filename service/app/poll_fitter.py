"""The poll strengths in force: refitted on a thread of their own after poll votes change.

A product's Bradley–Terry strength (ranking.polls) depends on every poll vote, not on
its own row: a vote between A and B moves A's strength, and through A, that of every
product A met. So the strengths are refitted over all poll votes in force, by
minorisation–maximisation warm-started from the strengths in force (a few steps after a
few new votes), whenever the catalogue's poll counts changed: this process's writes, or
another's read by the change feed. The votes are read from the database on a connection
of the fitter's own (every vote committed up to the change seen, the ids turned into
rows by the database), so that every process (``--workers``, replicas) fits the same
votes: all of them at the first fit, then those put in force since, over the ones kept
(Store.load_poll_rows); rows whose strength moved are then changed in the catalogue as a
write's are, which the kept score columns and Top's order follow.

A fit runs at most COST_SHARE of a core (service/app/priors.py's rule: after a fit that
took t seconds of CPU, the next waits t / COST_SHARE) and no sooner than
``floor_seconds`` after the last: a new vote moves the strengths within that time, not at
once. At start-up the first fit is made before the application is ready (the strengths
are not stored).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import structlog

from reviewrank.ranking.polls import PollPrior, PollSets, group_polls, poll_fit
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.priors import kept_seconds
from reviewrank.service.app.refresher import pause
from reviewrank.service.app.store import Follower, PollRows
from reviewrank.service.domain.errors import StoreError

log = structlog.get_logger("reviewrank.polls")

# A strength is put in force when it moved by more than this (relative).
STRENGTH_TOLERANCE = 1e-6
# MM stops once no strength moves by more than this (relative) in a step: the fit is then
# within about 1e-6 of the optimum (4e-7 on 100,000 simulated votes; 1e-6 here left 4e-5,
# so that fits reached from other histories, a restart's or another worker's, differed
# in the fifth digit). A fit that reaches MAX_STEPS first is carried on by the next, so
# that one fit's cost stays bounded (a few products shown in most votes, linked to the
# rest by a few, make plain MM crawl: thousands of steps on an attack's 500,000 votes;
# ranking/polls.py's jumps bring that down to tens).
FIT_TOLERANCE = 1e-8
MAX_STEPS = 200


class _Stopped(Exception):
    """The fitter is closing: the fit under way is dropped."""


DEFAULT_POLL_PRIOR = PollPrior()


@dataclass(frozen=True)
class PollFit:
    """The last fit: the votes it read, the MM steps it took, what it cost, the rows whose
    strength it changed, the catalogue's poll generation it reflects, and whether it
    converged (else the next fit carries on from it)."""

    votes: int
    steps: int
    seconds: float
    changed: int
    generation: int
    converged: bool = True
    cpu_seconds: float = 0.0  # the CPU the fit's thread used (what paces the next fit)
    left_out: int = 0  # votes read but not fitted (naming a product not held yet)


class PollFitter:
    def __init__(
        self,
        reader: Follower,
        catalogue: Catalogue,
        prior: PollPrior = DEFAULT_POLL_PRIOR,
        floor_seconds: float = 0.05,
    ) -> None:
        self._reader = reader
        self._catalogue = catalogue
        self.prior = prior
        self._floor = floor_seconds
        self._stopping = threading.Event()
        self.last: PollFit | None = None
        self._held: PollRows | None = None  # the votes last read (fitter's thread only)
        self._sets: PollSets | None = None  # their grouping by products shown (ditto)
        if catalogue.poll_generation:  # votes in force: fitted before any call is served
            self._first_fit()
        self._thread = threading.Thread(target=self._run, name="reviewrank-polls", daemon=True)
        self._thread.start()

    def _first_fit(self) -> None:
        """The fit at start-up, so that no call sees the prior's strengths in place of the
        votes' (the strengths are not stored: a restart would otherwise rank on them for
        as long as the first fit takes, 2.7 s at 300,000 votes in a tryout). A failure is
        logged and the thread tries again."""
        try:
            fit = self.fit_once()
        except Exception:
            log.exception("fitting the poll strengths at start-up failed; retrying")
            return
        log.info(
            "poll strengths fitted",
            votes=fit.votes,
            steps=fit.steps,
            converged=fit.converged,
            seconds=round(fit.seconds, 3),
        )

    @property
    def fitted_generation(self) -> int:
        """The poll generation the strengths in force reflect (0 before any fit: the
        prior's strengths reflect a catalogue without poll votes; -1 while a fit is still
        converging)."""
        last = self.last
        if last is None:
            return 0
        return last.generation if last.converged else -1

    @property
    def pending(self) -> bool:
        """Whether poll counts changed since the strengths in force were fitted."""
        return self._catalogue.poll_generation > max(self.fitted_generation, 0)

    def fit_once(self) -> PollFit:
        """Reads the poll votes in force (_read_votes) and puts the strengths fitted on
        them in force; when no vote changed since the last converged fit, only notes it."""
        started, cpu_started = time.perf_counter(), time.thread_time()
        generation = self._catalogue.poll_generation  # before the read: the read holds it
        rows, same = self._read_votes()
        last = self.last
        # (Rows changed, votes did not: unless the last fit left some votes out, whose
        # products another process wrote and the change feed has brought in since.)
        if same and last is not None and last.converged and not last.left_out:
            self.last = replace(
                last,
                steps=0,
                seconds=time.perf_counter() - started,
                changed=0,
                generation=generation,
                cpu_seconds=time.thread_time() - cpu_started,
            )
            return self.last
        _, votes, start = self._catalogue.poll_rows(rows)
        self._sets = sets = group_polls(votes, self._sets)  # (the new votes only, mostly)
        strengths, steps = poll_fit(
            votes, start.size, self.prior, start, FIT_TOLERANCE, MAX_STEPS, self._between, sets
        )
        if not np.all(np.isfinite(strengths) & (strengths > 0)):  # (MM keeps them so)
            raise ValueError("the fit gave a strength that is not a positive number")
        changed = self._catalogue.set_poll_strengths(strengths, STRENGTH_TOLERANCE)
        seconds = time.perf_counter() - started
        converged, cpu = steps < MAX_STEPS, time.thread_time() - cpu_started
        left_out = rows.votes - len(votes)
        fit = PollFit(len(votes), steps, seconds, changed, generation, converged, cpu, left_out)
        self.last = fit
        return fit

    def _read_votes(self) -> tuple[PollRows, bool]:
        """The poll votes in force, and whether they are those of the last read: those
        read before, with the votes put in force since read over them; every vote again
        at the first read, and when the count of votes in force says some went (an
        erasure, an import) or the log went back (a restore). (At 400,000 votes, reading
        them all took 1.0 s of CPU, half of a fit's.)"""
        held = self._held
        if held is not None:
            changed = self._reader.load_poll_rows(after_seq=held.seq, mark=held.mark)
            if changed.seq >= held.seq:
                rows = held.merged(changed)
                if rows.votes == changed.in_force:
                    self._held = rows
                    return rows, changed.since is not None and not changed.vote.size
        rows = self._reader.load_poll_rows()
        self._held = rows
        return rows, False

    def _between(self) -> None:
        """Between two MM steps: waiting calls go first; a closing fitter stops."""
        pause()
        if self._stopping.is_set():
            raise _Stopped

    def _run(self) -> None:
        """Sleeps until the catalogue says poll counts changed (no polling: a thread
        waking 50 times a second cost Rank 3 % on one core), then fits once the pace
        allows; a fit that did not converge, or failed, is followed by another."""
        changed = self._catalogue.polls_changed
        next_at = 0.0
        backoff = 1.0  # after a failure, doubled up to a minute
        while True:
            if self._catalogue.poll_generation == self.fitted_generation:
                changed.wait()
                changed.clear()
            if self._stopping.is_set():
                break
            wait = next_at - time.monotonic()
            if wait > 0 and self._stopping.wait(wait):
                break
            try:
                fit = self.fit_once()
            except _Stopped:
                break
            except StoreError as exc:
                if self._stopping.is_set():  # (close() closed the reader under a long read)
                    break
                log.warning("reading the poll votes failed; retrying", error=str(exc))
                next_at, backoff = time.monotonic() + backoff, min(2 * backoff, 60.0)
                continue
            except Exception:  # the strengths in force stay; tried again later
                log.exception("fitting the poll strengths failed")
                next_at, backoff = time.monotonic() + backoff, min(2 * backoff, 60.0)
                continue
            backoff = 1.0
            # Paced by the CPU the fit used, not by its wall time: between steps it lets
            # waiting calls go first, and under load that waiting made fits of 0.9 s of
            # CPU last 3.5 s, the next one then waiting 35 s.
            next_at = time.monotonic() + kept_seconds(fit.cpu_seconds, self._floor)

    def close(self) -> None:
        self._stopping.set()
        self._catalogue.polls_changed.set()  # (wakes the thread)
        self._thread.join(5)
        self._reader.close()
