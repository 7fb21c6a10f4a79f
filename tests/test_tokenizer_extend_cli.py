"""`gptkit tokenizer extend`: a checkpoint with Chinese tokens added, then `train --init-from` on it."""

from __future__ import annotations

import json

import pytest
import torch

from gptkit.checkpoint import load_model, read_config_json, save_model
from gptkit.cli import main
from gptkit.config import ModelConfig
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer
from tests.tokenizer_helpers import mixed_corpus
from tests.train_helpers import TINY, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def texts():
    corpus = mixed_corpus()
    english = [line for line in corpus["train"] if line.isascii()]
    chinese = [line for line in corpus["train"] if not line.isascii()][::4]
    return english, chinese


@pytest.fixture
def source(tmp_path, texts):
    english, _ = texts
    tok = Tokenizer.train(english, vocab_size=350)
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32))
    ckpt = tmp_path / "src"
    save_model(model, ckpt)
    tok.save(ckpt)
    return ckpt


def test_extend_then_continue_training(source, texts, tmp_path, capsys):
    english, chinese = texts
    corpus = tmp_path / "zh.txt"
    corpus.write_text("".join(chinese), encoding="utf-8")
    out = tmp_path / "extended"
    argv = ["tokenizer", "extend", "--model", str(source), "--input", str(corpus), "--add", "60", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "added 60 tokens" in printed and "Han chars/token on the corpus" in printed
    old_tok, new_tok = Tokenizer.load(source), Tokenizer.load(out)
    old_model, new_model = load_model(source), load_model(out)
    assert new_tok.vocab_size == new_model.config.vocab_size == old_tok.vocab_size + 60
    assert read_config_json(out)["extended_from"]["added"] == 60
    assert read_config_json(out)["extended_from"]["init"] == "centred"  # the default
    prior = read_config_json(out)["extended_from"]["prior"]  # fitted on --input by default
    assert prior["loss_after"] < prior["loss_before"] and "unigram prior on" in printed
    # Old text: the same ids, and over the old vocabulary the same logits.
    text = "".join(english[-40:])
    ids = old_tok.encode(text)
    assert new_tok.encode(text) == ids
    idx = torch.tensor([ids[:64]])
    with torch.no_grad():
        torch.testing.assert_close(new_model(idx)[..., : old_tok.vocab_size], old_model(idx), rtol=0, atol=0)
    # Exported, <|endoftext|> keeps its id (it is no longer the last one).
    assert main(["export-hf", str(out), str(tmp_path / "hf")]) == 0
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_config["eos_token_id"] == old_tok.eot_id < new_tok.vocab_size - 1
    # New text uses the new tokens, and the extended model trains on it from its own weights.
    assert max(new_tok.encode("".join(chinese[:20]))) >= old_tok.vocab_size
    run = tmp_path / "run"
    loop = [a for s in TINY if not s.startswith("model.") for a in ("--set", s)]
    assert main(["train", "--data", str(corpus), "--out", str(run), "--init-from", str(out), *loop,
                 "--set", "train.max_steps=2"]) == 0  # fmt: skip
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 0 and first["val_loss"] > 0


def test_extend_refusals_write_nothing(source, texts, tmp_path, capsys):
    _, chinese = texts
    corpus = tmp_path / "zh.txt"
    corpus.write_text("".join(chinese[:200]), encoding="utf-8")
    char = tmp_path / "char"
    tok = Tokenizer.train(["abc\n"], vocab_size=None, kind="char")
    save_model(GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=1, n_embd=8)), char)
    tok.save(char)
    cases = [
        (char, tmp_path / "o1", "needs a byte-level BPE tokenizer"),
        (source, source, "is the source checkpoint"),
        (tmp_path / "nowhere", tmp_path / "o2", "not found"),
    ]
    for model, out, message in cases:
        before = sorted(p.name for p in out.iterdir()) if out.exists() else None
        argv = ["tokenizer", "extend", "--model", str(model), "--input", str(corpus), "--add", "5", "--out", str(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before


def test_extend_prior_input_and_no_prior(source, texts, tmp_path, capsys):
    _, chinese = texts
    corpus, train_text = tmp_path / "zh.txt", tmp_path / "train.txt"
    corpus.write_text("".join(chinese), encoding="utf-8")
    train_text.write_text("".join(chinese[::2]), encoding="utf-8")
    base = ["tokenizer", "extend", "--model", str(source), "--input", str(corpus), "--add", "40"]
    assert main([*base, "--out", str(tmp_path / "a"), "--prior-input", str(train_text)]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--no-prior"]) == 0
    assert main([*base, "--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    fits = [read_config_json(tmp_path / d)["extended_from"]["prior"] for d in "abc"]
    assert fits[1] is None and fits[0]["loss_before"] != fits[2]["loss_before"]  # other windows: other text
    plain, fitted = load_model(tmp_path / "b"), load_model(tmp_path / "c")
    old = Tokenizer.load(source).vocab_size
    torch.testing.assert_close(plain.wte.weight[:old], fitted.wte.weight[:old], rtol=0, atol=0)
    assert not torch.equal(plain.wte.weight[old : old + 40], fitted.wte.weight[old : old + 40])
