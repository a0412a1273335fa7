"""The ranking core stays pure: importing it pulls in no service, gRPC or storage module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FORBIDDEN = (
    "grpc", "sqlite3", "sqlite_utils", "structlog", "reviewrank.service", "reviewrank.v1", "google",
    "vaderSentiment", "choix", "requests", "psycopg",
)  # fmt: skip

PROGRAM = """
import json, sys
import reviewrank.ranking
import reviewrank.ranking.priors, reviewrank.ranking.stars, reviewrank.ranking.beta
import reviewrank.ranking.decay, reviewrank.ranking.evaluation
import reviewrank.ranking.shares, reviewrank.ranking.sentiment, reviewrank.ranking.polls
import reviewrank.ranking.signals_evaluation
import reviewrank.ranking.integrity, reviewrank.ranking.integrity_evaluation
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_ranking_package_loads_no_service_or_io_module() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    modules = json.loads(completed.stdout)
    leaked = [name for name in modules if name.startswith(FORBIDDEN)]
    assert [] == leaked
