"""Ablations of the options for learning fast on a CPU: val nats per character at an equal time budget.

Every variant trains from scratch on the same data for the same budget (train.time_budget_s) with one
thread, and the schedule runs over the budget. The default clock is this process's CPU seconds: on a machine
shared with other jobs wall time says more about the neighbours than about the variant, while the CPU time a
one-thread run gets is the compute it used. Variants are changes to a base recipe (BASES below).

    python benchmarks/ablate_cpu.py --data gptkit-demo/data --base demo --budget 60
    python benchmarks/ablate_cpu.py --data ../shared/data/tinyshakespeare.txt --base shakespeare --budget 90 \\
        --variants base,muon,rotary
    python benchmarks/ablate_cpu.py ... --set model.n_layer=6      # extra settings for every variant

Prints a markdown table and writes JSON to benchmarks/results/ablate_cpu_<base>.json (--out to change).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from gptkit.demo import CPU_SETTINGS as DEMO_RECIPE
from gptkit.train.config import load_run_config, read_config_tables
from gptkit.train.trainer import Trainer

RESULTS = Path(__file__).resolve().parent / "results"
SHAKESPEARE_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "shakespeare-char-cpu.toml"


def config_settings(path: Path) -> list[str]:
    """A TOML config file as `section.key=value` settings (values written as TOML literals)."""
    tables, _ = read_config_tables(path)
    return [f"{section}.{key}={json.dumps(value)}" for section, table in tables.items() for key, value in table.items()]


BASES = {
    # The demo's CPU recipe before issue 15: 4 layers x 128, context 128, batch 16, AdamW lr 4e-3, cosine.
    "demo": [
        "model.preset=nano",
        "model.block_size=128",
        "train.batch_size=16",
        "train.lr=4e-3",
        "train.warmup_steps=100",
        "train.eval_steps=10",
        "train.eval_interval=100",
    ],
    # The demo's CPU recipe now (gptkit.demo.CPU_SETTINGS; the common settings below override its checkpoints).
    "demo-recipe": list(DEMO_RECIPE),
    # gptkit's shakespeare_char recipe (configs/shakespeare-char-cpu.toml; the budget replaces its max_steps).
    "shakespeare-recipe": config_settings(SHAKESPEARE_RECIPE),
    # nanoGPT's CPU shakespeare_char settings (benchmarks/train_cpu.py SETTINGS).
    "shakespeare": [
        "model.preset=nano",
        "model.bias=false",
        "model.activation=gelu",
        "train.batch_size=12",
        "train.lr=1e-3",
        "train.min_lr=1e-4",
        "train.warmup_steps=100",
        "train.beta2=0.99",
        "train.eval_steps=20",
        "train.eval_interval=250",
        "data.tokenizer=char",
    ],
}
MODERN = ["model.position_embedding=rotary", "model.activation=relu2", "model.norm=rmsnorm", "model.qk_norm=true"]
VARIANTS = {
    "base": [],
    "wsd": ["train.schedule=wsd"],
    "muon": ["train.optimizer=muon"],
    "muon_wsd": ["train.optimizer=muon", "train.schedule=wsd"],
    "lr_x2": ["train.lr=*2"],
    "emb_lr_x5": ["train.embedding_lr=*5"],  # needs train.embedding_lr in the base (or --set)
    "emb_lr_2e-2": ["train.embedding_lr=2e-2"],
    "rotary": ["model.position_embedding=rotary"],
    "relu2": ["model.activation=relu2"],
    "swiglu": ["model.activation=swiglu", "model.n_inner=341"],
    "rmsnorm": ["model.norm=rmsnorm"],
    "qk_norm": ["model.qk_norm=true"],
    "untied": ["model.tie_embeddings=false"],
    "modern": MODERN,
    "modern_muon_wsd": [*MODERN, "train.optimizer=muon", "train.schedule=wsd"],
    "batch_x2": ["train.batch_size=*2"],
    "context_x2": ["model.block_size=*2"],
    "wide": ["model.n_embd=192", "model.n_head=6"],
    "deep": ["model.n_layer=6"],
    "fp32": ["train.dtype=float32", "train.chunked_loss=false"],
    "bf16": ["train.dtype=bfloat16"],
    "bf16_chunked": ["train.dtype=bfloat16", "train.chunked_loss=true"],
    "long_cooldown": ["train.cooldown_fraction=0.4", "train.min_lr=0.0"],
    "ns3": ["train.muon_ns_steps=3"],
    # round 4 (the demo recipe): the tied embedding's rate higher still; an untied head with its own rates
    # (a fast input embedding, a slower output layer, as nanochat and modded-nanogpt set them); half the batch
    # for twice the steps (the val batches then hold the same number of tokens); a shorter warmup
    "emb_lr_5e-2": ["train.embedding_lr=5e-2"],
    "untied_lrs": ["model.tie_embeddings=false", "train.embedding_lr=6e-2", "train.head_lr=8e-3"],
    "batch_half": ["train.batch_size=*0.5", "train.eval_steps=*2"],
    "warmup_30": ["train.warmup_steps=30"],
    # round 7: the shakespeare recipe with the demo's gains (its cooldown to 0 over 40%, its untied head), and
    # the demo's matrices (Muon) faster while its embedding and head keep their own rates, a longer decay
    "cooldown_untied": [
        "train.cooldown_fraction=0.4",
        "train.min_lr=0.0",
        "model.tie_embeddings=false",
        "train.embedding_lr=6e-2",
        "train.head_lr=8e-3",
    ],
    "cooldown_ns3": ["train.cooldown_fraction=0.4", "train.min_lr=0.0", "train.muon_ns_steps=3"],
    "matrix_lr_6e-3": ["train.lr=6e-3"],  # with train.embedding_lr / head_lr set in the base
    "cooldown_0.6": ["train.cooldown_fraction=0.6"],
    # round 10 (the shakespeare recipe in float32, an AVX2-only CPU): depth, width, context and batch, each at
    # about the same tokens per step unless named so; eval_steps keeps the val tokens equal
    "layers_3": ["model.n_layer=3"],
    "layers_2": ["model.n_layer=2"],
    "block_64_b24": ["model.block_size=64", "train.batch_size=24"],
    "batch_8": ["train.batch_size=8", "train.eval_steps=30"],
    "batch_16": ["train.batch_size=16", "train.eval_steps=15"],
    "width_96": ["model.n_embd=96", "model.n_head=3"],
    "width_192_l2": ["model.n_embd=192", "model.n_head=6", "model.n_layer=2"],
    "lr_x1.5": ["train.lr=*1.5", "train.embedding_lr=*1.5", "train.head_lr=*1.5"],
    "lr_x0.67": ["train.lr=*0.67", "train.embedding_lr=*0.67", "train.head_lr=*0.67"],
    "l3_b64": ["model.n_layer=3", "model.block_size=64", "train.batch_size=24"],
    "l3_lr_x1.5": ["model.n_layer=3", "train.lr=*1.5", "train.embedding_lr=*1.5", "train.head_lr=*1.5"],
    "l3_b64_lr_x1.5": [
        "model.n_layer=3",
        "model.block_size=64",
        "train.batch_size=24",
        "train.lr=*1.5",
        "train.embedding_lr=*1.5",
        "train.head_lr=*1.5",
    ],
    # round 11: the demo at 2 threads, bfloat16, ~200 s of wall
    "cooldown_0.8": ["train.cooldown_fraction=0.8"],
    "cooldown_0.8_lr_x1.5": [
        "train.cooldown_fraction=0.8",
        "train.lr=*1.5",
        "train.embedding_lr=*1.5",
        "train.head_lr=*1.5",
    ],
    "width_160": ["model.n_embd=160", "model.n_head=5"],
    "block_64_b32": ["model.block_size=64", "train.batch_size=32"],
    "batch_24": ["train.batch_size=24"],
    "zero_init": ["model.zero_init_proj=true"],
    "width_160_zero_init": ["model.n_embd=160", "model.n_head=5", "model.zero_init_proj=true"],
}


def resolve(settings: list[str]) -> list[str]:
    """Apply `key=*k` items (multiply the value set so far by k) to the plain settings before them."""
    out: dict[str, str] = {}
    for item in settings:
        key, value = item.split("=", 1)
        if value.startswith("*"):
            base = load_run_config(None, [f"{k}={v}" for k, v in out.items()])
            section, name = key.split(".")
            current = (
                base.model_config().to_dict()[name] if section == "model" else getattr(getattr(base, section), name)
            )
            value = repr(type(current)(current * float(value[1:])))
        out[key] = value
    return [f"{k}={v}" for k, v in out.items()]


def run_variant(name: str, settings: list[str], data: str, run_dir: Path) -> dict:
    cfg = load_run_config(None, [*settings, f"data.path={json.dumps(data)}"])
    t0, c0 = time.perf_counter(), time.process_time()
    trainer = Trainer(cfg, run_dir, quiet=True)
    result = trainer.run()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in records if r.get("val_nats_per_char") is not None]
    return {
        "variant": name,
        "settings": settings,
        "steps": result.step,
        "tokens": result.step * trainer.tokens_per_step,
        "final_val_nats_per_char": vals[-1]["val_nats_per_char"],
        "best_val_nats_per_char": min(r["val_nats_per_char"] for r in vals),
        "final_val_loss": vals[-1]["val_loss"],
        "cpu_s": round(time.process_time() - c0, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
        "params": trainer.raw_model.num_parameters(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a prepared directory or a text file")
    parser.add_argument("--base", choices=sorted(BASES), default="demo")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per variant (default 60)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument(
        "--steps",
        type=int,
        default=0,
        help="train this many steps instead of a time budget (the schedule over the steps): for variants of "
        "the same step cost, a comparison the machine's speed does not move",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; ablate at the run's own)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names (default: all)")
    parser.add_argument("--set", action="append", default=[], metavar="K=V", help="extra setting for every variant")
    parser.add_argument("--out", type=Path, help="JSON results file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    common = [
        *BASES[args.base],
        *args.set,
        f"train.max_steps={args.steps or 1000000}",
        f"train.time_budget_s={0 if args.steps else args.budget}",
        "train.time_budget_ref_steps=0",  # the recipe's own budget (configs/shakespeare-char-cpu.toml) gives way
        f"train.time_budget_clock={args.clock}",
        f"train.cpu_threads={args.threads}",
        "train.checkpoint_interval=0",
        "train.sample_tokens=0",
        "train.log_interval=50",
        "train.device=cpu",
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            settings = resolve([*common, *VARIANTS[name]])
            row = run_variant(name, settings, args.data, Path(tmp) / name)
            rows.append(row)
            print(
                f"{name}: val {row['final_val_nats_per_char']:.4f} nats/char "
                f"(best {row['best_val_nats_per_char']:.4f}), "
                f"{row['steps']} steps, {row['cpu_s']} cpu s, {row['wall_s']} wall s",
                flush=True,
            )
    threads = f"{args.threads} thread{'s' if args.threads > 1 else ''}"
    budget = f"{args.steps} steps" if args.steps else f"{args.budget:g} s {args.clock} budget"
    print(f"\n{args.base} base, {budget} per variant, {threads}, data {args.data}\n")
    print("| variant | change | steps | val nats/char (end) | best |")
    print("|---|---|---|---|---|")
    for r in rows:
        change = " ".join(VARIANTS[r["variant"]]) or "(the base)"
        print(
            f"| {r['variant']} | `{change}` | {r['steps']} | {r['final_val_nats_per_char']:.4f} | "
            f"{r['best_val_nats_per_char']:.4f} |"
        )
    out = args.out or RESULTS / f"ablate_cpu_{args.base}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"base": args.base, "budget_s": args.budget, "steps": args.steps, "clock": args.clock, "rows": rows},
            indent=1,
        )
        + "\n"
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
