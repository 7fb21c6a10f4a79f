"""Which clean tasks to start first: a rough estimate of each split's cleaning cost, read from a sample of it.

The local pool hands tasks out in the order it is given them, so a costly split started last keeps one worker
busy while the others wait (on benchmarks/prepare.py's input, two workers: the last news split ended 0.27-0.32 s
after the other worker's last task). Started costliest first (longest-processing-time-first list scheduling),
the splits that end the stage are the cheap ones. The estimate only orders the tasks: every task's output is the
same in any order.

A split's cost is its bytes, and the bytes of documents that have more than one line count MULTILINE_COST times
(those go through the page logic: context rules, the line model, the repetition rules): measured on the built-in
news articles and reviews, cleaning cost 1.13 us per character of a multi-line document and 0.6 us per character
of a one-line one (every distinct document of benchmarks/prepare.py's input through `clean_document` once). For a
JSONL split the share of such documents is read off its first SAMPLE_BYTES (a record holding a line break has the
escape "\\n" in it), read as SAMPLES pieces spread evenly over the split (documents of one kind come in runs:
a file of articles then reviews); other kinds are estimated by their kind.
"""

from __future__ import annotations

from gptkit.data.encoding import WIDE_ENCODINGS
from gptkit.data.sources import InputSplit

SAMPLE_BYTES = 1 << 16
SAMPLES = 4
MULTILINE_COST = 2.0
_MULTILINE_KINDS = frozenset({"zh-news", "files", "html", "warc"})  # documents that are pages, articles, files


def multiline_share(sample: bytes) -> float:
    """The share of a JSONL sample's bytes in records holding a line break (the last record may be cut off)."""
    total = multi = 0
    for rec in sample.split(b"\n"):
        if not rec:
            continue
        total += len(rec) + 1
        if b"\\n" in rec:
            multi += len(rec) + 1
    return multi / total if total else 0.0


def estimate_cost(split: InputSplit) -> float:
    """A split's estimated cleaning cost, in byte-equivalents (only the order of the estimates matters)."""
    if split.kind in _MULTILINE_KINDS:
        return MULTILINE_COST * split.n_bytes
    if split.kind != "jsonl" or split.encoding in WIDE_ENCODINGS or split.end <= split.start:
        return float(split.n_bytes)
    size = split.end - split.start
    piece = min(size, SAMPLE_BYTES // SAMPLES)
    starts = sorted({split.start + (size - piece) * k // (SAMPLES - 1) for k in range(SAMPLES)})
    try:
        with open(split.path, "rb") as f:
            shares = []
            for start in starts:
                f.seek(start)
                shares.append(multiline_share(f.read(piece)))
    except OSError:
        return float(split.n_bytes)  # the clean task reports the file's error
    return split.n_bytes * (1.0 + (MULTILINE_COST - 1.0) * sum(shares) / len(shares))


def estimate_costs(splits: list[InputSplit]) -> list[float]:
    return [estimate_cost(s) for s in splits]


__all__ = ["MULTILINE_COST", "SAMPLES", "SAMPLE_BYTES", "estimate_cost", "estimate_costs", "multiline_share"]
