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
        "--minutes", type=float, default=4.0, help="training time to size the run for (default 4; about 6 in all)"
    )
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from gptkit.demo import run_demo

    run_demo(args.out, budget_s=60 * args.minutes)
    return 0
