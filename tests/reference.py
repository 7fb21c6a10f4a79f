"""An independent float64 GPT forward, written from the papers' equations rather than from gptkit's model.

It reads weights by name from a gptkit state dict and uses nothing from gptkit but the config values.
"""

from __future__ import annotations

import math

import torch


def sinusoid_table(n_positions: int, dim: int) -> torch.Tensor:
    table = torch.zeros(n_positions, dim, dtype=torch.float64)
    for p in range(n_positions):
        for i in range(0, dim, 2):
            angle = p / (10000 ** (i / dim))
            table[p, i] = math.sin(angle)
            table[p, i + 1] = math.cos(angle)
    return table


def rotate_pairs(x: torch.Tensor, base: float) -> torch.Tensor:
    """RoFormer's rotation of x (B, T, hs) at positions 0..T-1, as complex numbers: pair i is the number
    x[i] + j x[i + hs/2] (the half-split layout), multiplied by exp(j p / base^(2i/hs))."""
    B, T, hs = x.shape
    half = hs // 2
    z = torch.complex(x[..., :half], x[..., half:])
    freqs = torch.tensor([base ** (-2 * i / hs) for i in range(half)], dtype=torch.float64)
    angles = torch.arange(T, dtype=torch.float64).unsqueeze(1) * freqs  # (T, half)
    z = z * torch.polar(torch.ones_like(angles), angles)
    return torch.cat([z.real, z.imag], dim=-1)


def reference_logits(state: dict[str, torch.Tensor], cfg, idx: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, vocab_size) in float64 for token ids idx (B, T), causal attention, no padding."""
    W = {k: v.detach().double() for k, v in state.items()}
    B, T = idx.shape
    C, nh = cfg.n_embd, cfg.n_head
    hs = C // nh

    def bias(name: str) -> torch.Tensor | float:
        return W.get(f"{name}.bias", 0.0)

    def layer_norm(x: torch.Tensor, name: str) -> torch.Tensor:
        if getattr(cfg, "norm", "layernorm") == "rmsnorm":  # x / sqrt(mean(x^2) + eps) * gain
            return x / torch.sqrt((x**2).mean(-1, keepdim=True) + cfg.layer_norm_eps) * W[f"{name}.weight"]
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + cfg.layer_norm_eps) * W[f"{name}.weight"] + bias(name)

    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ W[f"{name}.weight"].T + bias(name)

    def activation(x: torch.Tensor) -> torch.Tensor:
        if cfg.activation == "relu":
            return torch.clamp(x, min=0.0)
        if cfg.activation == "relu2":
            return torch.clamp(x, min=0.0) ** 2
        if cfg.activation == "swiglu":  # silu(a) * b for the two halves
            a, b = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
            return a / (1.0 + torch.exp(-a)) * b
        if cfg.activation == "gelu":
            return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))

    # Value embeddings (the modded-nanogpt speedrun's): table j is added to the values of layer j and of layer
    # L - N + j when that layer is not one of the first N; the k-th such layer (counting up) has scale k.
    N, L = getattr(cfg, "value_embeddings", 0), cfg.n_layer
    fed = {}
    for j in range(N):
        fed[j] = j
        if L - N + j >= N:
            fed[L - N + j] = j
    scale_of = {layer: k for k, layer in enumerate(sorted(fed))}

    def attention(x: torch.Tensor, prefix: str, layer: int) -> torch.Tensor:
        qkv = linear(x, f"{prefix}.c_attn")
        q, k, v = qkv[..., :C], qkv[..., C : 2 * C], qkv[..., 2 * C :]
        if layer in fed:
            ve = W[f"value_embeds.tables.{fed[layer]}.weight"][idx]  # (B, T, C)
            v = v + W["value_embeds.scales"][scale_of[layer]] * ve
        future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        heads = []
        for h in range(nh):
            sl = slice(h * hs, (h + 1) * hs)
            qh, kh = q[..., sl], k[..., sl]
            if getattr(cfg, "qk_norm", False):  # unit RMS per head (eps of torch's rms_norm default: float eps)
                eps = torch.finfo(torch.float64).eps
                qh = qh / torch.sqrt((qh**2).mean(-1, keepdim=True) + eps)
                kh = kh / torch.sqrt((kh**2).mean(-1, keepdim=True) + eps)
            if cfg.position_embedding == "rotary":
                qh, kh = rotate_pairs(qh, cfg.rope_base), rotate_pairs(kh, cfg.rope_base)
            scores = qh @ kh.transpose(-1, -2) / math.sqrt(hs)  # (B, T, T)
            scores = scores.masked_fill(future, float("-inf"))
            weights = torch.exp(scores - scores.max(-1, keepdim=True).values)
            weights = weights / weights.sum(-1, keepdim=True)
            heads.append(weights @ v[..., sl])
        return linear(torch.cat(heads, dim=-1), f"{prefix}.c_proj")

    def mlp(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return linear(activation(linear(x, f"{prefix}.c_fc")), f"{prefix}.c_proj")

    x = W["wte.weight"][idx]
    if getattr(cfg, "smear", False):  # x_t + s * sigmoid(w . e_t[:12]) * e_{t-1} for t >= 1, e the embeddings
        e, x = x, x.clone()
        w, s = W["smear.gate"], W["smear.scale"][0]
        for t in range(1, T):
            gate = s / (1.0 + torch.exp(-(e[:, t, : w.numel()] @ w)))  # (B,)
            x[:, t] = e[:, t] + gate.unsqueeze(-1) * e[:, t - 1]
    if cfg.position_embedding == "learned":
        x = x + W["wpe.weight"][:T]
    elif cfg.position_embedding == "sinusoidal":
        x = x + sinusoid_table(T, C)
    for i in range(cfg.n_layer):
        p = f"h.{i}"
        if cfg.norm_position == "post":  # GPT-1: LN(x + sublayer(x))
            x = layer_norm(x + attention(x, f"{p}.attn", i), f"{p}.ln_1")
            x = layer_norm(x + mlp(x, f"{p}.mlp"), f"{p}.ln_2")
        else:  # GPT-2: x + sublayer(LN(x)), then a final LN
            x = x + attention(layer_norm(x, f"{p}.ln_1"), f"{p}.attn", i)
            x = x + mlp(layer_norm(x, f"{p}.ln_2"), f"{p}.mlp")
    if cfg.norm_position == "pre":
        x = layer_norm(x, "ln_f")
    head = W["wte.weight"] if cfg.tie_embeddings else W["lm_head.weight"]
    logits = x @ head[: cfg.vocab_size].T
    cap = getattr(cfg, "logit_softcap", 0.0)
    return cap * torch.tanh(logits / cap) if cap > 0 else logits  # Gemma 2's cap: c tanh(z / c)
