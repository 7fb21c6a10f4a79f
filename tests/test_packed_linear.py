"""oneDNN-packed Linear layers (the server's CPU decoder) against float64 and against the unpacked model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gptkit import GPT, ModelConfig
from gptkit.generation.batched import BatchScheduler, Job, TokenEvent, prefill_groups, resolve_for_batching
from gptkit.generation.engine import generate
from gptkit.generation.packed_linear import PackedLinear, bf16_kernels_available, pack_linears, packing_available
from gptkit.generation.settings import GenerationSettings

V = 120
needs_onednn = pytest.mark.skipif(
    not packing_available(torch.nn.Linear(2, 2)), reason="this torch has no oneDNN packed linear operators"
)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model() -> GPT:
    cfg = ModelConfig(vocab_size=V, block_size=64, n_layer=2, n_head=2, n_embd=32).replace()
    torch.manual_seed(0)
    m = GPT(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # a spread of logits, so no near ties
    return m.eval()


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
def test_packed_linear_matches_float64_and_is_batch_invariant(bias):
    torch.manual_seed(1)
    lin = torch.nn.Linear(96, 200, bias=bias)
    packed = PackedLinear(lin, batch_hint=16)
    x = torch.randn(16, 96)
    with torch.inference_mode():
        y = packed(x)
        ref = F.linear(x.double(), lin.weight.double(), None if lin.bias is None else lin.bias.double())
        assert y.dtype == torch.float32 and y.shape == (16, 200)
        assert torch.allclose(y.double(), ref, rtol=0, atol=1e-5)
        # Each row's output depends on that row only, bit for bit, at any batch size or shape.
        assert torch.equal(packed(x[:1]), y[:1])
        assert torch.equal(packed(x[5:8]), y[5:8])
        assert torch.equal(packed(x.view(4, 4, 96)).view(16, 200), y)
        assert torch.equal(packed(torch.cat([x, x, x, x]))[:16], y)


@pytest.mark.skipif(not bf16_kernels_available(), reason="no oneDNN bfloat16 kernels on this CPU / torch")
@pytest.mark.parametrize("rows", [1, 16])
def test_bf16_weights_in_a_float32_linear_are_what_autocast_computes_and_are_batch_invariant(rows):
    torch.manual_seed(1)
    lin = torch.nn.Linear(96, 200)
    packed = PackedLinear(lin, batch_hint=16, weight_dtype=torch.bfloat16)
    x = torch.randn(rows, 96)
    with torch.inference_mode():
        y = packed(x)
        assert packed.mixed and y.dtype == torch.bfloat16 and packed.packed.dtype == torch.bfloat16
        # The exact sum of the bfloat16-rounded inputs, weights and bias, rounded once to bfloat16 (relative
        # 2^-9, up to 2^-8 with the float32 summation).
        exact = F.linear(x.bfloat16().double(), lin.weight.bfloat16().double(), lin.bias.bfloat16().double())
        err = (y.double() - exact).abs()
        assert bool((err <= exact.abs() * 2**-8 + 1e-6).all()), float(err.max())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(y, lin(x))  # CPU autocast's Linear, bit for bit
        assert torch.equal(packed(x.bfloat16()), y)  # a bfloat16 input is used as it is
        assert torch.equal(packed(x[:1]), y[:1]) and torch.equal(packed(x.view(rows, 1, 96)).view(rows, 200), y)


@needs_onednn
def test_pack_linears_replaces_every_linear_and_keeps_the_logits():
    model = tiny_model()
    idx = torch.randint(0, V, (3, 10), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        before = model(idx).double()
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert pack_linears(model) == n_linear == 4 * 2 + 1  # 4 per block, and the (tied) lm_head
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    with torch.inference_mode():
        after = model(idx).double()
    assert torch.allclose(after, before, rtol=0, atol=1e-4)


@needs_onednn
def test_packed_scheduler_greedy_is_identical_alone_beside_others_and_to_the_unpacked_engine():
    plain = tiny_model()
    packed = tiny_model()
    pack_linears(packed)
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(0, V, (k,), generator=g).tolist() for k in (1, 3, 7, 11, 2, 9, 5, 4)]
    s = resolve_for_batching(GenerationSettings.build(max_new_tokens=12), V)

    def collect() -> tuple[list[int], callable]:
        tokens: list[int] = []

        def emit(e):
            assert isinstance(e, TokenEvent), e
            tokens.append(e.token)

        return tokens, emit

    def run(scheduler: BatchScheduler) -> None:
        for _ in range(1000):
            if not scheduler.rows and not scheduler.waiting:
                return
            scheduler.step()
        raise AssertionError("the scheduler did not finish")

    alone = []
    for p in prompts:
        sched = BatchScheduler(packed, max_batch=16)
        tokens, emit = collect()
        sched.submit(Job(p, s, emit))
        run(sched)
        alone.append(tokens)
    assert alone == [generate(plain, [p], max_new_tokens=12)[0] for p in prompts]
    sched = BatchScheduler(packed, max_batch=16)
    together = []
    for i, p in enumerate(prompts):  # joining in threes: their prompts are prefilled together
        tokens, emit = collect()
        together.append(tokens)
        sched.submit(Job(p, s, emit))
        if i % 3 == 2:
            sched.step()
    run(sched)
    assert together == alone


def test_prefill_groups_keep_padding_under_half_of_the_real_tokens():
    s = resolve_for_batching(GenerationSettings.build(max_new_tokens=4), V)
    jobs = [Job([1] * k, s, lambda e: None) for k in (10, 9, 200, 12, 11, 150)]
    groups = prefill_groups(jobs)
    assert [[len(j.prompt) for j in g] for g in groups] == [[9, 10, 11, 12], [150, 200]]
    for g in groups:
        real = sum(len(j.prompt) for j in g)
        assert len(g) * max(len(j.prompt) for j in g) - real <= 0.5 * real
    assert sorted(map(id, (j for g in groups for j in g))) == sorted(map(id, jobs))
