"""Character-level repair and normalisation of one document, before any line is judged.

In order:
  1. line breaks: \\r\\n, \\r, U+2028/2029/0085 -> \\n
  2. mojibake (UTF-8 read as Latin-1 / cp1252, e.g. "æ–‡å­—" for "文字") repaired with ftfy. ftfy only runs
     when the text holds a character that such mojibake always produces (U+00C2..U+00F4, the Latin-1 view of
     UTF-8 lead bytes); that skips it for clean Chinese and ASCII text, where it would find nothing. Its width
     folding, quote uncurling and HTML handling are off: "，" must stay "，" in Chinese text.
  3. HTML entities left in text ("&amp;", "&#xff0c;", "&nbsp;"), also double-escaped ones ("&amp;#x4e2d;")
  4. U+FFFD (what invalid UTF-8 decoded to), control characters (except \\t, \\n), zero-width and bidi marks,
     soft hyphens, lone surrogates (from "\\ud800" escapes in JSON, which no UTF-8 writer accepts): removed
  5. fullwidth ASCII letters and digits ("１９９８", "ＡＢＣ") -> ASCII; fullwidth punctuation such as "，" and
     "（" is kept: it is correct Chinese typography. No-break and ideographic spaces -> " ".
  6. Unicode NFC; trailing spaces stripped; leading spaces stripped before CJK text (the ideographic
     paragraph indent "　　正文" is not a code indent). Lines are never added or removed here (line
     indices stay valid for reporting dropped lines); blank-line runs are collapsed after cleaning.
  7. optionally Traditional -> Simplified Chinese with OpenCC ("t2s")
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\u0085]")
_MOJIBAKE_HINT = re.compile(r"[\u00c2-\u00f4]")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CJK_AFTER_INDENT = re.compile(r"^[ \t]+(?=[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef])", re.M)
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.M)


def _translation_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in list(range(0x00, 0x20)) + list(range(0x7F, 0xA0)):  # C0 and C1 controls
        if cp not in (0x09, 0x0A):
            table[cp] = None
    for cp in (0x00AD, 0x180E, 0xFEFF, 0xFFFD, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070)):
        table[cp] = None  # soft hyphen, zero-width and bidi controls, BOM, replacement character
    for cp in range(0xD800, 0xE000):
        table[cp] = None  # lone surrogates ("\ud800" escapes in JSON input): no UTF-8 can encode them
    for cp in (0x00A0, 0x2007, 0x202F, 0x3000):
        table[cp] = " "  # no-break and ideographic spaces
    for cp in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)):
        table[cp] = chr(cp - 0xFEE0)  # fullwidth digits and letters
    return table


_TABLE = _translation_table()
# runs of characters the table changes: translating only those is ~4x faster than str.translate over the whole
# text, which takes a slow path per character on CJK text
_NEEDS_TABLE = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_TABLE)) + "]+")
# A character that one of the repair steps needs: a line break to convert (step 1), the mojibake hint (2), "&" (3),
# U+FFFD or a character of the table (4, 5; U+FFFD is one of them). A text without any is left as it is by them.
_NEEDS_REPAIR = re.compile(
    "[\r\u2028\u2029\u0085&\u00c2-\u00f4" + "".join(re.escape(chr(c)) for c in sorted(_TABLE)) + "]"
)


@dataclass
class NormalizeStats:
    replacement_chars: int = 0  # U+FFFD found (invalid UTF-8 seen by the reader, or already in the text)
    entities: int = 0
    mojibake_fixed: bool = False
    removed_chars: int = 0  # control / zero-width / bidi characters (U+FFFD not counted again)


@lru_cache(maxsize=1)
def _opencc_t2s():
    try:
        import opencc
    except ImportError:
        from gptkit.errors import GptkitError

        raise GptkitError("--t2s needs the opencc package (pip install opencc)") from None
    return opencc.OpenCC("t2s")


def _unescape_entities(text: str, stats: NormalizeStats) -> str:
    for _ in range(2):  # "&amp;#xff0c;" needs two rounds
        if "&" not in text:
            break
        new, n = _ENTITY.subn(lambda m: html.unescape(m.group(0)), text)
        if new == text:
            break
        stats.entities += n
        text = new
    return text


def fix_mojibake(text: str) -> tuple[str, bool]:
    if not _MOJIBAKE_HINT.search(text):
        return text, False
    import ftfy

    fixed = ftfy.fix_text(
        text,
        unescape_html=False,
        fix_character_width=False,
        uncurl_quotes=False,
        fix_latin_ligatures=False,
        fix_line_breaks=False,
        normalization=None,
        explain=False,
    )
    return fixed, fixed != text


def _repair(text: str, stats: NormalizeStats) -> str:
    """Steps 1-5 (line breaks, mojibake, entities, the translation table)."""
    if "\r" in text or "\u2028" in text or "\u2029" in text or "\u0085" in text:
        text = _LINE_BREAKS.sub("\n", text)
    text, stats.mojibake_fixed = fix_mojibake(text)
    text = _unescape_entities(text, stats)
    stats.replacement_chars = text.count("\ufffd")
    if _NEEDS_TABLE.search(text):
        n = len(text)
        text = _NEEDS_TABLE.sub(lambda m: m.group().translate(_TABLE), text)
        stats.removed_chars = n - len(text) - stats.replacement_chars
    return text


def normalize_text(text: str, *, t2s: bool = False) -> tuple[str, NormalizeStats]:
    """Repair and normalise one document; returns the text and counts of what was changed."""
    stats = NormalizeStats()
    if _NEEDS_REPAIR.search(text):  # steps 1-5 each need one of these characters: one scan for most texts
        text = _repair(text, stats)
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if " " in text or "\t" in text:
        text = _TRAILING_SPACE.sub("", text)
        text = _CJK_AFTER_INDENT.sub("", text)
    if t2s:
        text = _opencc_t2s().convert(text)
    return text, stats
