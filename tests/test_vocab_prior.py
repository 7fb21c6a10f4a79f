"""The new rows' output-side unigram prior (gptkit.vocab_prior), checked against plain forward passes."""

from __future__ import annotations

import pytest
import torch

from gptkit.config import ModelConfig
from gptkit.errors import ConfigError
from gptkit.model import GPT
from gptkit.vocab import grow_vocab
from gptkit.vocab_prior import fit_output_prior, training_windows
from tests.train_helpers import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
OLD, NEW = 200, 240


def _grown(tie: bool) -> tuple[GPT, GPT]:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=OLD, block_size=32, n_layer=2, n_head=2, n_embd=32, tie_embeddings=tie)
    model = GPT(config).eval()
    pieces = [[(3 * k) % OLD, (7 * k + 1) % OLD] for k in range(NEW - OLD)]
    return model, grow_vocab(model, NEW, pieces=pieces, init="centred", seed=1)


def _training_text(seed: int = 0) -> list[list[int]]:
    """Documents mostly of new tokens with a skewed unigram distribution (what an extension meets)."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.cat([torch.full((OLD,), 0.02), torch.linspace(4.0, 0.05, NEW - OLD) ** 2])  # (NEW,)
    return [torch.multinomial(weights, 120, replacement=True, generator=g).tolist() for _ in range(12)]


def _loss_and_mass(model: GPT, windows: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits, loss = model(windows[:, :-1], targets=windows[:, 1:])
    return loss.item(), logits.double().softmax(-1)[..., OLD:].sum(-1).mean().item()


def test_training_windows_counts_and_shape():
    docs = [[5, 6, 7], [8, 9]]
    windows, counts = training_windows(docs, eot_id=1, window=3)
    stream = [5, 6, 7, 1, 8, 9, 1]
    assert counts.tolist() == [stream.count(i) for i in range(10)]
    assert windows.shape == (2, 4)
    assert windows[0].tolist() == stream[:4] and windows[-1].tolist() == stream[-4:]
    with pytest.raises(ConfigError, match="fewer than one window"):
        training_windows([[5]], eot_id=1, window=8)


@pytest.mark.parametrize("tie", [True, False])
def test_prior_keeps_old_rows_and_lowers_the_training_loss(tie):
    source, grown = _grown(tie)
    windows, counts = training_windows(_training_text(), eot_id=0, window=32)
    before = _loss_and_mass(grown, windows)
    wte_before = grown.wte.weight.detach().clone()
    fit = fit_output_prior(grown, OLD, windows, counts)
    after = _loss_and_mass(grown, windows)  # plain forward passes, not the fit's functional calls
    assert fit.loss_before == pytest.approx(before[0], rel=1e-5)
    assert fit.loss_after == pytest.approx(after[0], rel=1e-5)
    assert fit.new_mass_after == pytest.approx(after[1], rel=1e-4)
    assert after[0] < before[0] - 0.3  # a skewed unigram the centred rows knew nothing of
    # The optimum: no neighbouring (beta, gamma) is better (brute force around the fitted point).
    head = grown.wte.weight if tie else grown.lm_head.weight
    fitted = head.detach().clone()
    logf = (torch.cat([counts, torch.zeros(NEW - len(counts), dtype=counts.dtype)])[OLD:NEW].double() + 0.5).log()
    logf -= logf.mean()
    u = grown(windows[:, :-1], output_hidden=True).detach().double().mean((0, 1))
    for db, dg in ((0.15, 0), (-0.15, 0), (0, 0.15), (0, -0.15)):
        with torch.no_grad():
            head[OLD:NEW] = (fitted[OLD:NEW].double() + (db + dg * logf)[:, None] * u / u.norm() ** 2).float()
        assert _loss_and_mass(grown, windows)[0] > after[0] - 1e-4
    # Old rows exact: on old-token text the logits over the old vocabulary are the source model's.
    with torch.no_grad():
        head.copy_(fitted)
        idx = torch.randint(0, OLD, (2, 16), generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(grown(idx)[..., :OLD], source(idx), rtol=0, atol=0)
    if not tie:  # the input side is left as grow_vocab made it
        torch.testing.assert_close(grown.wte.weight.detach(), wte_before, rtol=0, atol=0)
    assert not head.detach()[NEW:].any()  # padding rows stay zero


def test_prior_matches_the_new_tokens_share():
    """With the shared offset fitted, the model's mass on new tokens is near their share of the targets."""
    _, grown = _grown(True)
    windows, counts = training_windows(_training_text(seed=4), eot_id=0, window=32)

    def frequency_correlation() -> float:  # of the new tokens' mean logits with their counts' logs
        with torch.no_grad():
            mean_logits = grown(windows[:, :-1]).double().mean((0, 1))[OLD:NEW]
        full = torch.zeros(NEW, dtype=torch.float64)
        full[: len(counts)] = counts.double()
        return torch.corrcoef(torch.stack([mean_logits, (full[OLD:NEW] + 0.5).log()]))[0, 1].item()

    before = frequency_correlation()
    fit = fit_output_prior(grown, OLD, windows, counts)
    assert fit.new_target_share > 0.5
    assert abs(fit.new_mass_after - fit.new_target_share) < 0.05
    assert abs(fit.new_mass_before - fit.new_target_share) > 0.2  # it was not there before
    assert fit.gamma > 0 and frequency_correlation() > max(0.5, before + 0.3)  # frequent tokens made likelier


def test_prior_refusals():
    _, grown = _grown(True)
    with pytest.raises(ConfigError, match="beyond the model's vocab_size"):
        fit_output_prior(grown, OLD, torch.full((2, 5), NEW), torch.ones(NEW))
    with pytest.raises(ConfigError, match=r"\(n, T\+1\)"):
        fit_output_prior(grown, OLD, torch.zeros(5, dtype=torch.long), torch.ones(NEW))
    with pytest.raises(ConfigError, match="old vocab_size"):
        fit_output_prior(grown, NEW, torch.zeros((2, 5), dtype=torch.long), torch.ones(NEW))
