"""gptkit.eval.lm (nats per token / per character, bits per byte) against a brute-force float64 computation,
`gptkit eval lm`, and val_nats_per_char in metrics.jsonl."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gptkit.checkpoint import save_model
from gptkit.cli import main
from gptkit.config import ModelConfig
from gptkit.eval.lm import evaluate_lm, score_tokens, text_tokens
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer
from gptkit.train.metrics import read_metrics
from tests.test_train_text import config, text_file  # noqa: F401
from tests.train_helpers import one_thread  # noqa: F401

TEXTS = ["这家酒店的服务很好，房间也干净。", "The book was fine; 经济发展 grew 3.5% in 2024.", "我觉得不错！"]


@pytest.fixture(scope="module")
def tokenizer():
    # A byte-level BPE this small splits most Chinese characters over several tokens.
    return Tokenizer.train([t * 3 for t in TEXTS] + ["hello world, the cat sat on the mat."] * 3, 300)


def tiny_model(vocab_size: int, block_size: int = 8) -> GPT:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    return GPT(cfg).eval()


def brute_force_nats(model: GPT, ids: list[int], T: int) -> float:
    """Sum over positions i >= 1 of -log p(ids[i] | the ids since the start of i's window), in float64,
    one forward pass per predicted token."""
    ref = GPT(model.config).double().eval()
    ref.load_state_dict(model.state_dict())
    total = 0.0
    with torch.no_grad():
        for i in range(1, len(ids)):
            start = (i - 1) // T * T  # windows of T targets: targets start+1 .. start+T
            logits = ref(torch.tensor([ids[start:i]]))[0, -1]
            total -= torch.log_softmax(logits, dim=-1)[ids[i]].item()
    return total


def test_scores_match_brute_force_float64_and_count_characters(tokenizer):
    # Two documents as a prepared split holds them: each starts with <|endoftext|>, which counts one character.
    ids = [*text_tokens(TEXTS[0], tokenizer), *text_tokens(TEXTS[1], tokenizer)]
    assert len(ids) > 3 * 8  # several windows, the last one short
    model = tiny_model(tokenizer.vocab_size, block_size=8)
    score = score_tokens(model, np.array(ids), tokenizer, batch_size=3)
    nats = brute_force_nats(model, ids, 8)
    chars = len(TEXTS[0]) + 1 + len(TEXTS[1])
    n_bytes = len(TEXTS[0].encode()) + 1 + len(TEXTS[1].encode())
    assert len(ids) - 1 > chars - len(TEXTS[0]) - 1  # Chinese characters do span several tokens here
    assert score.tokens == len(ids) - 1 and score.chars == chars and score.bytes == n_bytes
    assert score.nats == pytest.approx(nats, rel=1e-5)
    assert score.nats_per_token == pytest.approx(nats / (len(ids) - 1), rel=1e-5)
    assert score.nats_per_char == pytest.approx(nats / chars, rel=1e-5)
    assert score.bits_per_byte == pytest.approx(nats / math.log(2) / n_bytes, rel=1e-5)
    # The batch size changes nothing.
    assert score_tokens(model, np.array(ids), tokenizer, batch_size=1).nats == pytest.approx(score.nats, rel=1e-6)


def test_cli_eval_lm_on_a_text_file(tokenizer, tmp_path, capsys):
    model_dir = tmp_path / "model"
    save_model(tiny_model(tokenizer.vocab_size, block_size=16), model_dir)
    tokenizer.save(model_dir)
    text = tmp_path / "t.txt"
    text.write_text(TEXTS[2] + TEXTS[1], encoding="utf-8")
    assert main(["eval", "lm", "--model", str(model_dir), "--data", str(text), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = evaluate_lm(model_dir, text)
    assert set(out) >= {"nats_per_token", "nats_per_char", "bits_per_byte"}
    assert out["chars"] == len(TEXTS[2] + TEXTS[1]) and out["nats_per_char"] == pytest.approx(expected.nats_per_char)
    ids = text_tokens(TEXTS[2] + TEXTS[1], tokenizer).tolist()
    nats = brute_force_nats(load_eval(model_dir), ids, 16)
    assert out["nats_per_char"] == pytest.approx(nats / len(TEXTS[2] + TEXTS[1]), rel=1e-5)
    # Bad input: one line, exit 2.
    assert main(["eval", "lm", "--model", str(model_dir), "--data", str(tmp_path / "nope.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.txt: no such file or directory" in err[0]


def load_eval(model_dir):
    from gptkit.checkpoint import load_model

    return load_model(model_dir)


@pytest.mark.usefixtures("one_thread")
def test_val_records_carry_nats_per_char(text_file, tmp_path):  # noqa: F811
    from gptkit.train.trainer import Trainer

    path, _ = text_file
    run = tmp_path / "run"
    trainer = Trainer(
        config(path, "data.tokenizer=bpe:300", "train.max_steps=2", "train.eval_interval=2"), run, quiet=True
    )
    trainer.run()
    tok = trainer.data.tokenizer
    # Shakespeare is ASCII: each target's characters are the length of its decoded text (EOT counts one).
    chars = sum(
        len(tok.decode([t]).replace("<|endoftext|>", "\n"))
        for batch in trainer._val_batches
        for t in batch["targets"].flatten().tolist()
    )
    tokens = sum(batch["targets"].numel() for batch in trainer._val_batches)
    vals = [r for r in read_metrics(run) if "val_loss" in r]
    assert [r["step"] for r in vals] == [0, 2]
    for r in vals:
        assert r["val_nats_per_char"] == pytest.approx(r["val_loss"] * tokens / chars, rel=1e-9)
        assert r["val_nats_per_char"] < r["val_loss"]  # BPE tokens hold more than one character
