"""classify_line's screens against the patterns they skip: each screen is a necessary condition (or an exact
equivalent) of its pattern, checked with hypothesis, by every code point where a character property is relied
on, and by classify_line with every screen turned off on every line of the built-in corpora and labelled pages."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.data import chrome_terms, line_rules
from tests.labelled import load_pages, load_web_pages

_CODE_POINTS = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def test_ignorecase_matches_an_ascii_letter_only_to_the_folded_characters():
    letter = re.compile("[a-z]", re.I)
    others = {c for c in _CODE_POINTS if not c.isascii() and letter.fullmatch(c)}
    assert others == set(line_rules._EXOTIC_ASCII)
    for c in others:
        folded = c.translate(chrome_terms._FOLD_TO_ASCII)
        assert re.fullmatch(folded, c, re.I) and folded.isascii() and folded.islower()
    alnum = re.compile("[A-Za-z0-9]", re.I)  # _IMAGE_NAME's first character
    assert {c for c in _CODE_POINTS if alnum.fullmatch(c)} == {
        c for c in _CODE_POINTS if (c.isascii() and c.isalnum()) or c in line_rules._EXOTIC_ASCII
    }


def test_digit_and_space_classes_are_the_string_methods():
    """\\d is str.isdecimal (the digit screens), \\s within str.isspace (a stripped line opens with no \\s)."""
    digit, space = re.compile(r"\d"), re.compile(r"\s")
    assert all(bool(digit.match(c)) == c.isdecimal() for c in _CODE_POINTS)
    assert all(c.isspace() for c in _CODE_POINTS if space.match(c))


_MIXED = st.text(
    alphabet=st.sampled_from("abcXYZ ,.，。；;:\u0130\u0131\u017f\u212a登注周月前星期dayago0123") | st.characters(),
    max_size=60,
)


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(_MIXED)
def test_ascii_word_and_prose_tests_equal_their_patterns(text):
    assert chrome_terms.has_ascii_word(text) == (chrome_terms._ASCII_WORD.search(text) is not None)
    assert chrome_terms.is_prose(text) == (chrome_terms._PROSE.search(text) is not None)


def _first(chars: str, decimal: bool = False):
    return lambda s: s[0] in chars or (decimal and s[0].isdecimal())


@pytest.mark.parametrize(
    "pattern, screen",
    [
        ("_IMAGE_NAME", lambda s: s[0] in line_rules._EXOTIC_ASCII or (s[0].isascii() and s[0].isalnum())),
        ("_MEDIA_PLACEHOLDER", _first(line_rules._MEDIA_FIRST)),
        ("_LONE_MEDIA_WORD", _first(line_rules._MEDIA_FIRST)),
        ("_PAGE_FOOTER", _first(line_rules._PAGE_FOOTER_FIRST, decimal=True)),
        ("_PAGE_NAV", _first(line_rules._PAGE_NAV_FIRST, decimal=True)),
        ("_NAV_ROOTS", _first(line_rules._NAV_ROOT_FIRST)),
        ("_PREV_NEXT", _first(line_rules._PREV_NEXT_FIRST)),
        ("_BYLINE", _first(line_rules._BYLINE_FIRST)),
        ("_HANDLE_BYLINE", _first(line_rules._BYLINE_FIRST)),
        ("_LOGIN_PROMPT", lambda s: s[0] in line_rules._LOGIN_FIRST or "登" in s or "注" in s),
        ("_CONTACT", lambda s: chrome_terms.has_ascii_word(s) or line_rules._CONTACT_ZH.search(s)),
    ],
)
def test_screens_hold_for_every_match(pattern, screen):
    full = getattr(line_rules, pattern)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.from_regex(full, fullmatch=pattern == "_HANDLE_BYLINE"))
    def check(text):
        # classify_line's lines are stripped: a match opening with white space never reaches the screen
        if pattern == "_CONTACT":  # searched anywhere in the line, not anchored
            assert not full.search(text) or screen(text), text
        elif full.match(text) and not text[0].isspace():
            assert screen(text), text

    check()


class _Everything:
    def __contains__(self, item: object) -> bool:
        return True


def _corpus_lines() -> list[str]:
    from gptkit.data.sources import plan_splits, read_split, resolve_inputs

    files = resolve_inputs(["builtin:zh-news", "builtin:zh-reviews"])
    texts = [d.text for s in plan_splits(files, 1 << 30) for d in read_split(s)]
    texts += ["\n".join(p.lines) for p in load_pages()]
    for split in ("design", "blind", "blind2", "blind3", "blind4", "blind5", "blind6"):
        texts += ["\n".join(p.lines) for p in load_web_pages(split)]
    return sorted({line for t in texts for line in t.split("\n")})


def test_classify_line_equals_the_unscreened_rules_on_every_corpus_line(monkeypatch):
    lines = _corpus_lines()
    assert len(lines) > 30_000
    classify = line_rules.classify_line.__wrapped__  # uncached
    screened = [classify(line) for line in lines]
    everything = _Everything()
    for name in ("_EXOTIC_ASCII", "_MEDIA_FIRST", "_PAGE_FOOTER_FIRST", "_PAGE_NAV_FIRST", "_NAV_ROOT_FIRST"):
        monkeypatch.setattr(line_rules, name, everything)
    for name in ("_PREV_NEXT_FIRST", "_BYLINE_FIRST", "_LOGIN_FIRST"):
        monkeypatch.setattr(line_rules, name, everything)
    ascii_word = lambda s: chrome_terms._ASCII_WORD.search(s) is not None  # noqa: E731
    monkeypatch.setattr(line_rules, "has_ascii_word", ascii_word)
    monkeypatch.setattr(chrome_terms, "has_ascii_word", ascii_word)
    monkeypatch.setattr(line_rules, "is_prose", lambda s: chrome_terms._PROSE.search(s) is not None)
    monkeypatch.setattr(line_rules, "_date_time_hint", lambda s: True)
    monkeypatch.setattr(line_rules, "_CONTACT_ZH", re.compile(""))  # matches every line
    monkeypatch.setattr(chrome_terms, "_notice_en_hint", lambda s: True)
    unscreened = [classify(line) for line in lines]
    assert screened == unscreened
    assert sum(r is not None for r in screened) > 400  # the corpus exercises the rules: 20 of them on 2026-12-03
    assert len(set(screened) - {None}) >= 18
