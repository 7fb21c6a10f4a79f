"""A page must never be dropped for its boilerplate: a page a document rule drops is judged once more on its
paragraphs (gptkit.data.clean._paragraphs_if_dropped); a page whose paragraphs fail the rule too stays dropped."""

from __future__ import annotations

import pytest

from gptkit.data.clean import PARAGRAPHS_ONLY, CleanConfig, clean_document

PARAGRAPHS = [
    "The river rose again this spring, and the farmers in the valley moved their animals to the higher fields "
    "before the water reached the barns.",
    "Most of them have done this for years, but the flood came earlier than anyone in the village could "
    "remember, and some of the hay was lost.",
    "The council has promised to rebuild the old embankment next summer, although it has not yet said how the "
    "work will be paid for.",
]
# a footer of place names: no rule knows them, and their short lines make the page fail FineWeb's short-line rule
FOOTER = ["Alder", "Birch Row", "Cedar", "Dunmore", "Elm Park", "Fernhill", "Gorse", "Hollins", "Ivy Lane"]


def test_a_page_failing_for_its_leftover_chrome_is_kept_as_its_paragraphs_and_headings() -> None:
    page = "\n".join(["Flood in the valley", PARAGRAPHS[0], "Cedar", PARAGRAPHS[1], PARAGRAPHS[2], *FOOTER])
    # the rules alone leave the footer in; judged with it, the page fails
    res = clean_document(page, CleanConfig(line_model=None))
    assert res.rule is None and res.text is not None
    assert res.text.split("\n") == ["Flood in the valley", PARAGRAPHS[0], "Cedar", PARAGRAPHS[1], PARAGRAPHS[2]]
    dropped = {t: rule for _, rule, t in res.dropped_lines}
    assert set(dropped) == set(FOOTER)  # "Cedar" is dropped in the footer, kept as the heading above a paragraph
    assert all(rule == PARAGRAPHS_ONLY + "fineweb-short-lines" for rule in dropped.values())


def test_paragraphs_alone_when_their_headings_still_fail() -> None:
    # two short lines above every paragraph, one cut with an ellipsis: with its headings the page still fails
    # (Gopher's ellipsis-line share), its paragraphs alone pass
    lines = []
    for k, p in enumerate(PARAGRAPHS):
        lines += [f"Part {k + 1}", f"Pictures from day {k + 1} …", p]
    page = "\n".join(lines + FOOTER)
    res = clean_document(page, CleanConfig(line_model=None))
    assert res.rule is None and res.text is not None
    assert res.text.split("\n") == PARAGRAPHS
    assert len(res.dropped_lines) == 6 + len(FOOTER)
    assert all(rule == PARAGRAPHS_ONLY + "fineweb-short-lines" for _, rule, _ in res.dropped_lines)


@pytest.mark.parametrize("line_model", [None, "builtin"])
def test_a_page_whose_paragraphs_fail_the_rule_too_stays_dropped(line_model: str | None) -> None:
    frame = (
        "Story time with {} is at the Main Library every week, and children and their caregivers are invited to "
        "join a short program of books, rhymes, music and movement for the whole family."
    )
    names = ["Anna", "Ben", "Cleo", "Dev", "Ema", "Finn", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lin"]
    page = "\n".join(["Story times"] + [frame.format(n) for n in names] + FOOTER)
    res = clean_document(page, CleanConfig(line_model=line_model))
    assert res.text is None and res.rule == "gopher-dup-5gram"
    assert not any(rule.startswith(PARAGRAPHS_ONLY) for _, rule, _ in res.dropped_lines)


def test_a_page_too_short_or_without_an_english_paragraph_stays_dropped() -> None:
    assert clean_document("Alder\nBirch Row\nA short note.", CleanConfig(line_model=None)).rule == "too-short"
    french = "Le chat dort sur le canapé depuis ce matin, et il ne veut pas du tout se lever pour manger."
    res = clean_document("\n".join([*FOOTER, french, french.replace("chat", "chien")]), CleanConfig(line_model=None))
    assert res.rule == "gopher-stopwords" and res.text is None  # French has no paragraph by English stop words


def test_long_list_entries_count_as_long_lines_for_finewebs_short_line_share() -> None:
    from gptkit.data.filters import FilterConfig, quality_rule

    steps = [f"{k}. {p}" for k, p in enumerate(PARAGRAPHS, 1)]  # numbered paragraphs: list entries
    headings = ["Before", "During", "After", "Who pays?", "Contacts"]  # one ends a sentence (FineWeb's 12%)
    page = "\n".join(headings[:3] + steps[:2] + headings[3:] + steps[2:])
    assert quality_rule(page, "en", FilterConfig()) is None  # was fineweb-short-lines: 5 of 5 non-list lines short
    # short list entries ("- 3 ripe bananas") are still left out, and short lines (punctuated here, so that the
    # punctuation share passes) are still a link list
    links = "\n".join([*(f"{x}." for x in FOOTER), *PARAGRAPHS[:1], "- eggs", "- milk"])
    assert quality_rule(links, "en", FilterConfig()) == "fineweb-short-lines"
