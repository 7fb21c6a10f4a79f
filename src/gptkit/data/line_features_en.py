"""Features of the lines of an English page, for the English part of the line model (gptkit.data.line_model).

`english_features(texts, good, first_kept, zh)` -> one row of EN_FEATURE_NAMES per judged line (texts: the
judged lines in order; good: jusText's paragraph class of each; first_kept: the index of the first line the
rules keep, -1 when none; zh: the page is Chinese, and then every row is zeros, so the Chinese part of the model
never sees them). Shallow, page-relative shapes of the kind jusText and boilerpipe use:

    menu_run        the run of short, unpunctuated, mostly title-case lines the line sits in (log1p of its length;
                    0 for a line of another shape): menus and tag clouds come as such runs, headings alone
    caps_share      the share of the line's words in capitals (2+ letters): "HOME", "SHARE", "READ MORE"
    title_overlap   the share of the line's content words found in the page's title (its first kept line): an
                    echoed title, a breadcrumb ending in it
    next_overlap    the share of its content words found in the next paragraph at most 3 lines below: a heading
                    announces what follows, chrome does not
    chrome_run      the run of consecutive non-paragraph lines around the line (log1p of its length): a heading
                    sits alone between paragraphs, a sidebar or footer is a long run
    words_per_seg   words per segment when the line is split at separators (| · • / »), 2+ spaces and tabs,
                    log1p: a row of links has many short segments
    digit_words     the share of its words that are numbers (dates, counts, prices of widgets)
"""

from __future__ import annotations

import math
import re

from gptkit.data.context import _WORD, STOPWORDS_EN

EN_FEATURE_NAMES: tuple[str, ...] = (
    "menu_run",
    "caps_share",
    "title_overlap",
    "next_overlap",
    "chrome_run",
    "words_per_seg",
    "digit_words",
)
N_EN = len(EN_FEATURE_NAMES)

PREFIX_CHARS = 160  # as gptkit.data.line_features: shapes are measured on a line's prefix
MENU_CHARS = 40  # a menu entry's line is at most this long
NEXT_LINES = 3
_TOKEN = re.compile(r"\S+")
_SEGMENT = re.compile(r"\s*(?:[|｜·•»›/\\]|\s{2,}|\t)\s*")
_END = tuple(".!?:;,")


def _content_words(s: str) -> set[str]:
    return {w for w in (x.lower() for x in _WORD.findall(s)) if len(w) >= 3 and w not in STOPWORDS_EN}


def _menu_like(s: str, words: list[str]) -> bool:
    """Short, no sentence punctuation at its end, and at least half of its words capitalised."""
    if not words or len(s) > MENU_CHARS or s.endswith(_END):
        return False
    return sum(w[0].isupper() for w in words) * 2 >= len(words)


def _runs(flags: list[bool]) -> list[int]:
    """Per position, the length of the run of True it sits in (0 where False)."""
    out = [0] * len(flags)
    p = 0
    while p < len(flags):
        if not flags[p]:
            p += 1
            continue
        q = p
        while q < len(flags) and flags[q]:
            q += 1
        out[p:q] = [q - p] * (q - p)
        p = q
    return out


def english_features(texts: list[str], good: list[bool], first_kept: int, zh: bool) -> list[list[float]]:
    """One row of EN_FEATURE_NAMES per line of `texts` (module docstring)."""
    m = len(texts)
    if zh:
        return [[0.0] * N_EN for _ in range(m)]
    prefixes = [t.strip()[:PREFIX_CHARS] for t in texts]
    words = [_WORD.findall(s) for s in prefixes]
    content = [_content_words(s) for s in prefixes]
    title = content[first_kept] if first_kept >= 0 else set()
    menu = _runs([_menu_like(s, w) for s, w in zip(prefixes, words, strict=True)])
    chrome = _runs([not g for g in good])
    out = []
    for p in range(m):
        s, w, c = prefixes[p], words[p], content[p]
        n_words = max(1, len(w))
        caps = sum(len(x) >= 2 and x.isupper() for x in w) / n_words
        title_overlap = len(c & title) / len(c) if c and p != first_kept else 0.0
        nxt = next((q for q in range(p + 1, min(m, p + 1 + NEXT_LINES)) if good[q]), None)
        next_overlap = len(c & content[nxt]) / len(c) if c and nxt is not None else 0.0
        segments = [x for x in _SEGMENT.split(s) if x]
        per_seg = len(w) / max(1, len(segments))
        tokens = _TOKEN.findall(s)
        digits = sum(any(ch.isdigit() for ch in t) for t in tokens) / max(1, len(tokens))
        out.append(
            [
                math.log1p(menu[p]),
                caps,
                title_overlap,
                next_overlap,
                math.log1p(chrome[p]),
                math.log1p(per_seg),
                digits,
            ]
        )
    return out
