"""`gptkit model info`, `gptkit import-hf`, `gptkit export-hf`."""

from __future__ import annotations

import argparse

from gptkit.config import PRESETS, preset


def register(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser("model", help="inspect model presets")
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    info = model_sub.add_parser(
        "info", help="parameters, training FLOPs and memory of presets (no weights are allocated)"
    )
    info.add_argument(
        "presets", nargs="*", metavar="PRESET", help=f"preset names (default: all). Known: {', '.join(PRESETS)}"
    )
    info.set_defaults(func=cmd_model_info)

    imp = subparsers.add_parser("import-hf", help="convert a local HF GPT-2 directory into a gptkit checkpoint")
    imp.add_argument("src_dir", help="directory with config.json and model.safetensors or pytorch_model.bin")
    imp.add_argument("out_dir", help="gptkit checkpoint directory to write (new or empty)")
    imp.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists and is not empty")
    imp.set_defaults(func=cmd_import_hf)

    exp = subparsers.add_parser("export-hf", help="write a gptkit checkpoint as a HF GPT-2 directory")
    exp.add_argument("ckpt_dir", help="gptkit checkpoint directory")
    exp.add_argument(
        "out_dir", help="directory to write (new or empty) that transformers.GPT2LMHeadModel.from_pretrained loads"
    )
    exp.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists and is not empty")
    exp.set_defaults(func=cmd_export_hf)


def cmd_model_info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gptkit.model_info import format_bytes, format_count, model_stats

    names = args.presets or list(PRESETS)
    table = Table(title="gptkit model presets (training FLOPs at full context; memory excludes activations)")
    for col in (
        "preset",
        "layers",
        "width",
        "heads",
        "ctx",
        "vocab",
        "parameters",
        "train FLOPs/token",
        "weights fp32",
        "weights bf16",
        "train state fp32",
        "train state bf16",
    ):
        table.add_column(col, justify="left" if col == "preset" else "right")
    for name in names:
        cfg = preset(name)
        s = model_stats(cfg)
        table.add_row(
            name,
            str(cfg.n_layer),
            str(cfg.n_embd),
            str(cfg.n_head),
            str(cfg.block_size),
            f"{cfg.vocab_size:,}",
            f"{s.n_params:,}",
            format_count(s.train_flops_per_token),
            format_bytes(s.bytes_weights_fp32),
            format_bytes(s.bytes_weights_bf16),
            format_bytes(s.bytes_train_fp32),
            format_bytes(s.bytes_train_bf16),
        )
    Console(width=200).print(table)
    print(
        "train state = weights + grads + AdamW m and v: fp32 (also bf16 autocast, which keeps fp32 weights) "
        "16 B/param; all-bf16 8 B/param. Activations come on top and depend on the batch."
    )
    return 0


def cmd_import_hf(args: argparse.Namespace) -> int:
    from gptkit.interop.hf import import_hf

    out = import_hf(args.src_dir, args.out_dir, force=args.force)
    print(f"wrote gptkit checkpoint {out}")
    return 0


def cmd_export_hf(args: argparse.Namespace) -> int:
    from gptkit.interop.hf import export_hf

    out = export_hf(args.ckpt_dir, args.out_dir, force=args.force)
    print(f"wrote HF GPT-2 directory {out} (load with transformers.GPT2LMHeadModel.from_pretrained)")
    return 0
