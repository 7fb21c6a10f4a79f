"""Value embeddings and smear (gptkit.token_mixing): against the independent float64 forward of tests/reference.py,
as no-ops when zeroed, through every KV-cache path of generation, in the optimizer's groups, checkpoints, HF export
and vocabulary growth. The KV-cache and generation tests also run rotary positions (with and without QK-norm) and
the logit softcap, the other options a cache or DecodeStep has to reproduce."""

from __future__ import annotations

import pytest
import torch

import gptkit
from gptkit import KVCache
from gptkit.checkpoint import load_model, save_model
from gptkit.config import ModelConfig
from gptkit.errors import ConfigError, InteropError
from gptkit.generation.batched import BatchScheduler
from gptkit.generation.decode_step import DecodeStep
from gptkit.generation.engine import generate
from gptkit.interop.hf import config_to_hf
from gptkit.model import GPT
from gptkit.model_info import model_stats
from gptkit.token_mixing import value_embedding_layers
from gptkit.train.config import load_run_config
from gptkit.train.optim import build_optimizer, named_groups
from gptkit.vocab import grow_vocab
from tests.reference import reference_logits
from tests.test_generate_batched import job, run
from tests.test_model import randomized, small_config

pytestmark = pytest.mark.usefixtures("one_thread")

ROTARY = dict(position_embedding="rotary", norm="rmsnorm", qk_norm=True, activation="relu2", tie_embeddings=False)
OPTIONS = [
    dict(value_embeddings=1),
    dict(value_embeddings=2, n_layer=3),  # layers 0, 1, 2 fed by tables 0, 1, 1
    dict(value_embeddings=1, n_layer=3, **ROTARY),  # layers 0 and 2 share table 0
    dict(smear=True),
    dict(smear=True, value_embeddings=3, n_layer=3, **ROTARY),
    dict(smear=True, value_embeddings=1, norm_position="post", position_embedding="sinusoidal"),
]


def _ids(o: dict) -> str:
    shown = ("value_embeddings", "smear", "n_layer", "norm_position", "position_embedding", "qk_norm", "logit_softcap")
    return ",".join(f"{k}={v}" for k, v in o.items() if k in shown)


@pytest.mark.parametrize("overrides", OPTIONS, ids=_ids)
def test_options_match_float64_reference(overrides):
    cfg = small_config(**overrides)
    model = randomized(cfg, torch.float64)  # every gate, scale and table random: no term hides at 0
    idx = torch.randint(0, cfg.vocab_size, (3, 17))
    torch.testing.assert_close(model(idx), reference_logits(model.state_dict(), cfg, idx), rtol=0, atol=1e-10)


def test_value_embedding_layers_share_tables_between_first_and_last_layers():
    def layers(n_layer: int, n: int) -> list:
        return value_embedding_layers(small_config(n_layer=n_layer, value_embeddings=n))

    assert layers(12, 3) == [0, 1, 2, *[None] * 6, 0, 1, 2]  # the speedrun's pattern
    assert layers(3, 1) == [0, None, 0]
    assert layers(3, 2) == [0, 1, 1]
    assert layers(3, 3) == [0, 1, 2]
    assert layers(2, 0) == [None, None]
    model = GPT(small_config(n_layer=3, value_embeddings=1))
    assert model.value_embeds.scales.shape == (2,) and len(model.value_embeds.tables) == 1


def _copy_shared(src: GPT, dst: GPT) -> None:
    """dst's parameters that src also has, set to src's."""
    theirs = dict(src.named_parameters())
    with torch.no_grad():
        for name, p in dst.named_parameters():
            if name in theirs:
                p.copy_(theirs[name])


@pytest.mark.parametrize("overrides", [dict(), ROTARY], ids=["gpt2", "rotary"])
def test_zero_tables_and_a_fresh_smear_give_the_base_model_exactly(overrides):
    base = randomized(small_config(n_layer=3, **overrides))
    idx = torch.randint(0, 101, (2, 15))
    expected = base(idx)
    # A fresh smear starts at exactly nothing (scale 0): the same logits, bit for bit.
    smear = GPT(small_config(n_layer=3, smear=True, **overrides)).eval()
    assert torch.count_nonzero(smear.smear.scale) == 0
    _copy_shared(base, smear)
    assert torch.equal(smear(idx), expected)
    # Value embeddings with zero tables (any scales) add nothing.
    ve = GPT(small_config(n_layer=3, value_embeddings=2, **overrides)).eval()
    _copy_shared(base, ve)
    with torch.no_grad():
        for table in ve.value_embeds.tables:
            table.weight.zero_()
        ve.value_embeds.scales.fill_(0.7)
    assert torch.equal(ve(idx), expected)
    # Fresh value embeddings do change the logits (the tables start random, the scales at 1).
    fresh = GPT(small_config(n_layer=3, value_embeddings=2, **overrides)).eval()
    _copy_shared(base, fresh)
    assert torch.all(fresh.value_embeds.scales == 1.0)
    assert not torch.allclose(fresh(idx), expected)
    assert torch.count_nonzero(fresh.value_embeds.tables[0].weight[101:]) == 0  # padding rows stay zero


def test_smear_hand_computation_and_position_zero():
    cfg = small_config(smear=True)
    model = randomized(cfg, torch.float64)
    idx = torch.randint(0, 101, (2, 6))
    e = model.wte(idx)
    w, s = model.smear.gate, model.smear.scale
    expected = e.clone()
    for t in range(1, 6):
        expected[:, t] += (s * torch.sigmoid(e[:, t, :12] @ w)).unsqueeze(-1) * e[:, t - 1]
    got = model.smear(e, None, torch.arange(6).unsqueeze(0))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-14)
    assert torch.equal(got[:, 0], e[:, 0])  # position 0 gets nothing
    # Position ids restarting at 0 (a packed second document, a left-padded row's first real token) get nothing.
    again = model.smear(e, None, torch.tensor([[0, 1, 2, 0, 1, 2]]))
    assert torch.equal(again[:, 3], e[:, 3]) and torch.equal(again[:, 4], expected[:, 4])


def test_smear_does_not_cross_packed_documents():
    cfg = small_config(smear=True, value_embeddings=1, **ROTARY)
    model = randomized(cfg)
    a, b = torch.randint(0, 101, (1, 5)), torch.randint(0, 101, (1, 7))
    packed = torch.cat([a, b], dim=1)
    docs = torch.tensor([[0] * 5 + [1] * 7])
    positions = torch.cat([torch.arange(5), torch.arange(7)]).unsqueeze(0)
    logits = model(packed, document_ids=docs, position_ids=positions)
    torch.testing.assert_close(logits[:, :5], model(a), rtol=0, atol=1e-5)
    torch.testing.assert_close(logits[:, 5:], model(b), rtol=0, atol=1e-5)


CACHED = [
    dict(position_embedding="rotary"),
    dict(ROTARY, logit_softcap=0.3),  # randomized logits are ~0.3-1 wide: the cap bends them
    dict(value_embeddings=1, n_layer=3, **ROTARY),
    dict(smear=True, **ROTARY),
    dict(smear=True, value_embeddings=2),
]


@pytest.mark.parametrize("overrides", CACHED, ids=_ids)
def test_kv_cache_decode_equals_the_full_forward(overrides):
    cfg = small_config(**overrides)
    model = randomized(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 20))
    full = model(idx)
    cache = KVCache(cfg, batch_size=2, max_len=20)
    torch.testing.assert_close(model(idx[:, :7], kv_cache=cache), full[:, :7], rtol=0, atol=1e-5)
    torch.testing.assert_close(model(idx[:, 7:10], kv_cache=cache), full[:, 7:10], rtol=0, atol=1e-5)  # a chunk
    for t in range(10, 20):
        torch.testing.assert_close(model(idx[:, t : t + 1], kv_cache=cache)[:, 0], full[:, t], rtol=0, atol=1e-5)
    # Reordered rows keep their own history (beam search): row 1 alone, continued.
    cache = KVCache(cfg, batch_size=2, max_len=20)
    model(idx[:, :12], kv_cache=cache)
    cache.reorder(torch.tensor([1]))
    torch.testing.assert_close(model(idx[1:, 12:13], kv_cache=cache)[:, 0], full[1:, 12], rtol=0, atol=1e-5)
    # Static cache (fixed slots, the CUDA-graph decoder's): prefill, then one slot per step.
    static = KVCache(cfg, batch_size=2, max_len=20, static=True)
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[:, :7] = True
    torch.testing.assert_close(model(idx[:, :7], attention_mask=mask, kv_cache=static), full[:, :7], rtol=0, atol=1e-5)
    for t in range(7, 20):
        mask[:, t] = True
        got = model(idx[:, t : t + 1], attention_mask=mask, kv_cache=static)[:, 0]
        torch.testing.assert_close(got, full[:, t], rtol=0, atol=1e-5)


@pytest.mark.parametrize("overrides", CACHED, ids=_ids)
def test_left_padding_and_cached_decode_of_a_padded_row(overrides):
    cfg = small_config(**overrides)
    model = randomized(cfg)
    idx = torch.randint(0, cfg.vocab_size, (1, 14))
    alone = model(idx)
    padded = torch.cat([torch.randint(0, cfg.vocab_size, (1, 4)), idx[:, :10]], dim=1)  # 4 pads, any ids
    mask = torch.cat([torch.zeros(1, 4), torch.ones(1, 14)], dim=1).long()
    cache = KVCache(cfg, batch_size=1, max_len=18)
    torch.testing.assert_close(
        model(padded, attention_mask=mask[:, :14], kv_cache=cache)[:, 4:], alone[:, :10], rtol=0, atol=1e-5
    )
    for t in range(10, 14):
        got = model(idx[:, t : t + 1], attention_mask=mask[:, : 4 + t + 1], kv_cache=cache)[:, 0]
        torch.testing.assert_close(got, alone[:, t], rtol=0, atol=1e-5)


def _greedy_by_full_forward(model: GPT, prompt: list[int], n: int) -> list[int]:
    seq = torch.tensor([prompt])
    for _ in range(n):
        seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return seq[0, len(prompt) :].tolist()


@pytest.mark.parametrize("overrides", CACHED, ids=_ids)
def test_generation_paths_equal_greedy_by_full_forward(overrides):
    cfg = small_config(vocab_size=120, block_size=64, **overrides)
    torch.manual_seed(0)
    model = GPT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # a spread of logits, so no near ties
    model.eval()
    mixes_tokens = cfg.value_embeddings > 0 or cfg.smear
    assert DecodeStep.supports(model) is not mixes_tokens  # supported: the scheduler below runs DecodeStep
    if mixes_tokens:
        with pytest.raises(ValueError, match="value embeddings or smear"):
            DecodeStep(model)
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(0, 120, (k,), generator=g).tolist() for k in (3, 9, 5, 1)]
    expected = [_greedy_by_full_forward(model, p, 12) for p in prompts]
    assert generate(model, prompts, max_new_tokens=12) == expected  # eager, left-padded batch
    assert generate(model, prompts, max_new_tokens=12, static_cache=True) == expected  # static cache
    # The batched scheduler: prompts join while others decode (caches rebuilt, right-aligned).
    scheduler = BatchScheduler(model, max_batch=4)
    outs = []
    for i, p in enumerate(prompts):
        j, out = job(p, max_new_tokens=12)
        scheduler.submit(j)
        outs.append(out)
        if i == 1:
            for _ in range(3):
                scheduler.step()
    run(scheduler)
    assert [o.tokens[0] for o in outs] == expected


def test_optimizer_puts_the_tables_in_the_embedding_group():
    model = GPT(small_config(n_layer=3, value_embeddings=2, smear=True, tie_embeddings=False))
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {role: sorted(names[id(p)] for p in ps) for role, ps in named_groups(model).items()}
    assert groups["embeddings"] == [
        "value_embeds.tables.0.weight",
        "value_embeds.tables.1.weight",
        "wpe.weight",
        "wte.weight",
    ]
    assert {"value_embeds.scales", "smear.gate", "smear.scale"} <= set(groups["vectors"])
    settings = ["train.optimizer=muon", "train.lr=4e-3", "train.embedding_lr=6e-2", "train.head_lr=8e-3"]
    opt = build_optimizer(model, load_run_config(None, settings).train, "cpu")
    adamw, muon = opt.optimizers
    (embeddings,) = [g for g in adamw.param_groups if g.get("role") == "embeddings"]
    assert sorted(names[id(p)] for p in embeddings["params"]) == groups["embeddings"]
    assert embeddings["lr_ratio"] == pytest.approx(6e-2 / 4e-3)
    in_muon = {names[id(p)] for g in muon.param_groups for p in g["params"]}
    assert not any(n.startswith(("value_embeds", "smear")) for n in in_muon)
    assert in_muon == set(groups["matrices"])


def test_config_validation_hf_refusal_and_presets():
    for bad, message in [
        (dict(value_embeddings=3), "value_embeddings: must be a number of tables from 0 to n_layer=2, got 3"),
        (dict(value_embeddings=-1), "value_embeddings: must be a number of tables from 0 to n_layer=2, got -1"),
        (dict(smear=True, n_embd=8, n_head=2), "smear: its gate reads the first 12 channels; n_embd is 8"),
    ]:
        with pytest.raises(ConfigError, match=message):
            small_config(**bad)
    with pytest.raises(ConfigError, match="model.value_embeddings: expected int, got True"):
        ModelConfig.from_dict({"value_embeddings": True}, where="model.")
    with pytest.raises(ConfigError, match="model.smear: expected bool"):
        ModelConfig.from_dict({"smear": 1}, where="model.")
    with pytest.raises(InteropError, match="value_embeddings=1"):
        config_to_hf(small_config(value_embeddings=1))
    with pytest.raises(InteropError, match="smear=true"):
        config_to_hf(small_config(smear=True))
    for name in gptkit.config.PRESETS:
        cfg = gptkit.preset(name)
        assert cfg.value_embeddings == 0 and not cfg.smear


def test_checkpoint_round_trip_and_parameter_counts(tmp_path):
    cfg = small_config(n_layer=3, value_embeddings=1, smear=True, **ROTARY)
    model = randomized(cfg)
    idx = torch.randint(0, 101, (2, 9))
    save_model(model, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config == cfg
    assert torch.equal(loaded(idx), model(idx))
    base = GPT(small_config(n_layer=3, **ROTARY))
    C, V = cfg.n_embd, cfg.vocab_size
    assert model.num_parameters() == base.num_parameters() + V * C + 2 + 12 + 1  # table, 2 scales, gate, scale
    assert model_stats(cfg).n_params_non_embedding == model_stats(base.config).n_params_non_embedding + 15


def test_grow_vocab_grows_the_value_tables():
    cfg = small_config(value_embeddings=2, smear=True)
    model = randomized(cfg)
    bigger = grow_vocab(model, 110)
    idx = torch.randint(0, 101, (2, 9))
    torch.testing.assert_close(bigger(idx)[..., :101], model(idx), rtol=0, atol=1e-5)
    table, old = bigger.value_embeds.tables[1].weight, model.value_embeds.tables[1].weight
    assert table.shape[0] == bigger.config.padded_vocab_size
    torch.testing.assert_close(table[101:110], old[:101].mean(0).expand(9, -1), rtol=0, atol=1e-6)
