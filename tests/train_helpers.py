"""Token shards and run settings for the training tests (tiny, CPU, seconds)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gptkit.data.shards import write_shards
from gptkit.train.config import RunConfig, load_run_config

FINGERPRINT = hashlib.sha256(b"test tokenizer").hexdigest()
BOS = 0
VOCAB = 100


def pattern_docs(n: int, seed: int, vocab: int = VOCAB) -> list[np.ndarray]:
    """Documents that count up from a random token (mod vocab) with 10% random tokens mixed in: a bigram
    rule a tiny model learns within a few dozen steps, so the loss falls visibly."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        length = int(rng.integers(20, 120))
        tokens = (rng.integers(1, vocab) + np.arange(length)) % (vocab - 1) + 1
        noise = rng.random(length) < 0.1
        tokens[noise] = rng.integers(1, vocab, int(noise.sum()))
        docs.append(np.concatenate([[BOS], tokens]))
    return docs


def make_shards(directory: Path, n_train: int = 300, n_val: int = 40, max_tokens: int = 8000) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("val", n_val, 2)):
        write_shards(
            directory,
            split,
            pattern_docs(n, seed),
            vocab_size=VOCAB,
            bos_id=BOS,
            tokenizer_fingerprint=FINGERPRINT,
            max_tokens=max_tokens,
        )
    return directory


TINY = [
    "model.preset=tiny",
    "model.n_embd=32",
    "model.block_size=32",
    "train.batch_size=4",
    "train.lr=1e-2",
    "train.warmup_steps=5",
    "train.eval_interval=10",
    "train.eval_steps=2",
    "train.log_interval=1",
    "train.sample_tokens=0",
    "train.device=cpu",
    # the comparisons of runs (resume, DDP / FSDP vs one process) are float32's; auto is bf16 on CPUs with bf16
    "train.dtype=float32",
]


def tiny_config(data: Path, *overrides: str) -> RunConfig:
    return load_run_config(None, [*TINY, f"data.path={json.dumps(str(data))}", *overrides])


def train_losses(run_dir: Path) -> dict[int, float]:
    from gptkit.train.metrics import read_metrics

    return {r["step"]: r["train_loss"] for r in read_metrics(run_dir) if "train_loss" in r}


def val_losses(run_dir: Path) -> dict[int, float]:
    from gptkit.train.metrics import read_metrics

    return {r["step"]: r["val_loss"] for r in read_metrics(run_dir) if r.get("val_loss") is not None}


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread, and a busy 2-core machine makes 2 threads very slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load_benchmark(name: str):
    """The script benchmarks/NAME.py imported as a module (benchmarks/ is not a package), so tests can call
    its functions."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
