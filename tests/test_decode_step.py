"""The batched scheduler's written-out decode step against GPT.forward: the same logits and cache, bit for bit;
and the full-width decode attention both run against float64."""

from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch

from gptkit import GPT, ModelConfig
from gptkit.generation.decode_step import DecodeStep
from gptkit.generation.packed_linear import pack_linears, packing_available
from gptkit.model import KVCache, decode_attention, decode_bias

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIGS = [
    dict(),
    dict(position_embedding="rotary"),
    dict(position_embedding="sinusoidal"),
    dict(norm="rmsnorm", activation="swiglu", qk_norm=True),
    dict(norm_position="post", activation="relu2"),
]


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("pack", ["no", "float32", "bfloat16"])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("full_width", [False, True])
def test_decode_step_is_gpt_forward_bit_for_bit(options, pack, padded, full_width):
    """pack bfloat16: bfloat16 PackedLinear weights in a float32 model (serve --dtype bfloat16 on a CPU), against
    GPT.forward under CPU autocast. full_width: the scheduler's CPU cache (decode_attention over the buffers)."""
    cfg = ModelConfig(vocab_size=120, block_size=64, n_layer=2, n_head=2, n_embd=32, **options)
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    autocast = contextlib.nullcontext()
    if pack != "no":
        weight_dtype = getattr(torch, pack)
        if not packing_available(model, weight_dtype):
            pytest.skip(f"no oneDNN packed linear operators for {pack} weights in this torch / CPU")
        model = copy.deepcopy(model)
        pack_linears(model, weight_dtype=weight_dtype)
        if pack == "bfloat16":
            autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    B, P = 4, 9
    start = torch.tensor([0, 3, 5, 0]) if padded else torch.zeros(4, dtype=torch.long)
    mask = (torch.arange(P).unsqueeze(0) >= start.unsqueeze(1)).long() if padded else None
    idx = torch.randint(0, cfg.vocab_size, (B, P), generator=torch.Generator().manual_seed(1))
    ref, ours = KVCache(cfg, B, 20, full_width=full_width), KVCache(cfg, B, 20, full_width=full_width)
    step = DecodeStep(model)
    with torch.inference_mode():
        with autocast:
            tokens = model(idx, attention_mask=mask, kv_cache=ref)[:, -1].argmax(-1)
            model(idx, attention_mask=mask, kv_cache=ours)
        for t in range(6):
            grown = None if mask is None else torch.cat([mask, mask.new_ones(B, t + 1)], dim=1)
            with autocast:
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_attention_matches_float64_softmax_over_the_visible_keys(dtype):
    """Each (row, head): softmax over its visible keys only (left padding and columns past the length hidden),
    computed by hand in float64 from the same (dtype-rounded) q, k, v."""
    B, nh, W, hs, S = 3, 2, 16, 8, 11
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(B, nh, n, hs, generator=g).to(dtype) for n in (1, W, W))
    k[:, :, S:], v[:, :, S:] = 0, 0  # unwritten columns of a full-width cache
    start = torch.tensor([0, 4, 10])
    hidden = torch.arange(S).unsqueeze(0) < start.unsqueeze(1)  # (B, S)
    y = decode_attention(q, k, v, decode_bias(hidden, B, nh, S, W, "cpu"))
    assert y.shape == (B, nh, 1, hs) and y.dtype == dtype
    for b in range(B):
        for h in range(nh):
            keys, values = k[b, h, start[b] : S].double(), v[b, h, start[b] : S].double()
            weights = torch.softmax(keys @ q[b, h, 0].double() / math.sqrt(hs), dim=0)
            expected = weights @ values
            tol = 1e-6 if dtype == torch.float32 else 2**-8 * float(expected.abs().max())  # y is rounded to dtype
            assert torch.allclose(y[b, h, 0].double(), expected, rtol=0, atol=tol), (b, h)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 inside, whatever autocast says
        assert torch.equal(decode_attention(q, k, v, decode_bias(hidden, B, nh, S, W, "cpu")), y)
