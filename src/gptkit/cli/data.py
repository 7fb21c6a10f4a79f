"""`gptkit prepare` (raw text -> clean documents -> token shards) and `gptkit data inspect DIR`."""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    from gptkit.data.dedup_config import DedupConfig
    from gptkit.data.filters import FilterConfig

    p = subparsers.add_parser(
        "prepare",
        help="clean, deduplicate and tokenize a corpus into token shards (resumable)",
        description="Raw text -> clean, deduplicated documents (DIR/documents), dropped documents and lines "
        "with the rule that dropped them (DIR/rejected), a tokenizer and train/val token shards, and "
        "DIR/report.json. Re-running with the same arguments skips finished work.",
    )
    p.add_argument(
        "--input", nargs="+", required=True, metavar="PATH",
        help="files (.txt/.md: one document per file, or per line with --doc-per-line; .jsonl/.jsonl.gz with a "
        "'text' field), directories, or builtin:zh-reviews / builtin:zh-news",
    )  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created; resumed if it exists)")
    tok = p.add_mutually_exclusive_group()
    tok.add_argument("--tokenizer", metavar="DIR", help="tokenize with this tokenizer (gptkit or HF GPT-2 files)")
    tok.add_argument("--vocab-size", type=int, metavar="N", help="train a tokenizer of N tokens on the train documents")
    p.add_argument("--tokenizer-kind", choices=("bpe", "char"), default="bpe", help="with --vocab-size (default bpe)")
    p.add_argument(
        "--tokenizer-sample-mb", type=float, default=256.0, metavar="MB",
        help="train the tokenizer on an even sample of at most this much train text (default 256)",
    )  # fmt: skip
    p.add_argument("--lang", choices=("zh", "en", "auto"), default="auto", help="document language (default: detect)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes (default: all cores)")
    p.add_argument(
        "--executor", choices=("local", "ray"), default="local",
        help="local: a process pool on this machine (default); ray: Ray tasks "
        "(pip install 'gptkit[ray]'; docs/scale.md)",
    )  # fmt: skip
    p.add_argument(
        "--ray-address", metavar="auto|HOST:PORT", default=None,
        help="with --executor ray: the cluster to join (default: start one on this machine with --workers CPUs)",
    )  # fmt: skip
    p.add_argument(
        "--dedup-partitions", type=int, default=1, metavar="N",
        help="hash partitions of the exact and LSH dedup tasks, so that no task holds every document (default 1)",
    )  # fmt: skip
    p.add_argument("--val-fraction", type=float, default=0.01, help="share of documents in val (default 0.01)")
    p.add_argument("--t2s", action="store_true", help="convert Traditional Chinese to Simplified (OpenCC)")
    p.add_argument("--doc-per-line", action="store_true", help=".txt/.md inputs hold one document per line")
    p.add_argument("--no-dedup", action="store_true", help="skip exact and near-duplicate removal")
    p.add_argument("--no-near-dedup", action="store_true", help="skip near-duplicate (MinHash) removal only")
    p.add_argument(
        "--dedup-threshold", type=float, default=DedupConfig.threshold,
        help=f"near duplicates: estimated Jaccard similarity of 5-gram shingles (default {DedupConfig.threshold})",
    )  # fmt: skip
    p.add_argument(
        "--min-words", type=int, default=FilterConfig.min_words,
        help=f"drop English documents shorter than this (default {FilterConfig.min_words}; Gopher uses 50)",
    )  # fmt: skip
    p.add_argument(
        "--min-chars", type=int, default=FilterConfig.min_chars,
        help=f"drop Chinese documents with fewer CJK/alphanumeric characters (default {FilterConfig.min_chars})",
    )  # fmt: skip
    p.add_argument("--split-mb", type=float, default=None, help="input split size in MB (default: ~4 per worker)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_prepare)

    data = subparsers.add_parser("data", help="inspect prepared data")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    ins = sub.add_parser(
        "inspect", help="validate every token shard of a prepared directory and decode a few documents"
    )
    ins.add_argument("dir", help="a directory written by `gptkit prepare`")
    ins.add_argument("--samples", type=int, default=3, help="documents to decode and show (default 3)")
    ins.add_argument("--seed", type=int, default=0, help="which documents are sampled (default 0)")
    ins.set_defaults(func=cmd_inspect)


def cmd_prepare(args: argparse.Namespace) -> int:
    from gptkit.data.pipeline import PrepareConfig, prepare
    from gptkit.data.report import print_report

    cfg = PrepareConfig(
        inputs=tuple(args.input),
        out=args.out,
        doc_per_line=args.doc_per_line,
        lang=args.lang,
        t2s=args.t2s,
        min_words=args.min_words,
        min_chars=args.min_chars,
        exact_dedup=not args.no_dedup,
        near_dedup=not (args.no_dedup or args.no_near_dedup),
        dedup_threshold=args.dedup_threshold,
        val_fraction=args.val_fraction,
        tokenizer=args.tokenizer,
        vocab_size=args.vocab_size,
        tokenizer_kind=args.tokenizer_kind,
        tokenizer_sample_bytes=int(args.tokenizer_sample_mb * 1e6),
        workers=args.workers,
        executor=args.executor,
        ray_address=args.ray_address,
        dedup_partitions=args.dedup_partitions,
        split_bytes=int(args.split_mb * (1 << 20)) if args.split_mb else None,
        progress=not args.no_progress,
    )
    report = prepare(cfg)
    print_report(report)
    print(f"wrote {args.out}/report.json")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gptkit.data.inspect import inspect_dataset

    res = inspect_dataset(args.dir, n_samples=args.samples, seed=args.seed)
    console = Console(width=120)
    if res.tokenizer:
        console.print(f"tokenizer: {res.tokenizer}")
    t = Table(title=f"{args.dir}: token shards")
    for col in ("shard", "split", "documents", "tokens", "status"):
        t.add_column(col, justify="right" if col in ("documents", "tokens") else "left")
    for s in res.shards:
        t.add_row(s.path.name, s.split, f"{s.docs:,}", f"{s.tokens:,}", "ok" if s.problem is None else "BAD")
    console.print(t)
    for split in sorted({s.split for s in res.shards}):
        ok = [s for s in res.shards if s.split == split and s.problem is None]
        console.print(f"{split}: {len(ok)} valid shards, {sum(s.docs for s in ok):,} documents, "
                      f"{sum(s.tokens for s in ok):,} tokens")  # fmt: skip
    for split, name, k, text in res.samples:
        console.print(f"\n[bold]{split} {name} document {k}:[/bold]")
        console.print(text, markup=False)
    if res.problems:
        console.print(f"\n[bold red]{len(res.problems)} problem(s):[/bold red]")
        for p in res.problems:
            console.print(f"  {p}", markup=False)
        return 1
    console.print("\nall shards valid")
    return 0
