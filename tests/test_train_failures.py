"""Failures stop the run with a message naming the step, file or setting, and lose nothing saved."""

from __future__ import annotations

import json

import pytest

from gptkit.cli import main
from gptkit.data.shards import HEADER_SIZE, ShardError, shard_paths
from gptkit.model import GPT
from gptkit.train.checkpoint import list_checkpoints
from gptkit.train.metrics import plot_losses, read_metrics
from gptkit.train.trainer import TrainingError, train
from tests.train_helpers import make_shards, one_thread, tiny_config  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def data(tmp_path):
    return make_shards(tmp_path / "shards")


def test_nan_loss_stops_naming_the_step_and_the_last_good_checkpoint(data, tmp_path, monkeypatch):
    forward = GPT.forward
    calls = {"n": 0}

    def poisoned(self, idx, targets=None, **kw):
        out = forward(self, idx, targets, **kw)
        if targets is not None and self.training:
            calls["n"] += 1
            if calls["n"] == 8:  # the 8th training micro-batch: step 8
                return out[0], out[1] * float("nan")
        return out

    monkeypatch.setattr(GPT, "forward", poisoned)
    run = tmp_path / "run"
    cfg = tiny_config(data, "train.max_steps=20", "train.checkpoint_interval=5", "train.log_interval=4")
    with pytest.raises(TrainingError) as err:
        train(cfg, run, quiet=True)
    message = str(err.value)
    assert "the training loss became nan at step 8" in message
    assert f"the last good checkpoint is {run / 'checkpoints' / 'step_0000005'} (step 5)" in message
    assert [s for s, _ in list_checkpoints(run)] == [5]  # nothing saved after the bad step
    assert max(r["step"] for r in read_metrics(run)) <= 7


def test_nan_before_any_checkpoint_says_so(data, tmp_path, monkeypatch):
    forward = GPT.forward

    def infinite(self, idx, targets=None, **kw):
        logits, loss = forward(self, idx, targets, **kw)
        return logits, loss * float("inf")

    monkeypatch.setattr(GPT, "forward", infinite)
    cfg = tiny_config(data, "train.max_steps=5", "train.eval_interval=0")
    with pytest.raises(TrainingError, match="became inf at step 1; stopped there: no checkpoint had been saved"):
        train(cfg, tmp_path / "run", quiet=True)


def test_corrupt_shard_stops_before_training_naming_the_file(data, tmp_path, capsys):
    path = shard_paths(data, "train")[1]
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + 11] ^= 0x40
    path.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match=rf"{path}: corrupt: checksum"):
        train(tiny_config(data), tmp_path / "run", quiet=True)
    # The CLI prints it as an error without a traceback and exits 2.
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "run2"), "--set", "train.device=cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"gptkit: error: {path}: corrupt" in err and "Traceback" not in err


def test_truncated_shard_and_foreign_tokenizer_are_named(data, tmp_path):
    path = shard_paths(data, "val")[0]
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ShardError, match=rf"{path}: truncated or padded"):
        train(tiny_config(data), tmp_path / "run", quiet=True)


def test_cli_names_bad_settings(data, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--data", str(data), "--out", out, "--set", "train.lr_max=1"]) == 2
    assert "gptkit: error: train.lr_max: unknown setting for TrainConfig" in capsys.readouterr().err
    toml = tmp_path / "bad.toml"
    toml.write_text('[model]\npreset = "tiny"\nn_layer = "four"\n')
    assert main(["train", "--data", str(data), "--out", out, "--config", str(toml)]) == 2
    assert "bad.toml: model.n_layer: expected int, got 'four'" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", out]) == 2
    assert "nowhere: no such file or directory" in capsys.readouterr().err
    assert main(["train", "--out", out, "--resume"]) == 2
    assert "there is no run to resume" in capsys.readouterr().err


def test_cli_train_then_plot(data, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run)]
    for s in ("model.preset=tiny", "model.block_size=32", "train.max_steps=12", "train.eval_interval=6"):
        args += ["--set", s]
    assert main([*args, "--set", "train.device=cpu", "--set", "train.sample_tokens=0"]) == 0
    out = capsys.readouterr().out
    assert "step 12/12" in out and "saved checkpoint" in out
    records = read_metrics(run)
    assert [r["step"] for r in records if "val_loss" in r] == [0, 6, 12]
    logged = [r for r in records if r["step"] in (10, 12)]
    assert len(logged) == 2 and all(set(r) >= {"train_loss", "lr", "tokens_per_s", "mfu"} for r in logged)
    assert main(["plot", str(run)]) == 0
    png = run / "loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_losses(run, tmp_path / "x.png").stat().st_size > 1000
    saved = json.loads((run / "latest" / "config.json").read_text())
    assert saved["training"]["step"] == 12 and saved["model"]["block_size"] == 32


def test_tensorboard_writes_events_or_names_the_missing_package(data, tmp_path):
    from gptkit.errors import ConfigError

    cfg = tiny_config(data, "train.max_steps=2", "train.tensorboard=true")
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"train\.tensorboard: needs the tensorboard package"):
            train(cfg, tmp_path / "run", quiet=True)
        train(tiny_config(data, "train.max_steps=2"), tmp_path / "run", quiet=True)  # the directory is reusable
    else:
        train(cfg, tmp_path / "run", quiet=True)
        assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_without_clipping_no_grad_norm_is_logged(data, tmp_path):
    train(tiny_config(data, "train.max_steps=3", "train.grad_clip=0"), tmp_path / "run", quiet=True)
    records = [r for r in read_metrics(tmp_path / "run") if "train_loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3] and all(r["grad_norm"] is None for r in records)
