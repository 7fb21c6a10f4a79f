"""Training checkpoints: atomic layout, retention (newest K + best), optimizer state round trip, errors."""

from __future__ import annotations

import json
import os

import pytest
import torch

import gptkit
from gptkit.errors import CheckpointError
from gptkit.train import checkpoint as ckpt
from gptkit.train.config import load_run_config
from gptkit.train.optim import build_optimizer
from tests.train_helpers import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def trained_tiny():
    torch.manual_seed(0)
    model = gptkit.GPT(gptkit.preset("tiny"))
    opt = build_optimizer(model, load_run_config(None, []).train, "cpu")
    idx = torch.randint(0, 512, (2, 16))
    for _ in range(2):
        model(idx, idx)[1].backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def save(run, step, model, opt, val=None):
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return ckpt.save_checkpoint(
        run,
        step,
        model_config=model.config,
        model_state=model.state_dict(),
        optimizer_state=get_optimizer_state_dict(model, opt),
        trainer={"val_loss": val, "loader": {"step": step}},
        training_section={"step": step},
    )


def test_checkpoint_is_a_model_dir_and_optimizer_state_round_trips(tmp_path):
    model, opt = trained_tiny()
    path = save(tmp_path, 7, model, opt, val=1.5)
    assert path == tmp_path / "checkpoints" / "step_0000007"
    loaded = gptkit.load_model(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    state = ckpt.load_checkpoint(path)
    assert state.trainer["step"] == 7 and state.trainer["val_loss"] == 1.5
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    want = get_optimizer_state_dict(model, opt)
    got = state.optimizer_state
    assert got["state"].keys() == want["state"].keys()
    for name, entry in want["state"].items():
        for key, value in entry.items():
            assert torch.equal(got["state"][name][key], value), (name, key)
    assert got["param_groups"] == want["param_groups"]
    assert json.loads((path / "config.json").read_text())["training"] == {"step": 7}


def test_retention_keeps_newest_and_best_and_points_links(tmp_path):
    model, opt = trained_tiny()
    for step, val in ((10, 1.0), (20, 2.0), (30, None), (40, 4.0)):
        save(tmp_path, step, model, opt, val)
    best = ckpt.prune_checkpoints(tmp_path, keep_last=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [10, 30, 40]
    assert best.name == "step_0000010"
    assert os.readlink(tmp_path / "best") == os.path.join("checkpoints", "step_0000010")
    assert os.readlink(tmp_path / "latest") == os.path.join("checkpoints", "step_0000040")
    assert gptkit.load_model(tmp_path / "best").config == model.config


def test_incomplete_checkpoints_are_ignored_and_removed(tmp_path):
    model, opt = trained_tiny()
    save(tmp_path, 10, model, opt)
    root = tmp_path / "checkpoints"
    (root / ".tmp-step_0000020-123").mkdir()  # killed while writing
    (root / "step_0000030").mkdir()  # no trainer_state.json: not complete
    assert ckpt.latest_checkpoint(tmp_path) == root / "step_0000010"
    removed = ckpt.remove_incomplete(tmp_path)
    assert sorted(p.name for p in removed) == [".tmp-step_0000020-123", "step_0000030"]
    assert sorted(p.name for p in root.iterdir()) == ["step_0000010"]


def test_saving_a_step_again_replaces_it(tmp_path):
    model, opt = trained_tiny()
    save(tmp_path, 10, model, opt, val=3.0)
    save(tmp_path, 10, model, opt, val=2.0)
    assert ckpt.load_checkpoint(tmp_path / "checkpoints" / "step_0000010").trainer["val_loss"] == 2.0
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_0000010"]


def test_damaged_checkpoint_files_are_named(tmp_path):
    model, opt = trained_tiny()
    path = save(tmp_path, 5, model, opt)
    (path / ckpt.OPTIMIZER_FILE).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match=r"optimizer.safetensors: cannot be read as safetensors"):
        ckpt.load_checkpoint(path)
    (path / ckpt.STATE_FILE).write_text("{")
    with pytest.raises(CheckpointError, match=r"trainer_state.json: not valid JSON"):
        ckpt.load_checkpoint(path)
