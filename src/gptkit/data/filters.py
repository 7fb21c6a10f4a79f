"""Document-level filters: language, length, repetition and quality, with thresholds from published pipelines.

Sources (thresholds are cited where used):
  Gopher   Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
           Appendix A.1.1 (quality filters) and Table A1 (repetition filters).
  FineWeb  Penedo et al. 2024, "The FineWeb Datasets", section 3.3: custom line-level filters.
  CWT      Chen et al. 2023, "ChineseWebText" (EvalWeb preprocessing: min length 200 chars, average line
           length >= 10, Chinese characters >= 30% of the text, 13-character n-gram internal repetition
           <= 50%); https://github.com/CASIA-LM/ChineseWebText preprocess.py.

Where gptkit departs from a published rule it says so next to the rule. The main departures:
  - minimum length: Gopher keeps >= 50 words and CWT >= 200 characters, both tuned for web pages. gptkit's
    defaults are 10 words / 10 characters so that short documents (reviews, answers, posts) survive;
    raise them with --min-words / --min-chars for web crawls.
  - ratios over lines (Gopher bullets and ellipses, FineWeb punctuation and short lines) are only applied
    to documents of at least MIN_LINES_FOR_LINE_RULES lines: over one or two lines they are a yes/no test
    of a single line (a one-line review ending in "……" would be dropped).
  - code lines are left out of the prose statistics (punctuation, word length, language), since code lacks
    sentence punctuation by nature; a document that is mostly code skips the prose rules. Documents that
    are mostly list entries, and Chinese verse, skip the line-shape rules (FineWeb punctuation and short
    lines, CWT mean line length), which target pages of link fragments; list entries are left out of
    FineWeb's two ratios.
  - Gopher's n-gram repetition rules run on documents of >= 150 words (MIN_WORDS_FOR_NGRAM_RULES): below that
    a single repeated sentence exceeds the duplicated-5-gram threshold (Gopher's own minimum length is 50).
  - Gopher's alphabetic-word share leaves out a number followed by a word on its line (a quantity, an ordinal or
    a time: "1/8 tsp", "at 10 a.m."): recipes and schedules are not the tables and symbol soup it targets.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gptkit.data.ngrams import codepoints, ngram_hashes, word_tokens, words

HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_NOT_HAN = re.compile(f"[^{HAN}]+")
_NOT_KANA = re.compile(r"[^\u3040-\u30ff]+")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_NOT_HANGUL = re.compile(r"[^\uac00-\ud7af\u1100-\u11ff]+")
_KANA_OR_HANGUL = re.compile(r"[\u3040-\u30ff\uac00-\ud7af\u1100-\u11ff]")
_NOT_LATIN = re.compile(r"[^A-Za-z]+")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_OTHER_LETTER = re.compile(rf"[^\W\d_A-Za-z{HAN}\u3040-\u30ff\uac00-\ud7af\u1100-\u11ff]")
_NOT_WORD_CHAR = re.compile(rf"[^A-Za-z0-9{HAN}]+")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
_HASHTAG = re.compile(r"#\w")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_BULLET = ("•", "-", "*", "·", "●", "▪", "◦", "‣", "⁃", "○", "■", "□", "►", "▶", "✓", "✔")
# FineWeb counts lines ending in . ! ? " '; the Chinese forms and the ellipsis are the same punctuation.
_LINE_END_PUNCT = tuple(".!?\"'…。！？；”’」』:：)）")
_ELLIPSIS = ("...", "…")
_LIST_ITEM = re.compile(
    r"^\s*(?:[-*+•·●▪◦‣○■□►▶✓✔]|\d{1,3}[.)、．]|[a-zA-Z][.)]|[（(]\d{1,3}[)）]|[一二三四五六七八九十]+、)\s*"
)

GOPHER_STOPWORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])
MIN_LINES_FOR_LINE_RULES = 5
# Gopher's n-gram rules judge a whole page. On a short text one repeated sentence decides them: a 10-word
# sentence said twice covers 20 words with duplicated 5-grams, over the 15% limit below ~133 words (a heading
# echoed in the text, a refrain, a question asked twice). From 150 words only more repetition than that counts.
MIN_WORDS_FOR_NGRAM_RULES = 150


@dataclass(frozen=True)
class FilterConfig:
    lang: str = "auto"  # "zh", "en" or "auto" (per document); documents in other languages are dropped
    min_words: int = 10  # English documents (Gopher: 50)
    min_chars: int = 10  # Chinese documents: CJK + Latin letters + digits (CWT: 200 characters)
    max_damaged_fraction: float = 0.1  # U+FFFD share above which a document counts as mostly damaged
    # Gopher quality filters (Appendix A.1.1)
    gopher_min_mean_word_len: float = 3.0
    gopher_max_mean_word_len: float = 10.0
    gopher_max_symbol_word_ratio: float = 0.1  # hashtags and ellipses per word
    gopher_max_bullet_lines: float = 0.9
    gopher_max_ellipsis_lines: float = 0.3
    gopher_min_alpha_words: float = 0.8
    gopher_min_stopwords: int = 2
    # Gopher repetition filters (Table A1)
    gopher_max_dup_line_frac: float = 0.3
    gopher_max_dup_para_frac: float = 0.3
    gopher_max_dup_line_char_frac: float = 0.2
    gopher_max_dup_para_char_frac: float = 0.2
    gopher_top_ngram_char_frac: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    gopher_dup_ngram_char_frac: tuple[tuple[int, float], ...] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10),
    )  # fmt: skip
    # FineWeb line filters (section 3.3)
    fineweb_min_punct_lines: float = 0.12
    fineweb_max_short_lines: float = 0.67
    fineweb_short_line_chars_en: int = 30
    # 30 Latin characters are 30 UTF-8 bytes; 10 CJK characters are the same 30 bytes and about as many words
    fineweb_short_line_chars_zh: int = 10
    # ChineseWebText (preprocess.py)
    cwt_min_han_frac: float = 0.3
    cwt_min_mean_line_chars: float = 10.0
    cwt_repeat_ngram: int = 13
    cwt_max_repeat_frac: float = 0.5


def _count(not_pattern: re.Pattern, text: str) -> int:
    """Characters of a class, counted by deleting the runs of everything else (faster than findall)."""
    return len(not_pattern.sub("", text))


LONG_TEXT = 400  # from this length on, character classes are counted with numpy over the code points


def _class_intervals(ranges: dict[str, list[tuple[int, int]]]) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Edges for np.searchsorted (interval k is [edges[k - 1], edges[k])) and each class's interval numbers."""
    edges = sorted({x for rs in ranges.values() for r in rs for x in r})
    return np.array(edges, dtype=np.uint32), {c: [edges.index(lo) + 1 for lo, _ in rs] for c, rs in ranges.items()}


_EDGES, _BINS = _class_intervals(
    {
        "space": [(0x09, 0x0E), (0x1C, 0x21), (0x85, 0x86), (0xA0, 0xA1), (0x1680, 0x1681), (0x2000, 0x200B),
                  (0x2028, 0x202A), (0x202F, 0x2030), (0x205F, 0x2060), (0x3000, 0x3001)],  # str.isspace, as \s
        "alnum": [(0x30, 0x3A), (0x41, 0x5B), (0x61, 0x7B)],  # ASCII digits and letters
        "han": [(0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00)],  # HAN
    }
)  # fmt: skip


def _class_table() -> np.ndarray:
    """A class number per BMP code point (0 other, 1 Han, 2 ASCII letter or digit, 3 whitespace), from the
    intervals above; every character beyond the BMP is "other" (all the intervals lie below U+FFFF)."""
    interval = np.searchsorted(_EDGES, np.arange(0x10000, dtype=np.uint32), side="right")
    table = np.zeros(0x10000, dtype=np.uint8)
    for number, name in enumerate(("han", "alnum", "space"), 1):
        table[np.isin(interval, _BINS[name])] = number
    assert int(_EDGES.max()) <= 0xFFFF and table[0xFFFF] == 0
    return table


_CLASS_TABLE = _class_table()


@lru_cache(maxsize=4)  # the language detector and the Chinese filters count the same prose
def _class_counts(text: str) -> tuple[int, int, int]:
    """(Han characters, ASCII letters and digits, whitespace characters) of a long text: a table lookup over its
    code points (those beyond the BMP looked up as U+FFFF, "other") and a bincount."""
    cp = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    _, han, alnum, space = np.bincount(_CLASS_TABLE[np.minimum(cp, 0xFFFF)], minlength=4).tolist()
    return han, alnum, space


def count_han(text: str) -> int:
    if len(text) >= LONG_TEXT:
        return _class_counts(text)[0]  # cached: detect_lang and the Chinese filters count the same prose
    return _count_han_short(text)


# Han characters of a short text from the high bytes of its UTF-16 code units (bytes.translate deletes the others
# in C: about 2x faster than the pattern, whose cost is per run of non-Han characters). Every code unit with a high
# byte 0x34-0x4C, 0x4E-0x9F or 0xF9-0xFA is in HAN; 0x4D is split (U+4D00-4DBF Han, U+4DC0-4DFF not), so a text
# holding one is counted with the pattern; surrogates (0xD8-0xDF: characters beyond the BMP) are never in HAN.
_HAN_HIGH_BYTES = frozenset([*range(0x34, 0x4D), *range(0x4E, 0xA0), 0xF9, 0xFA])
_NOT_HAN_HIGH_BYTES = bytes(b for b in range(256) if b not in _HAN_HIGH_BYTES)
_SPLIT_HIGH_BYTE = 0x4D


@lru_cache(maxsize=1 << 14)  # the line rules and features count the same lines (short texts only: bounded memory)
def _count_han_short(text: str) -> int:
    if text.isascii():
        return 0
    high = text.encode("utf-16-le", "surrogatepass")[1::2]
    if _SPLIT_HIGH_BYTE in high:
        return _count(_NOT_HAN, text)
    return len(high.translate(None, _NOT_HAN_HIGH_BYTES))


def _zh_counts(text: str) -> tuple[int, int, int]:
    """(CJK + ASCII letters and digits, non-space characters, CJK characters) in one pass."""
    if len(text) < LONG_TEXT:
        han = count_han(text)  # word characters are Han + ASCII letters and digits; str.split is faster than \s
        return han + len(_ASCII_ALNUM.findall(text)), len("".join(text.split())), han
    han, alnum, space = _class_counts(text)
    return han + alnum, len(text) - space, han


def detect_lang(text: str) -> str:
    """ "zh", "en" or "other" from character scripts (no model): Chinese when CJK characters are at least as
    many as Latin words (a character is about half a word, so this errs towards Chinese for mixed text);
    Japanese (kana) and Korean (hangul) are "other"; Latin text whose letters are mostly ASCII is "en"
    (other Latin-script languages also land here and usually fail the English stop-word rule)."""
    han = count_han(text)
    if _KANA_OR_HANGUL.search(text):  # one scan rules both out for most text
        kana = _count(_NOT_KANA, text) if _KANA.search(text) else 0
        if kana >= 3 and kana >= 0.1 * (han + kana):
            return "other"
        if _HANGUL.search(text) and _count(_NOT_HANGUL, text) > han:
            return "other"
    if han and 2 * han >= len(text):
        return "zh"  # there cannot be more Latin words than the other half of the characters
    latin_words = len(_LATIN_WORD.findall(text))
    if han and han >= latin_words:
        return "zh"
    if latin_words and _count(_NOT_LATIN, text) >= 2 * len(_OTHER_LETTER.findall(text)):
        return "en"
    return "other"


def _dup_fraction(items: list[str]) -> tuple[float, float]:
    """(fraction of items that repeat an earlier item, fraction of characters in those items)."""
    seen: set[str] = set()
    dup = dup_chars = total_chars = 0
    for it in items:
        total_chars += len(it)
        if it in seen:
            dup += 1
            dup_chars += len(it)
        else:
            seen.add(it)
    if not items:
        return 0.0, 0.0
    return dup / len(items), dup_chars / max(1, total_chars)


def repetition_rule(prose_lines: list[str], cfg: FilterConfig) -> str | None:
    """Gopher's line and paragraph repetition filters (Table A1), on the non-code lines of a document
    before repeated lines are removed: a page that is mostly repetition is dropped whole; one with a few
    repeats keeps its first copies."""
    lines = [ln.strip() for ln in prose_lines if ln.strip()]
    if len(lines) < 2:
        return None
    frac, char_frac = _dup_fraction(lines)
    if frac > cfg.gopher_max_dup_line_frac:
        return "gopher-dup-lines"
    if char_frac > cfg.gopher_max_dup_line_char_frac:
        return "gopher-dup-line-chars"
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split("\n".join(prose_lines)) if p.strip()]
    frac, char_frac = _dup_fraction(paragraphs)
    if frac > cfg.gopher_max_dup_para_frac:
        return "gopher-dup-paragraphs"
    if char_frac > cfg.gopher_max_dup_para_char_frac:
        return "gopher-dup-paragraph-chars"
    return None


def _gopher_ngram_rule(ws: list[str], cfg: FilterConfig) -> str | None:
    """Top n-gram and duplicated n-gram character fractions over words (Gopher Table A1)."""
    lengths = np.fromiter((len(w) for w in ws), dtype=np.int64, count=len(ws))
    total = int(lengths.sum())
    if total == 0:
        return None
    tokens = word_tokens(ws)
    csum = np.concatenate([[0], np.cumsum(lengths)])
    for n, limit in cfg.gopher_top_ngram_char_frac:
        h = ngram_hashes(tokens, n)
        if len(h) == 0:
            continue
        values, first, counts = np.unique(h, return_index=True, return_counts=True)
        top = int(np.argmax(counts))
        if counts[top] > 1:
            i = int(first[top])
            chars = int(csum[i + n] - csum[i]) * int(counts[top])
            if chars / total > limit:
                return f"gopher-top-{n}gram"
    for n, limit in cfg.gopher_dup_ngram_char_frac:
        h = ngram_hashes(tokens, n)
        if len(h) == 0:
            continue
        _, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
        dup_starts = np.flatnonzero(counts[inverse] > 1)
        if len(dup_starts) == 0:
            continue
        covered = np.zeros(len(ws) + 1, dtype=np.int64)  # mark words covered by any repeated n-gram
        np.add.at(covered, dup_starts, 1)
        np.add.at(covered, dup_starts + n, -1)
        mask = np.cumsum(covered)[: len(ws)] > 0
        if int(lengths[mask].sum()) / total > limit:
            return f"gopher-dup-{n}gram"
    return None


def _may_repeat_ngram(t: str, n: int) -> bool:
    """False when no n-gram occurs twice in t (overlapping occurrences count), found without building every
    n-gram; True when one may. Each n-gram window holds a whole "anchor" k-gram starting at a multiple of k
    (k = (n + 1) // 2, as 2k - 1 <= n); if the n-gram at i occurs again at j > i, its anchor occurs again at
    the same offset after j. So if no anchor occurs again after itself, no n-gram repeats. That takes
    len(t) / k lookups (str.find, in C)."""
    k = (n + 1) // 2
    for p in range(0, len(t) - k + 1, k):  # noqa: SIM110 (a loop: 25% faster than any() over a generator)
        if t.find(t[p : p + k], p + 1) >= 0:
            return True
    return False


def cwt_repeat_fraction(text: str, n: int) -> float:
    """ChineseWebText's internal repetition: the share of character n-gram occurrences (whitespace removed,
    lower-cased) whose n-gram occurs more than once in the document."""
    t = "".join(text.lower().split())  # whitespace removed (str.split: the same characters as \s, faster)
    m = len(t) - n + 1
    if m < 2:
        return 0.0
    if m < 400:  # short texts: Python slices beat numpy's per-call overhead
        if not _may_repeat_ngram(t, n):
            return 0.0
        grams = [t[i : i + n] for i in range(m)]
        if len(set(grams)) == m:
            return 0.0
        return sum(c for c in Counter(grams).values() if c > 1) / m
    h = np.sort(ngram_hashes(codepoints(t), n))
    same = h[1:] == h[:-1]
    repeated = np.zeros(m, dtype=bool)  # occurrences of n-grams that occur more than once
    repeated[1:] |= same
    repeated[:-1] |= same
    return float(repeated.sum()) / m


def _truncated(line: str, lang: str) -> bool:
    """A line ending in an ellipsis, as cut link snippets do (Gopher). In Chinese prose "……" closing a sentence is
    punctuation: a line of 20+ Han characters with a comma is a paragraph, not a snippet (People's Daily: an
    article of six paragraphs, two ending in "……", was dropped)."""
    s = line.rstrip()
    if not s.endswith(_ELLIPSIS):
        return False
    return not (lang == "zh" and count_han(s) >= 20 and ("，" in s or "," in s))


def alpha_word_fraction(prose: str) -> float:
    """Gopher's share of words with an alphabetic character, over the words of each line. Departures, both
    for prose that Gopher's rule (aimed at tables, logs and symbol soup) would misjudge:
    - tokens without a letter or digit ("-", "*", "•", "|") are list markers and table rules, not words;
    - a number followed on its line by a word with a letter ("2 lbs", "1/8 tsp", "10-15 min", "3 sprinkle", "at
      10 a.m.") is a quantity, an ordinal or a time in a phrase: it is left out of the count. A number followed
      by another number or ending its line (a table row, a phone number) still counts against the share."""
    alpha = counted = 0
    for line in prose.split("\n"):
        toks = [t for t in line.split() if any(c.isalnum() for c in t)]
        for k, t in enumerate(toks):
            if any(c.isalpha() for c in t):
                alpha += 1
                counted += 1
            elif not (k + 1 < len(toks) and any(c.isalpha() for c in toks[k + 1])):
                counted += 1
    return alpha / counted if counted else 1.0


def _line_rules(lines: list[str], lang: str, cfg: FilterConfig) -> str | None:
    if len(lines) < MIN_LINES_FOR_LINE_RULES:
        return None
    n = len(lines)
    if sum(ln.lstrip().startswith(_BULLET) for ln in lines) / n > cfg.gopher_max_bullet_lines:
        return "gopher-bullets"
    if sum(_truncated(ln, lang) for ln in lines) / n > cfg.gopher_max_ellipsis_lines:
        return "gopher-ellipsis"
    # FineWeb's two line-shape rules target pages of link fragments; list entries ("- 3 ripe bananas") are
    # short and unpunctuated by design, so, like code, they are left out of both ratios
    prose = [ln for ln in lines if not _LIST_ITEM.match(ln)]
    if len(prose) < MIN_LINES_FOR_LINE_RULES:
        return None
    n = len(prose)
    if sum(ln.rstrip().endswith(_LINE_END_PUNCT) for ln in prose) / n < cfg.fineweb_min_punct_lines:
        return "fineweb-punctuation"
    short = cfg.fineweb_short_line_chars_zh if lang == "zh" else cfg.fineweb_short_line_chars_en
    # a list entry longer than a short line (a step, a numbered paragraph) is no link fragment: it counts as a
    # long line, so a page whose paragraphs are list entries is not judged by its headings alone
    n_long_items = sum(len(ln.strip()) > short for ln in lines if _LIST_ITEM.match(ln)) if n < len(lines) else 0
    if sum(len(ln.strip()) <= short for ln in prose) / (n + n_long_items) > cfg.fineweb_max_short_lines:
        return "fineweb-short-lines"
    return None


def is_chinese_verse(lines: list[str]) -> bool:
    """Poems and song lyrics: most lines short and made of Chinese characters only (no digits or Latin).
    They lack line-final punctuation and have short lines by nature, so the line-shape rules (FineWeb
    punctuation and short lines, CWT mean line length), which target link lists, would drop all poetry."""
    if len(lines) < 4:
        return False
    verse = 0
    for ln in lines:
        s = ln.strip()
        if 2 <= len(s) <= 24 and not _ASCII_ALNUM.search(s) and count_han(s) >= 0.7 * len(s.replace(" ", "")):
            verse += 1
    return verse >= 0.6 * len(lines)


def is_mostly_list(lines: list[str]) -> bool:
    """Half or more of the lines are list entries ("- 3 ripe bananas", "1. 先查看洗标"): short and unpunctuated
    by design, so the line-shape rules (FineWeb punctuation and short lines, CWT mean line length), which
    target pages of link fragments, would drop recipes, specifications and checklists."""
    return len(lines) >= 2 and sum(bool(_LIST_ITEM.match(ln)) for ln in lines) >= 0.5 * len(lines)


def _english_prose(line: str) -> bool:
    """A line of English sentences: 10+ words, two of Gopher's stop words, and hardly any Han characters."""
    ws = words(line)
    return len(ws) >= 10 and count_han(line) <= 2 and len(GOPHER_STOPWORDS.intersection(w.lower() for w in ws)) >= 2


def _bilingual(lines: list[str], cfg: FilterConfig) -> bool:
    """A Chinese page with an English translation (or English paragraphs): without its English prose lines,
    Chinese holds the Han share CWT asks for. CWT's rule is for pages whose non-Chinese part is noise."""
    rest = [ln for ln in lines if not _english_prose(ln)]
    if len(rest) == len(lines) or not rest:
        return False
    _, text_chars, han = _zh_counts("\n".join(rest))
    return han >= cfg.cwt_min_han_frac * text_chars


def quality_rule(prose: str, lang: str, cfg: FilterConfig, *, mostly_code: bool = False) -> str | None:
    """The first quality rule the document's prose (its non-code lines) breaks, or None."""
    lines = [ln for ln in prose.split("\n") if ln.strip()]
    if lang == "zh":
        word_chars, text_chars, han = _zh_counts(prose)
        if word_chars < cfg.min_chars:
            return "too-short"
        if mostly_code:
            return None
        if han < cfg.cwt_min_han_frac * text_chars and not _bilingual(lines, cfg):
            return "zh-han-ratio"  # CWT: Chinese characters >= 30%
        if cwt_repeat_fraction(prose, cfg.cwt_repeat_ngram) > cfg.cwt_max_repeat_frac:
            return "zh-repetition"  # CWT: 13-gram internal repetition <= 50%
        if is_chinese_verse(lines):
            return None
        if is_mostly_list(lines):
            return None
        if lines and text_chars / len(lines) < cfg.cwt_min_mean_line_chars:
            return "zh-mean-line-length"  # CWT: average line length >= 10
        return _line_rules(lines, lang, cfg)
    ws = words(prose)
    n_words = len(prose.split())
    if n_words < cfg.min_words:
        return "too-short"
    if mostly_code:
        return None
    mean_len = sum(len(w) for w in ws) / max(1, len(ws))
    if not cfg.gopher_min_mean_word_len <= mean_len <= cfg.gopher_max_mean_word_len:
        return "gopher-word-length"
    # Gopher counts "#" and ellipses; a markdown heading's "#" is structure, so only hashtags count here.
    symbols = len(_HASHTAG.findall(prose)) + prose.count("...") + prose.count("…")
    if symbols / n_words > cfg.gopher_max_symbol_word_ratio:
        return "gopher-symbols"
    if alpha_word_fraction(prose) < cfg.gopher_min_alpha_words:
        return "gopher-alpha"
    if len(GOPHER_STOPWORDS.intersection(ws)) < cfg.gopher_min_stopwords:  # distinct stop words
        return "gopher-stopwords"
    rule = _line_rules(lines, lang, cfg)
    if rule:
        return rule
    if len(ws) >= MIN_WORDS_FOR_NGRAM_RULES:
        return _gopher_ngram_rule(ws, cfg)
    return None
