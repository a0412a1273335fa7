"""The standing abuse suite (service/tools/abuse.py): each attack of issue 17, briefly, against a
real server subprocess. While it runs and afterwards the server must answer Check and Rank
(each within 5 s: a hang detector, not a latency target; under attack, Rank may be
refused as overloaded), then stop on SIGTERM within its
grace, without SIGKILL. ``make soak`` runs the attacks for longer (``ABUSE_SECONDS``).
Latency under attack is measured by ``make bench-abuse``, not here.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from reviewrank.service.tools.abuse import SCENARIOS, Scenario
from reviewrank.service.tools.abuse_bench import (
    HEALTHY,
    answers,
    attack_alongside,
    synthetic_database,
)

SECONDS = float(os.environ.get("ABUSE_SECONDS", "1.5"))


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_database(tmp_path_factory.mktemp("abuse"), products=2000)


def midway(target: str) -> dict[str, str]:
    """Check and Rank once the attack is well under way; the attack then runs out its time."""
    began = time.monotonic()
    time.sleep(SECONDS * 0.6)
    found = answers(target)
    time.sleep(max(0.0, SECONDS - (time.monotonic() - began)))
    return found


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.key for s in SCENARIOS])
def test_server_answers_during_and_after_attack_and_stops_on_sigterm(
    scenario: Scenario, catalogue: Path, tmp_path: Path
) -> None:
    database = tmp_path / "abused.db"
    shutil.copyfile(catalogue, database)

    outcome = attack_alongside(scenario, database, SECONDS, during=midway)

    assert outcome.abuse is not None
    assert outcome.abuse.sent > 0, "the attack made no call"
    seen = outcome.abuse.brief()
    # Under attack, Check answers SERVING; Rank answers, possibly refused as overloaded
    # (RESOURCE_EXHAUSTED, the designed answer to a flood), but within the deadline.
    assert "SERVING" == outcome.during["check"], f"while under attack ({seen})"
    assert outcome.during["rank"] in ("OK", "RESOURCE_EXHAUSTED"), f"under attack ({seen})"
    assert HEALTHY == outcome.answers, f"after the attack ({seen})"
    assert False is outcome.needed_sigkill, "the server ignored SIGTERM"
    # Bad input gets a clear status, never INTERNAL or UNKNOWN; no answer is wrong.
    assert set() == {"INTERNAL", "UNKNOWN"} & set(outcome.abuse.statuses), seen
    assert {} == dict(outcome.abuse.anomalies)
