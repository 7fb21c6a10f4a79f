"""The bfloat16 CPU decoder of `gptkit serve --dtype bfloat16` (serve/decoder.py: bf16 weights packed for oneDNN
under float32 activations) against float64 and torch's own bfloat16, and its greedy output alone vs beside 15
others."""

from __future__ import annotations

import copy

import pytest
import torch

from gptkit import GPT, ModelConfig, Tokenizer, save_model
from gptkit.errors import GptkitError
from gptkit.generation.batched import BatchScheduler, Job, TokenEvent, resolve_for_batching
from gptkit.generation.packed_linear import PackedLinear, packing_available
from gptkit.generation.settings import GenerationSettings
from gptkit.serve.decoder import load_decoder

pytestmark = [
    pytest.mark.skipif(
        not packing_available(torch.nn.Linear(2, 2), torch.bfloat16),
        reason="this CPU or torch has no oneDNN bfloat16 packed linear kernels",
    ),
    pytest.mark.usefixtures("one_thread"),
]

TEXT = "To be, or not to be, that is the question. 今天天气很好，我们去公园散步吧。" * 8


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    tok = Tokenizer.train([TEXT], vocab_size=300)
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=96, n_layer=2, n_head=2, n_embd=64).replace()
    torch.manual_seed(0)
    model = GPT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # a spread of logits, so no near ties
    path = tmp_path_factory.mktemp("ckpt")
    save_model(model.eval(), path)
    tok.save(path)
    return path


def test_bf16_decoder_is_packed_bf16_weights_as_close_to_float64_as_torchs_bf16(ckpt):
    bf16 = load_decoder(ckpt, dtype="bfloat16")
    fp32 = load_decoder(ckpt, dtype="float32", pack=False).model
    f64, plain16 = copy.deepcopy(fp32).double(), copy.deepcopy(fp32).to(torch.bfloat16)
    assert bf16.packed_linears == 2 * 4 + 1 and bf16.weight_dtype == torch.bfloat16
    linears = [m for m in bf16.model.modules() if "Linear" in type(m).__name__]
    assert all(isinstance(m, PackedLinear) and m.mixed and m.packed.dtype == torch.bfloat16 for m in linears)
    assert next(bf16.model.parameters()).dtype == torch.float32  # embeddings, norms: float32
    # The scheduler's next-token logits after every step against the float64 model run over the whole sequence
    # at once (no cache, no packing), and so the same model in torch's own bfloat16 (nn.Linear, SDPA, no
    # cache): the bfloat16 rounding itself.
    g = torch.Generator().manual_seed(4)
    prompts = [torch.randint(0, 300, (k,), generator=g).tolist() for k in (5, 12, 3)]
    s = resolve_for_batching(GenerationSettings.build(max_new_tokens=20), 300)
    sched16 = BatchScheduler(bf16.model, max_batch=4)
    tokens: dict[int, list[int]] = {i: [] for i in range(3)}
    jobs = [Job(p, s, lambda e, i=i: isinstance(e, TokenEvent) and tokens[i].append(e.token)) for i, p in
            enumerate(prompts)]  # fmt: skip
    for j in jobs:
        sched16.submit(j)
    worst, worst_plain, compared = 0.0, 0.0, 0
    with torch.inference_mode():
        for _ in range(19):
            logits16 = sched16.logits.clone()  # (rows, V) float32, before the step chooses from them
            for row, r in enumerate(sched16.rows):  # rows in the scheduler's order (shortest prompts first)
                i = jobs.index(r.job)
                seq = torch.tensor([prompts[i] + tokens[i]])
                ref, plain = f64(seq)[0, -1], plain16(seq)[0, -1].double()
                worst = max(worst, float((logits16[row].double() - ref).abs().max() / ref.abs().max()))
                worst_plain = max(worst_plain, float((plain - ref).abs().max() / ref.abs().max()))
                compared += 1
            sched16.step()
    assert compared == 3 * 18
    # Measured: 4.3% of the logits' scale for the decoder, 3.9% for torch's bfloat16 forward, on this model
    # with large random weights (float32 agrees to about 3e-6). So: bfloat16 arithmetic (not float32 by
    # mistake), and no worse than torch's own bfloat16 path by more than half again.
    assert 1e-4 < worst <= 1.5 * worst_plain, (worst, worst_plain)
    with pytest.raises(GptkitError, match="packed bfloat16 weights"):  # the one bfloat16 path on a CPU
        load_decoder(ckpt, dtype="bfloat16", pack=False)


def test_bf16_greedy_is_token_identical_alone_and_beside_15_others(ckpt):
    bf16 = load_decoder(ckpt, dtype="bfloat16")
    g = torch.Generator().manual_seed(5)
    prompts = [torch.randint(0, 300, (int(k),), generator=g).tolist() for k in torch.randint(1, 20, (16,), generator=g)]
    s = resolve_for_batching(GenerationSettings.build(max_new_tokens=24), 300)

    def run(jobs: list[list[int]], joins_per_step: int) -> list[list[int]]:
        sched = BatchScheduler(bf16.model, max_batch=16)
        out: list[list[int]] = [[] for _ in jobs]
        for i, p in enumerate(jobs):
            sched.submit(Job(p, s, lambda e, i=i: out[i].append(e.token)))
            if i % joins_per_step == joins_per_step - 1:
                sched.step()  # rows join at different steps: padded, masked rows beside each other
        for _ in range(1000):
            if not sched.rows and not sched.waiting:
                return out
            sched.step()
        raise AssertionError("the scheduler did not finish")

    alone = [run([p], 1)[0] for p in prompts]
    assert run(prompts, 3) == alone
    assert len({tuple(t) for t in alone}) > 1  # not one answer for every prompt
