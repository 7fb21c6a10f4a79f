"""`gptkit train` and `gptkit plot`."""

from __future__ import annotations

import argparse
from pathlib import Path

from gptkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="pretrain a GPT on token shards, a built-in corpus or a text file",
        description="Pretrain a GPT. Also runs under `torchrun --nproc_per_node N -m gptkit train ...` (DDP/FSDP2).",
    )
    p.add_argument("--data", help="a `gptkit prepare` output DIR, builtin:NAME, or a plain text FILE")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory: checkpoints, metrics, config")
    p.add_argument("--config", metavar="FILE.toml", help="settings file with [model], [train] and [data] tables")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set train.lr=3e-4 --set model.preset=nano (repeatable)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue RUN_DIR from its newest checkpoint with its saved settings. --set may change train.max_steps "
        "(upward), the lr schedule, optimizer constants, eval/log/checkpoint intervals, device, dtype, compile and "
        "model.dropout; the model shape, data.*, batch_size, grad_accum and seed are fixed",
    )
    p.add_argument(
        "--resume-from",
        metavar="CHECKPOINT",
        help="like --resume, but continue from this checkpoint of RUN_DIR (e.g. RUN_DIR/checkpoints/step_0000500)",
    )
    p.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start a new run from this checkpoint's weights, model config and tokenizer (fresh optimizer and "
        "schedule; any gptkit checkpoint, e.g. from import-hf or tokenizer extend); not --resume",
    )
    p.set_defaults(func=cmd_train)

    plot = subparsers.add_parser("plot", help="write a PNG of train and val loss of a training run")
    plot.add_argument(
        "run_dir", metavar="RUN_DIR", help="a `gptkit train --out` directory (reads RUN_DIR/metrics.jsonl)"
    )
    plot.add_argument("--out", help="PNG path (default RUN_DIR/loss.png)")
    plot.set_defaults(func=cmd_plot)


def build_config(args: argparse.Namespace):
    from gptkit.train.config import load_run_config

    if args.init_from and (args.resume or args.resume_from):
        raise ConfigError("--init-from starts a new run from a checkpoint; --resume continues RUN_DIR's run: give one")
    overrides = list(args.set)
    base = settings_file(args.config, args.out, resume=bool(args.resume or args.resume_from))
    if args.data:
        overrides.append(f"data.path={toml_string(args.data)}")
    if args.init_from:
        overrides.append(f"train.init_from={toml_string(args.init_from)}")
    return load_run_config(base, overrides)


def toml_string(value: str) -> str:
    """A string as a TOML value for a `--set key=value` override (a JSON string is a TOML basic string)."""
    import json

    return json.dumps(value, ensure_ascii=False)


def settings_file(config: str | None, out: str, *, resume: bool) -> Path | None:
    """The TOML file a run's settings start from: `--config` for a new run; RUN_DIR/config.toml (the saved,
    resolved settings) for a resumed one, which takes no --config. Used by train, finetune classify and chat."""
    from gptkit.train.trainer import CONFIG_FILE

    if not resume:
        return Path(config) if config else None
    if config:
        raise ConfigError("--config: a resumed run keeps its saved settings; change them with --set")
    saved = Path(out) / CONFIG_FILE
    if not saved.is_file():
        raise ConfigError(f"{saved}: not found, so there is no run to resume in {out}")
    return saved


def cmd_train(args: argparse.Namespace) -> int:
    from gptkit.train.trainer import train

    config = build_config(args)
    result = train(config, args.out, resume=args.resume, resume_from=args.resume_from)
    if result.interrupted:
        return 130 if result.interrupted == "SIGINT" else 143
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gptkit.train.metrics import plot_losses

    print(f"wrote {plot_losses(args.run_dir, args.out)}")
    return 0
