"""The scaling part of benchmarks/prepare.py: per-task costs measured here -> the expected wall time of
`prepare --executor ray` on 100 GB of text with 1, 8 and 64 nodes of 32 cores.

The model (every input a figure measured in the same benchmark run, on this machine, in CPU seconds: the
machine is shared by other jobs, which stretches wall times but not CPU time):
  per-split stages (clean, documents, tokenize)  CPU seconds per input MB (the tasks' own, summed), spread over
                                                 every core: 100 GB x cost / cores
  exact (P hash partitions)                      a task reads every split's hashes (16 B per document) and sorts
                                                 its 1/P share: t(P) = N (r + s / P), r and s fitted from one
                                                 partition of P=1 and of P=4 on synthetic documents
  lsh (14 bands x P partitions)                  the same form, band rows of 32 B per document
  dedup (verify + union-find)                    one task, linear in documents (measured on synthetic documents
                                                 with 2% near duplicates; more duplicates, more candidates)
  tokenizer training                             one task on a sample of at most --tokenizer-sample-mb (256 MB):
                                                 CPU seconds per trained MB measured here, times the sample (as
                                                 if on one core: an upper bound; BPE training is linear in the
                                                 sample only roughly, assumed)
P for exact and LSH is the power of two up to the number of cores that gives the smallest wall time. Assumed,
not measured: storage keeps up (every node reads the shared --out at the rate measured here from the page
cache), Ray's scheduling cost per task is what it is on one node, and a 32-core node runs 32 tasks at the
speed of one of this machine's cores.
"""

from __future__ import annotations

import json
import math
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

GB_TARGET = 100
CORES_PER_NODE = 32
NODES = (1, 8, 64)
BANDS = 14


def task_costs(out: Path) -> dict:
    """Per stage, from the runner's markers: number of tasks, the tasks' own seconds summed and the longest one,
    the stage's wall time; and the documents and MB of the input."""
    res: dict = {"stages": {}}
    for marker in sorted((out / "work" / "state").glob("*.json")):
        d = json.loads(marker.read_text())
        secs = [st.get("seconds", 0.0) for st in d["stats"]]
        res["stages"][marker.stem] = {
            "tasks": len(secs),
            "task_seconds": sum(secs),
            "task_cpu_seconds": sum(st.get("cpu_seconds", 0.0) for st in d["stats"]),
            "max_task_seconds": max(secs, default=0.0),
            "wall_seconds": d["seconds"],
        }
        if marker.stem == "clean":
            res["documents_in"] = sum(st["docs_in"] for st in d["stats"])
            res["documents_after_cleaning"] = sum(st["docs_out"] for st in d["stats"])
            res["input_mb"] = sum(st["bytes_in"] for st in d["stats"]) / 1e6
        if marker.stem == "tokenizer" and d["stats"]:
            res["tokenizer_trained_mb"] = d["stats"][0].get("trained_on_bytes", 0) / 1e6
    return res


def write_dedup_input(work: str, n_docs: int) -> list[tuple[str, str]]:
    """n_docs synthetic signatures and exact hashes (2% of signatures duplicated), in files of 100k."""
    import numpy as np

    from gptkit.data.dedup import DedupConfig, write_signatures

    cfg, rng, w = DedupConfig(), np.random.default_rng(0), Path(work)
    w.mkdir(parents=True, exist_ok=True)
    per, paths = 100_000, []
    for s in range((n_docs + per - 1) // per):
        n = min(per, n_docs - s * per)
        sig = rng.integers(0, 2**32, (n, cfg.num_perm), dtype=np.uint64).astype(np.uint32)
        sig[1::50] = sig[::50][: len(sig[1::50])]
        with open(w / f"{s:05d}.sig", "wb") as f:
            write_signatures(f, sig, cfg.bands)
        rng.integers(0, 2**63, (n, 2), dtype=np.uint64).tofile(w / f"{s:05d}.hash")
        paths.append((str(w / f"{s:05d}.sig"), str(w / f"{s:05d}.hash")))
    return paths


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(CPU seconds of this process, result): CPU time, not wall time, because other jobs share the machine."""
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def _peak_bytes(fn: Callable[[], object]) -> int:
    """Peak of the memory allocated while fn runs (numpy reports its arrays to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def dedup_step_costs(work: Path, n_docs: int, rss_mb: Callable[[], dict]) -> dict:
    """Seconds and memory per document of the global dedup steps on n_docs synthetic documents: one exact
    partition and one LSH (band, partition) task at P=1 and P=4, and the verify + union-find task."""
    import numpy as np

    from gptkit.data.dedup import DedupConfig, exact_pairs, lsh_pairs, resolve_duplicates

    paths = json.loads((work / "paths.json").read_text())
    sigs, hashes = [Path(p) for p, _ in paths], [Path(h) for _, h in paths]
    cfg = DedupConfig()
    before = rss_mb()["main"]
    res: dict = {"documents": n_docs}
    for p in (1, 4):
        res[f"exact_seconds_p{p}"], _ = _timed(lambda p=p: exact_pairs(hashes, 0, p))
        res[f"lsh_seconds_p{p}"], _ = _timed(lambda p=p: lsh_pairs(sigs, cfg, 0, 0, p))
    exact = exact_pairs(hashes, 0, 1)
    t_bands, cand_list = _timed(lambda: [lsh_pairs(sigs, cfg, b, 0, 1) for b in range(cfg.bands)])
    cand = np.concatenate(cand_list)  # type: ignore[arg-type]
    res["lsh_all_bands_seconds"] = t_bands
    res["candidates"] = len(cand)
    res["dedup_seconds"], out = _timed(lambda: resolve_duplicates(sigs, exact, cand, cfg))
    res["near_duplicates"] = out.near_removed  # type: ignore[attr-defined]
    res["rss_before_mb"], res["rss_peak_mb"] = before, rss_mb()["main"]
    res["exact_bytes_per_doc_p1"] = _peak_bytes(lambda: exact_pairs(hashes, 0, 1)) / n_docs
    res["lsh_bytes_per_doc_p1"] = _peak_bytes(lambda: lsh_pairs(sigs, cfg, 0, 0, 1)) / n_docs
    res["lsh_bytes_per_doc_p4"] = _peak_bytes(lambda: lsh_pairs(sigs, cfg, 0, 0, 4)) / n_docs
    res["dedup_bytes_per_doc"] = _peak_bytes(lambda: resolve_duplicates(sigs, exact, cand, cfg)) / n_docs
    return res


def _fit(t1: float, t4: float, n: int) -> tuple[float, float]:
    """t(P) = n (r + s / P) through t(1) = t1 and t(4) = t4 -> (r, s) in seconds per document (both >= 0)."""
    s = max(0.0, (t1 - t4) * 4 / 3 / n)
    return max(0.0, t1 / n - s), s


def project(local: dict, dedup: dict) -> dict:
    """Expected seconds per stage for GB_TARGET GB on each node count (see the module docstring)."""
    st, mb = local["stages"], local["input_mb"]
    target_mb = GB_TARGET * 1000.0
    n_in = local["documents_in"] / mb * target_mb
    n_kept = local["documents_after_cleaning"] / mb * target_mb  # what dedup sees
    n = dedup["documents"]
    r_x, s_x = _fit(dedup["exact_seconds_p1"], dedup["exact_seconds_p4"], n)
    r_l, s_l = _fit(dedup["lsh_seconds_p1"], dedup["lsh_seconds_p4"], n)
    verify_per_doc = dedup["dedup_seconds"] / n
    # CPU seconds of all the trainer's threads, as if on one core: an upper bound for a 32-core node
    tok_s_per_mb = st["tokenizer"]["task_cpu_seconds"] / max(local.get("tokenizer_trained_mb", 0.0), 1e-9)
    tok_mb = min(256.0, target_mb)
    rows = {}
    for nodes in NODES:
        cores = nodes * CORES_PER_NODE
        exact_s, exact_p = _best_partitions(r_x, s_x, 1, cores, n_kept)
        lsh_s, lsh_p = _best_partitions(r_l, s_l, BANDS, cores, n_kept)
        rows[nodes] = {
            "cores": cores,
            "clean": _per_split(st["clean"], mb, target_mb, cores),
            "exact": exact_s, "exact_partitions": exact_p,
            "lsh": lsh_s, "lsh_partitions": lsh_p,
            "dedup": n_kept * verify_per_doc,
            "documents": _per_split(st["documents"], mb, target_mb, cores),
            "tokenizer": tok_s_per_mb * tok_mb,
            "tokenize": _per_split(st["tokenize"], mb, target_mb, cores),
        }  # fmt: skip
        rows[nodes]["total"] = sum(v for k, v in rows[nodes].items() if k != "cores" and "partitions" not in k)
        # bytes read from --out by the exact and LSH tasks: each reads every split's hashes / one band's rows
        rows[nodes]["exact_read_gb"] = exact_p * n_kept * 16 / 1e9
        rows[nodes]["lsh_read_gb"] = BANDS * lsh_p * n_kept * 32 / 1e9
    memory = {
        "documents_in": n_in,
        "documents_deduplicated": n_kept,
        "exact_task_bytes_per_doc_p1": dedup["exact_bytes_per_doc_p1"],
        "lsh_task_bytes_per_doc_p1": dedup["lsh_bytes_per_doc_p1"],
        "lsh_task_bytes_per_doc_p4": dedup["lsh_bytes_per_doc_p4"],
        "dedup_task_bytes_per_doc": dedup["dedup_bytes_per_doc"],
        "dedup_task_gb": dedup["dedup_bytes_per_doc"] * n_kept / 1e9,
        "fits": {"exact_r_s": [r_x, s_x], "lsh_r_s": [r_l, s_l], "tokenizer_s_per_mb": tok_s_per_mb},
    }
    return {"rows": rows, "memory": memory}


def _per_split(stage: dict, mb: float, target_mb: float, cores: int) -> float:
    """A per-split stage's CPU seconds per MB here (all threads of its tasks), for target_mb over `cores`."""
    return target_mb * stage["task_cpu_seconds"] / mb / cores


def _best_partitions(r: float, s: float, tasks_per_p: int, cores: int, n: int) -> tuple[float, int]:
    """(wall seconds, P): tasks_per_p * P tasks of n (r + s / P) seconds each, in waves of `cores`; the
    smallest power of two P within 10% of the fastest, because every task reads every split's rows (the bytes
    read grow with P, and storage bandwidth is not in this model)."""
    options = [(math.ceil(tasks_per_p * p / cores) * n * (r + s / p), p) for p in _powers(cores)]
    fastest = min(t for t, _ in options)
    return next((t, p) for t, p in options if t <= 1.1 * fastest)


def _powers(limit: int) -> list[int]:
    return [2**k for k in range(int(math.log2(limit)) + 1)]


def print_scaling(console, model: dict) -> None:
    from rich.table import Table

    rows, mem = model["rows"], model["memory"]
    t = Table(title=f"expected wall time for {GB_TARGET} GB ({mem['documents_in'] / 1e6:.0f} M documents in, "
              f"{mem['documents_deduplicated'] / 1e6:.0f} M after cleaning), nodes of {CORES_PER_NODE} cores, "
              "from the per-task costs measured above")  # fmt: skip
    t.add_column("stage")
    for nodes in rows:
        t.add_column(f"{nodes} node{'s' if nodes > 1 else ''} ({rows[nodes]['cores']} cores)", justify="right")
    names = ("clean", "exact", "lsh", "dedup", "documents", "tokenizer", "tokenize", "total")
    for name in names:
        cells = []
        for r in rows.values():
            extra = ""
            if name in ("exact", "lsh"):
                extra = f" (P={r[name + '_partitions']}, reads {r[name + '_read_gb']:,.0f} GB)"
            cells.append(f"{_hms(r[name])}{extra}")
        label = {"dedup": "dedup: verify + union-find (1 task)", "tokenizer": "tokenizer training (1 task)"}
        t.add_row(label.get(name, name), *cells)
    console.print(t)
    console.print(
        f"global steps, memory per document: exact {mem['exact_task_bytes_per_doc_p1']:.0f} B/doc at P=1 (/P with "
        f"P partitions), LSH {mem['lsh_task_bytes_per_doc_p1']:.0f} B/doc at P=1 and "
        f"{mem['lsh_task_bytes_per_doc_p4']:.0f} at P=4, verify + union-find {mem['dedup_task_bytes_per_doc']:.0f} "
        f"B/doc = {mem['dedup_task_gb']:.1f} GB for the {GB_TARGET} GB corpus (one task: the largest node "
        "must hold it); tokenizer training is bounded by --tokenizer-sample-mb, not by the corpus"
    )


def _hms(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
