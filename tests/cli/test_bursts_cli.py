"""``reviewrank admin bursts|decide|decisions`` and the damped column of ``stats``,
against a real server holding a burst (tests/api/test_manipulation_defences.py)."""

from __future__ import annotations

import pytest

from reviewrank.service.cli.main import main
from tests.api.test_manipulation_defences import (  # noqa: F401 (a fixture)
    CROWD,
    TARGET,
    defended,
    score,
    shill,
    weigh,
)
from tests.conftest import ADMIN_TOKEN, Client


def admin(client: Client, *args: str) -> int:
    return main(["admin", *args, "--server", client.target, "--token", ADMIN_TOKEN])


def listed_burst(client: Client, capsys: pytest.CaptureFixture[str]) -> str:
    """The burst's name as `admin bursts` prints it."""
    assert 0 == admin(client, "bursts")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(TARGET)]
    return lines[0].split()[0]


def test_bursts_names_the_burst_and_its_votes(
    defended: Client,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    shill(defended)
    weigh(defended)

    name = listed_burst(defended, capsys)

    product, _, times = name.rpartition(":")
    first, _, last = times.partition("-")
    assert (TARGET, True) == (product, int(first) <= int(last))


def test_decide_confirm_by_the_printed_name_counts_the_votes_in_full(
    defended: Client,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    shill(defended)
    weigh(defended)
    name = listed_burst(defended, capsys)

    code = admin(defended, "decide", "confirm", name, "--actor", "ann", "--reason", "launch")

    assert (0, f"confirmed {name}: in force") == (code, capsys.readouterr().out.strip())
    assert score(defended, "undefended") == pytest.approx(score(defended, "fixed"), abs=1e-9)


def test_decisions_lists_who_decided(
    defended: Client,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    shill(defended)
    weigh(defended)
    name = listed_burst(defended, capsys)
    admin(defended, "decide", "dismiss", name, "--actor", "ann")
    capsys.readouterr()

    assert 0 == admin(defended, "decisions")

    [row] = [line for line in capsys.readouterr().out.splitlines() if name in line]
    assert ["dismiss", name, "ann"] == row.split()[3:6]


@pytest.mark.parametrize(
    "name", ["target", "target:", "target:a-b", "target:5-4", "target:" + "9" * 30 + "-" + "9" * 30]
)
def test_a_malformed_burst_name_is_refused_before_any_call(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["admin", "decide", "confirm", name, "--actor", "a", "--server", "127.0.0.1:1"])

    assert 2 == stopped.value.code
    assert "argument burst" in capsys.readouterr().err


def test_stats_shows_what_the_defences_leave_out(
    defended: Client,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    shill(defended)
    weigh(defended)

    assert 0 == main(["stats", TARGET, "--profile", "fixed", "--server", defended.target])

    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(TARGET)]
    assert f"{CROWD}/{CROWD}/0" == row.split()[-1]
