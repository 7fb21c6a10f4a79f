"""Context-sensitive line rules (gptkit.data.context): the page head above the first paragraph, and off-topic
related-article blocks at the page's end."""

from __future__ import annotations

from gptkit.data.boilerplate import clean_lines
from gptkit.data.context import is_good

BODY = [
    "图书馆新开了一个阅览室，周末的时候有很多学生来这里看书，安静的环境让人可以专心地学习一整天。",
    "管理员说，阅览室每天早上八点开门，晚上十点关门，读者凭借书证就可以免费进入，还可以借阅最新的杂志。",
]


def _rules(lines: list[str]) -> list[str | None]:
    return [v.rule for v in clean_lines(lines)]


def test_good_paragraphs_by_function_words():
    assert is_good(BODY[0])
    assert not is_good("图书馆阅览室开放时间调整通知")  # a headline: no clause punctuation
    assert is_good("The reading room opens at eight in the morning and it is free for anyone with a card.")
    assert not is_good(
        "Reading Room Opening Hours Library Services Card Holders Free Access Today Only"
    )  # no stop words


def test_profile_fields_above_the_first_paragraph_go_and_the_title_stays():
    page = ["阅览室开放了", "积分", "3882", "主题", "506", "帖子", *BODY]
    # the line right above the paragraph may be a heading: kept (a known miss when it is a field name)
    assert _rules(page) == [None, "page-head", "page-head", "page-head", "page-head", None, None, None]


def test_a_lone_heading_or_section_number_above_the_paragraph_stays():
    assert _rules(["第一章", "1", *BODY]) == [None, None, None, None]
    assert _rules(["Summary", BODY[0]]) == [None, None]


def test_an_off_topic_block_of_titles_and_cut_snippets_at_the_end_goes():
    tail = [
        "股市周一收盘上涨",
        "沪深两市成交额突破万亿元，券商板块领涨，北向资金净流入超过五十亿元，市场情绪明显回暖…",
        "足球联赛第十轮战报",
        "主队在补时阶段打入制胜球，客队门将全场完成七次扑救，但仍未能帮助球队拿到一分…",
    ]
    assert _rules(BODY + tail) == [None, None] + ["off-topic-block"] * 4


def test_the_pages_own_closing_list_stays():
    facts = ["开放时间：每天八点到二十二点", "座位数量：一百二十个", "借阅方式：凭借书证", "联系管理员：前台服务台"]
    assert _rules(BODY + facts)[:2] == [None, None]
    assert "off-topic-block" not in _rules(BODY + facts)
