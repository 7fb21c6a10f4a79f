"""Logits processors against HF transformers' processors, and the sampler against the distribution."""

from __future__ import annotations

import math

import pytest
import torch

from gptkit.generation.sampling import (
    apply_temperature,
    banned_ngram_tokens,
    min_p_filter,
    no_repeat_ngram_filter,
    repetition_penalty,
    sample,
    top_k_filter,
    top_p_filter,
    uniform,
)

lp = pytest.importorskip("transformers.generation.logits_process")


def random_logits(B: int = 6, V: int = 300) -> torch.Tensor:
    return torch.randn(B, V) * 3


def assert_same_filtered(ours: torch.Tensor, ref: torch.Tensor) -> None:
    """Same tokens removed (-inf), same values elsewhere, so the same distribution after softmax."""
    assert torch.equal(torch.isinf(ours), torch.isinf(ref))
    torch.testing.assert_close(ours.softmax(-1), ref.softmax(-1), rtol=0, atol=1e-6)
    assert 0 < int((~torch.isinf(ours)).sum(-1).min())


@pytest.mark.parametrize("t", [0.3, 1.0, 1.7])
def test_temperature_matches_hf(t):
    x = random_logits()
    assert_same_filtered(apply_temperature(x, t), lp.TemperatureLogitsWarper(t)(None, x.clone()))


def test_extreme_scales_stay_a_distribution():
    """A temperature or repetition penalty so small that logits overflow float32 (the serve fuzz sent
    repetition_penalty 5e-324: +inf logits, a NaN CDF, a token id past the vocabulary) still gives finite
    scores; a vanishing temperature tends to greedy, as its limit does."""
    x = random_logits()
    x[0, :5] = 0.0  # 0 / 0 would be NaN
    x[1, 7] = float("-inf")
    for t in (5e-324, 1e-40, 1e-30):
        scaled = apply_temperature(x, t)
        assert not scaled.isnan().any() and not scaled.isposinf().any()
        assert torch.equal(scaled.softmax(-1).argmax(-1), x.argmax(-1))
        assert scaled[1, 7] == float("-inf")
        assert torch.equal(sample(scaled, 0, 0, torch.arange(len(x))), x.argmax(-1))
    seen = torch.ones_like(x, dtype=torch.bool)
    penalised = repetition_penalty(x, seen, 5e-324)
    assert not penalised.isnan().any() and not penalised.isposinf().any()
    drawn = sample(penalised, 0, 0, torch.arange(len(x)))
    assert bool(((drawn >= 0) & (drawn < x.shape[1])).all())
    assert bool((x.gather(1, drawn[:, None]) > 0).all())  # a positive logit, divided by ~0, dominates


@pytest.mark.parametrize("k", [1, 5, 50, 300, 1000])
def test_top_k_matches_hf(k):
    x = random_logits()
    ours = top_k_filter(x, k)
    assert_same_filtered(ours, lp.TopKLogitsWarper(k)(None, x.clone()))
    assert ((~torch.isinf(ours)).sum(-1) == min(k, 300)).all()


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9, 0.99, 1.0])
def test_top_p_matches_hf(p):
    x = random_logits()
    assert_same_filtered(top_p_filter(x, p), lp.TopPLogitsWarper(p)(None, x.clone()))


def test_top_p_keeps_smallest_set_reaching_p():
    x = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = ~torch.isinf(top_p_filter(x, 0.79))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 + 0.3 = 0.8 >= 0.79
    kept = ~torch.isinf(top_p_filter(x, 0.81))
    assert kept.tolist() == [[True, True, True, False]]


@pytest.mark.parametrize("m", [0.0, 0.05, 0.3, 1.0])
def test_min_p_matches_hf(m):
    x = random_logits()
    assert_same_filtered(min_p_filter(x, m), lp.MinPLogitsWarper(m)(None, x.clone()))


@pytest.mark.parametrize("penalty", [0.7, 1.3, 2.0])
def test_repetition_penalty_matches_hf(penalty):
    x = random_logits(4, 50)
    ids = torch.randint(0, 50, (4, 12))
    seen = torch.zeros(4, 50, dtype=torch.bool).scatter_(1, ids, True)
    ref = lp.RepetitionPenaltyLogitsProcessor(penalty)(ids, x.clone())
    torch.testing.assert_close(repetition_penalty(x, seen, penalty), ref, rtol=0, atol=0)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_matches_hf(n):
    x = random_logits(5, 12)
    ids = torch.randint(0, 12, (5, 30))  # a small vocabulary, so n-grams do repeat
    ref = lp.NoRepeatNGramLogitsProcessor(n)(ids, x.clone())
    ours = no_repeat_ngram_filter(x, ids.tolist(), n)
    assert torch.isinf(ours).any()
    assert torch.equal(ours, ref)


def test_banned_ngram_tokens_by_hand():
    assert banned_ngram_tokens([1, 2, 3, 1, 2], 3) == [3]  # "1 2" was followed by 3
    assert banned_ngram_tokens([1, 2, 3, 1, 2], 2) == [3]  # "2" was followed by 3
    assert banned_ngram_tokens([4, 5, 4, 6, 4], 2) == [5, 6]
    assert banned_ngram_tokens([1, 2], 3) == []


# Upper 0.1% points of the chi-square distribution (standard tables), by degrees of freedom.
CHI2_999 = {4: 18.467, 5: 20.515, 6: 22.458, 7: 24.322, 9: 27.877}


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    keep = probs > 0
    return float((((counts - expected) ** 2)[keep] / expected[keep]).sum())


@pytest.mark.parametrize(
    "name, process, df",
    [
        ("plain", lambda x: x, 9),
        ("temperature+top_k", lambda x: top_k_filter(apply_temperature(x, 0.7), 8), 7),
        ("top_p", lambda x: top_p_filter(x, 0.8), None),
    ],
)
def test_sampling_frequencies_match_the_filtered_distribution(name, process, df):
    torch.manual_seed(123)
    base = torch.randn(1, 10) * 1.5
    filtered = process(base)
    probs = filtered.softmax(-1)[0].double()
    n_kept = int((probs > 0).sum())
    df = n_kept - 1 if df is None else df
    assert n_kept - 1 == df and df in CHI2_999
    N = 40_000
    # Draws across the rows of one step and across steps are both independent.
    draws = torch.cat(
        [
            sample(filtered.expand(N // 2, 10), seed=7, step=0, rows=torch.arange(N // 2)),
            torch.cat(
                [sample(filtered.expand(100, 10), seed=7, step=s, rows=torch.arange(100)) for s in range(1, 201)]
            ),
        ]
    )
    counts = torch.bincount(draws, minlength=10).double()
    assert counts[probs == 0].sum() == 0  # filtered tokens are never drawn
    assert chi_square(counts, probs) < CHI2_999[df]
    # The test has power: the same draws are far from a distribution that ignores the filter's weights.
    flat = (probs > 0).double() / n_kept
    assert chi_square(counts, flat) > 10 * CHI2_999[df]


def test_uniforms_are_uniform_and_independent_of_position():
    u = uniform(seed=1, step=5, rows=torch.arange(64), n=4096).double()
    assert 0 < float(u.min()) and float(u.max()) < 1
    assert abs(u.mean().item() - 0.5) < 0.002
    assert abs(u.var().item() - 1 / 12) < 0.001
    # Neighbouring rows, columns and steps are uncorrelated.
    for a, b in [(u[:-1], u[1:]), (u[:, :-1], u[:, 1:])]:
        assert abs(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()) < 0.01
    v = uniform(seed=1, step=6, rows=torch.arange(64), n=4096).double()
    assert abs(torch.corrcoef(torch.stack([u.flatten(), v.flatten()]))[0, 1].item()) < 0.01
    # Deterministic, and the seed's high bits matter.
    assert torch.equal(u.float(), uniform(seed=1, step=5, rows=torch.arange(64), n=4096))
    assert not torch.equal(uniform(seed=1 + 2**40, step=5, rows=torch.arange(64), n=4096), u.float())


def test_sampling_never_draws_removed_or_negligible_tokens():
    x = torch.tensor([[0.0, -math.inf, 30.0, -math.inf]])
    draws = torch.stack([sample(x, seed=0, step=s, rows=torch.tensor([0])) for s in range(200)])
    assert set(draws.flatten().tolist()) == {2}  # exp(-30) relative weight: never in 200 draws


def test_additive_penalties_match_openais_formula():
    """OpenAI's definition, written out in float64: mu[j] - c[j] * frequency - (c[j] > 0) * presence."""
    from gptkit.generation.sampling import additive_penalties

    x = random_logits(4, 50)
    generated = [[3, 3, 7], [], [0, 49, 49, 49], [12]]
    counts = torch.zeros(4, 50, dtype=torch.int32)
    for i, row in enumerate(generated):
        for t in row:
            counts[i, t] += 1
    ours = additive_penalties(x, counts, 0.4, 0.25)
    for i, row in enumerate(generated):
        for j in range(50):
            c = row.count(j)
            expected = float(x[i, j]) - c * 0.25 - (0.4 if c > 0 else 0.0)
            assert math.isclose(float(ours[i, j]), expected, abs_tol=1e-5)


def test_generation_settings_one_definition():
    """The CLI's flags are the settings' fields; flat options reach the nested SamplingSettings; a misspelt
    option is named with a suggestion."""
    from gptkit.generation.settings import SAMPLING_FIELDS, GenerationError, GenerationSettings, flag_fields

    names = {n for n, _ in flag_fields()}
    assert SAMPLING_FIELDS <= names and {"max_new_tokens", "seed", "num_beams"} <= names
    s = GenerationSettings.build(max_new_tokens=5, temperature=1.0, presence_penalty=0.5, seed=3)
    assert (s.sampling.temperature, s.sampling.presence_penalty, s.seed) == (1.0, 0.5, 3)
    assert s.with_options(top_k=4).sampling.top_k == 4 and s.sampling.top_k is None
    with pytest.raises(GenerationError, match="did you mean 'temperature'"):
        GenerationSettings.build(max_new_tokens=5, temprature=1.0)
    with pytest.raises(GenerationError, match="presence_penalty"):
        GenerationSettings.build(max_new_tokens=5, presence_penalty=3.0).resolved(10)
