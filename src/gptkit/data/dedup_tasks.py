"""The dedup stages of `prepare` as tasks over partitions (the methods are in gptkit.data.dedup):

  exact    per hash partition p: exact duplicates among the documents whose hash falls into p
           -> work/dedup/exact-PPPPP.npy, (K, 2) int64 [duplicate, first] by global document index
  lsh      per (band b, partition p): LSH candidates of band b among the documents whose band row falls into
           p, reading only band b of every split's signatures -> work/dedup/lsh-BB-PPPPP.npy, (K, 2) int64
  dedup    one task: candidates verified, union-find (root: the smallest index), the kept document's id per
           dropped one -> work/dedup/NNNNN.json per split, each a list of [local index, rule, kept id]

No task holds every signature: exact holds 24 bytes per document of its partition, lsh 32 + ~50 bytes per
document of its partition, dedup the candidate pairs and ~25 bytes per document (parents, flags, roots).
Every partitioning gives the same result (each group of equal hashes or rows lies in one partition).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from gptkit.data.dedup import RULES, DedupConfig, SignatureConfig, exact_pairs, lsh_pairs, resolve_duplicates
from gptkit.data.files import atomic_writer, write_json
from gptkit.data.tasks import clean_dir, work_dir


@dataclass(frozen=True)
class DedupLayout:
    n_splits: int
    partitions: int = 1  # hash partitions of the exact and LSH steps (the output does not depend on it)


def dedup_dir(out: Path) -> Path:
    return work_dir(out) / "dedup"


def _paths(out: Path, layout: DedupLayout, ext: str) -> list[Path]:
    return [clean_dir(out) / f"{i:05d}.{ext}" for i in range(layout.n_splits)]


def _save(path: Path, arr: np.ndarray) -> None:
    with atomic_writer(path, binary=True) as f:
        np.save(f, np.ascontiguousarray(arr, dtype=np.int64))


def exact_task(out: str, partition: int, layout: DedupLayout, progress: Callable[[int], None] | None = None) -> dict:
    outp, t0 = Path(out), time.perf_counter()
    pairs = exact_pairs(_paths(outp, layout, "hash"), partition, layout.partitions)
    _save(dedup_dir(outp) / f"exact-{partition:05d}.npy", pairs)
    return {"pairs": len(pairs), "seconds": time.perf_counter() - t0}


def lsh_task(
    out: str, item: list, cfg: SignatureConfig, layout: DedupLayout, progress: Callable[[int], None] | None = None
) -> dict:
    """item: [band, partition]."""
    band, partition = item
    outp, t0 = Path(out), time.perf_counter()
    pairs = lsh_pairs(_paths(outp, layout, "sig"), cfg, band, partition, layout.partitions)
    _save(dedup_dir(outp) / f"lsh-{band:02d}-{partition:05d}.npy", pairs)
    return {"pairs": len(pairs), "seconds": time.perf_counter() - t0}


def exact_items(cfg: DedupConfig | SignatureConfig, layout: DedupLayout) -> list[int]:
    return list(range(layout.partitions)) if cfg.exact else []


def lsh_items(cfg: DedupConfig | SignatureConfig, layout: DedupLayout) -> list[list[int]]:
    return [[b, p] for b in range(cfg.bands) for p in range(layout.partitions)] if cfg.near else []


def dedup_task(
    out: str, item: int, cfg: DedupConfig, layout: DedupLayout, progress: Callable[[int], None] | None = None
) -> dict:
    """The global step over the exact and LSH tasks' pairs -> work/dedup/NNNNN.json per split."""
    outp, t0 = Path(out), time.perf_counter()
    ddir, cdir = dedup_dir(outp), clean_dir(outp)

    def load(names: list[str]) -> np.ndarray:
        return np.concatenate([np.zeros((0, 2), dtype=np.int64), *(np.load(ddir / n) for n in names)])

    exact = load([f"exact-{p:05d}.npy" for p in exact_items(cfg, layout)])
    cand = load([f"lsh-{b:02d}-{p:05d}.npy" for b, p in lsh_items(cfg, layout)])
    res = resolve_duplicates(_paths(outp, layout, "sig"), exact, cand, cfg)
    # the ids of the kept documents that dropped ones point to: one streaming pass over the id files
    wanted = set(np.concatenate([kept for _, _, kept in res.drops]).tolist()) if res.drops else set()
    ids: dict[int, str] = {}
    g = 0
    for i in range(layout.n_splits):
        if len(ids) == len(wanted):
            break
        with open(cdir / f"{i:05d}.ids", encoding="utf-8") as f:
            for line in f:
                if g in wanted:
                    ids[g] = orjson.loads(line)[0]  # our own JSON lines: orjson reads them as json does
                g += 1
    for i, (local, code, kept) in enumerate(res.drops):
        rows = [[lo, RULES[c], ids[g]] for lo, c, g in zip(local.tolist(), code.tolist(), kept.tolist(), strict=True)]
        write_json(ddir / f"{i:05d}.json", rows, indent=None)
    return {
        "exact_duplicates": res.exact_removed, "near_duplicates": res.near_removed, "clusters": res.clusters,
        "candidate_pairs": res.candidate_pairs, "seconds": time.perf_counter() - t0,
    }  # fmt: skip
