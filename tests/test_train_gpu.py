"""CUDA training paths (bf16 autocast + compile + fused AdamW; fp16 with the grad scaler). Skipped without CUDA."""

from __future__ import annotations

import json

import pytest
import torch

from gptkit.train.checkpoint import load_checkpoint
from gptkit.train.config import load_run_config
from gptkit.train.trainer import train
from tests.train_helpers import make_shards, tiny_config, val_losses

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"))


def cuda(data, *extra):
    return tiny_config(data, "train.device=cuda", "train.max_steps=30", "train.eval_interval=15", *extra)


def test_bf16_compiled_fused_adamw_learns(data, tmp_path):
    result = train(cuda(data, "train.dtype=bfloat16", "train.compile=true"), tmp_path, quiet=True)
    vals = val_losses(tmp_path)
    assert result.step == 30 and vals[30] < vals[0] - 0.5
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["tokens_per_s"] > 0 for r in records if "tokens_per_s" in r)


def test_fp16_grad_scaler_state_is_saved_and_resumed(data, tmp_path):
    train(cuda(data, "train.dtype=float16", "train.max_steps=15", "train.decay_steps=30"), tmp_path, quiet=True)
    state = load_checkpoint(tmp_path / "latest").trainer
    assert state["scaler"]["scale"] > 0
    cfg = load_run_config(tmp_path / "config.toml", ["train.max_steps=30"])
    result = train(cfg, tmp_path, resume=True, quiet=True)
    assert result.step == 30 and result.val_loss < val_losses(tmp_path)[0] - 0.5
