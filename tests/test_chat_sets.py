"""builtin:zh-chat / en-chat: made from packaged data, a fixed held-out part, no held-out text in training."""

from __future__ import annotations

import collections

import pytest

from gptkit.data.chat_sets import SENTIMENT_ANSWERS, builtin_chat, chatterbot_turns, sentiment_prompt
from gptkit.data.conversations import ConversationError, load_conversations
from gptkit.data.zh_sentiment import zh_sentiment
from gptkit.tokenizer.chat_template import validate_messages


@pytest.fixture(scope="module")
def zh():
    return {split: builtin_chat("zh-chat", split) for split in ("train", "test")}


def _by_source(convs):
    out = collections.defaultdict(list)
    for c in convs:
        out[c.source].append(c)
    return out


def test_chatterbot_corpus_sizes():
    assert len(chatterbot_turns("chinese")) == 467
    assert len(chatterbot_turns("english")) == 2026


def test_zh_chat_sources_and_splits(zh):
    train, test = _by_source(zh["train"]), _by_source(zh["test"])
    assert set(train) == set(test) == {"chatterbot", "sentiment", "headline", "continuation"}
    assert len(train["chatterbot"]) + len(test["chatterbot"]) == 465  # the distinct conversations
    sentiment = zh_sentiment()
    assert len(test["sentiment"]) == len(sentiment["test"])
    assert len(sentiment["train"]) - 5 <= len(train["sentiment"]) <= len(sentiment["train"])  # see below
    for c in zh["train"] + zh["test"]:
        validate_messages(c.messages)  # every conversation is well formed
    # The held-out sentiment prompts are the zh-sentiment test split, with its labels.
    row = sentiment["test"][0]
    first = test["sentiment"][0]
    assert first.messages[0]["content"] == sentiment_prompt(row.text)
    assert first.messages[1]["content"] == first.meta["label"] == SENTIMENT_ANSWERS[row.label]


def test_no_held_out_text_in_training(zh):
    train, test = _by_source(zh["train"]), _by_source(zh["test"])
    for source in test:
        train_prompts = {c.messages[0]["content"] for c in train[source]}
        test_prompts = [c.messages[0]["content"] for c in test[source]]
        if source == "chatterbot":  # short greetings recur with other answers: whole conversations are distinct
            train_convs = {tuple(m["content"] for m in c.messages) for c in train[source]}
            assert not any(tuple(m["content"] for m in c.messages) in train_convs for c in test[source])
        else:
            assert not train_prompts & set(test_prompts), source
    # Held-out articles give neither headlines nor continuations to train on.
    bodies = [c.meta["body"] for c in test["headline"]]
    train_text = "".join(m["content"] for c in zh["train"] for m in c.messages)
    assert not any(b[:40] in train_text for b in bodies)
    # Nor any held-out review.
    assert not any(c.messages[0]["content"] in train_text for c in test["sentiment"][:200])


def test_en_chat(shared_dir):
    train, test = builtin_chat("en-chat", "train"), builtin_chat("en-chat", "test")
    assert {c.source for c in train} == {c.source for c in test} == {"chatterbot", "continuation"}
    train_convs = {tuple(m["content"] for m in c.messages) for c in train}
    assert not any(tuple(m["content"] for m in c.messages) in train_convs for c in test)


def test_unknown_builtin_set():
    with pytest.raises(ConversationError, match="known: builtin:zh-chat, builtin:en-chat"):
        load_conversations("builtin:fr-chat")
