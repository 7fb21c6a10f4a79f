"""The labelled boilerplate set (tests/data/boilerplate): parsing and scoring, shared by the test and the
benchmark. See tests/data/boilerplate/README.md for the format."""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

from gptkit.data.clean import CleanConfig, clean_document
from gptkit.data.normalize import normalize_text

LABELLED_DIR = Path(__file__).parent / "data" / "boilerplate"


@dataclass
class Page:
    name: str
    lines: list[str]  # the page as a crawler would extract it
    labels: list[str]  # "C", "B" or "N" per line
    expected: dict[int, str]  # N lines: what they must become


@dataclass
class Score:
    boilerplate_lines: int = 0
    boilerplate_removed: int = 0
    content_chars: int = 0
    content_chars_kept: int = 0
    noisy_lines: int = 0
    noisy_lines_fixed: int = 0
    missed: list[str] = field(default_factory=list)  # "page: line" for boilerplate left in
    lost: list[str] = field(default_factory=list)  # "page: line" for content lost or damaged

    def add(self, other: Score) -> None:
        for k in ("boilerplate_lines", "boilerplate_removed", "content_chars", "content_chars_kept"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.noisy_lines += other.noisy_lines
        self.noisy_lines_fixed += other.noisy_lines_fixed
        self.missed += other.missed
        self.lost += other.lost

    @property
    def removed_fraction(self) -> float:
        return self.boilerplate_removed / max(1, self.boilerplate_lines)

    @property
    def kept_fraction(self) -> float:
        return self.content_chars_kept / max(1, self.content_chars)


def load_pages(prefix: str = "") -> list[Page]:
    pages = []
    for path in sorted(LABELLED_DIR.glob(f"{prefix}*.txt")):
        lines: list[str] = []
        labels: list[str] = []
        expected: dict[int, str] = {}
        for n, raw in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if not raw:
                continue
            tag, sep, text = raw.partition("|")
            if not sep or tag not in ("C", "B", "N", "="):
                raise ValueError(f"{path}:{n}: a line must start with C|, B|, N| or =|")
            if tag == "=":
                expected[len(lines) - 1] = text
                continue
            lines.append(text)
            labels.append(tag)
        pages.append(Page(path.stem, lines, labels, expected))
    return pages


def _matched(a: str, b: str) -> int:
    return sum(m.size for m in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())


def score_page(page: Page, cfg: CleanConfig = CleanConfig()) -> Score:  # noqa: B008
    result = clean_document("\n".join(page.lines), cfg)
    kept = dict(result.kept_lines) if result.text is not None else {}
    norm_lines = result.normalized.split("\n")
    s = Score()
    for i, (label, line) in enumerate(zip(page.labels, page.lines, strict=True)):
        out = kept.get(i)
        if label == "B":
            s.boilerplate_lines += 1
            if out is None or not out.strip():
                s.boilerplate_removed += 1
            else:
                s.missed.append(f"{page.name}: {line}")
            continue
        target = page.expected[i] if label == "N" else normalize_text(line)[0]
        if label == "C" and not target.strip():
            continue
        if label == "C" and i < len(norm_lines):
            target = norm_lines[i]
        got = _matched(target, out) if out is not None else 0
        s.content_chars += len(target)
        s.content_chars_kept += got
        if label == "N":
            s.noisy_lines += 1
            s.noisy_lines_fixed += out == target
        if out != target:
            s.lost.append(f"{page.name}: {line!r} -> {out!r}" + (f" [document: {result.rule}]" if result.rule else ""))
    return s


def score_pages(pages: list[Page], cfg: CleanConfig = CleanConfig()) -> dict[str, Score]:  # noqa: B008
    """Scores per language ("zh", "en") and "all"; page names carry the language after the prefix."""
    scores = {"zh": Score(), "en": Score(), "all": Score()}
    for page in pages:
        s = score_page(page, cfg)
        lang = "zh" if "_zh_" in page.name else "en"
        scores[lang].add(s)
        scores["all"].add(s)
    return scores
