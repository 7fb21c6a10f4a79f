"""benchmarks/zh_base.py's pretraining corpus holds no text the fine-tuning benchmarks score on: no
zh-sentiment test review (benchmarks/finetune.py's test split, benchmarks/chat.py's sentiment prompts) and no
held-out People's Daily article (benchmarks/chat.py's headline task)."""

from __future__ import annotations

import pytest

from gptkit.data.chat_sets import builtin_chat, news_articles
from gptkit.data.zh_sentiment import zh_sentiment
from tests.train_helpers import load_benchmark


@pytest.fixture(scope="module")
def zh_base():
    return load_benchmark("zh_base")


@pytest.fixture(scope="module")
def documents(zh_base) -> list[str]:
    return zh_base.pretraining_documents()


def test_no_sentiment_test_review_and_every_other_review(documents):
    split = zh_sentiment()
    docs = set(documents)
    assert not any(r.text in docs for r in split["test"])  # 1,736 held-out reviews: none
    assert all(r.text in docs for r in (*split["train"], *split["val"]))


def test_no_held_out_article(documents):
    text = "\n\n".join(documents)
    held_out = [c for c in builtin_chat("zh-chat", "test") if c.source in ("headline", "continuation")]
    assert len(held_out) > 300
    for c in held_out:
        assert c.messages[0]["content"].split("\n", 1)[1][:40] not in text  # the body the prompt shows
    headlines = {c.messages[1]["content"] for c in held_out if c.source == "headline"}
    train_headlines = {a.headline for a in news_articles() if a.index % 10 != 9}
    # No line is a headline only a held-out article has (a leaked article would bring its headline line; the
    # words of one may occur inside another article's text: "...国家旅游局推出’９８华夏城乡游，突出...").
    lines = set(text.split("\n"))
    assert not (headlines - train_headlines) & lines


def test_reviews_weighted_up_and_val_part_apart(zh_base):
    """The train part holds each of its reviews REVIEW_REPEATS times and each article once; the val part (the
    last 10% of the shuffled documents) holds each document once and none of them is in the train part."""
    from collections import Counter

    assert zh_base.REVIEW_REPEATS > 1
    train_docs, val_docs = zh_base.pretraining_parts()
    once_train, once_val = zh_base.pretraining_parts(review_repeats=1)
    assert val_docs == once_val and Counter(val_docs).most_common(1)[0][1] == 1
    assert not set(val_docs) & set(train_docs)
    split = zh_sentiment()
    reviews = {r.text for r in (*split["train"], *split["val"])}
    counts = Counter(train_docs)
    assert counts == Counter({d: zh_base.REVIEW_REPEATS if d in reviews else 1 for d in once_train})
    assert len(once_train) + len(once_val) == 18_513 and len(val_docs) == round(18_513 * zh_base.VAL_DOCS_FRACTION)
    assert not all(d in reviews for d in train_docs[-1000:])  # the copies are shuffled in, not appended


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--steps", "-1"], "--steps: must be >= 0"), (["--steps", "5", "--minutes", "1"], "give one of them")],
)
def test_steps_argument_errors(zh_base, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setattr("sys.argv", ["zh_base.py", "--out", str(tmp_path / "base"), *args])
    with pytest.raises(SystemExit) as stop:
        zh_base.main()
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "base").exists()  # refused before any work


@pytest.mark.parametrize(("steps", "max_steps", "budget_s"), [(7, 7, 0.0), (0, 1000000, 90.0)])
def test_steps_replace_the_time_budget(zh_base, tmp_path, monkeypatch, steps, max_steps, budget_s):
    import types

    import gptkit.train.trainer

    seen = {}

    def fake_train(cfg, run_dir):
        seen["train"] = cfg.train
        seen["model"] = cfg.model
        return types.SimpleNamespace(interrupted=None, checkpoint=None)

    docs = ["今天天气很好，我们去公园散步。", "这本书写得不错，值得一读。"] * 20
    monkeypatch.setattr(zh_base, "pretraining_parts", lambda repeats: (docs[:-4], docs[-4:]))
    monkeypatch.setattr(gptkit.train.trainer, "train", fake_train)
    with pytest.raises(SystemExit, match="no base written"):
        zh_base.build_base(tmp_path / "base", 1.5, vocab=300, steps=steps)
    assert seen["train"].max_steps == max_steps
    assert seen["train"].time_budget_s == budget_s
    # the documented base shape, whatever gptkit.demo's own recipe uses (it went to 3 layers in round 9)
    assert {k: seen["model"][k] for k in ("n_layer", "n_embd", "block_size")} == {
        "n_layer": 4,
        "n_embd": 192,
        "block_size": 256,
    }
