"""`gptkit tokenizer train`, `gptkit tokenizer extend` and `gptkit tokenizer report`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from gptkit.tokenizer import DEFAULT_PRETOKENIZER, PRETOKENIZERS

    tok = subparsers.add_parser("tokenizer", help="train a tokenizer, or report how one does on some text")
    sub = tok.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)

    train = sub.add_parser("train", help="train a byte-level BPE (or character) tokenizer and save it to a directory")
    train.add_argument(
        "--input", nargs="+", required=True, metavar="PATH", help=".txt, .jsonl(.gz) with a 'text' field, directories"
    )
    train.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        help="vocabulary size including the 3 special tokens (required for bpe; for char, the default keeps "
        "every character seen)",
    )
    train.add_argument("--out", required=True, help="directory to write (e.g. a checkpoint directory)")
    train.add_argument(
        "--kind",
        choices=("bpe", "char"),
        default="bpe",
        help="bpe (default): byte-level BPE of --vocab-size tokens, any text encodes; char: one token per character "
        "of the input; a --vocab-size below its distinct characters keeps the most frequent and encodes the rest "
        "as UTF-8 byte tokens (see docs/tokenizer.md)",
    )
    train.add_argument(
        "--pretokenizer",
        choices=tuple(PRETOKENIZERS),
        default=DEFAULT_PRETOKENIZER,
        help=f"bpe pre-tokenization rule (default {DEFAULT_PRETOKENIZER}; see docs/tokenizer.md)",
    )
    train.add_argument("--min-frequency", type=int, default=2, help="bpe: merge only pairs seen this often")
    train.set_defaults(func=cmd_train)

    extend = sub.add_parser(
        "extend",
        help="learn N new tokens from a corpus for a checkpoint's BPE, grow its model to match, write a new checkpoint",
        description="Old token ids stay as they are and text without the new tokens encodes as before; new "
        "embedding (and untied head) rows start from the rows of the old tokens each new token used to split "
        "into: --init centred (default: their mean, minus the part all new tokens share, scaled to half an old "
        "row's norm, plus N(0, 0.02) noise), mean (their plain mean), or random (N(0, 0.02)). Then, unless "
        "--no-prior, each new output row gets a unigram prior fitted on the training text (--prior-input, "
        "default --input): a shared logit offset plus a weight of the token's log-frequency, along the "
        "model's mean final hidden state. docs/continue.md says why. Then continue training with "
        "`gptkit train --init-from OUT`.",
    )
    extend.add_argument("--model", required=True, metavar="CKPT", help="gptkit checkpoint with a BPE tokenizer")
    extend.add_argument("--input", nargs="+", required=True, metavar="PATH", help="corpus to learn from (as for train)")
    extend.add_argument("--add", type=int, required=True, metavar="N", help="number of tokens to add")
    extend.add_argument("--out", required=True, metavar="DIR", help="new checkpoint directory")
    extend.add_argument(
        "--init",
        choices=("centred", "mean", "random"),
        default="centred",
        help="new rows: centred (default), mean or random",
    )
    extend.add_argument(
        "--prior-input",
        nargs="+",
        metavar="PATH",
        help="the text the model will be trained on, to fit the new rows' unigram prior (default: --input)",
    )
    extend.add_argument("--no-prior", action="store_true", help="no unigram prior on the new rows (init only)")
    extend.add_argument("--min-frequency", type=int, default=2, help="merge only pairs seen this often")
    extend.add_argument("--seed", type=int, default=0, help="seed of the noise of --init centred / random")
    extend.set_defaults(func=cmd_extend)

    report = sub.add_parser(
        "report", help="tokens, bytes/token and characters/token by script (Han, Latin, other), encode speed"
    )
    report.add_argument("dir", help="tokenizer or checkpoint directory (gptkit or HF GPT-2 files)")
    report.add_argument("--input", nargs="+", required=True, metavar="PATH", help="text to measure (as for train)")
    report.add_argument("--max-chars", type=int, default=None, help="measure only the first N characters")
    report.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    report.set_defaults(func=cmd_report)


def cmd_train(args: argparse.Namespace) -> int:
    from gptkit.tokenizer import HF_FILES, META_FILE, Tokenizer, TokenizerError

    if args.kind == "bpe" and args.vocab_size is None:
        raise TokenizerError("--vocab-size is required for a bpe tokenizer")
    start = time.perf_counter()
    tok = Tokenizer.train(
        [Path(p) for p in args.input],
        vocab_size=args.vocab_size,
        kind=args.kind,
        pretokenizer=args.pretokenizer,
        min_frequency=args.min_frequency,
        progress=True,
    )
    seconds = time.perf_counter() - start
    out = tok.save(args.out)
    asked = f" ({args.vocab_size:,} asked)" if args.vocab_size and args.vocab_size != tok.vocab_size else ""
    print(f"trained {tok.kind} tokenizer in {seconds:.1f} s: vocab_size {tok.vocab_size:,}{asked}")
    print(f"special tokens: {tok.special_tokens}")
    print(f"fingerprint: {tok.fingerprint}")
    written = [name for name in (*HF_FILES, META_FILE) if (Path(out) / name).is_file()]
    print(f"wrote {', '.join(written)} to {out}")
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    from gptkit.vocab import extend_checkpoint

    start = time.perf_counter()
    inputs = [Path(p) for p in args.input]
    prior_inputs = [Path(p) for p in args.prior_input] if args.prior_input else None
    res = extend_checkpoint(
        args.model,
        inputs,
        args.add,
        args.out,
        init=args.init,
        prior=not args.no_prior,
        prior_inputs=prior_inputs,
        min_frequency=args.min_frequency,
        seed=args.seed,
    )
    added = res.new_vocab_size - res.old_vocab_size
    short = f" (the corpus had pairs for only {added} of {args.add})" if added < args.add else ""
    print(
        f"added {added:,} tokens{short}: vocab_size {res.old_vocab_size:,} -> {res.new_vocab_size:,}, "
        f"new rows: {res.init} ({time.perf_counter() - start:.1f} s)"
    )
    if res.prior is not None:
        f = res.prior
        print(
            f"unigram prior on {f.windows * f.window_tokens:,} training tokens: offset {f.beta:.2f}, "
            f"log-frequency weight {f.gamma:.2f}; loss {f.loss_before:.3f} -> {f.loss_after:.3f} nats/token, "
            f"p(new token) {f.new_mass_before:.3f} -> {f.new_mass_after:.3f} (new tokens: {f.new_target_share:.3f} "
            "of the targets)"
        )
    (c0, c1), (h0, h1) = res.chars_per_token, res.han_chars_per_token
    print(f"chars/token on the corpus: {c0:.3f} -> {c1:.3f}")
    if h0 is not None:
        print(f"Han chars/token on the corpus: {h0:.3f} -> {h1:.3f}")
    print(f"wrote checkpoint {res.out} (continue with: gptkit train --init-from {res.out} --data ...)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gptkit.tokenizer import Tokenizer
    from gptkit.tokenizer.report import tokenizer_report

    tok = Tokenizer.load(args.dir)
    report = tokenizer_report(tok, [Path(p) for p in args.input], max_chars=args.max_chars, progress=True)
    table = Table(title=f"{args.dir}: {tok.kind}, vocab_size {tok.vocab_size:,}, {report.n_texts:,} texts")
    for col in ("script", "tokens", "bytes", "chars", "bytes/token", "chars/token"):
        table.add_column(col, justify="left" if col == "script" else "right")
    for row in report.rows:
        table.add_row(
            row.script,
            f"{row.tokens:,}",
            f"{row.bytes:,}",
            f"{row.chars:,}",
            f"{row.bytes_per_token:.2f}",
            f"{row.chars_per_token:.2f}",
        )
    Console(width=120).print(table)
    print(
        f"encode throughput (encode_batch): {report.encode_mb_s_one_thread:.2f} MB/s on 1 thread, "
        f"{report.encode_mb_s_all_threads:.2f} MB/s on all {report.threads} cores"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0
