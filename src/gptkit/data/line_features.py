"""Cheap, page-relative features of a page's lines, for the learned line classifier (gptkit.data.line_model).

`page_features(lines, rules, code)` -> (rows, X): `rows` the indices of the judged lines (not blank, not code),
X a float32 array (len(rows), N_FEATURES), one row per judged line, columns named by FEATURE_NAMES:

    own shape      length (log), shares of Han / Latin / digit / punctuation / symbol characters, sentence end,
                   colon end, ellipsis end, function-word density (Chinese: 的 了 是 在 和 …; English: stop words),
                   title-case words, URL, separators (| _ > · /), list-item prefix, a date, a bracket start
    jusText        is_good (a paragraph), headline_like
    page           repeats of the line in the page, similarity to the page's main body (share of the line's Han
                   bigrams / content words found in the page's paragraphs; 1 for a paragraph), position (relative, chars
                   before), before the first / after the last paragraph, lines to the nearest paragraph, page size
                   and paragraph share, page language, the first line the rules keep (where the title is)
    rules          the rule verdicts of gptkit.data.boilerplate (any rule, a single-line rule, a page-context rule,
                   a block rule) on the line and on its neighbours
    neighbours     the previous and next judged line's length, paragraph class and rule verdict (jusText's context)

Every feature is a function of the page alone (no corpus counts), so a page scores the same wherever it is.
"""

from __future__ import annotations

import math
import operator
import re
from bisect import bisect_left
from collections import Counter
from functools import cache

import numpy as np

from gptkit.data.context import _LIST_ITEM, _WORD, FUNCTION_CHARS_ZH, STOPWORDS_EN, headline_like, is_good
from gptkit.data.filters import _NOT_HAN, HAN, _count, count_han

# Character classes are counted by deleting the runs of everything else (gptkit.data.filters._count: the same
# count as len(findall) of the one-character class, without building a list)
_NOT_FUNCTION_CHAR = re.compile("[^" + "".join(sorted(FUNCTION_CHARS_ZH)) + "]+")
_LATIN = re.compile(r"[A-Za-z]")
_NOT_LATIN = re.compile(r"[^A-Za-z]+")
_NOT_HAN_BASIC = re.compile(r"[^\u4e00-\u9fff]+")  # the Han of the body features: the basic block only
_NOT_DIGIT = re.compile(r"\D+")
_NOT_PUNCT = re.compile(r"[^，。！？；：、,.!?;:\"'“”‘’（）()]+")
_NOT_WORDISH = re.compile(rf"[^\sA-Za-z0-9{HAN}]+")
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


# Shares and classes are measured on a line's first PREFIX_CHARS characters (its length on all of it): a long
# paragraph's prefix says as much, and it bounds the cost per line (cleaning is most of `prepare`'s time).
PREFIX_CHARS = 160


# The character classes of _own_features, in the order of _class_counts' columns. Each is the complement of
# the pattern that deletes everything else, so both ways count the same characters.
_CLASS_COMPLEMENTS = (_NOT_HAN, _NOT_LATIN, _NOT_DIGIT, _NOT_PUNCT, _NOT_WORDISH, _NOT_FUNCTION_CHAR)
_N_CLASSES = len(_CLASS_COMPLEMENTS)


@cache
def _class_table() -> tuple[np.ndarray, np.ndarray]:
    """(a uint8 per BMP code point: bit k set when the character is in class k; (2**classes, classes) int64
    of each bit pattern's bits). Built from the patterns themselves (each deletes its run of others), once."""
    bmp = "".join(map(chr, range(0x10000)))
    table = np.zeros(0x10000, dtype=np.uint8)
    for k, not_class in enumerate(_CLASS_COMPLEMENTS):
        inside = np.ones(0x10000, dtype=bool)
        for m in not_class.finditer(bmp):
            inside[m.start() : m.end()] = False
        table[inside] |= 1 << k
    bits = (np.arange(1 << _N_CLASSES)[:, None] >> np.arange(_N_CLASSES)[None, :]) & 1
    return table, bits.astype(np.int64)


def _class_counts(prefixes: list[str]) -> list[list[int]] | None:
    """Per prefix, its characters in each class of _CLASS_COMPLEMENTS, for a whole page at once (one table
    lookup and one bincount instead of six pattern scans per line); None when a prefix holds a character
    beyond the BMP (rare: _own_features then counts with the patterns)."""
    cp = np.frombuffer("".join(prefixes).encode("utf-32-le", "surrogatepass"), dtype="<u4")
    if cp.size == 0 or int(cp.max()) > 0xFFFF:
        return None
    table, bits = _class_table()
    row = np.repeat(np.arange(len(prefixes), dtype=np.int64), [len(p) for p in prefixes])
    patterns = np.bincount(row << _N_CLASSES | table[cp], minlength=len(prefixes) << _N_CLASSES)
    return (patterns.reshape(len(prefixes), 1 << _N_CLASSES) @ bits).tolist()


def _own_features(line: str, rule: str | None, counts: list[int] | None = None) -> list[float]:
    """`counts`: the prefix's characters per class of _CLASS_COMPLEMENTS (_class_counts), or None: counted here."""
    full = line.strip()
    n = len(full)
    s = full[:PREFIX_CHARS]
    visible = len(s.replace(" ", "")) or 1
    if counts is None:
        han = count_han(s)
        latin = _count(_NOT_LATIN, s)
        digits = _count(_NOT_DIGIT, s)
        punct = _count(_NOT_PUNCT, s)
        wordish = _count(_NOT_WORDISH, s)
    else:
        han, latin, digits, punct, wordish, function = counts
    symbols = len(s) - wordish - punct
    if han * 2 >= visible:
        density = (_count(_NOT_FUNCTION_CHAR, s) if counts is None else function) / max(1, han)
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
        float(full.endswith(_SENTENCE_END)),
        float(full.endswith((":", "："))),
        float(full.endswith(("…", "..."))),
        density,
        title,
        float(("." in s or ":" in s) and _URL.search(s) is not None),  # each alternative needs a "." or ":"
        math.log1p(len(_SEPARATOR.findall(s))),
        float(_LIST_ITEM.match(line[:PREFIX_CHARS]) is not None),
        float(digits > 0 and _DATE.search(s) is not None),  # each alternative needs a digit (\d)
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


def _body_han(line: str) -> str:
    """The Han characters (basic block) of a line's prefix, joined: its bigrams are taken across gaps, as
    gptkit.data.context's."""
    return _NOT_HAN_BASIC.sub("", line.strip()[:PREFIX_CHARS])


def _body_words(line: str) -> list[str]:
    """The lower-case content words of a line's prefix (3+ letters, not a stop word)."""
    s = line.strip()[:PREFIX_CHARS]
    if not _LATIN.search(s):
        return []
    return [w for w in (x.lower() for x in _WORD.findall(s)) if len(w) >= 3 and w not in STOPWORDS_EN]


def _body_features(line: str) -> set[str]:
    """Han character bigrams and content words of a line's prefix."""
    han = _body_han(line)
    return set(map(operator.add, han, han[1:])).union(_body_words(line))


def _body_similarity(line: str, body_han: str, body_words: str) -> float:
    """The share of the line's features found in the body: `body_han` the paragraphs' _body_han joined by
    newlines (a Han bigram is a substring of it exactly when it is a bigram of one paragraph), `body_words`
    their _body_words joined by spaces, with a space at each end (likewise for " word ")."""
    f = _body_features(line)
    if not f:
        return 0.0
    # a feature is a Han bigram (two characters) or a word (3+ characters)
    found = sum((b in body_han) if len(b) == 2 else f" {b} " in body_words for b in f)
    return found / len(f)


_GOOD, _RULE_ANY = _OWN.index("good"), _OWN.index("rule_any")


def page_features(lines: list[str], rules: list[str | None], code: list[bool]) -> tuple[list[int], np.ndarray]:
    """The judged lines' indices and their features (module docstring). `rules[i]`: the rule that dropped line i
    (None: kept), `code[i]`: line i is code (never judged). Plain Python per page: a page has a handful of
    lines, where numpy's cost per call would dominate."""
    rows = [i for i, t in enumerate(lines) if not code[i] and t.strip()]
    m = len(rows)
    if not m:
        return rows, np.zeros((0, N_FEATURES), dtype=np.float32)
    texts = [lines[i] for i in rows]
    counts = _class_counts([t.strip()[:PREFIX_CHARS] for t in texts]) or [None] * m
    own = [_own_features(t, rules[i], c) for t, i, c in zip(texts, rows, counts, strict=True)]
    good = [f[_GOOD] > 0 for f in own]
    good_idx = [p for p in range(m) if good[p]]
    sizes = [len(t.strip()) for t in texts]
    total = sum(sizes)
    keys = [_repeat_key(t) for t in texts]
    counts = Counter(keys)
    zh = float(count_han("".join(texts)) * 2 >= total)
    # similarity to the main body: the share of the line's features (of its prefix) found in the page's
    # paragraphs; a paragraph is the body (1)
    sim = [1.0] * m
    if len(good_idx) < m:
        body_han = "\n".join(_body_han(texts[p]) for p in good_idx)
        body_words = " " + " ".join(w for p in good_idx for w in _body_words(texts[p])) + " "
        for p in range(m):
            if not good[p]:
                sim[p] = _body_similarity(texts[p], body_han, body_words)
    first_kept = next((p for p, i in enumerate(rows) if rules[i] is None), -1)
    log_m, good_share, no_body = math.log1p(m), len(good_idx) / m, float(not good_idx)
    dropped = [f[_RULE_ANY] for f in own]
    blank = [0.0] * len(_NEIGHBOUR)
    out = []
    before = 0
    for p in range(m):
        if good_idx:
            k = bisect_left(good_idx, p)  # the nearest paragraphs are good_idx[k - 1] and good_idx[k]
            dist = min(p - good_idx[k - 1] if k else m, good_idx[k] - p if k < len(good_idx) else m)
            first_good, last_good = float(p < good_idx[0]), float(p > good_idx[-1])
        else:
            dist, first_good, last_good = m, 0.0, 0.0
        lo, hi = max(0, p - WINDOW), min(m, p + WINDOW + 1)
        n_window = hi - lo - 1
        window = (sum(dropped[lo:hi]) - dropped[p]) / n_window if n_window > 0 else 0.0
        prev = [own[p - 1][c] for c in _NEIGHBOUR_COLS] if p > 0 else blank
        nxt = [own[p + 1][c] for c in _NEIGHBOUR_COLS] if p + 1 < m else blank
        page = [
            math.log1p(counts[keys[p]] - 1),
            sim[p],
            no_body,
            p / max(1, m - 1),
            before / max(1, total),
            first_good,
            last_good,
            math.log1p(dist),
            log_m,
            good_share,
            zh,
            float(p == 0),
            float(p == first_kept),  # where the title usually is
        ]
        out.append(own[p] + page + prev + nxt + [window])
        before += sizes[p]
    return rows, np.array(out, dtype=np.float32)
