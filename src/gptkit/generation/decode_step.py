"""One decode step of the batched scheduler, written out: one new token per row through every layer.

`GPT.forward` handles any T, masks of every kind, static caches, targets and training. A decode step of the
batched scheduler needs one case: T = 1, an eval model, a growing `KVCache` whose rows are right-aligned
(row r's tokens fill columns start[r] .. length-1). `DecodeStep` runs that case with the same operations in
the same order (so the same values), without what the general path costs per step at T = 1 (nn.Module calls,
the (B, 1, C) shapes, the boolean mask built and converted to an additive one in every layer, the positions'
cumulative sum): the layers' weights and norms are looked up once, when it is made, and the mask is an additive
(B, 1, 1, S) row made once per step. At one row the step is mostly such overhead (docs/serve.md).

On a full-width cache (`KVCache(full_width=True)`, the scheduler's on a CPU) attention is `decode_attention`
over each layer's whole buffers, as GPT.forward runs it there, with the additive mask made once per step.
With bfloat16 PackedLinear weights in a float32 model (`gptkit serve --dtype bfloat16` on a CPU) the step
equals GPT.forward under CPU autocast: the same casts happen in the same places (tested).

Supported: pre- or post-LN, LayerNorm or RMSNorm, learned, sinusoidal or rotary positions, every MLP
activation, qk_norm; linear layers as nn.Linear or `PackedLinear`. Explicit attention (`attention ==
"explicit"`, the reference path) is not, nor are value embeddings and smear (gptkit.token_mixing):
`DecodeStep.supports` says so and the scheduler runs `GPT.forward`.
Made once the weights are final (it holds them): the scheduler makes it when it starts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gptkit.fused_loss import cap_logits
from gptkit.generation.packed_linear import PackedLinear
from gptkit.model import GPT, KVCache, apply_rotary, decode_attention, decode_bias, rotary_cos_sin

Fn = Callable[[torch.Tensor], torch.Tensor]


def linear_fn(module: nn.Module) -> Fn:
    """x -> module(x) without the nn.Module call."""
    if isinstance(module, PackedLinear):
        if module.mixed:
            return module.forward
        packed, bias, op = module.packed, module.bias, torch.ops.mkldnn._linear_pointwise
        return lambda x: op(x, packed, bias, "none", [], "")
    if isinstance(module, nn.Linear):
        weight, bias = module.weight, module.bias
        return lambda x: F.linear(x, weight, bias)
    raise TypeError(f"not a linear layer: {type(module).__name__}")


def norm_fn(module: nn.Module) -> Fn:
    """x -> module(x) for the model's norms (LayerNorm, RMSNorm, Identity) without the nn.Module call."""
    if isinstance(module, nn.LayerNorm):
        shape, weight, bias, eps = module.normalized_shape, module.weight, module.bias, module.eps
        return lambda x: F.layer_norm(x, shape, weight, bias, eps)
    if isinstance(module, nn.RMSNorm):
        shape, weight, eps = module.normalized_shape, module.weight, module.eps
        return lambda x: F.rms_norm(x, shape, weight, eps)
    if isinstance(module, nn.Identity):
        return lambda x: x
    raise TypeError(f"not a norm layer: {type(module).__name__}")


class DecodeStep:
    """step(tokens (B,), cache, start (B,)) -> the next token's logits (B, V): GPT.forward(tokens[:, None],
    attention_mask=columns >= start, kv_cache=cache)[:, -1] for a non-static cache, one call per step."""

    def __init__(self, model: GPT) -> None:
        if not self.supports(model):
            raise ValueError("DecodeStep does not support this model (explicit attention, value embeddings or smear)")
        cfg = model.config
        self.model, self.config = model, cfg
        self.n_head, self.head_dim, self.qk_norm = cfg.n_head, cfg.head_dim, cfg.qk_norm
        self.post = cfg.norm_position == "post"
        self.wte = model.wte.weight
        self.wpe = model.wpe.weight if cfg.position_embedding == "learned" else None
        self.layers = [
            (
                norm_fn(b.ln_1),
                linear_fn(b.attn.c_attn),
                linear_fn(b.attn.c_proj),
                norm_fn(b.ln_2),
                linear_fn(b.mlp.c_fc),
                b.mlp.activate,
                linear_fn(b.mlp.c_proj),
            )
            for b in model.h
        ]
        self.ln_f, self.lm_head = norm_fn(model.ln_f), linear_fn(model.lm_head)

    @staticmethod
    def supports(model: GPT) -> bool:
        cfg = model.config
        return cfg.attention != "explicit" and not cfg.value_embeddings and not cfg.smear

    def __call__(self, tokens: torch.Tensor, cache: KVCache, start: torch.Tensor) -> torch.Tensor:
        cfg, model = self.config, self.model
        if model.training or cache.static:
            raise ValueError("DecodeStep runs an eval model on a growing (non-static) cache")
        B, P = tokens.shape[0], cache.length
        if P + 1 > cache.max_len:
            raise ValueError(f"KV cache full: {P + 1} positions requested, room for {cache.max_len}")
        padded = bool(start.any())
        positions = P - start if padded else None  # (B,) each row's position among its real tokens
        mask = None  # no row padded: every row sees all P + 1 columns, as an unpadded GPT.forward does
        bias = None  # full-width cache: (B * nh, 1, W) additive mask of decode_attention, for every layer
        if cache.full_width:
            columns = torch.arange(P + 1, device=tokens.device)
            hidden = (columns < start.unsqueeze(1)) if padded else None  # (B, P + 1): each row's left padding
            bias = decode_bias(hidden, B, self.n_head, P + 1, cache.max_len, tokens.device)
        elif padded:
            columns = torch.arange(P + 1, device=tokens.device)
            mask = torch.zeros(B, 1, 1, P + 1, dtype=self.wte.dtype, device=tokens.device)
            mask.masked_fill_((columns < start.unsqueeze(1)).view(B, 1, 1, P + 1), float("-inf"))
        x = F.embedding(tokens, self.wte)  # (B, C)
        rope = None
        if cfg.position_embedding == "learned":
            x = x + (self.wpe[P] if positions is None else F.embedding(positions, self.wpe))
        elif cfg.position_embedding == "sinusoidal":
            table = model.sinusoid
            x = x + (table[P] if positions is None else table[positions]).to(x.dtype)
        else:
            pos = torch.full((1, 1), P, device=tokens.device) if positions is None else positions.unsqueeze(1)
            rope = rotary_cos_sin(pos, self.head_dim, cfg.rope_base, x.dtype)  # (B or 1, 1, 1, hs/2)
        C, nh, hs = x.shape[1], self.n_head, self.head_dim
        for i, (ln_1, c_attn, attn_proj, ln_2, c_fc, activate, mlp_proj) in enumerate(self.layers):
            qkv = c_attn(x if self.post else ln_1(x))  # (B, 3C)
            q, k, v = (qkv[:, j * C : (j + 1) * C].view(B, nh, 1, hs) for j in range(3))
            if self.qk_norm:
                q, k = F.rms_norm(q, (hs,)), F.rms_norm(k, (hs,))
            if rope is not None:
                q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
            cache.k[i, :, :, P : P + 1] = k
            cache.v[i, :, :, P : P + 1] = v
            if bias is not None:
                y = decode_attention(q, cache.k[i], cache.v[i], bias)  # (B, nh, 1, hs)
            else:
                k_all, v_all = cache.k[i, :, :, : P + 1], cache.v[i, :, :, : P + 1]
                if q.dtype != k_all.dtype:  # bfloat16 linear outputs: float32 attention, as under CPU autocast
                    q, k_all, v_all = q.float(), k_all.float(), v_all.float()
                y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask)
            a = attn_proj(y.transpose(1, 2).reshape(B, C))
            if self.post:
                x = ln_1(x + a)
                x = ln_2(x + mlp_proj(activate(c_fc(x))))
            else:
                x = x + a
                x = x + mlp_proj(activate(c_fc(ln_2(x))))
        cache.advance(1)
        return cap_logits(self.lm_head(self.ln_f(x))[:, : cfg.vocab_size], cfg.logit_softcap)


__all__ = ["DecodeStep", "linear_fn", "norm_fn"]
