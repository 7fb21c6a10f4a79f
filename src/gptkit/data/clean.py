"""Cleaning one document: normalise characters, remove boilerplate lines, then keep or drop the document.

    normalize.normalize_text     encoding damage, mojibake, entities, invisible characters, widths, (t2s)
    boilerplate.clean_lines      site chrome, notices, related blocks, SEO titles, spam; in-line annotations
    filters.repetition_rule      Gopher: pages that are mostly repeated lines / paragraphs are dropped
    (repeated lines)             otherwise repeated lines and titles keep their first copy
    filters.detect_lang          zh / en / other
    filters.quality_rule         length, Gopher quality, FineWeb line rules, ChineseWebText character rules

`clean_document` is a pure function of the text and the config, so it runs the same in a worker process,
a test, or a cluster task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gptkit.data.boilerplate import HEADING_LINES, LineVerdict, apply_line_model, clean_lines
from gptkit.data.context import is_good
from gptkit.data.filters import FilterConfig, detect_lang, quality_rule, repetition_rule
from gptkit.data.normalize import NormalizeStats, normalize_text

RULES_VERSION = 14  # bump when a rule changes, so `prepare` re-runs the cleaning stage on old outputs (13 was
# a reverted change's: skipped, so no output it wrote passes for current)
_BLANK_RUNS = re.compile(r"\n{3,}")
_MARKDOWN_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|>\s*|\d{1,3}[.)]\s+)")  # also "1. ": a numbered copy
MIN_REPEAT_KEY_CHARS = 4  # shorter repeated lines ("是", "否", "谢谢！") can be legitimate
# A repeated line is dropped when it is a paragraph (this long) or repeats one of the page's first lines (a
# title repeated as heading and breadcrumb); shorter repeats further down are refrains and list entries.
REPEAT_PARAGRAPH_CHARS = 20
REPEAT_TITLE_LINES = 3
HEAD_COPY_LINES = 8  # near-copies of the title are looked for among the page's first lines only
NEAR_COPY_MIN_CHARS = 8
NEAR_COPY_MIN_SHARE = 0.6


@dataclass(frozen=True)
class CleanConfig:
    filters: FilterConfig = field(default_factory=FilterConfig)
    t2s: bool = False
    line_model: str | None = "builtin"  # gptkit.data.line_model: a model file, "builtin", or None (rules alone)


@dataclass
class CleanResult:
    text: str | None  # the cleaned document, or None when it was dropped
    lang: str
    rule: str | None  # why the document was dropped (None: kept)
    kept_lines: list[tuple[int, str]]  # (line index in the normalised text, cleaned line)
    dropped_lines: list[tuple[int, str, str]]  # (line index, rule, line)
    normalized: str  # the text after character normalisation (line indices refer to it)
    stats: NormalizeStats


def _repeat_key(line: str) -> str:
    """Lines count as repeats when equal up to spacing, markdown markers and trailing punctuation."""
    m = _MARKDOWN_PREFIX.match(line)
    key = line[m.end() :] if m else line
    return " ".join(key.split()).rstrip("。.！!？?：:").lower()


_TEASER_LABEL = re.compile(r"^\s*(?:摘要|导读|简介|内容简介|summary|excerpt)\s*[:：]\s*", re.I)
_ELLIPSIS_END = re.compile(r"(?:…+|\.{3,})\s*$")
TEASER_MIN_CHARS = 20


def _teaser_copies(texts: list[str], is_code: list[bool]) -> set[int]:
    """Positions of teasers: a line cut off with an ellipsis whose text (after a "摘要:" label) opens a later
    line of the page, the paragraph it was cut from (spaces ignored)."""
    out: set[int] = set()
    compact: list[str] | None = None  # the lines without spaces, made once for the page when a teaser needs them
    for n, t in enumerate(texts):
        if is_code[n] or not t.rstrip().endswith(("…", "...")):  # = _ELLIPSIS_END.search(t)
            continue
        stem = "".join(_ELLIPSIS_END.sub("", _TEASER_LABEL.sub("", t)).split())
        if len(stem) < TEASER_MIN_CHARS:
            continue
        stem = stem[:60]
        if compact is None:
            compact = ["".join(u.split()) for u in texts]
        if any(u.startswith(stem) for u in compact[n + 1 :]):
            out.add(n)
    return out


def _near_copy(key: str, earlier: list[str]) -> bool:
    """A head line that repeats the start of an earlier head line, a little shorter ("标题" after "标题(2019修订)",
    "X" after "X.docx"): the title again without what was joined on. A line that an earlier one only ends with
    ("What is Python?" after a contents entry "1What is Python?") is the body's own heading and stays."""
    if len(key) < NEAR_COPY_MIN_CHARS:
        return False
    return any(e != key and e.startswith(key) and len(key) >= NEAR_COPY_MIN_SHARE * len(e) for e in earlier)


def clean_document(text: str, cfg: CleanConfig = CleanConfig()) -> CleanResult:
    fc = cfg.filters
    normalized, stats = normalize_text(text, t2s=cfg.t2s)
    if stats.replacement_chars > fc.max_damaged_fraction * max(1, len(text)):
        return CleanResult(None, "other", "encoding-damage", [], [], normalized, stats)
    lines = normalized.split("\n")
    rules = clean_lines(lines)
    if cfg.line_model is None:
        return _paragraphs_if_dropped(_judge_document(lines, rules, normalized, stats, fc), lines, rules, fc)
    model = apply_line_model(lines, list(rules), cfg.line_model)  # a verdict it leaves is the same object
    res = _judge_document(lines, model, normalized, stats, fc)
    if res.text is None and any(a is not b for a, b in zip(model, rules, strict=True)):
        # the line model's verdicts must never make a document fail a rule it passes with the rules' verdicts
        alone = _judge_document(lines, rules, normalized, stats, fc)
        if alone.text is not None:
            return alone
    return _paragraphs_if_dropped(res, lines, model, fc)


# The document rules that the lines around a page's paragraphs can make it fail (repetition, line shapes, word
# statistics); a page too short, in another language or without content is not given a second look.
NO_SECOND_LOOK = frozenset({"too-short", "language", "no-content", "encoding-damage"})
PARAGRAPHS_ONLY = "paragraphs-only:"  # the reason of a line dropped by the second look: + the document rule


def _paragraphs_if_dropped(
    res: CleanResult, lines: list[str], verdicts: list[LineVerdict], fc: FilterConfig
) -> CleanResult:
    """A page must never be dropped for its boilerplate: when a document rule drops a page, the rule judges
    the page once more on its paragraphs alone (jusText's good paragraphs, each with the kept lines at most
    HEADING_LINES above it: its headings), the chrome the line rules and the model missed left out. If those
    pass, the page is kept as them, every other line dropped as "paragraphs-only:<rule>"; otherwise, or when
    the page is only paragraphs already, it stays dropped by the rule."""
    if res.text is not None or res.rule in NO_SECOND_LOOK:
        return res
    judged = [k for k, v in enumerate(verdicts) if not v.rule and not v.code and v.text.strip()]
    good = [is_good(verdicts[k].text) for k in judged]
    if not any(good) or all(good):
        return res
    for ahead in (HEADING_LINES, 0):  # with their headings, else the paragraphs alone
        out = list(verdicts)
        for pos, k in enumerate(judged):
            if not good[pos] and not any(good[pos + 1 : pos + 1 + ahead]):
                out[k] = LineVerdict(k, lines[k], PARAGRAPHS_ONLY + res.rule)
        second = _judge_document(lines, out, res.normalized, res.stats, fc)
        if second.text is not None:
            return second
    return res


def _judge_one_line(v: LineVerdict, normalized: str, stats: NormalizeStats, fc: FilterConfig) -> CleanResult:
    """_judge_lines([v], ...) without its lists (the same result: tests/test_fast_paths.py)."""
    if v.rule:
        return CleanResult(None, "other", "no-content", [], [(v.index, v.rule, v.text)], normalized, stats)
    if not v.text.strip():
        return CleanResult(None, "other", "no-content", [], [], normalized, stats)
    kept = [(v.index, v.text)]
    prose_text = "" if v.code else v.text
    lang = detect_lang(prose_text if prose_text.strip() else v.text)
    if lang == "other" or (fc.lang != "auto" and lang != fc.lang):
        return CleanResult(None, lang, "language", kept, [], normalized, stats)
    rule = quality_rule(prose_text, lang, fc, mostly_code=v.code)
    if rule:
        return CleanResult(None, lang, rule, kept, [], normalized, stats)
    return CleanResult(v.text.strip("\n"), lang, None, kept, [], normalized, stats)


def _judge_document(
    lines: list[str], verdicts: list[LineVerdict], normalized: str, stats: NormalizeStats, fc: FilterConfig
) -> CleanResult:
    """The document rules on a document whose lines have been judged (`verdicts`, one per line)."""
    if len(verdicts) == 1:  # a one-line document (most of a review set): the same steps without the lists
        return _judge_one_line(verdicts[0], normalized, stats, fc)
    return _judge_lines(verdicts, normalized, stats, fc)


def _judge_lines(verdicts: list[LineVerdict], normalized: str, stats: NormalizeStats, fc: FilterConfig) -> CleanResult:
    """_judge_document for any number of lines."""

    def dropped(rule: str, lang: str, kept: list, lines_dropped: list) -> CleanResult:
        return CleanResult(None, lang, rule, kept, lines_dropped, normalized, stats)

    dropped_lines = [(v.index, v.rule, v.text) for v in verdicts if v.rule]
    kept_v = [v for v in verdicts if not v.rule]
    kept = [(v.index, v.text) for v in kept_v]
    if not any(t.strip() for _, t in kept):
        return dropped("no-content", "other", [], dropped_lines)

    is_code = [v.code for v in kept_v]
    prose = [t for (_, t), c in zip(kept, is_code, strict=True) if not c]
    prose_text = "\n".join(prose)
    lang = detect_lang(prose_text if prose_text.strip() else "\n".join(t for _, t in kept))
    if lang == "other" or (fc.lang != "auto" and lang != fc.lang):
        return dropped("language", lang, kept, dropped_lines)
    if len(kept) == 1:  # one line (a review, a post): nothing can repeat
        rule = quality_rule(prose_text, lang, fc, mostly_code=is_code[0])
        if rule:
            return dropped(rule, lang, kept, dropped_lines)
        return CleanResult(kept[0][1].strip("\n"), lang, None, kept, dropped_lines, normalized, stats)
    # 1. a title repeated further down (as heading, breadcrumb, caption) is chrome: drop the copies
    # 2. then Gopher's repetition rule: a page that is still mostly repeated lines is dropped whole
    # 3. otherwise repeated paragraphs keep their first copy; short repeats further down are refrains
    #    and list entries and stay (code repeats lines legitimately and is never touched)
    keys = [_repeat_key(t) if not c else "" for (_, t), c in zip(kept, is_code, strict=True)]
    titles = []
    for key, (_, t) in zip(keys, kept, strict=True):
        if t.strip():
            titles.append(key)
        if len(titles) == REPEAT_TITLE_LINES:
            break
    teasers = _teaser_copies([t for _, t in kept], is_code)
    titles_seen: set[str] = set()
    first: list[tuple[int, str, bool, str]] = []
    head: list[str] = []  # keys of the first HEAD_COPY_LINES non-empty lines, for near-copies of the title
    for n, (key, (i, t), c) in enumerate(zip(keys, kept, is_code, strict=True)):
        if n in teasers:
            dropped_lines.append((i, "teaser-copy", t))
            continue
        if len(key) >= MIN_REPEAT_KEY_CHARS and key in titles:
            if key in titles_seen:
                dropped_lines.append((i, "repeated-line", t))
                continue
            titles_seen.add(key)
        if key and len(head) < HEAD_COPY_LINES:
            if _near_copy(key, head):
                dropped_lines.append((i, "title-copy", t))
                continue
            head.append(key)
        first.append((i, t, c, key))
    rule = repetition_rule([t for _, t, c, _ in first if not c], fc)
    if rule:
        return dropped(rule, lang, [(i, t) for i, t, _, _ in first], dropped_lines)
    seen: set[str] = set()
    deduped: list[tuple[int, str, bool]] = []
    for i, t, c, key in first:
        if len(key) >= REPEAT_PARAGRAPH_CHARS:
            if key in seen:
                dropped_lines.append((i, "repeated-line", t))
                continue
            seen.add(key)
        deduped.append((i, t, c))
    kept = [(i, t) for i, t, _ in deduped]

    n_code = sum(c for _, _, c in deduped)
    n_nonblank = sum(1 for _, t in kept if t.strip()) or 1
    prose_text = "\n".join(t for _, t, c in deduped if not c)
    rule = quality_rule(prose_text, lang, fc, mostly_code=n_code >= 0.5 * n_nonblank)
    if rule:
        return dropped(rule, lang, kept, dropped_lines)
    out = _BLANK_RUNS.sub("\n\n", "\n".join(t for _, t in kept)).strip("\n")
    dropped_lines.sort()
    return CleanResult(out, lang, None, kept, dropped_lines, normalized, stats)
