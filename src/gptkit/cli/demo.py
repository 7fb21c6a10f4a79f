"""`gptkit demo`: the main job on the built-in Chinese corpora (see gptkit.demo)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="the main job on the built-in data: prepare, train a tokenizer and a small GPT, sample (no arguments)",
    )
    demo.add_argument("--out", default="gptkit-demo", help="directory for everything (default ./gptkit-demo)")
    demo.add_argument(
        "--minutes",
        type=float,
        default=6.0,
        help="the whole demo's time (default 6): training gets what preparing the data and sampling leave",
    )
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from gptkit.demo import run_demo
    from gptkit.errors import ConfigError

    if not args.minutes > 0:
        raise ConfigError(f"--minutes: must be positive, got {args.minutes}")
    run_demo(args.out, minutes=args.minutes)
    return 0
