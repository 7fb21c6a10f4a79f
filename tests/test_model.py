from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gptkit import GPT, KVCache, ModelConfig, preset
from gptkit.model_info import model_stats, train_flops_per_token
from tests.reference import reference_logits


def small_config(**overrides) -> ModelConfig:
    base = dict(vocab_size=101, block_size=32, n_layer=2, n_head=4, n_embd=32, dropout=0.0)
    return ModelConfig(**{**base, **overrides}).replace()


def randomized(cfg: ModelConfig, dtype: torch.dtype = torch.float32) -> GPT:
    """A model whose every parameter (LayerNorms and biases too) is random, so no term hides at 0 or 1."""
    model = GPT(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if "ln" in name else 0.05))
    return model.to(dtype).eval()


VARIANTS = [
    dict(),  # GPT-2: pre-LN, learned positions, tanh GELU, tied
    dict(norm_position="post"),  # GPT-1
    dict(position_embedding="sinusoidal"),
    dict(activation="relu", bias=False),
    dict(activation="gelu", tie_embeddings=False, n_inner=48),
    dict(norm_position="post", position_embedding="sinusoidal", activation="relu"),
]


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "gpt2")
def test_forward_matches_float64_reference(overrides):
    cfg = small_config(**overrides)
    model = randomized(cfg, torch.float64)
    idx = torch.randint(0, cfg.vocab_size, (3, 17))
    expected = reference_logits(model.state_dict(), cfg, idx)
    got = model(idx)
    assert got.shape == (3, 17, cfg.vocab_size)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    # The fp32 model stays close to the float64 equations.
    got32 = model.float()(idx)
    assert (got32.double() - expected).abs().max() < 1e-4


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_sdpa_and_explicit_attention_agree(norm_position):
    cfg = small_config(norm_position=norm_position)
    sdpa = randomized(cfg)
    explicit = GPT(cfg.replace(attention="explicit")).eval()
    explicit.load_state_dict(sdpa.state_dict())
    idx = torch.randint(0, cfg.vocab_size, (2, 20))
    torch.testing.assert_close(sdpa(idx), explicit(idx), rtol=0, atol=1e-5)
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[0, :5] = 0
    torch.testing.assert_close(
        sdpa(idx, attention_mask=mask)[0, 5:], explicit(idx, attention_mask=mask)[0, 5:], rtol=0, atol=1e-5
    )


@pytest.mark.parametrize("attention", ["sdpa", "explicit"])
@pytest.mark.parametrize("position_embedding", ["learned", "sinusoidal"])
def test_kv_cache_decoding_matches_full_forward(attention, position_embedding):
    cfg = small_config(attention=attention, position_embedding=position_embedding)
    model = randomized(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 24))
    full = model(idx)
    cache = KVCache(cfg, batch_size=2, max_len=24)
    prefill = model(idx[:, :9], kv_cache=cache)
    torch.testing.assert_close(prefill, full[:, :9], rtol=0, atol=1e-5)
    for t in range(9, 24):
        step = model(idx[:, t : t + 1], kv_cache=cache)
        torch.testing.assert_close(step[:, 0], full[:, t], rtol=0, atol=1e-5)
    assert cache.length == 24


def test_left_padded_batch_matches_each_prompt_alone_with_cache():
    cfg = small_config()
    model = randomized(cfg)
    lengths = [5, 11, 8]
    prompts = [torch.randint(0, cfg.vocab_size, (n,)) for n in lengths]
    continuation = torch.randint(0, cfg.vocab_size, (3, 4))
    T = max(lengths)
    idx = torch.zeros(3, T, dtype=torch.long)
    mask = torch.zeros(3, T, dtype=torch.long)
    for i, p in enumerate(prompts):
        idx[i, T - len(p) :] = p
        mask[i, T - len(p) :] = 1
    cache = KVCache(cfg, batch_size=3, max_len=T + 4)
    logits = model(idx, attention_mask=mask, kv_cache=cache)
    step_logits = []
    for t in range(4):
        mask = torch.cat([mask, torch.ones(3, 1, dtype=torch.long)], dim=1)
        step_logits.append(model(continuation[:, t : t + 1], attention_mask=mask, kv_cache=cache)[:, 0])
    for i, p in enumerate(prompts):
        alone = model(torch.cat([p, continuation[i]]).unsqueeze(0))[0]
        n = len(p)
        torch.testing.assert_close(logits[i, T - n :], alone[:n], rtol=0, atol=1e-5)
        for t in range(4):
            torch.testing.assert_close(step_logits[t][i], alone[n + t], rtol=0, atol=1e-5)
    assert torch.isfinite(logits).all()  # padding rows give finite values, never NaN


def test_loss_is_cross_entropy_over_real_vocab_ignoring_minus_100():
    cfg = small_config(vocab_size=70)  # padded to 128 columns
    assert cfg.padded_vocab_size == 128
    model = randomized(cfg)
    idx = torch.randint(0, 70, (2, 10))
    targets = torch.randint(0, 70, (2, 10))
    targets[0, :3] = -100
    logits, loss = model(idx, targets)
    assert logits.shape == (2, 10, 70)
    keep = targets != -100
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    expected = -log_probs[keep].gather(-1, targets[keep].unsqueeze(-1)).mean()
    assert abs(loss.item() - expected.item()) < 1e-5
    loss.backward()
    # Padding rows of the (tied) embedding never receive gradient.
    assert model.wte.weight.grad[70:].abs().max() == 0
    assert model.wte.weight.grad[:70].abs().max() > 0


def test_last_logits_only_and_generation_shape():
    cfg = small_config(vocab_size=70)
    model = randomized(cfg)
    idx = torch.randint(0, 70, (2, 6))
    last = model(idx, last_logits_only=True)
    assert last.shape == (2, 1, 70)
    torch.testing.assert_close(last[:, 0], model(idx)[:, -1])


def test_sequence_longer_than_block_size_is_an_error():
    cfg = small_config()
    with pytest.raises(ValueError, match="block_size 32"):
        GPT(cfg)(torch.zeros(1, 33, dtype=torch.long))


def test_dropout_active_only_in_training():
    cfg = small_config(dropout=0.3)
    model = randomized(cfg).train()
    idx = torch.randint(0, cfg.vocab_size, (2, 12))
    assert not torch.equal(model(idx), model(idx))
    model.eval()
    assert torch.equal(model(idx), model(idx))


def test_gpt2_initialisation_statistics():
    cfg = small_config(n_layer=6, n_embd=256, n_head=4, vocab_size=1000)
    model = GPT(cfg)
    assert abs(model.h[0].attn.c_attn.weight.std().item() - 0.02) < 0.001
    assert abs(model.h[3].mlp.c_fc.weight.std().item() - 0.02) < 0.001
    scaled = 0.02 / math.sqrt(2 * 6)
    assert abs(model.h[2].attn.c_proj.weight.std().item() - scaled) < 0.0005
    assert abs(model.h[5].mlp.c_proj.weight.std().item() - scaled) < 0.0005
    assert model.lm_head.weight is model.wte.weight
    assert model.wte.weight[1000:].abs().max() == 0  # padding rows
    assert model.h[0].attn.c_attn.bias.abs().max() == 0


def test_xavier_and_kaiming_initialisation():
    cfg = small_config(n_embd=256, n_head=4)
    xavier = GPT(cfg.replace(init="xavier"))
    w = xavier.h[0].mlp.c_fc.weight  # (1024, 256): Glorot uniform bound sqrt(6 / (fan_in + fan_out))
    bound = math.sqrt(6 / (256 + 1024))
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    kaiming = GPT(cfg.replace(init="kaiming"))
    w = kaiming.h[0].mlp.c_proj.weight  # (256, 1024): He normal std sqrt(2 / fan_in)
    assert abs(w.std().item() - math.sqrt(2 / 1024)) < 0.002


def test_parameter_counts_match_hf_and_the_papers():
    transformers = pytest.importorskip("transformers")
    hf_cfg = transformers.GPT2Config(vocab_size=1000, n_positions=64, n_embd=64, n_layer=3, n_head=4)
    hf = transformers.GPT2LMHeadModel(hf_cfg)
    ours = GPT(ModelConfig(vocab_size=1000, block_size=64, n_embd=64, n_layer=3, n_head=4))
    assert ours.num_parameters() == hf.num_parameters()
    assert model_stats(preset("gpt2")).n_params == 124_439_808
    assert abs(model_stats(preset("gpt3-175b")).n_params / 175.0e9 - 1) < 0.01
    # GPT-3 Table 2.1 sizes, within 3%.
    for name, n in [
        ("gpt3-small", 125e6),
        ("gpt3-medium", 350e6),
        ("gpt3-large", 760e6),
        ("gpt3-xl", 1.3e9),
        ("gpt3-2.7b", 2.7e9),
        ("gpt3-6.7b", 6.7e9),
        ("gpt3-13b", 13.0e9),
    ]:
        assert abs(model_stats(preset(name)).n_params / n - 1) < 0.03, name


def test_train_flops_per_token_counts_each_matmul():
    cfg = small_config()  # C=32, L=2, ffn 128, V=101, T=32
    C, L, F, V, T = 32, 2, 128, 101, 32
    by_hand = 6 * (L * (C * 3 * C + C * C + C * F + F * C) + V * C) + 12 * L * C * T
    assert train_flops_per_token(cfg) == by_hand


def test_config_errors_name_the_field():
    from gptkit.errors import ConfigError

    with pytest.raises(ConfigError, match="n_embd: 30 is not divisible by n_head=4"):
        small_config(n_embd=30)
    with pytest.raises(ConfigError, match="norm_position"):
        small_config(norm_position="middle")
    with pytest.raises(ConfigError, match="n_layers: unknown setting"):
        ModelConfig.from_dict({"n_layers": 3})
    with pytest.raises(ConfigError, match="dropout: expected float"):
        ModelConfig.from_dict({"dropout": "0.1"})
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("gpt5")


def test_meta_device_builds_without_memory():
    with torch.device("meta"):
        model = GPT(preset("gpt2-xl"))
    assert model.wte.weight.is_meta
    assert F is not None
