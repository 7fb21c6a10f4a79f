"""`gptkit finetune ...`: fine-tune a pretrained checkpoint. `finetune classify`: GPT-1 task heads."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune a pretrained checkpoint (classify: GPT-1 task heads)")
    sub = p.add_subparsers(dest="finetune_command", metavar="WHAT", required=True)
    for add in SUBCOMMANDS:
        add(sub)


def add_classify(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "classify",
        help="train a classification / entailment / similarity / multiple-choice head (GPT-1, L2 + lambda L1)",
        description="Fine-tune a pretrained checkpoint with a linear head on the extract token's final state and "
        "the auxiliary LM loss (Radford et al. 2018). Defaults are the paper's: lm_weight 0.5, lr 6.25e-5, batch 32, "
        "3 epochs, linear decay with warmup over 0.2%% of the steps, classifier dropout 0.1. The task kind follows "
        'the JSONL fields: {"text","label"}, {"text_a","text_b","label"}, {"context","choices","label"}.',
    )
    c.add_argument("--base", metavar="CKPT", help="pretrained checkpoint directory")
    c.add_argument("--data", metavar="TRAIN", help="training records: a JSONL file or builtin:zh-sentiment")
    c.add_argument("--val", metavar="VAL", help="validation records (default for builtin:zh-sentiment: its val split)")
    c.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory: checkpoints, metrics, config")
    c.add_argument(
        "--task",
        choices=("auto", "classification", "entailment", "similarity", "multiple_choice"),
        help="task kind (default auto: from the fields; similarity must be asked for)",
    )
    c.add_argument("--lm-weight", type=float, metavar="LAMBDA", help="weight of the auxiliary LM loss (default 0.5)")
    c.add_argument("--epochs", type=float, metavar="N", help="passes over the training records (default 3)")
    c.add_argument("--config", metavar="FILE.toml", help="settings file with [finetune] and [train] tables")
    c.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set train.lr=1e-4 --set finetune.clf_dropout=0.2 (repeatable)",
    )
    c.add_argument("--resume", action="store_true", help="continue RUN_DIR from its newest checkpoint")
    c.set_defaults(func=cmd_classify)


def build_config(args: argparse.Namespace):
    from gptkit.cli.train import settings_file, toml_string
    from gptkit.train.finetune import load_finetune_config

    overrides = list(args.set)
    base = settings_file(args.config, args.out, resume=args.resume)
    flags = {"base": args.base, "data": args.data, "val": args.val, "task": args.task}
    for key, value in flags.items():
        if value is not None:
            overrides.append(f"finetune.{key}={toml_string(value)}")
    for key, value in (("lm_weight", args.lm_weight), ("epochs", args.epochs)):
        if value is not None:
            overrides.append(f"finetune.{key}={value!r}")
    return load_finetune_config(base, overrides)


def cmd_classify(args: argparse.Namespace) -> int:
    from gptkit.train.finetune import finetune_classify

    result = finetune_classify(build_config(args), args.out, resume=args.resume)
    if result.interrupted:
        return 130 if result.interrupted == "SIGINT" else 143
    return 0


# Each adds one `gptkit finetune WHAT` subcommand (chat SFT adds its own here).
def add_chat(sub: argparse._SubParsersAction) -> None:
    from gptkit.cli.chat import register_finetune_chat

    register_finetune_chat(sub)


SUBCOMMANDS = [add_classify, add_chat]
