"""Cheap, page-relative features of a page's lines, for the learned line classifier (gptkit.data.line_model).

`page_features(lines, rules, code)` -> (rows, X): `rows` the indices of the judged lines (not blank, not code),
X a float32 array (len(rows), N_FEATURES), one row per judged line, columns named by FEATURE_NAMES:

    own shape      length (log), shares of Han / Latin / digit / punctuation / symbol characters, sentence end,
                   colon end, ellipsis end, function-word density (Chinese: 的 了 是 在 和 …; English: stop words),
                   title-case words, URL, separators (| _ > · /), list-item prefix, a date, a bracket start
    jusText        is_good (a paragraph), headline_like
    page           repeats of the line in the page, similarity to the page's main body (share of the line's Han
                   bigrams / content words found in the page's other paragraphs), position (relative, chars
                   before), before the first / after the last paragraph, lines to the nearest paragraph, page size
                   and paragraph share, page language, the first line the rules keep (where the title is)
    rules          the rule verdicts of gptkit.data.boilerplate (any rule, a single-line rule, a page-context rule,
                   a block rule) on the line and on its neighbours
    neighbours     the previous and next judged line's length, paragraph class and rule verdict (jusText's context)

Every feature is a function of the page alone (no corpus counts), so a page scores the same wherever it is.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from gptkit.data.context import _LIST_ITEM, _WORD, FUNCTION_CHARS_ZH, STOPWORDS_EN, _features, headline_like, is_good
from gptkit.data.filters import HAN, count_han

_FUNCTION_CHAR = re.compile("[" + "".join(sorted(FUNCTION_CHARS_ZH)) + "]")
_LATIN = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[，。！？；：、,.!?;:\"'“”‘’（）()]")
_WORDISH = re.compile(rf"[\sA-Za-z0-9{HAN}]")
_URL = re.compile(r"https?://|www\.|\.com\b|\.cn\b|@[A-Za-z0-9-]+\.", re.I)
_SEPARATOR = re.compile(r"[|｜_>»›·•/\\]| - ")
_DATE = re.compile(r"\d{4}\s*[-/.年]\s*\d{1,2}|\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?|\d{1,2}:\d{2}")
_TITLE_WORD = re.compile(r"\b[A-Z][a-z]")
_SENTENCE_END = tuple('。！？!?.；;”"』」')
_BRACKET_START = tuple("【[(（《<")

# Rule families (the rule names of gptkit.data.boilerplate): a single-line rule, a page-context rule, a block rule.
CONTEXT_RULES = frozenset({"page-head", "head-off-topic", "off-topic-block", "context"})
BLOCK_RULES = frozenset({"related-block", "toc", "page-title"})

_OWN = (
    "log_chars",
    "han_share",
    "latin_share",
    "digit_share",
    "punct_share",
    "symbol_share",
    "sentence_end",
    "colon_end",
    "ellipsis_end",
    "function_density",
    "title_words",
    "url",
    "separators",
    "list_item",
    "date",
    "bracket_start",
    "good",
    "headline",
    "rule_any",
    "rule_line",
    "rule_context",
    "rule_block",
)
_PAGE = (
    "repeats",
    "body_similarity",
    "no_body",
    "position",
    "chars_before",
    "before_first_good",
    "after_last_good",
    "lines_to_good",
    "page_lines",
    "page_good_share",
    "page_zh",
    "first_line",
    "first_kept",
)
_NEIGHBOUR = ("log_chars", "good", "rule_any", "sentence_end")
FEATURE_NAMES: tuple[str, ...] = (
    _OWN
    + _PAGE
    + tuple(f"prev_{n}" for n in _NEIGHBOUR)
    + tuple(f"next_{n}" for n in _NEIGHBOUR)
    + ("window_rule_share",)
)
N_FEATURES = len(FEATURE_NAMES)
_N_OWN = len(_OWN)
_NEIGHBOUR_COLS = [_OWN.index(n) for n in _NEIGHBOUR]
WINDOW = 2  # window_rule_share: share of rule-dropped lines among the WINDOW judged lines on each side


def _own_features(line: str, rule: str | None) -> list[float]:
    s = line.strip()
    n = len(s)
    visible = len(s.replace(" ", "")) or 1
    han = count_han(s)
    latin = len(_LATIN.findall(s))
    digits = len(_DIGIT.findall(s))
    punct = len(_PUNCT.findall(s))
    symbols = n - len(_WORDISH.findall(s)) - punct
    if han * 2 >= visible:
        density = len(_FUNCTION_CHAR.findall(s)) / max(1, han)
        title = 0.0
    else:
        words = _WORD.findall(s)
        density = sum(w.lower() in STOPWORDS_EN for w in words) / max(1, len(words))
        title = len(_TITLE_WORD.findall(s)) / max(1, len(words))
    return [
        math.log1p(n),
        han / visible,
        latin / visible,
        digits / visible,
        punct / visible,
        max(0, symbols) / visible,
        float(s.endswith(_SENTENCE_END)),
        float(s.endswith((":", "："))),
        float(s.endswith(("…", "..."))),
        density,
        title,
        float(_URL.search(s) is not None),
        math.log1p(len(_SEPARATOR.findall(s))),
        float(_LIST_ITEM.match(line) is not None),
        float(_DATE.search(s) is not None),
        float(s.startswith(_BRACKET_START)),
        float(is_good(s)),
        float(headline_like(s)),
        float(rule is not None),
        float(rule is not None and rule not in CONTEXT_RULES and rule not in BLOCK_RULES),
        float(rule in CONTEXT_RULES),
        float(rule in BLOCK_RULES),
    ]


def _repeat_key(line: str) -> str:
    return " ".join(line.split()).lower()


def page_features(lines: list[str], rules: list[str | None], code: list[bool]) -> tuple[list[int], np.ndarray]:
    """The judged lines' indices and their features (module docstring). `rules[i]`: the rule that dropped line i
    (None: kept), `code[i]`: line i is code (never judged)."""
    rows = [i for i, t in enumerate(lines) if not code[i] and t.strip()]
    m = len(rows)
    x = np.zeros((m, N_FEATURES), dtype=np.float32)
    if not m:
        return rows, x
    texts = [lines[i] for i in rows]
    own = np.array([_own_features(t, rules[i]) for t, i in zip(texts, rows, strict=True)], dtype=np.float32)
    x[:, :_N_OWN] = own
    good = own[:, _OWN.index("good")] > 0
    sizes = np.array([len(t.strip()) for t in texts], dtype=np.float64)
    keys = [_repeat_key(t) for t in texts]
    counts = Counter(keys)
    zh = count_han("".join(texts)) * 2 >= int(sizes.sum())
    # similarity to the main body: the share of the line's features found in the page's other paragraphs
    feats = [_features(t) for t in texts]
    body: Counter = Counter()
    for f, g in zip(feats, good, strict=True):
        if g:
            body.update(f)
    sim = np.zeros(m, dtype=np.float32)
    for p, f in enumerate(feats):
        if f:
            own_good = 1 if good[p] else 0
            sim[p] = sum(1 for k in f if body[k] - own_good > 0) / len(f)
    good_idx = np.flatnonzero(good)
    pos = np.arange(m, dtype=np.float64)
    col = _N_OWN
    x[:, col] = np.log1p([counts[k] - 1 for k in keys])
    x[:, col + 1] = sim
    x[:, col + 2] = float(good_idx.size == 0)
    x[:, col + 3] = pos / max(1, m - 1)
    x[:, col + 4] = (np.cumsum(sizes) - sizes) / max(1.0, sizes.sum())
    if good_idx.size:
        x[:, col + 5] = pos < good_idx[0]
        x[:, col + 6] = pos > good_idx[-1]
        dist = np.abs(pos[:, None] - good_idx[None, :]).min(axis=1)
        x[:, col + 7] = np.log1p(dist)
    else:
        x[:, col + 7] = math.log1p(m)
    x[:, col + 8] = math.log1p(m)
    x[:, col + 9] = good_idx.size / m
    x[:, col + 10] = float(zh)
    x[0, col + 11] = 1.0
    first_kept = next((p for p, i in enumerate(rows) if rules[i] is None), None)
    if first_kept is not None:
        x[first_kept, col + 12] = 1.0  # where the title usually is
    col += len(_PAGE)
    neigh = own[:, _NEIGHBOUR_COLS]
    k = len(_NEIGHBOUR)
    x[1:, col : col + k] = neigh[:-1]
    x[:-1, col + k : col + 2 * k] = neigh[1:]
    dropped = own[:, _OWN.index("rule_any")].astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(dropped)])
    lo = np.clip(pos - WINDOW, 0, m).astype(int)
    hi = np.clip(pos + WINDOW + 1, 0, m).astype(int)
    n_window = hi - lo - 1
    x[:, col + 2 * k] = np.where(n_window > 0, (csum[hi] - csum[lo] - dropped) / np.maximum(1, n_window), 0.0)
    return rows, x
