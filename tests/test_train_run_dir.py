"""RUN_DIR safety through the CLI: a refused --resume leaves the run resumable, what may change on resume,
the RUN_DIR lock, a damaged newest checkpoint, and resuming from another working directory (issue 10)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gptkit.data.runner import output_lock
from gptkit.errors import GptkitError
from gptkit.train.checkpoint import list_checkpoints
from gptkit.train.config import tomllib
from tests.cli_workspace import RUN_SETTINGS, changed_paths, set_args, snapshot


def saved_settings(run: Path) -> dict:
    return tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))


def test_refused_resume_leaves_the_run_resumable_and_allowed_changes_apply(cli_workspace, gptkit_cli):
    run = cli_workspace / "run"
    for bad in (["--set", "model.n_layer=6"], ["--data", str(cli_workspace / "empty.txt")]):
        r = gptkit_cli.run(["train", "--out", str(run), "--resume", *bad], cli_workspace)
        assert r.returncode == 2 and "fixed on resume" in r.stderr, r.stderr
    assert saved_settings(run)["model"]["n_layer"] == 2
    allowed = [
        "train.max_steps=6",
        "train.lr=5e-3",
        "train.eval_interval=3",
        "train.checkpoint_interval=3",
        "train.batch_size=1",
        "train.grad_accum=2",
    ]  # the same global batch (2 windows per step)
    r = gptkit_cli.run(["train", "--out", str(run), "--resume", *set_args(allowed)], cli_workspace)
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stdout and "steps 4 -> 6" in r.stdout
    train = saved_settings(run)["train"]
    assert (train["max_steps"], train["lr"], train["eval_interval"]) == (6, 5e-3, 3)
    assert [step for step, _ in list_checkpoints(run)] == [4, 6]


def test_a_finished_run_resumed_without_more_steps_is_refused(cli_workspace, gptkit_cli):
    run = cli_workspace / "run"
    before = snapshot(cli_workspace)
    r = gptkit_cli.run(["train", "--out", str(run), "--resume"], cli_workspace)
    assert r.returncode == 2 and "already at train.max_steps=4" in r.stderr, r.stderr
    assert "--set train.max_steps=N with N > 4" in r.stderr
    assert not changed_paths(before, snapshot(cli_workspace))


def test_resume_from_another_working_directory(cli_workspace, gptkit_cli, tmp_path):
    # The run was started with a relative --data path; its settings must still find the data elsewhere.
    r = gptkit_cli.run(
        ["train", "--data", "text.txt", "--out", "rel_run", *set_args([*RUN_SETTINGS, "train.max_steps=2"])],
        cli_workspace,
    )
    assert r.returncode == 0, r.stderr
    assert saved_settings(cli_workspace / "rel_run")["data"]["path"] == str(cli_workspace / "text.txt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = str(cli_workspace / "rel_run")
    r = gptkit_cli.run(["train", "--out", run, "--resume", "--set", "train.max_steps=4"], elsewhere)
    assert r.returncode == 0, r.stderr
    assert [step for step, _ in list_checkpoints(run)] == [2, 4]


def test_a_second_run_on_a_locked_run_dir_is_refused_and_touches_nothing(cli_workspace, gptkit_cli):
    run = cli_workspace / "run"
    # A live run's half-written checkpoint, which a second process must not clean away.
    (run / "checkpoints" / ".tmp-step_0000006-99999").mkdir()
    before = snapshot(cli_workspace)
    with output_lock(run, lock=run / "train.lock", what="test", error=GptkitError):  # held as a live run holds it
        for argv in (
            ["train", "--out", str(run), "--resume", "--set", "train.max_steps=8"],
            ["train", "--data", "text.txt", "--out", str(run), *set_args(RUN_SETTINGS)],
        ):
            r = gptkit_cli.run(argv, cli_workspace)
            assert r.returncode == 2, r.stderr
            assert "another `gptkit train` is writing this directory" in r.stderr, r.stderr
    assert not changed_paths(before, snapshot(cli_workspace))


def test_two_runs_started_together_one_trains_the_other_is_refused(cli_workspace):
    """Two real `gptkit train` processes on one new --out, started 0.1 s apart."""
    argv = [sys.executable, "-m", "gptkit", "train", "--data", "text.txt", "--out", "both"]
    argv += set_args([*RUN_SETTINGS, "train.max_steps=400", "train.checkpoint_interval=400"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    kw = dict(cwd=cli_workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = subprocess.Popen(argv, **kw)
    time.sleep(0.1)
    second = subprocess.Popen(argv, **kw)
    try:
        deadline = time.monotonic() + 120
        while first.poll() is None and second.poll() is None:
            assert time.monotonic() < deadline, "neither run stopped"
            time.sleep(0.05)
        done, live = (first, second) if first.poll() is not None else (second, first)
        err = done.stderr.read()
        assert done.returncode == 2, err
        assert "another `gptkit train` is writing this directory" in err
        assert live.poll() is None  # the other one is still training
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()


def test_damaged_newest_checkpoint_names_the_intact_older_one(cli_workspace, gptkit_cli):
    run = cli_workspace / "run"
    (older, _), (newest, newest_path) = [(s, p) for s, p in list_checkpoints(run)]
    weights = newest_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    older_path = run / "checkpoints" / f"step_{older:07d}"
    before = snapshot(cli_workspace)
    r = gptkit_cli.run(["train", "--out", str(run), "--resume", "--set", "train.max_steps=6"], cli_workspace)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert str(weights) in r.stderr and f"--resume-from {older_path}" in r.stderr, r.stderr
    assert not changed_paths(before, snapshot(cli_workspace))
    r = gptkit_cli.run(
        ["train", "--out", str(run), "--resume-from", str(older_path), "--set", "train.max_steps=6"], cli_workspace
    )
    assert r.returncode == 0, r.stderr
    assert f"resumed from {older_path} (step {older})" in r.stdout
    assert [step for step, _ in list_checkpoints(run)][-1] == 6


def test_resume_from_must_be_a_checkpoint_of_the_run(cli_workspace, gptkit_cli):
    run = cli_workspace / "run"
    other = cli_workspace / "other_ck"
    shutil.copytree(run / "checkpoints" / "step_0000002", other)
    r = gptkit_cli.run(["train", "--out", str(run), "--resume-from", str(other)], cli_workspace)
    assert r.returncode == 2 and "not a complete checkpoint of" in r.stderr and "step_0000004" in r.stderr, r.stderr


@pytest.mark.parametrize("damaged", ["optimizer.safetensors", "trainer_state.json"])
def test_other_damage_to_the_newest_checkpoint_is_named_too(damaged, cli_workspace, gptkit_cli):
    run = cli_workspace / "run"
    (_, older_path), (_, newest_path) = list_checkpoints(run)
    broken = newest_path / damaged
    broken.write_bytes(broken.read_bytes()[: len(broken.read_bytes()) // 2])  # truncated
    before = snapshot(cli_workspace)
    r = gptkit_cli.run(["train", "--out", str(run), "--resume", "--set", "train.max_steps=6"], cli_workspace)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert str(broken) in r.stderr and f"--resume-from {older_path}" in r.stderr, r.stderr
    assert not changed_paths(before, snapshot(cli_workspace))
