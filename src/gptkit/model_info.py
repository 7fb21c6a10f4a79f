"""Size, compute and memory of a model configuration, computed without allocating weights (meta device)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gptkit.config import ModelConfig
from gptkit.model import GPT


@dataclass
class ModelStats:
    n_params: int  # trainable parameters, a tied embedding counted once, no vocabulary padding
    n_params_non_embedding: int  # without token and position embeddings (Kaplan et al. 2020's N)
    train_flops_per_token: float  # forward + backward at full context
    bytes_weights_fp32: int
    bytes_weights_bf16: int
    bytes_train_fp32: int  # weights + grads + AdamW m, v, all fp32: 16 bytes / parameter
    bytes_train_bf16: int  # weights + grads + AdamW m, v, all bf16: 8 bytes / parameter


def train_flops_per_token(config: ModelConfig) -> float:
    """6 x (parameters used in matmuls) + 12 x n_layer x n_embd x block_size.

    Each matmul weight costs 2 FLOPs per token forward and 4 backward; attention scores and the weighted
    sum of values cost 2 x 2 x T x C per layer forward, likewise tripled for training (the estimate of
    PaLM, Chowdhery et al. 2022, appendix B, which nanoGPT's MFU also uses). The LM head counts even
    when tied, because its matmul runs regardless.
    """
    C, L = config.n_embd, config.n_layer
    per_layer = C * 3 * C + C * C + 2 * C * config.ffn_dim  # qkv, attention out, two MLP matrices
    matmul_params = L * per_layer + config.vocab_size * C
    return 6.0 * matmul_params + 12.0 * L * C * config.block_size


def model_stats(config: ModelConfig) -> ModelStats:
    with torch.device("meta"):
        model = GPT(config)
    n = model.num_parameters()
    # Kaplan et al.'s N leaves out the token and position embeddings (an untied LM head stays in).
    n_non_embedding = n - config.vocab_size * config.n_embd * (1 + config.value_embeddings)  # + value-embedding tables
    if config.position_embedding == "learned":
        n_non_embedding -= config.block_size * config.n_embd
    return ModelStats(
        n_params=n,
        n_params_non_embedding=n_non_embedding,
        train_flops_per_token=train_flops_per_token(config),
        bytes_weights_fp32=4 * n,
        bytes_weights_bf16=2 * n,
        bytes_train_fp32=16 * n,
        bytes_train_bf16=8 * n,
    )


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


def format_count(n: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:g}"
