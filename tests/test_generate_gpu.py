"""The CUDA paths of the engine: the static decoder replayed as a CUDA graph (and compiled) against eager decoding.

Run on a GPU machine: python -m pytest tests/test_generate_gpu.py -m gpu -q
"""

from __future__ import annotations

import pytest
import torch

from gptkit import GPT, ModelConfig
from gptkit.generation.engine import _STATIC, generate, stream_generate

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

EOS = 7


@pytest.fixture(scope="module")
def model():
    cfg = ModelConfig(vocab_size=300, block_size=128, n_layer=2, n_head=4, n_embd=64).replace()
    torch.manual_seed(0)
    m = GPT(cfg)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.add_(torch.randn_like(p) * (0.2 if "ln" in name else 0.05))
    return m.cuda().eval()


@pytest.fixture(scope="module")
def prompts():
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, 300, (n,), generator=g).tolist() for n in (3, 9, 5, 12, 1, 7)]


CASES = [
    dict(strategy="greedy"),
    dict(strategy="sample", seed=3),
    dict(strategy="sample", seed=4, temperature=0.8, top_k=40, top_p=0.9, min_p=0.02, repetition_penalty=1.3),
]


@pytest.mark.parametrize("kw", CASES, ids=["greedy", "sample", "sample-filters"])
def test_cuda_graph_matches_eager(model, prompts, kw):
    eager = generate(model, prompts, max_new_tokens=40, eos_token_id=EOS, static_cache=False, **kw)
    graph = generate(model, prompts, max_new_tokens=40, eos_token_id=EOS, **kw)  # static + graph by default
    decoder = _STATIC[model][1]
    assert decoder.graph is not None
    assert graph == eager
    assert any(len(s) < 40 for s in eager)  # some rows ended at EOS
    # The graph is reused for other prompts of the same batch size, and its state is reset in between.
    again = generate(model, prompts[::-1], max_new_tokens=40, eos_token_id=EOS, **kw)
    assert _STATIC[model][1] is decoder
    assert again == generate(model, prompts[::-1], max_new_tokens=40, eos_token_id=EOS, static_cache=False, **kw)


@pytest.mark.parametrize("kw", CASES[:2], ids=["greedy", "sample"])
def test_compiled_graph_matches_eager(model, prompts, kw):
    eager = generate(model, prompts, max_new_tokens=24, eos_token_id=EOS, static_cache=False, **kw)
    assert generate(model, prompts, max_new_tokens=24, eos_token_id=EOS, compile=True, **kw) == eager


def test_cuda_matches_cpu(model, prompts):
    cpu = GPT(model.config)
    cpu.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    cpu.eval()
    for kw in (dict(strategy="greedy"), dict(strategy="beam", num_beams=3, num_return_sequences=2)):
        assert generate(model, prompts, max_new_tokens=20, **kw) == generate(cpu, prompts, max_new_tokens=20, **kw)


def test_stop_on_the_graph_path(model, prompts):
    stream = stream_generate(model, prompts[:3], max_new_tokens=40, strategy="sample", seed=1)
    got = [[], [], []]
    for events in stream:
        for row, token in events:
            got[row].append(token)
        stream.stop(1)  # after the first chunk of steps
    assert 0 < len(got[1]) < 40 and len(got[0]) == len(got[2]) == 40


def test_bfloat16_runs(model, prompts):
    bf16 = GPT(model.config).cuda()
    bf16.load_state_dict(model.state_dict())
    bf16 = bf16.to(torch.bfloat16).eval()
    out = generate(bf16, prompts, max_new_tokens=16, strategy="sample", top_k=20, seed=0)
    assert all(len(s) == 16 and all(0 <= t < 300 for t in s) for s in out)
    assert [len(s) for s in generate(bf16, prompts, max_new_tokens=8, compile=True)] == [8] * len(prompts)
