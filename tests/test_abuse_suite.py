"""The standing abuse suite (service/abuse.py): each attack of issue 17, briefly, against a
real server subprocess; afterwards the server must answer Check and Rank, and stop on
SIGTERM within its grace, without SIGKILL. ``make soak`` runs the attacks for longer
(``ABUSE_SECONDS``). Latency under attack is measured by ``make bench-abuse``, not here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from service.abuse import SCENARIOS, Scenario
from service.abuse_bench import attack_alongside, synthetic_database

SECONDS = float(os.environ.get("ABUSE_SECONDS", "1.5"))


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_database(tmp_path_factory.mktemp("abuse"), products=2000)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.key for s in SCENARIOS])
def test_server_answers_and_stops_on_sigterm_after_attack(
    scenario: Scenario, catalogue: Path, tmp_path: Path
) -> None:
    database = tmp_path / "abused.db"
    shutil.copyfile(catalogue, database)

    outcome = attack_alongside(scenario, database, SECONDS)

    assert outcome.abuse is not None
    assert outcome.abuse.sent > 0, "the attack made no call"
    assert {"check": "SERVING", "rank": "OK"} == outcome.answers, outcome.abuse.brief()
    assert False is outcome.needed_sigkill, "the server ignored SIGTERM"
    # Bad input gets a clear status, never INTERNAL or UNKNOWN; no answer is wrong.
    assert set() == {"INTERNAL", "UNKNOWN"} & set(outcome.abuse.statuses), outcome.abuse.brief()
    assert {} == dict(outcome.abuse.anomalies)
