"""The report of a `prepare` run: counts merged from every task, per-stage times, memory; `print_report` shows it."""

from __future__ import annotations

import resource
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from gptkit.data.line_counts import RULE as REPEATED_RULE
from gptkit.data.runner import StageOutcome
from gptkit.data.sources import InputSplit, encodings_of

if TYPE_CHECKING:
    from gptkit.data.pipeline import PrepareConfig


def merge_counts(into: dict, other: dict) -> dict:
    """Add numeric leaves of `other` into `into` (nested dicts of counts)."""
    for k, v in other.items():
        if isinstance(v, dict):
            merge_counts(into.setdefault(k, {}), v)
        elif isinstance(v, (int, float)):
            into[k] = into.get(k, 0) + v
        else:
            into[k] = v
    return into


def peak_rss_mb() -> dict:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss it does not carry over the peak of the
    process that exec'd us) and of the largest finished worker process."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / (1 << 20)  # ru_maxrss: KiB on Linux, bytes on macOS
    main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                main = int(line.split()[1]) / 1024
    except OSError:
        pass
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"main": round(main, 1), "largest_worker": round(workers, 1)}


def build_report(
    cfg: PrepareConfig, outcomes: dict[str, StageOutcome], splits: list[InputSplit], seconds: float
) -> dict:
    """The report of a run (OUT/report.json) from its stages' statistics."""
    o = outcomes
    clean: dict = {}
    for s in o["clean"].stats:
        merge_counts(clean, s)
    docs: dict = {}
    for s in o["documents"].stats:
        merge_counts(docs, s)
    stages = {}
    mb = sum(sp.n_bytes for sp in splits) / 1e6  # every stage's MB/s is of the raw input, so they compare
    for name, oc in o.items():
        stages[name] = {
            "seconds": round(oc.seconds, 3), "skipped": oc.skipped, "tasks_run": oc.tasks_run,
            "tasks_skipped": oc.tasks_skipped,
            "mb_per_s": round(mb / oc.seconds, 3) if oc.seconds > 0 and mb else None,
        }  # fmt: skip
    dedup = o["dedup"].stats[0] if o["dedup"].stats else {}
    report = {
        "inputs": list(cfg.inputs),
        "encodings": encodings_of(splits),  # input files that are not UTF-8 -> the encoding they were decoded with
        "splits": len(splits),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("progress",)},
        "documents": {
            "in": clean.get("docs_in", 0),
            "after_cleaning": clean.get("docs_out", 0),
            "out": docs.get("docs", 0),
            "bytes_in": clean.get("bytes_in", 0),
            "bytes_after_cleaning": clean.get("bytes_out", 0),
            "bytes_out": docs.get("bytes", 0),
        },
        "sources": {
            name: {
                **v,
                "docs_out": docs.get("sources", {}).get(name, {}).get("docs", 0),
                "bytes_out": docs.get("sources", {}).get(name, {}).get("bytes", 0),
            }
            for name, v in clean.get("sources", {}).items()
        },
        "languages": docs.get("lang", {}),
        "dropped_documents": dict(sorted(clean.get("doc_rules", {}).items(), key=lambda kv: -kv[1])),
        "dropped_lines": dict(
            sorted(
                {
                    **clean.get("line_rules", {}),
                    **({REPEATED_RULE: docs["repeated_lines"]} if docs.get("repeated_lines") else {}),
                }.items(),
                key=lambda kv: -kv[1],
            )
        ),
        "repairs": {k: clean.get(k, 0) for k in ("invalid_utf8", "entities", "mojibake_docs", "control_chars")},
        "dedup": {k: dedup.get(k, 0) for k in ("exact_duplicates", "near_duplicates", "clusters", "candidate_pairs")},
        "stages": stages,
        "input_mb": round(mb, 3),
        "seconds": round(seconds, 3),
        "mb_per_s": round(mb / seconds, 3) if seconds > 0 and not all(oc.skipped for oc in o.values()) else None,
        # Ray's workers are not this process's children: their memory is in Ray's dashboard, not here
        "peak_rss_mb": {**peak_rss_mb(), **({"largest_worker": None} if cfg.executor == "ray" else {})},
    }
    if "tokenize" in o:
        tk: dict = {}
        for s in o["tokenize"].stats:
            merge_counts(tk, s)
        tok = o["tokenizer"].stats[0]
        report["tokenizer"] = {
            k: tok.get(k) for k in ("kind", "vocab_size", "eot_id", "fingerprint", "trained_on_bytes")
        }
        report["tokens"] = tk.get("tokens", {})
        report["token_documents"] = tk.get("docs", {})
        report["shards"] = tk.get("shards", {})
    return report


def print_report(r: dict) -> None:
    """The report as tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    d = r["documents"]
    t = Table(title=f"prepare: {', '.join(r['inputs'])}  ({r['splits']} splits)")
    for col in ("", "documents", "MB"):
        t.add_column(col, justify="left" if not col else "right")
    t.add_row("in", f"{d['in']:,}", f"{d['bytes_in'] / 1e6:.2f}")
    t.add_row("after cleaning", f"{d['after_cleaning']:,}", f"{d['bytes_after_cleaning'] / 1e6:.2f}")
    t.add_row("out (after dedup)", f"{d['out']:,}", f"{d['bytes_out'] / 1e6:.2f}")
    for name, s in r["sources"].items():
        t.add_row(
            f"  {name}",
            f"{s['docs_in']:,} -> {s['docs_out']:,}",
            f"{s['bytes_in'] / 1e6:.2f} -> {s['bytes_out'] / 1e6:.2f}",
        )
    console.print(t)
    for path, encoding in r.get("encodings", {}).items():  # every input file that is not UTF-8
        console.print(f"{path}: decoded as {encoding}", markup=False, highlight=False)
    rules = Table(title="dropped (see rejected/)")
    rules.add_column("documents: rule")
    rules.add_column("count", justify="right")
    rules.add_column("lines: rule")
    rules.add_column("count", justify="right")
    docs = list(r["dropped_documents"].items())
    dedup = r["dedup"]
    docs += [("exact-duplicate", dedup["exact_duplicates"]), ("near-duplicate", dedup["near_duplicates"])]
    lines = list(r["dropped_lines"].items())
    for i in range(max(len(docs), len(lines))):
        a = docs[i] if i < len(docs) else ("", "")
        b = lines[i] if i < len(lines) else ("", "")
        rules.add_row(a[0], f"{a[1]:,}" if a[1] != "" else "", b[0], f"{b[1]:,}" if b[1] != "" else "")
    console.print(rules)
    console.print(f"duplicate clusters: {dedup['clusters']:,}; languages kept: {r['languages']}")
    if "tokens" in r:
        tk = r["tokens"]
        console.print(
            f"tokens: train {tk.get('train', 0):,}, val {tk.get('val', 0):,} "
            f"({r['shards'].get('train', 0)} + {r['shards'].get('val', 0)} shards); tokenizer {r['tokenizer']['kind']} "
            f"vocab {r['tokenizer']['vocab_size']:,}"
        )
    st = Table(title="stages (MB/s of the raw input)")
    for col in ("stage", "seconds", "MB/s", "tasks"):
        st.add_column(col, justify="left" if col == "stage" else "right")
    for name, s in r["stages"].items():
        tasks = (
            "skipped (done)"
            if s["skipped"]
            else f"{s['tasks_run']} run" + (f", {s['tasks_skipped']} resumed" if s["tasks_skipped"] else "")
        )
        st.add_row(name, f"{s['seconds']:.1f}", f"{s['mb_per_s']:.2f}" if s["mb_per_s"] else "", tasks)
    st.add_row("total", f"{r['seconds']:.1f}", f"{r['mb_per_s']:.2f}" if r["mb_per_s"] else "", "")
    console.print(st)
    rss = r["peak_rss_mb"]
    worker = "not measured (Ray)" if rss["largest_worker"] is None else f"{rss['largest_worker']:.0f} MB"
    console.print(f"peak memory (RSS): main process {rss['main']:.0f} MB, largest worker {worker}")
