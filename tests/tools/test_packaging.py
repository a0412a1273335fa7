"""The server's distribution installs under the reviewrank import namespace: its packages
are reviewrank.service and reviewrank.ranking (the repository's service/ and ranking/),
never top-level `service` or `ranking`, and it leaves `reviewrank` itself a namespace
that the client distribution (reviewrank.v1, reviewrank.client) shares."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    [wheel] = out.glob("reviewrank-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_server_wheel_holds_only_the_reviewrank_namespace(wheel_files: list[str]) -> None:
    top_level = {
        name.split("/")[0] for name in wheel_files if not name.split("/")[0].endswith(".dist-info")
    }

    assert {"reviewrank"} == top_level


def test_the_server_wheel_carries_the_service_and_the_ranking_core(
    wheel_files: list[str],
) -> None:
    wanted = {"reviewrank/service/cli/main.py", "reviewrank/ranking/priors.py"}

    assert wanted <= set(wheel_files)


def test_the_server_wheel_leaves_reviewrank_a_namespace_for_the_client(
    wheel_files: list[str],
) -> None:
    assert "reviewrank/__init__.py" not in wheel_files
    assert not [name for name in wheel_files if name.startswith("reviewrank/v1/")]
