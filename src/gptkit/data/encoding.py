"""Which text encoding an input file is in, and decoding with it.

Chinese web text is often not UTF-8. The known encodings, decided in this order from a sample of the file:

  BOM        UTF-8 with BOM, UTF-16 LE / BE, UTF-32 LE / BE: the byte-order mark decides
  UTF-8      strict decoding of the sample succeeds (pure ASCII counts as UTF-8)
  GB         GBK (which contains GB2312), else GB18030 (its superset)   | strict trial decoding; when a GB and
  Big5       Big5, else cp950 (Microsoft's superset of Big5)            | a Big5 codec both decode the sample,
                                                                        | charset-normalizer's coherence test
                                                                        | (character frequencies) chooses
A file that none of these decodes strictly but that is valid UTF-8 save at most a quarter of its bytes is read
as damaged UTF-8 (the cleaner counts invalid bytes and drops a document past 10%: `encoding-damage`). Anything
else is refused with `EncodingError` naming the file: NUL bytes without a BOM (binary files, UTF-16 without a
BOM), more than 1% control characters, or bytes no known codec decodes (another code page).

The sample is the first SAMPLE_BYTES of the file; when those are pure ASCII, the file is scanned on (bytes.isascii
runs at memory speed) to the first block that is not, so a GBK file with a long ASCII head is still found.
"""

from __future__ import annotations

import codecs
import gzip
from pathlib import Path

from gptkit.errors import GptkitError

SAMPLE_BYTES = 1 << 20
UTF8 = "utf-8"
_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
WIDE_ENCODINGS = ("utf-16", "utf-32")  # "\n" is not one byte in these: files are decoded whole, never cut
_FAMILIES = (("gbk", "gb18030"), ("big5", "cp950"))  # each: the common codec first, then its superset
MAX_CONTROL_FRACTION = 0.01
MAX_UTF8_DAMAGE = 0.25  # a file that no codec decodes strictly but is UTF-8 save this share of its bytes: UTF-8


class EncodingError(GptkitError, ValueError):
    """An input file is in no known text encoding."""


def _decodes(data: bytes, encoding: str, final: bool) -> bool:
    """Strict decoding succeeds (final=False: a character cut at the end of a sample is allowed)."""
    try:
        codecs.getincrementaldecoder(encoding)(errors="strict").decode(data, final=final)
    except UnicodeDecodeError:
        return False
    return True


def _utf8_damage(data: bytes) -> float:
    """The share of bytes that are not part of a valid UTF-8 sequence."""
    text = data.decode(UTF8, errors="replace")
    valid = len(text.replace("\ufffd", "").encode()) + data.count("\ufffd".encode())
    return 1 - valid / max(1, len(data))


def _control_fraction(text: str) -> float:
    controls = sum(1 for c in text if c < " " and c not in "\t\n\r\f\v")
    return controls / max(1, len(text))


def detect_encoding(data: bytes, *, final: bool = True, name: str = "input") -> str:
    """The encoding of `data` (a file's first bytes, or a whole file when final=True); EncodingError naming
    `name` when it is none of the known ones."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    if b"\0" in data:
        raise EncodingError(f"{name}: not a text file in a known encoding (it holds NUL bytes: binary, or UTF-16/32 "
                            "without a byte-order mark)")  # fmt: skip
    if _decodes(data, UTF8, final):
        chosen = UTF8
    else:
        fits = [next((c for c in family if _decodes(data, c, final)), None) for family in _FAMILIES]
        fits = [c for c in fits if c]
        if not fits and _utf8_damage(data) <= MAX_UTF8_DAMAGE:
            fits = [UTF8]  # damaged UTF-8: read it, and let the cleaner count and judge the damage per document
        if not fits:
            raise EncodingError(f"{name}: not a text file in a known encoding (tried UTF-8, UTF-16/32 with a "
                                "byte-order mark, GBK/GB18030, Big5)")  # fmt: skip
        chosen = fits[0] if len(fits) == 1 else _most_coherent(data, fits)
    text = codecs.getincrementaldecoder(chosen)(errors="replace").decode(data[: 1 << 16], final=False)
    if _control_fraction(text) > MAX_CONTROL_FRACTION:
        raise EncodingError(f"{name}: not a text file in a known encoding (decoded as {chosen} it is more than "
                            f"{MAX_CONTROL_FRACTION:.0%} control characters)")  # fmt: skip
    return chosen


def _most_coherent(data: bytes, encodings: list[str]) -> str:
    """Of codecs that all decode `data`, the one whose text reads as language (charset-normalizer)."""
    from charset_normalizer import from_bytes

    best = from_bytes(data[:SAMPLE_BYTES], cp_isolation=[e.replace("-", "_") for e in encodings]).best()
    if best is None:
        return encodings[0]
    for e in encodings:
        if codecs.lookup(e).name == codecs.lookup(best.encoding).name:
            return e
    return encodings[0]


def _sample(f) -> tuple[bytes, bytes, bool]:
    """(head, sample, complete): the file's first bytes (for a BOM), the block to judge, and whether it ends
    the file. The judged block is the first block with a non-ASCII byte, from its first line start."""
    head = f.read(SAMPLE_BYTES)
    if not head.isascii() or len(head) < SAMPLE_BYTES:
        return head, head, len(head) < SAMPLE_BYTES
    while True:
        block = f.read(SAMPLE_BYTES)
        if not block:
            return head, head, True
        if not block.isascii():
            nl = block.find(b"\n")
            rest = f.read(4096)  # finish a character cut at the block's end when the file goes on
            return head, block[nl + 1 :] + rest if nl >= 0 else block + rest, not rest


def detect_file_encoding(path: str | Path) -> str:
    """The encoding of a file (a .gz file: of its decompressed content); EncodingError names the file."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head, sample, complete = _sample(f)
    except (OSError, EOFError) as e:
        raise EncodingError(f"{path}: cannot be read ({e})") from None
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    if sample is not head and b"\0" in head:
        raise EncodingError(f"{path}: not a text file in a known encoding (it holds NUL bytes)")
    return detect_encoding(sample, final=complete, name=str(path))


def decode(raw: bytes, encoding: str) -> tuple[str, int]:
    """Decode with `encoding`, replacing invalid bytes with U+FFFD: (text, number of replaced sequences)."""
    try:
        return raw.decode(encoding), 0
    except UnicodeDecodeError:
        text = raw.decode(encoding, errors="replace")
        return text, text.count("\ufffd") - raw.count("\ufffd".encode())


__all__ = ["WIDE_ENCODINGS", "EncodingError", "decode", "detect_encoding", "detect_file_encoding"]
