"""How a tokenizer does on some text: compression by script (Han, Latin, other) and encode throughput.

Every token is attributed to one script: Han if any of its bytes belongs to a Han character, else Latin if
any belongs to a Latin letter, else other (digits, punctuation, spaces, other scripts). A token that holds
part of a character counts that character's script; characters are counted at their first byte, so the
rows add up to the totals exactly.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gptkit.text_inputs import TextInputs, iter_texts
from gptkit.tokenizer.core import Tokenizer, TokenizerError

SCRIPTS = ("other", "Latin", "Han")  # index = priority when a token spans several
# Inclusive code point ranges.
_HAN = ((0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
_HAN_SUPPLEMENTARY = ((0x20000, 0x3FFFF),)
_LATIN = ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x24F), (0x1E00, 0x1EFF), (0xFF21, 0xFF3A))
_LATIN_FULLWIDTH_LOWER = ((0xFF41, 0xFF5A),)
BATCH_CHARS = 4 << 20  # texts are measured in batches of about this many characters


@dataclass
class ScriptRow:
    script: str
    tokens: int = 0
    bytes: int = 0
    chars: int = 0

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0


@dataclass
class TokenizerReport:
    rows: list[ScriptRow]  # Han, Latin, other, then "all"
    encode_mb_s_one_thread: float
    encode_mb_s_all_threads: float
    threads: int
    n_texts: int

    def to_dict(self) -> dict[str, Any]:
        rows = [
            {**asdict(r), "bytes_per_token": r.bytes_per_token, "chars_per_token": r.chars_per_token} for r in self.rows
        ]
        return {**asdict(self), "rows": rows}


def _in_ranges(cps: np.ndarray, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
    mask = np.zeros(cps.shape, dtype=bool)
    for lo, hi in ranges:
        mask |= (cps >= lo) & (cps <= hi)
    return mask


def script_counts(tok: Tokenizer, text: str, ids: Sequence[int]) -> np.ndarray:
    """(3, 3) int64: rows SCRIPTS (other, Latin, Han), columns (tokens, bytes, chars) for `ids` = encode(text)."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (n_chars,)
    script = np.zeros(cps.shape, dtype=np.int8)
    script[_in_ranges(cps, _LATIN + _LATIN_FULLWIDTH_LOWER)] = 1
    script[_in_ranges(cps, _HAN + _HAN_SUPPLEMENTARY)] = 2
    utf8_len = 1 + (cps >= 0x80) + (cps >= 0x800) + (cps >= 0x10000)  # (n_chars,)
    byte_script = np.repeat(script, utf8_len)  # (n_bytes,)
    is_first_byte = np.zeros(byte_script.shape, dtype=np.int64)
    is_first_byte[np.cumsum(utf8_len) - utf8_len] = 1
    lengths = np.fromiter((len(tok.token_bytes(i)) for i in ids), dtype=np.int64, count=len(ids))  # (n_tokens,)
    if int(lengths.sum()) != byte_script.size:
        raise TokenizerError(
            "the tokens' bytes do not add up to the text (this tokenizer does not round-trip it exactly, "
            "e.g. it normalises text), so tokens cannot be attributed to scripts"
        )
    out = np.zeros((3, 3), dtype=np.int64)
    if not len(ids):
        return out
    starts = np.cumsum(lengths) - lengths
    token_script = np.maximum.reduceat(byte_script, starts)
    chars = np.add.reduceat(is_first_byte, starts)
    out[:, 0] = np.bincount(token_script, minlength=3)
    out[:, 1] = np.bincount(token_script, weights=lengths, minlength=3)
    out[:, 2] = np.bincount(token_script, weights=chars, minlength=3)
    return out


@contextlib.contextmanager
def parallelism(enabled: bool) -> Iterator[None]:
    """Let the `tokenizers` backend use all cores (True) or one (False) inside the block."""
    old = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if enabled else "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = old


def encode_throughput(tok: Tokenizer, texts: list[str], *, all_threads: bool) -> float:
    """MB/s (UTF-8 megabytes of text per second) of `tok.encode_batch(texts)`; best of two runs."""
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    best = float("inf")
    with parallelism(all_threads):
        for _ in range(2):
            start = time.perf_counter()
            tok.encode_batch(texts)
            best = min(best, time.perf_counter() - start)
    return n_bytes / 1e6 / best


def _batches(inputs: TextInputs, progress: bool) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for text in iter_texts(inputs, progress=progress):
        batch.append(text)
        size += len(text)
        if size >= BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def tokenizer_counts(tok: Tokenizer, inputs: TextInputs, *, progress: bool = False) -> np.ndarray:
    """(3, 3) int64 `script_counts` summed over all of `inputs` (paths or texts)."""
    counts = np.zeros((3, 3), dtype=np.int64)
    for batch in _batches(inputs, progress):
        counts += script_counts(tok, "".join(batch), [i for ids in tok.encode_batch(batch) for i in ids])
    return counts


def tokenizer_report(
    tok: Tokenizer, inputs: TextInputs, *, max_chars: int | None = None, progress: bool = False
) -> TokenizerReport:
    """Compression by script over `inputs` (paths or texts; the first `max_chars` characters if given), and
    encode throughput on the lines of its first ~16 M characters, on one thread and on all."""
    counts = np.zeros((3, 3), dtype=np.int64)
    sample: list[str] = []
    sample_chars = 0
    n_texts = 0
    seen = 0
    for batch in _batches(inputs, progress):
        if max_chars is not None:
            batch = _clip(batch, max_chars - seen)
        seen += sum(len(t) for t in batch)
        n_texts += len(batch)
        # Token bytes concatenate to the text bytes, so a batch is measured in one piece.
        counts += script_counts(tok, "".join(batch), [i for ids in tok.encode_batch(batch) for i in ids])
        if sample_chars < 16 << 20:
            sample.extend(batch)
            sample_chars += sum(len(t) for t in batch)
        if max_chars is not None and seen >= max_chars:
            break
    documents = [line for text in sample for line in text.splitlines(keepends=True)]  # .txt comes in chunks
    rows = [ScriptRow(name, *map(int, counts[i])) for i, name in reversed(list(enumerate(SCRIPTS)))]
    rows.append(ScriptRow("all", *map(int, counts.sum(axis=0))))
    return TokenizerReport(
        rows=rows,
        encode_mb_s_one_thread=encode_throughput(tok, documents, all_threads=False),
        encode_mb_s_all_threads=encode_throughput(tok, documents, all_threads=True),
        threads=os.cpu_count() or 1,
        n_texts=n_texts,
    )


def _clip(batch: list[str], budget: int) -> list[str]:
    out: list[str] = []
    for text in batch:
        if budget <= 0:
            break
        out.append(text[:budget])
        budget -= len(out[-1])
    return out
