"""nanoGPT (karpathy/nanoGPT, a checkout given by path) as a peer run by benchmarks/train_cpu.py in the same run.

Nothing of nanoGPT is copied here: its own train.py runs in a work directory that links to the checkout's
train.py, model.py, configurator.py and config/, with data/shakespeare_char/ built the way its
data/shakespeare_char/prepare.py builds it (sorted characters of the whole text, first 90% train, uint16 ids,
meta.pkl with the vocabulary), from ../shared/data/tinyshakespeare.txt instead of a download.
"""

from __future__ import annotations

import itertools
import os
import pickle
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
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
    lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds since the start, line) of its output

    @property
    def final_val(self) -> float | None:
        return self.val_losses[max(self.val_losses)] if self.val_losses else None

    @property
    def best_val(self) -> float | None:
        return min(self.val_losses.values()) if self.val_losses else None

    def phases(self) -> dict[str, float | None]:
        """Where the process spent its time, from when its lines appeared (both programs print unbuffered):
        startup_s up to the training loop (imports, data, model, optimizer: nanoGPT's last setup line is
        "using fused AdamW", gptkit's "training N layers ..."), loop_s from there to the last step's line,
        end_s from there to the exit (gptkit's final checkpoint), and step_ms, the median time per step
        between progress lines with no evaluation in between."""
        start = next((t for t, line in self.lines if line.startswith(_LOOP_STARTS)), None)
        step_times = [(int(m.group(1) or m.group(2)), t) for t, line in self.lines if (m := _STEP_LINE.match(line))]
        if start is None or not step_times:
            return {"startup_s": start, "loop_s": None, "end_s": None, "step_ms": None}
        last = step_times[-1][1]
        evals = {t for t, line in self.lines if _VAL_LINE.search(line) or _GPTKIT_VAL.search(line)}
        rates = []
        for (s0, t0), (s1, t1) in itertools.pairwise(step_times):
            if s1 > s0 and not any(t0 < t <= t1 for t in evals):
                rates.append(1000 * (t1 - t0) / (s1 - s0))
        rates.sort()
        return {
            "startup_s": round(start, 2),
            "loop_s": round(last - start, 2),
            "end_s": round(self.wall_s - last, 2),
            "step_ms": round(rates[len(rates) // 2], 1) if rates else None,
        }


# The line each program prints just before its training loop, and its per-step progress lines.
_LOOP_STARTS = ("using fused AdamW", "training ")
_STEP_LINE = re.compile(r"iter (\d+): loss|step (\d+)(?:/\d+)? \|")


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
    t0 = time.perf_counter()
    procs = [_start(cmd, cwd, threads) for _, _, cmd, cwd in jobs]
    readers = [_LineReader(proc, t0) for proc in procs]
    return [reader.finish(name, steps) for (name, steps, _, _), reader in zip(jobs, readers, strict=True)]


def timed(name: str, steps: int, cmd: list[str], cwd: Path, threads: int) -> ProcessRun:
    t0 = time.perf_counter()
    return _LineReader(_start(cmd, cwd, threads), t0).finish(name, steps)


def _start(cmd: list[str], cwd: Path, threads: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # lines arrive when printed, so their times mean something
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class _LineReader:
    """Reads a process's output in a thread, stamping each line with the seconds since t0."""

    def __init__(self, proc: subprocess.Popen, t0: float) -> None:
        self.proc, self.t0 = proc, t0
        self.lines: list[tuple[float, str]] = []
        self.wall_s = 0.0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.perf_counter() - self.t0, line.rstrip("\n")))
        self.proc.wait()
        self.wall_s = time.perf_counter() - self.t0  # its own exit, whenever the other job of a pair ends

    def finish(self, name: str, steps: int) -> ProcessRun:
        self.thread.join()
        wall = self.wall_s
        text = "\n".join(line for _, line in self.lines)
        if self.proc.returncode != 0:
            raise SystemExit(f"{name}: exit {self.proc.returncode}\n{text[-4000:]}")
        return ProcessRun(name, steps, round(wall, 2), _val_losses(text), self.lines)


_GPTKIT_VAL = re.compile(r"step (\d+): val loss ([0-9.]+)")


def _val_losses(stdout: str) -> dict[int, float]:
    """step -> val loss from either program's log lines."""
    vals: dict[int, float] = {}
    for m in _VAL_LINE.finditer(stdout):
        vals[int(m.group(1))] = float(m.group(3))
    for m in _GPTKIT_VAL.finditer(stdout):
        vals[int(m.group(1))] = float(m.group(2))
    return vals
