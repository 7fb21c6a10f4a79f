"""gptkit.train.muon_fp32: torch.optim.Muon's update with the Newton-Schulz iteration in float32 (for CPUs whose
oneDNN has no bfloat16 kernels, where torch's bfloat16 iteration is emulated)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gptkit.train import optim
from gptkit.train.config import TrainConfig
from gptkit.train.eager_optim import EagerMuon
from gptkit.train.muon_fp32 import Float32Muon, newton_schulz_fp32

COEFFS = (3.4445, -4.7750, 2.0315)  # torch.optim.Muon's defaults


def ns_reference(g: np.ndarray, steps: int) -> np.ndarray:
    """The quintic iteration in float64, written from its definition: X <- aX + bAX + cA^2X, A = XX^T, on the
    orientation with rows <= cols, from X = G / ||G||_F."""
    a, b, c = COEFFS
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / np.linalg.norm(x)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + b * gram @ x + c * gram @ gram @ x
    return x.T if g.shape[0] > g.shape[1] else x


@pytest.mark.parametrize("shape", [(24, 40), (40, 24), (32, 32)])
def test_newton_schulz_matches_a_float64_reference(shape):
    g = np.random.default_rng(0).standard_normal(shape)
    got = newton_schulz_fp32(torch.tensor(g, dtype=torch.float32), COEFFS, 5, 1e-7)
    assert got.dtype == torch.float32 and tuple(got.shape) == shape
    np.testing.assert_allclose(got.numpy(), ns_reference(g, 5), rtol=0, atol=2e-5)


def two_optimizers(nesterov: bool):
    torch.manual_seed(0)
    params = [torch.randn(16, 48), torch.randn(48, 16)]
    kw = dict(lr=0.02, weight_decay=0.1, momentum=0.9, nesterov=nesterov, adjust_lr_fn="match_rms_adamw")
    ours = [p.clone().requires_grad_() for p in params]
    theirs = [p.clone().requires_grad_() for p in params]
    return ours, Float32Muon(ours, **kw), theirs, torch.optim.Muon(theirs, **kw)


@pytest.mark.parametrize("nesterov", [True, False])
def test_steps_follow_a_hand_reference_and_torch_muon(nesterov):
    ours, opt, theirs, torch_opt = two_optimizers(nesterov)
    ref = [p.detach().double().clone() for p in ours]
    bufs = [torch.zeros_like(r) for r in ref]
    for step in range(3):
        grads = [
            torch.randn(p.shape, generator=torch.Generator().manual_seed(10 * step + i)) for i, p in enumerate(ours)
        ]
        for group in (ours, theirs):
            for p, g in zip(group, grads, strict=True):
                p.grad = g.clone()
        opt.step()
        torch_opt.step()
        for i, g in enumerate(grads):  # the update written out: momentum, Nesterov, decay, per-matrix lr
            bufs[i] = 0.9 * bufs[i] + 0.1 * g.double()
            u = 0.1 * g.double() + 0.9 * bufs[i] if nesterov else bufs[i]
            lr = 0.02 * 0.2 * math.sqrt(max(ref[i].shape))
            ref[i] = ref[i] * (1 - 0.02 * 0.1) - lr * torch.from_numpy(ns_reference(u.numpy(), 5))
    for p, r, q in zip(ours, ref, theirs, strict=True):
        assert torch.allclose(p.detach().double(), r, rtol=0, atol=1e-5)
        # torch's bfloat16 iteration: the same update to bf16's precision (8 mantissa bits)
        assert (p - q).abs().max().item() < 0.02 * q.abs().max().item()
    assert opt.state_dict()["state"].keys() == torch_opt.state_dict()["state"].keys()
    assert set(opt.state[ours[0]]) == set(torch_opt.state[theirs[0]]) == {"momentum_buffer"}


def test_build_optimizer_picks_float32_muon_only_without_bf16_kernels(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 4))
    cfg = TrainConfig(optimizer="muon")
    for available, expected in ((False, Float32Muon), (True, EagerMuon)):
        monkeypatch.setattr(optim, "cpu_has_native_bf16", lambda available=available: available)
        muon = optim.build_optimizer(model, cfg, "cpu").optimizers[-1]
        assert type(muon) is expected
    assert type(optim.build_optimizer(model, cfg, "cuda").optimizers[-1]) is EagerMuon
