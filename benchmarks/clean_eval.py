"""Cleaning quality, line by line against hand labels: two numbers, never one.

    python benchmarks/clean_eval.py                 # tables + benchmarks/results/clean_eval.json
    python benchmarks/clean_eval.py --show-errors   # also every missed boilerplate / lost content line

Sets (tests/data/boilerplate/README.md has the labelling guideline and the split rules):
  design   the rules were developed on these: the 25 hand-written pages (tests/data/boilerplate/*.txt) and
           the stored real pages whose site hashes to "design" (web/design_*.txt)
  blind1   batch 1's blind half (web/blind_*.txt, site hash "blind"): frozen in 9ba725b, scored once by the
           cleaner it was frozen before; looked at since, so a DESIGN set from then on (reported apart)
  blind2   batch 2 (web/blind2_*.txt): 45 pages from sites in none of the sets above, frozen in 742e70c before
           RULES_VERSION 4 and scored once by it; a DESIGN set since (reported apart)
  design-all  design + blind1 + blind2: what the rules may be developed on now
  blind3   batch 3 (web/blind3_*.txt): 32 pages from sites in none of the sets above, frozen before RULES_VERSION
           5 and scored once by it; looked at since
  blind4   batch 4 (web/blind4_*.txt): 23 pages from sites in none of the sets above, labelled and frozen with the
           scores of the rules alone (--line-model none) before the line model (RULES_VERSION 6) scored it once.
  blind5   batch 5 (web/blind5_*.txt): 26 pages from sites in none of the sets above, labelled and frozen with the
           scores of the cleaner of main 5a27a82 (RULES_VERSION 6) before any change; scored once more at the end.
  blind6   batch 6 (web/blind6_*.txt): 45 pages from sites in none of the sets above, committed alone, then scored
           by the cleaner of main 22ca553 (RULES_VERSION 7) before any change; scored once more at the end (a design
           set since).
  blind7   batch 7 (web/blind7_*.txt): 39 pages from sites in none of the sets above, committed alone, then scored
           by the cleaner of main f59ec87 (RULES_VERSION 8) before any change; scored once more at the end (a design
           set since).
  blind8   batch 8 (web/blind8_*.txt): 20 pages (10 zh, 10 en) from sites in none of the sets above, committed alone,
           then scored by the cleaner of main 1d208d2 (RULES_VERSION 9) before any change.
  blind9   batch 9 (web/blind9_*.txt): 24 pages (12 zh, 12 en) from sites in none of the sets above, committed alone
           (4d4b9ab) before any cleaner ran on it, then scored by RULES_VERSION 10 and 11 (frozen9*_scores.json).
  blind10  batch 10 (web/blind10_*.txt): 26 pages (13 zh, 13 en) from sites in none of the sets above, committed
           alone (13caf46) before any cleaner ran on it, then scored by RULES_VERSION 11 (frozen10_v11_scores.json).
  blind11  batch 11 (web/blind11_*.txt): 26 pages (13 zh, 13 en) from sites in none of the sets above, committed
           alone (9899bcd) before any cleaner ran on it, then scored by RULES_VERSION 12 (frozen11_v12_scores.json).
The line model (gptkit.data.line_model) is trained on design .. blind10 (benchmarks/train_line_model.py's
TRAINING_SPLITS; batches 7-10 joined in RULES_VERSION 14), so with it those sets are its training pages (in-sample
figures); its honest figures are benchmarks/train_line_model.py --cv (every site held out) and the next frozen
batch.
Each is reported for Chinese and English apart: boilerplate lines removed (share of lines labelled B that the
cleaner drops) and content characters kept (characters of lines labelled C that come out, aligned with
difflib; a page dropped whole by a document rule loses all of its content). Per-kind tables say which kinds
of boilerplate stay and what removes content (a line rule, or a document rule).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


SETS = ("design", "blind1", "blind2", "design-all", *(f"blind{n}" for n in range(3, 12)))  # blind3 .. blind11


def evaluate(line_model: str | None = "builtin", only: tuple[str, ...] = SETS) -> dict:
    from tests.labelled import load_pages, load_web_pages, score_pages, site_of

    from gptkit.data.clean import CleanConfig

    cfg = CleanConfig(line_model=line_model)

    design, blind1, blind2 = load_pages() + load_web_pages("design"), load_web_pages("blind"), load_web_pages("blind2")
    sets = {
        "design": design,
        "blind1": blind1,
        "blind2": blind2,
        "design-all": design + blind1 + blind2,
        "blind3": load_web_pages("blind3"),
        "blind4": load_web_pages("blind4"),
        "blind5": load_web_pages("blind5"),
        "blind6": load_web_pages("blind6"),
        "blind7": load_web_pages("blind7"),
        "blind8": load_web_pages("blind8"),
        "blind9": load_web_pages("blind9"),
        "blind10": load_web_pages("blind10"),
        "blind11": load_web_pages("blind11"),
    }
    sets = {name: pages for name, pages in sets.items() if name in only}
    out: dict = {}
    for name, pages in sets.items():
        scores = score_pages(pages, cfg)
        out[name] = {"pages": len(pages), "sites": len({site_of(p.url) for p in pages if p.url})}
        for lang in ("zh", "en", "all"):
            s = scores[lang]
            out[name][lang] = {
                "pages": s.pages,
                "pages_dropped_whole": s.pages_dropped,
                "boilerplate_lines": s.boilerplate_lines,
                "boilerplate_removed": s.boilerplate_removed,
                "removed_fraction": round(s.removed_fraction, 4),
                "content_chars": s.content_chars,
                "content_chars_kept": s.content_chars_kept,
                "kept_fraction": round(s.kept_fraction, 4),
                "boilerplate_by_kind": {
                    k: [s.kind_lines[k] - s.kind_missed[k], s.kind_lines[k]] for k in sorted(s.kind_lines)
                },
                "content_by_shape": {
                    k: [s.shape_chars[k] - s.shape_lost[k], s.shape_chars[k]] for k in sorted(s.shape_chars)
                },
                "content_lost_by_cause": dict(s.cause_lost.most_common()),
                "missed": s.missed,
                "lost": s.lost,
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "clean_eval.json"))
    ap.add_argument("--show-errors", action="store_true")
    ap.add_argument("--line-model", default="builtin",
                    help="the line model: builtin, a model file, or none (the rules alone)")  # fmt: skip
    ap.add_argument("--sets", default=",".join(SETS),
                    help="comma-separated sets to score (default: all), e.g. --sets blind5")  # fmt: skip
    args = ap.parse_args()
    only = tuple(x for x in args.sets.split(",") if x)
    if unknown := [x for x in only if x not in SETS]:
        ap.error(f"--sets: unknown set(s) {unknown}; known: {', '.join(SETS)}")
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    res = evaluate(None if args.line_model == "none" else args.line_model, only)
    t = Table(title="cleaning quality on labelled pages (line level)")
    for col in ("set", "lang", "pages", "boilerplate lines removed", "content characters kept", "pages dropped whole"):
        t.add_column(col, justify="left" if col in ("set", "lang") else "right")
    for name in res:
        for lang in ("zh", "en"):
            r = res[name][lang]
            t.add_row(
                name,
                lang,
                str(r["pages"]),
                f"{r['boilerplate_removed']}/{r['boilerplate_lines']} = {100 * r['removed_fraction']:.1f}%",
                f"{r['content_chars_kept']}/{r['content_chars']} = {100 * r['kept_fraction']:.1f}%",
                str(r["pages_dropped_whole"]),
            )
    console.print(t)
    for name in res:
        k = Table(title=f"{name}: boilerplate removed by kind / content kept by line shape / content lost by cause")
        for col in ("lang", "boilerplate kind: removed/lines", "content shape: kept/chars", "lost chars by cause"):
            k.add_column(col)
        for lang in ("zh", "en"):
            r = res[name][lang]
            k.add_row(
                lang,
                "\n".join(f"{kind}: {a}/{b}" for kind, (a, b) in r["boilerplate_by_kind"].items()),
                "\n".join(f"{shape}: {a}/{b}" for shape, (a, b) in r["content_by_shape"].items()),
                "\n".join(f"{cause}: {n}" for cause, n in r["content_lost_by_cause"].items()) or "-",
            )
        console.print(k)
    if args.show_errors:
        for name in res:
            for lang in ("zh", "en"):
                r = res[name][lang]
                console.print(f"[bold]{name} {lang}: boilerplate left in[/bold]", markup=True)
                for line in r["missed"]:
                    console.print("  " + line, markup=False, highlight=False)
                console.print(f"[bold]{name} {lang}: content lost[/bold]", markup=True)
                for line in r["lost"]:
                    console.print("  " + line, markup=False, highlight=False)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
