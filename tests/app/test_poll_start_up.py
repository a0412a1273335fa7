"""An application started on a database holding poll votes is ready with the strengths
fitted on them (service/app/poll_fitter.py): the strengths are not stored, and before,
calls made in the first moments after a restart saw the prior's 1.0."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewrank.ranking.polls import PollVotes, poll_strengths
from reviewrank.service.compose import build_application
from reviewrank.service.domain.values import PollVoteEvent
from tests.conftest import make_settings

PAIRS = [(i % 40, (7 * i + 1) % 40, i % 3 != 0) for i in range(4000)]


def test_an_application_started_on_poll_votes_is_ready_with_their_strengths(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    first = build_application(settings)
    first.submit(
        [
            PollVoteEvent(f"e{i}", f"q{i}", "u", (f"p{a}", f"p{b}"), f"p{a if w else b}", 1000 + i)
            for i, (a, b, w) in enumerate(PAIRS)
        ],
        timeout=30,
    )
    first.close()
    expected = poll_strengths(PollVotes.of([([a, b], a if w else b) for a, b, w in PAIRS]), 40)

    second = build_application(settings)
    try:
        stats, _ = second.product_stats([f"p{k}" for k in range(40)], "")
        found = [s.poll_strength for s in stats]
    finally:
        second.close()

    assert expected.tolist() == pytest.approx(found, rel=1e-4)
