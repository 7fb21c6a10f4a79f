"""The continuous-batching scheduler against the engine (`gptkit.generate`), one request at a time."""

from __future__ import annotations

import pytest
import torch

from gptkit import GPT, ModelConfig
from gptkit.generation.batched import BatchScheduler, Job, QueueFull, TokenEvent, resolve_for_batching
from gptkit.generation.engine import generate
from gptkit.generation.settings import GenerationError, GenerationSettings

V = 120


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> GPT:
    cfg = ModelConfig(vocab_size=V, block_size=64, n_layer=2, n_head=2, n_embd=32).replace()
    torch.manual_seed(0)
    m = GPT(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # random weights with a spread of logits, so no near ties
    return m.eval()


class Collect:
    """A job's events, per choice."""

    def __init__(self) -> None:
        self.tokens: dict[int, list[int]] = {}
        self.finish: dict[int, str] = {}
        self.events: list[TokenEvent] = []

    def __call__(self, e) -> None:
        assert isinstance(e, TokenEvent), e
        self.events.append(e)
        self.tokens.setdefault(e.choice, []).append(e.token)
        if e.finish:
            self.finish[e.choice] = e.finish


def job(prompt, n=1, logprobs=None, **options) -> tuple[Job, Collect]:
    out = Collect()
    s = resolve_for_batching(GenerationSettings.build(**options), V)
    return Job(list(prompt), s, out, n=n, logprobs=logprobs), out


def run(scheduler: BatchScheduler, limit: int = 10_000) -> None:
    for _ in range(limit):
        if not scheduler.rows and not scheduler.waiting:
            return
        scheduler.step()
    raise AssertionError("the scheduler did not finish")


def prompts(n: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 12, (n,), generator=g).tolist()
    return [torch.randint(0, V, (k,), generator=g).tolist() for k in lengths]


def test_greedy_is_token_identical_alone_and_beside_15_others(model):
    ps = prompts(16)
    alone = []
    for p in ps:
        j, out = job(p, max_new_tokens=20)
        s = BatchScheduler(model, max_batch=16)
        s.submit(j)
        run(s)
        alone.append(out.tokens[0])
    assert alone == [generate(model, [p], max_new_tokens=20)[0] for p in ps]
    # All 16 together; half join while the first ones are decoding, with different lengths to produce.
    s = BatchScheduler(model, max_batch=16)
    outs = []
    for i, p in enumerate(ps):
        j, out = job(p, max_new_tokens=20 - (i % 5) if i % 2 else 20)
        outs.append(out)
        s.submit(j)
        if i % 3 == 0:
            s.step()
    run(s)
    for i, out in enumerate(outs):
        n = 20 - (i % 5) if i % 2 else 20
        assert out.tokens[0] == alone[i][:n], i
        assert out.finish[0] == "length"
    assert s.cache is None and s.batch_size == 0  # every KV row was freed


def test_seeded_sampling_matches_the_engine_with_per_request_settings(model):
    ps = prompts(4)
    settings = [
        dict(temperature=1.0, seed=7),
        dict(temperature=0.7, top_k=20, seed=8),
        dict(top_p=0.9, min_p=0.05, repetition_penalty=1.3, seed=9),
        dict(temperature=1.2, presence_penalty=0.8, frequency_penalty=0.5, seed=10),
    ]
    s = BatchScheduler(model, max_batch=16)
    outs = []
    for p, kw in zip(ps, settings, strict=True):
        j, out = job(p, n=3, max_new_tokens=15, **kw)
        outs.append(out)
        s.submit(j)
        s.step()
    run(s)
    for p, kw, out in zip(ps, settings, outs, strict=True):
        expected = generate(model, [p], max_new_tokens=15, num_return_sequences=3, **kw)
        assert [out.tokens[c] for c in range(3)] == expected, kw


def test_eos_stop_cancel_and_queue(model):
    p = prompts(1)[0]
    greedy = generate(model, [p], max_new_tokens=20)[0]
    eos = greedy[5]
    j, out = job(p, max_new_tokens=20, eos_token_id=eos)
    s = BatchScheduler(model, max_batch=2, max_queue=1)
    s.submit(j)
    run(s)
    assert out.tokens[0] == greedy[: greedy.index(eos) + 1] and out.finish[0] == "stop"

    # stop(choice) and cancel() end rows at the next step and free them; a full queue refuses.
    a, out_a = job(p, n=2, max_new_tokens=20, temperature=1.0, seed=1)
    b, out_b = job(p, max_new_tokens=20)
    c, _ = job(p, max_new_tokens=20)
    s.submit(a)
    s.step()
    s.submit(b)  # waits: the batch (2 rows) is full
    with pytest.raises(QueueFull):
        s.submit(c)
    a.stop(1)
    s.step()
    assert len(out_a.tokens[1]) == 1 and s.batch_size == 2  # choice 1 left, b joined
    a.cancel()
    s.step()
    assert [r.job for r in s.rows] == [b]
    run(s)
    assert out_b.tokens[0] == greedy and len(out_a.tokens[0]) == 2


def test_logprobs_are_the_models(model):
    p = prompts(1)[0]
    j, out = job(p, logprobs=3, max_new_tokens=4)
    s = BatchScheduler(model)
    s.submit(j)
    run(s)
    ids = list(p)
    for e in out.events:
        with torch.no_grad():
            ref = torch.log_softmax(model(torch.tensor([ids]))[0, -1].double(), -1)
        assert e.logprob == pytest.approx(float(ref[e.token]), abs=1e-4)
        assert [t for t, _ in e.top] == ref.topk(3).indices.tolist()
        ids.append(e.token)


def test_batched_settings_refused(model):
    with pytest.raises(GenerationError, match="beam"):
        resolve_for_batching(GenerationSettings.build(max_new_tokens=3, num_beams=2), V)
    with pytest.raises(GenerationError, match="top_p"):
        resolve_for_batching(GenerationSettings.build(max_new_tokens=3, top_p=1.5), V)
