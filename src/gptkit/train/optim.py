"""AdamW with weight decay on matrices only, the learning-rate schedule, and gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from gptkit.train.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of the update from step `step` to `step + 1` (steps count from 0).

    Linear warmup over `warmup_steps` (lr x (step + 1) / (warmup_steps + 1)), then from lr down to min_lr
    at `decay_steps` along a half cosine or a straight line (or flat for "constant"), then min_lr.
    """
    lr, min_lr = cfg.lr, cfg.resolved_min_lr
    warmup, decay = cfg.warmup_steps, cfg.resolved_decay_steps
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if cfg.schedule == "constant":
        return lr
    if step >= decay:
        return min_lr
    progress = (step - warmup) / (decay - warmup)  # in [0, 1)
    if cfg.schedule == "cosine":
        coeff = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:  # linear
        coeff = 1.0 - progress
    return min_lr + coeff * (lr - min_lr)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: matrices (Linear weights, embeddings) decay; biases and LayerNorm gains do not.

    A tied embedding / LM head matrix is one parameter and appears once.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: TrainConfig, device_type: str) -> torch.optim.AdamW:
    """AdamW over `param_groups`; the fused kernel on CUDA, the multi-tensor (foreach) one elsewhere."""
    fused = device_type == "cuda"
    return torch.optim.AdamW(
        param_groups(model, cfg.weight_decay),
        lr=lr_at(0, cfg),
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
        fused=fused or None,
        foreach=None if fused else True,
    )


def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale all gradients by min(1, max_norm / (norm + 1e-6)) where norm is their global L2 norm; return norm.

    Stays on the device (no host sync); the norm of sharded (FSDP) gradients is the global one.
    """
    norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm, foreach=True)
    if hasattr(norm, "full_tensor"):  # a DTensor under FSDP2
        norm = norm.full_tensor()
    return norm
