"""Which lines of a page are code (gptkit.data.boilerplate never judges them): ``` / ~~~ fences, lines shaped
like code, and indented blocks next to code."""

from __future__ import annotations

import re

from gptkit.data.context import is_good
from gptkit.data.filters import count_han

_FENCE = re.compile(r"^\s*(```|~~~)")
# A character or fence that every code shape needs (an indented line is tested apart, _code_hint): its
# alternatives each open with a literal character, which lets re skip ahead between them (2.5x faster than
# the same set written as one character class)
_CODE_HINT = re.compile("|".join(map(re.escape, ";{}=<>$#()[]:+*/|&-")) + "|```|~~~")


def _code_hint(text: str) -> bool:
    """A character, fence or indented line (4 spaces or a tab at a line's start) that a code line needs."""
    return _CODE_HINT.search(text) is not None or text.startswith(("    ", "\t")) or "\n    " in text or "\n\t" in text


_CODE_SHAPE = re.compile(
    r"""
    ^\s*(?:def|class|import|from\s+[\w.]+\s+import|return|elif|else:|try:|except\b|finally:|with\s+.*:$
        |if\s.*:$|for\s.*:$|while\s.*:$|function\b|var|let|const|public|private|protected|static|void
        |\#include|\#define|\#!|package|func|fn|using|namespace|struct|enum|typedef|template
        |SELECT|INSERT|UPDATE|DELETE\s+FROM|CREATE\s+TABLE|print|printf|console\.\w+|System\.out|echo|sudo
        |pip|npm|git|cd|ls|mkdir|export|python3?)\b
    | [;{}]\s*$                      # ends like a statement or block
    | ^\s*[}\])]                     # starts with a closing bracket
    | =>|->|::|==|!=|\+=|-=|\*=|&&|\|\||<<|>>|\+\+
    | ^\s*[\w.\[\]'"]+\s*=\s*\S      # assignment
    | ^\s*[\w.]+\(.*\)\s*$           # a call
    | ^\s*(?://|/\*|\*/|<!--|--\s)    # comments
    | ^\s*[$>]\s+\S                  # shell prompt
    | ^\s*<\/?[a-zA-Z][\w-]*(\s[^<>]*)?\/?>  # markup tags
    """,
    re.X,
)


def _han_fraction(line: str) -> float:
    visible = len(line) - line.count(" ")
    return count_han(line) / visible if visible else 0.0


def code_mask(lines: list[str]) -> list[bool]:
    """Which lines are code: inside ``` / ~~~ fences, or (outside Chinese prose) shaped like code or indented
    by 4+ spaces / a tab next to other code. Code is protected from every line rule: it lacks sentence
    punctuation and repeats short lines by nature."""
    n = len(lines)
    mask = [False] * n
    if not _code_hint("\n".join(lines)):
        return mask  # no character or indent that any code shape needs
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            mask[i] = True
            in_fence = not in_fence
            continue
        if in_fence or (line.strip() and _han_fraction(line) < 0.3 and _CODE_SHAPE.search(line)):
            mask[i] = True
    _unmask_stray_markup(lines, mask)
    if not any(mask):
        return mask
    # indented lines and lines sandwiched between code lines belong to the block (e.g. "    x" in Python)
    for i, line in enumerate(lines):
        if mask[i] or not line.strip():
            continue
        indented = line.startswith(("    ", "\t"))
        prev = next((j for j in range(i - 1, -1, -1) if lines[j].strip()), None)
        nxt = next((j for j in range(i + 1, n) if lines[j].strip()), None)
        near = (prev is not None and mask[prev]) or (nxt is not None and mask[nxt])
        if ((indented and near) or (prev is not None and nxt is not None and mask[prev] and mask[nxt])) and (
            _han_fraction(line) < 0.3
        ):
            mask[i] = True
    return mask


# a template placeholder alone on a line ("{{ page.title }}", "{classcode}", "${name}", "%title%", "{% block %}")
_PLACEHOLDER = re.compile(r"\{\{[^{}]{1,60}\}\}|\{%[^{}]{1,60}%\}|\$?\{[\w.:-]{1,40}\}|%[A-Za-z_]{1,40}%")


def stray_markup(line: str) -> bool:
    """A template placeholder alone: markup when it is not an example (`_unmask_stray_markup`)."""
    return _PLACEHOLDER.fullmatch(line.strip()) is not None


def _unmask_stray_markup(lines: list[str], mask: list[bool]) -> None:
    """A code-shaped line that is only a template placeholder, with a line that is not code on each side and not
    introduced by the line above (which would end in ":"), is a template key the page left unfilled between its
    paragraphs, not a code example (examples come in blocks, fenced or beside other code lines, or after "like
    this:"): it is not code (`mask` is changed in place), so the rules judge it (gptkit.data.boilerplate drops it
    as `markup`) and it does not make the lines around it a code block. A lone tag stays code: an HTML
    tutorial shows one between two lines of prose."""
    nonblank = [i for i, t in enumerate(lines) if t.strip()]
    for k, i in enumerate(nonblank):
        if 0 < k < len(nonblank) - 1 and mask[i] and stray_markup(lines[i]):
            prev, nxt = nonblank[k - 1], nonblank[k + 1]
            if not mask[prev] and not mask[nxt] and not lines[prev].rstrip().endswith((":", "：")):
                mask[i] = False


# Prose wrapped in HTML tags ("<p>In high school football, ...</p>"): text extracted without stripping the markup.
# Such a line is prose, not code; a page holding one leaked its HTML, and its tag-only lines are markup.
_TAG_WRAPPED = re.compile(r"^\s*<([a-zA-Z][\w-]*)(?:\s[^<>]*)?>(.+)</\1>\s*$")
_TAG_OR_COMMENT = re.compile(r"<!--.*?-->|<[^<>]*>")


def tag_wrapped_prose(line: str) -> bool:
    """A paragraph of prose between an opening and a closing tag."""
    m = _TAG_WRAPPED.match(line)
    return m is not None and is_good(_TAG_OR_COMMENT.sub(" ", m.group(2)))


def markup_only(line: str) -> bool:
    """Tags and comments, no text outside them ("<!-- wp:paragraph -->", "<img ... >")."""
    return "<" in line and not _TAG_OR_COMMENT.sub("", line).strip()
