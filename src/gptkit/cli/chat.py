"""`gptkit chat` (a terminal conversation) and `gptkit finetune chat` (chat SFT of a base checkpoint)."""

from __future__ import annotations

import argparse
import sys

from gptkit.generation.settings import flag_fields

DTYPES = ("auto", "float32", "bfloat16", "float16")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "chat",
        help="talk to a checkpoint in the terminal (chat models by their template; base models continue text)",
        description="A terminal conversation with a checkpoint: streaming answers, multi-turn history, "
        "/reset, /system TEXT, /save FILE, /help. Ctrl-C stops an answer, Ctrl-D exits.",
    )
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory")
    p.add_argument("--system", metavar="TEXT", help="system message to start with (chat models)")
    for name, options in flag_fields():  # the sampling flags of `gptkit generate`, defined once
        p.add_argument("--" + name.replace("_", "-"), **options, default=None)
    p.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="stop string, not returned (repeatable; \\n ok)"
    )
    p.add_argument("--allow-invalid-utf8", action="store_true", help="as gptkit generate")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="default: bfloat16 on CUDA, else float32")
    p.set_defaults(func=cmd_chat)


def register_finetune_chat(sub: argparse._SubParsersAction) -> None:
    """`finetune chat`, added to the `finetune` group (gptkit.cli.finetune)."""
    p = sub.add_parser(
        "chat",
        help="supervised chat fine-tuning of a base checkpoint on conversations",
        description="Chat SFT: loss on the assistant turns only, conversations packed with a document mask. "
        "Checkpoints land in RUN_DIR/checkpoints (RUN_DIR/latest); each is a chat model for gptkit chat / serve.",
    )
    p.add_argument("--base", metavar="CKPT", help="base model checkpoint (its tokenizer comes with it)")
    p.add_argument("--data", metavar="CONV.jsonl|builtin:NAME", help="builtin:zh-chat (default), builtin:en-chat, "
                   'or JSONL of {"messages": [{"role", "content"}, ...]}')  # fmt: skip
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory: checkpoints, metrics, config")
    p.add_argument("--config", metavar="FILE.toml", help="settings file with [chat] and [train] tables")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="e.g. --set train.max_steps=300"
    )
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its newest checkpoint")
    p.set_defaults(func=cmd_finetune_chat)


def cmd_finetune_chat(args: argparse.Namespace) -> int:
    from gptkit.cli.train import settings_file, toml_string
    from gptkit.train.chat_sft import finetune_chat, load_chat_config

    overrides = list(args.set)
    base = settings_file(args.config, args.out, resume=args.resume)
    if args.base:
        overrides.append(f"chat.base={toml_string(args.base)}")
    if args.data:
        overrides.append(f"chat.data={toml_string(args.data)}")
    cfg = load_chat_config(base, overrides)
    result = finetune_chat(cfg, args.out, resume=args.resume)
    if result.interrupted:
        return 130 if result.interrupted == "SIGINT" else 143
    print(f"chat model: {result.checkpoint}  (talk to it: gptkit chat --model {result.checkpoint})")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    import torch

    from gptkit.cli.generate import unescape
    from gptkit.generation.chat import ChatSession, run_repl
    from gptkit.generation.text import Generator

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    dtype_name = args.dtype if args.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32")
    generator = Generator.load(args.model, device=device, dtype=getattr(torch, dtype_name))
    options = {name: getattr(args, name) for name, _ in flag_fields() if getattr(args, name) is not None}
    session = ChatSession(
        generator,
        options=options,
        system=args.system,
        stop=[unescape(s) for s in args.stop],
        valid_utf8=not args.allow_invalid_utf8,
    )
    if sys.stdin.isatty():
        import readline  # noqa: F401  (line editing and history for input())

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    return run_repl(session, input, write)
