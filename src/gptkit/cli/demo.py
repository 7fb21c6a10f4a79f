"""`gptkit demo`: the main job on the built-in data. Until training lands it shows the model presets."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run the main job on the built-in data (no arguments needed)")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from gptkit.cli.model import cmd_model_info

    print("gptkit demo: training is not built yet; here are the model presets it will train.")
    return cmd_model_info(argparse.Namespace(presets=[]))
