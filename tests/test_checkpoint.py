from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from gptkit import GPT, CheckpointError, ModelConfig, load_model, save_model
from gptkit.checkpoint import update_config_json


def tiny(**overrides) -> GPT:
    cfg = ModelConfig(vocab_size=77, block_size=16, n_layer=2, n_head=2, n_embd=16, **overrides).replace()
    return GPT(cfg)


@pytest.mark.parametrize("overrides", [{}, {"tie_embeddings": False}, {"position_embedding": "sinusoidal"}])
def test_save_load_round_trip_is_bitwise(tmp_path, overrides):
    model = tiny(**overrides)
    save_model(model, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert not loaded.training
    for (n1, t1), (n2, t2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(t1, t2), n1
    idx = torch.randint(0, 77, (2, 9))
    assert torch.equal(model.eval()(idx), loaded(idx))
    assert (loaded.lm_head.weight is loaded.wte.weight) == model.config.tie_embeddings
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"config.json", "model.safetensors"}


def test_load_in_bf16(tmp_path):
    save_model(tiny(), tmp_path)
    assert load_model(tmp_path, dtype=torch.bfloat16).wte.weight.dtype == torch.bfloat16


def test_other_config_sections_survive_save(tmp_path):
    update_config_json(tmp_path, {"tokenizer": {"kind": "bpe"}})
    save_model(tiny(), tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["tokenizer"] == {"kind": "bpe"} and data["model"]["vocab_size"] == 77


def _edit_weights(path, edit):
    state = load_file(str(path / "model.safetensors"))
    edit(state)
    save_file(state, str(path / "model.safetensors"))


def test_missing_unknown_and_misshapen_tensors_are_named(tmp_path):
    save_model(tiny(), tmp_path)
    _edit_weights(tmp_path, lambda s: s.pop("h.1.mlp.c_fc.weight"))
    with pytest.raises(CheckpointError, match=r"missing tensor 'h.1.mlp.c_fc.weight'"):
        load_model(tmp_path)
    save_model(tiny(), tmp_path)
    _edit_weights(tmp_path, lambda s: s.update({"h.9.extra": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"unknown tensor 'h.9.extra'"):
        load_model(tmp_path)
    save_model(tiny(), tmp_path)
    _edit_weights(tmp_path, lambda s: s.update({"ln_f.weight": torch.zeros(15)}))
    with pytest.raises(CheckpointError, match=r"'ln_f.weight' has shape \(15,\), the config needs \(16,\)"):
        load_model(tmp_path)


def test_bad_config_values_are_named(tmp_path):
    save_model(tiny(), tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data["model"]["n_head"] = 3
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"config.json: model.n_embd: 16 is not divisible by n_head=3"):
        load_model(tmp_path)
    data["model"]["n_head"] = 2
    data["model"]["rotary"] = True
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"model.rotary: unknown setting"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nowhere")


def test_weights_that_are_not_safetensors_are_refused(tmp_path):
    save_model(tiny(), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04this is a pickle, not safetensors")
    with pytest.raises(CheckpointError, match="cannot be read as safetensors"):
        load_model(tmp_path)
