"""Distributed training on the CPU (gloo): 2 ranks with micro-batch b give the losses of 1 process with
batch 2b, under DDP and under FSDP2 (stopped and resumed); an FSDP2 checkpoint resumes in a single process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gptkit.train.checkpoint import latest_checkpoint
from gptkit.train.config import load_run_config
from gptkit.train.metrics import read_metrics
from gptkit.train.trainer import train
from tests.train_helpers import TINY, make_shards, one_thread, tiny_config, train_losses, val_losses  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")
# No biases: the key projection's bias gets a zero gradient in exact arithmetic (softmax ignores a shift
# shared by all keys), so its float noise, normalised by Adam, would differ between runs by up to lr per step.
SETTINGS = (
    "model.bias=false",
    "train.max_steps=10",
    "train.decay_steps=20",
    "train.eval_interval=5",
    "train.warmup_steps=2",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    """One process with batch 4 (the reference)."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("single")
    train(tiny_config(data, *SETTINGS, "train.batch_size=4"), run, quiet=True)
    return run


def torchrun(data: Path, run: Path, *extra: str, resume: bool = False) -> None:
    sets = [a for s in (*TINY, *SETTINGS, "train.batch_size=2", *extra) for a in ("--set", s)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "gptkit", "train", "--out", str(run), *(["--resume"] if resume else ["--data", str(data)]), *sets]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def assert_close_runs(a: Path, b: Path, steps: int = 10) -> None:
    la, lb = train_losses(a), train_losses(b)
    assert sorted(la) == sorted(lb) == list(range(1, steps + 1))
    for step in la:
        assert la[step] == pytest.approx(lb[step], rel=0, abs=1e-5), step
    va, vb = val_losses(a), val_losses(b)
    assert va.keys() == vb.keys() and all(va[s] == pytest.approx(vb[s], abs=1e-5) for s in va)
    wa = load_file(str(latest_checkpoint(a) / "model.safetensors"))
    wb = load_file(str(latest_checkpoint(b) / "model.safetensors"))
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=1e-5)


def test_ddp_two_ranks_match_one_process_with_twice_the_batch(data, single, tmp_path):
    torchrun(data, tmp_path)
    assert_close_runs(tmp_path, single)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_0000010"]  # rank 0 wrote it alone


def test_ddp_under_a_time_budget_ends_every_rank_at_the_same_step(data, tmp_path):
    # Each rank's clock differs: without one agreed reading per step a rank could leave the loop while its
    # peer waits in the next all-reduce (the agreement itself: test_train_fast.py's agreed-budget test).
    budget = ("train.max_steps=100000", "train.time_budget_s=3", "train.schedule=wsd", "train.eval_interval=0")
    torchrun(data, tmp_path, *budget, "train.checkpoint_interval=0", "train.min_lr=0.0")
    records = [r for r in read_metrics(tmp_path) if "train_loss" in r]
    last = records[-1]["step"]
    assert 3 < last < 100000
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [f"step_{last:07d}"]
    assert records[-1]["lr"] < 0.2 * records[len(records) // 2]["lr"]  # the schedule ran over the seconds


@pytest.mark.slow  # three torchrun / training runs: about 20-30 s on 2 cores
def test_fsdp_two_ranks_match_resume_and_continue_in_one_process(data, single, tmp_path_factory):
    fsdp = tmp_path_factory.mktemp("fsdp")
    torchrun(data, fsdp, "train.parallel=fsdp", "train.max_steps=5")  # stop at step 5, then resume sharded
    torchrun(data, fsdp, "train.parallel=fsdp", resume=True)
    assert_close_runs(fsdp, single)
    # The gathered (unsharded) checkpoint continues in a single process, as the straight single run does.
    cfg = load_run_config(fsdp / "config.toml", ["train.max_steps=20", "train.batch_size=4", "train.parallel=ddp"])
    train(cfg, fsdp, resume=True, quiet=True)
    straight = tmp_path_factory.mktemp("single20")
    train(tiny_config(data, *SETTINGS, "train.batch_size=4", "train.max_steps=20"), straight, quiet=True)
    assert_close_runs(fsdp, straight, steps=20)
