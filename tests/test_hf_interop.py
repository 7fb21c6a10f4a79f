from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from gptkit import GPT, InteropError, ModelConfig, load_model, save_model
from gptkit.cli import main as cli_main
from gptkit.interop.hf import export_hf, import_hf
from tests.hf_helpers import tiny_hf_gpt2

transformers = pytest.importorskip("transformers")


def hf_logits(model, idx, attention_mask=None):
    position_ids = None
    if attention_mask is not None:  # what HF's generate() passes for left padding
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(idx, attention_mask=attention_mask, position_ids=position_ids).logits


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_import_matches_hf_logits(tmp_path, fmt):
    hf = tiny_hf_gpt2()
    src = tmp_path / "hf"
    hf.save_pretrained(src)
    if fmt == "bin":  # the legacy format: a pickled state dict, which import reads with weights_only=True
        torch.save(hf.state_dict(), src / "pytorch_model.bin")
        (src / "model.safetensors").unlink()
    model = load_model(import_hf(src, tmp_path / "ckpt"))
    idx = torch.randint(0, 1000, (3, 40))
    with torch.no_grad():
        ours = model(idx)
    assert (ours - hf_logits(hf, idx)).abs().max() < 1e-5


def test_import_matches_hf_on_left_padded_batch(tmp_path):
    hf = tiny_hf_gpt2()
    hf.save_pretrained(tmp_path / "hf")
    model = load_model(import_hf(tmp_path / "hf", tmp_path / "ckpt"))
    idx = torch.randint(0, 1000, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[0, :7] = 0
    mask[2, :13] = 0
    with torch.no_grad():
        ours = model(idx, attention_mask=mask)
    ref = hf_logits(hf, idx, mask)
    real = mask.bool()
    assert (ours[real] - ref[real]).abs().max() < 1e-5


@pytest.mark.parametrize("overrides", [{}, {"tie_embeddings": False}, {"activation": "relu"}, {"bias": False}])
def test_export_loads_in_hf_with_same_logits(tmp_path, overrides):
    cfg = ModelConfig(vocab_size=300, block_size=32, n_layer=2, n_head=2, n_embd=16, **overrides).replace()
    model = GPT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_model(model, tmp_path / "ckpt")
    export_hf(tmp_path / "ckpt", tmp_path / "hf")
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    idx = torch.randint(0, 300, (2, 30))
    with torch.no_grad():
        assert (model(idx) - hf_logits(hf, idx)).abs().max() < 1e-5


def test_import_export_import_is_bitwise_identical(tmp_path):
    tiny_hf_gpt2().save_pretrained(tmp_path / "hf")
    import_hf(tmp_path / "hf", tmp_path / "a")
    export_hf(tmp_path / "a", tmp_path / "hf2")
    import_hf(tmp_path / "hf2", tmp_path / "b")
    a, b = load_file(str(tmp_path / "a/model.safetensors")), load_file(str(tmp_path / "b/model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (tmp_path / "a/config.json").read_text() == (tmp_path / "b/config.json").read_text()


@pytest.mark.parametrize(
    "overrides,reason",
    [
        ({"norm_position": "post"}, "post-LN"),
        ({"position_embedding": "sinusoidal"}, "sinusoidal"),
    ],
)
def test_export_refuses_what_gpt2_cannot_express(tmp_path, overrides, reason):
    cfg = ModelConfig(vocab_size=64, block_size=8, n_layer=1, n_head=1, n_embd=8, **overrides).replace()
    save_model(GPT(cfg), tmp_path / "ckpt")
    with pytest.raises(InteropError, match=reason):
        export_hf(tmp_path / "ckpt", tmp_path / "hf")


def test_import_refuses_unsupported_configs(tmp_path):
    tiny_hf_gpt2(scale_attn_by_inverse_layer_idx=True).save_pretrained(tmp_path / "hf")
    with pytest.raises(InteropError, match="scale_attn_by_inverse_layer_idx"):
        import_hf(tmp_path / "hf", tmp_path / "ckpt")
    with pytest.raises(InteropError, match="config.json: not found"):
        import_hf(tmp_path / "nothing", tmp_path / "ckpt")


def test_cli_round_trip_and_errors(tmp_path, capsys):
    hf = tiny_hf_gpt2()
    hf.save_pretrained(tmp_path / "hf")
    assert cli_main(["import-hf", str(tmp_path / "hf"), str(tmp_path / "ckpt")]) == 0
    assert cli_main(["export-hf", str(tmp_path / "ckpt"), str(tmp_path / "hf2")]) == 0
    hf2 = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf2").eval()
    idx = torch.randint(0, 1000, (2, 12))
    assert (hf_logits(hf, idx) - hf_logits(hf2, idx)).abs().max() < 1e-5
    assert cli_main(["import-hf", str(tmp_path / "missing"), str(tmp_path / "x")]) == 2
    assert "config.json: not found" in capsys.readouterr().err
