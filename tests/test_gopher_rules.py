"""Gopher's document rules on short, list-shaped English pages: quantities are not symbol soup, spam still goes."""

from __future__ import annotations

import re

from gptkit.data.filters import FilterConfig, alpha_word_fraction, quality_rule

CFG = FilterConfig()

# a synthetic recipe: times, amounts, fractions, ranges and numbered steps, as recipe pages print them
RECIPE = "\n".join(
    [
        "Total Time: 2 hrs 10 mins Prep Time: 20 mins Cook Time: 1 hr 50 mins",
        "  • 2 lbs beef shoulder, cut into 1 inch cubes",
        "  • 1/8 tsp ground cloves",
        "  • 3 carrots, sliced",
        "  • 1 cup of the stock",
        "  • 1 heat the oven to 325 degrees and brown the beef in 2 batches.",
        "  • 2 add the carrots with the cloves.",
        "  • 3 pour over the stock and cover.",
        "  • 4 bake for 90-100 min or until tender.",
    ]
)


def _whole_token_share(text: str) -> float:
    """Gopher's share as first written: every token with a letter or digit counts, a number as a non-word."""
    toks = [t for t in text.split() if any(c.isalnum() for c in t)]
    return sum(any(c.isalpha() for c in t) for t in toks) / len(toks)


def test_quantities_in_a_recipe_do_not_count_against_the_alphabetic_share():
    assert _whole_token_share(RECIPE) < CFG.gopher_min_alpha_words  # the page the old rule dropped
    assert alpha_word_fraction(RECIPE) == 1.0  # every number here is followed by its unit or its step
    assert quality_rule(RECIPE, "en", CFG) is None


def test_numbers_without_words_still_count():
    # "555" is followed by a number, "0142" ends the line: both count against the share
    assert alpha_word_fraction("Call us on 555 0142") == 3 / 5
    rows = [f"{y} {y * 37 % 99991} {y * 53 % 99989} {y * 71 % 99971}" for y in range(1990, 2010)]
    table = "\n".join(["Results of the year and the month", *rows])
    assert alpha_word_fraction(table) < CFG.gopher_min_alpha_words
    assert quality_rule(table, "en", CFG) == "gopher-alpha"


def test_repetitive_spam_is_still_dropped():
    towns = ("Leeds", "York", "Bath", "Derby", "Hull", "Ely", "Ripon", "Wells", "Truro", "Exeter", "Preston")
    spam = "\n".join(
        f"Find the best cheap hotel deals in {t} and book with the lowest price guaranteed today." for t in towns
    )
    assert len(spam.split()) >= 150
    assert re.fullmatch(r"gopher-(top|dup)-\d+gram", quality_rule(spam, "en", CFG) or "")
