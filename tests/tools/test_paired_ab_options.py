"""The paired A/B's command line: each side's server variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewrank.service.tools.paired_ab import main


@pytest.mark.parametrize("given", ["FOO=1", "REVIEWRANK_FAIR_TURNS"])
def test_a_side_variable_must_be_a_reviewrank_name_and_value(
    given: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path), "--new-env", given])

    assert 2 == exited.value.code
    assert f"--new-env {given!r}: expected REVIEWRANK_NAME=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        # A misspelt name would be ignored by both servers: an A/B of one setting twice.
        (
            ["--old-env", "REVIEWRANK_FAIR_TURN=0"],
            "REVIEWRANK_FAIR_TURN is not a setting of this tree",
        ),
        (["--new-env", "REVIEWRANK_FAIR_TURNS=abc"], "REVIEWRANK_FAIR_TURNS='abc'"),
    ],
)
def test_a_side_setting_this_tree_would_not_take_is_refused_before_any_server_starts(
    given: list[str], refusal: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path), *given])

    assert 2 == exited.value.code
    assert refusal in capsys.readouterr().err


def test_only_a_scenario_that_exists_can_be_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path), "--only", "SubmitBatc h"])

    assert 2 == exited.value.code
    assert "--only 'SubmitBatc h': no scenario's name holds it" in capsys.readouterr().err
