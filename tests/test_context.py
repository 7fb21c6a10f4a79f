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


EN_BODY = [
    "The reading room opens at eight in the morning and it is free for anyone who has a library card.",
    "Staff say that the room is busiest at the weekend, when students come in to study for the whole day.",
]


def test_a_short_line_between_two_dropped_lines_takes_their_class():
    page = [*BODY, "分享到", "最后登录", "2019-1-16", "阅览室开放了", *BODY]  # "最后登录": no paragraph, no headline
    assert _rules(page)[2:6] == ["ui-chrome", "context", "timestamp", None]
    # a title between a breadcrumb and a byline is followed by the paragraph: it stays
    page = ["首页 > 新闻 > 正文", "长城", "作者：李明 发布时间：2023-09-12", *BODY]
    assert _rules(page)[:3] == ["breadcrumb", None, "metadata"]
    # list items and markdown headings stay, and so do three short lines in a row (a real list, maybe)
    page = [*BODY, "分享到", "- 鸡蛋", "2019-1-16", "## 做法", "2019-1-17", *BODY]
    assert _rules(page)[3] is None and _rules(page)[5] is None
    page = [*BODY, "分享到", "盐少许", "糖一勺", "醋两勺", "2019-1-16", *BODY]
    assert _rules(page)[3:6] == [None, None, None]


def test_table_of_contents_entries_that_come_back_as_headings_go():
    py = [
        "Python is a programming language that is easy to read, and it is used for small scripts and for big programs.",
        "On a Linux machine the package manager installs it, and the version that comes with the system is often new.",
    ]
    page = [
        "Python Tutorial",
        "1. What is Python?",
        "2. Installing Python on Linux machines.",
        "What is Python?",
        py[0],
        "Installing Python on a Linux machine",
        py[1],
    ]
    assert _rules(page) == [None, "toc", "toc", None, None, None, None]  # reworded entries match by their words
    # a refrain: the block comes back as a block, not heading by heading with text between
    song = ["Row row row your boat", "Gently down the stream", EN_BODY[0]] * 2
    assert "toc" not in _rules([*song, EN_BODY[1]])


def test_a_counted_comment_section_takes_the_rest_of_the_page():
    page = [
        "Weekly Photo Challenge",
        EN_BODY[0],
        "24 Responses to Weekly Photo Challenge",
        "1. Wow! You have traveled to many places and I am excited to see even more of your journey!",
        "Liked by 1 person",
        "2. dunelight says:",
        EN_BODY[1],
        "Staff say the room is quiet on weekdays.",
        "A third line so that the heading is in the first half of the page.",
        "A fourth line.",
    ]
    assert _rules(page)[:2] == [None, None] and set(_rules(page)[2:]) == {"related-block"}
    # without a paragraph before it, a counted heading is only a heading with its titles
    assert _rules(["24 Responses to Weekly Photo Challenge", *EN_BODY])[1:] == [None, None]


def test_site_names_above_the_title_go_when_they_share_no_word_with_the_page():
    page = ["CHAKRAPANI GAUTAM", "Notes from a reading room", "The reading room", *EN_BODY]
    assert _rules(page) == ["head-off-topic", None, None, None, None]
    # a numbered heading begins the page's own text, even without a word in common (a chapter's title)
    page = ["Chapter One", "Notes from a reading room", "The reading room", *EN_BODY]
    assert _rules(page) == [None] * 5
