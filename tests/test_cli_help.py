"""`gptkit --version`, and a help text for every argument of every command (issue 10 item 16)."""

from __future__ import annotations

import argparse

import gptkit
from gptkit.cli import build_parser


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_version(cli_workspace, gptkit_cli):
    r = gptkit_cli.run(["--version"], cli_workspace)
    assert r.returncode == 0 and r.stdout.strip() == f"gptkit {gptkit.__version__}", r
    from importlib.metadata import version

    assert version("gptkit") == gptkit.__version__  # the installed package reports the same (one definition)


def test_every_argument_of_every_command_has_help():
    missing = []
    for path, parser in _commands(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            if not action.help:
                missing.append(
                    f"gptkit {' '.join(path)} {action.option_strings[0] if action.option_strings else action.dest}"
                )
    assert not missing, missing


def test_help_names_the_kinds_and_the_run_dir(gptkit_cli, cli_workspace):
    r = gptkit_cli.run(["tokenizer", "train", "--help"], cli_workspace)
    text = " ".join(r.stdout.split())  # argparse wraps lines to the terminal's width
    assert r.returncode == 0 and "byte-level BPE" in text and "one token per character" in text
    r = gptkit_cli.run(["plot", "--help"], cli_workspace)
    assert r.returncode == 0 and "RUN_DIR/metrics.jsonl" in " ".join(r.stdout.split())
