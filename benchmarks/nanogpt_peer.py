"""nanoGPT (karpathy/nanoGPT, a checkout given by path) as a peer run by benchmarks/train_cpu.py in the same run.

Nothing of nanoGPT is copied here: its own train.py runs in a work directory that links to the checkout's
train.py, model.py, configurator.py and config/, with data/shakespeare_char/ built the way its
data/shakespeare_char/prepare.py builds it (sorted characters of the whole text, first 90% train, uint16 ids,
meta.pkl with the vocabulary), from ../shared/data/tinyshakespeare.txt instead of a download.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# nanoGPT's README command for shakespeare_char on a CPU (max_iters / lr_decay_iters are set per run).
CPU_ARGS = [
    "config/train_shakespeare_char.py",
    "--device=cpu",
    "--compile=False",
    "--eval_iters=20",
    "--log_interval=1",
    "--block_size=64",
    "--batch_size=12",
    "--n_layer=4",
    "--n_head=4",
    "--n_embd=128",
    "--dropout=0.0",
    "--dtype=float32",  # what a CPU computes in anyway; its default (float16) only adds a disabled GradScaler
]
_VAL_LINE = re.compile(r"step (\d+): train loss ([0-9.]+), val loss ([0-9.]+)")


@dataclass
class ProcessRun:
    name: str
    steps: int
    wall_s: float  # the whole process, start to exit
    val_losses: dict[int, float]  # step -> val loss as the program printed it

    @property
    def final_val(self) -> float | None:
        return self.val_losses[max(self.val_losses)] if self.val_losses else None

    @property
    def best_val(self) -> float | None:
        return min(self.val_losses.values()) if self.val_losses else None


def prepare_workdir(checkout: Path, text_path: Path, work: Path) -> Path:
    """A directory nanoGPT's train.py runs in (it reads configurator.py and data/ relative to the cwd)."""
    for name in ("train.py", "model.py", "configurator.py", "config/train_shakespeare_char.py"):
        if not (checkout / name).is_file():
            raise SystemExit(f"--nanogpt {checkout}: {name} not found (expected a karpathy/nanoGPT checkout)")
    work.mkdir(parents=True, exist_ok=True)
    for name in ("train.py", "model.py", "configurator.py", "config"):
        link = work / name
        if not link.exists():
            link.symlink_to((checkout / name).resolve())
    data_dir = work / "data" / "shakespeare_char"
    data_dir.mkdir(parents=True, exist_ok=True)
    text = text_path.read_text(encoding="utf-8")
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    n = len(text)
    split = int(n * 0.9)
    for name, part in (("train.bin", text[:split]), ("val.bin", text[split:])):
        np.array([stoi[c] for c in part], dtype=np.uint16).tofile(data_dir / name)
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}
    with open(data_dir / "meta.pkl", "wb") as f:  # the format its train.py reads (our own data, written here)
        pickle.dump(meta, f)
    return work


def nanogpt_job(work: Path, steps: int, out_dir: Path) -> tuple[str, int, list[str], Path]:
    args = [*CPU_ARGS, f"--max_iters={steps}", f"--lr_decay_iters={steps}", f"--out_dir={out_dir}"]
    return f"nanoGPT {steps}", steps, [sys.executable, "train.py", *args], work


def gptkit_job(name: str, steps: int, args: list[str], cwd: Path) -> tuple[str, int, list[str], Path]:
    return name, steps, [sys.executable, "-m", "gptkit", "train", *args], cwd


def run_together(jobs: list[tuple[str, int, list[str], Path]], threads: int = 0) -> list[ProcessRun]:
    """Start the jobs at the same moment and time each to its exit: on a machine whose load changes, both
    see the same neighbours (they also compete with each other, equally)."""
    env = _env(threads)
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _, _, cmd, cwd in jobs
    ]
    runs = []
    for (name, steps, _, _), proc in zip(jobs, procs, strict=True):
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{name}: exit {proc.returncode}\n{stdout[-2000:]}\n{stderr[-3000:]}")
        runs.append(ProcessRun(name, steps, round(wall, 2), _val_losses(stdout)))
    return runs


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


_GPTKIT_VAL = re.compile(r"step (\d+): val loss ([0-9.]+)")


def timed(name: str, steps: int, cmd: list[str], cwd: Path, threads: int) -> ProcessRun:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(threads), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return ProcessRun(name, steps, round(wall, 2), _val_losses(proc.stdout))


def _val_losses(stdout: str) -> dict[int, float]:
    """step -> val loss from either program's log lines."""
    vals: dict[int, float] = {}
    for m in _VAL_LINE.finditer(stdout):
        vals[int(m.group(1))] = float(m.group(3))
    for m in _GPTKIT_VAL.finditer(stdout):
        vals[int(m.group(1))] = float(m.group(2))
    return vals
