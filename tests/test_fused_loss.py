"""gptkit.fused_loss (the LM head + cross-entropy a chunk of rows at a time) and the bfloat16 CPU training path,
against float64 references written out here and against the float32 path."""

from __future__ import annotations

import pytest
import torch

import gptkit
from gptkit.fused_loss import linear_cross_entropy
from gptkit.train.trainer import Trainer
from tests.train_helpers import make_shards, one_thread, tiny_config, train_losses  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def reference_loss(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, vocab: int, softcap: float = 0.0
) -> torch.Tensor:
    """Mean -log softmax(x W^T)[target] over the rows whose target is not -100, in float64, written out; with
    softcap c > 0 the logits are c tanh(x W^T / c)."""
    logits = x.double().reshape(-1, x.shape[-1]) @ weight[:vocab].double().T
    if softcap > 0:
        logits = softcap * torch.tanh(logits / softcap)
    t = targets.reshape(-1)
    keep = t != -100
    log_z = logits.max(1).values + (logits - logits.max(1, keepdim=True).values).exp().sum(1).log()
    picked = logits[keep].gather(1, t[keep].unsqueeze(1)).squeeze(1)
    return (log_z[keep] - picked).mean()


def problem(n: int = 37, c: int = 8, vp: int = 24, vocab: int = 21, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64)
    w = torch.randn(vp, c, generator=g, dtype=torch.float64) * 0.7
    t = torch.randint(0, vocab, (n,), generator=g)
    t[::5] = -100  # some rows not counted
    return x, w, t, vocab


@pytest.mark.parametrize("softcap", [0.0, 1.5])  # 1.5: logits of size ~2-3 are well inside the tanh's bend
@pytest.mark.parametrize("chunk_rows", [1, 7, 16, 100])
def test_loss_and_gradients_match_a_float64_reference(chunk_rows, softcap):
    x, w, t, vocab = problem()
    x1, w1 = x.clone().requires_grad_(), w.clone().requires_grad_()
    loss = linear_cross_entropy(x1, w1, t, vocab_size=vocab, chunk_rows=chunk_rows, softcap=softcap)
    (loss * 3.0).backward()  # the incoming gradient scales both gradients
    x2, w2 = x.clone().requires_grad_(), w.clone().requires_grad_()
    ref = reference_loss(x2, w2, t, vocab, softcap)
    (ref * 3.0).backward()
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-10, atol=1e-12)
    assert (w1.grad[vocab:] == 0).all()  # padding rows: never predicted, no gradient
    assert (x1.grad[::5] == 0).all()  # ignored rows give nothing


def test_float32_matches_and_no_grad_computes_only_the_loss():
    x, w, t, vocab = problem(n=300, c=16, vp=64, vocab=64, seed=1)
    x, w = x.float(), w.float()
    with torch.no_grad():
        loss = linear_cross_entropy(x, w, t, chunk_rows=64)
    assert loss.dtype == torch.float32 and not loss.requires_grad
    assert abs(loss.item() - reference_loss(x, w, t, vocab).item()) < 1e-5
    batched = linear_cross_entropy(x.view(3, 100, 16), w, t.view(3, 100))  # (B, T, C) rows
    assert abs(batched.item() - loss.item()) < 1e-5


def test_bfloat16_autocast_stays_near_float32_with_float32_loss():
    x, w, t, vocab = problem(n=512, c=64, vp=500, vocab=500, seed=2)
    x, w = x.float().requires_grad_(), w.float().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = linear_cross_entropy(x, w, t, chunk_rows=128)
    loss.backward()
    assert loss.dtype == torch.float32 and x.grad.dtype == w.grad.dtype == torch.float32
    x2, w2 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    ref = reference_loss(x2, w2, t, vocab)
    ref.backward()
    # bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2%): logits of size ~6 move by ~0.01.
    assert abs(loss.item() - ref.item()) < 0.01 * ref.item()
    cos = torch.nn.functional.cosine_similarity(w.grad.flatten().double(), w2.grad.flatten(), dim=0)
    assert cos > 0.999


def test_shape_mismatch_is_an_error():
    x, w, t, vocab = problem()
    with pytest.raises(ValueError, match="do not fit"):
        linear_cross_entropy(x, w, t[:-1])
    with pytest.raises(ValueError, match="do not fit"):
        linear_cross_entropy(x, w, t, vocab_size=w.shape[0] + 1)


@pytest.mark.parametrize("tied,softcap", [(True, 0.0), (False, 0.0), (False, 0.5)])
def test_gpt_loss_without_logits_equals_the_logits_path(tied, softcap):
    torch.manual_seed(0)
    cfg = gptkit.preset(
        "tiny", vocab_size=90, vocab_pad_multiple=64, tie_embeddings=tied, logit_softcap=softcap
    )  # padded to 128
    model = gptkit.GPT(cfg)
    idx = torch.randint(0, 90, (3, 16))
    targets = torch.randint(0, 90, (3, 16))
    targets[0, :4] = -100
    _, loss = model(idx, targets)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    logits, fused = model(idx, targets, return_logits=False)
    fused.backward()
    assert logits is None
    torch.testing.assert_close(fused, loss, rtol=1e-6, atol=1e-6)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], rtol=1e-5, atol=1e-6, msg=n)


def test_cpu_autocast_attention_runs_in_float32():
    """Under CPU autocast, attention goes through SDPA in float32: the bfloat16 model's output stays as near
    the float32 model's as its matrix products allow, and the loss is float32."""
    torch.manual_seed(0)
    cfg = gptkit.preset("tiny", vocab_size=64, position_embedding="rotary", norm="rmsnorm", qk_norm=True)
    model = gptkit.GPT(cfg).eval()
    idx = torch.randint(0, 64, (2, 32))
    with torch.no_grad():
        ref_logits, ref_loss = model(idx, idx)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, loss = model(idx, idx)
            _, fused = model(idx, idx, return_logits=False)
    assert loss.dtype == fused.dtype == torch.float32
    assert abs(loss.item() - ref_loss.item()) < 0.01 * ref_loss.item()
    assert abs(fused.item() - loss.item()) < 1e-3
    assert (logits.float() - ref_logits).abs().max() < 0.05 * ref_logits.abs().max()


def test_bfloat16_training_follows_float32(tmp_path):
    """A tiny model trained 30 steps under bfloat16 autocast with the chunked loss, and in float32 with the
    logits loss, from the same initial weights on the same batches: the losses stay within bfloat16's
    precision of each other all the way."""
    data = make_shards(tmp_path / "data")
    runs = {}
    for name, extra in {
        "fp32": [],
        "bf16": ["train.dtype=bfloat16", "train.chunked_loss=true", "train.optimizer=muon"],
        "fp32_muon": ["train.optimizer=muon"],
    }.items():
        cfg = tiny_config(data, "train.max_steps=30", "train.eval_interval=0", *extra)
        Trainer(cfg, tmp_path / name).run()
        runs[name] = train_losses(tmp_path / name)
    fp32, bf16 = runs["fp32_muon"], runs["bf16"]
    assert fp32[30] < fp32[1] - 1.0  # it learns
    assert abs(bf16[1] - fp32[1]) < 0.01 * fp32[1]  # the first step: only rounding differs
    for step in (10, 20, 30):
        assert abs(bf16[step] - fp32[step]) < 0.05 * fp32[step], (step, bf16[step], fp32[step])
    assert abs(runs["fp32"][1] - fp32[1]) < 1e-6  # the same first batch and weights in both
