"""Run metrics: RUN_DIR/metrics.jsonl, the live progress line, MFU, TensorBoard, and the loss plot.

metrics.jsonl has one JSON object per logged step:
    {"step", "train_loss", "lr", "grad_norm", "tokens_per_s", "mfu", "tokens", "elapsed_s"}, plus "val_loss" at
    eval steps, with "val_nats_per_char" beside it (the same loss per character, as gptkit.eval.lm counts them;
    absent for shards without tokenizer files). `step` counts optimizer updates done; `tokens` the training
    tokens seen (all ranks);
    `elapsed_s` the wall time since the loop started (evaluations and checkpoints included); `tokens_per_s`
    the rate of the steps since the previous record (evaluations and checkpoints excluded); `mfu` is null
    where the device's peak is unknown (any CPU). An evaluation before training is {"step": 0, "val_loss": ...}.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from gptkit.errors import ConfigError, GptkitError
from gptkit.train.budget import TimeBudget

METRICS_FILE = "metrics.jsonl"

# Dense peak FLOP/s per GPU by (name fragment, dtype): bf16/fp16 tensor cores, and TF32 for float32 training.
_PEAKS = (
    ("H100 PCIe", 756e12, 378e12),
    ("H200", 989.5e12, 494.7e12),
    ("H100", 989.5e12, 494.7e12),  # SXM; NVIDIA's datasheet figure without sparsity
    ("A100", 312e12, 156e12),
)


def peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """The device's dense peak FLOP/s for training in `dtype`, or None where unknown (any CPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for fragment, half, tf32 in _PEAKS:
        if fragment in name:
            return half if dtype in (torch.bfloat16, torch.float16) else tf32
    return None


class MetricsLog:
    """Appends records to RUN_DIR/metrics.jsonl (and TensorBoard); only the main process makes one."""

    def __init__(self, run_dir: str | os.PathLike, *, tensorboard: bool = False) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError(
                    "train.tensorboard: needs the tensorboard package (pip install tensorboard)"
                ) from None
            self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise GptkitError(f"{path}: not found (is {run_dir} a gptkit training run directory?)")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise GptkitError(f"{path}:{n}: not a JSON record") from None
    return records


def truncate_metrics(run_dir: str | os.PathLike, last_step: int) -> None:
    """Drop records past `last_step`: a resumed run repeats the steps after its checkpoint."""
    path = Path(run_dir) / METRICS_FILE
    if path.is_file():
        keep = [r for r in read_metrics(run_dir) if r.get("step", 0) <= last_step]
        path.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def format_count(n: float) -> str:
    for unit, size in (("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def progress_line(record: dict[str, Any], max_steps: int, eta_s: float, budget: TimeBudget | None = None) -> str:
    """One progress line. eta_s: the time max_steps would take at the current rate. Under a time budget the run
    ends at whichever comes first: the line shows the budget's clock (used / budget) and, when the budget ends
    the run, no step total (max_steps is then only a cap)."""
    step = f"step {record['step']}/{max_steps}"
    if budget:
        if budget.left() < eta_s:
            step, eta_s = f"step {record['step']}", budget.left()
        step += f" | {format_duration(budget.used())}/{format_duration(budget.seconds)} {budget.clock}"
    parts = [step, f"loss {record['train_loss']:.4f}", f"lr {record['lr']:.2e}"]
    if record.get("grad_norm") is not None:
        parts.append(f"gnorm {record['grad_norm']:.2f}")
    parts.append(f"{format_count(record['tokens_per_s'])} tok/s")
    if record.get("mfu") is not None:
        parts.append(f"mfu {100 * record['mfu']:.1f}%")
    parts.append(f"eta {format_duration(eta_s)}")
    return " | ".join(parts)


def plot_losses(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write a PNG of train and val loss against step (default RUN_DIR/loss.png); return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    train = [(r["step"], r["train_loss"]) for r in records if r.get("train_loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    if not train and not val:
        raise GptkitError(f"{Path(run_dir) / METRICS_FILE}: no loss records to plot yet")
    out = Path(out) if out is not None else Path(run_dir) / "loss.png"
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train", linewidth=1, alpha=0.8)
    if val:
        ax.plot(*zip(*val, strict=True), label="val", marker="o", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.set_title(f"gptkit: {Path(run_dir).resolve().name}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
