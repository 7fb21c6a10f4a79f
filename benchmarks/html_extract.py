"""HTML main-content extraction: trafilatura against resiliparse on the same pages (speed and accuracy).

    python benchmarks/html_extract.py --evaldata DIR/tests/evaldata.json --pages DIR/tests

The pages and their expectations are trafilatura's evaluation set (github.com/adbar/trafilatura, Apache-2.0:
tests/evaldata.json + tests/cache/*.html + tests/eval/*.html, ~1,000 real pages in many languages); they are
not copied into this repository. Each page lists snippets the main text must contain ("with") and snippets of
boilerplate it must not ("without"). Reported per tool: pages per second (one process, extraction only),
share of "with" snippets found (content kept) and of "without" snippets absent (boilerplate removed).
trafilatura's own expectations favour trafilatura somewhat (its authors wrote them while tuning it).
Prints a table and writes benchmarks/results/html_extract.json. The machine may be shared: compare the two
tools within one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _norm(s: str) -> str:
    return " ".join(s.split())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evaldata", required=True)
    ap.add_argument("--pages", required=True, help="folder holding cache/ and eval/ with the pages")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "html_extract.json"))
    args = ap.parse_args()
    from gptkit.data.html import EXTRACTORS

    data = json.loads(Path(args.evaldata).read_text(encoding="utf-8"))
    pages = []
    for entry in data.values():
        for sub in ("eval", "cache"):
            path = Path(args.pages) / sub / entry["file"]
            if path.is_file():
                pages.append((path.read_bytes(), entry))
                break
    if args.limit:
        pages = pages[: args.limit]
    results = {"pages": len(pages)}
    for name, extract in EXTRACTORS.items():
        found = want = absent = avoid = 0
        t0 = time.perf_counter()
        texts = [extract(raw) for raw, _ in pages]
        seconds = time.perf_counter() - t0
        for text, (_, entry) in zip(texts, pages, strict=True):
            text = _norm(text)
            for snip in entry.get("with", []):
                want += 1
                found += _norm(snip) in text
            for snip in entry.get("without", []):
                avoid += 1
                absent += _norm(snip) not in text
        results[name] = {
            "seconds": round(seconds, 2),
            "pages_per_s": round(len(pages) / seconds, 1),
            "content_snippets_found": [found, want, round(found / max(1, want), 4)],
            "boilerplate_snippets_absent": [absent, avoid, round(absent / max(1, avoid), 4)],
        }
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"HTML extraction on {len(pages)} pages of trafilatura's evaluation set")
    for col in ("tool", "pages/s", "content snippets found", "boilerplate snippets absent"):
        t.add_column(col, justify="left" if col == "tool" else "right")
    for name in EXTRACTORS:
        r = results[name]
        f, w, _ = r["content_snippets_found"]
        a, v, _ = r["boilerplate_snippets_absent"]
        t.add_row(
            name,
            str(r["pages_per_s"]),
            f"{f}/{w} = {100 * f / max(1, w):.1f}%",
            f"{a}/{v} = {100 * a / max(1, v):.1f}%",
        )
    Console(width=120).print(t)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
