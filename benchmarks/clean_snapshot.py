"""A fingerprint of the cleaner's output, to prove that a refactor (a speed-up) changes nothing.

    python benchmarks/clean_snapshot.py                  # prints one SHA-256 per corpus and for all of them
    python benchmarks/clean_snapshot.py --save a.json    # also the hash of every document, to compare later:
    python benchmarks/clean_snapshot.py --compare a.json # exit 1 and name the documents whose output differs
    python benchmarks/clean_snapshot.py --prepare        # also one hash per output file of `prepare` (one worker)
                                                         # on benchmarks/prepare.py's input (saved / compared too)

The corpus is fixed: builtin:zh-news + builtin:zh-reviews (the documents benchmarks/prepare.py cleans, as
prepare reads them), and the labelled pages of tests/data/boilerplate that have been scored (the hand-written
pages and the web/ splits design, blind .. blind6; later batches are left out, their labels are not read here
either). Each document is cleaned with the default CleanConfig (the builtin line model) and with the rules alone
(line_model=None); its hash covers everything clean_document returns: the text, the language, the document rule,
every kept line and every dropped line with its rule, the normalised text and the normalisation statistics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

WEB_SPLITS = ("design", "blind", "blind2", "blind3", "blind4", "blind5", "blind6")


def corpus() -> Iterator[tuple[str, str, str]]:
    """(corpus name, document id, text) of every document of the snapshot corpus, in a fixed order."""
    from tests.labelled import load_pages, load_web_pages

    from gptkit.data.sources import plan_splits, read_split, resolve_inputs

    files = resolve_inputs(["builtin:zh-news", "builtin:zh-reviews"])
    for s in plan_splits(files, 1 << 30):
        for d in read_split(s):
            yield "builtin", d.id, d.text
    for page in load_pages():
        yield "labelled", page.name, "\n".join(page.lines)
    for split in WEB_SPLITS:
        for page in load_web_pages(split):
            yield "labelled", page.name, "\n".join(page.lines)


def fingerprint(text: str, cfg: object) -> str:
    from gptkit.data.clean import clean_document

    r = clean_document(text, cfg)  # type: ignore[arg-type]
    blob = repr((r.text, r.lang, r.rule, r.kept_lines, r.dropped_lines, r.normalized, astuple(r.stats)))
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


CPU_SECONDS: dict[str, float] = {}  # snapshot(): process CPU seconds of the cleaning per corpus / config


def snapshot() -> tuple[dict[str, str], dict[str, str], int, float]:
    """(per-document hashes, per-corpus hashes, documents, seconds); CPU_SECONDS gets the cleaning's CPU time per
    "corpus/config" (the configs share the cleaner's line caches: each document is cleaned by both in turn)."""
    from gptkit.data.clean import CleanConfig

    configs = {"model": CleanConfig(), "rules": CleanConfig(line_model=None)}
    docs: dict[str, str] = {}
    totals: dict[str, hashlib._Hash] = {}
    t0 = time.perf_counter()
    n = 0
    for name, doc_id, text in corpus():
        n += 1
        for cname, cfg in configs.items():
            c0 = time.process_time()
            h = fingerprint(text, cfg)
            CPU_SECONDS[f"{name}/{cname}"] = CPU_SECONDS.get(f"{name}/{cname}", 0.0) + time.process_time() - c0
            docs[f"{cname}:{name}:{doc_id}"] = h
            for key in (f"{name}/{cname}", "all"):
                totals.setdefault(key, hashlib.sha256()).update(h.encode())
    return docs, {k: v.hexdigest() for k, v in sorted(totals.items())}, n, time.perf_counter() - t0


def prepare_snapshot() -> dict[str, str]:
    """SHA-256 of every file `prepare` writes (the report and the work directory's timing-free files included,
    the timed report.json left out) on benchmarks/prepare.py's input, with one worker and no tokenizer."""
    import shutil
    import tempfile

    from benchmarks.prepare import write_input

    from gptkit.data.pipeline import PrepareConfig, prepare

    tmp = Path(tempfile.gettempdir()) / "gptkit-clean-snapshot"  # one path: document ids name the input files
    shutil.rmtree(tmp, ignore_errors=True)
    inp, out = tmp / "input", tmp / "out"
    write_input(inp, 4)
    prepare(PrepareConfig(inputs=(str(inp),), out=str(out), workers=1, progress=False))
    keep = ("documents", "rejected", "clean", "lines", "dedup")
    files = {
        f"prepare:{p.relative_to(out)}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.parent.name in keep and "state" not in p.relative_to(out).parts  # state: timings
    }
    shutil.rmtree(tmp, ignore_errors=True)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save", help="write every document's hash to this JSON file")
    ap.add_argument("--compare", help="compare with a file written by --save (exit 1 on any difference)")
    ap.add_argument("--prepare", action="store_true", help="also hash the files of a `prepare` run")
    args = ap.parse_args()
    docs, totals, n, seconds = snapshot()
    if args.prepare:
        files = prepare_snapshot()
        docs.update(files)
        totals["prepare"] = hashlib.sha256("".join(files.values()).encode()).hexdigest()
    for k, v in totals.items():
        print(f"{k:20s} {v}")
    print("CPU s:", ", ".join(f"{k} {v:.2f}" for k, v in sorted(CPU_SECONDS.items())))
    print(f"{n} documents x {len(docs) // max(1, n)} configs in {seconds:.1f} s")
    if args.save:
        Path(args.save).write_text(json.dumps({"totals": totals, "documents": docs}, indent=0) + "\n")
    if args.compare:
        old = json.loads(Path(args.compare).read_text())["documents"]
        diff = sorted(k for k in old.keys() | docs.keys() if old.get(k) != docs.get(k))
        for k in diff[:50]:
            print(f"DIFFERS: {k}")
        if diff:
            print(f"{len(diff)} of {len(docs)} outputs differ from {args.compare}")
            raise SystemExit(1)
        print(f"identical to {args.compare} ({len(docs)} outputs)")


if __name__ == "__main__":
    main()
