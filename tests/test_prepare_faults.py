"""`prepare` when things go wrong around it: a killed run (its workers must not outlive it or keep the lock),
an output directory inside an input directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gptkit.cli import main
from tests.prepare_helpers import output_tree, write_news_corpus


def test_out_inside_an_input_directory_is_left_out_of_the_inputs(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_news_corpus(data / "news.jsonl", 60)
    out = data / "prepared"
    args = ["prepare", "--input", str(data), "--out", str(out), "--workers", "1", "--no-progress"]
    assert main(args) == 0
    first = json.loads((out / "report.json").read_text())
    assert main(args) == 0  # a re-run finds documents/*.jsonl.gz, merges.txt ... under data/: not inputs
    again = json.loads((out / "report.json").read_text())
    assert again["documents"]["in"] == first["documents"]["in"] == 60
    assert again["sources"].keys() == {str(data)} and all(s["skipped"] for s in again["stages"].values())
    capsys.readouterr()
    before = output_tree(out)
    inner = next((out / "documents").glob("*.jsonl.gz"))
    for bad in (str(inner), str(out)):  # a file inside --out, and --out itself: refused, nothing touched
        assert main(["prepare", "--input", bad, "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"--input {bad}: is inside --out {out}" in err and "Traceback" not in err
    assert output_tree(out) == before


def _prepare_cmd(inputs: list[str], out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gptkit", "prepare", "--input", *inputs, "--out", str(out), "--no-progress", *extra]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_run_leaves_no_workers_and_no_lock_and_the_rerun_finishes_it(tmp_path):
    """kill -9 of the main process in the middle of the clean stage (2 workers), then the same command at once:
    it runs (the workers died with their parent and did not keep the lock) and gives the same files as a run
    that was never interrupted."""
    corpus = tmp_path / "news.jsonl"
    write_news_corpus(corpus, 900)  # about 75 clean tasks: the kill lands long before the stage ends, when busy too
    opts = ("--workers", "2", "--split-mb", "0.02")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    whole = tmp_path / "whole"
    assert main(_prepare_cmd([str(corpus)], whole, *opts)[3:]) == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen(_prepare_cmd([str(corpus)], out, *opts), env=env, stdout=subprocess.DEVNULL)
    markers = out / "work" / "state" / "clean"
    deadline = time.monotonic() + 60
    workers: list[str] = []
    while time.monotonic() < deadline:
        done = len(list(markers.glob("*.json"))) if markers.is_dir() else 0
        if done >= 1 and not workers:  # the pool runs: list its workers now, so the kill follows done >= 2 at once
            workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        if done >= 2 and workers:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "work" / "state" / "clean.json").exists()  # killed in the middle of the stage
    assert workers  # the pool was running
    rerun = subprocess.run(_prepare_cmd([str(corpus)], out, *opts), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["stages"]["clean"]["tasks_skipped"] >= 2 and report["stages"]["clean"]["tasks_run"] > 0
    assert output_tree(out) == output_tree(whole)
    for pid in workers:  # gone (PR_SET_PDEATHSIG), not waiting on a pipe
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
