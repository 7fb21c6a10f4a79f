"""CPU time per training step of gptkit's CPU recipes under different settings, interleaved in one process.

Each setting builds its own Trainer (the demo's, the shakespeare_char recipe's or nanoGPT's settings plus the
setting's changes), takes 2 warm-up steps, then the settings take turns: `--rounds` rounds of `--steps` steps
each. Prints the median wall ms per step (and all rounds) per setting: a quick look at what an option costs or
saves, at the thread count given; what a run learns in its time is benchmarks/ablate_cpu.py's job.

    python benchmarks/step_cpu.py --demo-data gptkit-demo/data             # all groups, PyTorch's threads
    python benchmarks/step_cpu.py --groups shakespeare,nanogpt --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from gptkit.demo import CPU_SETTINGS as DEMO
from gptkit.train.config import load_run_config
from gptkit.train.trainer import Trainer

HERE = Path(__file__).resolve().parent
TEXT = HERE.parents[1] / "shared" / "data" / "tinyshakespeare.txt"
BF16 = ["train.dtype=bfloat16"]
FP32 = ["train.dtype=float32", "train.chunked_loss=false"]


def groups(demo_data: str | None) -> dict[str, tuple[list[str], str, dict[str, list[str]]]]:
    from ablate_cpu import BASES  # beside this script
    from train_cpu import SETTINGS as NANOGPT

    out = {
        "shakespeare": (
            BASES["shakespeare-recipe"],
            str(TEXT),
            {
                "recipe": [],
                "float32": FP32,
                "bfloat16": BF16,
                "bf16, 3 Newton-Schulz": [*BF16, "train.muon_ns_steps=3"],
                "float32, block 128": [*FP32, "model.block_size=128"],
                "bf16, block 128": [*BF16, "model.block_size=128"],
            },
        ),
        "nanogpt": (NANOGPT, str(TEXT), {"float32": [], "bfloat16": BF16}),
    }
    if demo_data:
        out["demo"] = (
            DEMO,
            demo_data,
            {
                "recipe": [],
                "float32, logits loss": FP32,
                "bf16, logits loss": [*BF16, "train.chunked_loss=false"],
                "batch 32": ["train.batch_size=32"],
                "4 x 192": ["model.n_embd=192", "model.n_head=6"],
                "6 x 128": ["model.n_layer=6"],
                "2 x 192": ["model.n_layer=2", "model.n_embd=192", "model.n_head=6"],
                "3 x 160": ["model.n_embd=160", "model.n_head=5"],
                "3 x 192": ["model.n_embd=192", "model.n_head=6"],
                "block 64, batch 32": ["model.block_size=64", "train.batch_size=32"],
                "batch 24": ["train.batch_size=24"],
                "batch 12": ["train.batch_size=12"],
                "batch 8": ["train.batch_size=8"],
                "compiled": ["train.compile=true"],
                "value embeddings 1": ["model.value_embeddings=1"],
                "value embeddings 2": ["model.value_embeddings=2"],
                "value embeddings 3": ["model.value_embeddings=3"],
                "value embeddings 2, smear": ["model.value_embeddings=2", "model.smear=true"],
                "smear": ["model.smear=true"],
                "value embeddings 1, smear": ["model.value_embeddings=1", "model.smear=true"],
            },
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-data", help="a prepared directory for the demo group (e.g. gptkit-demo/data)")
    parser.add_argument("--groups", default="demo,shakespeare,nanogpt", help="comma-separated (default all)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settings", help="the demo group's settings to time, names separated by ; (default all)")
    parser.add_argument("--steps", type=int, default=0, help="steps per round (default 3 for demo, else 10)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    available = groups(args.demo_data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for group in [g.strip() for g in args.groups.split(",") if g.strip()]:
            if group not in available:
                raise SystemExit(f"--groups: {group!r} unknown or needs --demo-data (have {', '.join(available)})")
            base, data, variants = available[group]
            if args.settings and group == "demo":
                variants = {n: variants[n] for n in args.settings.split(";")}
            trainers = {}
            for name, changes in variants.items():
                common = ["train.max_steps=1000000", "train.eval_interval=0", "train.sample_tokens=0"]
                settings = [*base, f"data.path={json.dumps(data)}", *common, f"train.cpu_threads={args.threads}"]
                cfg = load_run_config(None, [*settings, *changes])
                trainer = Trainer(cfg, Path(tmp) / f"{group}-{len(trainers)}", quiet=True)
                for step in range(2):
                    trainer.train_step(step)
                trainers[name] = trainer
            n = args.steps or (3 if group == "demo" else 10)
            times: dict[str, list[float]] = {name: [] for name in trainers}
            for r in range(args.rounds):
                for name, trainer in trainers.items():
                    t0 = time.perf_counter()
                    for s in range(n):
                        loss, _ = trainer.train_step(2 + r * n + s)
                    loss.item()
                    times[name].append(1000 * (time.perf_counter() - t0) / n)
            for name, ts in times.items():
                median = sorted(ts)[len(ts) // 2]
                rows.append({"group": group, "setting": name, "median_ms": round(median, 1), "ms": ts})
                print(f"{group:12s} {name:24s} {median:8.1f} ms/step  rounds {[round(t, 1) for t in ts]}", flush=True)
            for trainer in trainers.values():
                trainer.close()
    print(f"\nwall ms per training step, threads {args.threads or torch.get_num_threads()}, torch {torch.__version__}")
    out = HERE / "results" / "step_cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
