"""Every option and argument of every reviewrank command says what it is for."""

from __future__ import annotations

import argparse

from reviewrank.service.cli.main import build_parser


def undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += undocumented(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_of_every_command_has_help_text() -> None:
    assert [] == undocumented(build_parser(), "reviewrank")
