"""The token-level engine against HF transformers' generate, and its own invariants."""

from __future__ import annotations

import pytest
import torch

from gptkit import GPT, KVCache, ModelConfig, load_model, save_model
from gptkit.generation.engine import GenerationError, cpu_decode_layout, generate, stream_generate
from gptkit.interop.hf import import_hf
from tests.hf_helpers import tiny_hf_gpt2

transformers = pytest.importorskip("transformers")

V = 1000
# A token the random model below emits in some beams and not in others, so that hypotheses end at
# different lengths and the three early_stopping modes give different answers (checked by
# test_eos_makes_the_beam_settings_matter).
EOS = 286
MAX_NEW = 16


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    hf = tiny_hf_gpt2(vocab_size=V, n_positions=64)
    d = tmp_path_factory.mktemp("gen")
    hf.save_pretrained(d / "hf")
    return hf, load_model(import_hf(d / "hf", d / "ckpt"))


@pytest.fixture(scope="module")
def prompts():
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(2, 12, (12,), generator=g).tolist()
    return [torch.randint(0, V, (n,), generator=g).tolist() for n in lengths]


def hf_generate(hf, prompts, batched, **kw):
    """HF's new tokens for each prompt (n per prompt for num_return_sequences n), cut after the first EOS."""
    kw = dict(max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=EOS, eos_token_id=EOS, **kw)
    groups = [prompts] if batched else [[p] for p in prompts]
    out = []
    for group in groups:
        P = max(len(p) for p in group)
        idx = torch.tensor([[EOS] * (P - len(p)) + p for p in group])
        mask = torch.tensor([[0] * (P - len(p)) + [1] * len(p) for p in group])
        with torch.no_grad():
            seqs = hf.generate(idx, attention_mask=mask, **kw)
        for row in seqs[:, P:].tolist():
            out.append(row[: row.index(EOS) + 1] if EOS in row else row)
    return out


def ours(model, prompts, batched, **kw):
    kw = dict(max_new_tokens=MAX_NEW, eos_token_id=EOS, **kw)
    if batched:
        return generate(model, prompts, **kw)
    return [seq for p in prompts for seq in generate(model, [p], **kw)]


def test_eos_makes_the_beam_settings_matter(models, prompts):
    hf, _ = models
    answers = {
        es: hf_generate(hf, prompts, batched=True, num_beams=4, num_return_sequences=4, early_stopping=es)
        for es in (True, False, "never")
    }
    ended = [s[-1] == EOS and len(s) < MAX_NEW for s in answers[False]]
    assert 0 < sum(ended) < len(ended)
    assert answers[True] != answers[False] != answers["never"] != answers[True]


@pytest.mark.parametrize("batched", [False, True], ids=["one_by_one", "batched"])
def test_greedy_matches_hf(models, prompts, batched):
    hf, model = models
    assert ours(model, prompts, batched) == hf_generate(hf, prompts, batched)


@pytest.mark.parametrize("batched", [False, True], ids=["one_by_one", "batched"])
@pytest.mark.parametrize("early_stopping", [True, False, "never"])
@pytest.mark.parametrize("length_penalty", [1.0, 0.6])
def test_beam_search_matches_hf(models, prompts, batched, early_stopping, length_penalty):
    hf, model = models
    kw = dict(num_beams=4, num_return_sequences=4, length_penalty=length_penalty, early_stopping=early_stopping)
    expected = hf_generate(hf, prompts, batched, **kw)
    got = ours(model, prompts, batched, strategy="beam", **kw)
    assert got == expected
    if batched:  # n-best: the first of each prompt's group is the single answer
        best = ours(model, prompts, batched, strategy="beam", **{**kw, "num_return_sequences": 1})
        assert best == expected[::4]


@pytest.mark.parametrize(
    "kw",
    [
        dict(repetition_penalty=1.7),
        dict(no_repeat_ngram_size=2),
        dict(num_beams=3, no_repeat_ngram_size=2, num_return_sequences=2),
        dict(num_beams=3, repetition_penalty=1.5),
    ],
    ids=["greedy-rep", "greedy-ngram", "beam-ngram", "beam-rep"],
)
def test_penalties_match_hf(models, prompts, kw):
    hf, model = models  # one by one: HF would also count left-padding tokens as "seen"
    assert ours(model, prompts[:6], False, **kw) == hf_generate(hf, prompts[:6], False, **kw)


def test_cached_greedy_steps_match_full_forward(models, prompts):
    _, model = models
    for p in prompts[:3]:
        new = generate(model, [p], max_new_tokens=12)[0]
        with torch.no_grad():
            full = model(torch.tensor([p + new]))[0]
        # Every token chosen with the cache is the argmax of the full forward at its position.
        assert full[len(p) - 1 : -1].argmax(-1).tolist() == new


def test_static_cache_step_logits_match_full_forward(models):
    _, model = models
    idx = torch.randint(0, V, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[0, :6] = 0
    mask[2, :11] = 0
    with torch.no_grad():
        cache = KVCache(model.config, 3, 32, static=True)
        static_mask = torch.zeros(3, 32, dtype=torch.bool)
        static_mask[:, :12] = mask[:, :12].bool()
        prefill = model(idx[:, :12], attention_mask=static_mask, kv_cache=cache)
        steps = []
        for t in range(12, 20):
            static_mask[:, t] = True
            steps.append(model(idx[:, t : t + 1], attention_mask=static_mask, kv_cache=cache)[:, 0])
        assert cache.position.item() == 20
        for i in range(3):
            real = mask[i].bool()
            alone = model(idx[i, real].unsqueeze(0))[0]
            n_pad = int((~real).sum())
            torch.testing.assert_close(prefill[i, n_pad:], alone[: 12 - n_pad], rtol=0, atol=1e-5)
            for j, t in enumerate(range(12, 20)):
                torch.testing.assert_close(steps[j][i], alone[t - n_pad], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "kw",
    [
        dict(strategy="greedy"),
        dict(strategy="sample", seed=3),
        dict(strategy="sample", seed=4, temperature=0.7, top_k=40, top_p=0.9, repetition_penalty=1.3),
    ],
    ids=["greedy", "sample", "sample-filters"],
)
def test_static_decoder_matches_eager(models, prompts, kw):
    _, model = models  # the CUDA-graph decoder's step, run eagerly on CPU
    eager = generate(model, prompts, max_new_tokens=MAX_NEW, eos_token_id=EOS, static_cache=False, **kw)
    static = generate(model, prompts, max_new_tokens=MAX_NEW, eos_token_id=EOS, static_cache=True, **kw)
    assert static == eager


def test_same_seed_same_tokens(models, prompts):
    _, model = models
    kw = dict(max_new_tokens=10, top_k=50, temperature=1.3)
    a = generate(model, prompts[:4], seed=11, **kw)
    assert generate(model, prompts[:4], seed=11, **kw) == a
    assert generate(model, prompts[:4], seed=12, **kw) != a


def test_num_return_sequences_rows_are_prompt_major(models, prompts):
    _, model = models
    out = generate(model, prompts[:2], max_new_tokens=8, strategy="sample", seed=5, num_return_sequences=3)
    assert len(out) == 6 and all(len(s) == 8 for s in out)
    assert len({tuple(s) for s in out[:3]}) == 3  # distinct draws for the same prompt
    # Row 4 is prompt 1's second sequence: the same as running the batch of rows directly.
    rows = [prompts[0]] * 3 + [prompts[1]] * 3
    assert generate(model, rows, max_new_tokens=8, strategy="sample", seed=5) == out


def test_padded_vocab_entries_are_never_chosen():
    cfg = ModelConfig(vocab_size=70, block_size=64, n_layer=1, n_head=2, n_embd=16).replace()
    assert cfg.padded_vocab_size == 128
    model = GPT(cfg).eval()
    out = generate(model, [[1, 2, 3]] * 8, max_new_tokens=50, temperature=50.0, seed=0)
    tokens = {t for s in out for t in s}
    assert max(tokens) < 70 and len(tokens) > 40  # near-uniform draws over the real vocabulary only


def test_stream_yields_per_step_and_stop_ends_a_row(models, prompts):
    _, model = models
    stream = stream_generate(model, prompts[:3], max_new_tokens=10, strategy="sample", seed=1)
    steps = []
    for events in stream:
        steps.append(events)
        if len(steps) == 2:
            stream.stop(1)
    assert [len(e) for e in steps] == [3, 3] + [2] * 8
    assert all(row != 1 for e in steps[2:] for row, _ in e)


def test_generation_restores_training_mode(models, prompts):
    _, model = models
    model.train()
    try:
        a = generate(model, prompts[:1], max_new_tokens=4)
        assert model.training
    finally:
        model.eval()
    assert generate(model, prompts[:1], max_new_tokens=4) == a  # dropout was off while generating


def test_tensor_prompts_are_rows(models, prompts):
    _, model = models
    assert generate(model, torch.tensor([prompts[3][:5], prompts[4][:5]]), max_new_tokens=6) == generate(
        model, [prompts[3][:5], prompts[4][:5]], max_new_tokens=6
    )


def test_context_overflow_is_an_error_naming_both_numbers(models):
    _, model = models  # block_size 64
    with pytest.raises(GenerationError, match=r"60 prompt tokens \+ max_new_tokens 10 = 70 .* context of 64"):
        generate(model, [[1] * 60], max_new_tokens=10)
    out = generate(model, [list(range(60))], max_new_tokens=10, truncate_prompt=True)
    assert out == generate(model, [list(range(6, 60))], max_new_tokens=10)


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(temperature=-1.0), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(min_p=2.0), "min_p"),
        (dict(num_beams=0), "num_beams"),
        (dict(num_beams=2, strategy="greedy"), "num_beams"),
        (dict(strategy="greedy", temperature=0.5), "temperature"),
        (dict(strategy="beam", num_beams=2, num_return_sequences=3), "num_return_sequences"),
        (dict(strategy="nucleus"), "strategy"),
        (dict(repetition_penalty=0.0), "repetition_penalty"),
        (dict(early_stopping="sometimes", num_beams=2), "early_stopping"),
        (dict(eos_token_id=V), "eos_token_id"),
        (dict(max_new_tokens=0), "max_new_tokens"),
    ],
)
def test_invalid_settings_name_the_setting(models, kw, name):
    _, model = models
    kw = {"max_new_tokens": 4, **kw}
    with pytest.raises(GenerationError, match=name):
        generate(model, [[1, 2]], **kw)


@pytest.mark.parametrize("bad, where", [([], "empty"), ([[]], r"prompts\[0\]"), ([[1, V]], r"prompts\[0\].*1000")])
def test_bad_prompts_are_errors(models, bad, where):
    _, model = models
    with pytest.raises(GenerationError, match=where):
        generate(model, bad, max_new_tokens=2)


def test_cpu_decode_layout_keeps_values_and_outputs(models, prompts, tmp_path):
    _, model = models
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = generate(model, prompts[:4], max_new_tokens=MAX_NEW, eos_token_id=EOS, strategy="beam", num_beams=3)
    idx = torch.tensor([prompts[0]])
    with torch.no_grad():
        logits = model(idx)
    cpu_decode_layout(model)
    try:
        assert not model.h[0].mlp.c_fc.weight.is_contiguous()  # (in, out) in memory, same shape
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        with torch.no_grad():
            torch.testing.assert_close(model(idx), logits, rtol=0, atol=1e-5)
        assert (
            generate(model, prompts[:4], max_new_tokens=MAX_NEW, eos_token_id=EOS, strategy="beam", num_beams=3)
            == expected
        )
        save_model(model, tmp_path / "ckpt")
        assert all(torch.equal(before[k], v) for k, v in load_model(tmp_path / "ckpt").state_dict().items())
    finally:
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.data = m.weight.data.contiguous()
