"""Benchmark for `gptkit prepare`: cleaning quality on the labelled set, throughput against datatrove, memory.

    python benchmarks/prepare.py                      # everything (datatrove needs: pip install -e ".[bench]")
    python benchmarks/prepare.py --workers 2 --scale 8 --skip-datatrove

1. The labelled set (tests/data/boilerplate): boilerplate lines removed and content characters kept, per
   batch of pages (dev = developed on; heldout1..3 = scored first with rules frozen, see its README).
2. Throughput on builtin:zh-news + builtin:zh-reviews, as documents (tag-stripped news articles, one review
   per document) written to --files JSONL files that both tools read:
     gptkit    prepare: clean (normalise, boilerplate lines, Gopher/FineWeb/ChineseWebText filters, MinHash
               signatures) -> exact + near dedup -> documents; then, reported apart, tokenizer + shards
     datatrove its GopherRepetitionFilter + GopherQualityFilter (default, English-tuned settings), and its
               4-stage MinHash dedup (signatures, buckets, clusters, filter) on the same input
   Every run is a separate process with the same number of workers; wall-clock MB/s of the input text.
3. Memory: gptkit's peak RSS on the input and on the input repeated --scale times (streaming: it should not
   grow with the input, except for the dedup task's ~80 bytes per document).
Prints tables and writes benchmarks/results/prepare.json. Timings on a shared machine are noisy: compare
the two tools within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.prepare_scale import (  # noqa: E402 - after the path set-up
    dedup_step_costs,
    print_scaling,
    project,
    task_costs,
    write_dedup_input,
)


def write_input(directory: Path, n_files: int, copies: int = 1) -> dict:
    """The builtin corpora as documents in n_files JSONL files (copies > 1 repeats them under new ids)."""
    from gptkit.data.sources import plan_splits, read_split, resolve_inputs

    directory.mkdir(parents=True, exist_ok=True)
    files = resolve_inputs(["builtin:zh-news", "builtin:zh-reviews"])
    docs = [(d.id, d.text) for s in plan_splits(files, 1 << 30) for d in read_split(s)]
    outs = [open(directory / f"part-{i:03d}.jsonl", "w", encoding="utf-8") for i in range(n_files)]  # noqa: SIM115
    n_bytes = 0
    for c in range(copies):
        for k, (doc_id, text) in enumerate(docs):
            line = json.dumps({"id": f"{doc_id}#{c}", "text": text}, ensure_ascii=False) + "\n"
            outs[k % n_files].write(line)
            n_bytes += len(text.encode())
    for f in outs:
        f.close()
    return {"documents": len(docs) * copies, "text_mb": n_bytes / 1e6}


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its finished (waited-for) child processes."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _rss_mb() -> dict:
    from gptkit.data.report import peak_rss_mb

    return peak_rss_mb()


# --- the runs (each in its own process) -----------------------------------------------------------------


def run_gptkit(input_dir: str, out: str, workers: int, vocab: int | None, executor: str = "local") -> dict:
    from gptkit.data.pipeline import PrepareConfig, prepare

    cfg = dict(inputs=(input_dir,), out=out, workers=workers, progress=False, executor=executor)
    init_seconds = 0.0
    if executor == "ray":  # started before the clock: the goal compares the pipeline, not Ray's start-up
        import ray

        t0 = time.perf_counter()
        ray.init(
            address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
        init_seconds = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), _cpu_seconds()
    report = prepare(PrepareConfig(**cfg))
    seconds = time.perf_counter() - t0
    result = {
        "executor": executor,
        "ray_init_seconds": init_seconds,
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - c0,  # under Ray without the workers' CPU (not our children)
        "stages": {k: v["seconds"] for k, v in report["stages"].items()},
        "documents_in": report["documents"]["in"],
        "kept_after_filters": report["documents"]["after_cleaning"],
        "kept": report["documents"]["out"],
        "languages": report["languages"],
        "exact_duplicates": report["dedup"]["exact_duplicates"],
        "near_duplicates": report["dedup"]["near_duplicates"],
        "rss_mb": report["peak_rss_mb"],
    }
    if vocab:
        t0 = time.perf_counter()
        report = prepare(PrepareConfig(**cfg, vocab_size=vocab))
        result["tokenize_seconds"] = time.perf_counter() - t0
        result["tokenize_stages"] = {k: report["stages"][k]["seconds"] for k in ("tokenizer", "tokenize")}
        result["tokens"] = report["tokens"]
        result["rss_mb_with_tokenizer"] = report["peak_rss_mb"]
    result["task_costs"] = task_costs(Path(out))
    return result


def _count_jsonl_gz(folder: Path) -> int:
    import gzip

    n = 0
    for p in folder.rglob("*.jsonl.gz"):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            n += sum(1 for _ in f)
    return n


def run_datatrove(input_dir: str, work: str, workers: int, n_files: int) -> dict:
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter

    w = Path(work)
    result: dict = {"stages": {}}
    c0 = _cpu_seconds()
    t0 = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(input_dir),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            JsonlWriter(str(w / "filtered")),
        ],
        tasks=n_files,
        workers=workers,
        logging_dir=str(w / "logs" / "filters"),
        start_method="fork",  # workers are our children, so their CPU time is counted
    ).run()
    result["stages"]["filters"] = time.perf_counter() - t0
    result["kept_after_filters"] = _count_jsonl_gz(w / "filtered")

    cfg = MinhashConfig()  # 5-grams, 14 buckets x 8 hashes: the same LSH shape as gptkit's
    steps = [
        ("minhash-signatures", [JsonlReader(input_dir), MinhashDedupSignature(str(w / "sigs"), config=cfg)], n_files),
        ("minhash-buckets", [MinhashDedupBuckets(str(w / "sigs"), str(w / "buckets"), config=cfg)], cfg.num_buckets),
        ("minhash-cluster", [MinhashDedupCluster(str(w / "buckets"), str(w / "remove_ids"), config=cfg)], 1),
        (
            "minhash-filter",
            [JsonlReader(input_dir), MinhashDedupFilter(str(w / "remove_ids")), JsonlWriter(str(w / "deduped"))],
            n_files,
        ),
    ]
    for name, pipe, tasks in steps:
        t0 = time.perf_counter()
        LocalPipelineExecutor(
            pipeline=pipe,
            tasks=tasks,
            workers=min(workers, tasks),
            logging_dir=str(w / "logs" / name),
            start_method="fork",
        ).run()
        result["stages"][name] = time.perf_counter() - t0
    result["kept_after_dedup"] = _count_jsonl_gz(w / "deduped")
    result["seconds"] = sum(result["stages"].values())
    result["cpu_seconds"] = _cpu_seconds() - c0
    result["rss_mb"] = _rss_mb()
    return result


def run_dedup_memory(work: str, n_docs: int) -> dict:
    """Time and peak memory of the dedup steps alone (this process only runs them: the input is written before)."""
    return dedup_step_costs(Path(work), n_docs, _rss_mb)


def _subprocess(args: list[str], log: Path) -> dict:
    out_json = log.with_suffix(".json")
    with open(log, "w") as f:
        proc = subprocess.run(
            [sys.executable, __file__, *args, "--result", str(out_json)], stdout=f, stderr=subprocess.STDOUT
        )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {proc.returncode}); see {log}")
    return json.loads(out_json.read_text())


# --- the report -------------------------------------------------------------------------------------------


def labelled_figures() -> dict:
    from tests.labelled import load_pages, score_pages

    rows = {}
    for prefix in ("dev", "heldout1", "heldout2", "heldout3", ""):
        s = score_pages(load_pages(prefix))["all"]
        rows[prefix or "all"] = {
            "pages": len(load_pages(prefix)),
            "boilerplate_lines": s.boilerplate_lines,
            "boilerplate_removed": s.boilerplate_removed,
            "removed_fraction": round(s.removed_fraction, 4),
            "content_chars": s.content_chars,
            "content_chars_kept": s.content_chars_kept,
            "kept_fraction": round(s.kept_fraction, 4),
        }
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--files", type=int, default=4, help="input JSONL files (datatrove runs one task per file)")
    ap.add_argument("--vocab-size", type=int, default=8000, help="also time tokenizer training + shards (0: skip)")
    ap.add_argument("--scale", type=int, default=4, help="memory check: the input repeated this many times (0: skip)")
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--skip-ray", action="store_true", help="no Ray executor run (needs pip install -e '.[ray]')")
    ap.add_argument("--repeats", type=int, default=2, help="local / Ray pipeline runs, interleaved (the best counts)")
    ap.add_argument("--executor", default="local", help=argparse.SUPPRESS)
    ap.add_argument(
        "--dedup-docs", type=int, default=1_000_000, help="memory of the dedup task on this many documents (0: skip)"
    )
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / "work" / "prepare"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "prepare.json"))
    # internal: one run in this process
    ap.add_argument("--run", choices=("gptkit", "datatrove", "dedup-memory"))
    ap.add_argument("--input")
    ap.add_argument("--out")
    ap.add_argument("--result")
    args = ap.parse_args()

    if args.run:
        if args.run == "gptkit":
            res = run_gptkit(args.input, args.out, args.workers, args.vocab_size or None, args.executor)
        elif args.run == "dedup-memory":
            res = run_dedup_memory(args.out, args.dedup_docs)
        else:
            res = run_datatrove(args.input, args.out, args.workers, args.files)
        Path(args.result).write_text(json.dumps(res, indent=1))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(width=130)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results: dict = {"workers": args.workers, "files": args.files, "cpu_count": os.cpu_count()}

    results["labelled"] = labelled_figures()
    t = Table(title="labelled pages (tests/data/boilerplate): line-level cleaning quality")
    for col in ("batch", "pages", "boilerplate lines removed", "content characters kept"):
        t.add_column(col, justify="left" if col == "batch" else "right")
    for name, r in results["labelled"].items():
        t.add_row(
            name,
            str(r["pages"]),
            f"{r['boilerplate_removed']}/{r['boilerplate_lines']} = {100 * r['removed_fraction']:.1f}%",
            f"{r['content_chars_kept']}/{r['content_chars']} = {100 * r['kept_fraction']:.1f}%",
        )
    console.print(t)
    console.print(
        "(first-pass figures of each held-out batch, before it joined development: tests/data/boilerplate/README.md)"
    )

    inp = work / "input"
    results["input"] = write_input(inp, args.files)
    mb = results["input"]["text_mb"]
    common = ["--workers", str(args.workers), "--files", str(args.files)]
    g = _subprocess(
        [
            "--run",
            "gptkit",
            "--input",
            str(inp),
            "--out",
            str(work / "gptkit"),
            "--vocab-size",
            str(args.vocab_size),
            *common,
        ],
        work / "gptkit.log",
    )
    results["gptkit"] = g
    runs: dict[str, list[dict]] = {"local": [g]}
    if not args.skip_ray:
        runs["ray"] = []
    for k in range(args.repeats):  # interleaved, so that both executors see the same load
        for ex in runs:
            if ex == "local" and k == 0:
                continue
            vocab = str(args.vocab_size) if k == 0 else "0"  # the tokenizer once per executor
            name = f"gptkit_{ex}_{k}"
            argv = ["--run", "gptkit", "--executor", ex, "--input", str(inp), "--out", str(work / name),
                    "--vocab-size", vocab, *common]  # fmt: skip
            runs[ex].append(_subprocess(argv, work / f"{name}.log"))
    results["executors"] = {ex: [r["seconds"] for r in rs] for ex, rs in runs.items()}
    if "ray" in runs:
        from tests.prepare_helpers import output_tree

        results["ray_identical"] = output_tree(work / "gptkit") == output_tree(work / "gptkit_ray_0")
        results["ray_over_local"] = min(results["executors"]["ray"]) / min(results["executors"]["local"])
    if not args.skip_datatrove:
        results["datatrove"] = _subprocess(
            ["--run", "datatrove", "--input", str(inp), "--out", str(work / "datatrove"), *common],
            work / "datatrove.log",
        )

    t = Table(title=f"throughput on builtin:zh-news + builtin:zh-reviews: {mb:.1f} MB, "
              f"{results['input']['documents']:,} documents, {args.workers} workers")  # fmt: skip
    for col in ("tool", "stage", "seconds", "MB/s", "CPU seconds", "MB per CPU second"):
        t.add_column(col, justify="left" if col in ("tool", "stage") else "right")
    for name, sec in g["stages"].items():
        t.add_row("gptkit", name, f"{sec:.1f}", f"{mb / sec:.2f}")
    t.add_row("gptkit", "end to end (clean + dedup + documents)", f"{g['seconds']:.1f}", f"{mb / g['seconds']:.2f}",
              f"{g['cpu_seconds']:.1f}", f"{mb / g['cpu_seconds']:.2f}")  # fmt: skip
    if "tokenize_seconds" in g:
        for name, sec in g["tokenize_stages"].items():
            t.add_row("gptkit", f"{name} (vocab {args.vocab_size})", f"{sec:.1f}", f"{mb / sec:.2f}")
    if "datatrove" in results:
        d = results["datatrove"]
        for name, sec in d["stages"].items():
            t.add_row("datatrove", name, f"{sec:.1f}", f"{mb / sec:.2f}")
        t.add_row("datatrove", "end to end (filters + MinHash)", f"{d['seconds']:.1f}", f"{mb / d['seconds']:.2f}",
                  f"{d['cpu_seconds']:.1f}", f"{mb / d['cpu_seconds']:.2f}")  # fmt: skip
        results["speedup_end_to_end"] = d["seconds"] / g["seconds"]
        results["speedup_cpu"] = d["cpu_seconds"] / g["cpu_seconds"]
    console.print(t)
    if "datatrove" in results:
        console.print(
            f"gptkit / datatrove end-to-end: {results['speedup_end_to_end']:.1f}x the wall-clock throughput, "
            f"{results['speedup_cpu']:.1f}x the throughput per CPU second"
        )

    if "ray" in runs:
        t = Table(title=f"executors: clean + dedup + documents, {args.workers} CPUs, runs interleaved (Ray started "
                  "before the clock)")  # fmt: skip
        for col in ("executor", "seconds per run", "best", "Ray start-up"):
            t.add_column(col, justify="left" if col == "executor" else "right")
        for ex, rs in runs.items():
            secs = [r["seconds"] for r in rs]
            init = ", ".join(f"{r['ray_init_seconds']:.1f}" for r in rs) if ex == "ray" else ""
            t.add_row(ex, ", ".join(f"{x:.1f}" for x in secs), f"{min(secs):.1f}", init)
        if "datatrove" in results:
            t.add_row("datatrove (same run)", f"{results['datatrove']['seconds']:.1f}", "", "")
        console.print(t)
        console.print(
            f"Ray / local: {results['ray_over_local']:.2f}x the wall time (goal <= 1.3x); outputs (documents, "
            f"rejected, tokenizer files, shards) {'byte-identical' if results['ray_identical'] else 'DIFFER'}"
        )

    t = Table(title="documents kept (all Chinese except a few English reviews)")
    for col in ("tool", "in", "after quality filters", "after dedup", "removed as duplicates"):
        t.add_column(col, justify="left" if col == "tool" else "right")
    t.add_row("gptkit", f"{g['documents_in']:,}", f"{g['kept_after_filters']:,}", f"{g['kept']:,}",
              f"{g['exact_duplicates']:,} exact + {g['near_duplicates']:,} near")  # fmt: skip
    if "datatrove" in results:
        d = results["datatrove"]
        n_in = results["input"]["documents"]
        t.add_row("datatrove", f"{n_in:,}", f"{d['kept_after_filters']:,}",
                  f"{d['kept_after_dedup']:,} (MinHash on the unfiltered input)",
                  f"{n_in - d['kept_after_dedup']:,}")  # fmt: skip
    console.print(t)

    if args.scale > 1:
        big = work / f"input_x{args.scale}"
        results["scaled_input"] = write_input(big, args.files, copies=args.scale)
        s = _subprocess(
            [
                "--run",
                "gptkit",
                "--input",
                str(big),
                "--out",
                str(work / "gptkit_scaled"),
                "--vocab-size",
                "0",
                *common,
            ],
            work / "gptkit_scaled.log",
        )
        results["gptkit_scaled"] = s
        t = Table(title="gptkit peak memory (RSS, MB) as the input grows")
        for col in ("input", "documents", "main process", "largest worker", "seconds"):
            t.add_column(col, justify="left" if col == "input" else "right")
        for label, inp_info, r in (
            ("x1", results["input"], g),
            (f"x{args.scale}", results["scaled_input"], s),
        ):
            t.add_row(f"{label}: {inp_info['text_mb']:.0f} MB", f"{inp_info['documents']:,}",
                      f"{r['rss_mb']['main']:.0f}", f"{r['rss_mb']['largest_worker']:.0f}",
                      f"{r['seconds']:.1f}")  # fmt: skip
        console.print(t)
        if "rss_mb_with_tokenizer" in g:
            console.print(f"with tokenizer training (vocab {args.vocab_size}): main process "
                          f"{g['rss_mb_with_tokenizer']['main']:.0f} MB")  # fmt: skip

    if args.dedup_docs:
        paths = write_dedup_input(str(work / "dedup_memory"), args.dedup_docs)
        (work / "dedup_memory" / "paths.json").write_text(json.dumps(paths))
        m = _subprocess(
            ["--run", "dedup-memory", "--out", str(work / "dedup_memory"), "--dedup-docs", str(args.dedup_docs)],
            work / "dedup_memory.log",
        )
        results["dedup_memory"] = m
        per_million = (m["rss_peak_mb"] - m["rss_before_mb"]) * 1e6 / m["documents"]
        results["dedup_memory"]["mb_per_million_docs"] = per_million
        console.print(
            f"dedup steps on {m['documents']:,} synthetic documents: exact {m['exact_seconds_p1']:.2f} s, LSH (14 "
            f"bands) {m['lsh_all_bands_seconds']:.2f} s, verify + union-find {m['dedup_seconds']:.2f} s; peak RSS "
            f"{m['rss_peak_mb']:.0f} MB ({m['rss_before_mb']:.0f} MB before): {per_million:.0f} MB per million"
        )
        if "tokenizer" in g["task_costs"]["stages"]:
            results["scaling"] = project(g["task_costs"], m)
            print_scaling(console, results["scaling"])
        shutil.rmtree(work / "dedup_memory", ignore_errors=True)

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
