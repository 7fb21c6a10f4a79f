"""torch.optim.Muon with its Newton-Schulz iteration in float32, for CPUs without bfloat16 kernels.

torch.optim.Muon orthogonalises each update with a quintic Newton-Schulz iteration that it always runs in
bfloat16 (`grad.bfloat16()`). On a CPU where oneDNN has no bfloat16 kernels (no AVX512_BF16 or AMX; e.g. an AMD
Zen 3 with AVX2 only) those matrix products are emulated: on such a CPU a Muon step of the 4 x 192 zh base
took longer than its forward and backward together. `Float32Muon` is the same update (momentum, Nesterov,
the same iteration and coefficients, decoupled weight decay, the same lr adjustment) with the iteration in
float32. It keeps Muon's state layout ("momentum_buffer" per parameter) and its param_groups, so a checkpoint of
one resumes in the other. `build_optimizer` picks it on such CPUs (gptkit.train.optim).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from gptkit.train.eager_optim import EagerMuon


def newton_schulz_fp32(
    update: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> torch.Tensor:
    """The quintic Newton-Schulz iteration X <- a X + (b A + c A^2) X, A = X X^T, from X = G / |G|_F, in float32
    on the wide orientation of the (rows, cols) matrix G; the result has G's shape and float32 dtype."""
    a, b, c = coefficients
    x = update.float()
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if tall else x


def adjusted_lr(lr: float, rule: str | None, shape: torch.Size) -> float:
    """Muon's per-matrix lr: "match_rms_adamw" 0.2 sqrt(max(A, B)) (Moonshot), "original" / None
    sqrt(max(1, A / B))."""
    rows, cols = shape[:2]
    if rule == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    if rule in (None, "original"):
        return lr * math.sqrt(max(1.0, rows / cols))
    raise ValueError(f"adjust_lr_fn: {rule!r} is not one of original, match_rms_adamw")


class Float32Muon(EagerMuon):
    """torch.optim.Muon (same arguments, state and groups) with the Newton-Schulz iteration in float32
    (gptkit.train.eager_optim.EagerMuon: it does not import torch._dynamo either)."""

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, momentum = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - momentum)
                update = p.grad.lerp(buf, momentum) if group["nesterov"] else buf
                ortho = newton_schulz_fp32(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
                p.mul_(1 - lr * wd)
                p.add_(ortho.to(p.dtype), alpha=-adjusted_lr(lr, group["adjust_lr_fn"], p.shape))
        return loss
