"""`reviewrank admin …` against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewrank.service.cli.main import main
from tests.conftest import ADMIN_TOKEN, Client
from tests.weights_helpers import WEIGHTS_A, WEIGHTS_B, seed, version


def admin(client: Client, *args: str, token: str = ADMIN_TOKEN) -> int:
    return main(["admin", *args, "--server", client.target, "--token", token])


def test_get_prints_the_version_and_each_profile(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    code = admin(client, "get")

    out = capsys.readouterr().out
    assert 0 == code
    assert out.startswith(f"weights version 1: {client.settings.weights}")
    assert "reviews_only" in out and "bayesian_average 0.70, wilson 0.30" in out


def test_get_toml_prints_the_document(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    admin(client, "get", "--toml")

    assert client.settings.weights.read_text() == capsys.readouterr().out


def test_reload_sends_a_local_file_and_records_who_and_why(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(WEIGHTS_A)

    code = admin(client, "reload", "--file", str(candidate), "--actor", "ann", "--reason", "promo")

    assert (0, 2) == (code, version(client))
    out = capsys.readouterr().out
    assert "version 2 in force (replaced 1)" in out and "by ann: promo" in out


def test_reload_of_invalid_weights_prints_the_status_and_exits_1(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(WEIGHTS_B.replace("0.8", "1.8"))

    code = admin(client, "reload", "--file", str(candidate))

    err = capsys.readouterr().err
    assert (1, 1) == (code, version(client))
    assert "INVALID_ARGUMENT: profiles.main.confidence" in err


def test_reload_expecting_a_stale_version_exits_1_with_aborted(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    code = admin(client, "reload", "--expect-version", "7")

    assert (1, 1) == (code, version(client))
    assert "ABORTED" in capsys.readouterr().err


def test_history_marks_the_version_in_force(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(WEIGHTS_A)
    admin(client, "reload", "--file", str(candidate), "--actor", "ann")
    capsys.readouterr()

    code = admin(client, "history")

    lines = capsys.readouterr().out.splitlines()
    assert 0 == code
    assert lines[2].startswith("* 2") and "inline" in lines[2] and "ann" in lines[2]
    assert lines[3].startswith("  1") and "startup" in lines[3]


def test_rollback_puts_an_earlier_version_back(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(WEIGHTS_A)
    admin(client, "reload", "--file", str(candidate))

    code = admin(client, "rollback", "1", "--reason", "undo")

    assert (0, 3) == (code, version(client))
    assert "version 3 in force: the content of version 1" in capsys.readouterr().out


def test_preview_prints_each_samples_changes_and_applies_nothing(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(client)
    candidate = tmp_path / "candidate.toml"
    candidate.write_text("[profiles.default]\nweights = { relevance = 1 }\n")

    code = admin(
        client, "preview", "--file", str(candidate), "--sample", "p01,p02,p03", "--catalogue"
    )

    out = capsys.readouterr().out
    assert (0, 1) == (code, version(client))
    assert "samples[0]:" in out and "catalogue:" in out and "nothing applied" in out


def test_preview_says_a_product_that_falls_moves_down(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(client)
    candidate = tmp_path / "candidate.toml"
    candidate.write_text("[profiles.default]\nweights = { relevance = 1 }\n")
    admin(client, "preview", "--file", str(candidate), "--sample", "p03,p02,p01,p04,p05")

    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    moves = {row[0]: (int(row[1]), int(row[2]), " ".join(row[3:-2])) for row in rows if
             len(row) >= 6 and row[0].startswith("p0") and row[1].isdigit()}  # fmt: skip

    assert 5 == len(moves)
    for now, then, said in moves.values():
        expected = (
            "=" if now == then else (f"down {then - now}" if then > now else f"up {now - then}")
        )
        assert expected == said
    assert any(said.startswith("down") for _, _, said in moves.values())


def test_a_wrong_token_prints_unauthenticated_and_exits_1(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    code = admin(client, "get", token="not-the-token")

    err = capsys.readouterr().err
    assert 1 == code
    assert "UNAUTHENTICATED" in err and "not-the-token" not in err


@pytest.mark.parametrize("command", ["reload", "preview"])
def test_a_weights_file_that_cannot_be_read_is_one_line_and_exit_2(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    extra = ["--sample", "a,b"] if command == "preview" else []

    code = admin(client, command, "--file", str(tmp_path / "missing.toml"), *extra)

    assert 2 == code
    error = capsys.readouterr().err.strip()
    assert f"reviewrank: cannot read {tmp_path / 'missing.toml'}: No such file" in error
    assert "Traceback" not in error


def test_a_limit_out_of_a_uint32s_range_is_refused_by_the_option(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["top", "--limit", "-1", "--server", client.target])

    assert 2 == exited.value.code
    assert "argument --limit: must be between 0 and 4294967295 (got -1)" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["rollback", "-1"], ["history", "--limit", "-5"]])
def test_a_negative_version_or_limit_is_refused_by_name_before_any_call(
    client: Client, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        admin(client, *args)

    err = capsys.readouterr().err
    assert 2 == exited.value.code
    assert "must be between 0 and" in err
