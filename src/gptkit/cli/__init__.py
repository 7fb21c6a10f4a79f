"""The `gptkit` command: a thin layer that parses arguments and calls library functions.

Each area registers its subcommands from its own module (cli/model.py, cli/tokenizer.py, ...), so the
areas grow without touching one another. Errors meant for the user (GptkitError) print without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gptkit import __version__
from gptkit.errors import GptkitError

# Modules under gptkit.cli that define `register(subparsers)`. Order is the order of `gptkit --help`.
COMMAND_MODULES = ["demo", "model", "tokenizer", "generate", "chat", "serve", "data", "train", "finetune", "eval"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gptkit",
        description="Raw text to a working GPT: prepare data, train a tokenizer, pretrain, generate.",
    )
    parser.add_argument("--version", action="version", version=f"gptkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"gptkit.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except GptkitError as e:
        print(f"gptkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gptkit: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
