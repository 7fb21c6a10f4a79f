"""Context-sensitive line classes (after jusText): what a line is depends on the lines around it.

Each line gets a class from shallow features (boilerpipe / jusText): its length in words or Han characters,
its share of function words (English stop words; for Chinese the function characters 的 了 是 在 和 …, which play
the stop-word role), and clause punctuation:

    good    a paragraph: English >= GOOD_MIN_WORDS words with stop-word share >= GOOD_MIN_STOPWORDS; Chinese
            >= GOOD_MIN_HAN Han characters with clause punctuation and function-character share >=
            GOOD_MIN_FUNCTION_CHARS
    other   everything else (titles, headings, list items, menu entries, counters, profile fields)

The page head is where site chrome gathers: everything above the first good paragraph. There a line is
chrome-shaped when a line rule dropped it, or when it is neither one of the HEADING_RUN lines just above the
first good paragraph (a title, a subtitle, a section heading; lines a rule dropped between them are stepped
over) nor shaped like a headline (`headline_like`:
enough words or Han characters, mostly letters, few digits). A block of HEAD_BLOCK_MIN or more chrome-shaped
lines in a row is chrome: its lines are dropped as `page-head` (profile fields "积分" "主题" "85814", document
fields "发文机构:" "县政府网站", counters). A lone short line stays: it may be a heading or a section number.
A page without a good paragraph is left alone: there is no main body to measure the head against. Above those
kept heading lines, the lines before the first one that shares a word with the page's paragraphs are site
names and taglines (`head_offtopic_drops`, similarity to the main body), dropped as `head-off-topic`.

The page body (after jusText's context rule for short paragraphs): one or two short lines that are neither
paragraphs nor shaped like a headline, with a line a rule dropped on each side, take their neighbours' class
and go as `context` ("注册时间" between a profile counter and a date; a lone "Close window" between two
notices). List items and markdown headings stay (an ingredient between two dropped lines is still an
ingredient), and so does a line whose next kept line is a paragraph (a title between a breadcrumb and a byline).

Tables of contents without a heading the rules know: a run of two or more short entries near the top whose
entries each come back further down, in order, as the body's own headings (`toc_echo_drops`, similarity to
the main body); the entries go as `toc` and the headings stay. A refrain repeated as a block does not count:
a table of contents' headings come back one by one with text between them.

The page tail: a block of related-article entries after the last good paragraph (titles and cut snippets of
other pages) is found by its similarity to the main body (`offtopic_tail`) and dropped as `off-topic-block`.
"""

from __future__ import annotations

import operator
import re

from gptkit.data.filters import count_han
from gptkit.data.line_cache import cache_short_lines

# jusText's English thresholds (length_low 70 chars ~ 10 words, stopwords_high 0.32 / low 0.30), relaxed a
# little for lines cut from extracted text; Chinese: a clause-punctuated sentence of 20+ Han characters.
GOOD_MIN_WORDS = 10
GOOD_MIN_STOPWORDS = 0.25
GOOD_MIN_HAN = 20
GOOD_MIN_FUNCTION_CHARS = 0.04
HEADING_RUN = 2
OFFTOPIC_MIN_LINES = 4
OFFTOPIC_MAX_SIMILARITY = 0.2
HEAD_OFFTOPIC_MIN_GOOD = 2
HEAD_BLOCK_MIN = 3  # a lone short line in the head may be a heading or a section number; three in a row are chrome
HEADLINE_MIN_HAN = 6
HEADLINE_MIN_WORDS = 3
CONTEXT_MAX_RUN = 2  # jusText's short paragraphs: a longer run between two dropped lines may be a real list
TOC_MIN_ENTRIES = 2
TOC_MAX_ENTRY_CHARS = 100
TOC_FUZZY_MIN = 0.6  # share of features an entry and a heading have in common (entries are often reworded)

FUNCTION_CHARS_ZH = frozenset(
    "的了是在和有我你他她它们这那就也都不而与及或被把从对为以所之其于着过让给向很还又但并则即"
)
STOPWORDS_EN = frozenset(
    """a about above after again all also am an and any are as at be because been before being between both but by
    can could did do does doing down during each few for from further had has have having he her here hers him his
    how i if in into is it its just me more most my no nor not now of off on once only or other our out over own
    same she should so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_FUNCTION_CHAR = re.compile("[" + "".join(sorted(FUNCTION_CHARS_ZH)) + "]")  # findall counts 10x faster than a loop
_NOT_HAN_BASIC = re.compile(r"[^\u4e00-\u9fff]+")  # the Han of the body features: the basic block only
_CLAUSE = re.compile(r"[，。！？；,.!?;]")
_DIGITS = re.compile(r"\d")


@cache_short_lines(1 << 14)  # the context rules and the line features ask about the same lines
def is_good(line: str) -> bool:
    """A paragraph of prose (see the module docstring)."""
    s = line.strip()
    han = count_han(s)
    if han * 2 >= len(s.replace(" ", "")):  # mostly Chinese
        if han < GOOD_MIN_HAN or not _CLAUSE.search(s):
            return False
        return len(_FUNCTION_CHAR.findall(s)) >= GOOD_MIN_FUNCTION_CHARS * han
    words = _WORD.findall(s)
    if len(words) < GOOD_MIN_WORDS:
        return False
    return sum(w.lower() in STOPWORDS_EN for w in words) >= GOOD_MIN_STOPWORDS * len(words)


@cache_short_lines(1 << 14)
def headline_like(line: str) -> bool:
    """Shaped like a headline or a sentence: enough Han characters or words, mostly letters, few digits."""
    s = line.strip()
    visible = len(s.replace(" ", "")) or 1
    han = count_han(s)
    digits = len(_DIGITS.findall(s))
    if digits > 0.3 * visible:
        return False
    if han >= HEADLINE_MIN_HAN and han >= 0.4 * visible:
        return True
    words = [w for w in _WORD.findall(s) if len(w) >= 2]
    return len(words) >= HEADLINE_MIN_WORDS and sum(map(len, words)) >= 0.6 * visible


def head_drops(texts: list[str | None], dropped: list[bool]) -> list[int]:
    """Indices of head lines to drop. `texts`: the page's lines (None: code); `dropped[i]`: a line rule already
    dropped line i. Blank lines are skipped."""
    first_good = next(
        (i for i, t in enumerate(texts) if t is not None and not dropped[i] and t.strip() and is_good(t)), None
    )
    if first_good is None:
        return []
    keep = _heading_lines(texts, dropped, first_good)
    # runs of chrome-shaped lines: lines a rule dropped, and lines not shaped like a headline
    out: list[int] = []
    block: list[int] = []
    for j in [*range(first_good), first_good]:
        t = texts[j]
        if j < first_good and t is not None and not t.strip():
            continue
        chrome = j < first_good and t is not None and (dropped[j] or (j not in keep and not headline_like(t)))
        if chrome:
            block.append(j)
            continue
        if len(block) >= HEAD_BLOCK_MIN:
            out += [k for k in block if not dropped[k]]
        block = []
    return out


def _heading_lines(texts: list[str | None], dropped: list[bool], first_good: int) -> set[int]:
    """The HEADING_RUN kept lines right above the first paragraph: its title, subtitle or section heading."""
    keep: set[int] = set()
    i, run = first_good - 1, 0
    while i >= 0 and run < HEADING_RUN:
        t = texts[i]
        if t is None:
            break
        if t.strip() and not dropped[i]:  # lines a rule dropped (a hatnote, a byline) are stepped over
            if not _WORD.search(t) and not count_han(t):
                break  # digits or symbols only: a counter, not a heading
            keep.add(i)
            run += 1
        i -= 1
    return keep


_NUMBERED = re.compile(
    r"\d|第[一二三四五六七八九十百千零〇两]+[章节卷回话部篇集]"
    r"|(?<![A-Za-z])(?i:chapter|part|volume|book|section|episode|prologue|epilogue|one|two|three|four|five|six"
    r"|seven|eight|nine|ten)(?![A-Za-z])"
)


def head_offtopic_drops(texts: list[str | None], dropped: list[bool]) -> list[int]:
    """Site names and taglines at the very top: the kept lines before the first one that shares a word (or a
    Han bigram) with the page's paragraphs, above the lines `_heading_lines` keeps. The page's own text begins
    with its title, which shares the body's vocabulary; "CHAKRAPANI GAUTAM" or "Travel, Adventure, and
    Everything Along the Way!" do not. A numbered heading ("Chapter One", "第一章") begins the page's own text
    too: fiction titles share no words with the chapter. Needs HEAD_OFFTOPIC_MIN_GOOD paragraphs to know the
    body's words."""
    kept = [i for i, t in enumerate(texts) if t is not None and not dropped[i] and t.strip()]
    first_good = next((i for i in kept if is_good(texts[i])), None)  # type: ignore[arg-type]
    if first_good is None:
        return []
    protected = _heading_lines(texts, dropped, first_good)
    prefix = []
    for i in kept:
        if i >= first_good or i in protected:
            break
        prefix.append(i)
    if not prefix:
        return []  # the usual page: nothing above its title (cheap: no features computed)
    good = [i for i in kept if i >= first_good and is_good(texts[i])]  # type: ignore[arg-type]
    if len(good) < HEAD_OFFTOPIC_MIN_GOOD:
        return []
    body = _Body([texts[i] for i in good])  # type: ignore[misc]
    out = []
    for i in prefix:
        f = _features(texts[i])  # type: ignore[arg-type]
        if body.shared(f) or _NUMBERED.search(texts[i]):  # type: ignore[arg-type]
            break  # the page's own text has begun (a numbered heading: "Chapter One", "第一卷 第一话 …")
        if f:
            out.append(i)
    return out


def _han_basic(line: str) -> str:
    """The line's Han characters (basic block) joined: its bigrams are taken across gaps."""
    return _NOT_HAN_BASIC.sub("", line)


def _content_words(line: str) -> list[str]:
    """The line's lower-case content words (3+ letters, not stop words)."""
    return [w for w in (x.lower() for x in _WORD.findall(line)) if len(w) >= 3 and w not in STOPWORDS_EN]


def _features(line: str) -> set[str]:
    """Han character bigrams and lower-case content words (3+ letters, not stop words) of a line."""
    han = _han_basic(line)
    feats = set(map(operator.add, han, han[1:]))
    feats.update(_content_words(line))
    return feats


class _Body:
    """The features of a page's paragraphs, for "how many of a line's features does the body have": the
    paragraphs' Han characters joined by newlines (a bigram is a substring of it exactly when it is a bigram of
    one paragraph) and their content words joined by spaces, a space at each end (likewise for " word "), so
    that no set of every bigram of every paragraph is built (the same counts as the set of their _features)."""

    def __init__(self, lines: list[str]) -> None:
        self.han = "\n".join(map(_han_basic, lines))
        self.words = " " + " ".join(w for line in lines for w in _content_words(line)) + " "

    def shared(self, feats: set[str]) -> int:
        """len(feats & union of the paragraphs' _features): a feature is a bigram (2 characters) or a word (3+)."""
        return sum((f in self.han) if len(f) == 2 else (f" {f} " in self.words) for f in feats)


def _cut_snippet(line: str) -> bool:
    """A snippet cut off mid-sentence: it ends in an ellipsis, or is long and ends without punctuation."""
    s = line.strip()
    return s.endswith(("…", "...")) or (len(s) > 40 and s[-1] not in "。！？!?.；;，,”\"')）)")


def _tail_shaped(line: str) -> bool:
    """A related-article entry: a title (short, no sentence end) or a snippet cut off ("…", "...")."""
    s = line.strip()
    return s.endswith(("…", "...")) or (len(s) <= 60 and s[-1] not in "。！？!?.；;")


def offtopic_tail(texts: list[str | None], dropped: list[bool]) -> list[int]:
    """Indices of an off-topic block at the end of the page: OFFTOPIC_MIN_LINES or more kept lines after the last
    good paragraph, all shaped like related-article entries (titles, cut snippets; a third or more of them cut
    snippets), whose words barely occur
    in the page's good paragraphs (median share of a line's features found there < OFFTOPIC_MAX_SIMILARITY).
    A page's own closing lines (a conclusion, a list of steps) share its vocabulary and stay."""
    kept = [i for i, t in enumerate(texts) if t is not None and not dropped[i] and t.strip()]

    def paragraph(i: int) -> bool:
        return is_good(texts[i]) and not texts[i].rstrip().endswith(("…", "..."))

    block: list[int] = []  # from the end back to the last paragraph: only the tail is judged (it is cheap)
    for i in reversed(kept):
        if paragraph(i):
            break
        if not _tail_shaped(texts[i]):
            return []
        block.append(i)
    else:
        return []  # no paragraph at all
    block.reverse()
    if len(block) < OFFTOPIC_MIN_LINES:
        return []
    good = [i for i in kept if i < block[0] and paragraph(i)]
    if 3 * sum(_cut_snippet(texts[i]) for i in block) < len(block):
        return []  # titles alone may be the page's own list (facts, steps): a related block has cut snippets
    body = _Body([texts[i] for i in good])  # type: ignore[misc]
    sims = sorted(body.shared(f) / len(f) for f in (_features(texts[i]) for i in block) if f)
    if not sims or sims[len(sims) // 2] >= OFFTOPIC_MAX_SIMILARITY:
        return []
    return block


_LIST_ITEM = re.compile(r"^\s*(?:#{1,6}\s|[-*+•·▪●○◦]\s|\d{1,3}[.)、]|[(（]\d{1,3}[)）]|[a-zA-Z][.)]\s)")


def context_drops(texts: list[str | None], dropped: list[bool]) -> list[int]:
    """Indices of short chrome-shaped lines between two dropped lines (see the module docstring)."""
    idx = [i for i, t in enumerate(texts) if t is None or t.strip()]  # code lines are neighbours that are kept
    out: list[int] = []
    for p in range(1, len(idx) - 1):
        # a run starts right after a dropped line and ends right before one, CONTEXT_MAX_RUN lines at most
        if not dropped[idx[p - 1]] or texts[idx[p - 1]] is None or dropped[idx[p]] or texts[idx[p]] is None:
            continue
        q = next((r for r in range(p, min(p + CONTEXT_MAX_RUN, len(idx) - 1)) if dropped[idx[r + 1]]), None)
        if q is None or texts[idx[q + 1]] is None:
            continue
        run = idx[p : q + 1]
        if any(texts[i] is None or not _context_candidate(texts[i]) for i in run):
            continue
        # the next kept line after the run (stepping over dropped ones): a paragraph there makes it a heading
        nxt = next((idx[r] for r in range(q + 1, len(idx)) if not dropped[idx[r]]), None)
        if nxt is not None and texts[nxt] is not None and is_good(texts[nxt]):
            continue
        out += run
    return out


def _context_candidate(line: str) -> bool:
    return not _LIST_ITEM.match(line) and not headline_like(line) and not is_good(line)


_TOC_ENTRY_PREFIX = re.compile(r"^(?:[\s\-*•·▪\d.、)）]+|o\s+)+")


def _toc_key(line: str) -> str:
    return " ".join(_TOC_ENTRY_PREFIX.sub("", line).lower().split()).rstrip(" ?？!！.。:：")


def toc_echo_drops(texts: list[str | None], dropped: list[bool]) -> list[int]:
    """Indices of table-of-contents entries that come back further down as headings (module docstring)."""
    idx = [i for i, t in enumerate(texts) if t is not None and not dropped[i] and t.strip()]
    if len(idx) < 2 * TOC_MIN_ENTRIES + 1:
        return []
    short = [len(texts[i].strip()) <= TOC_MAX_ENTRY_CHARS for i in idx]
    keys = [_toc_key(texts[i]) if sh else "" for i, sh in zip(idx, short, strict=True)]
    where: dict[str, list[int]] = {}
    for p, k in enumerate(keys):
        if len(k) >= 3:
            where.setdefault(k, []).append(p)
    feats: dict[int, set[str]] = {}

    def features(p: int) -> set[str]:
        if p not in feats:
            feats[p] = _features(keys[p])
        return feats[p]

    def echo(p: int) -> int | None:
        """The first later line that repeats entry p (same key, or most of its features)."""
        later = [q for q in where.get(keys[p], ()) if q > p]
        if later:
            return later[0]
        f = features(p)
        if len(f) < 3:
            return None
        for q in range(p + 1, len(idx)):
            if short[q] and keys[q]:
                g = features(q)
                if len(f & g) >= TOC_FUZZY_MIN * len(f | g):
                    return q
        return None

    half = len(idx) // 2  # a table of contents is near the top
    # a run holds at least one entry repeated exactly further down: the fuzzy test only grows runs from there
    seeds = [p for p in range(half) if len(keys[p]) >= 3 and any(q > p for q in where[keys[p]])]
    out: list[int] = []
    done = -1
    for seed in seeds:
        if seed <= done:
            continue
        lo = seed
        while lo > done + 1 and short[lo - 1] and len(keys[lo - 1]) >= 3 and echo(lo - 1) is not None:
            lo -= 1
        run, targets = [], []
        q = lo
        while q < half and short[q] and len(keys[q]) >= 3 and (e := echo(q)) is not None:
            if targets and e < targets[-1] + 2:
                break  # the headings must come back one by one, with text between them
            run.append(q)
            targets.append(e)
            q += 1
        done = max(q - 1, seed)
        if len(run) >= TOC_MIN_ENTRIES and targets[0] > run[-1]:
            out += [idx[r] for r in run]
    return out


__all__ = [
    "FUNCTION_CHARS_ZH",
    "STOPWORDS_EN",
    "context_drops",
    "head_drops",
    "head_offtopic_drops",
    "headline_like",
    "is_good",
    "offtopic_tail",
    "toc_echo_drops",
]
