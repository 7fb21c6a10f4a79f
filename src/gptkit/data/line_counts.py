"""Corpus-level repeated lines: a line found in many documents of the corpus is a site template (a slogan, a
disclaimer, a sign-up prompt), dropped as C4, RefinedWeb and CCNet drop repeated lines / paragraphs.

Pure functions of the cleaned documents, so any executor runs them:

    LineCounter                  per split: for every line key (below), the number of documents holding it ->
                                 work/lines/NNNNN.npy, a (2, n) uint64 array [keys; counts], keys sorted; the
                                 clean task counts its kept documents as it writes them (count_lines_task(out, i):
                                 the same counts read back from work/clean/NNNNN.jsonl)
    repeated_lines_task(out, 0)  sums the counts of all splits -> work/lines/repeated.npy: the sorted keys found
                                 in >= REPEAT_MIN_DOCS documents
    drop_repeated_lines(text, repeated)   used by the documents task: the text without those lines

A line key is the first 8 bytes of BLAKE2b of the line with spaces collapsed, for lines of at least
MIN_LINE_CHARS characters (shorter lines, "谢谢！", "Reply", are the line rules' business, and legitimately
common). Only documents of two or more non-blank lines are counted and edited: a one-line document (a review, a
post) is its own line, and exact deduplication already handles repeats of it.

Threshold: REPEAT_MIN_DOCS documents. CCNet removes a paragraph seen twice; that is safe on crawls of whole
sites but drops quotations, lyrics and shared statistics from small corpora. On the built-in corpora (People's
Daily articles, reviews) REPEAT_MIN_DOCS = 5 removes no line at all (docs/prepare.md), while a template line of
a site with five or more pages in the corpus goes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import orjson

MIN_LINE_CHARS = 12
REPEAT_MIN_DOCS = 5
RULE = "corpus-repeated-line"


def line_key(line: str) -> int | None:
    """The line's key, or None for a line too short to count."""
    s = " ".join(line.split())
    if len(s) < MIN_LINE_CHARS:
        return None
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")


def _doc_keys(text: str) -> set[int]:
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) < 2:
        return set()
    return {k for k in map(line_key, lines) if k is not None}


def lines_dir(out: Path) -> Path:
    return out / "work" / "lines"


class LineCounter:
    """Per line key, the number of documents holding the line: one split's counts, fed document by document
    (the clean task feeds it each kept document as it writes it, so the documents are not read back)."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.docs = 0

    def add(self, text: str) -> None:
        self.docs += 1
        if "\n" in text:  # a one-line document has no keys (most documents of review sets)
            counts = self.counts
            for k in _doc_keys(text):
                counts[k] = counts.get(k, 0) + 1

    def save(self, out: Path, index: int) -> dict:
        """-> work/lines/NNNNN.npy; the split's stats."""
        keys = np.fromiter(self.counts.keys(), dtype=np.uint64, count=len(self.counts))
        vals = np.fromiter(self.counts.values(), dtype=np.uint64, count=len(self.counts))
        order = np.argsort(keys)
        d = lines_dir(out)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f"{index:05d}.tmp.npy"
        np.save(tmp, np.stack([keys[order], vals[order]]))
        tmp.replace(d / f"{index:05d}.npy")
        return {"docs": self.docs, "distinct_lines": len(self.counts)}


def count_lines_task(out: str, index: int, progress=None) -> dict:
    """Count, per line key, the documents of split `index` that hold the line, reading the clean task's kept
    documents back (`prepare` counts them in the clean task itself: the same file, LineCounter)."""
    outp = Path(out)
    counter = LineCounter()
    with open(outp / "work" / "clean" / f"{index:05d}.jsonl", encoding="utf-8") as f:
        for raw in f:
            # JSON writes a line break as the two characters \n: a record without them holds a one-line
            # document, which has no keys, and is not parsed
            if "\\n" not in raw:
                counter.docs += 1
                continue
            counter.add(orjson.loads(raw)["text"])  # our own JSON: read as json reads it
    return counter.save(outp, index)


def repeated_lines_task(out: str, _item: int, n_splits: int, min_docs: int = REPEAT_MIN_DOCS, progress=None) -> dict:
    """Sum the per-split counts; write the keys found in >= min_docs documents (one task: item 0)."""
    d = lines_dir(Path(out))
    parts = [np.load(d / f"{i:05d}.npy") for i in range(n_splits)]
    if parts:
        allk = np.concatenate([p[0] for p in parts])
        allc = np.concatenate([p[1] for p in parts])
        order = np.argsort(allk, kind="stable")
        allk, allc = allk[order], allc[order]
        uniq, start = np.unique(allk, return_index=True)
        totals = np.add.reduceat(allc, start) if len(allk) else allc
        repeated = uniq[totals >= min_docs]
    else:
        repeated = np.zeros(0, dtype=np.uint64)
    tmp = d / "repeated.tmp.npy"
    np.save(tmp, repeated.astype(np.uint64))
    tmp.replace(d / "repeated.npy")
    return {"repeated_lines": len(repeated), "min_docs": min_docs}


def load_repeated(out: Path) -> frozenset[int]:
    path = lines_dir(out) / "repeated.npy"
    return frozenset(int(k) for k in np.load(path)) if path.exists() else frozenset()


def drop_repeated_lines(text: str, repeated: frozenset[int]) -> tuple[str, list[tuple[int, str]]]:
    """(the text without its corpus-repeated lines, [(line number, line) dropped])."""
    lines = text.split("\n")
    if not repeated or sum(1 for ln in lines if ln.strip()) < 2:
        return text, []
    kept, dropped = [], []
    for i, ln in enumerate(lines):
        k = line_key(ln)
        if k is not None and k in repeated:
            dropped.append((i, ln))
        else:
            kept.append(ln)
    return ("\n".join(kept).strip("\n"), dropped) if dropped else (text, [])


__all__ = [
    "REPEAT_MIN_DOCS",
    "RULE",
    "LineCounter",
    "count_lines_task",
    "drop_repeated_lines",
    "line_key",
    "load_repeated",
    "repeated_lines_task",
]
