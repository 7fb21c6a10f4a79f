"""gptkit.train.eager_optim: torch's AdamW and Muon beneath their torch.compile wrappers (bit-identical updates,
state and groups), and gptkit.train.full_state: the name-keyed full state dicts torch.distributed.checkpoint
writes, without it. Neither may import torch._dynamo in a training process (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

import gptkit
from gptkit.errors import CheckpointError
from gptkit.train.config import load_run_config
from gptkit.train.eager_optim import EagerAdamW, EagerMuon
from gptkit.train.full_state import full_model_state, full_optimizer_state, load_full_optimizer_state
from gptkit.train.optim import build_optimizer, optimizer_list

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def pair(make, shapes, **kw):
    torch.manual_seed(0)
    params = [torch.randn(s) for s in shapes]
    ours = [p.clone().requires_grad_() for p in params]
    theirs = [p.clone().requires_grad_() for p in params]
    return ours, make[0](ours, **kw), theirs, make[1](theirs, **kw)


@pytest.mark.parametrize(
    "make, shapes, kw",
    [
        ((EagerAdamW, torch.optim.AdamW), [(8, 12), (12,)], dict(lr=3e-3, weight_decay=0.1, foreach=True)),
        ((EagerAdamW, torch.optim.AdamW), [(8, 12), (12,)], dict(lr=3e-3, betas=(0.8, 0.99), foreach=False)),
        ((EagerMuon, torch.optim.Muon), [(16, 24), (24, 16)], dict(lr=0.02, adjust_lr_fn="match_rms_adamw")),
    ],
)
def test_updates_state_and_groups_equal_torchs_bit_for_bit(make, shapes, kw):
    ours, opt, theirs, torch_opt = pair(make, shapes, **kw)
    for step in range(3):
        for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
            g = torch.randn(p.shape, generator=torch.Generator().manual_seed(10 * step + i))
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        torch_opt.step()
        opt.zero_grad()
        torch_opt.zero_grad()
        assert all(p.grad is None for p in ours)
    for p, q in zip(ours, theirs, strict=True):
        assert torch.equal(p.detach(), q.detach())
    a, b = opt.state_dict(), torch_opt.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in b["state"]:
        assert a["state"][i].keys() == b["state"][i].keys()
        assert all(torch.equal(a["state"][i][k], b["state"][i][k]) for k in b["state"][i])
    fresh = make[0]([p.detach().clone().requires_grad_() for p in ours], **kw)
    fresh.load_state_dict(b)  # torch's checkpoint into the eager class
    assert fresh.state_dict()["param_groups"] == b["param_groups"]


def trained(settings=("train.optimizer=muon", "train.embedding_lr=2e-2")):
    cfg = load_run_config(None, ["model.preset=tiny", *settings])
    torch.manual_seed(0)
    model = gptkit.GPT(cfg.model_config(100))
    opt = build_optimizer(model, cfg.train, "cpu")
    x = torch.randint(0, 100, (2, 16), generator=torch.Generator().manual_seed(1))
    for _ in range(2):
        _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad()
    return cfg, model, optimizer_list(opt)


def assert_same_tree(a, b):
    assert type(a) is type(b) or (isinstance(a, tuple | list) and isinstance(b, tuple | list))
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, torch.Tensor):
        assert a.device.type == "cpu" and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_tree(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("settings", [("train.optimizer=muon", "train.embedding_lr=2e-2"), ("train.optimizer=adamw",)])
def test_full_state_is_what_torch_distributed_checkpoint_writes(settings):
    _, model, optimizers = trained(settings)
    assert_same_tree(full_model_state(model), get_model_state_dict(model, options=FULL))
    assert_same_tree(full_optimizer_state(model, optimizers), get_optimizer_state_dict(model, optimizers, options=FULL))


def test_loading_the_full_state_equals_torch_distributed_checkpoint_loading():
    cfg, model, optimizers = trained()
    saved = get_optimizer_state_dict(model, optimizers, options=FULL)
    loaded = []
    for load in ("ours", "torch"):
        fresh = optimizer_list(build_optimizer(model, cfg.train, "cpu"))
        if load == "ours":
            load_full_optimizer_state(model, fresh, saved)
        else:
            set_optimizer_state_dict(model, fresh, saved, options=StateDictOptions(full_state_dict=True))
        loaded.append([o.state_dict() for o in fresh])
    assert_same_tree(loaded[0], loaded[1])
    assert_same_tree(loaded[0], [o.state_dict() for o in optimizers])


def test_a_group_that_is_not_in_the_checkpoint_is_refused_by_name():
    cfg, model, optimizers = trained()
    saved = full_optimizer_state(model, optimizers)
    saved["param_groups"] = [g for g in saved["param_groups"] if "wte.weight" not in g["params"]]
    with pytest.raises(CheckpointError, match=r"ckpt/optimizer.safetensors: .*wte\.weight"):
        load_full_optimizer_state(model, optimizers, saved, source="ckpt/optimizer.safetensors")


def test_a_training_run_and_its_resume_never_import_torch_dynamo(tmp_path):
    """A fresh interpreter trains (Muon + AdamW, a checkpoint), resumes and saves again; torch._dynamo,
    sympy and torch.distributed.checkpoint stay unimported (their import is ~1.3 CPU-s of such a process)."""
    text = tmp_path / "t.txt"
    text.write_text("hello world, a small text to train on. " * 200, encoding="utf-8")
    code = textwrap.dedent(
        f"""
        import sys
        from gptkit.train.config import load_run_config
        from gptkit.train.trainer import train
        s = ["model.preset=tiny", "train.optimizer=muon", "train.max_steps=3", "train.eval_steps=1",
             "train.eval_interval=0", "train.sample_tokens=0", "train.device=cpu", "data.path={str(text)!r}",
             "data.tokenizer=char", "train.batch_size=2"]
        train(load_run_config(None, s), {str(tmp_path / "run")!r})
        train(load_run_config(None, [*s, "train.max_steps=5"]), {str(tmp_path / "run")!r}, resume=True)
        bad = [m for m in ("torch._dynamo", "sympy", "torch.distributed.checkpoint") if m in sys.modules]
        print("IMPORTED", bad)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "IMPORTED []" in out.stdout, out.stdout[-2000:]
