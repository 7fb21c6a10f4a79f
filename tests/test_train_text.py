"""`gptkit train --data FILE.txt`: tokenized into RUN_DIR/data and split by position, as nanoGPT's
shakespeare_char; reused on resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gptkit.data.shards import Shard, shard_paths
from gptkit.tokenizer import Tokenizer
from gptkit.train.config import load_run_config
from gptkit.train.data import encode_long
from gptkit.train.trainer import train
from tests.train_helpers import TINY, one_thread, val_losses  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def text_file(shared_dir, tmp_path):
    text = (shared_dir / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:60_000]
    path = tmp_path / "shakespeare.txt"
    path.write_text(text, encoding="utf-8")
    return path, text


def config(path, *extra):
    return load_run_config(None, [*TINY, f"data.path={json.dumps(str(path))}", *extra])


def test_char_level_text_file_is_split_by_position(text_file, tmp_path):
    path, text = text_file
    run = tmp_path / "run"
    result = train(config(path, "train.max_steps=30", "train.eval_interval=30"), run, quiet=True)
    data = run / "data"
    tok = Tokenizer.load(data)
    assert tok.kind == "char" and tok.vocab_size == len(set(text)) + 3
    split = int(len(text) * 0.9)
    for name, part in (("train", text[:split]), ("val", text[split:])):
        (shard,) = [Shard(p) for p in shard_paths(data, name)]
        tokens = np.asarray(shard.tokens)
        assert tokens[0] == tok.eot_id and tok.decode(tokens[1:].tolist()) == part
    vals = val_losses(run)
    assert vals[30] < vals[0] - 0.5  # a char model learns a lot in 30 steps at lr 1e-2
    assert result.checkpoint is not None and Tokenizer.load(result.checkpoint).fingerprint == tok.fingerprint
    # Resuming reuses the tokenized data (the stamp matches) and goes on.
    stamp = (data / "source.json").stat().st_mtime_ns
    again = train(load_run_config(run / "config.toml", ["train.max_steps=35"]), run, resume=True, quiet=True)
    assert again.step == 35 and (data / "source.json").stat().st_mtime_ns == stamp


def test_bpe_text_file_and_piecewise_encoding(text_file, tmp_path):
    path, text = text_file
    run = tmp_path / "run"
    train(config(path, "data.tokenizer=bpe:300", "train.max_steps=3", "data.val_fraction=0.2"), run, quiet=True)
    tok = Tokenizer.load(run / "data")
    assert tok.kind == "bpe" and tok.vocab_size == 300
    (val,) = [Shard(p) for p in shard_paths(run / "data", "val")]
    assert tok.decode(np.asarray(val.tokens)[1:].tolist()) == text[int(len(text) * 0.8) :]
    # Encoding in pieces cut after newlines gives exactly the ids of encoding the whole text.
    tricky = text[:5000] + "\n\n  \n\t x\n" + "中文，测试。\n" * 3 + text[5000:8000]
    assert encode_long(tok, tricky, piece_chars=97) == tok.encode(tricky)


def test_unknown_tokenizer_spec_is_named(text_file, tmp_path):
    from gptkit.errors import ConfigError

    path, _ = text_file
    with pytest.raises(ConfigError, match=r"data\.tokenizer: nowhere: not auto, char, bpe:N or a tokenizer directory"):
        train(config(path, "data.tokenizer=nowhere"), tmp_path / "run", quiet=True)


def test_sample_prompt_is_checked_before_training(text_file, tmp_path):
    from gptkit.errors import ConfigError

    path, _ = text_file
    cfg = config(path, "train.sample_tokens=20", 'train.sample_prompt="中"')
    with pytest.raises(ConfigError, match=r"train\.sample_prompt: character '中'"):
        train(cfg, tmp_path / "run", quiet=True)
    cfg = config(path, "train.sample_tokens=20", f'train.sample_prompt="{"a" * 40}"')
    with pytest.raises(ConfigError, match=r"train\.sample_prompt: 41 tokens leave no room in block_size 32"):
        train(cfg, tmp_path / "run2", quiet=True)


def test_evaluations_print_a_generated_sample(text_file, tmp_path, capsys):
    path, _ = text_file
    cfg = config(
        path, "train.max_steps=10", "train.eval_interval=10", "train.sample_tokens=20", 'train.sample_prompt="ROMEO:"'
    )
    train(cfg, tmp_path / "run")
    out = capsys.readouterr().out
    samples = [line for line in out.splitlines() if line.startswith("  sample: ")]
    assert len(samples) == 2 and all(line.startswith("  sample: ROMEO:") for line in samples)  # steps 0 and 10


def test_builtin_corpora_go_through_prepare(tmp_path, monkeypatch):
    """builtin:NAME runs `gptkit prepare` into RUN_DIR/data (stubbed here: the real one takes a minute)."""
    import gptkit.data.pipeline as pipeline
    from gptkit.errors import ConfigError
    from gptkit.train.config import DataConfig
    from gptkit.train.data import resolve_data
    from tests.train_helpers import make_shards

    seen = []

    def fake_prepare(cfg):
        seen.append(cfg)
        make_shards(Path(cfg.out))

    monkeypatch.setattr(pipeline, "prepare", fake_prepare)
    data = resolve_data(DataConfig(path="builtin:zh-news"), tmp_path)
    assert data.data_dir == tmp_path / "data" and data.train_paths
    (cfg,) = seen
    assert cfg.inputs == ("builtin:zh-news",) and cfg.out == str(tmp_path / "data") and cfg.vocab_size == 8000
    resolve_data(DataConfig(path="builtin:zh-news", tokenizer="bpe:300"), tmp_path)
    assert seen[-1].vocab_size == 300
    resolve_data(DataConfig(path="builtin:zh-news", tokenizer=str(tmp_path)), tmp_path)
    assert seen[-1].tokenizer == str(tmp_path) and seen[-1].vocab_size is None
    with pytest.raises(ConfigError, match="data.tokenizer: char is for text files"):
        resolve_data(DataConfig(path="builtin:zh-news", tokenizer="char"), tmp_path)
