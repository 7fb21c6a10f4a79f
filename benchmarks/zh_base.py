"""The base GPT of the fine-tuning benchmarks (benchmarks/finetune.py, benchmarks/chat.py): pretrained here, on
this machine, for a fixed wall-clock budget, on the built-in Chinese corpora without any text either benchmark
scores on. Made once and shared: both benchmarks take `--base DIR` (this script's output), or make their own.

    python benchmarks/zh_base.py --out /tmp/zh-base --minutes 11     # DIR/model (checkpoint) + DIR/base.json
    python benchmarks/zh_base.py --out /tmp/zh-base --steps 1300     # a fixed number of steps (a busy machine)

The pretraining text (tested for leaks in tests/test_zh_base.py):
  - the People's Daily articles of builtin:zh-chat's train split (headline and body; every 10th article is held
    out: the headline task's test articles), and
  - the reviews of builtin:zh-sentiment's train + val splits (never its 1,736 test reviews, which are the test
    split of benchmarks/finetune.py and the held-out sentiment prompts of benchmarks/chat.py),
as documents in a fixed shuffled order, so that the text file's last 10% (the LM's validation) holds both kinds.
A BPE of VOCAB tokens is trained on every third document; the model is the CPU recipe of gptkit.demo (the
fastest-learning one measured on this CPU, docs/training.md) at BASE_SHAPE (4 x 192, context 256, bfloat16);
warmup-stable-decay over the time budget. DIR/base.json records the wall time of the whole build (text +
tokenizer + pretraining), which benchmarks/finetune.py adds to its fine-tuning time for the 20-minute goal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

VOCAB = 4000


# The shape of the base: 4 layers x 192, in train.dtype=auto (bfloat16 autocast where the CPU has bf16 kernels,
# else float32: gptkit.train.trainer.resolve_dtype). On round 3's CPU (AVX512_BF16) fwd + bwd + AdamW CPU
# seconds per step of 8 x 256 tokens (1 thread, interleaved, dev): 4 x 128 fp32 0.426 / bf16 0.356, 4 x 192
# 0.766 / 0.493, 6 x 256 1.528 / 0.878. Context 256 holds 99% of the reviews whole (11.5% are longer than 128
# tokens) and the chat prompts; batch 8 x 256 = the demo's 16 x 128 tokens.
BASE_SHAPE = [
    "model.n_layer=4",  # pinned: gptkit.demo's CPU_SETTINGS went to 3 layers in round 9, and the base followed it
    "model.n_embd=192",
    "model.n_head=4",
    "model.block_size=256",
    "train.batch_size=8",
]
BASE_FILE = "base.json"
# Pretraining minutes of the base: with the main fine-tuning (about 8 minutes at this shape) and the text and
# tokenizer, 20 minutes (the goal of benchmarks/finetune.py).
BASE_MINUTES = 10.5
SHUFFLE_SEED = 0
# The last 10% of the shuffled documents validate the LM (val loss only; nothing is chosen on it).
VAL_DOCS_FRACTION = 0.1
# Each review of the train part appears this many times in it (the fine-tuning task's domain weighted up: once,
# the reviews are 41% of the characters, 1.14M of 2.78M; three times, 68%). Chosen on the zh-sentiment val split
# at a small scale (docs/finetune.md, "Review weight").
REVIEW_REPEATS = 3


def base_settings() -> list[str]:
    """gptkit.demo's CPU recipe (rotary, relu², RMSNorm, QK-norm, Muon, warmup-stable-decay) at the base's shape
    (BASE_SHAPE); its train.dtype=auto is bfloat16 autocast only where the CPU has bf16 kernels."""
    from gptkit.demo import CPU_SETTINGS

    return [
        *CPU_SETTINGS,
        *BASE_SHAPE,
        "train.cpu_threads=2",  # not from the load average: other jobs wait (niced) while benchmarks run
        "train.max_steps=1000000",  # the time budget ends the run
        "train.eval_interval=250",
        "train.eval_steps=10",
        "train.checkpoint_interval=0",
        "train.log_interval=50",
        "train.sample_tokens=0",
    ]


def pretraining_parts(review_repeats: int = REVIEW_REPEATS) -> tuple[list[str], list[str]]:
    """The base's corpus (see the module docstring) as (train documents, val documents). All documents in their
    fixed shuffled order; the last VAL_DOCS_FRACTION of them validate. The train part then holds each of its
    reviews `review_repeats` times (the task's domain weighted up), reshuffled; no val document is in it."""
    from gptkit.data.chat_sets import held_out_index, news_articles
    from gptkit.data.zh_sentiment import zh_sentiment

    if review_repeats < 1:
        raise SystemExit(f"review_repeats: must be >= 1, got {review_repeats}")
    news = [
        "\n".join([a.headline, *a.paragraphs]) if a.headline else "\n".join(a.paragraphs)
        for a in news_articles()
        if a.paragraphs and not held_out_index(a.index)
    ]
    split = zh_sentiment()
    reviews = [r.text for r in (*split["train"], *split["val"])]
    docs = [*news, *reviews]
    random.Random(SHUFFLE_SEED).shuffle(docs)
    n_val = round(len(docs) * VAL_DOCS_FRACTION)
    train_docs, val_docs = docs[:-n_val], docs[-n_val:]
    if review_repeats > 1:
        review_set = set(reviews)
        train_docs = train_docs + [d for d in train_docs if d in review_set] * (review_repeats - 1)
        random.Random(SHUFFLE_SEED + 1).shuffle(train_docs)
    return train_docs, val_docs


def pretraining_documents(review_repeats: int = REVIEW_REPEATS) -> list[str]:
    """The documents of the base's text file in order: the train part, then the val part."""
    train_docs, val_docs = pretraining_parts(review_repeats)
    return [*train_docs, *val_docs]


def build_base(
    out: Path,
    minutes: float,
    vocab: int = VOCAB,
    clock: str = "wall",
    overrides: tuple[str, ...] = (),
    review_repeats: int = REVIEW_REPEATS,
    steps: int = 0,
) -> dict[str, Any]:
    """Make the base in `out` (replaced): out/model is the pretrained checkpoint; returns base.json's record.
    `overrides`: settings applied after base_settings() (`--set`, for development comparisons). `steps` > 0:
    that many pretraining steps (the schedule over steps) instead of `minutes`, the same base however busy
    the machine is."""
    if steps < 0:
        raise SystemExit(f"steps: must be >= 0, got {steps}")
    budget = [f"train.max_steps={steps}", "train.time_budget_s=0"] if steps else [f"train.time_budget_s={minutes * 60}"]
    from gptkit.tokenizer import Tokenizer
    from gptkit.train.config import load_run_config
    from gptkit.train.trainer import train

    t0 = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    train_docs, val_docs = pretraining_parts(review_repeats)
    docs = [*train_docs, *val_docs]
    train_text = "\n\n".join(train_docs) + "\n\n"
    text = train_text + "\n\n".join(val_docs) + "\n"
    text_path = out / "pretrain.txt"
    text_path.write_text(text, encoding="utf-8")
    # data.val_fraction that cuts the file exactly after the train part: int(len(text) * (1 - f)) == len(train_text)
    val_fraction = (len(text) - len(train_text) - 0.5) / len(text)
    if int(len(text) * (1 - val_fraction)) != len(train_text):
        raise SystemExit("zh_base: the val fraction does not cut the text after the train part")
    tok_dir = out / "tokenizer"
    Tokenizer.train(train_docs[::3], vocab_size=vocab).save(tok_dir)
    tokenizer_s = time.perf_counter() - t0
    print(f"base: {len(docs):,} documents, {text_path.stat().st_size:,} bytes; tokenizer in {tokenizer_s:.0f} s")
    cfg = load_run_config(
        None,
        [
            *base_settings(),
            f"data.path={json.dumps(str(text_path))}",
            f"data.tokenizer={json.dumps(str(tok_dir))}",
            f"data.val_fraction={val_fraction!r}",
            *budget,
            f"train.time_budget_clock={clock}",
            *overrides,
        ],
    )
    result = train(cfg, out / "run")
    if result.interrupted or result.checkpoint is None:
        raise SystemExit(f"base pretraining stopped ({result.interrupted or 'no checkpoint'}); no base written")
    shutil.copytree(result.checkpoint, out / "model")
    record = {
        "model": str(out / "model"),
        "documents": len(docs),
        "review_repeats": review_repeats,
        "val_documents": len(val_docs),
        "text_bytes": text_path.stat().st_size,
        "vocab": vocab,
        "minutes_budget": 0 if steps else minutes,
        "steps_budget": steps,
        "clock": clock,
        "steps": result.step,
        "val_loss": result.val_loss,
        "settings": [*base_settings(), *overrides],
        "tokenizer_s": round(tokenizer_s, 1),
        "build_s": round(time.perf_counter() - t0, 1),  # text + tokenizer + pretraining: what the goals count
        "load_average_end": round(os.getloadavg()[0], 2),
    }
    (out / BASE_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def read_base(directory: Path) -> dict[str, Any]:
    """base.json of a base made by build_base (its `model` is the checkpoint directory)."""
    path = directory / BASE_FILE
    if not path.is_file():
        raise SystemExit(f"{directory}: no {BASE_FILE} (make it with: python benchmarks/zh_base.py --out {directory})")
    return json.loads(path.read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory of the base (replaced)")
    ap.add_argument("--minutes", type=float, help=f"pretraining budget in minutes (default {BASE_MINUTES:g})")
    ap.add_argument(
        "--steps",
        type=int,
        default=0,
        help="a fixed number of pretraining steps instead of the time budget (on a busy machine)",
    )
    ap.add_argument("--vocab", type=int, default=VOCAB, help=f"BPE vocabulary (default {VOCAB})")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="what the budget counts")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a training setting after the base's own"
    )
    ap.add_argument(
        "--review-repeats",
        type=int,
        default=REVIEW_REPEATS,
        help=f"times each train-part review is in the text (default {REVIEW_REPEATS})",
    )
    args = ap.parse_args()
    if args.steps < 0:
        ap.error(f"--steps: must be >= 0 (0: the time budget), got {args.steps}")
    if args.steps and args.minutes is not None:
        ap.error("--steps and --minutes: give one of them")
    minutes = BASE_MINUTES if args.minutes is None else args.minutes
    record = build_base(
        args.out, minutes, args.vocab, args.clock, tuple(args.set), args.review_repeats, steps=args.steps
    )
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
