"""Chat benchmark: a base GPT pretrained here on the built-in corpora, chat SFT on builtin:zh-chat, then the
held-out instruction tasks. CPU only, within about 20 minutes (quick: about 5).

    python benchmarks/chat.py            # base 8 min + SFT 8 min (wall-clock budgets) + evaluation
    python benchmarks/chat.py --quick    # base 2 min + SFT 2 min, 300 sentiment / 100 headline prompts

Steps (all in one process, nothing downloaded):
  1. pretraining text: the built-in Chinese corpora without any held-out text of builtin:zh-chat: People's Daily
     articles of the chat sets' train split, and the zh-sentiment train + val reviews (its test reviews are the
     held-out sentiment prompts)
  2. a BPE tokenizer (--vocab) trained on that text; the base GPT (4 layers x 192, block 128) pretrained on it
     for --base-minutes
  3. `gptkit finetune chat` on builtin:zh-chat (train split; every 20th conversation validates) for --sft-minutes
  4. held-out evaluation, greedy decoding:
       sentiment: 1,736 zh-sentiment test reviews; the answer, trimmed, must be exactly 正面 / 负面 (goal >= 88%)
       headline:  People's Daily test articles; chrF (sacrebleu, chrF2 over characters) of the generated headline
                  against the true one, beside a trivial baseline: the body's first sentence cut to the true
                  headline's length
  5. the SFT loss curves (PNG) and three sample conversations
Writes benchmarks/results/chat.json (chat_quick.json) and chat_loss.png. Wall-clock budgets make a busy
machine train less, not longer: the JSON records the steps done and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from gptkit.data.chat_sets import builtin_chat, held_out_index, news_articles
from gptkit.data.zh_sentiment import zh_sentiment
from gptkit.generation.text import Generator
from gptkit.tokenizer import Tokenizer
from gptkit.tokenizer.chat_template import chat_prompt_ids
from gptkit.train.chat_sft import finetune_chat, load_chat_config
from gptkit.train.config import load_run_config
from gptkit.train.metrics import plot_losses
from gptkit.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SENTIMENT_GOAL = 0.88

BASE_SETTINGS = [
    "model.preset=small",
    "model.n_layer=4",
    "model.n_head=4",
    "model.n_embd=192",
    "model.block_size=128",
    "train.batch_size=32",
    "train.lr=2e-3",
    "train.warmup_steps=50",
    "train.max_steps=100000",  # the time budget ends the run
    "train.eval_interval=100",
    "train.eval_steps=4",
    "train.checkpoint_interval=0",
    "train.log_interval=20",
    "train.sample_tokens=0",
]
SFT_SETTINGS = [
    "train.batch_size=16",
    "train.lr=1e-3",
    "train.warmup_steps=20",
    "train.max_steps=100000",
    "train.eval_interval=50",
    "train.eval_steps=4",
    "train.checkpoint_interval=0",
    "train.log_interval=10",
]


def pretraining_text(path: Path) -> int:
    """The base model's corpus: nothing that the chat sets hold out (tested in tests/test_chat_sets.py)."""
    parts = []
    for a in news_articles():
        if a.paragraphs and not held_out_index(a.index):
            parts.append("\n".join([a.headline, *a.paragraphs]) if a.headline else "\n".join(a.paragraphs))
    sentiment = zh_sentiment()
    parts += [r.text for r in (*sentiment["train"], *sentiment["val"])]
    text = "\n\n".join(parts) + "\n"
    path.write_text(text, encoding="utf-8")
    return len(text)


def chrf(hypotheses: list[str], references: list[str]) -> float:
    import sacrebleu

    return sacrebleu.corpus_chrf(hypotheses, [references]).score


def first_sentence(body: str, n_chars: int) -> str:
    cut = min((i for i in (body.find(p) for p in "。！？") if i >= 0), default=len(body))
    return body[: cut + 1][:n_chars]


def fit_prompt(tok, messages, room: int) -> list[int]:
    """The chat prompt of `messages`, its last user message cut from the end (10 characters at a time) until
    the prompt leaves room for the answer (a few held-out reviews and articles are long in tokens)."""
    while True:
        ids = chat_prompt_ids(tok, messages)
        if len(ids) <= room:
            return ids
        messages[-1]["content"] = messages[-1]["content"][:-10]


def answer_all(gen: Generator, conversations, max_new_tokens: int, batch: int = 32) -> list[str]:
    tok = gen.tokenizer
    end = tok.special_tokens["<|im_end|>"]
    prompts = [
        fit_prompt(tok, [*c.messages[:-2], dict(c.messages[-2])], gen.model.config.block_size - max_new_tokens)
        for c in conversations
    ]
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(prompts), batch):
        out += gen.complete_batch(prompts[i : i + batch], max_new_tokens=max_new_tokens, eos_token_id=[end, tok.eot_id])
        done = min(i + batch, len(prompts))
        rate = done / (time.perf_counter() - t0)
        print(f"  {done}/{len(prompts)} prompts, {rate:.1f}/s, ETA {(len(prompts) - done) / rate:.0f} s", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 + 2 minutes, fewer evaluation prompts")
    ap.add_argument("--base-minutes", type=float, help="pretraining budget (default 8, quick 2)")
    ap.add_argument("--sft-minutes", type=float, help="chat SFT budget (default 8, quick 2)")
    ap.add_argument("--vocab", type=int, default=4000, help="BPE vocabulary of the base (default 4000)")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what the budgets count: wall time, "
        "or this process's CPU seconds (fair on a busy machine; the run then takes longer)",
    )
    ap.add_argument("--work", help="directory for the runs (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    args = ap.parse_args()
    base_min = args.base_minutes or (2 if args.quick else 8)
    sft_min = args.sft_minutes or (2 if args.quick else 8)
    n_sent, n_head = (300, 100) if args.quick else (None, None)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="gptkit-chat-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    load_before = os.getloadavg()[0]

    print(f"[1/5] pretraining text and a {args.vocab}-token BPE tokenizer", flush=True)
    text_path = work / "pretrain.txt"
    n_chars = pretraining_text(text_path)
    tok_dir = work / "tokenizer"
    # Every third paragraph is plenty for a 4k vocabulary, and a third of the time on a busy machine.
    paragraphs = text_path.read_text(encoding="utf-8").split("\n\n")
    Tokenizer.train(paragraphs[::3], vocab_size=args.vocab).save(tok_dir)

    print(f"[2/5] base model: {base_min:g} minutes of pretraining on {n_chars:,} characters", flush=True)
    base_run = work / "base"
    base_cfg = load_run_config(
        None,
        [
            *BASE_SETTINGS,
            f"data.path={json.dumps(str(text_path))}",
            f"data.tokenizer={json.dumps(str(tok_dir))}",
            f"train.time_budget_s={base_min * 60}",
            f"train.time_budget_clock={args.clock}",
        ],
    )
    base = train(base_cfg, base_run)
    if base.checkpoint is None:
        raise SystemExit("the base run saved no checkpoint (no step done within its budget?)")
    print(f"  base: {base.step} steps, val loss {base.val_loss:.3f}", flush=True)

    print(f"[3/5] chat SFT on builtin:zh-chat for {sft_min:g} minutes", flush=True)
    sft_run = work / "sft"
    sft_cfg = load_chat_config(
        None,
        [
            f"chat.base={json.dumps(str(base.checkpoint))}",
            'chat.data="builtin:zh-chat"',
            *SFT_SETTINGS,
            f"train.time_budget_s={sft_min * 60}",
            f"train.time_budget_clock={args.clock}",
        ],
    )
    sft = finetune_chat(sft_cfg, sft_run)
    print(f"  SFT: {sft.step} steps, val loss {sft.val_loss:.3f}", flush=True)
    train_minutes = (time.perf_counter() - t_start) / 60

    print("[4/5] held-out evaluation", flush=True)
    gen = Generator.load(sft.checkpoint)
    test = builtin_chat("zh-chat", "test")
    sent = [c for c in test if c.source == "sentiment"][:n_sent]
    heads = [c for c in test if c.source == "headline"][:n_head]
    print(f"  sentiment: {len(sent)} prompts", flush=True)
    sent_answers = answer_all(gen, sent, max_new_tokens=4)
    correct = sum(a.strip() == c.meta["label"] for a, c in zip(sent_answers, sent, strict=True))
    accuracy = correct / len(sent)
    print(f"  headline: {len(heads)} prompts", flush=True)
    head_answers = [a.strip() for a in answer_all(gen, heads, max_new_tokens=40)]
    truths = [c.messages[-1]["content"] for c in heads]
    baseline = [first_sentence(c.meta["body"], len(t)) for c, t in zip(heads, truths, strict=True)]
    chrf_model, chrf_base = chrf(head_answers, truths), chrf(baseline, truths)

    print("[5/5] loss curves and samples", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = plot_losses(sft_run, RESULTS / ("chat_quick_loss.png" if args.quick else "chat_loss.png"))
    samples = []
    chatter = [c for c in test if c.source == "chatterbot"][:1]
    for c, answer in [
        (chatter[0], answer_all(gen, chatter, max_new_tokens=40)[0]) if chatter else (None, None),
        (sent[0], sent_answers[0]),
        (heads[0], head_answers[0]),
    ]:
        if c is not None:
            samples.append({"user": c.messages[-2]["content"], "model": answer, "reference": c.messages[-1]["content"]})

    result = {
        "quick": args.quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "load_average_start": round(load_before, 1),
        "load_average_end": round(os.getloadavg()[0], 1),
        "note": "shared machine: other jobs ran at the same time; wall-clock budgets, so a busy machine trains less",
        "clock": args.clock,
        "base": {"minutes": base_min, "steps": base.step, "val_loss": base.val_loss, "vocab": args.vocab},
        "sft": {"minutes": sft_min, "steps": sft.step, "val_loss": sft.val_loss, "train_loss": sft.train_loss},
        "train_minutes_total": round(train_minutes, 2),
        "sentiment": {"n": len(sent), "correct": correct, "accuracy": accuracy, "goal": SENTIMENT_GOAL},
        "headline": {"n": len(heads), "chrf_model": chrf_model, "chrf_first_sentence_baseline": chrf_base},
        "loss_png": str(png.relative_to(ROOT)),
        "samples": samples,
        "total_minutes": round((time.perf_counter() - t_start) / 60, 2),
    }
    out = RESULTS / ("chat_quick.json" if args.quick else "chat.json")
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print()
    print("| measure | value |\n|---|---|")
    print(f"| base pretraining | {base.step} steps in {base_min:g} min, val loss {base.val_loss:.3f} |")
    print(f"| chat SFT (builtin:zh-chat) | {sft.step} steps in {sft_min:g} min, val loss {sft.val_loss:.3f} |")
    print(f"| held-out sentiment accuracy | {accuracy:.1%} ({correct}/{len(sent)}; goal >= {SENTIMENT_GOAL:.0%}) |")
    print(f"| held-out headline chrF | {chrf_model:.1f} (first-sentence baseline {chrf_base:.1f}; n={len(heads)}) |")
    print(f"| total time | {result['total_minutes']:.1f} min (load average {load_before:.1f} at the start) |")
    for s in samples:
        print(f"\nuser> {s['user']}\nbot> {s['model']}\n(reference: {s['reference']})")
    print(f"\nwrote {out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
