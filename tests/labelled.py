"""The labelled boilerplate sets (tests/data/boilerplate and its web/ folder): parsing, the design / blind
split by site, and scoring, shared by the tests and benchmarks/clean_eval.py. See
tests/data/boilerplate/README.md for the format and the labelling guideline."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from urllib.parse import urlsplit

from gptkit.data.clean import CleanConfig, clean_document
from gptkit.data.normalize import normalize_text

LABELLED_DIR = Path(__file__).parent / "data" / "boilerplate"
WEB_DIR = LABELLED_DIR / "web"  # real pages (stored public web pages), named SPLIT_LANG_GENRE_SITE.txt

# Kinds of boilerplate lines in the web pages ("B:n|..."), for the per-kind error tables.
BOILERPLATE_KINDS = {
    "n": "navigation",  # menus, breadcrumbs, site names / taglines, "skip to content", tables of contents
    "m": "metadata",  # dates, authors, sources, counters, profile stats, tags, file facts, categories
    "l": "login",  # login / register walls and prompts
    "o": "notice",  # copyright, disclaimers, reposting notes, site-wide banners, publisher front matter
    "c": "comments",  # reader comments and the comment form around them
    "w": "widget",  # buttons, share / download / app prompts, image alt texts, placeholders
    "t": "title-copy",  # a second copy of the title, a title with keywords / the site name joined on
    "d": "decoration",  # lines without a letter, digit or CJK character
    "s": "markup",  # leaked script, JSON, template keys, HTML tags
    "r": "related",  # related / recommended / more-links lists
}
# Registrable-domain suffixes of more than one label, as in the public suffix list, in three parts (a shortened
# list: the full one ships with `tld`, which only the bench extra brings in):
# - a country-code TLD under one of these generic second levels ("net.cn", "co.za", "ac.jp", "gob.mx");
_GENERIC_SECOND_LEVELS = frozenset(
    ("com", "net", "org", "gov", "edu", "ac", "co", "or", "ne", "go", "mil", "gob", "gouv", "sch", "ltd", "plc")
)
# - longer or irregular suffixes among the stored pages' hosts;
_MULTI_SUFFIXES = ("nsw.gov.au", "lib.ok.us")
# - domains whose sub-domains are separate sites: hosting platforms, and US state governments ("ca.gov": its
#   agencies have their own sub-domains; "va.gov" is the Department of Veterans Affairs', not Virginia's).
_US_STATES = (
    "al ak az ar ca co ct de fl ga hi id il in ia ks ky la me md ma mi mn ms mo mt ne nv nh nj nm ny nc nd oh ok or pa "
    "ri sc sd tn tx ut vt wa wv wi wy"  # not "va"
)
_PLATFORMS = (
    "blogspot.com",
    "wordpress.com",
    "wixsite.com",
    "substack.com",
    "pages.dev",
    "github.io",
    "wikia.com",
    "pixnet.net",
    *(f"{state}.gov" for state in _US_STATES.split()),
)


def site_of(url: str) -> str:
    """The site a page belongs to: its registrable domain ("bbs.w10.cn" -> "w10.cn", "www.sina.net.cn" ->
    "sina.net.cn", "dmv.ca.gov" -> "dmv.ca.gov")."""
    host = (urlsplit(url).hostname or "").lower()
    labels = host.split(".")
    for suffix in _PLATFORMS + _MULTI_SUFFIXES:
        if host.endswith("." + suffix):
            return ".".join(labels[-(suffix.count(".") + 2) :])
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-1].isalpha() and labels[-2] in _GENERIC_SECOND_LEVELS:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def is_blind_site(site: str) -> bool:
    """The design / blind split, by site so that no site's template is in both: a fixed hash of the site
    decides (even first byte of BLAKE2b: blind), not a person."""
    return hashlib.blake2b(site.encode(), digest_size=8).digest()[0] % 2 == 0


@dataclass
class Page:
    name: str
    lines: list[str]  # the page as a crawler would extract it
    labels: list[str]  # "C", "B" or "N" per line
    expected: dict[int, str]  # N lines: what they must become
    url: str = ""  # where the page was stored from (web pages)
    kinds: dict[int, str] = field(default_factory=dict)  # boilerplate line index -> kind (web pages)

    @property
    def lang(self) -> str:
        return "zh" if "_zh_" in self.name else "en"


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
    kind_lines: Counter = field(default_factory=Counter)  # boilerplate kind -> lines
    kind_missed: Counter = field(default_factory=Counter)  # boilerplate kind -> lines left in
    shape_chars: Counter = field(default_factory=Counter)  # content line shape -> characters
    shape_lost: Counter = field(default_factory=Counter)  # content line shape -> characters lost
    cause_lost: Counter = field(default_factory=Counter)  # what removed content -> characters lost
    pages: int = 0
    pages_dropped: int = 0  # pages with content that a document rule dropped whole

    def add(self, other: Score) -> None:
        for k in ("boilerplate_lines", "boilerplate_removed", "content_chars", "content_chars_kept", "pages"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.pages_dropped += other.pages_dropped
        self.noisy_lines += other.noisy_lines
        self.noisy_lines_fixed += other.noisy_lines_fixed
        self.missed += other.missed
        self.lost += other.lost
        for k in ("kind_lines", "kind_missed", "shape_chars", "shape_lost", "cause_lost"):
            getattr(self, k).update(getattr(other, k))

    @property
    def removed_fraction(self) -> float:
        return self.boilerplate_removed / max(1, self.boilerplate_lines)

    @property
    def kept_fraction(self) -> float:
        return self.content_chars_kept / max(1, self.content_chars)


def load_pages(prefix: str = "", directory: Path = LABELLED_DIR) -> list[Page]:
    pages = []
    for path in sorted(directory.glob(f"{prefix}*.txt")):
        lines: list[str] = []
        labels: list[str] = []
        expected: dict[int, str] = {}
        kinds: dict[int, str] = {}
        url = ""
        for n, raw in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if not raw:
                continue
            tag, sep, text = raw.partition("|")
            tag, _, kind = tag.partition(":")
            if (
                not sep
                or tag not in ("C", "B", "N", "=", "#")
                or (kind and (tag != "B" or kind not in BOILERPLATE_KINDS))
            ):
                raise ValueError(f"{path}:{n}: a line must start with #|, C|, B|, B:KIND|, N| or =|")
            if tag == "#":
                url = text
                continue
            if tag == "=":
                expected[len(lines) - 1] = text
                continue
            if kind:
                kinds[len(lines)] = BOILERPLATE_KINDS[kind]
            lines.append(text)
            labels.append(tag)
        pages.append(Page(path.stem, lines, labels, expected, url, kinds))
    return pages


def load_web_pages(split: str) -> list[Page]:
    """The stored real pages of one split: "design", "blind" (batch 1's blind half, looked at once, a design
    set since) "blind2" (batch 2: sites in neither earlier set, frozen before the cleaner change it scores; looked at
    once, a design set since), "blind3" (batch 3: sites in none of those; looked at once) or "blind4" (batch 4:
    sites in none of those, frozen before the line model scored it) or "blind5" (batch 5: sites in none of those,
    frozen before RULES_VERSION 7 scored it) or "blind6" (batch 6: sites in none of those, committed before
    any cleaner ran on it) or "blind7" (batch 7: likewise, committed before RULES_VERSION 9) or "blind8" (batch 8:
    sites in none of those, committed before any cleaner ran on it, then scored by RULES_VERSION 9) or "blind9"
    (batch 9: sites in none of those, committed before any cleaner ran on it), and likewise "blind10", "blind11"."""
    return load_pages(f"{split}_", WEB_DIR)


def _matched(a: str, b: str) -> int:
    return sum(m.size for m in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())


def content_shape(line: str) -> str:
    """A content line's shape, for the error tables (a description of the labelled line, not of any rule)."""
    s = line.strip()
    if s.startswith(("|", "｜")) or s.count("|") >= 2:
        return "table-row"
    if s[:2] in ("- ", "* ", "• ", "> ") or (s[:1].isdigit() and s[1:3] in (". ", "、", ") ")) or s[:1] in "⑴⑵⑶(（":
        return "list-item"
    if len(s) <= 30 and s[-1:] not in "。！？!?.…；;":
        return "heading/short"
    return "prose"


def score_page(page: Page, cfg: CleanConfig = CleanConfig()) -> Score:  # noqa: B008
    result = clean_document("\n".join(page.lines), cfg)
    kept = dict(result.kept_lines) if result.text is not None else {}
    line_rule = {i: rule for i, rule, _ in result.dropped_lines}
    norm_lines = result.normalized.split("\n")
    s = Score(pages=1)
    for i, (label, line) in enumerate(zip(page.labels, page.lines, strict=True)):
        out = kept.get(i)
        if label == "B":
            s.boilerplate_lines += 1
            kind = page.kinds.get(i, "unspecified")
            s.kind_lines[kind] += 1
            if out is None or not out.strip():
                s.boilerplate_removed += 1
            else:
                s.kind_missed[kind] += 1
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
        shape = content_shape(line)
        s.shape_chars[shape] += len(target)
        if got < len(target):
            s.shape_lost[shape] += len(target) - got
            cause = f"document: {result.rule}" if result.rule else f"line: {line_rule.get(i, 'in-line edit')}"
            s.cause_lost[cause] += len(target) - got
        if label == "N":
            s.noisy_lines += 1
            s.noisy_lines_fixed += out == target
        if out != target:
            s.lost.append(f"{page.name}: {line!r} -> {out!r}" + (f" [document: {result.rule}]" if result.rule else ""))
    s.pages_dropped = int(result.rule is not None and s.content_chars > 0)
    return s


def score_pages(pages: list[Page], cfg: CleanConfig = CleanConfig()) -> dict[str, Score]:  # noqa: B008
    """Scores per language ("zh", "en") and "all"; page names carry the language after the prefix."""
    scores = {"zh": Score(), "en": Score(), "all": Score()}
    for page in pages:
        s = score_page(page, cfg)
        scores[page.lang].add(s)
        scores["all"].add(s)
    return scores
