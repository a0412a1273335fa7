"""Fuzzing every method of a real server with atheris (libFuzzer), guided by the
server's own code coverage: no input may get INTERNAL or UNKNOWN, and the server must
stay healthy (health SERVING, a valid write still acknowledged) throughout.

Inputs: ``FUZZ_RUNS`` (default 3000; ``make soak`` runs many more), ``FUZZ_SEED``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("FUZZ_RUNS", "3000"))


@pytest.mark.slow
def test_fuzzed_requests_never_get_internal_or_unknown(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    env = {
        **os.environ,
        "FUZZ_DIR": str(tmp_path),
        "FUZZ_RUNS": str(RUNS),
        "FUZZ_SEED": os.environ.get("FUZZ_SEED", "1"),
    }

    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_requests"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=max(300, RUNS // 10),
        check=False,
    )

    assert 0 == result.returncode, result.stderr[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert RUNS == summary["runs"]
    assert not {"INTERNAL", "UNKNOWN"} & set(summary["codes"])
    assert summary["codes"].get("INVALID_ARGUMENT", 0) > 0
    assert summary["codes"].get("OK", 0) > 0  # some inputs were valid: the checks run deep
    assert [] == summary["aggregate_mismatches"]
    print(f"\nfuzz: {json.dumps(summary)}")
