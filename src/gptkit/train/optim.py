"""Optimizers (AdamW, or Muon for the hidden matrices), per-group learning rates, the learning-rate schedule,
and gradient clipping.

Parameter groups (`named_groups`): "embeddings" (token and position embeddings, value-embedding tables, and a
tied LM head), "head" (an untied LM head), "matrices" (every other matrix: attention and MLP weights), "vectors"
(biases, norm gains and the other scalars and vectors). Matrices, embeddings and head decay; vectors do not.
train.lr is the matrices' peak rate; train.embedding_lr / train.head_lr set those groups' own (default lr); the
schedule scales every group alike.
train.optimizer = "muon": torch.optim.Muon for "matrices" (orthogonalised momentum, Jordan et al. 2024, with
Moonshot's RMS matching so AdamW's lr and weight decay carry over) and AdamW for the rest. On a CPU without
bfloat16 kernels (gptkit.devices.cpu_has_native_bf16) Muon is gptkit.train.muon_fp32's
Float32Muon: the same update with its Newton-Schulz iteration in float32 instead of emulated bfloat16.
Both optimizers are torch's, as gptkit.train.eager_optim's classes: without torch.optim's torch.compile
wrappers, whose first call imports torch._dynamo (about 1.3 CPU-s of a training process on a 2-core CPU).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from gptkit.devices import cpu_has_native_bf16
from gptkit.train.config import TrainConfig
from gptkit.train.eager_optim import EagerAdamW, EagerMuon
from gptkit.train.muon_fp32 import Float32Muon

# gptkit GPT names; a tied lm_head is listed once, as wte.weight; value_embeds.tables.* are token tables too
# (their value_embeds.scales are vectors)
EMBEDDING_PREFIXES = ("wte.", "wpe.", "value_embeds.")
HEAD_PREFIXES = ("lm_head.",)


def schedule_shape(fraction: float, cfg: TrainConfig) -> float:
    """The decay factor in [0, 1] (1: peak lr, 0: min_lr) at `fraction` of the way from warmup to the end.

    cosine: half a cosine; linear: a straight line; constant: 1; wsd (warmup-stable-decay): 1 until the last
    `cooldown_fraction` of the way, then down to 0 along `cooldown_shape`: 1 - x (linear) or 1 - sqrt(x), x the
    share of the cooldown done.
    """
    if cfg.schedule == "constant":
        return 1.0
    if fraction >= 1.0:
        return 0.0
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * fraction))
    if cfg.schedule == "linear":
        return 1.0 - fraction
    stable = 1.0 - cfg.cooldown_fraction  # wsd
    if fraction < stable:
        return 1.0
    done = (fraction - stable) / cfg.cooldown_fraction  # x in [0, 1)
    return 1.0 - math.sqrt(done) if cfg.cooldown_shape == "1-sqrt" else 1.0 - done


def lr_at(step: int, cfg: TrainConfig, time_fraction: float | None = None) -> float:
    """Learning rate (of the matrices) of the update from step `step` to `step + 1` (steps count from 0).

    Linear warmup over `warmup_steps` (lr x (step + 1) / (warmup_steps + 1)), then from lr to min_lr along
    `schedule_shape`: over the steps from warmup to `decay_steps`, or, for a run with a time budget, over its
    `time_fraction` (the share of the budget used so far), then min_lr.
    """
    lr, min_lr = cfg.lr, cfg.resolved_min_lr
    warmup, decay = cfg.warmup_steps, cfg.resolved_decay_steps
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if time_fraction is not None:
        fraction = time_fraction
    else:
        fraction = (step - warmup) / (decay - warmup) if decay > warmup else 1.0
    return min_lr + schedule_shape(fraction, cfg) * (lr - min_lr)


def named_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Trainable parameters by role: embeddings, head, matrices, vectors (see the module docstring)."""
    groups: dict[str, list[nn.Parameter]] = {"embeddings": [], "head": [], "matrices": [], "vectors": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() < 2:
            groups["vectors"].append(p)
        elif name.startswith(EMBEDDING_PREFIXES):
            groups["embeddings"].append(p)
        elif name.startswith(HEAD_PREFIXES):
            groups["head"].append(p)
        else:
            groups["matrices"].append(p)
    return groups


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: matrices (Linear weights, embeddings) decay; biases and LayerNorm gains do not.

    A tied embedding / LM head matrix is one parameter and appears once.
    """
    g = named_groups(model)
    return [
        {"params": g["embeddings"] + g["head"] + g["matrices"], "weight_decay": weight_decay},
        {"params": g["vectors"], "weight_decay": 0.0},
    ]


class OptimizerGroup:
    """Several torch optimizers stepped as one (AdamW + Muon). Only what the trainer uses: param_groups,
    step, zero_grad; `optimizers` lists them for checkpointing."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)


def optimizer_list(optimizer: torch.optim.Optimizer | OptimizerGroup) -> list[torch.optim.Optimizer]:
    return optimizer.optimizers if isinstance(optimizer, OptimizerGroup) else [optimizer]


def build_optimizer(model: nn.Module, cfg: TrainConfig, device_type: str) -> torch.optim.Optimizer | OptimizerGroup:
    """AdamW over the groups (fused kernel on CUDA, multi-tensor foreach elsewhere), or AdamW + Muon.

    Each group carries `lr_ratio` (its peak lr / train.lr); `set_lr` multiplies the schedule's lr by it.
    """
    g = named_groups(model)
    wd = cfg.weight_decay
    same_lr = cfg.resolved_embedding_lr == cfg.resolved_head_lr == cfg.lr
    if (
        cfg.optimizer == "adamw" and same_lr and cfg.resolved_embedding_weight_decay == wd
    ):  # the two groups of param_groups
        adam_groups = param_groups(model, wd)
    else:
        adam_groups = _role_groups(g, cfg)
    adam_groups = [group for group in adam_groups if group["params"]]
    fused = device_type == "cuda"
    adamw = EagerAdamW(
        adam_groups,
        lr=lr_at(0, cfg),
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
        fused=fused or None,
        foreach=None if fused else True,
    )
    if cfg.optimizer == "adamw" or not g["matrices"]:
        set_lr(adamw, lr_at(0, cfg))
        return adamw
    matrices = {"params": g["matrices"], "weight_decay": wd, "lr_ratio": 1.0}
    # torch's Muon runs its Newton-Schulz iteration in bfloat16, emulated (slow) on CPUs without bf16 kernels.
    muon_class = Float32Muon if device_type == "cpu" and not cpu_has_native_bf16() else EagerMuon
    muon = muon_class(
        [matrices],
        lr=lr_at(0, cfg),
        weight_decay=wd,
        momentum=cfg.muon_momentum,
        ns_steps=cfg.muon_ns_steps,
        adjust_lr_fn="match_rms_adamw",
    )
    group = OptimizerGroup([adamw, muon])
    set_lr(group, lr_at(0, cfg))
    return group


def _role_groups(g: dict[str, list[nn.Parameter]], cfg: TrainConfig) -> list[dict]:
    """AdamW groups per role, each with its lr_ratio; the matrices only under AdamW (else Muon has them)."""
    wd = cfg.weight_decay
    groups = [
        {
            "params": g["embeddings"],
            "weight_decay": cfg.resolved_embedding_weight_decay,
            "lr_ratio": cfg.resolved_embedding_lr / cfg.lr,
            "role": "embeddings",
        },
        {"params": g["head"], "weight_decay": wd, "lr_ratio": cfg.resolved_head_lr / cfg.lr, "role": "head"},
        {"params": g["vectors"], "weight_decay": 0.0, "lr_ratio": 1.0, "role": "vectors"},
    ]
    if cfg.optimizer == "adamw":
        groups.insert(0, {"params": g["matrices"], "weight_decay": wd, "lr_ratio": 1.0})
    return groups


def set_lr(optimizer: torch.optim.Optimizer | OptimizerGroup, lr: float) -> None:
    """Set every group's lr to `lr` times its lr_ratio (1 for groups without one)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_ratio", 1.0)


def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale all gradients by min(1, max_norm / (norm + 1e-6)) where norm is their global L2 norm; return norm.

    Stays on the device (no host sync); the norm of sharded (FSDP) gradients is the global one.
    """
    norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm, foreach=True)
    if hasattr(norm, "full_tensor"):  # a DTensor under FSDP2
        norm = norm.full_tensor()
    return norm
