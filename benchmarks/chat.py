"""Chat benchmark: a base GPT pretrained here on the built-in corpora, chat SFT on builtin:zh-chat, then the
held-out instruction tasks. CPU only; the SFT within a wall-clock budget (<= 20 minutes, the issue's goal).

    python benchmarks/chat.py --base /tmp/zh-base    # a base from benchmarks/zh_base.py (shared with finetune.py)
    python benchmarks/chat.py                         # make the base here first (--base-minutes)
    python benchmarks/chat.py --quick                 # 2-minute base + 2-minute SFT, 300 / 100 prompts

Steps (all in one process, nothing downloaded):
  1. the base: benchmarks/zh_base.py (People's Daily articles of builtin:zh-chat's train split + the zh-sentiment
     train + val reviews, so no held-out headline article or sentiment review; a 4k BPE; gptkit.demo's CPU
     recipe at 4 x 192, context 256, bf16), made here or reused with --base
  2. `gptkit finetune chat` on builtin:zh-chat (train split; every 20th conversation validates) for --sft-minutes
  3. choices on the dev set, never on the test split (see dev_sets): the SFT keeps a checkpoint every
     --checkpoint-every steps (the newest CANDIDATES of them and the best by SFT val loss); the one whose greedy
     sentiment answers are right most often on the dev reviews is the chat model (ties: the later step); on the
     dev headlines, the decoding of HEADLINE_DECODES with the best chrF
  4. held-out evaluation of that checkpoint, greedy decoding, one look each:
       sentiment: 1,736 zh-sentiment test reviews; the answer, trimmed, must be exactly 正面 / 负面 (goal >= 88%)
       headline:  People's Daily test articles; chrF (sacrebleu, chrF2 over characters) of the generated headline
                  against the true one, plain greedy and with the dev-chosen decoding,
                  beside a trivial baseline: the body's first sentence cut to the true headline's length
  5. the SFT loss curves (PNG) and three sample conversations
Writes benchmarks/results/chat.json (chat_quick.json) and chat_loss.png. Wall-clock budgets make a busy
machine train less, not longer: the JSON records the steps done and the load average.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from gptkit.checkpoint import WEIGHTS_FILE
from gptkit.data.chat_sets import builtin_chat, sentiment
from gptkit.data.conversations import Conversation, load_conversations
from gptkit.errors import CheckpointError
from gptkit.generation.text import Generator
from gptkit.tokenizer.chat_template import chat_prompt_ids
from gptkit.train.chat_sft import VAL_EVERY, finetune_chat, load_chat_config
from gptkit.train.checkpoint import OPTIMIZER_FILE, STATE_FILE, list_checkpoints
from gptkit.train.metrics import plot_losses

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zh_base import BASE_MINUTES, build_base, read_base

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SENTIMENT_GOAL = 0.88

SFT_SETTINGS = [
    "train.batch_size=8",  # packed rows of the base's context (256): 2,048 positions a step
    "train.dtype=auto",  # bf16 autocast (loss, weights fp32) where the CPU has bf16 kernels (zh_base)
    "train.lr=1e-3",
    "train.warmup_steps=20",
    "train.max_steps=100000",
    "train.eval_interval=50",
    "train.eval_steps=4",
    "train.log_interval=10",
    "train.cpu_threads=2",
]


# The SFT checkpoints the dev set chooses among: the newest CANDIDATES (the trainer keeps them, and the one with
# the lowest SFT val loss) of those written every --checkpoint-every steps and at the end.
CANDIDATES = 4
CHECKPOINT_EVERY = 500  # steps: a 15-minute SFT at about 3.3 steps/s (bf16) makes ~3,000 steps
# Beside the checkpoints, the dev set also scores the element-wise weight average of the newest n of them, for
# each n here (round 10): one only becomes the chat model when its dev accuracy beats every single checkpoint's.
AVERAGES = (2, 4)
# Greedy decodings of the headline tried on the dev headlines, against loops ("出版社出版社..."); on ties the
# first listed wins. gptkit's no-repeat n-gram constraint counts the prompt too (as HF's does), so a small n
# also forbids copying the body's n-grams, which headlines do; OpenAI's presence penalty counts only the
# tokens generated so far (logit - p for each token already in the answer).
HEADLINE_DECODES: dict[str, dict[str, float]] = {
    "greedy": {},
    "no-repeat 2": {"no_repeat_ngram_size": 2},
    "no-repeat 3": {"no_repeat_ngram_size": 3},
    "no-repeat 4": {"no_repeat_ngram_size": 4},
    "presence 0.5": {"presence_penalty": 0.5},
    "presence 1": {"presence_penalty": 1.0},
    "presence 2": {"presence_penalty": 2.0},
}
HEADLINE_TOKENS = 40


def dev_sets(data: str) -> tuple[list[Conversation], list[Conversation]]:
    """(sentiment, headline) conversations the benchmark chooses its settings on, none trained on and none
    from a test split: the zh-sentiment val split as sentiment prompts (builtin:zh-chat trains on its train
    split only), and the SFT's own validation conversations of both kinds (every VAL_EVERY-th of `data`'s
    train split, which the SFT never trains on). A val prompt equal to a training one (two reviews sharing
    their first SENTIMENT_CHARS characters) is left out."""
    convs = load_conversations(data, "train")
    sft_train = [c for i, c in enumerate(convs) if i % VAL_EVERY != VAL_EVERY - 1]
    sft_val = [c for i, c in enumerate(convs) if i % VAL_EVERY == VAL_EVERY - 1]
    trained = {c.messages[-2]["content"] for c in sft_train}
    sent = [*sentiment("val"), *(c for c in sft_val if c.source == "sentiment")]
    heads = [c for c in sft_val if c.source == "headline"]
    return [c for c in sent if c.messages[-2]["content"] not in trained], heads


def average_checkpoints(paths: list[Path], out: Path) -> Path:
    """A model directory `out` whose weights are the element-wise mean of the checkpoints `paths` (in float32,
    stored in their dtype), with the config and tokenizer files of the last one; no optimizer or trainer state,
    so it is no trainer checkpoint. Checkpoints with different tensor names or shapes are refused by name."""
    if not paths:
        raise ValueError("average_checkpoints: no checkpoint to average")
    states = [load_file(str(Path(p) / WEIGHTS_FILE)) for p in paths]
    first = states[0]
    for path, state in zip(paths[1:], states[1:], strict=True):
        if set(state) != set(first):
            raise CheckpointError(f"{Path(path) / WEIGHTS_FILE}: tensor names differ from {paths[0]}'s")
        for name, tensor in state.items():
            if tensor.shape != first[name].shape:
                raise CheckpointError(
                    f"{Path(path) / WEIGHTS_FILE}: {name}: shape {tuple(tensor.shape)}, "
                    f"not {tuple(first[name].shape)} as in {paths[0]}"
                )
    mean = {
        name: torch.stack([s[name].float() for s in states]).mean(0).to(tensor.dtype) for name, tensor in first.items()
    }
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(paths[-1], out, ignore=shutil.ignore_patterns(WEIGHTS_FILE, OPTIMIZER_FILE, STATE_FILE))
    save_file(mean, str(out / WEIGHTS_FILE), metadata={"format": "pt", "producer": "gptkit"})
    (out / "averaged_from.json").write_text(json.dumps([str(p) for p in paths], indent=1) + "\n", encoding="utf-8")
    return out


def sentiment_correct(answers: list[str], conversations: list[Conversation]) -> int:
    """How many answers, trimmed, are exactly their conversation's label."""
    return sum(a.strip() == c.messages[-1]["content"] for a, c in zip(answers, conversations, strict=True))


def choose(scores: dict[int, float]) -> int:
    """The key with the highest score; ties go to the largest key (the later step, the larger n)."""
    return max(scores, key=lambda k: (scores[k], k))


def choose_model(by_step: dict[int, float], by_average: dict[str, float]) -> int | str:
    """The chat model: the best checkpoint by `choose`, unless a weight average scores strictly higher (then the
    best average; ties among averages: the first listed)."""
    step = choose(by_step)
    if by_average:
        best = max(by_average, key=lambda k: by_average[k])  # max keeps the first of equal ones
        if by_average[best] > by_step[step]:
            return best
    return step


def headline_eval(gen: Generator, dev_heads: list[Conversation], heads: list[Conversation]) -> dict[str, Any]:
    """chrF of each HEADLINE_DECODES decoding on the dev headlines; the best one (ties: the first listed) and
    plain greedy on the test headlines (one look each), beside the first-sentence baseline."""
    dev_truths = [c.messages[-1]["content"] for c in dev_heads]
    dev_chrf = {}
    for name, options in HEADLINE_DECODES.items():
        answers = answer_all(gen, dev_heads, max_new_tokens=HEADLINE_TOKENS, **options)
        dev_chrf[name] = chrf([a.strip() for a in answers], dev_truths)
        print(f"  {name}: dev headline chrF {dev_chrf[name]:.2f} ({len(dev_heads)} articles)", flush=True)
    decode = max(HEADLINE_DECODES, key=lambda k: dev_chrf[k])  # max keeps the first of equal ones
    print(f"  test headlines: {len(heads)} prompts, greedy and {decode} (chosen on dev)", flush=True)
    truths = [c.messages[-1]["content"] for c in heads]
    greedy = [a.strip() for a in answer_all(gen, heads, max_new_tokens=HEADLINE_TOKENS)]
    chosen = greedy
    if HEADLINE_DECODES[decode]:
        options = HEADLINE_DECODES[decode]
        chosen = [a.strip() for a in answer_all(gen, heads, max_new_tokens=HEADLINE_TOKENS, **options)]
    baseline = [first_sentence(c.meta["body"], len(t)) for c, t in zip(heads, truths, strict=True)]
    return {
        "dev_n": len(dev_heads),
        "dev_chrf": dev_chrf,
        "decode": decode,
        "n": len(heads),
        "chrf_greedy": chrf(greedy, truths),
        "chrf_chosen": chrf(chosen, truths),
        "chrf_first_sentence_baseline": chrf(baseline, truths),
        "answers_chosen": chosen,
    }


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


def answer_all(gen: Generator, conversations, max_new_tokens: int, batch: int = 32, **options) -> list[str]:
    """Greedy answers (with `options` of Generator.complete_batch, e.g. no_repeat_ngram_size) to each
    conversation's last user message."""
    tok = gen.tokenizer
    end = tok.special_tokens["<|im_end|>"]
    prompts = [
        fit_prompt(tok, [*c.messages[:-2], dict(c.messages[-2])], gen.model.config.block_size - max_new_tokens)
        for c in conversations
    ]
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(prompts), batch):
        out += gen.complete_batch(
            prompts[i : i + batch], max_new_tokens=max_new_tokens, eos_token_id=[end, tok.eot_id], **options
        )
        done = min(i + batch, len(prompts))
        rate = done / (time.perf_counter() - t0)
        if done == len(prompts) or (i // batch) % 10 == 9:
            print(
                f"  {done}/{len(prompts)} prompts, {rate:.1f}/s, ETA {(len(prompts) - done) / rate:.0f} s", flush=True
            )
    return out


def sft_exposure(run_dir: Path, base_model: str, steps: int) -> dict[str, float]:
    """How much of builtin:zh-chat the SFT saw: epochs (packed rows trained / rows of an epoch) and about how
    many sentiment conversations (their count in the training part x epochs)."""
    from gptkit.data.conversations import load_conversations
    from gptkit.tokenizer import Tokenizer
    from gptkit.train.chat_packing import pack_rows, render_conversations
    from gptkit.train.chat_sft import VAL_EVERY

    cfg = load_chat_config(run_dir / "config.toml", [])
    tok = Tokenizer.load(base_model)
    block = json.loads((Path(base_model) / "config.json").read_text(encoding="utf-8"))["model"]["block_size"]
    convs = [c for i, c in enumerate(load_conversations(cfg.data, "train")) if i % VAL_EVERY != VAL_EVERY - 1]
    chats = render_conversations(tok, convs, block)
    rows = len(pack_rows(chats, range(len(chats)), block))
    epochs = steps * cfg.train.batch_size * cfg.train.grad_accum / rows
    n_sent = sum(c.source == "sentiment" for c in convs)
    n_pos = sum(c.source == "sentiment" and c.messages[-1]["content"] == "正面" for c in convs)
    return {
        "epochs": round(epochs, 3),
        "rows_per_epoch": rows,
        "sentiment_train": n_sent,
        "sentiment_train_positive": n_pos,
        "sentiment_seen": round(n_sent * epochs),
    }


def headline_only(checkpoint: Path) -> int:
    """`--headline-only CKPT`: headline_eval on an earlier run's chat checkpoint (the dev choice, then the test
    headlines), written to benchmarks/results/chat_headline.json."""
    t0 = time.perf_counter()
    gen = Generator.load(checkpoint)
    _, dev_heads = dev_sets("builtin:zh-chat")
    heads = [c for c in builtin_chat("zh-chat", "test") if c.source == "headline"]
    head = headline_eval(gen, dev_heads, heads)
    result = {
        "checkpoint": str(checkpoint),
        "quiet": os.environ.get("GPTKIT_BENCH") == "1",
        **{k: v for k, v in head.items() if k != "answers_chosen"},
        "samples": [
            {"user": c.messages[-2]["content"], "model": a, "reference": c.messages[-1]["content"]}
            for c, a in list(zip(heads, head["answers_chosen"], strict=True))[:3]
        ],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "chat_headline.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("\n| headline decoding | dev chrF |\n|---|---|")
    for name, value in head["dev_chrf"].items():
        print(f"| {name}{' (chosen)' if name == head['decode'] else ''} | {value:.2f} |")
    print(
        f"\ntest headlines (n={head['n']}): greedy {head['chrf_greedy']:.2f}, {head['decode']} "
        f"{head['chrf_chosen']:.2f}, first-sentence baseline {head['chrf_first_sentence_baseline']:.2f}"
    )
    for sample in result["samples"]:
        print(f"\nuser> {sample['user']}\nbot> {sample['model']}\n(reference: {sample['reference']})")
    print(f"\nwrote {out} ({result['seconds']:.0f} s)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 + 2 minutes, fewer evaluation prompts")
    ap.add_argument("--base", type=Path, help="a base made by benchmarks/zh_base.py (default: make one in --work)")
    ap.add_argument(
        "--base-minutes", type=float, help=f"pretraining budget of a base made here (default {BASE_MINUTES:g}, quick 2)"
    )
    ap.add_argument("--sft-minutes", type=float, help="chat SFT budget (default 14, quick 2)")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what the budgets count: wall time, "
        "or this process's CPU seconds (fair on a busy machine; the run then takes longer)",
    )
    ap.add_argument("--work", help="directory for the runs (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    ap.add_argument(
        "--checkpoint-every",
        type=int,
        default=CHECKPOINT_EVERY,
        help=f"SFT steps between the checkpoints the dev set chooses among (default {CHECKPOINT_EVERY}, quick 100)",
    )
    ap.add_argument(
        "--headline-only",
        type=Path,
        metavar="CKPT",
        help="only the headline task on a chat checkpoint of an earlier run: the dev choice of the decoding and "
        "the test headlines, into benchmarks/results/chat_headline.json",
    )
    args = ap.parse_args()
    if args.headline_only:
        return headline_only(args.headline_only)
    if args.checkpoint_every < 1:
        ap.error(f"--checkpoint-every: must be >= 1, got {args.checkpoint_every}")
    every = 100 if args.quick and args.checkpoint_every == CHECKPOINT_EVERY else args.checkpoint_every
    sft_min = args.sft_minutes or (2 if args.quick else 14)
    n_sent, n_head = (300, 100) if args.quick else (None, None)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="gptkit-chat-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    load_before = os.getloadavg()[0]

    if args.base:
        print(f"[1/6] base: {args.base} (benchmarks/zh_base.py)", flush=True)
        base = read_base(args.base)
        base["reused"] = str(args.base)
    else:
        minutes = args.base_minutes or (2 if args.quick else BASE_MINUTES)
        print(f"[1/6] base: {minutes:g} minutes of pretraining (benchmarks/zh_base.py)", flush=True)
        base = build_base(work / "base", minutes, clock=args.clock)
    print(f"  base: {base['steps']} steps, val loss {base['val_loss']:.3f}", flush=True)

    print(f"[2/6] chat SFT on builtin:zh-chat for {sft_min:g} minutes", flush=True)
    sft_run = work / "sft"
    sft_cfg = load_chat_config(
        None,
        [
            f"chat.base={json.dumps(base['model'])}",
            'chat.data="builtin:zh-chat"',
            *SFT_SETTINGS,
            f"train.checkpoint_interval={every}",
            f"train.keep_checkpoints={CANDIDATES}",
            f"train.time_budget_s={sft_min * 60}",
            f"train.time_budget_clock={args.clock}",
        ],
    )
    t_sft = time.perf_counter()
    sft = finetune_chat(sft_cfg, sft_run)
    sft_s = time.perf_counter() - t_sft
    print(f"  SFT: {sft.step} steps in {sft_s:.0f} s, val loss {sft.val_loss:.3f}", flush=True)

    print("[3/6] choices on the dev set (no test prompt)", flush=True)
    t_dev = time.perf_counter()
    dev_sent, dev_heads = dev_sets(sft_cfg.data)
    if args.quick:
        dev_sent, dev_heads = dev_sent[:: max(1, len(dev_sent) // n_sent)][:n_sent], dev_heads[:n_head]
    candidates = dict(list_checkpoints(sft_run))
    if not candidates:
        raise SystemExit(f"{sft_run}: the SFT wrote no checkpoint ({sft.step} steps); nothing to evaluate")
    dev_acc = {}
    for step, path in candidates.items():
        answers = answer_all(Generator.load(path), dev_sent, max_new_tokens=4)
        dev_acc[step] = sentiment_correct(answers, dev_sent) / len(dev_sent)
        print(f"  step {step}: dev sentiment accuracy {dev_acc[step]:.4f} ({len(dev_sent)} reviews)", flush=True)
    steps = sorted(candidates)
    dev_avg, avg_paths = {}, {}
    for n in (n for n in AVERAGES if len(steps) >= n):
        name = f"mean of steps {', '.join(str(s) for s in steps[-n:])}"
        avg_paths[name] = average_checkpoints([candidates[s] for s in steps[-n:]], work / f"average_{n}")
        answers = answer_all(Generator.load(avg_paths[name]), dev_sent, max_new_tokens=4)
        dev_avg[name] = sentiment_correct(answers, dev_sent) / len(dev_sent)
        print(f"  {name}: dev sentiment accuracy {dev_avg[name]:.4f} ({len(dev_sent)} reviews)", flush=True)
    chosen = choose_model(dev_acc, dev_avg)
    chosen_name = f"step {chosen}" if isinstance(chosen, int) else chosen
    gen = Generator.load(candidates[chosen] if isinstance(chosen, int) else avg_paths[chosen])
    dev_s = time.perf_counter() - t_dev
    print(f"  chosen: {chosen_name} ({dev_s:.0f} s)", flush=True)

    print("[4/6] held-out evaluation (one look per figure)", flush=True)
    test = builtin_chat("zh-chat", "test")
    sent, heads = [c for c in test if c.source == "sentiment"], [c for c in test if c.source == "headline"]
    if args.quick:  # evenly spaced (the split lists the positive reviews first)
        sent, heads = sent[:: len(sent) // n_sent][:n_sent], heads[:: len(heads) // n_head][:n_head]
    print(f"  sentiment: {len(sent)} prompts", flush=True)
    sent_answers = answer_all(gen, sent, max_new_tokens=4)
    correct = sentiment_correct(sent_answers, sent)
    accuracy = correct / len(sent)
    answered = dict(collections.Counter(a.strip() for a in sent_answers).most_common(5))
    majority = max(collections.Counter(c.meta["label"] for c in sent).values()) / len(sent)
    print(f"  sentiment accuracy {accuracy:.4f}; answers {answered}; majority label {majority:.4f}", flush=True)
    head = headline_eval(gen, dev_heads, heads)

    print("[5/6] loss curves and samples", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = plot_losses(sft_run, RESULTS / ("chat_quick_loss.png" if args.quick else "chat_loss.png"))
    samples = []
    chatter = [c for c in test if c.source == "chatterbot"][:1]
    for c, answer in [
        (chatter[0], answer_all(gen, chatter, max_new_tokens=HEADLINE_TOKENS)[0]) if chatter else (None, None),
        (sent[0], sent_answers[0]),
        (heads[0], head["answers_chosen"][0]),
    ]:
        if c is not None:
            samples.append({"user": c.messages[-2]["content"], "model": answer, "reference": c.messages[-1]["content"]})

    print("[6/6] results", flush=True)
    seen = sft_exposure(sft_run, base["model"], sft.step)
    bench = os.environ.get("GPTKIT_BENCH") == "1"  # /work/wt/bin/bench: the benchmark lock, others reniced
    result = {
        "quick": args.quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        + ("quiet (benchmark lock)" if bench else "possibly shared with other jobs"),
        "load_average_start": round(load_before, 2),
        "load_average_end": round(os.getloadavg()[0], 2),
        "clock": args.clock,
        "base": base,
        "sft": {
            "minutes": sft_min,
            "seconds": round(sft_s, 1),
            "steps": sft.step,
            "settings": SFT_SETTINGS,
            "val_loss": sft.val_loss,
            "train_loss": sft.train_loss,
            **seen,
        },
        "dev": {
            "sentiment_n": len(dev_sent),
            "sentiment_accuracy_by_step": dev_acc,
            "sentiment_accuracy_of_averages": dev_avg,
            "chosen": chosen_name,
            "seconds": round(dev_s, 1),
        },
        "sentiment": {
            "checkpoint": chosen_name,
            "n": len(sent),
            "correct": correct,
            "accuracy": accuracy,
            "goal": SENTIMENT_GOAL,
            "answers": answered,
            "majority_label_rate": majority,
        },
        "headline": {k: v for k, v in head.items() if k != "answers_chosen"},
        "loss_png": str(png.relative_to(ROOT)),
        "samples": samples,
        "total_minutes": round((time.perf_counter() - t_start) / 60, 2),
    }
    out = RESULTS / ("chat_quick.json" if args.quick else "chat.json")
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print()
    print("| measure | value |\n|---|---|")
    print(f"| base | {base['steps']} steps, built in {base['build_s']:.0f} s, val loss {base['val_loss']:.3f} |")
    print(
        f"| chat SFT (builtin:zh-chat) | {sft.step} steps in {sft_s:.0f} s ({seen['epochs']:.2f} epochs, "
        f"~{seen['sentiment_seen']:,} sentiment examples seen), val loss {sft.val_loss:.3f} |"
    )
    dev_line = ", ".join(f"{k}: {v:.1%}" for k, v in [*dev_acc.items(), *dev_avg.items()])
    print(f"| dev sentiment accuracy by SFT step ({len(dev_sent)} reviews) | {dev_line}; chosen {chosen_name} |")
    print(
        f"| held-out sentiment accuracy ({chosen_name}) | {accuracy:.1%} ({correct}/{len(sent)}; "
        f"goal >= {SENTIMENT_GOAL:.0%}) |"
    )
    print(f"| sentiment answers | {answered} (majority label {majority:.1%}) |")
    print(
        f"| held-out headline chrF | greedy {head['chrf_greedy']:.1f}, {head['decode']} (dev) "
        f"{head['chrf_chosen']:.1f} (first-sentence baseline {head['chrf_first_sentence_baseline']:.1f}; "
        f"n={len(heads)}) |"
    )
    print(f"| total time | {result['total_minutes']:.1f} min (load average {load_before:.1f} at the start) |")
    for s in samples:
        print(f"\nuser> {s['user']}\nbot> {s['model']}\n(reference: {s['reference']})")
    print(f"\nwrote {out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
