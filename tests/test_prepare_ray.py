"""`prepare --executor ray`: the same files as the local executor, also when a worker or the driver is killed.

One Ray instance for the module (ray.init(num_cpus=2), a few seconds), and one xdist group, so the whole test run
starts Ray once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gptkit.data import pipeline
from gptkit.data.pipeline import PrepareConfig, prepare
from tests.prepare_helpers import output_tree, write_news_corpus
from tests.test_prepare import _corpus

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    # "local": our own instance, not one another job on this machine started
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _config(inputs, out, **kw) -> PrepareConfig:
    base = dict(inputs=tuple(map(str, inputs)), out=str(out), vocab_size=300, val_fraction=0.2, split_bytes=20_000,
                workers=1, progress=False)  # fmt: skip
    return PrepareConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    """Cut from builtin:zh-news and builtin:zh-reviews, with English, duplicates, near duplicates, junk."""
    return _corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def local(corpus, tmp_path_factory) -> dict[str, bytes]:
    """The reference: the local executor in this process, one worker, one dedup partition."""
    out = tmp_path_factory.mktemp("local") / "out"
    prepare(_config(corpus, out))
    return output_tree(out)


def test_ray_gives_the_local_files_with_2_workers_and_4_partitions(ray_cluster, corpus, local, tmp_path):
    out = tmp_path / "ray"
    report = prepare(_config(corpus, out, executor="ray", workers=2, dedup_partitions=4))
    tree = output_tree(out)
    kinds = {name.split("/")[0] if "/" in name else name.split("_")[0] for name in tree}
    assert {"documents", "rejected", "train", "val", "tokenizer.json", "gptkit"} <= kinds  # every kind compared
    assert tree == local
    assert report["stages"]["lsh"]["tasks_run"] == 14 * 4 and report["stages"]["exact"]["tasks_run"] == 4
    assert report["dedup"]["exact_duplicates"] >= 2 and report["dedup"]["near_duplicates"] >= 1
    two = tmp_path / "local-2"  # and the local executor with 2 worker processes and 4 partitions
    prepare(_config(corpus, two, workers=2, dedup_partitions=4))
    assert output_tree(two) == local


def test_a_worker_killed_inside_a_clean_task_is_retried_with_the_same_output(
    ray_cluster, corpus, local, tmp_path, monkeypatch
):
    flag = str(tmp_path / "killed")
    real_task = pipeline.clean_task

    def clean_task_killed_once(out, item, *settings, progress=None):
        # runs in a Ray worker (pickled by value: defined here); the first attempt at split 1 SIGKILLs its own
        # worker process after a few documents, with its .tmp files open
        from gptkit.data import tasks

        if item[0] != 1:
            return real_task(out, item, *settings, progress=progress)
        with open(flag, "a") as f:
            f.write(f"{os.getpid()}\n")  # one line per attempt
        if Path(flag).read_text().count("\n") == 1:
            real, calls = tasks.clean_document, [0]

            def dying(*args, **kwargs):
                calls[0] += 1
                if calls[0] == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kwargs)

            tasks.clean_document = dying
            tasks.CLEAN_CACHE.clear()  # this worker may have cleaned these texts for another test
        return real_task(out, item, *settings, progress=progress)

    monkeypatch.setattr(pipeline, "clean_task", clean_task_killed_once)
    out = tmp_path / "ray"
    prepare(_config(corpus, out, executor="ray", workers=2))
    attempts = Path(flag).read_text().split()
    assert len(attempts) == 2 and attempts[0] != attempts[1]  # killed once, retried in another worker process
    assert output_tree(out) == local
    assert not list(out.rglob("*.tmp"))  # the killed attempt's files were removed


@pytest.mark.slow  # two driver processes that start and join Ray: ~10 s on a quiet machine, 26 s on a loaded one
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 of a subprocess")
def test_a_killed_driver_is_resumed_by_running_the_command_again(ray_cluster, tmp_path):
    corpus = tmp_path / "news.jsonl"
    write_news_corpus(corpus, 300)
    opts = ["--workers", "2", "--split-mb", "0.02", "--no-progress"]
    whole = tmp_path / "local"
    prepare(_config([corpus], whole, vocab_size=None, val_fraction=0.01, split_bytes=int(0.02 * (1 << 20)), workers=2))
    out = tmp_path / "ray"
    cmd = [sys.executable, "-m", "gptkit", "prepare", "--input", str(corpus), "--out", str(out), *opts,
           "--executor", "ray", "--ray-address", ray_cluster]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    markers = out / "work" / "state" / "clean"
    deadline = time.monotonic() + 120
    while not (markers.is_dir() and len(list(markers.glob("*.json"))) >= 2) and time.monotonic() < deadline:
        time.sleep(0.005)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert not (out / "work" / "state" / "clean.json").exists()  # killed in the middle of the stage
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["stages"]["clean"]["tasks_skipped"] >= 2 and report["stages"]["clean"]["tasks_run"] > 0
    assert output_tree(out) == output_tree(whole)
    assert not list(out.rglob("*.tmp"))
