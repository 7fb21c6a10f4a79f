"""The GPT: a decoder-only transformer as the GPT-1/2/3 papers describe it.

Single-device and unaware of training loops, sampling and parallelism: those live in gptkit.train and
gptkit.generate. Shapes in comments: B batch, T new positions, P positions already in the KV cache,
S = P + T key positions, C = n_embd, nh = n_head, hs = head_dim, V = vocab_size, Vp = padded vocab.
"""

from __future__ import annotations

import contextlib
import math
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from gptkit.config import ModelConfig
from gptkit.errors import ConfigError
from gptkit.fused_loss import cap_logits, linear_cross_entropy
from gptkit.token_mixing import Smear, ValueEmbeddings

# "causal", None (attend to every key) or a boolean (B or 1, 1, T, S) tensor; see GPT._attention_mask.
AttentionMask = Union[str, torch.Tensor, None]


_DECODE_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


class KVCache:
    """Preallocated keys and values of every layer, filled by prefill and then one position per step.

    Buffers are (n_layer, B, nh, max_len, hs). `length` counts the positions stored so far; the model
    writes the new positions of each layer with `update` and moves `length` on once per forward pass.

    static=True keeps the write position on the device instead (`position`, a (1,) tensor) and lets
    attention cover all max_len slots under the attention mask, so a decode step has fixed shapes and
    no host sync: the form a CUDA graph can replay. The model moves `position` on in place.

    full_width=True (a growing cache, the batched server's on a CPU): a forward pass of one new position
    attends over every column of the buffers, those at or past `length` masked (`decode_attention`), so
    each layer's keys are one contiguous block and one batched product serves every row and head. The
    unwritten columns stay zero (finite, so masking them gives exact zeros).

    A model with `smear` also keeps `smear_prev` (B, C): the token embedding of each row's last position so
    far, the predecessor of the next position (gptkit.token_mixing.Smear); None for other models.
    """

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        max_len: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        static: bool = False,
        full_width: bool = False,
    ) -> None:
        if max_len > config.block_size and config.position_embedding == "learned":
            raise ConfigError(f"KV cache max_len {max_len} exceeds the model's block_size {config.block_size}")
        if static and full_width:
            raise ConfigError("a KV cache is static or full_width, not both")
        shape = (config.n_layer, batch_size, config.n_head, max_len, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.length = 0
        self.static = static
        self.full_width = full_width
        self.position = torch.zeros(1, dtype=torch.long, device=device)
        self.slots = torch.arange(max_len, device=device)  # (max_len,) slot numbers, for static writes and masks
        self._write: torch.Tensor | None = None  # static: the slots this forward pass writes
        self.smear_prev = torch.zeros(batch_size, config.n_embd, device=device, dtype=dtype) if config.smear else None

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    def begin(self, T: int) -> torch.Tensor | None:
        """Called once per forward pass before the layers; static caches return the (T,) slots written."""
        self._write = self.position + self.slots[:T] if self.static else None
        return self._write

    def advance(self, T: int) -> None:
        if self.static:
            self.position.add_(T)
        else:
            self.length += T

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hs) after the cached positions; return all keys/values (B, nh, P+T, hs)
        (static caches: all max_len slots)."""
        if self.static:
            self.k[layer, :, :, self._write] = k  # index_put with a device index: no host sync
            self.v[layer, :, :, self._write] = v
            return self.k[layer], self.v[layer]
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions requested, room for {self.max_len}")
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows `index` (B',), in that order: beam search moves each beam's history, finished
        rows are dropped. Only the filled positions are copied (all of them for static caches)."""
        end = self.max_len if self.static else self.length
        if self.smear_prev is not None:
            self.smear_prev = self.smear_prev[index]
        if index.numel() == self.batch_size:
            self.k[:, :, :, :end] = self.k[:, index, :, :end]
            self.v[:, :, :, :end] = self.v[:, index, :, :end]
            return
        shape = (self.k.shape[0], index.numel(), *self.k.shape[2:])
        new = self.k.new_zeros if self.full_width else self.k.new_empty  # full_width reads unwritten columns
        k, v = new(shape), new(shape)
        k[:, :, :, :end] = self.k[:, index, :, :end]
        v[:, :, :, :end] = self.v[:, index, :, :end]
        self.k, self.v = k, v


def sinusoidal_positions(n_positions: int, dim: int) -> torch.Tensor:
    """Fixed encodings of Vaswani et al. (2017): PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...)."""
    position = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)  # (N, 1)
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * inv_freq)
    pe[:, 1::2] = torch.cos(position * inv_freq)
    return pe  # float64: the forward casts it to the activations' dtype


def rotary_cos_sin(
    position_ids: torch.Tensor, head_dim: int, base: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, each (B or 1, 1, T, hs/2): pair i of position p turns by
    p * base^(-2i/hs). Computed from the (B or 1, T) positions in float32 (float64 for a float64 model),
    then cast to `dtype`."""
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=position_ids.device, dtype=compute) / head_dim)
    angles = position_ids.to(compute).unsqueeze(-1) * inv_freq  # (B or 1, T, hs/2)
    return angles.cos().unsqueeze(1).to(dtype), angles.sin().unsqueeze(1).to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, nh, T, hs) pairwise: (x[i], x[i + hs/2]) by the angle of pair i (the GPT-NeoX / LLaMA
    half-split layout), so q . k depends on the positions only through their difference."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


Rope = tuple[torch.Tensor, torch.Tensor]  # (cos, sin) from rotary_cos_sin


def make_norm(config: ModelConfig, dim: int) -> nn.Module:
    """The model's normalisation layer: LayerNorm (the papers') or RMSNorm, with a gain (and a LayerNorm
    bias when config.bias)."""
    if config.norm == "rmsnorm":
        return nn.RMSNorm(dim, eps=config.layer_norm_eps)
    return nn.LayerNorm(dim, eps=config.layer_norm_eps, bias=config.bias)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.dropout = config.dropout
        self.explicit = config.attention == "explicit"
        self.qk_norm = config.qk_norm
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v together
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: AttentionMask,
        kv_cache: KVCache | None,
        rope: Rope | None = None,
        ve: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, T, C); mask: which of the S keys each query may see (see `GPT._attention_mask`);
        rope: rotary (cos, sin) of the T new positions, for rotary models; ve (B, T, C): a value embedding
        (already scaled) added to the values (gptkit.token_mixing)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        if ve is not None:
            v = v + ve.to(v.dtype)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        if self.qk_norm:
            q, k = F.rms_norm(q, (self.head_dim,)), F.rms_norm(k, (self.head_dim,))
        if rope is not None:  # before the cache: cached keys keep their own positions' rotation
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, nh, S, hs)
        p = self.dropout if self.training else 0.0
        if kv_cache is not None and kv_cache.full_width and T == 1 and not self.explicit and p == 0.0:
            S, i = k.shape[2], self.layer_idx
            hidden = ~mask.view(-1, S) if isinstance(mask, torch.Tensor) else None  # "causal" at T = 1: sees all
            bias = decode_bias(hidden, B, self.n_head, S, kv_cache.max_len, x.device)
            y = decode_attention(q, kv_cache.k[i], kv_cache.v[i], bias)
        elif self.explicit:
            y = explicit_attention(q, k, v, mask, p, self.training)
        else:
            # A plain causal mask is passed as is_causal, which lets SDPA pick its flash kernels.
            # With a KV cache the key length changes every step, and cuDNN's attention builds a new plan
            # per shape (3 ms of CPU per call on an H100, measured): decode uses the other kernels.
            # CPU autocast would run attention in half precision, and on CPUs the half-precision flash kernel is
            # slower than the float32 one (fwd + bwd of 16 x 4 heads x 128 x 32 in bfloat16: 36 ms vs 17 ms,
            # docs/training.md): there attention runs in float32, with autocast off around it.
            cpu_autocast = not q.is_cuda and torch.is_autocast_enabled("cpu")
            if cpu_autocast:
                q, k, v = q.float(), k.float(), v.float()
            with (
                sdpa_kernel(_DECODE_BACKENDS) if kv_cache is not None and q.is_cuda else contextlib.nullcontext(),
                torch.autocast("cpu", enabled=False) if cpu_autocast else contextlib.nullcontext(),
            ):
                y = F.scaled_dot_product_attention(
                    q,
                    k,
                    v,
                    attn_mask=mask if isinstance(mask, torch.Tensor) else None,
                    dropout_p=p,
                    is_causal=isinstance(mask, str),
                )
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))


def decode_bias(hidden: torch.Tensor | None, B: int, n_head: int, S: int, W: int, device) -> torch.Tensor:
    """The additive mask `decode_attention` takes, (B * nh, 1, W) float32: -inf for the keys a row does not
    see (hidden (B or 1, S) True: its left padding) and for the columns S .. W-1 past the cache's length, 0
    elsewhere. Made once per step by the batched decoder, per layer by GPT.forward (the same values)."""
    bias = torch.zeros(B, 1, W, dtype=torch.float32, device=device)
    bias[:, :, S:] = float("-inf")
    if hidden is not None:
        bias[:, :, :S].masked_fill_(hidden.unsqueeze(1), float("-inf"))
    return bias.repeat_interleave(n_head, dim=0)


def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Attention of one new position per row over a full-width cache layer: q (B, nh, 1, hs); k, v (B, nh, W, hs),
    the layer's whole buffers (contiguous); bias (B * nh, 1, W) from `decode_bias`. Returns (B, nh, 1, hs) in
    q's dtype, computed in float32 (lower-precision q, k, v are cast up, as CPU autocast runs attention here):
    softmax(q k^T / sqrt(hs) + bias) v as two batched products over the B * nh (row, head) pairs.

    Why not SDPA on the filled columns: on a CPU it runs one small product per row and head, and a (B, nh, S)
    slice of wider buffers cannot be one batched product. 8 layers of the benchmark model at 16 rows x 8 heads,
    97 of 128 columns filled, one thread: 2.7 ms against 5.2 ms for SDPA on the slices (thread CPU time, under
    the benchmark lock; docs/serve.md). The masked columns cost their share of the products."""
    B, nh, W, hs = k.shape
    autocast = torch.is_autocast_enabled(q.device.type)
    with torch.autocast(q.device.type, enabled=False) if autocast else contextlib.nullcontext():
        qf = q.reshape(B * nh, 1, hs).float()
        kf, vf = k.view(B * nh, W, hs).float(), v.view(B * nh, W, hs).float()
        scores = torch.baddbmm(bias, qf, kf.transpose(1, 2), alpha=1.0 / math.sqrt(hs))  # (B * nh, 1, W)
        y = torch.bmm(torch.softmax(scores, dim=-1), vf)  # (B * nh, 1, hs)
    return y.view(B, nh, 1, hs).to(q.dtype)


def explicit_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: AttentionMask, dropout: float, training: bool
) -> torch.Tensor:
    """softmax(Q K^T / sqrt(hs) + mask) V, written out; the reference that the SDPA path is tested against."""
    T, S = q.shape[-2], k.shape[-2]
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))  # (B, nh, T, S)
    if isinstance(mask, str):  # "causal"
        mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
    if isinstance(mask, torch.Tensor):
        att = att.masked_fill(~mask, float("-inf"))
    att = F.softmax(att, dim=-1)
    att = F.dropout(att, p=dropout, training=training)
    return att @ v  # (B, nh, T, hs)


class MLP(nn.Module):
    """Position-wise feed-forward network: Linear(C, 4C) -> activation -> Linear(4C, C) -> dropout.
    SwiGLU: c_fc makes both halves (2 x ffn_dim), silu(first half) * second half goes into c_proj."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = 2 * config.ffn_dim if config.activation == "swiglu" else config.ffn_dim
        self.c_fc = nn.Linear(config.n_embd, width, bias=config.bias)
        self.c_proj = nn.Linear(config.ffn_dim, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.activation = config.activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.activate(self.c_fc(x))))

    def activate(self, h: torch.Tensor) -> torch.Tensor:
        """The activation of c_fc's output h (..., width): (..., ffn_dim)."""
        if self.activation == "relu":
            return F.relu(h)
        if self.activation == "relu2":
            return relu_squared(h)
        if self.activation == "swiglu":
            gate, value = h.chunk(2, dim=-1)
            return F.silu(gate) * value
        return F.gelu(h, approximate="tanh" if self.activation == "gelu_tanh" else "none")


class _ReLUSquared(torch.autograd.Function):
    """relu(x)^2 in two passes forward (relu, square) and two backward (grad * r * 2, r = relu(x) saved), where
    autograd's `F.relu(x).square()` takes seven over the (B, T, 4C) tensor (relu, pow; pow's backward, the
    threshold backward and a copy): 3.3 vs 1.4 ms for a (12, 128, 512) float32 forward + backward, one thread."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        r = torch.relu(x)
        ctx.save_for_backward(r)
        return r * r

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (r,) = ctx.saved_tensors
        return torch.mul(grad, r).mul_(2.0)


def relu_squared(x: torch.Tensor) -> torch.Tensor:
    """ReLU squared (So et al. 2021), with the cheaper backward of _ReLUSquared."""
    return _ReLUSquared.apply(x)


class Block(nn.Module):
    """One transformer block; `post` places LayerNorm after each residual add (GPT-1), else before (GPT-2/3)."""

    def __init__(self, config: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.post = config.norm_position == "post"
        self.ln_1 = make_norm(config, config.n_embd)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = make_norm(config, config.n_embd)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        mask: AttentionMask,
        kv_cache: KVCache | None,
        rope: Rope | None = None,
        ve: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.post:
            x = self.ln_1(x + self.attn(x, mask, kv_cache, rope, ve))
            return self.ln_2(x + self.mlp(x))
        x = x + self.attn(self.ln_1(x), mask, kv_cache, rope, ve)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        C, Vp = config.n_embd, config.padded_vocab_size
        self.wte = nn.Embedding(Vp, C)
        if config.position_embedding == "learned":
            self.wpe = nn.Embedding(config.block_size, C)
        elif config.position_embedding == "sinusoidal":  # fixed: a buffer, not saved (recomputed on load), float64
            self.register_buffer("sinusoid", sinusoidal_positions(config.block_size, C), persistent=False)
        # rotary: nothing here; attention rotates q and k (rotary_cos_sin)
        # Options of gptkit.token_mixing: extra token tables added to attention values, the previous token smeared in.
        self.value_embeds = ValueEmbeddings(config) if config.value_embeddings else None
        self.smear = Smear(config) if config.smear else None
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
        # GPT-1 (post-LN) ends with the last block's LN; GPT-2/3 add a final LN after the pre-LN stack.
        self.ln_f = make_norm(config, C) if config.norm_position == "pre" else nn.Identity()
        self.lm_head = nn.Linear(C, Vp, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        self.reset_parameters()

    # ---- initialisation -----------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Initialise every weight per `config.init`; embeddings are N(0, 0.02) in every scheme. With
        `config.zero_init_proj` the residual branches' output layers (and an untied head) then start at zero."""
        cfg = self.config
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                if cfg.init == "gpt2":
                    std = 0.02
                    if name.endswith("c_proj"):
                        # GPT-2: scale residual-branch outputs by 1/sqrt(N), N = 2 residual adds per layer.
                        std /= math.sqrt(2 * cfg.n_layer)
                    nn.init.normal_(module.weight, mean=0.0, std=std)
                elif cfg.init == "xavier":  # Glorot & Bengio (2010), uniform
                    nn.init.xavier_uniform_(module.weight)
                else:  # He et al. (2015): std = sqrt(2 / fan_in)
                    nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
                module.reset_parameters()
        for extra in (self.value_embeds, self.smear):  # after their nn.Embedding tables' default init above
            if extra is not None:
                extra.reset_parameters()
        if cfg.zero_init_proj:  # every block starts as the identity; an untied head predicts uniformly
            for name, module in self.named_modules():
                if name.endswith("c_proj") or (name == "lm_head" and not cfg.tie_embeddings):
                    nn.init.zeros_(module.weight)
        with torch.no_grad():  # padding rows are never looked up nor predicted: keep them at zero
            self.wte.weight[cfg.vocab_size :].zero_()
            if not cfg.tie_embeddings:
                self.lm_head.weight[cfg.vocab_size :].zero_()

    def reset_buffers(self) -> None:
        """Recompute non-persistent buffers (after building on the meta device and loading weights)."""
        if self.config.position_embedding == "sinusoidal":
            device = self.wte.weight.device
            self.sinusoid = sinusoidal_positions(self.config.block_size, self.config.n_embd).to(device)

    # ---- parameter counts -----------------------------------------------------------------------
    def num_parameters(self, exclude_positions: bool = False) -> int:
        """Trainable parameters, each shared tensor once, not counting vocabulary padding rows."""
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a tied tensor once
        pad_rows = self.config.padded_vocab_size - self.config.vocab_size
        n -= pad_rows * self.config.n_embd * (1 if self.config.tie_embeddings else 2)
        n -= pad_rows * self.config.n_embd * self.config.value_embeddings
        if exclude_positions and self.config.position_embedding == "learned":
            n -= self.wpe.weight.numel()
        return n

    # ---- forward --------------------------------------------------------------------------------
    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        document_ids: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        last_logits_only: bool = False,
        output_hidden: bool = False,
        return_logits: bool = True,
    ) -> torch.Tensor | tuple[torch.Tensor | None, torch.Tensor]:
        """Logits (B, T, V) for token ids idx (B, T); with targets (B, T), also the mean cross-entropy.

        targets[b, t] is the token that should follow idx[b, t] (already shifted); -100 is ignored.
        attention_mask (B, P+T) marks real tokens with 1 and (left) padding with 0, covering the cached
        positions too; positions then count real tokens only, so a left-padded prompt gets the same
        logits as it would alone. kv_cache: keys/values of earlier positions; this call appends to it.
        With a static kv_cache, attention_mask is (B, max_len) and must already mark the slots written.
        last_logits_only: return logits for the last position only (B, 1, V), as generation needs.
        output_hidden: return the final hidden states (B, T, C) (after the last LayerNorm) instead, for task
        heads; `lm_logits_and_loss` turns them into what this method would have returned.
        document_ids (B, T): packed rows of several documents (chat SFT): a query sees only the keys of its own
        document (a block-diagonal causal mask); pass position_ids restarting at 0 per document with it.
        return_logits=False (with targets): return (None, loss), the loss from gptkit.fused_loss (the head and
        the cross-entropy a chunk of rows at a time, no (B, T, V) logits; the same loss, faster on CPUs).
        """
        B, T = idx.shape
        write = kv_cache.begin(T) if kv_cache is not None else None  # (T,) slots, static caches only
        P = kv_cache.length if kv_cache is not None else 0
        S = kv_cache.max_len if write is not None else P + T
        if self.config.position_embedding == "learned" and write is None and S > self.config.block_size:
            raise ValueError(
                f"sequence of {S} positions is longer than the model's block_size {self.config.block_size}"
            )
        if attention_mask is not None and attention_mask.shape != (B, S):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(B, S)}")
        if position_ids is None:
            if attention_mask is not None:
                # Position of each token among the real tokens of its row (pads get 0; they are ignored).
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
                position_ids = position_ids[:, P:] if write is None else position_ids.index_select(1, write)
            elif write is not None:
                position_ids = write.unsqueeze(0)  # (1, T)
            else:
                position_ids = torch.arange(P, S, device=idx.device).unsqueeze(0)  # (1, T)
        if document_ids is not None:
            if kv_cache is not None or attention_mask is not None or document_ids.shape != (B, T):
                raise ValueError("document_ids (B, T) is for packed training rows: no kv_cache, no attention_mask")
            mask = self._document_attention_mask(document_ids)
        elif write is not None:
            mask = self._static_attention_mask(attention_mask, write, kv_cache.slots)
        else:
            mask = self._attention_mask(attention_mask, T, S, idx.device)

        x = self.wte(idx)  # (B, T, C)
        if self.smear is not None:
            before = kv_cache.smear_prev if kv_cache is not None else None
            emb = x
            x = self.smear(x, before, position_ids)
            if kv_cache is not None:  # the next forward pass's predecessor (in place: a static cache's buffer)
                kv_cache.smear_prev.copy_(emb[:, -1])
        ves = self.value_embeds(idx) if self.value_embeds is not None else [None] * len(self.h)
        rope = None
        if self.config.position_embedding == "learned":
            x = x + self.wpe(position_ids)
        elif self.config.position_embedding == "sinusoidal":
            x = x + self.sinusoid[position_ids].to(x.dtype)
        else:
            rope = rotary_cos_sin(position_ids, self.config.head_dim, self.config.rope_base, x.dtype)
        x = self.drop(x)
        for block, ve in zip(self.h, ves, strict=True):
            x = block(x, mask, kv_cache, rope, ve)
        x = self.ln_f(x)
        if kv_cache is not None:
            kv_cache.advance(T)
        if output_hidden:
            return x

        V = self.config.vocab_size
        if targets is None:
            if last_logits_only:
                x = x[:, -1:, :]
            return cap_logits(self.lm_head(x)[..., :V], self.config.logit_softcap)  # padding columns never returned
        if not return_logits:
            return None, linear_cross_entropy(
                x, self.lm_head.weight, targets, vocab_size=V, softcap=self.config.logit_softcap
            )
        return self.lm_logits_and_loss(x, targets)

    def lm_logits_and_loss(self, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, V) and the mean cross-entropy against targets (B, T) (-100 ignored) of final
        hidden states x (B, T, C)."""
        V = self.config.vocab_size
        logits = cap_logits(self.lm_head(x), self.config.logit_softcap)  # (B, T, Vp)
        if logits.shape[-1] > V:
            # Padding columns get -inf so the softmax over Vp equals the softmax over V (and they get no
            # gradient). An added (Vp,) row, not an in-place fill: torch.compile fuses the add into the
            # loss kernel, and the backward is the identity instead of a logits-sized zero fill.
            logits = logits + self._vocab_pad_bias(logits)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)
        return logits[..., :V], loss

    def _vocab_pad_bias(self, logits: torch.Tensor) -> torch.Tensor:
        """(Vp,) row: 0 for real tokens, -inf for padding columns."""
        bias = torch.zeros(logits.shape[-1], dtype=logits.dtype, device=logits.device)
        bias[self.config.vocab_size :] = float("-inf")
        return bias

    @staticmethod
    def _attention_mask(attention_mask: torch.Tensor | None, T: int, S: int, device: torch.device) -> AttentionMask:
        """Which keys each query may see: "causal" (S == T, no padding), None (one query that sees all S
        keys), or a boolean (B or 1, 1, T, S) tensor, True where query t may see key s.

        Each query also sees itself, so a padding query never has an all-masked row (which would give NaN);
        padding outputs are ignored anyway.
        """
        if attention_mask is None and S == T:
            return "causal"
        if attention_mask is None and T == 1:
            return None
        causal = torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)  # (T, S)
        if attention_mask is None:
            return causal.view(1, 1, T, S)
        keep = causal.unsqueeze(0) & attention_mask.bool().unsqueeze(1)  # (B, T, S)
        keep |= torch.eye(T, S, dtype=torch.bool, device=device).roll(S - T, dims=1).unsqueeze(0)
        return keep.unsqueeze(1)

    @staticmethod
    def _document_attention_mask(document_ids: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, T) boolean: query t sees key s <= t of the same document (block-diagonal causal)."""
        T = document_ids.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=document_ids.device).tril()
        same = document_ids.unsqueeze(2) == document_ids.unsqueeze(1)  # (B, T, T)
        return (same & causal).unsqueeze(1)

    @staticmethod
    def _static_attention_mask(
        attention_mask: torch.Tensor | None, write: torch.Tensor, slots: torch.Tensor
    ) -> torch.Tensor:
        """(B or 1, 1, T, max_len) boolean mask for a static cache: query t (at slot write[t]) sees the
        slots up to its own that attention_mask (B, max_len) marks, and always itself."""
        keep = slots.unsqueeze(0) <= write.unsqueeze(1)  # (T, max_len)
        if attention_mask is not None:
            keep = keep.unsqueeze(0) & attention_mask.bool().unsqueeze(1)  # (B, T, max_len)
        keep = keep | (slots.unsqueeze(0) == write.unsqueeze(1))
        return keep.unsqueeze(-3)
