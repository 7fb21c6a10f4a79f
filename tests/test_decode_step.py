"""The batched scheduler's written-out decode step against GPT.forward: the same logits and cache, bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch

from gptkit import GPT, ModelConfig
from gptkit.generation.decode_step import DecodeStep
from gptkit.generation.packed_linear import pack_linears, packing_available
from gptkit.model import KVCache

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIGS = [
    dict(),
    dict(position_embedding="rotary"),
    dict(position_embedding="sinusoidal"),
    dict(norm="rmsnorm", activation="swiglu", qk_norm=True),
    dict(norm_position="post", activation="relu2"),
]


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("pack", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_decode_step_is_gpt_forward_bit_for_bit(options, pack, padded):
    cfg = ModelConfig(vocab_size=120, block_size=64, n_layer=2, n_head=2, n_embd=32, **options)
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    if pack:
        if not packing_available(model):
            pytest.skip("no oneDNN packed linear operators in this torch")
        model = copy.deepcopy(model)
        pack_linears(model)
    B, P = 4, 9
    start = torch.tensor([0, 3, 5, 0]) if padded else torch.zeros(4, dtype=torch.long)
    mask = (torch.arange(P).unsqueeze(0) >= start.unsqueeze(1)).long() if padded else None
    idx = torch.randint(0, cfg.vocab_size, (B, P), generator=torch.Generator().manual_seed(1))
    ref, ours = KVCache(cfg, B, 20), KVCache(cfg, B, 20)
    step = DecodeStep(model)
    with torch.inference_mode():
        tokens = model(idx, attention_mask=mask, kv_cache=ref)[:, -1].argmax(-1)
        model(idx, attention_mask=mask, kv_cache=ours)
        for t in range(6):
            grown = None if mask is None else torch.cat([mask, mask.new_ones(B, t + 1)], dim=1)
            expected = model(tokens.unsqueeze(1), attention_mask=grown, kv_cache=ref)[:, -1]
            got = step(tokens, ours, start)
            assert torch.equal(got, expected), (t, float((got - expected).abs().max()))
            assert ours.length == ref.length
            assert torch.equal(ours.k[:, :, :, : ours.length], ref.k[:, :, :, : ref.length])
            assert torch.equal(ours.v[:, :, :, : ours.length], ref.v[:, :, :, : ref.length])
            tokens = expected.argmax(-1)


def test_decode_step_refuses_what_it_does_not_run():
    cfg = ModelConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16)
    assert not DecodeStep.supports(GPT(cfg.replace(attention="explicit")))
    model = GPT(cfg).eval()
    step = DecodeStep(model)
    cache = KVCache(cfg, 1, 2)
    with torch.inference_mode():
        step(torch.tensor([1]), cache, torch.zeros(1, dtype=torch.long))
        step(torch.tensor([1]), cache, torch.zeros(1, dtype=torch.long))
        with pytest.raises(ValueError, match="KV cache full"):
            step(torch.tensor([1]), cache, torch.zeros(1, dtype=torch.long))
        with pytest.raises(ValueError, match="non-static"):
            step(torch.tensor([1]), KVCache(cfg, 1, 4, static=True), torch.zeros(1, dtype=torch.long))
