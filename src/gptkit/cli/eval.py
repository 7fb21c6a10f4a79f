"""`gptkit eval ...`: measure a checkpoint. `eval lm`: nats per token / per character and bits per byte."""

from __future__ import annotations

import argparse
import json

from gptkit.devices import DEVICE_HELP, resolve_device


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="measure a checkpoint (lm: nats/token, nats/char, bits/byte)")
    sub = p.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    lm = sub.add_parser(
        "lm",
        help="language-model loss on a prepared directory's val split or a text file",
        description="Next-token loss of a checkpoint in nats per token, nats per character and bits per byte "
        "(the units of gptkit.eval.lm: characters and bytes compare across tokenizers).",
    )
    lm.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory")
    lm.add_argument(
        "--data", required=True, metavar="PREPARE_DIR|TEXT", help="a `gptkit prepare` output or a text file"
    )
    lm.add_argument("--split", choices=("val", "train"), default="val", help="split of a prepared directory")
    lm.add_argument("--max-tokens", type=int, metavar="N", help="score only the first N tokens")
    lm.add_argument("--batch-size", type=int, default=8, metavar="N", help="windows per forward pass (default 8)")
    lm.add_argument("--device", default="cpu", help=DEVICE_HELP + " (default cpu)")
    lm.add_argument("--json", action="store_true", help="print one JSON object")
    lm.set_defaults(func=cmd_eval_lm)

    clf = sub.add_parser(
        "classify",
        help="accuracy, macro-F1 and confusion matrix of a fine-tuned classifier",
        description="Score a `gptkit finetune classify` model on labelled records (builtin:zh-sentiment: its "
        "deduplicated test split).",
    )
    clf.add_argument(
        "--model", required=True, metavar="DIR", help="fine-tuned model directory or finetune run directory"
    )
    clf.add_argument(
        "--data", required=True, metavar="TEST.jsonl|builtin:zh-sentiment", help="labelled records to score"
    )
    clf.add_argument("--batch-size", type=int, default=32, metavar="N", help="records per forward pass (default 32)")
    clf.add_argument("--device", default="cpu", help=DEVICE_HELP + " (default cpu)")
    clf.add_argument("--json", action="store_true", help="print one JSON object")
    clf.set_defaults(func=cmd_eval_classify)


def cmd_eval_lm(args: argparse.Namespace) -> int:
    from gptkit.errors import ConfigError
    from gptkit.eval.lm import evaluate_lm

    for flag, value, least in (("--max-tokens", args.max_tokens, 2), ("--batch-size", args.batch_size, 1)):
        if value is not None and value < least:
            raise ConfigError(f"{flag}: must be at least {least}, got {value}")
    score = evaluate_lm(
        args.model,
        args.data,
        split=args.split,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        device=str(resolve_device(args.device)),
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(score.to_dict()))
    else:
        print(
            f"{score.nats_per_token:.4f} nats/token, {score.nats_per_char:.4f} nats/char, "
            f"{score.bits_per_byte:.4f} bits/byte ({score.tokens:,} tokens, {score.chars:,} characters, "
            f"{score.bytes:,} bytes)"
        )
    return 0


def cmd_eval_classify(args: argparse.Namespace) -> int:
    from gptkit.errors import ConfigError
    from gptkit.eval.classify import evaluate_classifier

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: must be at least 1, got {args.batch_size}")
    device = str(resolve_device(args.device))
    score = evaluate_classifier(args.model, args.data, batch_size=args.batch_size, device=device)
    if args.json:
        print(json.dumps(score.to_dict(), ensure_ascii=False))
        return 0
    print(f"{score.records:,} records: accuracy {score.accuracy:.4f}, macro-F1 {score.macro_f1:.4f}")
    width = max(len(str(x)) for x in score.labels) + 2
    print("confusion (rows: true label, columns: predicted)")
    print(" " * width + "".join(f"{x!s:>{width}}" for x in score.labels))
    for label, row in zip(score.labels, score.confusion, strict=True):
        print(f"{label!s:<{width}}" + "".join(f"{n:>{width}}" for n in row))
    return 0
