"""Vectorised n-gram hashing over characters or words (numpy), shared by the repetition filters and MinHash.

An n-gram's hash is sum_k token[i+k] * C_k over uint64 with wrap-around, C_k fixed random odd constants:
a multiply-add hash that numpy evaluates for every position at once. Token values are Unicode code points
(characters) or CRC-32s of words; both are < 2^32, so two different n-grams collide only if
sum_k d_k * C_k == 0 mod 2^64 with |d_k| < 2^32, which for random odd C_k has probability ~2^-32 per pair.
The filters only count repeats (a rare collision shifts a ratio by one n-gram); MinHash mixes the values
again with datasketch's permutations.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

# 16 fixed odd 64-bit constants (from numpy's PCG64 with seed 20240607; any odd constants work).
_C = (np.random.default_rng(20240607).integers(0, 2**63, 16, dtype=np.uint64) * np.uint64(2) + np.uint64(1)).astype(
    np.uint64
)
MAX_N = len(_C)
_WORD = re.compile(r"\w+")


def codepoints(text: str) -> np.ndarray:
    """(len(text),) uint32 code points, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_tokens(ws: list[str]) -> np.ndarray:
    """(len(ws),) uint64 CRC-32 of each word (deterministic across processes, unlike hash())."""
    return np.fromiter((zlib.crc32(w.encode()) for w in ws), dtype=np.uint64, count=len(ws))


def ngram_hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """(len(tokens) - n + 1,) uint64 hashes of every n-gram; empty if there are fewer than n tokens."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"n must be in 1..{MAX_N}")
    m = len(tokens) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = tokens[:m] * _C[0]
    for k in range(1, n):
        h += tokens[k : k + m] * _C[k]
    return h
