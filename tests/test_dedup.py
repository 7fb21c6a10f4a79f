"""Exact and MinHash near-duplicate detection, checked against datasketch and brute-force Jaccard."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from gptkit.data.dedup import (
    NO_SIGNATURE,
    RULES,
    DedupConfig,
    MinHasher,
    band_candidates,
    batch_shingles,
    exact_hash,
    find_duplicates,
    rows_to_band_major,
    shingles,
    write_signatures,
)

CFG = DedupConfig()
ENGLISH_TEXT = "The quick brown fox jumps over the lazy dog near the river bank today."
TEXTS = [
    ("今天天气很好，我们一起去公园散步吧。公园里的花都开了，非常漂亮。", "zh"),
    ("机器学习是人工智能的一个分支，研究计算机如何从数据中学习规律。", "zh"),
    ("The quick brown fox jumps over the lazy dog near the river bank today.", "en"),
    ("短", "zh"),
]


@pytest.mark.parametrize("batch_shingles", [MinHasher.BATCH_SHINGLES, 16])  # one batch; many batches
def test_batched_signatures_equal_datasketch(batch_shingles):
    hasher = MinHasher(CFG)
    hasher.BATCH_SHINGLES = batch_shingles
    sets = [shingles(t, lang, CFG.ngram) for t, lang in TEXTS] + [np.zeros(0, np.uint32)]
    sigs = hasher.signatures(sets)
    for sh, row in zip(sets, sigs, strict=True):
        if len(sh) == 0:
            assert (row == NO_SIGNATURE).all()
            continue
        ref = MinHash(num_perm=CFG.num_perm, seed=CFG.seed, hashfunc=lambda x: x)
        ref.update_batch(sh.tolist())
        assert np.array_equal(ref.hashvalues.astype(np.uint32), row)


def test_batched_shingles_equal_one_at_a_time():
    rng = np.random.default_rng(4)
    texts, langs = [], []
    for k in range(60):
        n = int(rng.integers(0, 40))
        texts.append("".join(rng.choice(list("的一是在不了有和人这中大为，。 AbC"), n)) if k % 5 else ENGLISH_TEXT)
        langs.append("zh" if k % 5 else "en")
    for got, text, lang in zip(batch_shingles(texts, langs, 5), texts, langs, strict=True):
        assert np.array_equal(got, shingles(text, lang, 5))


def test_alnum_mask_keeps_what_removing_non_word_characters_keeps():
    import re

    from gptkit.data.dedup import alnum_mask
    from gptkit.data.ngrams import codepoints

    bmp = [*range(0xD800), *range(0xE000, 0x10000)]  # every BMP character but surrogates (normalisation drops them)
    text = "".join(map(chr, bmp)) + "😀𝟘𠀀\U000e0001𝔸_"  # and some astral ones
    expected = [re.fullmatch(r"[\W_]", c) is None for c in text]
    assert alnum_mask(codepoints(text)).tolist() == expected


def test_shingles_ignore_punctuation_and_case():
    a = shingles("今天天气很好，我们去公园。", "zh", 5)
    b = shingles("今天天气很好 我们去公园！", "zh", 5)
    assert set(a.tolist()) == set(b.tolist())
    assert set(shingles("Hello, World!", "en", 5).tolist()) == set(shingles("hello world", "en", 5).tolist())
    assert len(shingles("短", "zh", 5)) == 1  # shorter than n: one shingle
    assert len(shingles("。。！", "zh", 5)) == 0


def test_minhash_estimate_tracks_true_jaccard():
    rng = np.random.default_rng(1)
    hasher = MinHasher(CFG)
    errors = []
    for target in (0.2, 0.5, 0.8, 0.95):
        for _ in range(10):
            universe = rng.choice(2**32, 600, replace=False).astype(np.uint32)
            k = round(400 * 2 * target / (1 + target))  # |A & B| for |A| = |B| = 400 and Jaccard `target`
            a = universe[:400]
            b = np.concatenate([universe[:k], universe[400 : 400 + 400 - k]])
            true = len(set(a.tolist()) & set(b.tolist())) / len(set(a.tolist()) | set(b.tolist()))
            sa, sb = hasher.signatures([a, b])
            errors.append(abs((sa == sb).mean() - true))
    # one estimate has standard deviation sqrt(J(1-J)/112) <= 0.047
    assert np.mean(errors) < 0.04 and max(errors) < 0.2


def test_band_candidates_match_datasketch_lsh():
    rng = np.random.default_rng(2)
    n, p = 300, CFG.num_perm
    sigs = rng.integers(0, 2**32, (n, p), dtype=np.uint64).astype(np.uint32)
    for i in range(0, 60, 3):  # plant pairs that share one to three bands
        for b in rng.choice(CFG.bands, rng.integers(1, 4), replace=False):
            sigs[i + 1, b * CFG.rows : (b + 1) * CFG.rows] = sigs[i, b * CFG.rows : (b + 1) * CFG.rows]
    sigs[50:53] = sigs[49]  # a group of identical signatures
    sigs[100, 16:24] = sigs[200, 16:24]  # one shared band
    sigs[101, 104:112] = sigs[7, 104:112]
    valid = np.ones(n, dtype=bool)
    ours: set[tuple[int, int]] = set()
    for b in range(CFG.bands):
        pairs = band_candidates(sigs[:, b * CFG.rows : (b + 1) * CFG.rows], valid)
        groups: dict[int, set[int]] = {}
        for first, other in pairs.tolist():
            groups.setdefault(first, {first}).add(other)
        for g in groups.values():
            ours |= {tuple(sorted(x)) for x in itertools.combinations(g, 2)}
    lsh = MinHashLSH(num_perm=p, params=(CFG.bands, CFG.rows))
    mhs = [MinHash(hashvalues=row, scheme="affine32") for row in sigs]
    for i, m in enumerate(mhs):
        lsh.insert(i, m)
    ref = {tuple(sorted((i, j))) for i, m in enumerate(mhs) for j in lsh.query(m) if j != i}
    assert ours == ref and (100, 200) in ours and (7, 101) in ours and (49, 52) in ours


def _write_split(directory: Path, i: int, texts: list[tuple[str, str]], hasher: MinHasher) -> None:
    (directory / f"{i:05d}.hash").write_bytes(b"".join(exact_hash(t) for t, _ in texts))
    sets = [shingles(t, lang, CFG.ngram) for t, lang in texts]
    with open(directory / f"{i:05d}.sig", "wb") as f:
        write_signatures(f, hasher.signatures(sets), CFG.bands)


def test_find_duplicates_across_splits(tmp_path):
    base = "城市交通拥堵是许多大城市共同面临的难题，早晚高峰尤其明显，地铁建设大大缩短了市民的通勤时间。"
    near = base.replace("难题", "问题")  # one word changed: Jaccard of 5-gram sets ~ 0.8
    other = "研究人员统计了五条线路开通前后的客流变化，结果显示沿线居民平均每天节省约二十分钟。"
    en = "Dutch farmers turn to floating barns as sea levels rise along the coast and land becomes scarce."
    splits = [
        [(base, "zh"), (other, "zh"), ("。。。", "zh")],  # the last has no shingles and takes no part
        [(base + "  ", "zh"), (en, "en"), (near, "zh")],  # an exact copy (spacing aside) and a near copy
        [(other, "zh"), (en.replace("scarce", "rare"), "en")],
    ]
    hasher = MinHasher(CFG)
    for i, texts in enumerate(splits):
        _write_split(tmp_path, i, texts, hasher)
    res = find_duplicates(
        [tmp_path / f"{i:05d}.sig" for i in range(3)], [tmp_path / f"{i:05d}.hash" for i in range(3)], CFG
    )
    drops = [{lo: (RULES[c], g) for lo, c, g in zip(*(a.tolist() for a in d), strict=True)} for d in res.drops]
    assert drops[0] == {}
    assert drops[1] == {0: ("exact-duplicate", 0), 2: ("near-duplicate", 0)}
    assert drops[2] == {0: ("exact-duplicate", 1), 1: ("near-duplicate", 4)}
    assert (res.exact_removed, res.near_removed, res.clusters) == (2, 2, 3)
    off = find_duplicates(
        [tmp_path / f"{i:05d}.sig" for i in range(3)],
        [tmp_path / f"{i:05d}.hash" for i in range(3)],
        DedupConfig(near=False),
    )
    assert off.near_removed == 0 and off.exact_removed == 2


def test_config_checks_bands():
    with pytest.raises(ValueError, match="bands x rows"):
        DedupConfig(bands=10, rows=8)


def test_band_major_transposition(tmp_path):
    rng = np.random.default_rng(3)
    sigs = rng.integers(0, 2**32, (1000, CFG.num_perm), dtype=np.uint64).astype(np.uint32)
    rows = tmp_path / "rows"
    rows.write_bytes(sigs.tobytes())
    with open(tmp_path / "a.sig", "wb") as f:
        rows_to_band_major(rows, f, CFG.num_perm, CFG.bands, chunk=77)
    with open(tmp_path / "b.sig", "wb") as f:
        write_signatures(f, sigs, CFG.bands)
    band_major = np.fromfile(tmp_path / "a.sig", dtype=np.uint32).reshape(CFG.bands, 1000, CFG.rows)
    assert (tmp_path / "a.sig").read_bytes() == (tmp_path / "b.sig").read_bytes()
    assert np.array_equal(band_major[3, 17], sigs[17, 3 * CFG.rows : 4 * CFG.rows])
