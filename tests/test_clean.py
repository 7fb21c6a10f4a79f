"""Cleaning: character normalisation, boilerplate lines (the labelled set), document filters, languages."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from gptkit.data.boilerplate import clean_inline
from gptkit.data.clean import CleanConfig, clean_document
from gptkit.data.code_lines import code_mask
from gptkit.data.filters import (
    FilterConfig,
    _zh_counts,
    cwt_repeat_fraction,
    detect_lang,
    quality_rule,
    repetition_rule,
)
from gptkit.data.line_rules import classify_line
from gptkit.data.normalize import normalize_text
from tests.labelled import is_blind_site, load_pages, load_web_pages, score_pages, site_of

# --- the labelled set (tests/data/boilerplate) --------------------------------------------------------


RULES_ALONE = CleanConfig(line_model=None)


def test_labelled_pages_meet_the_goals():
    """The rules' own design bar (the line model is judged in tests/test_line_model.py)."""
    pages = load_pages()
    assert len(pages) >= 20 and {p.name.split("_")[1] for p in pages} == {"zh", "en"}
    scores = score_pages(pages, RULES_ALONE)
    s = scores["all"]
    assert s.boilerplate_lines >= 200 and s.content_chars >= 8000  # a set big enough to mean something
    assert s.removed_fraction >= 0.90, f"boilerplate removed {s.removed_fraction:.3f}; missed:\n" + "\n".join(s.missed)
    assert s.kept_fraction >= 0.97, f"content kept {s.kept_fraction:.4f}; lost:\n" + "\n".join(s.lost)
    for lang in ("zh", "en"):
        assert scores[lang].removed_fraction >= 0.85 and scores[lang].kept_fraction >= 0.97, lang
    assert s.noisy_lines_fixed == s.noisy_lines  # every in-line annotation / entity case comes out exactly


def test_real_design_pages_keep_their_content():
    """The stored real pages the rules were developed on (the blind ones are scored by benchmarks/clean_eval.py,
    never asserted here: a test on them would invite tuning)."""
    scores = score_pages(load_web_pages("design"), RULES_ALONE)
    for lang in ("zh", "en"):
        s = scores[lang]
        assert s.kept_fraction >= 0.97, f"{lang} content kept {s.kept_fraction:.4f}; lost:\n" + "\n".join(s.lost)
        assert s.removed_fraction >= 0.55, f"{lang} boilerplate removed {s.removed_fraction:.3f}"
        assert s.pages_dropped == 0


def test_web_pages_are_split_by_site_and_big_enough():
    design, blind, blind2 = load_web_pages("design"), load_web_pages("blind"), load_web_pages("blind2")
    assert len(design) + len(blind) >= 100
    assert len({site_of(p.url) for p in design + blind}) >= 60
    for pages, blind_split in ((design, False), (blind, True)):
        for p in pages:
            assert p.url.startswith("http") and is_blind_site(site_of(p.url)) == blind_split, p.name
    assert not {site_of(p.url) for p in design} & {site_of(p.url) for p in blind}
    for lang in ("zh", "en"):
        assert sum(p.lang == lang for p in blind) >= 15
    # batches 2-11: one page per site, every site new to the earlier sets (so no template leaks into them)
    earlier = {site_of(p.url) for p in design + blind}
    later = ((load_web_pages("blind3"), 30), (load_web_pages("blind4"), 20), (load_web_pages("blind5"), 24))
    later += ((load_web_pages("blind6"), 40), (load_web_pages("blind7"), 30), (load_web_pages("blind8"), 20))
    later += ((load_web_pages("blind9"), 24), (load_web_pages("blind10"), 26), (load_web_pages("blind11"), 26))
    for batch, size in ((blind2, 30), *later):
        sites = [site_of(p.url) for p in batch]
        assert all(p.url.startswith("http") for p in batch) and len(set(sites)) == len(sites) >= size
        assert not set(sites) & earlier
        earlier |= set(sites)
        for lang in ("zh", "en"):
            assert sum(p.lang == lang for p in batch) >= size // 2


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://bbs.w10.cn/thread-1.html", "w10.cn"),
        ("http://www.sina.net.cn/news/1.html", "sina.net.cn"),  # two-level public suffixes
        ("https://news.example.co.za/a", "example.co.za"),
        ("https://www.example.ac.jp/", "example.ac.jp"),
        ("https://dmv.ca.gov/portal/", "dmv.ca.gov"),  # a state government's agencies are separate sites
        ("https://www.cdph.ca.gov/Programs", "cdph.ca.gov"),
        ("https://www.va.gov/health-care/", "va.gov"),  # a federal department, not Virginia
        ("https://foo.nsw.gov.au/x", "foo.nsw.gov.au"),
        ("https://someone.blogspot.com/2020/01/post.html", "someone.blogspot.com"),
        ("https://www.example.co/", "example.co"),  # a country-code TLD alone
        ("https://www.example.com/", "example.com"),
    ],
)
def test_site_of_knows_multi_label_public_suffixes(url, site):
    assert site_of(url) == site


# --- normalisation ------------------------------------------------------------------------------------


def test_normalize_repairs_encoding_damage_and_invisible_characters():
    text, st = normalize_text("è¿™æ˜¯ä¸€ä¸ªæµ‹è¯•")  # UTF-8 read as cp1252
    assert text == "这是一个测试" and st.mojibake_fixed
    text, st = normalize_text("苹果&amp;香蕉&#xff0c;价格&amp;#x4e2d;&nbsp;好")
    assert text == "苹果&香蕉，价格中 好" and st.entities >= 3
    text, st = normalize_text("零\u200b宽\u200d字\ufeff符\x07控制\ufffd")
    assert text == "零宽字符控制" and st.replacement_chars == 1 and st.removed_chars == 4
    assert normalize_text("１９９８年，ＡＢＣ（测试）")[0] == "1998年，ABC（测试）"  # "，" and "（" stay fullwidth
    assert normalize_text("　　第一段。\n    code()\r\nx")[0] == "第一段。\n    code()\nx"  # CJK indent, not code's
    assert normalize_text("漢字與體", t2s=True)[0] == "汉字与体"
    text, st = normalize_text(json.loads('"坏\\ud800的代理对\\udfff"'))  # lone surrogates from JSON escapes
    assert text == "坏的代理对" and st.removed_chars == 2 and text.encode()


def test_mostly_damaged_document_is_dropped_and_lightly_damaged_one_kept():
    bad = clean_document("好" * 20 + "\ufffd" * 5)
    assert bad.text is None and bad.rule == "encoding-damage"
    ok = clean_document("这家酒店的服务很好，房间也很干净，下次还会再来。\ufffd")
    assert ok.text == "这家酒店的服务很好，房间也很干净，下次还会再来。"


# --- line rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, rule",
    [
        ("当前位置：首页 > 体育 > 足球", "breadcrumb"),
        ("Home › Science › Space", "breadcrumb"),
        ("上一页 1 2 3 4 下一页 尾页", "page-nav"),
        ("第 3 页 共 12 页", "page-nav"),
        ("photo_0012.JPG", "image-file"),
        ("转载请注明出处：某某博客", "notice"),
        ("All rights reserved.", "notice"),
        ("分享到：微信 微博 QQ空间 豆瓣", "ui-chrome"),
        ("评论（12）  点赞 35", "ui-chrome"),
        ("Read more »", "ui-chrome"),
        ("Follow us on Twitter", "call-to-action"),
        ("标签：旅游 美食 攻略", "tags"),
        ("首页_新闻_体育新闻_足球_某某网", "seo-title"),
        ("哈哈哈哈哈哈哈哈哈哈哈哈", "spam"),
        ("上一篇：如何学习Python", "prev-next"),
        ("责任编辑：张三", "metadata"),
        ("▲▲▲", "symbol-only"),
        ("编辑于 2023-06-02 08:11", "timestamp"),
        ("World | Business | Tech | Science", "nav-menu"),
    ],
)
def test_boilerplate_line_rules(line, rule):
    assert classify_line(line) == rule


@pytest.mark.parametrize(
    "line",
    [
        "第一章 总则",  # heading
        "1. 先查看洗标，确认是否可以水洗；",  # list item
        "- 电池：5000 mAh，支持 66W 快充",
        "E = mc^2",  # formula
        "设 f(x) = x² + 1，求 f(2)。",
        "记者：您认为本届评出的作品最大的特点是什么？",  # an interview question, not a byline
        "他在网上发表评论说，这项政策很有必要。",  # UI words inside prose
        "Next, think about cushioning and how far you run.",
        "北京 上海 广州",  # short list without interface words
        "外观漂亮 全铝机身 做工精细 散热好",  # a review in fragments
        "让·雅克·卢梭",  # "·" in a foreign name
        "| 名称 | 数量 |",  # markdown table row
    ],
)
def test_content_lines_are_not_boilerplate(line):
    assert classify_line(line) is None


@pytest.mark.parametrize(
    "module, pattern, hint",
    [
        ("chrome_terms", "_NOTICE_ZH", "_NOTICE_ZH_HINT"),
        ("chrome_terms", "_PROMO", "_PROMO_HINT"),
        ("chrome_terms", "_CALL_TO_ACTION", "_call_to_action_hint"),
        ("line_rules", "_DATE_TIME", "_date_time_hint"),
        ("chrome_terms", "_NOTICE_EN", "_notice_en_hint"),
    ],
)
def test_hints_are_necessary_for_their_patterns(module, pattern, hint):
    """A hint gates its pattern, so every string the pattern matches must contain the hint; hypothesis
    generates strings holding a match of the pattern (of every alternative) to check it."""
    import importlib

    from hypothesis import given, settings
    from hypothesis import strategies as st

    rules = importlib.import_module(f"gptkit.data.{module}")
    full, gate = getattr(rules, pattern), getattr(rules, hint)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.from_regex(full))
    def check(text):
        if full.search(text):  # from_regex may place a match where an anchor does not hold
            assert gate(text) if callable(gate) else gate.search(text), text

    check()


@pytest.mark.parametrize("pattern", ["_UI_TERMS_ZH", "_UI_TERMS_EN"])
def test_interface_terms_hold_only_the_han_characters_the_coverage_bound_knows(pattern):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gptkit.data import chrome_terms

    terms = getattr(chrome_terms, pattern)

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(st.from_regex(terms))
    def check(text):
        for m in terms.finditer(text):
            assert all(chrome_terms._UI_HAN.match(c) for c in chrome_terms._HAN_RE.findall(m.group())), m.group()

    check()


def test_low_variety_agrees_with_the_set_of_characters():
    from gptkit.data.line_rules import _low_variety

    rng = np.random.default_rng(3)
    same_low_byte = [chr(0x4E00 + 256 * k) for k in range(12)]  # the cheap bound cannot tell these apart
    many = [chr(0x4E00 + k) for k in range(300)]  # long lines with enough distinct characters not to be low
    pools = [list("的一是在不了有和人这中大为上个国我以"), list("abcdefghij"), list("😀😃😄😁😆😅🤣😂")]
    pools += [same_low_byte, many]
    for _ in range(400):
        pool = pools[int(rng.integers(len(pools)))]
        text = "".join(rng.choice(pool, int(rng.integers(1, 200))))  # short and long lines take two paths
        assert _low_variety(text) == (len(set(text)) <= 0.4 * len(text)), text
    for n in (20, 200):  # at the limit: 40% distinct is low, one more is not
        for distinct, low in ((int(0.4 * n), True), (int(0.4 * n) + 1, False)):
            text = "".join(many[k % distinct] for k in range(n))
            assert _low_variety(text) is low, (n, distinct)


def test_code_is_protected_and_detected():
    lines = ["用普通循环写：", "result = []", "for x in range(10):", "    if x % 2 == 0:", "        result.append(x)",
             "注意缩进。", "```", "SELECT * FROM t", "```"]  # fmt: skip
    assert code_mask(lines) == [False, True, True, True, True, False, True, True, True]
    text = "\n".join(["# 例子"] + lines * 1)
    r = clean_document(text)
    assert r.text is not None and "    if x % 2 == 0:" in r.text and "SELECT * FROM t" in r.text


def test_inline_annotations_are_removed():
    assert clean_inline("长(cháng)城(chéng)很长") == "长城很长"
    assert clean_inline("中(zhong)国(guo)人(ren)民") == "中国人民"  # three bare syllables in a row
    assert clean_inline("他(ㄊㄚ)来了") == "他来了"
    assert clean_inline("北京是首都。[1] 上海是城市[2][3]。") == "北京是首都。 上海是城市。"
    assert clean_inline("长城（Great Wall）很长") == "长城（Great Wall）很长"  # an English gloss stays
    assert clean_inline("a[1] = 2") == "a[1] = 2"  # code-like indexing after a Latin letter stays


def test_long_lines_are_not_cached_and_judged_the_same():
    from gptkit.data import boilerplate, line_rules
    from gptkit.data.line_cache import CACHED_LINE_CHARS

    long_line = "版权所有 © 2024 某某网 " + "这是一段很长的正文，用来测试缓存。[1]" * 40
    short_line = "版权所有 © 2024 某某网 长(cháng)城[2]"
    assert len(long_line) > CACHED_LINE_CHARS >= len(short_line)
    line_rules.classify_line.cache_clear()
    boilerplate.clean_inline.cache_clear()
    for line in (long_line, short_line, long_line, short_line):
        assert classify_line(line) == line_rules.classify_line.__wrapped__(line)
        assert clean_inline(line) == boilerplate.clean_inline.__wrapped__(line)
    assert "[1]" not in clean_inline(long_line)  # the uncached path still cleans
    for cached in (line_rules.classify_line, boilerplate.clean_inline):
        info = cached.cache_info()
        assert (info.currsize, info.misses, info.hits) == (1, 1, 1)  # the long line never reached the cache


def test_related_block_near_the_end_goes_with_everything_after():
    body = [
        "城市交通拥堵是许多大城市共同面临的难题，早晚高峰尤其明显。",
        "过去十年，地铁建设大大缩短了市民的通勤时间。",
        "研究人员统计了五条线路开通前后的客流变化。",
        "结果显示，沿线居民平均每天节省约二十分钟。",
        "票价调整对客流也有影响，但远小于线路覆盖的作用。",
        "专家建议继续完善公交接驳，让地铁站周边的出行更加便利。",
    ]
    page = "\n".join([*body, "相关阅读", "地铁票价调整方案公布", "公交线路优化意见征集", "城市交通的未来在哪里？"])
    r = clean_document(page)
    assert r.text is not None and "相关阅读" not in r.text and "地铁票价" not in r.text
    early = "\n".join(["推荐阅读", "一篇别的文章的标题", *body])  # near the top: only the heading and its titles
    r = clean_document(early)
    assert "一篇别的文章的标题" not in r.text and all(line in r.text for line in body)


def test_repeated_title_and_paragraph_keep_first_copy_but_refrains_stay():
    page = "\n".join(
        [
            "第十二章 山雨欲来",
            "第十二章 山雨欲来",
            "天色渐暗，山间起了风，李青站在崖边望着远处翻滚的乌云。",
            "雪落在黄河石上",
            "立马就融化了",
            "雪落在六盘山诗碑",
            "立马就融化了",
            "天色渐暗，山间起了风，李青站在崖边望着远处翻滚的乌云。",
        ]
    )
    r = clean_document(page, RULES_ALONE)  # the repeat logic (the line model may drop a copy first)
    assert r.text.count("第十二章 山雨欲来") == 1 and r.text.count("天色渐暗") == 1
    assert r.text.count("立马就融化了") == 2  # a refrain further down is not a repeated title
    assert sorted(rule for _, rule, _ in r.dropped_lines) == ["repeated-line", "repeated-line"]


# --- document filters ---------------------------------------------------------------------------------


def test_detect_lang():
    assert detect_lang("这本书写得很好，推荐大家阅读。") == "zh"
    assert detect_lang("THINKPAD的品质还是非常不错的，屏幕完美") == "zh"
    assert detect_lang("I visited 北京 last year and loved it.") == "en"
    assert detect_lang("これは日本語の文章です。漢字もあります。") == "other"
    assert detect_lang("Это русский текст без латиницы") == "other"


def test_gopher_quality_rules_on_english():
    cfg = FilterConfig()
    good = "The cat sat on the mat and looked at the garden with great interest for a while."
    assert quality_rule(good, "en", cfg) is None
    assert quality_rule("Too short to keep.", "en", cfg) == "too-short"
    assert quality_rule(" ".join(["supercalifragilisticexpialidocious"] * 12), "en", cfg) == "gopher-word-length"
    assert quality_rule("buy cheap pills online now best price fast shipping discount deals", "en", cfg) == (
        "gopher-stopwords"
    )
    hashtags = "#love #food #travel the best of trip to the sea with #friends #sun #fun #beach"
    assert quality_rule(hashtags, "en", cfg) == "gopher-symbols"
    repeated = " ".join(["the quick brown fox jumps over"] * 12)
    assert quality_rule(repeated, "en", cfg).startswith("gopher-")


def test_chinese_rules_keep_short_reviews_poems_and_lists():
    cfg = FilterConfig()
    assert quality_rule("很后悔，不怎么样的一本书，千万别买", "zh", cfg) is None  # a short review
    assert quality_rule("性价比很高", "zh", cfg) == "too-short"
    poem = "\n".join(["春之歌", "当时间的脚步", "跨过岁末的最后一道门槛", "城市与乡村", "一齐鼓起热情的手掌",
                      "家家户户的大门", "都映着你绯红的脸庞"])  # fmt: skip
    assert quality_rule(poem, "zh", cfg) is None
    recipe = "\n".join(["用料", "- 五花肉 500克", "- 冰糖 30克", "- 生抽 2勺", "- 姜片 适量", "- 八角 两颗",
                        "五花肉切块焯水后，小火炒糖色，加调料炖一小时即可。"])  # fmt: skip
    assert quality_rule(recipe, "zh", cfg) is None
    assert quality_rule("网卡是分intel marvell realtek和broadcom的", "zh", cfg) == "zh-han-ratio"  # CWT 30%


def test_cwt_repetition_against_brute_force():
    def brute_force(t: str) -> float:
        grams = [t[i : i + 13] for i in range(len(t) - 12)]
        return sum(1 for g in grams if grams.count(g) > 1) / len(grams)

    text = "还没有发现什么不足。" * 4 + "其他都还不错"
    t = "".join(text.lower().split())
    grams = [t[i : i + 13] for i in range(len(t) - 12)]
    expected = sum(1 for g in grams if grams.count(g) > 1) / len(grams)
    assert cwt_repeat_fraction(text, 13) == pytest.approx(expected)
    assert cwt_repeat_fraction("短文本", 13) == 0.0
    # short texts of distinct characters with one 13-gram repeated (apart, or overlapping itself with period p)
    # at every offset: the anchor shortcut must find every repeat
    unique = "".join(chr(0x4E00 + k) for k in range(200))
    for i in range(20):
        for gap in (0, 1, 5, 13):
            x = unique[100:113]
            t = unique[:i] + x + unique[50 : 50 + gap] + x + unique[150:160]
            assert cwt_repeat_fraction(t, 13) == pytest.approx(brute_force(t)), (i, gap)
        for period in (1, 2, 6, 12):
            t = unique[:i] + (unique[120 : 120 + period] * 26)[: 13 + period] + unique[150:160]
            assert cwt_repeat_fraction(t, 13) == pytest.approx(brute_force(t)), (i, period)
    assert cwt_repeat_fraction(unique[:80], 13) == 0.0
    rng = np.random.default_rng(0)  # a long text takes the numpy path
    long = "".join(
        rng.choice(list("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"))
        for _ in range(900)
    )
    long += long[:300]
    t = long.lower()
    grams = [t[i : i + 13] for i in range(len(t) - 12)]
    counts = Counter(grams)
    assert cwt_repeat_fraction(long, 13) == pytest.approx(sum(c for c in counts.values() if c > 1) / len(grams))


def test_gopher_line_repetition():
    cfg = FilterConfig()
    assert repetition_rule(["同一行内容重复出现"] * 4 + ["别的内容"], cfg) == "gopher-dup-lines"
    assert repetition_rule(["第一行", "第二行", "第三行", "第一行"], cfg) == "gopher-dup-line-chars"  # 25% > 20%
    long = ["这是一个相当长的第二行内容，用来稀释字符比例。", "这是另一个相当长的第三行内容，也用来稀释比例。"]
    assert repetition_rule(["第一行", *long, "第一行"], cfg) is None  # 25% of lines, 8% of characters


def test_character_counts_agree_between_regex_and_numpy_paths(monkeypatch):
    from gptkit.data import filters

    rng = np.random.default_rng(5)
    alphabet = list("的一是在ABCxyz019 ，。\n\t㐀豈!é\u3000\u2003\x1c\xa0")  # ... and whitespace beyond ASCII
    for n in (5, 399, 400, 3000):
        text = "".join(rng.choice(alphabet, n))
        monkeypatch.setattr(filters, "LONG_TEXT", 10**9)
        filters._count_han_short.cache_clear()
        by_regex = (filters._zh_counts(text), filters.count_han(text))
        monkeypatch.setattr(filters, "LONG_TEXT", 0)
        filters._count_han_short.cache_clear()
        assert (filters._zh_counts(text), filters.count_han(text)) == by_regex


def test_comment_bylines_hashtag_rows_and_help_page_instructions():
    assert classify_line("  2. dunelight says:") == "comment-byline"
    assert classify_line("ckm said:") == "comment-byline"
    assert classify_line("He said:") is None and classify_line("The minister said:") is None  # a quotation opens
    assert classify_line("#nature #hiking #utah #winter") == "tags"
    assert classify_line("## Installing Python") is None  # a markdown heading, not a tag row
    assert classify_line("Liked by 2 people") == "ui-chrome"
    assert classify_line("Click here to subscribe") == "call-to-action"
    for help_text in ("Click Subscribe", "Click Forums on the menu bar.", "Click a forum."):
        assert classify_line(help_text) is None, help_text  # what a help page tells the reader to do
    assert classify_line("您需要 登录 才可以下载或查看,没有账号?立即注册") == "login-prompt"
    assert classify_line("Mine Trail View small") == "image-file"
    assert classify_line("原标题:某某事件") == "metadata"
    glued = "原标题:软件开发中的决定作者 | 邹欣 问题是这个软件在过去的很多年中,有很多用户使用,也有不少用户喜欢。"
    assert classify_line(glued) is None  # a field glued to the article's first paragraph is content


def test_a_chinese_page_with_an_english_translation_is_not_dropped_for_its_han_share():
    zh = "从某种意义上说，历史是过去了的新闻，新闻将成为未来的历史，记者这个职业才会与使命、责任深深连在一起。"
    en = (
        "In a sense, history is the news of the past, and the news will be the history of the future; that is why"
        " the work of a journalist is bound up with a mission and with responsibility. Many reporters keep the"
        " notes they never used, and some of them are worth a story of their own for the readers of this page."
    )
    zh2 = "许多新闻记者在出色地完成各自的报道任务后，也会有不少未用的素材永远地遗留在采访本上，读者也会欢迎它们。"
    page = "\n".join(["写在开篇的话", zh, zh2, en])
    _, text_chars, han = _zh_counts(page)
    assert detect_lang(page) == "zh" and han < FilterConfig().cwt_min_han_frac * text_chars  # the case in point
    r = clean_document(page)
    assert r.text is not None and r.lang == "zh" and en.strip() in r.text
    noise = "\n".join(["新闻", "abc def 123 456 789 | x | y | z | 0000 1111 2222 3333 4444 5555 6666 7777 8888"] * 3)
    assert clean_document(noise).text is None  # without English prose the Han-share rule still holds


def test_signature_dates_post_headers_and_metadata_without_a_colon():
    assert classify_line("2016年10月14日") is None  # the date an official document is signed: its text
    assert classify_line("马宝清马宝清 发表于 2024-11-21 04:56:59") == "timestamp"  # a forum post header
    assert classify_line("发布时间2025-05-28 20:45") == "metadata"
    assert classify_line("- 文档编号:4472473") == "metadata"
    assert classify_line("By Justin Phillips / American Press") == "metadata"
    assert classify_line("Tag Archives: film review") == "tags"
    assert classify_line("图片源自网络") == "notice"
    assert classify_line("Image") == "media-placeholder"
    assert classify_line("  • Share to Flipboard") == "ui-chrome"
    consent = (
        "By providing your information, you agree to our Terms of Use and our Privacy Policy. We use vendors that"
        " may also process your information to help provide our services."
    )
    assert classify_line(consent) == "notice"
    keywords = "Easy Dinners, Weeknight, For Beginners, Template, Tips, Cooking Tips, Meal Plan, Grocery List, Recipe"
    assert classify_line(keywords) == "tags"
    assert classify_line("salt, pepper, two eggs, flour, milk, butter, sugar, a pinch of cinnamon") is None


def test_leaked_html_keeps_its_prose_and_drops_its_tags():
    p = (
        "<p>In high school football, Friday night lights mean one thing: it is the time when the players have to"
        " show that they can play with the best of them.</p>"
    )
    page = "\n".join(["<!-- wp:paragraph -->", p, "<!-- /wp:paragraph -->", p.replace("football", "soccer")])
    r = clean_document(page)
    assert r.text is not None and "wp:paragraph" not in r.text and "Friday night lights" in r.text
    rules = {rule for _, rule, _ in r.dropped_lines}
    assert rules == {"markup"}
    # an HTML tutorial's tags stay code: no prose in tags on the page
    tutorial = "\n".join(["To show an image, write the tag like this:", '<img src="cat.png" alt="A cat">', "Done."])
    assert "<img" in (clean_document(tutorial).text or "")


def test_title_near_copies_and_teasers_go_and_the_body_stays():
    para = "众所周知，猫在宠物界有着至高无上的地位，很多养猫人称自己为猫奴，我也没想到自己会成为其中一员。"
    page = "\n".join(
        [
            "清远市人民政府关于印发《清远市人民政府工作规则》的通知(2019修订)",
            "清远市人民政府关于印发《清远市人民政府工作规则》的通知",  # the title again without what was joined on
            "摘要: 众所周知，猫在宠物界有着至高无上的地位，很多养猫人...",  # a teaser cut from the paragraph below
            para,
            "猫最喜欢的是猫薄荷，要是猫咪闻到或者吃到，会非常兴奋，和之前判若两猫，个人感觉就像飘飘欲仙。",
        ]
    )
    r = clean_document(page)
    assert {(rule, t[:2]) for _, rule, t in r.dropped_lines} == {("title-copy", "清远"), ("teaser-copy", "摘要")}
    assert para in r.text and r.text.startswith("清远市人民政府关于印发《清远市人民政府工作规则》的通知(2019修订)")
    # a heading that a contents entry only ends with is the body's own heading
    toc = "\n".join(
        ["1What is Python?", "What is Python?", "Python is a language that many people use for scripts and for work."]
    )
    assert "What is Python?\nPython" in (clean_document(toc).text or "")


_OLD_CODE_HINT = r"[;{}=<>$#()\[\]:+*/|&-]|```|~~~|^(?:    |\t)"  # written as one class: re scans it slower
_OLD_NOTICE_ZH_HINT = (
    "[版著©留载侵删备档剩券巴丁库免仅IV]|重定向|维基百科|摘编|授权|未经|本[文站网平资]|代表本|转自|原创|增值|许可证|图[片源]"
    "|继续阅读|上传|本帖|doc|book"
)


def test_hints_rewritten_for_speed_find_what_their_first_forms_found():
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gptkit.data import chrome_terms
    from gptkit.data.code_lines import _code_hint

    old_code, old_notice = re.compile(_OLD_CODE_HINT, re.M), re.compile(_OLD_NOTICE_ZH_HINT)
    chars = st.sampled_from([*";{}=<>$#()[]:+*/|&-`~ \t\nab版权本文图片docbook中", "    ", "```", "~~~"])

    @settings(max_examples=500, deadline=None, derandomize=True)
    @given(st.lists(chars | st.characters(), max_size=12).map("".join))
    def check(text):
        assert _code_hint(text) == (old_code.search(text) is not None)
        assert (chrome_terms._NOTICE_ZH_HINT.search(text) is None) == (old_notice.search(text) is None)

    check()
