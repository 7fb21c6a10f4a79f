"""Single-line boilerplate rules: `classify_line(line)` names the rule that marks one (non-code) line as page
chrome, or returns None. The rules (their names and examples are listed in gptkit.data.boilerplate) are general
shapes: metadata fields, breadcrumbs, page navigation, menus, tags, timestamps, SEO titles, spam; the vocabulary
rules (interface terms and counters, notices, promotions, calls to action) come from gptkit.data.chrome_terms.
Rules that need the page around a line (block headings, tables of contents, page titles, context) live in
gptkit.data.boilerplate and gptkit.data.context.
"""

from __future__ import annotations

import re

import numpy as np

from gptkit.data.chrome_en import en_chrome
from gptkit.data.chrome_terms import (
    _CALL_TO_ACTION,
    _CONTACT,
    _DIGIT_RUN,
    _EDIT_LINKS,
    _HAN_RE,
    _LOGIN_PROMPT,
    _NOTICE_EN,
    _PROMO,
    _PROMO_HINT,
    _WORDISH,
    CALL_TO_ACTION_MAX_CHARS,
    NOTICE_MAX_CHARS,
    NOTICE_MAX_START,
    NOTICE_SHORT_CHARS,
    PROMO_MAX_CHARS,
    UI_MAX_CHARS,
    _call_to_action_hint,
    _notice,
    _ui_chrome,
    _ui_sub,
    has_ascii_word,
    is_prose,
)
from gptkit.data.context import STOPWORDS_EN
from gptkit.data.filters import HAN, count_han
from gptkit.data.line_cache import cache_short_lines

# Sentence-final punctuation (Chinese and Western); a line ending in one is prose, not a title or a widget.
SENTENCE_END = '。！？!?…；;．."”’』」:：'

# --- line rules -------------------------------------------------------------------------------------

_DECORATION = " \t#*>=_~|·•●○◆◇■□▶►▸▼▽→←↑↓»«›‹【】[]「」『』<>《》:：-—–"

_IMAGE_FILE = re.compile(
    rf"^(?:[\[【(（]?(?:图片?|图像|配图|image|img|photo|pic|figure)[\]】)）]?\s*[:：]?\s*)?"
    rf"(?:https?://\S+/)?[\w\-.~%@+()（）{HAN}]{{1,120}}\.(?:jpe?g|png|gif|webp|bmp|svg|tiff?|heic|avif)(?:\?\S*)?$",
    re.I,
)
# an image's alt text made from its file name, with the size of the copy shown ("Mine Trail View small",
# "Sunset 1024x768"): WordPress-style thumbnail names
_IMAGE_NAME = re.compile(
    r"^[A-Za-z0-9][\w'’\- ]{0,50}\s(?:small|medium|large|thumb(?:nail)?|scaled|\d{2,4}x\d{2,4})$", re.I
)
_LONE_MEDIA_WORD = re.compile(r"^(?:image|photo|picture|img|图片|图像|配图)$", re.I)  # an image's placeholder text
_MEDIA_PLACEHOLDER = re.compile(
    r"^[\[【(（]\s*(?:图片?|图像|配图|视频|音频|表情|动图|image|img|photo|picture|video|audio|gif|emoji)\s*\d*\s*[\]】)）]$",
    re.I,
)
_BREADCRUMB_PREFIX = re.compile(
    r"^(?:当前位置|您的位置|您现在的位置|你的位置|你现在的位置|所在位置|现在位置|位置|you are here|location)"
    r"\s*[:：]\s*",
    re.I,
)
_BREADCRUMB_SEP = re.compile(r"\s*(?:>>|>|＞|›|»|→|/|\\)\s*")
_STRONG_CRUMB = re.compile(r">|＞|›|»|→")
_CRUMB_CHARS = re.compile(r"[>＞›»→/\\]")
_NAV_ROOTS = re.compile(r"^(?:首页|主页|网站首页|本站首页|home|homepage|main page|main index|index)$", re.I)

_PAGE_TOKEN = (
    r"(?:上一页|下一页|上页|下页|首页|尾页|末页|第\s*\d+\s*页|共\s*\d+\s*页|\d{1,4}|[‹›«»<>]+|…|\.{3}|/"
    r"|prev(?:ious)?|next|first|last|page\s*\d+(?:\s*of\s*\d+)?|\d+\s*/\s*\d+|go|跳转|跳至|到第|页|确定)"
)
_PAGE_NAV = re.compile(rf"^(?:{_PAGE_TOKEN}[\s|,，]*)+$", re.I)
_PAGE_WORD = re.compile(r"上一?页|下一?页|首页|尾页|末页|第\s*\d+\s*页|共\s*\d+\s*页|prev|next|page|/", re.I)
_PAGE_FOOTER = re.compile(r"^[-—–\s]*\d{1,4}[-—–\s]*$|^[(（]\s*\d{1,3}\s*/\s*\d{1,3}\s*[)）]$")

_PREV_NEXT = re.compile(
    r"^(?:上一篇|下一篇|上一章|下一章|前一篇|后一篇|上一条|下一条)\s*[:：]?|"
    r"^(?:previous|next|older|newer)\s+(?:post|article|story|page|chapter|entry|lesson|section)\b\s*[:：]?"
    r"|^(?:previous|prev|next)\s*[:：]\s*\S",
    re.I,
)

_META_FIELD = (
    r"来源|文章来源|新闻来源|稿件来源|出处|责任编辑|编辑|本文编辑|校对|审核|审校|编审|原标题|原文链接|原文地址|本文链接|"
    r"本文地址|浏览次数|阅读量|阅读次数|点击数|点击量|发布时间|发表时间|发布日期|更新时间|更新日期|字号|作者|记者|通讯员|"
    r"供稿|摄影|时间|日期|浏览|阅读|收藏|点赞|评论|回复|人气|主办单位|承办单位|协办单位|技术支持|网站标识码|"
    r"访问量|访问次数|posted\s+by|written\s+by|published(?:\s+on)?|last\s+updated|updated(?:\s+on)?|source|"
    r"editor|edited\s+by|photo\s+credit|image\s+credit|credit|photo|image|picture|"
    r"文档格式|文件格式|格式|文件大小|大小|文档页数|页数|需积分|下载量|下载次数|浏览量|"  # document-sharing file facts
    r"文档编号|上传时间|上传日期|上传者"
)
_DATE = r"(?:\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?)"
_META_START = re.compile(rf"^(?:{_DATE}\s*)?(?:{_META_FIELD})\s*(?:[:：]|(?=\d{{4}}[-/.年]))", re.I)
_META_ANY = re.compile(rf"(?:{_META_FIELD})\s*[:：]", re.I)
_STRONG_META = re.compile(
    r"^(?:来源|文章来源|新闻来源|稿件来源|责任编辑|原标题|原文链接|原文地址|本文链接|本文地址|浏览次数|阅读量|阅读次数|"
    r"点击数|点击量|主办单位|承办单位|网站标识码|posted\s+by|written\s+by|last\s+updated|photo\s+credit|image\s+credit"
    r"|photo|image|picture|credit)",
    re.I,
)
_BYLINE = re.compile(
    r"^(?:(?i:by)\s+[A-Z][\w.'-]+(?:\s+[A-Z][\w.'-]+){0,3}|(?i:posted|written|published|updated)\s+(?i:on|by)\s+.{3,40}?)"
    r"(?:\s*(?:[,|·•/]|\bon\b|\bby\b)\s*.{0,60})?$"
)
_HASHTAGS = re.compile(r"^(?:#[^\s#,，、]+[\s,，、]*){2,}$")  # "#nature #hiking #utah": a tag row
# a comment's (or a quoted post's) attribution alone on a line: "2. dunelight says:", "ckm said:"
_COMMENT_BYLINE = re.compile(
    r"^(?:\d{1,3}[.)]\s+)?([^\s:：,.;!?()]+(?:\s+[^\s:：,.;!?()]+){0,3})\s+(?:says|said|wrote|writes|commented|replied)\s*[:：]$",
    re.I,
)


def _keyword_list(s: str) -> bool:
    """An SEO keyword row: eight or more comma-separated Title Case phrases of one to four words, no sentence."""
    if s.rstrip()[-1] in SENTENCE_END:
        return False
    items = [x.strip() for x in s.split(",") if x.strip()]
    if len(items) < 8 or any(len(x.split()) > 4 for x in items):
        return False
    return sum(x[:1].isupper() for x in items) >= 0.8 * len(items)


def _comment_byline(s: str) -> bool:
    """A name (no stop words: "He said:" opens a quotation) and says / said / wrote, then a colon."""
    m = _COMMENT_BYLINE.match(s)
    return m is not None and not any(w.lower() in STOPWORDS_EN for w in m.group(1).split())


_TAGS = re.compile(
    r"^(?:\w{0,4}(?:关键词|关键字|标签)|tags?|keywords?|分类|类别|栏目|categories|category|topics?)\s*[:：]"
    r"|^(?:filed\s+under|posted\s+in)\b|^(?:tag|category|author|monthly|yearly)?\s*archives?\s*[:：]",
    re.I,
)
_RELATED_LINK = re.compile(
    r"^(?:相关(?:阅读|文章|新闻|链接|推荐)|推荐阅读|延伸阅读|扩展阅读|拓展阅读|往期回顾|猜你喜欢|related|read\s+(?:also|more|next)"
    r"|also\s+read|see\s+also|recommended)\s*[:：]\s*\S",
    re.I,
)
_SEO_SEP = re.compile(
    rf"\s*[_|｜]\s*|\s+[-–—]\s+|(?<=[{HAN}A-Za-z0-9])[-–—](?=[{HAN}])|(?<=[{HAN}])[-–—](?=[A-Za-z0-9])"
)
_SITE_SUFFIX = re.compile(
    r"(?:网|站|吧|百科|博客|论坛|社区|频道|在线|之家|官网|头条|日报|晚报|新闻|文库|知道|问答|资讯|门户)$"
    r"|\.(?:com|cn|net|org)$|(?:news|times|post|blog|wiki|wikipedia|online|magazine)$",
    re.I,
)
_SEO_SEP_CHARS = re.compile(r"[_|｜\-–—]")
_TOKEN_SPLIT = re.compile(r"[\s,，、;；|/]+")
_REPEATED_UNIT = re.compile(r"(\w{1,6}?)\1{4,}")
_STOPWORDS_EN = frozenset("the be to of and that have with a an in is it for on as was are this".split())  # noqa: SIM905


def _strip_decoration(line: str) -> str:
    return line.strip(_DECORATION)


def _is_title_like(line: str) -> bool:
    """Short and without sentence-final punctuation: a headline, a link title, a list entry."""
    s = line.strip()
    if not s:
        return True
    han = len(_HAN_RE.findall(s))
    short = len(s) <= 40 if han * 2 >= len(s) else len(s.split()) <= 15
    return short and s[-1] not in SENTENCE_END


def _breadcrumb(s: str) -> bool:
    """ "当前位置：A > B", "首页 > A > B", or three or more short parts joined by > › » → or a spaced "/"."""
    m = _BREADCRUMB_PREFIX.match(s)
    rest = s[m.end() :] if m else s
    parts = [p for p in _BREADCRUMB_SEP.split(rest) if p]
    if len(parts) < 2 or (not m and len(parts) < 3):
        return False
    if not all(len(p) <= 24 for p in parts[:-1]) or len(parts[-1]) > 80:
        return False
    if m or _NAV_ROOTS.match(parts[0].strip()):
        return True
    # no "you are here" and no home link: only short title-like parts (the last one may be the page title), no
    # prose, no formula (with » › → as separators, brackets are tags such as "[转帖]", not maths)
    formula = "=^{}+*" if any(c in rest for c in "›»→") else "=()（）^{}[]+*"
    return (
        not any(c in rest for c in formula)
        and all(_is_title_like(p) and len(p.split()) <= 4 and len(p) <= 16 for p in parts[:-1])
        and _is_title_like(parts[-1])
        and rest.rstrip()[-1] not in SENTENCE_END
        and (_STRONG_CRUMB.search(rest) is not None or rest.count(" / ") >= 2)
    )


def _spaced_breadcrumb(s: str) -> bool:
    """ "首页 百科知识 标题": a home link, then short section names and the title, joined by spaces."""
    toks = s.split()
    return (
        len(toks) >= 3
        and _NAV_ROOTS.match(toks[0]) is not None
        and all(len(t) <= 8 for t in toks[1:-1])
        and s[-1] not in SENTENCE_END
    )


def _metadata(s: str) -> bool:
    """Field lines ("来源：新华社", "作者：李明 发布时间：2023-09-12"): two or more fields, or one field whose
    value is short and not a sentence. "记者：您认为……？" (an interview) and "时间：……。" are content."""
    if (s.count(":") + s.count("：") >= 2) and len(_META_ANY.findall(s)) >= 2:  # each field ends in a colon
        return True
    m = _META_START.match(s)
    if not m:
        return False
    value = s[m.end() :].strip()
    if _STRONG_META.match(s):  # unless the field is glued to prose (a long value with sentences)
        return len(value) <= 40 or not any(c in value for c in "。！？!?")
    return 0 < len(value) <= 20 and not any(c in value for c in "。！？!?，,；;")


def _table_row(s: str) -> bool:
    """A markdown / text table row: cells between "|", the row opened or closed by one."""
    return s.count("|") + s.count("｜") >= 2 and (s.startswith(("|", "｜")) or s.endswith(("|", "｜")))


def _seo_title(s: str) -> bool:
    if any(c in s for c in "=(){}[]<>") or s.startswith(("|", "｜")) or s.endswith(("|", "｜")):
        return False  # code, formulas, markdown tables
    seps = _SEO_SEP.findall(s)
    strong = sum(1 for x in seps if x.strip() in ("_", "|", "｜"))
    if len(seps) == 1 and strong == 1:  # "标题_某某网": a page title with the site name appended
        head, tail = (p.strip() for p in _SEO_SEP.split(s, maxsplit=1))
        return bool(head) and 0 < len(tail) <= 12 and _SITE_SUFFIX.search(tail) is not None
    if len(seps) < 3 and not (len(seps) >= 2 and strong >= 1):
        return False
    parts = [p.strip() for p in _SEO_SEP.split(s)]
    if any(not p for p in parts) or s.rstrip()[-1] in SENTENCE_END:
        return False
    if strong and not _HAN_RE.search(s) and not any(" " in p for p in parts):
        return False  # snake_case_identifiers
    return len(parts[0]) <= 60 and all(len(p) <= 25 for p in parts[1:])


def _low_variety(s: str) -> bool:
    """At most 40% of the characters are distinct. A long line's code points are sorted with numpy (a set of
    characters makes an object per character). A short line is settled by the lowest bytes of its code points,
    which never have more distinct values than the characters and make a cheap set (small ints); only the few
    lines this cannot settle pay for the set of characters."""
    limit = 0.4 * len(s)
    if len(s) >= 100:
        cp = np.sort(np.frombuffer(s.encode("utf-32-le"), dtype="<u4"))
        return int(np.count_nonzero(cp[1:] != cp[:-1])) + 1 <= limit
    return len(set(s.encode("utf-32-le")[::4])) <= limit and len(set(s)) <= limit


def _spam(s: str, latin: bool) -> bool:
    """A token repeated over most of the line, or one keyword stuffed into it, or a short unit repeated.
    latin: whether s holds a run of three Latin letters."""
    compact = s.replace(" ", "")
    if len(compact) < 8:
        return False
    # repetition leaves few distinct characters (prose keeps about half of them distinct); Latin text has
    # few anyway, so it is always checked, if it has the separators six tokens need
    low_variety = _low_variety(compact)
    if not low_variety and (not latin or sum(map(s.count, " ,，、;；|/")) < 5):
        return False
    tokens = [t for t in _TOKEN_SPLIT.split(s.lower()) if t]
    if len(tokens) >= 6 and len(set(tokens)) <= len(tokens) // 2:
        return True
    if len(tokens) >= 8:
        words = [t for t in tokens if len(t) >= 3 and t.isascii() and t.isalpha() and t not in _STOPWORDS_EN]
        if words and max(words.count(w) for w in set(words)) / len(tokens) >= 0.3:
            return True
    if not low_variety:
        return False
    covered = sum(len(m.group(0)) for m in _REPEATED_UNIT.finditer(s))
    return covered >= 8 and covered >= 0.5 * len(compact)


_LETTER_OR_HAN = re.compile(rf"[A-Za-z{HAN}]")
_SENTENCE_MARK = re.compile(r"[。！？!?；;…，,]|\.\s|\.$")
_ROW_SEP = re.compile(r"\s*[|｜·•]\s*|\s{2,}")
_ROW_SEP_HAN = re.compile(r"\s*[|｜•]\s*|\s{2,}")
_LATIN_TOKEN = re.compile(r"^[A-Z][a-z]*(?:[A-Z][a-z]+)?$|^\d[\d.,]*[kKmM万]?$")
_HAN_ITEM = re.compile(
    rf"^[{HAN}]{{1,5}}$|^[A-Za-z0-9.,+万]{{1,6}}$|^[{HAN}]{{1,4}}[A-Za-z0-9]{{1,4}}$|^[A-Za-z]{{1,6}}[{HAN}]{{1,4}}$"
)
_STOPWORDS_SHORT = frozenset("a an the of to in on for and or with is are was by at from as it this that".split())  # noqa: SIM905


def _nav_row(s: str) -> bool:
    """A row of short menu items: three or more items between | · • or wide gaps; or, with single spaces,
    four or more short Chinese items / three or more capitalised words, one of them an interface word.
    (Chinese prose has no spaces between words; English prose has stop words and lower-case words.)"""
    if _SENTENCE_MARK.search(s) or _table_row(s):
        return False
    # "·" joins foreign names and slogans in Chinese ("让·雅克", "自主·自立·自强"): a separator only in Latin text
    sep = _ROW_SEP_HAN if count_han(s) else _ROW_SEP
    items = [x for x in sep.split(s) if x]
    if (
        len(items) >= 3
        and (any(c in s for c in "|｜•") or (not count_han(s) and "·" in s) or "  " in s)
        and all(len(x.split()) <= 3 and count_han(x) <= 6 and len(x) <= 24 for x in items)
        and sum(bool(_LETTER_OR_HAN.search(x)) for x in items) >= 0.75 * len(items)  # not a row of numbers
    ):
        return True
    items = s.split()
    han_items = len(items) >= 4 and count_han(s) > 0 and all(_HAN_ITEM.match(x) for x in items)
    latin_items = (
        len(items) >= 3
        and all(_LATIN_TOKEN.match(x) for x in items)
        and not any(x.lower() in _STOPWORDS_SHORT for x in items)
    )
    if not (han_items or latin_items):  # the shapes first: they are cheaper than the interface terms
        return False
    n_terms = _ui_sub(s)[1]
    return (han_items and n_terms >= 2) or (latin_items and n_terms >= 1)


_DATE_TIME = re.compile(
    r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?|\d{1,2}\s*月\s*\d{1,2}\s*日"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}"
    r"|\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+\d{4}"
    r"|\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?(?:\s+[A-Z]{2,4}\b)?"
    r"|\d+\s+(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?)\s+ago|\d+\s*(?:秒|分钟|小时|天|周|个月|年)前"
    r"|(?:星期|周)[一二三四五六日天]|(?:mon|tues|wednes|thurs|fri|satur|sun)day",
    re.I,
)
# what every alternative of _DATE_TIME needs: four digits, 月, a colon, 前, 星期 / 周, "ago" or "day" (the one
# character class [\d星周dD] this replaces let 2,299 of the 17,639 short built-in lines through, this 681)
_DATE_TIME_WORDS = re.compile(r"\d\d\d\d|ago|day", re.I)


def _date_time_hint(s: str) -> bool:
    return ":" in s or "月" in s or "前" in s or "周" in s or "星期" in s or _DATE_TIME_WORDS.search(s) is not None


_SENTENCE_END_MARK = re.compile(r"[。！？!?；;]")
_EVENT = re.compile(
    r"(?<![A-Za-z])(?:asked|answered|modified|edited|viewed|posted|updated|published|created|commented|replied|"
    r"at|on|ago|times|by)(?![A-Za-z])|编辑于|发布于|发表于|更新于|修改于|创建于|回复于|提问于|回答于|记者|作者|编辑|通讯员",
    re.I,
)


def _timestamp(s: str) -> bool:
    """A line that is a date or time with at most a verb or two around it ("answered Mar 3, 2019 at 10:12",
    "编辑于 2023-06-02 08:11", "Asked 5 years ago Modified 1 year ago")."""
    if len(s) > 60 or _SENTENCE_END_MARK.search(s) or not _date_time_hint(s) or not _DATE_TIME.search(s):
        return False
    if _SIGNATURE_DATE.match(s):
        return False  # "2016年10月14日" alone: the date an official document is signed, part of its text
    rest = _EVENT.sub(" ", _ui_sub(_DATE_TIME.sub(" ", s))[0])
    letters = len(re.findall(r"[A-Za-z]", rest))
    if _EVENT_ZH.search(s) and _CLOCK.search(s):
        return letters <= 3 and count_han(rest) <= 8  # "马宝清 发表于 2024-11-21 04:56:59": a post's header
    return letters <= 3 and count_han(rest) <= 3  # a two- or three-character name may remain


_SIGNATURE_DATE = re.compile(r"^\s*(?:\d{4}|[〇零一二三四五六七八九○]{4})年\d{1,2}月\d{1,2}日\s*$")
_EVENT_ZH = re.compile("发表于|发布于|编辑于|更新于|回复于")
_CLOCK = re.compile(r"\d{1,2}:\d{2}")


# The characters that a match of each anchored pattern can open with (read off the patterns: with
# re.IGNORECASE only the four _EXOTIC_ASCII characters match an ASCII letter, i, s and k); a line that opens
# with another one skips the pattern. tests/test_fast_paths.py checks each set with hypothesis (strings each
# pattern matches) and classify_line against the unscreened patterns on every line of the corpora.
_EXOTIC_ASCII = "\u0130\u0131\u017f\u212a"  # İ ı ſ and the Kelvin sign
_MEDIA_FIRST = "[【(（iIİıpP图配"  # _MEDIA_PLACEHOLDER, _LONE_MEDIA_WORD
_PAGE_FOOTER_FIRST = "-—–(（"  # or a digit
_PAGE_NAV_FIRST = "上下首尾末第共‹›«»<>….(/pPnNfFlLgG跳到页确"  # or a digit
_NAV_ROOT_FIRST = "首主网本hHmMiIİı"  # _NAV_ROOTS, the first word of a spaced breadcrumb
_PREV_NEXT_FIRST = "上下前后pPnNoO"
_BYLINE_FIRST = "bBpPwWuU"  # _BYLINE, _HANDLE_BYLINE
# _CONTACT's Chinese words; each English one holds three ASCII letters in a row, even with re.I's İ ı ſ K
_CONTACT_ZH = re.compile("客服|热线|电话|咨询|联系|传真")
_LOGIN_FIRST = "pPlLsSſrRyY"  # _LOGIN_PROMPT's English alternatives; the Chinese ones need 登 or 注


@cache_short_lines(1 << 16)
def classify_line(line: str) -> str | None:
    """The rule that marks this (non-code) line as boilerplate, or None. Block headings are handled by
    `clean_lines` (they need the position in the page). Cached for short lines (gptkit.data.line_cache): page
    chrome repeats across pages.

    Cheap tests gate the expensive patterns (every pattern below needs a short line, or a separator, a
    colon, a long digit run, ... that the gate looks for), which keeps the per-line cost low on prose.
    """
    s = line.strip()
    if not s:
        return None
    if not _WORDISH.search(s):
        return None if "|" in s else "symbol-only"
    n = len(s)
    latin = has_ascii_word(s)  # three Latin letters in a row: English rules may apply
    if n <= 300:
        core = _strip_decoration(s) or s
        # the anchored patterns run only on lines that open with a character their matches can open with
        s0, c0 = s[0], core[0]
        if n <= 150 and "." in core and _IMAGE_FILE.match(core):
            return "image-file"
        if (
            n <= 60
            and (s0 in _EXOTIC_ASCII or (s0.isascii() and s0.isalnum()))
            and _IMAGE_NAME.match(s)
            and len(s.split()) <= 6
        ):
            return "image-file"
        if n <= 20 and s0 in _MEDIA_FIRST and (_MEDIA_PLACEHOLDER.match(s) or _LONE_MEDIA_WORD.match(s)):
            return "media-placeholder"
        if n <= 80:
            if (s0 in _PAGE_FOOTER_FIRST or s0.isdecimal()) and _PAGE_FOOTER.match(s) and not s.isdigit():
                return "page-nav"
            if (
                (c0 in _PAGE_NAV_FIRST or c0.isdecimal())
                and _PAGE_NAV.match(core)
                and (_PAGE_WORD.search(core) or len(re.findall(r"\d+", core)) >= 3)
            ):
                return "page-nav"
        if n <= 200 and (
            (_CRUMB_CHARS.search(core) and _breadcrumb(core))
            or ((c0 in _NAV_ROOT_FIRST or c0.isspace()) and _spaced_breadcrumb(core))
        ):
            return "breadcrumb"
        if c0 in _PREV_NEXT_FIRST and _PREV_NEXT.match(core):
            return "prev-next"
        # a long line only counts when it opens with the notice: look at its start only
        m = _notice(s if n <= NOTICE_SHORT_CHARS else s[: NOTICE_MAX_START + 60], latin)
        if m and (n <= NOTICE_SHORT_CHARS or (n <= NOTICE_MAX_CHARS and m.start() <= NOTICE_MAX_START)):
            return "notice"
        # a consent notice that opens with something else ("By providing your information, you agree to our
        # Terms of Use and our Privacy Policy ..."): two or more notice terms in the line
        if latin and n > NOTICE_SHORT_CHARS and ("olicy" in s or "erms" in s) and len(_NOTICE_EN.findall(s)) >= 2:
            return "notice"
        colon = ":" in s or "：" in s
        if n <= 150 and (
            (colon and _metadata(core))
            or (n <= 100 and c0 in _BYLINE_FIRST and (_BYLINE.match(core) or _handle_byline(core)))
        ):
            return "metadata"
        if n <= 200 and (colon or core[0] in "fFpP") and (_TAGS.match(core) or _TAGS.match(s)):  # "标签：", "Tags:"
            return "tags"
        if s[0] == "#" and _HASHTAGS.match(s):
            return "tags"
        if s.count(",") >= 7 and _keyword_list(s):
            return "tags"
        if colon and n <= 60 and _comment_byline(s):
            return "comment-byline"
        if n <= 120 and colon and _RELATED_LINK.match(core):
            return "related-link"
        if n <= 100 and (latin or _CONTACT_ZH.search(s)) and _DIGIT_RUN.search(s):
            m = _CONTACT.search(s)
            if m and (n <= 50 or m.start() <= 4):
                return "contact"
        if n <= PROMO_MAX_CHARS and _PROMO_HINT.search(s) and _PROMO.search(s):
            return "promo"
        if n <= 60 and (c0 in _LOGIN_FIRST or "登" in core or "注" in core) and _LOGIN_PROMPT.match(core):
            return "login-prompt"
        if (
            n <= CALL_TO_ACTION_MAX_CHARS + 40
            and _call_to_action_hint(core)
            and _CALL_TO_ACTION.search(core)
            and (n <= CALL_TO_ACTION_MAX_CHARS or (latin and n <= CALL_TO_ACTION_MAX_CHARS + 40))
        ):
            return "call-to-action"
        if n <= UI_MAX_CHARS and not is_prose(s):
            if core.lower() in _EDIT_LINKS or _ui_chrome(core):
                return "ui-chrome"
            if _nav_row(s):
                return "nav-menu"
        if n <= 60 and _timestamp(s):
            return "timestamp"
        if core[-1] not in SENTENCE_END and _SEO_SEP_CHARS.search(core) and not _table_row(s) and _seo_title(core):
            return "seo-title"
        if latin and not _HAN_RE.search(s):  # English chrome: Latin text without Han characters
            rule = en_chrome(s)
            if rule:
                return rule
    if _spam(s, latin):
        return "spam"
    return None


def _handle_byline(s: str) -> bool:
    """ "by janedoe", "By Jane Doe @janedoe": a byline without capitals or with a handle (no stop words)."""
    m = _HANDLE_BYLINE.fullmatch(s)
    return m is not None and not any(w.lower() in STOPWORDS_EN for w in m.group(1).split())


_HANDLE_BYLINE = re.compile(r"(?i:by)\s+(@?[\w.'-]+(?:\s+@?[\w.'-]+){0,3})")
