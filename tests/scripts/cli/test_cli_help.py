"""`addrpool --help`: every option says what it does and what it defaults to, and the top level
says where the configuration comes from."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from scripts.cli.main import _parser
from tests.fixtures.cli import run_cli


def _arguments(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _arguments(child, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            yield path, parser, action


def test_every_option_has_help_that_shows_its_default() -> None:
    checked = 0
    for path, parser, action in _arguments(_parser()):
        where = f"addrpool {' '.join(path)} {action.option_strings or action.dest}"
        assert action.help, f"{where} has no help"
        if not action.option_strings or action.required or action.default is False:
            continue  # a positional, a required option, a flag: no default to show
        if action.default == argparse.SUPPRESS:
            continue  # --version, and the global options repeated on each command
        shown = " ".join(parser.format_help().split())
        if action.default is None:  # nothing to print: the help says what leaving it out does
            assert "default" in action.help, f"{where}: say what leaving it out does"
        else:
            assert f"(default: {action.default})" in shown, where
        checked += 1
    assert checked > 30


def test_help_shows_defaults_and_where_the_configuration_comes_from() -> None:
    top = run_cli(["--help"])
    assert top.returncode == 0
    assert "ADDRPOOL_CONFIG" in top.stdout and "ADDRPOOL_<SETTING>" in top.stdout
    assert "deposits" in top.stdout and "references" in top.stdout
    listing = " ".join(run_cli(["deposits", "list", "--help"]).stdout.split())
    assert "deposits a page (default: 20)" in listing
    assert "only this status (default: any)" in listing
    imports = " ".join(run_cli(["import", "--help"]).stdout.split())
    assert "auto detects which (default: auto)" in imports
