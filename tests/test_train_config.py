"""Training settings: TOML + --set overrides, validation errors that name the key, round trip."""

from __future__ import annotations

import pytest

from gptkit.errors import ConfigError
from gptkit.train.config import RunConfig, load_run_config, parse_override


def test_override_values_are_read_as_toml_else_strings():
    assert parse_override("train.lr=3e-4") == ("train", "lr", 3e-4)
    assert parse_override("train.max_steps=100") == ("train", "max_steps", 100)
    assert parse_override("train.compile=true") == ("train", "compile", True)
    assert parse_override("data.tokenizer=bpe:8000") == ("data", "tokenizer", "bpe:8000")
    assert parse_override('train.sample_prompt="a = b"') == ("train", "sample_prompt", "a = b")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("train.lr")
    with pytest.raises(ConfigError, match="one dot"):
        parse_override("lr=1")


def test_file_then_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\npreset = "nano"\nn_layer = 3\n[train]\nlr = 2e-3\nmax_steps = 50\n')
    cfg = load_run_config(path, ["train.max_steps=70", "model.dropout=0.1"])
    assert cfg.train.lr == 2e-3 and cfg.train.max_steps == 70
    mc = cfg.model_config(vocab_size=65)
    assert (mc.n_layer, mc.n_embd, mc.block_size, mc.dropout, mc.vocab_size) == (3, 128, 64, 0.1, 65)
    assert cfg.train.resolved_min_lr == pytest.approx(2e-4)
    assert cfg.train.resolved_decay_steps == 70


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.learning_rate=1e-3"], r"train\.learning_rate: unknown setting"),
        (["model.n_layers=4"], r"model\.n_layers: unknown setting"),
        (["optim.lr=1"], r"optim: unknown section"),
        (["train.lr=fast"], r"train\.lr: expected float, got 'fast'"),
        (["train.max_steps=1.5"], r"train\.max_steps: expected int"),
        (["train.compile=1"], r"train\.compile: expected bool"),
        (["train.schedule=step"], r"train\.schedule: 'step' is not one of cosine, linear, constant"),
        (["train.dtype=fp8"], r"train\.dtype: 'fp8' is not one of"),
        (["train.device=tpu"], r"train\.device: 'tpu'"),
        (["train.beta2=1.0"], r"train\.beta2: must be in \[0, 1\)"),
        (["train.batch_size=0"], r"train\.batch_size: must be at least 1"),
        (["train.min_lr=1"], r"train\.min_lr: must be between 0 and lr"),
        (["model.preset=gpt5"], r"model\.preset: unknown preset 'gpt5'"),
        (["model.n_head=3"], r"model\.n_embd: .* not divisible by n_head=3"),
        (["model.dropout=1.5"], r"model\.dropout: must be in \[0, 1\)"),
        (["data.sampling=shuffle"], r"data\.sampling: 'shuffle' is not one of random, document"),
        (["data.tokenizer=bpe:lots"], r"data\.tokenizer: 'bpe:lots'"),
        (["data.val_fraction=0"], r"data\.val_fraction: must be in \(0, 1\)"),
    ],
)
def test_bad_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(None, overrides)


def test_bad_file_is_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nlr = \n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML"):
        load_run_config(path)
    path.write_text("[train]\nwarmup = 10\n")
    with pytest.raises(ConfigError, match=r"bad.toml: train\.warmup: unknown setting"):
        load_run_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_run_config(tmp_path / "missing.toml")


def test_explicit_vocab_must_hold_the_data():
    cfg = load_run_config(None, ["model.vocab_size=50"])
    with pytest.raises(ConfigError, match=r"model\.vocab_size: 50 is smaller than the tokenizer's 65"):
        cfg.model_config(vocab_size=65)
    assert load_run_config(None, ["model.vocab_size=128"]).model_config(vocab_size=65).vocab_size == 128


def test_toml_round_trip(tmp_path):
    cfg = load_run_config(
        None, ["model.preset=micro", 'train.sample_prompt="ROMEO:\\n"', "train.dtype=bfloat16", "train.min_lr=0.0"]
    )
    cfg.model = {"preset": "micro", **cfg.model_config(vocab_size=65).to_dict()}
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml())
    again = load_run_config(path)
    assert isinstance(again, RunConfig)
    assert (again.train, again.data) == (cfg.train, cfg.data)
    assert again.model_config(vocab_size=65) == cfg.model_config(vocab_size=65)
    assert "# decay_steps = 2000  (not set: max_steps)" in path.read_text()


def test_the_shipped_shakespeare_recipe_loads_and_validates():
    from pathlib import Path

    cfg = load_run_config(Path(__file__).resolve().parents[1] / "configs" / "shakespeare-char-cpu.toml")
    t = cfg.train
    assert (t.optimizer, t.schedule, t.dtype, t.muon_ns_steps) == ("muon", "wsd", "auto", 3)
    assert (t.resolved_embedding_lr, t.resolved_head_lr, t.resolved_min_lr) == (6e-2, 8e-3, 0.0)
    # the budget is timed on the machine at hand: N steps of nanoGPT's own model, fewer than its 2000 + evaluations
    assert t.time_budget_s == 0 and 1000 <= t.time_budget_ref_steps < 2000 and t.time_budget_clock == "wall"
    assert cfg.model_config(vocab_size=65).tie_embeddings is False
