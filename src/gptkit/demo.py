"""The main job, end to end on the built-in Chinese corpora: `gptkit demo`.

    prepare  builtin:zh-news + builtin:zh-reviews -> clean, deduplicated documents, an 8k BPE, token shards
    train    a small GPT, sized to the machine: a few timed steps first, then as many steps as fit the budget
    sample   continuations of a few Chinese prompts from the best checkpoint
    plot     the train / val loss curve
Everything goes under one directory (default ./gptkit-demo). Running it again continues where it stopped:
prepare skips finished stages and training resumes from its newest checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gptkit.train.checkpoint import latest_checkpoint
from gptkit.train.config import RunConfig, load_run_config
from gptkit.train.trainer import CONFIG_FILE, Trainer, train

CORPORA = ("builtin:zh-news", "builtin:zh-reviews")
VOCAB_SIZE = 8000
PROMPTS = ("中国", "这家酒店", "这本书", "经济发展", "我觉得")
TRAIN_BUDGET_S = 240.0  # training time the step count is sized for (the whole demo: about 6 min on 2 cores)
MIN_STEPS, MAX_STEPS = 150, 3000

# CPU: 4 layers, 128 wide, context 128 (most of its compute is the 8k-token output layer).
CPU_SETTINGS = [
    "model.preset=nano",
    "model.block_size=128",
    "train.batch_size=16",
    # 400-step runs on the demo data, val loss: lr 2e-3 / warmup 30 7.48, 4e-3 / 100 7.37, 8e-3 / 100 7.63
    "train.lr=4e-3",
    "train.warmup_steps=100",
    "train.eval_steps=10",
    "train.device=cpu",
]
# GPU: 8 layers, 256 wide, context 256, bf16.
GPU_SETTINGS = [
    "model.preset=small",
    "model.dropout=0.1",
    "train.batch_size=32",
    "train.lr=1e-3",
    "train.warmup_steps=100",
    "train.eval_steps=20",
    "train.device=cuda",
]
COMMON = ['train.sample_prompt="中国"', "train.sample_tokens=40", "train.log_interval=50"]


@dataclass
class DemoResult:
    out: Path
    run_dir: Path
    best_checkpoint: Path
    first_val_loss: float | None
    best_val_loss: float | None
    samples: dict[str, str]
    plot: Path


def say(text: str = "") -> None:
    print(text, flush=True)


def demo_settings(cuda: bool) -> list[str]:
    return [*(GPU_SETTINGS if cuda else CPU_SETTINGS), *COMMON]


def timed_steps(config: RunConfig, data_dir: Path, scratch: Path, n: int = 6) -> float:
    """Seconds per training step on this machine: a throwaway trainer runs 2 warmup steps, then n timed ones."""
    from gptkit.train.data import open_data_dir

    trainer = Trainer(config, scratch, data=open_data_dir(data_dir), quiet=True)
    for step in range(2):
        trainer.train_step(step)
    t0 = time.perf_counter()
    for step in range(2, 2 + n):
        loss, _ = trainer.train_step(step)
    loss.item()  # wait for the device
    return (time.perf_counter() - t0) / n


def run_demo(
    out: str | os.PathLike = "gptkit-demo",
    *,
    budget_s: float = TRAIN_BUDGET_S,
    corpora: tuple[str, ...] = CORPORA,
    vocab_size: int = VOCAB_SIZE,
    steps_range: tuple[int, int] = (MIN_STEPS, MAX_STEPS),
    extra_settings: tuple[str, ...] = (),
) -> DemoResult:
    """Run (or continue) the demo into `out`. The keyword arguments exist for tests (a smaller job)."""
    from gptkit.data.pipeline import PrepareConfig, prepare
    from gptkit.data.report import print_report
    from gptkit.generation import Generator
    from gptkit.train.metrics import plot_losses, read_metrics

    out = Path(out)
    data_dir, run_dir = out / "data", out / "run"
    cuda = torch.cuda.is_available()
    t_start = time.perf_counter()
    say(f"gptkit demo: everything goes to {out.resolve()} (run again to continue where it stopped)\n")

    say(f"1/4 prepare {' + '.join(corpora)}: clean, deduplicate, train a {vocab_size:,}-token BPE, tokenize")
    report = prepare(
        PrepareConfig(inputs=corpora, out=str(data_dir), vocab_size=vocab_size, workers=os.cpu_count() or 1)
    )
    print_report(report)

    resume = latest_checkpoint(run_dir) is not None
    if resume:
        config = load_run_config(run_dir / CONFIG_FILE)
        last = latest_checkpoint(run_dir).name
        say(f"\n2/4 train: continuing {run_dir} from {last} to step {config.train.max_steps}")
    else:
        settings = [*demo_settings(cuda), f"data.path={json.dumps(str(data_dir))}", *extra_settings]
        probe = load_run_config(None, [*settings, "train.max_steps=8", "train.sample_tokens=0"])
        _remove_tree(out / "timing")
        step_s = timed_steps(probe, data_dir, out / "timing")
        _remove_tree(out / "timing")
        steps = int(min(steps_range[1], max(steps_range[0], budget_s / step_s)))
        interval = max(25, steps // 8 // 25 * 25)
        schedule = [f"train.max_steps={steps}", f"train.eval_interval={interval}"]
        config = load_run_config(None, [*settings, *schedule, f"train.checkpoint_interval={interval}"])
        mc = config.model_config()
        say(
            f"\n2/4 train a {mc.n_layer}-layer, {mc.n_embd}-wide GPT on {'the GPU' if cuda else 'the CPU'}: "
            f"{step_s:.2f} s/step here, so {steps} steps (about {steps * step_s / 60:.0f} min); "
            f"val loss every {interval} steps"
        )
    newest = latest_checkpoint(run_dir)
    if newest is not None and int(newest.name.removeprefix("step_")) >= config.train.max_steps:
        say("  already trained that far: nothing to train")  # a resume without more steps is refused
    else:
        result = train(config, run_dir, resume=resume)
        if result.interrupted:
            raise KeyboardInterrupt
        newest = result.checkpoint

    best = run_dir / "best" if (run_dir / "best").exists() else newest
    say(f"\n3/4 samples from {best} (top-k 40, temperature 0.8):")
    gen = Generator.load(best, device="cuda" if cuda else "cpu")
    samples = {}
    for prompt in PROMPTS:
        room = gen.model.config.block_size - len(gen.tokenizer.encode(prompt)) - 1  # after <|endoftext|> + prompt
        n_new = min(60, room)
        text = gen.complete(prompt, max_new_tokens=n_new, strategy="sample", top_k=40, temperature=0.8, seed=0)
        samples[prompt] = text
        say(f"  {prompt}|{text.replace(chr(10), ' ')}")

    plot = plot_losses(run_dir)
    vals = [r["val_loss"] for r in read_metrics(run_dir) if r.get("val_loss") is not None]
    say(f"\n4/4 loss plot: {plot}")
    if vals:
        minutes = (time.perf_counter() - t_start) / 60
        say(f"val loss {vals[0]:.3f} -> {min(vals):.3f} (best); this demo took {minutes:.1f} min")
    say(
        "\nwhat next:\n"
        f"  gptkit generate --model {best} --prompt 这家酒店 --top-k 40 --stream   # more text\n"
        f"  gptkit train --out {run_dir} --resume --set train.max_steps={2 * config.train.max_steps}"
        "   # train longer\n"
        f"  gptkit plot {run_dir}                                   # the loss curve again\n"
        f"  gptkit data inspect {data_dir}                           # the prepared data\n"
        "  gptkit train --data YOUR_TEXT.txt --out runs/mine --set model.preset=nano   # your own text"
    )
    return DemoResult(
        out=out,
        run_dir=run_dir,
        best_checkpoint=Path(best),
        first_val_loss=vals[0] if vals else None,
        best_val_loss=min(vals) if vals else None,
        samples=samples,
        plot=plot,
    )


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
