"""Line-level removal of web boilerplate, Chinese and English, keeping headings, lists, formulas and code.

`clean_lines(lines)` judges every line of a normalised document and returns the kept lines (with in-line
noise removed) and the dropped lines with the rule that dropped each. The rules are general shapes of page
chrome, not lists of sites:

  code                  lines in ``` fences, indented blocks, or shaped like code are never judged
  image-file            an image file name or image URL alone on a line ("IMG_2031.JPG")
  media-placeholder     "[图片]", "(视频)", "[image]"
  breadcrumb            "当前位置：首页 > 新闻 > 正文", "Home > News > World"
  page-nav              "上一页 1 2 3 下一页", "Page 2 of 5", "第3页/共12页", "- 12 -"
  prev-next             "上一篇：……", "Next post: ...", "Next: ..."
  login-prompt          "登录后可查看", "Sign in to comment"
  call-to-action        "喜欢就点个赞吧", "点击关注……", "Pin it for later", "Did you make this recipe?"
  contact / promo       "客服热线：400-…", "Customer service: 1-800-…"; "下载客户端…", "访问 m.example.com"
  nav-menu              a row of short menu items ("World | Business | Tech", "关注问题 写回答 邀请回答 分享")
  timestamp             a date / time with a verb or two ("answered Mar 3, 2019 at 10:12", "编辑于 2023-06-02")
  ui-chrome             a line made (almost) only of interface words and counters: share / login / follow /
                        customer-service widgets, buttons ("查看更多", "Read more"), comment prompts and
                        counters ("评论(0)", "12 comments"), footer link rows ("关于我们 | 联系我们")
  notice                copyright, disclaimer, reposting and document-sharing-site notices, ICP licences
  metadata              "作者：… 来源：… 发布时间：…", "责任编辑：…", "By Jane Doe | March 3, 2020"
  tags                  "标签：…", "Keywords: …"
  related-link          "相关阅读：《…》", "Read also: …" (one line)
  toc                   a "目录" / "Table of Contents" heading and the title-like entries under it, up to the
                        first line that repeats an entry (the body's first heading)
  related-block         a "相关文章" / "Related posts" / comments heading: in the second half of a page it
                        and everything after it go; earlier, it and the title-like lines under it go
  page-title            a kept line repeated with the site name joined on ("标题_某某网", "Title | Site")
  seo-title             keyword runs joined by _ | - ("华为手机_华为P30报价_手机大全-某某网")
  spam                  one token or one short unit repeated over most of a line
  widget                English interface sentences: comment forms, newsletter and cookie boxes, "Opens in a new
                        window" (gptkit.data.chrome_en, which also finds English bylines, datelines, read times,
                        profile fields and credits as `metadata`, tag rows as `tags`, template keys as `markup`)
  markup                leaked tags (on a page whose HTML leaked), a template placeholder alone between paragraphs
  symbol-only           a line with no letter, digit or CJK character ("▲▲▲", "》》》")
  off-topic-block       after the last paragraph, 4+ titles / cut snippets whose words are not the page's
                        (related articles without a heading; gptkit.data.context)
  page-head             above the first paragraph, a line neither next to it (title, heading) nor shaped like a
                        headline: profile fields, counters, short site names (gptkit.data.context)
  line-model:<feature>  the learned line classifier (gptkit.data.line_model) has the last word on every judged
                        line: it drops lines no rule knew (the reason names the feature that pushed the line
                        furthest towards boilerplate) and may keep a line a rule dropped (`clean_lines(lines,
                        line_model=...)`; None: the rules alone)
In-line noise removed from kept lines: romanisation in brackets after characters ("中(zhōng)国(guó)"),
zhuyin in brackets, citation and edit markers ("[3]", "[编辑]", "[citation needed]").
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import numpy as np

from gptkit.data.code_lines import code_mask, markup_only, stray_markup, tag_wrapped_prose
from gptkit.data.context import (
    context_drops,
    head_drops,
    head_offtopic_drops,
    is_good,
    offtopic_tail,
    toc_echo_drops,
)
from gptkit.data.filters import HAN
from gptkit.data.line_cache import cache_short_lines
from gptkit.data.line_features import FEATURE_NAMES, page_features
from gptkit.data.line_model import REASON_PREFIX, load_line_model
from gptkit.data.line_rules import _SEO_SEP, _SEO_SEP_CHARS, _is_title_like, _strip_decoration, classify_line

_BLOCK_HEADING = re.compile(
    r"(?:相关(?:(?!工作|研究|文献|理论|概念|知识|技术|政策|法规|规定)[\u4e00-\u9fff]{2})|"
    r"推荐(?:阅读|文章|新闻|内容|视频|资讯)|延伸阅读|扩展阅读|拓展阅读|热门(?:文章|推荐|新闻|资讯|话题|标签|搜索|评论|帖子)?|"
    r"热点(?:新闻|推荐|资讯)?|猜你喜欢|你可能(?:还)?(?:感兴趣|喜欢|想看)|大家都在看|精彩推荐|为您推荐|"
    r"更多(?:精彩|推荐|相关|文章|新闻|资讯|内容)|往期(?:回顾|推荐|精选)|最新(?:文章|资讯|新闻)|(?:点击|阅读)?排行(?:榜)?|"
    r"今日推荐|编辑推荐|本周热门|看了(?:本文|这篇文章)的人还看了|(?:作者|TA|他|她)的(?:其他|更多)[\u4e00-\u9fff]{0,3}|"
    r"(?:网友|读者|用户)?评论(?:区|列表)?|全部评论|最新评论|热门评论|精彩评论|精选评论|评论\s*[（(]\d+[)）]|"
    r"\d+\s*条(?:评论|回复)|已有\d+(?:条评论|人评论|人参与)|发表(?:你的)?评论|我要评论|写下你的评论|网友留言|留言(?:板|区)?|"
    r"related(?:\s+(?:articles|posts|stories|content|reading|links|news|videos|topics))?|"
    r"recommended(?:\s+(?:for\s+you|reading|articles|stories))?|you\s+(?:may|might)\s+also\s+(?:like|enjoy)|"
    r"more\s+(?:stories|articles|news|to\s+read|like\s+this|on\s+this\s+topic|from\s+\S+(?:\s+\S+)?)|"
    r"popular\s+(?:posts|articles|stories|now)|most\s+(?:read|popular|viewed)|trending(?:\s+(?:now|stories))?|"
    r"read\s+next|see\s+also|further\s+reading|external\s+links|what\s+to\s+read\s+next|latest\s+(?:posts|news|articles)|recent\s+posts|"
    r"top\s+stories|editor'?s\s+picks|more\s+(?:from|by)\s+(?:the|this)\s+author|comments?(?:\s*\(\d+\))?|\d+\s+(?:comments?|responses|replies)|"
    r"leave\s+a\s+(?:reply|comment)|post\s+a\s+comment|add\s+a\s+comment|join\s+the\s+discussion|reader\s+comments|"
    r"what\s+do\s+you\s+think\??|have\s+your\s+say|about\s+the\s+author(?:,.{0,30})?|top\s+searches(?:\s+on\s+.{1,30})?|"
    r"(?:users|people|readers|visitors)\s+(?:reading|who\s+read)\s+this\s+(?:article|page|post)\s+(?:are\s+)?also"
    r"\s+(?:interested\s+in|read|liked?))"
    r"(?:\s*(?:更多|more)?\s*[>»›]*)?",
    re.I,
)

# --- in-line noise ----------------------------------------------------------------------------------

_TONE = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_PINYIN = re.compile(
    rf"(?<=[{HAN}])\s?[（(]\s*([a-zA-Z{_TONE}üÜê]{{1,7}}[1-5]?(?:\s+[a-zA-Z{_TONE}üÜê]{{1,7}}[1-5]?){{0,3}})\s*[)）]"
)
_HAS_TONE = re.compile(rf"[{_TONE}]|[a-z][1-5]\b")
_ZHUYIN = re.compile(r"\s?[（(][\u3105-\u312f\u31a0-\u31bfˉˊˇˋ˙\s]+[)）]")
_CITATION = re.compile(
    rf"(?<=[{HAN}\u3000-\u303f\uff00-\uffef.,;:)\]\"'”’])\[(?:\d{{1,3}}(?:\s*[-–,，]\s*\d{{1,3}})*|注\s*\d+)\]"
    r"|\[(?:编辑|编辑本段|edit|citation needed|来源请求|需要引用|需要来源)\]",
    re.I,
)


PAGE_ZH, GOOD = FEATURE_NAMES.index("page_zh"), FEATURE_NAMES.index("good")


class LineVerdict(NamedTuple):  # a tuple: one is made per line, and a frozen dataclass costs 4x more
    index: int
    text: str  # the line after in-line cleaning (kept lines) or the original line (dropped lines)
    rule: str | None  # None: kept
    code: bool = False


def _block_heading(line: str) -> bool:
    s = _strip_decoration(line.strip())
    if not s:
        return False
    return (len(s) <= 40 and _BLOCK_HEADING.fullmatch(s) is not None) or (
        len(s) <= 140 and _COMMENT_HEADING.match(s) is not None
    )


# Headings too long for _BLOCK_HEADING: a comment section's (WordPress and the like: it may quote the post's
# title), and "readers of this article also read".
_COMMENT_HEADING = re.compile(
    r"\d+\s+(?:thoughts?|repl(?:y|ies)|responses?|comments?)\s+(?:on|to)\s+\S"
    r"|(?:leave|post|add|write)\s+a\s+(?:reply|comment)\b|you\s+are\s+commenting\s+using\b"
    r"|fill\s+in\s+your\s+details\s+below\b"
    r"|(?:users|people|readers|visitors)\s+(?:reading|who\s+read)\s+this\s+(?:article|page|post)\s+(?:are\s+)?also\b",
    re.I,
)
# A comment section that counts itself ("24 Responses to <title>", "3 thoughts on <title>"): once the page's main
# text has begun, everything after it is the comments, wherever it stands.
_COUNTED_COMMENTS = re.compile(r"\d+\s+(?:thoughts?|repl(?:y|ies)|responses?|comments?)\s+(?:on|to)\s+\S", re.I)
# A table of contents: its heading, then entries that are title-like, up to the body (an entry repeated).
_TOC_HEADING = re.compile(
    r"table\s+of\s+contents?|contents|in\s+this\s+article|on\s+this\s+page|本文目录|文章目录|目录", re.I
)
_TOC_PREFIX = re.compile(r"^[\s\-*•·o\d.、)）]+")


def _toc_key(line: str) -> str:
    return _TOC_PREFIX.sub("", line).strip().lower()


@cache_short_lines(1 << 16)
def clean_inline(line: str) -> str:
    """Remove romanisation annotations, zhuyin and citation / edit markers from a prose line."""
    if "(" in line or "（" in line:
        matches = list(_PINYIN.finditer(line))
        if matches:
            toned = [m for m in matches if _HAS_TONE.search(m.group(1))]
            chosen = matches if len(matches) >= 3 else toned
            for m in reversed(chosen):
                line = line[: m.start()] + line[m.end() :]
        line = _ZHUYIN.sub("", line)
    if "[" in line:
        line = _CITATION.sub("", line)
    return line


def clean_lines(lines: list[str], line_model: str | None = None) -> list[LineVerdict]:
    """Judge every line; block headings in the second half of a page cut everything after them. `line_model`:
    a line-model file ("builtin": the shipped one) that has the last word on a page's judged lines."""
    if len(lines) == 1:  # a one-line document (a review, a post): the same verdicts, without the page logic
        line = lines[0]
        if not line.strip() or code_mask(lines)[0]:
            return [LineVerdict(0, line, None, bool(line.strip()))]
        rule = "related-block" if _block_heading(line) else classify_line(line)
        return [LineVerdict(0, line, rule) if rule else LineVerdict(0, clean_inline(line), None)]
    code = code_mask(lines)
    leaked = "<" in "".join(lines) and _unmask_leaked_html(lines, code)
    verdicts: list[LineVerdict | None] = [None] * len(lines)
    sizes = [len(x) for x in lines]
    total = sum(sizes) or 1
    before = 0
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if (leaked and code[i] and markup_only(line)) or (not code[i] and stray_markup(line)):
            verdicts[i] = LineVerdict(i, line, "markup")
            before += sizes[i]
            i += 1
            continue
        if code[i] or not line.strip():
            verdicts[i] = LineVerdict(i, line, None, code[i])
            before += sizes[i]
            i += 1
            continue
        if _TOC_HEADING.fullmatch(_strip_decoration(line.strip())):
            verdicts[i] = LineVerdict(i, line, "toc")
            entries: set[str] = set()
            j = i + 1
            while j < n and not code[j] and (not lines[j].strip() or _is_title_like(lines[j])):
                key = _toc_key(lines[j])
                if key and key in entries:
                    break  # the body starts: its first heading repeats an entry
                entries.add(key)
                verdicts[j] = LineVerdict(j, lines[j], "toc") if lines[j].strip() else LineVerdict(j, lines[j], None)
                j += 1
            before += sum(sizes[i:j])
            i = j
            continue
        if _block_heading(line):
            counted = _COUNTED_COMMENTS.match(_strip_decoration(line.strip())) is not None
            if (
                before >= 0.5 * total
                or i >= 0.5 * n
                or (counted and any(not code[k] and is_good(lines[k]) for k in range(i)))
            ):
                for j in range(i, n):  # a related / comments block near the end: the rest of the page goes
                    verdicts[j] = LineVerdict(j, lines[j], "related-block")
                break
            verdicts[i] = LineVerdict(i, line, "related-block")
            j = i + 1
            while (
                j < n
                and not code[j]
                and lines[j].strip()
                and not lines[j].rstrip().endswith((",", "，", "、"))  # a sentence running on into the next line
                and (_is_title_like(lines[j]) or lines[j].rstrip().endswith(("…", "...")) or classify_line(lines[j]))
            ):
                verdicts[j] = LineVerdict(j, lines[j], "related-block")
                j += 1
            before += sum(sizes[i:j])
            i = j
            continue
        rule = classify_line(line)
        verdicts[i] = LineVerdict(i, line, rule) if rule else LineVerdict(i, clean_inline(line), None)
        before += sizes[i]
        i += 1
    out = _mark_page_head(_mark_page_titles([v for v in verdicts if v is not None]))
    return out if line_model is None else apply_line_model(lines, out, line_model)


HEADING_LINES = 2
# On an English page the heading guard yields to a model at least this sure (P(boilerplate) >= it: more likely
# boilerplate than not): bylines, menu rows and widgets right above the body (round 11, site-held-out CV). On a
# Chinese page the lines it was that sure of there were headings ("长城", "第十二章 山雨欲来"): the guard holds.
GUARD_YIELDS_EN = 0.5
_GUARD_LOGIT = math.log(GUARD_YIELDS_EN / (1 - GUARD_YIELDS_EN))
MODEL_MIN_LINES = 3  # its features are page-relative: a page of one or two judged lines is left to the rules


def apply_line_model(lines: list[str], verdicts: list[LineVerdict], line_model: str) -> list[LineVerdict]:
    """The model's verdict on every judged line (not blank, not code), given the rules' `verdicts`: a line it
        drops keeps its rule as the reason (or gets "line-model:<feature>"); a line a rule dropped that it keeps
        comes back with its in-line noise removed. The model never empties a page the rules keep, and leaves pages
    without a paragraph to the rules (as the context rules do)."""
    model = load_line_model(line_model)
    if _untouched_article(verdicts):
        return verdicts
    code = [v.code for v in verdicts]
    if sum(1 for i, t in enumerate(lines) if not code[i] and t.strip()) < MODEL_MIN_LINES:
        return verdicts  # _model_skips would: page_features' rows are these lines; none computed for nothing
    rows, x = page_features(lines, [v.rule for v in verdicts], code)
    if _model_skips(rows, x):
        return verdicts
    drop, reasons = model.judge(x, zh=bool(x[0, PAGE_ZH]))
    if drop.all() and any(verdicts[i].rule is None for i in rows):
        return verdicts  # it finds no content in a page the rules keep: a page unlike any it learnt from
    # jusText's headings: a line no rule dropped, at most HEADING_LINES lines above a paragraph the model keeps
    # (a title, then a subtitle or byline), is that paragraph's heading and stays (the model alone drops short
    # headings: they cost few characters), unless the page is English and the model is sure (GUARD_YIELDS_EN)
    good, n = x[:, GOOD] > 0, len(rows)
    sure = np.zeros(n, dtype=bool) if x[0, PAGE_ZH] else model.logits(x) >= _GUARD_LOGIT
    for p in range(n - 1):
        if drop[p] and not sure[p] and verdicts[rows[p]].rule is None:
            ahead = range(p + 1, min(n, p + 1 + HEADING_LINES))
            if any(good[q] and not drop[q] for q in ahead):
                drop[p] = False
    for i, d, why in zip(rows, drop.tolist(), reasons, strict=True):
        rule = verdicts[i].rule
        if d and rule is None:
            verdicts[i] = LineVerdict(i, lines[i], REASON_PREFIX + why)
        elif not d and rule is not None:
            verdicts[i] = LineVerdict(i, clean_inline(lines[i]), None)
    return verdicts


def _untouched_article(verdicts: list[LineVerdict]) -> bool:
    """A title and paragraphs, no rule dropped a line: nothing for the model (most articles)."""
    judged = [v for v in verdicts if not v.code and v.text.strip()]
    return all(v.rule is None for v in judged) and all(is_good(v.text) for v in judged[1:])


def _model_skips(rows: list[int], x: np.ndarray) -> bool:
    """Too small, or no paragraph (verse, lists): no main body to judge lines against."""
    return len(rows) < MODEL_MIN_LINES or not (x[:, GOOD] > 0).any()


def model_decides(verdicts: list[LineVerdict], rows: list[int], x: np.ndarray) -> np.ndarray:
    """(len(rows),) bool: the judged rows whose verdict is the model's. False on a page it skips, and for a line
    no rule dropped at most HEADING_LINES lines above a paragraph (the heading guard of apply_line_model keeps
    it, unless the model drops that paragraph too, or is sure on an English page: GUARD_YIELDS_EN).
    benchmarks/train_line_model.py trains on these rows only."""
    n = len(rows)
    if _untouched_article(verdicts) or _model_skips(rows, x):
        return np.zeros(n, dtype=bool)
    good = x[:, GOOD] > 0
    return np.array(
        [verdicts[rows[p]].rule is not None or not good[p + 1 : p + 1 + HEADING_LINES].any() for p in range(n)],
        dtype=bool,
    )


# The context rules, in order (gptkit.data.context); each sees the lines the ones before it dropped.
_CONTEXT_RULES = (
    ("page-head", head_drops),
    ("head-off-topic", head_offtopic_drops),
    ("off-topic-block", offtopic_tail),
    ("toc", toc_echo_drops),
    ("context", context_drops),
)


def _unmask_leaked_html(lines: list[str], code: list[bool]) -> bool:
    """Lines of prose wrapped in tags are prose, not code (`code` is changed in place); True when there was one:
    the page's HTML leaked into the text, and its tag-only lines are markup, not a code example."""
    found = False
    for i, line in enumerate(lines):
        if code[i] and line.lstrip().startswith("<") and tag_wrapped_prose(line):
            code[i] = False
            found = True
    return found


def _mark_page_head(verdicts: list[LineVerdict]) -> list[LineVerdict]:
    """Chrome that no line rule knew, found by a line's place in the page and its neighbours."""
    texts = [None if v.code else v.text for v in verdicts]
    dropped = [v.rule is not None for v in verdicts]
    for rule, find in _CONTEXT_RULES:
        for j in find(texts, dropped):
            verdicts[j] = LineVerdict(j, verdicts[j].text, rule, False)
            dropped[j] = True
    return verdicts


PAGE_TITLE_MAX_EXTRA = 30


def _mark_page_titles(verdicts: list[LineVerdict]) -> list[LineVerdict]:
    """The page's <title> repeats its heading with the site or section names joined on ("标题_频道_某某网",
    "Title - Forum - Site", "Title | Site"): a line made of another kept line plus a short tail (or head)
    after a separator is dropped."""
    kept = {v.text.strip() for v in verdicts if not v.rule and not v.code and 4 <= len(v.text.strip()) <= 80}
    if len(kept) < 2:
        return verdicts
    out = []
    for v in verdicts:
        s = v.text.strip()
        if not v.rule and not v.code and len(s) <= 120 and _SEO_SEP_CHARS.search(s):
            for m in _SEO_SEP.finditer(s):
                head, tail = s[: m.start()].strip(), s[m.end() :].strip()
                if (head in kept and 0 < len(tail) <= PAGE_TITLE_MAX_EXTRA) or (
                    tail in kept and 0 < len(head) <= PAGE_TITLE_MAX_EXTRA
                ):
                    v = LineVerdict(v.index, v.text, "page-title", v.code)
                    break
        out.append(v)
    return out
