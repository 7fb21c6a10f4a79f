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


# a synthetic events schedule: each entry says where and when in the same words, then what happens
SCHEDULE = "\n".join(
    [
        "Family Programs at the Library",
        "Rhyme Time for Babies",
        "Rhyme Time is at the East Branch on Mondays at 10 a.m. Babies up to 18 months and a grown-up share songs,"
        " bounces and board books in a 20-minute session.",
        "Story Hour for Toddlers",
        "Story Hour is at the East Branch on Wednesdays at 10 a.m. Toddlers and a grown-up enjoy picture books,"
        " finger plays and a simple craft in a 30-minute session.",
        "Lego Club for Ages 6 to 11",
        "Lego Club is at the East Branch on Thursdays at 4 p.m. Builders get a new challenge each week and their"
        " creations go on display in the children's room.",
        "Chess Corner for Ages 8 and Up",
        "Chess Corner is at the East Branch on Fridays at 4 p.m. Beginners learn the moves from volunteers while"
        " regular players meet for friendly games.",
        "Weekend Puppet Show",
        "The Puppet Show is at the East Branch on Saturdays at 11 a.m. Local performers bring a different folk tale"
        " to life every month, and the show lasts about 40 minutes.",
        "All programs are free and no registration is needed. Please call the branch if you have any questions.",
    ]
)


def test_a_short_schedule_whose_entries_share_a_sentence_frame_is_kept():
    # "X is at the East Branch on DAY at TIME" five times: 10-12% of the characters in duplicated 5-grams, under
    # Gopher's 15%. (A schedule that also repeats whole description sentences, entry after entry, is over it and
    # still dropped.)
    assert len(SCHEDULE.split()) >= 150  # long enough for the n-gram rules to judge it
    assert quality_rule(SCHEDULE, "en", CFG) is None
