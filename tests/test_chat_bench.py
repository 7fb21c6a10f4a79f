"""benchmarks/chat.py chooses its checkpoint and its no-repeat n-gram size on a dev set that holds no test
prompt and nothing the SFT trains on; the choice and the scoring rules."""

from __future__ import annotations

import pytest
import torch

from gptkit.data.chat_sets import builtin_chat, sentiment
from gptkit.data.conversations import Conversation
from gptkit.train.chat_sft import VAL_EVERY
from tests.train_helpers import load_benchmark


@pytest.fixture(scope="module")
def chat_bench():
    return load_benchmark("chat")


@pytest.fixture(scope="module")
def dev(chat_bench):
    return chat_bench.dev_sets("builtin:zh-chat")


def _prompts(convs) -> set[str]:
    return {c.messages[-2]["content"] for c in convs}


def test_dev_sets_hold_no_test_and_no_training_prompt(dev):
    dev_sent, dev_heads = dev
    train = builtin_chat("zh-chat", "train")
    sft_train = [c for i, c in enumerate(train) if i % VAL_EVERY != VAL_EVERY - 1]
    test = builtin_chat("zh-chat", "test")
    for convs in (dev_sent, dev_heads):
        assert not _prompts(convs) & _prompts(test)
        assert not _prompts(convs) & _prompts(sft_train)
    # every zh-sentiment val review (as a prompt) is there, unless a training prompt equals it
    val = _prompts(sentiment("val"))
    assert len(val) > 800
    assert val - _prompts(sft_train) <= _prompts(dev_sent)
    # and the SFT's own validation conversations of both kinds
    sft_val = [c for i, c in enumerate(train) if i % VAL_EVERY == VAL_EVERY - 1]
    assert _prompts(c for c in sft_val if c.source == "sentiment") <= _prompts(dev_sent)
    assert _prompts(dev_heads) == _prompts(c for c in sft_val if c.source == "headline")
    assert len(dev_sent) > len(val) + 500 and len(dev_heads) > 100
    assert {c.source for c in dev_sent} == {"sentiment"} and {c.source for c in dev_heads} == {"headline"}
    assert {c.messages[-1]["content"] for c in dev_sent} == {"正面", "负面"}


def test_choose_takes_the_best_and_the_later_key_on_ties(chat_bench):
    assert chat_bench.choose({500: 0.8, 1000: 0.9, 1500: 0.85}) == 1000
    assert chat_bench.choose({500: 0.9, 1000: 0.9, 1500: 0.85}) == 1000
    assert chat_bench.choose({0: 5.0, 2: 5.0, 3: 4.0}) == 2
    with pytest.raises(ValueError):
        chat_bench.choose({})


def test_sentiment_correct_is_exact_after_trimming(chat_bench):
    convs = [
        Conversation([{"role": "user", "content": "x"}, {"role": "assistant", "content": label}])
        for label in ("正面", "负面", "正面", "负面")
    ]
    assert chat_bench.sentiment_correct([" 正面\n", "负面", "正面。", "正面"], convs) == 2
    with pytest.raises(ValueError):
        chat_bench.sentiment_correct(["正面"], convs)  # one answer per conversation


def test_choose_model_takes_an_average_only_when_it_beats_every_checkpoint(chat_bench):
    steps = {500: 0.80, 1000: 0.85}
    assert chat_bench.choose_model(steps, {}) == 1000
    assert chat_bench.choose_model(steps, {"mean 2": 0.85}) == 1000  # a tie keeps the checkpoint
    assert chat_bench.choose_model(steps, {"mean 2": 0.86, "mean 4": 0.87}) == "mean 4"
    assert chat_bench.choose_model(steps, {"mean 2": 0.87, "mean 4": 0.87}) == "mean 2"


def test_average_checkpoints_is_the_mean_and_loads_as_a_chat_model(chat_bench, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from gptkit import load_model
    from gptkit.errors import CheckpointError
    from gptkit.generation.text import Generator
    from gptkit.tokenizer import Tokenizer
    from tests.chat_helpers import tiny_checkpoint

    paths = [tiny_checkpoint(tmp_path / f"step_{i}", chat=True, seed=i) for i in range(3)]
    (paths[-1] / "optimizer.safetensors").write_bytes(b"not copied")
    (paths[-1] / "trainer_state.json").write_text("{}", encoding="utf-8")
    out = chat_bench.average_checkpoints(paths, tmp_path / "avg")
    assert not (out / "optimizer.safetensors").exists() and not (out / "trainer_state.json").exists()
    states = [load_file(str(p / "model.safetensors")) for p in paths]
    mean = load_file(str(out / "model.safetensors"))
    assert set(mean) == set(states[0])
    for name, tensor in mean.items():
        expected = sum(s[name].double() for s in states) / 3
        assert tensor.dtype == states[0][name].dtype
        assert torch.allclose(tensor.double(), expected, atol=1e-6), name
    assert not torch.equal(mean["wte.weight"], states[0]["wte.weight"])  # the seeds differ
    model = load_model(out)
    assert torch.allclose(model.wte.weight.double(), sum(s["wte.weight"].double() for s in states) / 3, atol=1e-6)
    assert Tokenizer.load(out).chat_template == Tokenizer.load(paths[-1]).chat_template is not None
    Generator.load(out)  # a chat model the benchmark can ask

    other = tmp_path / "other"
    shutil.copytree(paths[0], other)
    wrong = dict(states[0], **{"wte.weight": torch.zeros(3, 5)})
    save_file(wrong, str(other / "model.safetensors"))
    with pytest.raises(CheckpointError, match="wte.weight: shape"):
        chat_bench.average_checkpoints([paths[0], other], tmp_path / "bad")
    save_file({k: v for k, v in states[0].items() if k != "wte.weight"}, str(other / "model.safetensors"))
    with pytest.raises(CheckpointError, match="tensor names differ"):
        chat_bench.average_checkpoints([paths[0], other], tmp_path / "bad")
