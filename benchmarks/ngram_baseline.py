"""Interpolated Kneser-Ney character n-grams on a prepared directory: the count baseline (nats per character).

Fits gptkit.eval.ngram.KneserNey on the decoded train split and scores the val split, in nats per character
as gptkit.eval.lm and val_nats_per_char count them (one separator per document, predicted).

    python benchmarks/ngram_baseline.py --data gptkit-demo/data            # orders 2, 3, 4
    python benchmarks/ngram_baseline.py --data DIR --orders 3 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gptkit.eval.ngram import KneserNey, split_text

RESULTS = Path(__file__).resolve().parent / "results" / "ngram_baseline.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a `gptkit prepare` output directory (with tokenizer files)")
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args()
    train, val = split_text(args.data, "train"), split_text(args.data, "val")
    print(f"{args.data}: train {len(train):,} characters, val {len(val):,}")
    rows = []
    print(f"{'order':>5}{'val nats/char':>15}{'fit s':>8}{'score s':>9}")
    for order in args.orders:
        t0 = time.perf_counter()
        model = KneserNey(train, order)
        t1 = time.perf_counter()
        nats, n = model.nats(val)
        t2 = time.perf_counter()
        rows.append(
            {"order": order, "val_nats_per_char": nats / n, "fit_s": round(t1 - t0, 2), "score_s": round(t2 - t1, 2)}
        )
        print(f"{order:>5}{nats / n:>15.4f}{t1 - t0:>8.1f}{t2 - t1:>9.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"data": str(args.data), "train_chars": len(train), "val_chars": len(val), "rows": rows}, indent=1)
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
