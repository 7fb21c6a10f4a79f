"""Adding tokens: tokenizer side (gptkit.tokenizer.extend) and model side (gptkit.vocab.grow_vocab)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptkit.config import ModelConfig
from gptkit.errors import ConfigError
from gptkit.model import GPT
from gptkit.tokenizer import PRETOKENIZERS, Tokenizer, TokenizerError
from gptkit.tokenizer.extend import add_special_tokens, learn_merges
from gptkit.vocab import CENTRED_NORM_SCALE, INITS, grow_vocab
from tests.tokenizer_helpers import mixed_corpus, reference_bpe_encode


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    return mixed_corpus()


@pytest.fixture(scope="module")
def english_bpe(corpus) -> Tokenizer:
    english = [line for line in corpus["train"] if line.isascii()]
    return Tokenizer.train(english, vocab_size=400)


@pytest.fixture(scope="module")
def extended(english_bpe, corpus):
    chinese = [line for line in corpus["train"] if not line.isascii()][::3]
    return learn_merges(english_bpe, chinese, 120)


# ---- tokenizer: learned merges ---------------------------------------------------------------------
def test_learn_merges_keeps_old_ids_and_old_text(english_bpe, extended, corpus):
    new, old = extended.tokenizer, english_bpe
    assert extended.added == 120 and new.vocab_size == old.vocab_size + 120
    assert [new.token_bytes(i) for i in range(old.vocab_size)] == [old.token_bytes(i) for i in range(old.vocab_size)]
    assert new.special_tokens == old.special_tokens
    english = "".join(line for line in corpus["held_out"] if line.isascii())
    assert new.encode(english) == old.encode(english)


def test_learn_merges_pieces_and_compression(english_bpe, extended, corpus):
    new, old = extended.tokenizer, english_bpe
    for k, pieces in enumerate(extended.pieces):
        assert len(pieces) >= 2
        assert old.decode_bytes(pieces) == new.token_bytes(old.vocab_size + k)
    chinese = "".join(line for line in corpus["held_out"] if not line.isascii())
    ids = new.encode(chinese)
    assert new.decode(ids) == chinese
    assert max(ids) >= old.vocab_size  # the new tokens are used
    assert len(ids) < 0.8 * len(old.encode(chinese))


def test_learn_merges_matches_plain_bpe_and_transformers(extended, corpus, tmp_path):
    """The saved vocab.json + merges.txt, run by a plain BPE and by AutoTokenizer, give gptkit's ids."""
    transformers = pytest.importorskip("transformers")
    new = extended.tokenizer
    new.save(tmp_path)
    assert Tokenizer.load(tmp_path).fingerprint == new.fingerprint
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path)
    for line in corpus["held_out"][::7][:40]:
        ids = new.encode(line)
        assert reference_bpe_encode(line, tmp_path, PRETOKENIZERS["gptkit"]) == ids
        assert hf(line)["input_ids"] == ids


def test_learn_merges_refusals(english_bpe):
    char = Tokenizer.train(["abc\n"], vocab_size=None, kind="char")
    with pytest.raises(TokenizerError, match="byte-level BPE"):
        learn_merges(char, ["abc"], 3)
    with pytest.raises(TokenizerError, match="positive integer"):
        learn_merges(english_bpe, ["abc"], 0)
    with pytest.raises(TokenizerError, match="empty"):
        learn_merges(english_bpe, [""], 3)


# ---- tokenizer: special tokens ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_add_special_tokens(kind, corpus, tmp_path):
    text = "".join(corpus["train"][:300])
    tok = Tokenizer.train([text + "<|start|>"], vocab_size=300 if kind == "bpe" else None, kind=kind)
    ext = add_special_tokens(tok, ["<|start|>", "<|delim|>"])
    new = ext.tokenizer
    assert new.special_tokens["<|start|>"] == tok.vocab_size
    assert new.special_tokens["<|delim|>"] == tok.vocab_size + 1
    assert new.vocab_size == tok.vocab_size + 2 and ext.pieces == [[], []]
    assert new.eot_id == tok.eot_id
    sample = text[:200] + "<|start|>" + text[200:400]  # the names inside text are ordinary text
    assert new.encode(sample) == tok.encode(sample)
    assert new.decode([new.special_tokens["<|delim|>"]]) == "<|delim|>"
    new.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    assert loaded.special_tokens == new.special_tokens and loaded.fingerprint == new.fingerprint
    assert loaded.fingerprint != tok.fingerprint
    with pytest.raises(TokenizerError, match="already a special token"):
        add_special_tokens(new, ["<|start|>"])


# ---- model: grow_vocab --------------------------------------------------------------------------------
def _model(tie: bool, vocab_size: int = 300) -> GPT:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32, tie_embeddings=tie)
    return GPT(config).eval()


@pytest.mark.parametrize("tie", [True, False])
def test_grow_vocab_mean_init(tie):
    model = _model(tie)
    pieces = [[1, 2], [5], [7, 7, 9], []]
    grown = grow_vocab(model, 304, pieces=pieces, init="mean")
    assert grown.config.vocab_size == 304 and grown.config.padded_vocab_size == 320
    assert model.config.vocab_size == 300  # the original is left alone
    for name in ["wte.weight"] + ([] if tie else ["lm_head.weight"]):
        old = dict(model.named_parameters())[name].detach().numpy().astype(np.float64)
        new = dict(grown.named_parameters())[name].detach().numpy().astype(np.float64)
        assert new.shape == (320, 32)
        np.testing.assert_array_equal(new[:300], old[:300])
        for k, p in enumerate(pieces):
            expected = old[p].mean(axis=0) if p else old[:300].mean(axis=0)
            np.testing.assert_allclose(new[300 + k], expected, rtol=1e-6, atol=1e-7)
        assert not new[304:].any()  # padding rows stay zero
    assert (grown.lm_head.weight is grown.wte.weight) == tie


@pytest.mark.parametrize("tie", [True, False])
def test_grow_vocab_centred_init(tie):
    """centred rows recomputed in float64 numpy: mean of the pieces' rows minus the mean of every old row
    the pieces use, scaled to CENTRED_NORM_SCALE x the old rows' mean norm, plus N(0, 0.02) noise."""
    model = _model(tie)
    pieces = [[1, 2], [5, 9], [7, 7, 9], [], [2, 5]]
    grown = grow_vocab(model, 305, pieces=pieces, init="centred", seed=4)
    for name in ["wte.weight"] + ([] if tie else ["lm_head.weight"]):
        old = dict(model.named_parameters())[name].detach().numpy().astype(np.float64)[:300]
        new = dict(grown.named_parameters())[name].detach().numpy().astype(np.float64)
        np.testing.assert_array_equal(new[:300], old)
        np.testing.assert_allclose(new[303], old.mean(axis=0), rtol=1e-6, atol=1e-7)  # no pieces: the mean row
        shared = old[[1, 2, 5, 7, 9]].mean(axis=0)
        target = CENTRED_NORM_SCALE * np.linalg.norm(old, axis=1).mean()
        noise = []
        for k in (0, 1, 2, 4):
            d = old[pieces[k]].mean(axis=0) - shared
            noise.append(new[300 + k] - target * d / np.linalg.norm(d))
        noise = np.concatenate(noise)  # 128 draws of N(0, 0.02)
        assert 0.015 < noise.std() < 0.025 and abs(noise.mean()) < 0.006
        assert not new[305:].any()
    again = grow_vocab(model, 305, pieces=pieces, init="centred", seed=4)
    torch.testing.assert_close(again.wte.weight, grown.wte.weight, rtol=0, atol=0)
    other = grow_vocab(model, 305, pieces=pieces, init="centred", seed=5)
    assert not torch.equal(other.wte.weight[300:303], grown.wte.weight[300:303])


def test_grow_vocab_centred_separates_collapsed_pieces():
    """Rows that all point one way (as a tied model's never-read tokens do) give near-identical plain means;
    centred rows are as different from each other as the pieces' own differences, and old-sized."""
    model = _model(True)
    with torch.no_grad():
        direction = torch.randn(32, generator=torch.Generator().manual_seed(2))
        model.wte.weight[200:264] = 0.3 * direction + 0.01 * torch.randn(64, 32)
    pieces = [[200 + (3 * k) % 64, 200 + (5 * k + 1) % 64, 200 + (7 * k + 2) % 64] for k in range(40)]

    def mean_cosine(rows: torch.Tensor) -> float:
        unit = torch.nn.functional.normalize(rows.double(), dim=1)
        return (unit @ unit.T).mean().item()

    plain = grow_vocab(model, 340, pieces=pieces, init="mean").wte.weight.detach()[300:340]
    centred = grow_vocab(model, 340, pieces=pieces, init="centred").wte.weight.detach()[300:340]
    assert mean_cosine(plain) > 0.95
    assert mean_cosine(centred) < 0.2
    old_norm = model.wte.weight.detach()[:300].norm(dim=1).mean().item()
    assert 0.3 * old_norm < centred.norm(dim=1).mean().item() < 0.8 * old_norm


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("init", ["centred", "mean", "random"])
def test_grow_vocab_keeps_old_logits_every_init(tie, init):
    model = _model(tie)
    pieces = [[(7 * k) % 300, (11 * k + 3) % 300] for k in range(33)]
    grown = grow_vocab(model, 333, pieces=pieces, init=init, seed=3)
    idx = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        old, new = model(idx), grown(idx)
    torch.testing.assert_close(new[..., :300], old, rtol=0, atol=0)


@pytest.mark.parametrize("tie", [True, False])
def test_grow_vocab_keeps_old_logits(tie):
    model = _model(tie)
    grown = grow_vocab(model, 333, init="random", seed=3)
    assert grown.config.padded_vocab_size == 384
    idx = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        old, new = model(idx), grown(idx)
    assert new.shape == (2, 16, 333)
    torch.testing.assert_close(new[..., :300], old, rtol=0, atol=0)
    rows = grown.wte.weight[300:333].detach()
    assert 0.01 < rows.std().item() < 0.03  # N(0, 0.02)
    again = grow_vocab(model, 333, init="random", seed=3)
    torch.testing.assert_close(again.wte.weight, grown.wte.weight, rtol=0, atol=0)


def test_grow_vocab_within_padding_and_refusals():
    model = _model(True, vocab_size=290)  # padded to 320
    grown = grow_vocab(model, 291)
    assert grown.config.padded_vocab_size == 320
    with pytest.raises(ConfigError, match="above the model's 290"):
        grow_vocab(model, 290)
    with pytest.raises(ConfigError, match="pieces"):
        grow_vocab(model, 292, pieces=[[1]])
    with pytest.raises(ConfigError, match="not an old token id"):
        grow_vocab(model, 291, pieces=[[290]])
    with pytest.raises(ConfigError, match="not one of centred, mean, random"):
        grow_vocab(model, 291, init="zeros")


def test_cli_offers_every_init():
    from gptkit.cli import build_parser

    extend = build_parser()._subparsers._group_actions[0].choices["tokenizer"]
    action = next(a for a in extend._subparsers._group_actions[0].choices["extend"]._actions if a.dest == "init")
    assert tuple(action.choices) == INITS and action.default == "centred"
