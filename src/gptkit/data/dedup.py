"""Exact and near-duplicate detection over many input splits, with small per-document state.

Exact duplicates: documents whose text is identical once whitespace runs are collapsed (BLAKE2b-128).

Near duplicates: MinHash with datasketch over shingles -- character 5-grams for Chinese (spaces and
punctuation removed, lower-cased), word 5-grams for English -- then LSH banding and verification:
  - 112 permutations in 14 bands of 8 rows, FineWeb's setting (Penedo et al. 2024, section 3.5). Two
    documents with Jaccard similarity s share a band with probability 1 - (1 - s^8)^14: 0.21 at s = 0.6,
    0.52 at 0.7, 0.92 at 0.8, 0.9996 at 0.9 (an S-curve with its middle at (1/14)^(1/8) ~ 0.72).
  - a candidate pair counts as duplicate when its MinHash estimate of Jaccard similarity is >= 0.75,
    which removes most candidates that only shared a band by chance (FineWeb keeps every band match).
  - duplicate pairs are joined into clusters (union-find); each cluster keeps its first document in input
    order and drops the rest.
A document shorter than 5 tokens is one shingle; one without any letter or digit takes no part.

State: the per-split worker writes each kept document's signature (112 x uint32 = 448 bytes, band-major) and
exact hash (16 bytes) to disk. The steps below are separate tasks (gptkit.data.dedup_tasks), each over one hash
partition of the documents: exact_pairs (one partition's hashes), lsh_pairs (one band's rows of one partition:
32 B per document, plus its key, sort order and group bookkeeping), resolve_duplicates (candidate pairs, then
union-find parents, flags and roots, ~25 B per document). benchmarks/prepare.py measures each per document.
The banded sort gives the same candidates as datasketch's MinHashLSH with params=(14, 8) (tested), without
its per-document Python objects (several KB each).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from datasketch import MinHash  # at the top on purpose: imported once before the workers fork (docs/prepare.md)

from gptkit.data.dedup_config import DedupConfig, SignatureConfig
from gptkit.data.ngrams import codepoints, ngram_hashes, word_tokens, words

# constants for hashing a band's rows into one uint64 (exact row equality is checked after the sort)
_BAND_C = (np.random.default_rng(7).integers(0, 2**63, 64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)).astype(
    np.uint64
)


def exact_hash(text: str) -> bytes:
    """16-byte BLAKE2b of the text with whitespace runs collapsed."""
    return hashlib.blake2b(" ".join(text.split()).encode(), digest_size=16).digest()


@lru_cache(maxsize=1)
def _alnum_bmp() -> np.ndarray:
    """(65536,) bool: str.isalnum() of every BMP code point (built once, ~10 ms)."""
    return np.array([chr(c).isalnum() for c in range(0x10000)], dtype=bool)


def alnum_mask(cp: np.ndarray) -> np.ndarray:
    """Which code points are letters or digits (str.isalnum(): the characters a regex [\\W_]+ removal keeps),
    for many characters at once: a table lookup for the BMP, Python for the rare others. Much faster than a
    regex substitution, which pays per punctuation run."""
    keep = np.zeros(len(cp), dtype=bool)
    bmp = cp < 0x10000
    keep[bmp] = _alnum_bmp()[cp[bmp]]
    for i in np.flatnonzero(~bmp):
        keep[i] = chr(int(cp[i])).isalnum()
    return keep


def shingles(text: str, lang: str, n: int) -> np.ndarray:
    """uint32 hashes of the document's shingles: character n-grams (zh) or word n-grams (other)."""
    if lang == "zh":
        cp = codepoints(text.lower())
        tokens = cp[alnum_mask(cp)]
    else:
        tokens = word_tokens(words(text))
    if len(tokens) == 0:
        return np.zeros(0, dtype=np.uint32)
    h = ngram_hashes(tokens, min(n, len(tokens)))
    return (h >> np.uint64(32)).astype(np.uint32)


def batch_shingles(texts: Sequence[str], langs: Sequence[str], n: int) -> list[np.ndarray]:
    """`shingles` for many documents at once: the Chinese ones are joined and hashed with one set of numpy
    operations (per document only a slice is taken), which removes numpy's per-call cost on short texts."""
    out: list[np.ndarray | None] = [None] * len(texts)
    zh = [i for i, lang in enumerate(langs) if lang == "zh"]
    if zh:
        lowered = [texts[i].lower() for i in zh]  # per document: lower() depends on context (final sigma)
        cp = codepoints("".join(lowered))
        keep = alnum_mask(cp)
        cp = cp[keep]
        # kept characters before each document's start and end -> its start and length in cp
        bounds = np.concatenate([[0], np.cumsum(np.fromiter(map(len, lowered), dtype=np.int64, count=len(zh)))])
        kept_before = np.concatenate([[0], np.cumsum(keep)])[bounds]
        starts, lengths = kept_before[:-1], np.diff(kept_before)
        h = (ngram_hashes(cp, n) >> np.uint64(32)).astype(np.uint32)
        for k, i in enumerate(zh):
            s0, length = int(starts[k]), int(lengths[k])
            if length >= n:
                out[i] = h[s0 : s0 + length - n + 1]
            elif length:
                out[i] = (ngram_hashes(cp[s0 : s0 + length], length) >> np.uint64(32)).astype(np.uint32)
            else:
                out[i] = np.zeros(0, dtype=np.uint32)
    for i, lang in enumerate(langs):
        if lang != "zh":
            out[i] = shingles(texts[i], lang, n)
    return out  # type: ignore[return-value]


def _identity(x: int) -> int:
    return x


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix of datasketch's "affine32" scheme (uint32 wrap-around)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """MinHash signatures with datasketch's permutations ("affine32": h -> a * fmix32(h) + b mod 2^32, then the
    minimum over the shingles), computed for many documents in one set of numpy operations. Per document the
    result is bit-identical to `datasketch.MinHash(num_perm, seed, hashfunc=identity).update_batch(shingles)`
    (tested); batching removes datasketch's per-document overhead, which dominates on short documents."""

    BATCH_SHINGLES = 1 << 14  # (112, 16384) uint32 = 7 MB of work space per batch (measured: 2x or 4x no faster)

    def __init__(self, cfg: DedupConfig | SignatureConfig) -> None:
        self.cfg = cfg
        # shingles are already uniformly hashed 32-bit values, so the hash function is the identity
        mh = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=_identity)
        if mh.scheme != "affine32":
            raise RuntimeError(f"datasketch's default MinHash scheme is {mh.scheme!r}; gptkit expects 'affine32'")
        self.a, self.b = (np.asarray(x, dtype=np.uint32) for x in mh.permutations)

    def signatures(self, shingle_sets: list[np.ndarray]) -> np.ndarray:
        """(len(shingle_sets), num_perm) uint32; a document without shingles gets a row of NO_SIGNATURE."""
        out = np.full((len(shingle_sets), self.cfg.num_perm), NO_SIGNATURE, dtype=np.uint32)
        nonempty = [i for i, s in enumerate(shingle_sets) if len(s)]
        start = 0
        while start < len(nonempty):  # batches of about BATCH_SHINGLES shingles
            end, total = start, 0
            while end < len(nonempty) and (
                end == start or total + len(shingle_sets[nonempty[end]]) <= self.BATCH_SHINGLES
            ):
                total += len(shingle_sets[nonempty[end]])
                end += 1
            docs = nonempty[start:end]
            hv = fmix32(np.concatenate([shingle_sets[i] for i in docs]).astype(np.uint32))
            # (num_perm, shingles), wrapping mod 2^32: a document's minimum per permutation is then a reduction
            # over contiguous memory, numpy's fast path (several times faster than down the columns of the
            # (shingles, num_perm) layout); outer + in-place add also beats broadcasting a[None] * hv[:, None]
            phv = np.multiply.outer(self.a, hv)
            phv += self.b[:, None]
            offsets = np.cumsum([0] + [len(shingle_sets[i]) for i in docs[:-1]])
            out[docs] = np.minimum.reduceat(phv, offsets, axis=1).T
            start = end
        return out

    def signature(self, text: str, lang: str) -> np.ndarray | None:
        """(num_perm,) uint32 for one document, or None for a document without shingles."""
        sh = shingles(text, lang, self.cfg.ngram)
        return self.signatures([sh])[0] if len(sh) else None


NO_SIGNATURE = np.iinfo(np.uint32).max  # a row of these marks a document without shingles


# --- the global task ------------------------------------------------------------------------------------


RULES = {1: "exact-duplicate", 2: "near-duplicate"}


@dataclass
class DedupResult:
    # per split: (local indices of dropped documents, rule codes (see RULES), global index of the kept one)
    drops: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    exact_removed: int
    near_removed: int
    clusters: int  # duplicate clusters (groups of two or more documents, one kept)
    candidate_pairs: int


class _UnionFind:
    """Parents point to smaller indices, so a root is the first document of its cluster."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, x: int) -> int:
        p = self.parent
        while p[x] != x:
            p[x] = p[p[x]]
            x = int(p[x])
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self) -> np.ndarray:
        """Every element's root, by vectorised pointer jumping (parents only point downwards)."""
        p = self.parent.copy()
        while True:
            q = p[p]
            if np.array_equal(q, p):
                return p
            p = q


def write_signatures(f, sigs: np.ndarray, bands: int) -> None:
    """Write (n, num_perm) signatures band-major, as (bands, n, rows): the dedup task then reads one band of
    every document (32 bytes each) without touching the rest of the file."""
    n, p = sigs.shape
    f.write(np.ascontiguousarray(sigs.reshape(n, bands, p // bands).transpose(1, 0, 2)).tobytes())


def rows_to_band_major(rows_path: Path, f, num_perm: int, bands: int, chunk: int = 1 << 14) -> None:
    """Transpose a row-major (n, num_perm) uint32 file (as the clean task streams it) into `f`, band-major."""
    n = rows_path.stat().st_size // (4 * num_perm)
    rows = num_perm // bands
    base = f.tell()
    mm = np.memmap(rows_path, dtype=np.uint32, mode="r", shape=(n, num_perm)) if n else np.zeros((0, num_perm))
    for start in range(0, n, chunk):
        block = np.asarray(mm[start : start + chunk]).reshape(-1, bands, rows)
        for b in range(bands):
            f.seek(base + (b * n + start) * rows * 4)
            f.write(np.ascontiguousarray(block[:, b, :]).tobytes())
    del mm
    f.seek(base + n * num_perm * 4)


class _SignatureFiles:
    """The per-split band-major signature files, addressed by global document index."""

    def __init__(self, paths: Sequence[Path], cfg: DedupConfig | SignatureConfig) -> None:
        self.paths, self.cfg = list(paths), cfg
        self.sizes = []
        for p in self.paths:
            size = p.stat().st_size
            if size % (4 * cfg.num_perm):
                raise ValueError(f"{p}: size {size} is not a whole number of {cfg.num_perm}-value signatures")
            self.sizes.append(size // (4 * cfg.num_perm))
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def split_band(self, s: int, b: int) -> np.ndarray:
        """(n_s, rows) uint32: band b of split s's documents, read into memory (not mapped: RSS stays honest)."""
        n, r = self.sizes[s], self.cfg.rows
        return np.fromfile(self.paths[s], dtype=np.uint32, count=n * r, offset=b * n * r * 4).reshape(n, r)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), num_perm) full signatures of the given documents."""
        cfg = self.cfg
        out = np.empty((len(idx), cfg.num_perm), dtype=np.uint32)
        split = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(split):
            m = split == s
            mm = np.memmap(self.paths[s], dtype=np.uint32, mode="r", shape=(cfg.bands, self.sizes[s], cfg.rows))
            local = idx[m] - self.offsets[s]
            out[m] = np.asarray(mm[:, local, :]).transpose(1, 0, 2).reshape(len(local), cfg.num_perm)
            del mm
        return out


def _hash_counts(paths: Sequence[Path]) -> list[int]:
    counts = []
    for p in paths:
        if p.stat().st_size % 16:
            raise ValueError(f"{p}: size {p.stat().st_size} is not a whole number of 16-byte hashes")
        counts.append(p.stat().st_size // 16)
    return counts


def _band_keys(rows: np.ndarray) -> np.ndarray:
    """(n,) uint64: a hash of each row of a band, column by column (never widened to an (n, rows) uint64 copy)."""
    key = np.zeros(len(rows), dtype=np.uint64)
    for c in range(rows.shape[1]):
        key += rows[:, c].astype(np.uint64) * _BAND_C[c]  # wraps mod 2^64
    return key


def _equal_row_pairs(rows: np.ndarray, idx: np.ndarray, key: np.ndarray) -> np.ndarray:
    """(K, 2) pairs (first, other) of documents `idx` (ascending) whose rows are equal; `first` is the smallest
    index of its group."""
    if len(idx) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.argsort(key, kind="stable")  # stable: equal keys stay in index order
    key = key[order]
    starts = np.ones(len(order), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=starts[1:])
    del key
    group = np.cumsum(starts) - 1  # group number of each sorted position
    first = order[np.flatnonzero(starts)][group]
    member = ~starts
    a, b = first[member], order[member]
    same = (rows[a] == rows[b]).all(axis=1)  # drop the rare key collisions between different rows
    return np.stack([idx[a[same]], idx[b[same]]], axis=1)


def band_candidates(band: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(K, 2) int64 pairs (first, other) of valid documents whose rows in this band are identical; `first`
    is the smallest index of the group of equal rows. Memory: about 50 bytes per document on top of the
    band itself."""
    idx = np.flatnonzero(valid)
    rows = band[idx]
    return _equal_row_pairs(rows, idx, _band_keys(rows))


# --- the partitioned steps: each a task of its own (gptkit.data.dedup_tasks) -----------------------------
# A partition is a residue class of a hash (the exact hash's first word, a band row's key): every group of
# equal hashes or equal rows falls into exactly one partition, so the partitions together find exactly what
# one pass over everything finds, and each holds only its share of the documents in memory.


def exact_pairs(hash_paths: Sequence[Path], partition: int = 0, partitions: int = 1) -> np.ndarray:
    """(K, 2) int64 [duplicate, first] over every split: documents whose exact hash an earlier document (by
    global index) has, among the documents whose hash falls into `partition`."""
    parts_h, parts_i, offset = [], [], 0
    for p, n in zip(hash_paths, _hash_counts(hash_paths), strict=True):
        h = np.fromfile(p, dtype=np.uint64).reshape(n, 2)
        mine = np.flatnonzero(h[:, 0] % np.uint64(partitions) == partition)
        parts_h.append(h[mine])
        parts_i.append(mine + offset)
        offset += n
    if not parts_h or offset == 0:
        return np.zeros((0, 2), dtype=np.int64)
    h, idx = np.concatenate(parts_h), np.concatenate(parts_i)
    order = np.lexsort((h[:, 1], h[:, 0]))  # stable: index order inside equal hashes
    hs = h[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (hs[1:] != hs[:-1]).any(axis=1)
    first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    return np.stack([idx[order[~starts]], idx[first[~starts]]], axis=1)


def lsh_pairs(
    sig_paths: Sequence[Path], cfg: DedupConfig | SignatureConfig, band: int, partition: int = 0, partitions: int = 1
) -> np.ndarray:
    """(K, 2) int64 candidate pairs (first, other) of LSH band `band`, among the documents whose band row
    falls into `partition`: reads only that band's rows of every split (32 bytes per document) and keeps its
    share. Documents without shingles (rows of NO_SIGNATURE) take no part."""
    sigs = _SignatureFiles(sig_paths, cfg)
    rows, idx, keys = [], [], []
    for s in range(len(sig_paths)):
        r = sigs.split_band(s, band)
        key = _band_keys(r)
        mine = np.flatnonzero((key % np.uint64(partitions) == partition) & ~(r == NO_SIGNATURE).all(axis=1))
        rows.append(r[mine])
        idx.append(mine + sigs.offsets[s])
        keys.append(key[mine])
    if not rows:
        return np.zeros((0, 2), dtype=np.int64)
    return _equal_row_pairs(np.concatenate(rows), np.concatenate(idx), np.concatenate(keys))


def resolve_duplicates(
    sig_paths: Sequence[Path], exact: np.ndarray, candidates: np.ndarray, cfg: DedupConfig
) -> DedupResult:
    """The one global step: exact pairs [duplicate, first] and LSH candidates of every band and partition ->
    verified near pairs (estimated Jaccard >= threshold), clusters by union-find (the root is always the
    smallest document index: "keep the first"), and what each split drops. Candidates touching an exact
    duplicate are left out: its first copy has the same rows and is a candidate in its place."""
    sigs = _SignatureFiles(sig_paths, cfg)
    n = int(sigs.offsets[-1])
    uf = _UnionFind(n)
    reason = np.zeros(n, dtype=np.int8)  # 0 kept, 1 exact duplicate, 2 near duplicate
    if len(exact):
        uf.parent[exact[:, 0]] = exact[:, 1]  # the first of each group is its smallest index, a root
        reason[exact[:, 0]] = 1
    n_exact = len(exact)
    n_pairs = 0
    if len(candidates):
        cand = candidates[(reason[candidates[:, 0]] == 0) & (reason[candidates[:, 1]] == 0)]
        cand = np.unique(cand, axis=0)
        n_pairs = len(cand)
        if n_pairs:
            similar = (sigs.rows(cand[:, 0]) == sigs.rows(cand[:, 1])).mean(axis=1) >= cfg.threshold
            for a, b in cand[similar].tolist():
                uf.union(a, b)
    roots = uf.roots()
    dup = roots != np.arange(n)
    reason[dup & (reason == 0)] = 2
    clusters = int((np.bincount(roots, minlength=n) >= 2).sum()) if n else 0
    drops = []
    for s in range(len(sig_paths)):
        lo, hi = int(sigs.offsets[s]), int(sigs.offsets[s + 1])
        local = np.flatnonzero(dup[lo:hi])
        drops.append((local, reason[lo:hi][local], roots[lo:hi][local]))
    return DedupResult(drops, n_exact, int((reason == 2).sum()), clusters, n_pairs)


def find_duplicates(
    sig_paths: Sequence[Path],
    hash_paths: Sequence[Path],
    cfg: DedupConfig,
    progress: Callable[[float], None] | None = None,
    partitions: int = 1,
) -> DedupResult:
    """Every step above in this process: what each split drops."""
    counts = _hash_counts(hash_paths)
    sizes = _SignatureFiles(sig_paths, cfg).sizes
    if sum(sizes) != sum(counts):
        raise ValueError(f"{sum(sizes)} signatures but {sum(counts)} exact hashes")
    empty = np.zeros((0, 2), dtype=np.int64)
    exact = [exact_pairs(hash_paths, p, partitions) for p in range(partitions)] if cfg.exact else []
    cand = []
    if cfg.near:
        for b in range(cfg.bands):
            cand += [lsh_pairs(sig_paths, cfg, b, p, partitions) for p in range(partitions)]
            if progress:
                progress((b + 1) / cfg.bands)
    return resolve_duplicates(sig_paths, np.concatenate([empty, *exact]), np.concatenate([empty, *cand]), cfg)
