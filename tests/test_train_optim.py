"""Learning-rate schedule, weight-decay groups and gradient clipping against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

import gptkit
from gptkit.train.config import load_run_config
from gptkit.train.optim import build_optimizer, clip_grad_norm, lr_at, param_groups


def schedule(kind: str):
    return load_run_config(
        None,
        [
            "train.lr=1e-3",
            "train.min_lr=1e-4",
            "train.warmup_steps=10",
            "train.decay_steps=110",
            "train.max_steps=200",
            f"train.schedule={kind}",
        ],
    ).train


@pytest.mark.parametrize("kind", ["cosine", "linear", "constant"])
def test_warmup_is_linear_from_lr_over_warmup_plus_one(kind):
    cfg = schedule(kind)
    assert lr_at(0, cfg) == pytest.approx(1e-3 / 11)
    assert lr_at(4, cfg) == pytest.approx(5e-3 / 11)
    assert lr_at(9, cfg) == pytest.approx(10e-3 / 11)
    assert lr_at(10, cfg) == pytest.approx(1e-3)  # warmup done: the peak


def test_decay_values():
    cos, lin, const = schedule("cosine"), schedule("linear"), schedule("constant")
    # step 35: a quarter of the way from 10 to 110; cos(pi / 4) = 0.70710678
    assert lr_at(35, cos) == pytest.approx(1e-4 + 0.5 * (1 + 0.70710678) * 9e-4)  # 8.6820e-4
    assert lr_at(35, lin) == pytest.approx(1e-4 + 0.75 * 9e-4)  # 7.75e-4
    assert lr_at(60, cos) == pytest.approx(5.5e-4)  # halfway: both at the midpoint
    assert lr_at(60, lin) == pytest.approx(5.5e-4)
    assert lr_at(109, lin) == pytest.approx(1e-4 + 9e-4 / 100)
    for step in (110, 111, 199):
        assert lr_at(step, cos) == lr_at(step, lin) == pytest.approx(1e-4)
    assert all(lr_at(s, const) == pytest.approx(1e-3) for s in (10, 60, 150))


def test_min_lr_defaults_to_a_tenth_and_decay_to_max_steps():
    cfg = load_run_config(None, ["train.lr=6e-4", "train.warmup_steps=0", "train.max_steps=100"]).train
    assert lr_at(0, cfg) == pytest.approx(6e-4)
    assert lr_at(50, cfg) == pytest.approx(6e-5 + 0.5 * 5.4e-4)
    assert lr_at(100, cfg) == pytest.approx(6e-5)


def test_weight_decay_groups_hold_matrices_only():
    model = gptkit.GPT(gptkit.preset("tiny"))
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}  # the tied head is listed once, as wte.weight
    decayed = sorted(names[id(p)] for p in decay["params"])
    assert decayed == sorted(
        [
            "wte.weight",
            "wpe.weight",
            *[f"h.{i}.{m}.weight" for i in range(2) for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")],
        ]
    )
    not_decayed = {names[id(p)] for p in no_decay["params"]}
    assert not_decayed == {n for n in names.values() if n.endswith(".bias") or ".ln_" in n or n.startswith("ln_f")}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    n_total = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in decay["params"] + no_decay["params"]) == n_total


def test_adamw_step_decays_matrices_and_leaves_the_rest():
    """With zero gradients Adam's update is 0, so one step multiplies decayed weights by 1 - lr * wd exactly."""
    model = gptkit.GPT(gptkit.preset("tiny"))
    cfg = load_run_config(None, ["train.lr=0.5", "train.weight_decay=0.1", "train.warmup_steps=0"]).train
    opt = build_optimizer(model, cfg, "cpu")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        expected = before[n] * (1 - 0.5 * 0.1) if p.dim() >= 2 else before[n]
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=0)


def test_grad_clipping_scales_by_the_global_norm():
    a = torch.nn.Parameter(torch.zeros(2))
    b = torch.nn.Parameter(torch.zeros(1, 1))
    a.grad = torch.tensor([3.0, 4.0])
    b.grad = torch.tensor([[12.0]])  # global norm sqrt(9 + 16 + 144) = 13
    norm = clip_grad_norm([a, b], 1.3)
    assert norm.item() == pytest.approx(13.0)
    scale = 1.3 / (13.0 + 1e-6)
    torch.testing.assert_close(a.grad, torch.tensor([3.0, 4.0]) * scale)
    torch.testing.assert_close(b.grad, torch.tensor([[12.0]]) * scale)
    assert math.sqrt(a.grad.square().sum() + b.grad.square().sum()) == pytest.approx(1.3, rel=1e-6)
    norm = clip_grad_norm([a, b], 100.0)  # under the limit: unchanged
    assert norm.item() == pytest.approx(1.3, rel=1e-6)
    torch.testing.assert_close(a.grad, torch.tensor([3.0, 4.0]) * scale)


def test_mfu_peaks_by_device_name(monkeypatch):
    from gptkit.train.metrics import peak_flops

    assert peak_flops(torch.device("cpu"), torch.float32) is None
    for name, bf16, fp32 in (
        ("NVIDIA H100 80GB HBM3", 989.5e12, 494.7e12),
        ("NVIDIA H200", 989.5e12, 494.7e12),
        ("NVIDIA H100 PCIe", 756e12, 378e12),
        ("NVIDIA A100-SXM4-80GB", 312e12, 156e12),
    ):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, n=name: n)
        assert peak_flops(torch.device("cuda", 0), torch.bfloat16) == bf16
        assert peak_flops(torch.device("cuda", 0), torch.float32) == fp32
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA GeForce RTX 4090")
    assert peak_flops(torch.device("cuda", 0), torch.bfloat16) is None
