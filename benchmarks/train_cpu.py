"""CPU pretraining benchmark: tinyshakespeare char-level with nanoGPT's CPU configuration.

nanoGPT's README runs shakespeare_char on a CPU with 4 layers, 4 heads, 128 wide, block 64, batch 12,
2000 iterations (lr 1e-3 cosine to 1e-4 over 2000 after 100 warmup, beta2 0.99, dropout 0, eval every 250
iterations on 20 batches, no biases, exact GELU).

    python benchmarks/train_cpu.py --nanogpt /tmp/nanoGPT        # nanoGPT itself, in the same run (below)
    python benchmarks/train_cpu.py                 # gptkit and HF GPT2LMHeadModel through the same loop
    python benchmarks/train_cpu.py --steps 200     # a quick look
    python benchmarks/train_cpu.py --threads 1     # torch.set_num_threads(1) (a busy machine)

--nanogpt DIR (a checkout of karpathy/nanoGPT) runs whole processes, interleaved, `--rounds` times: nanoGPT's
README command for 300 and for 2000 iterations, `gptkit train` with the same model and batch for 300 steps,
and `gptkit train --config configs/shakespeare-char-cpu.toml` (gptkit's recipe). It prints the wall-time
ratios of each pair (gptkit / nanoGPT, measured back to back, so a busy machine slows both; --together starts
both at once instead, for a machine whose load keeps changing) and the val losses. Goals: 300 steps in
<= 0.8x nanoGPT's time; the recipe at val <= 1.60 within nanoGPT's 2000-step time.

Otherwise, in one process, HF transformers' GPT2LMHeadModel (the same shape, from a GPT2Config) is trained by
the same loop on the same batches as gptkit's GPT, and the time ratio is reported. HF GPT-2 always has biases;
it uses the same exact GELU here. Checkpoints are written at the end only; no text samples during training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gptkit.train.config import load_run_config
from gptkit.train.data import open_data_dir
from gptkit.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
RESULTS = ROOT / "benchmarks" / "results" / "train_cpu.json"
RECIPE = ROOT / "configs" / "shakespeare-char-cpu.toml"
NANOGPT_RESULTS = ROOT / "benchmarks" / "results" / "train_cpu_nanogpt.json"
BUDGET_LINES = ("step budget", "time budget")  # what gptkit prints when a budget sizes its run

SETTINGS = [
    "model.preset=nano",  # 4 layers, 4 heads, 128 wide, block 64
    "model.dropout=0.0",
    "model.bias=false",
    "model.activation=gelu",
    "train.batch_size=12",
    "train.lr=1e-3",
    "train.min_lr=1e-4",
    "train.warmup_steps=100",
    "train.beta2=0.99",
    "train.weight_decay=0.1",
    "train.grad_clip=1.0",
    "train.eval_interval=250",
    "train.eval_steps=20",
    "train.log_interval=50",
    "train.checkpoint_interval=0",
    "train.sample_tokens=0",
    "train.device=cpu",
    "data.tokenizer=char",
]


# The 300-step pair: nanoGPT's model and batch, trained as fast as gptkit trains it on a CPU: matrix products in
# bfloat16 under autocast (nanoGPT's train.py computes in float32 on CPUs whatever --dtype says), and one
# evaluation of 20 val batches at the end instead of nanoGPT's 20 train + 20 val batches at steps 0 and 250.
# train.dtype=auto: float32 where the CPU has no hardware bfloat16 (no AVX512-BF16 / AMX; emulated, far slower).
FAST_300 = ["train.dtype=auto", "train.eval_interval=0"]

PHASE_COLUMNS = (("startup_s", 9, 2), ("loop_s", 8, 2), ("end_s", 6, 2), ("step_ms", 9, 1))  # key, width, decimals


class HFCausalLM(nn.Module):
    """HF GPT2LMHeadModel behind gptkit's forward(idx, targets) -> (logits, loss) (targets pre-shifted)."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.hf(input_ids=idx).logits
        return logits, F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


def hf_model(cfg) -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    from gptkit.interop.hf import config_to_hf

    hf_cfg = GPT2Config(**config_to_hf(cfg))  # the same shape, as export-hf writes it
    hf_cfg._attn_implementation = "sdpa"
    return HFCausalLM(GPT2LMHeadModel(hf_cfg))


def run_one(name: str, settings: list[str], run_dir: Path, make_model=None, data=None) -> dict:
    cfg = load_run_config(None, settings)
    t0 = time.perf_counter()
    trainer = Trainer(
        cfg, run_dir, model=make_model(cfg.model_config(data.vocab_size)) if make_model else None, data=data
    )
    setup_s = time.perf_counter() - t0
    result = trainer.run()
    total_s = time.perf_counter() - t0
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in records if r.get("tokens_per_s")]
    return {
        "model": name,
        "steps": result.step,
        "final_val_loss": result.val_loss,
        "best_val_loss": result.best_val_loss,
        "setup_s": round(setup_s, 2),
        "total_s": round(total_s, 2),
        "ms_per_step": round(1000 * (total_s - setup_s) / max(result.step, 1), 2),
        "median_tokens_per_s": (med := sorted(rates)[len(rates) // 2] if rates else None),
        # The run's time at its median rate: a shared machine's busy spells stretch the wall time above.
        "median_rate_s": round(setup_s + result.step * trainer.tokens_per_step / med + eval_s(records), 1)
        if med
        else None,
        "params": model_parameters(trainer.raw_model),
    }


def eval_s(records: list[dict]) -> float:
    """Seconds spent outside training steps (evaluations, the final checkpoint): wall minus steps at their rates."""
    steps_s, last = 0.0, 0
    for r in records:
        if r.get("tokens_per_s"):
            steps_s += (r["tokens"] - last) / r["tokens_per_s"]
            last = r["tokens"]
    final = max((r.get("elapsed_s", 0.0) for r in records), default=0.0)
    return max(0.0, final - steps_s)


def model_parameters(model: nn.Module) -> int:
    """Trainable parameters, without gptkit's vocabulary padding rows."""
    if hasattr(model, "num_parameters") and not isinstance(model, HFCausalLM):
        return model.num_parameters()
    return sum(p.numel() for p in model.parameters())


def set_args(settings: list[str]) -> list[str]:
    out = []
    for item in settings:
        out += ["--set", item]
    return out


def compare_with_nanogpt(args: argparse.Namespace) -> None:
    """Whole processes, interleaved in pairs (the order flips every round), on this machine's current load."""
    from nanogpt_peer import gptkit_job, nanogpt_job, prepare_workdir, run_together, timed  # beside this script

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = prepare_workdir(Path(args.nanogpt), TEXT, tmp / "nanogpt")
        same = [*SETTINGS, *FAST_300, "train.max_steps=300", f"train.cpu_threads={args.threads}"]
        pairs = [
            (
                "300 steps, nanoGPT's model and batch",
                lambda r: nanogpt_job(work, 300, tmp / f"n300_{r}"),
                lambda r: gptkit_job(
                    "gptkit 300", 300, ["--data", str(TEXT), "--out", str(tmp / f"g300_{r}"), *set_args(same)], ROOT
                ),
            ),
            (
                "nanoGPT 2000 steps vs gptkit's recipe",
                lambda r: nanogpt_job(work, 2000, tmp / f"n2000_{r}"),
                lambda r: gptkit_job(
                    "gptkit recipe",
                    0,
                    ["--data", str(TEXT), "--out", str(tmp / f"grec_{r}"), "--config", str(args.recipe)],
                    ROOT,
                ),
            ),
        ]
        for r in range(args.rounds):
            for label, peer, ours in pairs:
                if (label.startswith("nanoGPT 2000") and args.skip_2000) or (label.startswith("300") and args.skip_300):
                    continue
                if args.together:
                    nano, mine = run_together([peer(r), ours(r)], args.threads)
                else:
                    first, second = (peer, ours) if r % 2 == 0 else (ours, peer)
                    a, b = (timed(*first(r), args.threads), timed(*second(r), args.threads))
                    nano, mine = (a, b) if r % 2 == 0 else (b, a)
                row = {
                    "round": r,
                    "pair": label,
                    "nanogpt_s": nano.wall_s,
                    "nanogpt_val": nano.final_val,
                    "gptkit_s": mine.wall_s,
                    "gptkit_val": mine.final_val,
                    "gptkit_best_val": mine.best_val,
                    "ratio": round(mine.wall_s / nano.wall_s, 3),
                    "nanogpt_phases": nano.phases(),
                    "gptkit_phases": mine.phases(),
                    # how a budgeted recipe sized its run (train.time_budget_ref_steps / time_budget_s)
                    "gptkit_budget": [line for _, line in mine.lines if line.startswith(BUDGET_LINES)],
                }
                rows.append(row)
                print(
                    f"round {r}: {label}: gptkit {mine.wall_s:.1f} s (val {mine.final_val}), nanoGPT "
                    f"{nano.wall_s:.1f} s (val {nano.final_val}): ratio {row['ratio']:.2f}",
                    flush=True,
                )
                for line in row["gptkit_budget"]:
                    print(f"  gptkit: {line}", flush=True)
    print(
        f"\npaired whole-process runs, interleaved; torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"threads {'default' if not args.threads else args.threads}; the machine may be shared (ratios only)"
    )
    header = f"{'round':>5}  {'pair':<40}{'nanoGPT s':>10}{'val':>8}{'gptkit s':>10}{'val':>8}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['round']:>5}  {row['pair']:<40}{row['nanogpt_s']:>10.1f}{row['nanogpt_val'] or 0:>8.4f}"
            f"{row['gptkit_s']:>10.1f}{row['gptkit_val'] or 0:>8.4f}{row['ratio']:>7.2f}"
        )
    print(
        "\nwhere the time went (s): startup = to the training loop (imports, data, model, optimizer), loop = to "
        "the last step's line (evaluations included), end = to the exit; step ms = median per step between "
        "progress lines without an evaluation"
    )
    header = f"{'round':>5}  {'pair':<40}{'program':>9}{'startup':>9}{'loop':>8}{'end':>6}{'step ms':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        for program in ("nanogpt", "gptkit"):
            ph = row[f"{program}_phases"]
            cells = [f"{ph[k]:>{w}.{d}f}" if ph[k] is not None else f"{'?':>{w}}" for k, w, d in PHASE_COLUMNS]
            print(f"{row['round']:>5}  {row['pair']:<40}{program:>9}{''.join(cells)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    print(f"goals: 300-step ratio <= 0.80; recipe val <= 1.60 with ratio <= 1.00. wrote {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--nanogpt", metavar="DIR", help="a karpathy/nanoGPT checkout: run it in the same run")
    parser.add_argument("--rounds", type=int, default=2, help="--nanogpt: interleaved rounds (default 2)")
    parser.add_argument("--skip-2000", action="store_true", help="--nanogpt: only the 300-step pair")
    parser.add_argument("--skip-300", action="store_true", help="--nanogpt: only the 2000-step pair")
    parser.add_argument(
        "--together",
        action="store_true",
        help="--nanogpt: run each pair at the same time (a machine whose load changes)",
    )
    parser.add_argument("--recipe", type=Path, default=RECIPE, help=f"--nanogpt: gptkit's config (default {RECIPE})")
    parser.add_argument("--out", type=Path, default=NANOGPT_RESULTS, help="--nanogpt: JSON results file")
    args = parser.parse_args()
    if not TEXT.is_file():
        raise SystemExit(f"{TEXT}: not found (the shared data folder beside the repository)")
    if args.nanogpt:
        compare_with_nanogpt(args)
        return
    settings = [*SETTINGS, f"train.max_steps={args.steps}", f"train.cpu_threads={args.threads}"]
    settings.append(f"data.path={json.dumps(str(TEXT))}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows.append(run_one("gptkit GPT", settings, tmp / "gptkit"))
        data = open_data_dir(tmp / "gptkit" / "data")  # the same tokenized data and batches for HF
        if not args.skip_hf:
            rows.append(run_one("HF GPT2LMHeadModel", settings, tmp / "hf", make_model=hf_model, data=data))

    ours = rows[0]
    print(
        f"\ntinyshakespeare char-level, nanoGPT CPU config, {args.steps} steps, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
    )
    header = f"{'model':<22}{'params':>10}{'val loss':>10}{'best val':>10}"
    header += f"{'setup s':>9}{'total s':>9}{'ms/step':>9}{'median tok/s':>14}{'at median s':>13}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['model']:<22}{r['params']:>10,}{r['final_val_loss']:>10.4f}{r['best_val_loss']:>10.4f}"
            f"{r['setup_s']:>9.1f}{r['total_s']:>9.1f}{r['ms_per_step']:>9.1f}{r['median_tokens_per_s']:>14.0f}"
            f"{r['median_rate_s']:>13.1f}"
        )
    summary = {
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "rows": rows,
    }
    if len(rows) > 1:
        summary["hf_over_gptkit_time"] = round(rows[1]["total_s"] / ours["total_s"], 3)
        summary["gptkit_over_hf_median_rate"] = round(ours["median_tokens_per_s"] / rows[1]["median_tokens_per_s"], 3)
        print(
            f"HF / gptkit wall time: {summary['hf_over_gptkit_time']:.2f}x; gptkit / HF median tokens/s: "
            f"{summary['gptkit_over_hf_median_rate']:.2f}x"
        )
    print("for nanoGPT itself in the same run: --nanogpt DIR")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
