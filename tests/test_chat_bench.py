"""benchmarks/chat.py chooses its checkpoint and its no-repeat n-gram size on a dev set that holds no test
prompt and nothing the SFT trains on; the choice and the scoring rules."""

from __future__ import annotations

import pytest

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
