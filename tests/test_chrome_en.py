"""Round 10's English chrome rules (gptkit.data.chrome_en, the widget vocabulary of gptkit.data.chrome_terms,
stray markup in gptkit.data.code_lines): the lines each must drop, and English prose each must keep."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptkit.data.boilerplate import clean_lines
from gptkit.data.chrome_en import en_chrome
from gptkit.data.line_rules import classify_line

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


@pytest.mark.parametrize(
    "line, rule",
    [
        # bylines, datelines, read times, counters: a date / count / "by NAME" and at most a name around it
        ("Meg Larsen May 5, 2020", "metadata"),
        ("Published March 02, 2014 by Fr. Paul Counce", "metadata"),
        ("Last edited by jdoe_99; 01-18-04 at 09:29 PM.", "metadata"),
        ("Last modified on 3 March 2021", "metadata"),
        ("First published on March 3, 2021", "metadata"),
        ("John Smith | March 3, 2021", "metadata"),
        ("John Smith · 5 min read", "metadata"),
        ("Jan 3, 2021 · 4 min read", "ui-chrome"),  # the read-time counter of chrome_terms covers it
        ("Medically reviewed by Jane Doe, MD — Written by John Smith — Updated on March 3, 2021", "metadata"),
        ("Post on 15-Sep-2020", "metadata"),
        ("updated 4/8/09", "metadata"),
        ("Jane Doe says March 3, 2021 at 10:12 am", "metadata"),
        ("Family Education Eric Jones 2 views", "metadata"),
        ("By Jane Doe and John Smith, CNN", "metadata"),
        ("View all posts by admin", "metadata"),
        ("Follow @janedoe on Twitter", "metadata"),
        ("More from John Smith", "metadata"),
        # fields, credits, roles, WordPress's post footer
        ("Joined: Dec 2002", "metadata"),
        ("Posts: 888", "metadata"),
        ("Reputation: 120", "metadata"),
        ("Reading time: 5 minutes", "metadata"),
        ("(Photo by John Smith/Getty Images)", "metadata"),
        ("AP Photo/John Smith", "metadata"),
        ("Reviewed by Dr. Jane Doe, MD", "metadata"),
        ("Staff Writer", "metadata"),
        ("Jane Doe, Senior Reporter", "metadata"),
        ("Jane Doe | Staff Writer", "metadata"),
        ("This post was last updated on March 3, 2021.", "metadata"),
        ("This entry was posted in Life, Nature, Travel and tagged , , , . Bookmark the permalink.", "metadata"),
        ("Tagged travel, Iceland, winter", "tags"),
        ("Archive for the ‘Uncategorized’ Category", "tags"),
        ("Archive | November 2013", "tags"),
        ("Did you mean:", "widget"),
        ("You are on page 1of 13", "widget"),
        # widget sentences
        ("Your email address will not be published. Required fields are marked *", "widget"),
        ("Save my name, email, and website in this browser for the next time I comment.", "widget"),
        ("Notify me of follow-up comments by email.", "widget"),
        ("This site uses Akismet to reduce spam. Learn how your comment data is processed.", "widget"),
        ("Get the latest news delivered to your inbox", "widget"),
        ("No spam. Unsubscribe anytime.", "widget"),
        ("Sign up for our free weekly newsletter", "login-prompt"),  # an older rule, first
        ("Join our free weekly newsletter", "widget"),
        ("We use cookies to improve your experience on our site.", "widget"),
        ("Click to share on Twitter (Opens in new window)", "call-to-action"),  # an older rule, first
        ("Share on Twitter (opens in a new window)", "widget"),
        ("Story continues below advertisement", "widget"),
        ("Did this answer your question?", "widget"),
        ("Be the first to comment", "widget"),
        ("RELATED:", "widget"),
        ("Image 1 of 5", "widget"),
        # the widget vocabulary (buttons and links) and menu rows of social networks
        ("Printer Friendly Version", "ui-chrome"),
        ("Read Full Post »", "ui-chrome"),
        ("View Entire Topic", "ui-chrome"),
        ("View comments", "ui-chrome"),
        ("Email this article", "ui-chrome"),
        ("Toggle navigation", "ui-chrome"),
        ("Link copied", "ui-chrome"),
        ("Custom Search", "ui-chrome"),
        ("17 reviews", "ui-chrome"),
        ("Pin 0", "ui-chrome"),
        ("Facebook Twitter Instagram YouTube", "ui-chrome"),
        ("Reply With Quote", "ui-chrome"),
        ("View 3 more replies", "ui-chrome"),
        ("Sort by: Newest", "ui-chrome"),
        ("12 people found this helpful", "ui-chrome"),
        ("4.5 out of 5 stars", "ui-chrome"),
        ("Already a subscriber? Log in", "ui-chrome"),
        ("Advertisement - Scroll to continue", "ui-chrome"),
        ("Getty Images", "metadata"),
        ("Senior Member", "metadata"),
        ("Originally Posted by jdoe", "metadata"),
        ("Jane Doe March 3, 2021 Leave a comment", "metadata"),
        ("▼ March (3)", "tags"),
        ("Labels: travel, food", "tags"),
        ("Was this page useful? Yes No", "widget"),
        ("An official website of the United States government", "widget"),
        ("Join 10,000+ subscribers", "widget"),
        ("Email ThisBlogThis!Share to TwitterShare to FacebookShare to Pinterest", "widget"),
        ("This article is more than 2 years old", "widget"),
        # markup left by a template or an image service
        ("custom_page_url:https://example.com/story/chapter-1/", "markup"),
        (":max_bytes(150000):strip_icc()/Weekly-LEAD-01-a14c37af516040f3bf1b6355c5a77734.jpg)", "markup"),
    ],
)
def test_english_chrome_is_dropped_with_its_reason(line, rule):
    assert classify_line(line) == rule


@pytest.mark.parametrize(
    "line",
    [
        # sentences and headings that hold dates, names, counts or "by"
        "Toddler Storytime is at the Main Library on Tuesdays at 10 a.m.",
        "Father's Bulletin Letter 7.5.20",  # a dated title: a numeric date and no event word
        "Release Notes 3.10.12",  # a version, not a date
        "On March 3, 2021 the council voted to close the bridge.",
        "By the end of the war, 3 million soldiers had been wounded.",
        "By and by.",
        "By mine honour,",
        "The storm hit on May 5, 2020 and left the town without power.",
        "He said on March 3, 2021 that he would resign.",
        "Topics in Algebra",
        "Category theory is a branch of mathematics.",
        "Post Reply",  # help pages name their buttons
        "I sent 12 comments to the editor, and she answered every one of them.",
        "Ursula Le Guin was an American author of novels, short stories and poems.",
        "The recipe makes 4 servings and takes 20 minutes.",
        "Photosynthesis converts light energy into chemical energy.",
        "Servings: 4",
        "Prep time: 20 mins",
        "Location: Main Library",
        "Chapter 12: The Return",
        "Archives of the Smithsonian hold letters from 1846.",
        "Archive footage from 1969 shows the landing.",
        "What did you mean by that, she asked.",
        "Sort the beans by size before you soak them.",
        "Four out of five doctors recommend it.",
        "She was a senior member of the committee for ten years.",
        "Newest research suggests the opposite.",
        "Getty Images of the war shaped how people saw it.",
        # section headings and references (from software READMEs and licences)
        "Version 3.1, 31 March 2009",
        "About Dill",
        "Contact Tracing",
        "Attention, Contributors",
        "<https://www.gnu.org/licenses/>.",
        "ftp://ftp.gnu.org/gnu/tar/",
        "https://example.com/story/chapter-1/index.html?id=3",  # a bare URL (a reference) stays
    ],
)
def test_english_prose_and_headings_are_kept(line):
    assert classify_line(line) is None, line


@pytest.mark.parametrize(
    "line",
    [
        "10:30am, Tuesdays & Wednesdays",  # a schedule: a time alone is not a date
        # the tails of sentences wrapped onto their own lines, a changelog heading
        "by Licensee.",
        "published by O'Reilly and Associates.",
        "on Wed, 15 Dec 2004.",
        "## 2.8.0 (July 23rd, 2026)",
    ],
)
def test_round_10_shapes_leave_these_alone(line):
    """The older byline and timestamp rules of gptkit.data.line_rules drop these lines; the round-10 shapes do not."""
    assert en_chrome(line) is None


def test_shakespeare_keeps_every_line():
    """No line of Tiny Shakespeare (1.1 MB of verse and dialogue) is dropped by the round-10 English rules."""
    if not SHAKESPEARE.exists():
        pytest.skip("../shared/data/tinyshakespeare.txt is not here")
    dropped = [ln for ln in SHAKESPEARE.read_text(encoding="utf-8").split("\n") if ln.strip() and en_chrome(ln.strip())]
    assert dropped == []


def test_a_stray_template_placeholder_is_dropped_but_examples_stay():
    p1 = "This is the first paragraph of the article, and it says a great deal about the subject."
    p2 = "Another paragraph of the article follows here, with more words in it than before."
    p3 = "The end of it all is here, and it is told in a sentence of words."
    lines = ["A title", p1, "{{ page.title }}", p2, "{classcode}", p3, "```", "{{ x }}", "```", p3]
    verdicts = clean_lines(lines)
    assert [v.rule for v in verdicts[:6]] == [None, None, "markup", None, "markup", None]
    assert not verdicts[3].code and verdicts[3].rule is None  # the paragraph between two stray lines is prose
    assert verdicts[7].code and verdicts[7].rule is None  # a placeholder inside a fenced example is code
    # an example introduced by "like this:" stays code, and so does a lone tag (an HTML tutorial's)
    shown = clean_lines(["Write the title like this:", "{{ page.title }}", "and the page fills it in."])
    assert shown[1].code and shown[1].rule is None
    tag = clean_lines([p1, '<img src="cat.png" alt="A cat">', p2])
    assert tag[1].code and tag[1].rule is None


@pytest.mark.parametrize("pattern, hint", [("_WIDGET", "_WIDGET_HINT")])
def test_widget_hint_is_necessary(pattern, hint):
    """The hint gates the widget pattern: every string the pattern matches contains it."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gptkit.data import chrome_en

    full, gate = getattr(chrome_en, pattern), getattr(chrome_en, hint)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.from_regex(full))
    def check(text):
        if full.search(text):
            assert gate.search(text), text

    check()
