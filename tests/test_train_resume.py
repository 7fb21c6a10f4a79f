"""Resume exactness: a run stopped (cleanly, by SIGTERM, or killed with SIGKILL) and resumed matches the
straight run step for step, down to bitwise-identical final fp32 weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gptkit.train.checkpoint import latest_checkpoint, list_checkpoints
from gptkit.train.config import load_run_config
from gptkit.train.trainer import train
from tests.train_helpers import TINY, make_shards, one_thread, tiny_config, train_losses, val_losses  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")
# Dropout and accumulation on, so the test also covers the per-step RNG and the micro-batch order.
SETTINGS = ("model.dropout=0.1", "train.grad_accum=2", "train.decay_steps=40", "train.checkpoint_interval=10")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("straight")
    result = train(tiny_config(data, *SETTINGS, "train.max_steps=40"), run, quiet=True)
    assert result.step == 40 and result.interrupted is None
    return run


def final_weights(run: Path) -> dict:
    return load_file(str(latest_checkpoint(run) / "model.safetensors"))


def assert_same_run(run: Path, straight: Path, first_step: int = 1) -> None:
    got, want = train_losses(run), train_losses(straight)
    assert sorted(got) == list(range(1, 41))
    for step in range(first_step, 41):
        assert got[step] == want[step], f"step {step}: {got[step]} != {want[step]}"
    assert val_losses(run) == val_losses(straight)
    a, b = final_weights(run), final_weights(straight)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and (a[name] == b[name]).all(), name  # bitwise


def test_loss_falls_and_checkpoints_are_kept(straight):
    vals = val_losses(straight)
    assert vals[40] < vals[0] - 0.5
    assert [s for s, _ in list_checkpoints(straight)] == [30, 40]  # keep_checkpoints = 2 (best is 40 here)
    assert os.readlink(straight / "latest") == os.path.join("checkpoints", "step_0000040")
    saved = (straight / "config.toml").read_text()
    assert "max_steps = 40" in saved and "dropout = 0.1" in saved


def test_stop_and_resume_matches_the_straight_run(data, straight, tmp_path):
    train(tiny_config(data, *SETTINGS, "train.max_steps=20"), tmp_path, quiet=True)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10, 20]
    resumed = load_run_config(tmp_path / "config.toml", ["train.max_steps=40"])
    result = train(resumed, tmp_path, resume=True, quiet=True)
    assert result.step == 40
    assert_same_run(tmp_path, straight)


def test_a_finished_run_is_not_overwritten(data, straight):
    from gptkit.errors import GptkitError

    with pytest.raises(GptkitError, match="already holds a training run; pass --resume"):
        train(tiny_config(data, *SETTINGS, "train.max_steps=40"), straight, quiet=True)


def _start(data: Path, run: Path, *extra: str) -> subprocess.Popen:
    sets = [a for s in (*TINY, *SETTINGS, "train.max_steps=40", *extra) for a in ("--set", s)]
    cmd = [sys.executable, "-m", "gptkit", "train", "--data", str(data), "--out", str(run), *sets]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_step(proc: subprocess.Popen, run: Path, step: int, timeout: float = 60) -> int:
    """Poll metrics.jsonl until it reaches `step`; return the last logged step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = run / "metrics.jsonl"
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
            if lines and lines[-1]["step"] >= step:
                return lines[-1]["step"]
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.002)
    raise AssertionError("the run did not get there in time")


def _resume(run: Path):
    """Continue the run in this process, as `gptkit train --out RUN --resume` does."""
    return train(load_run_config(run / "config.toml"), run, resume=True)


def test_sigkill_between_checkpoints_then_resume(data, straight, tmp_path, capsys):
    proc = _start(data, tmp_path, "train.eval_interval=0")
    _wait_for_step(proc, tmp_path, 13)
    proc.kill()
    proc.wait()
    last = list_checkpoints(tmp_path)[-1][0]
    assert 10 <= last < 40
    assert _resume(tmp_path).step == 40
    assert f"resumed from {tmp_path / 'checkpoints' / f'step_{last:07d}'} (step {last})" in capsys.readouterr().out
    # eval_interval differs from the straight run, so compare the training losses and weights only.
    got, want = train_losses(tmp_path), train_losses(straight)
    assert sorted(got) == list(range(1, 41))
    assert all(got[s] == want[s] for s in range(1, 41))
    a, b = final_weights(tmp_path), final_weights(straight)
    assert all((a[k] == b[k]).all() for k in a)


def test_sigterm_saves_then_resume(data, straight, tmp_path):
    proc = _start(data, tmp_path)
    _wait_for_step(proc, tmp_path, 12)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    stopped = list_checkpoints(tmp_path)[-1][0]
    assert f"stopped by SIGTERM after step {stopped}" in out and "Traceback" not in out
    if stopped < 40:
        assert _resume(tmp_path).step == 40
    assert_same_run(tmp_path, straight)
