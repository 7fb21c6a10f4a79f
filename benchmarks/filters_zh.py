"""What the document rules drop from the built-in corpora (real Chinese prose), with examples to read by hand.

    python benchmarks/filters_zh.py

Prints, per corpus, the documents each document rule drops (three examples each) and the lines each line rule
drops. The question it answers: does any rule reject good Chinese prose? (docs/prepare.md has the reading.)
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    from gptkit.data.clean import clean_document
    from gptkit.data.sources import plan_splits, read_split, resolve_inputs

    for corpus in ("builtin:zh-news", "builtin:zh-reviews"):
        rules: Counter = Counter()
        line_rules: Counter = Counter()
        examples: dict[str, list[str]] = defaultdict(list)
        n = 0
        for split in plan_splits(resolve_inputs([corpus]), 1 << 30):
            for doc in read_split(split):
                n += 1
                res = clean_document(doc.text)
                line_rules.update(rule for _, rule, _ in res.dropped_lines)
                if res.rule:
                    rules[res.rule] += 1
                    if len(examples[res.rule]) < 3:
                        examples[res.rule].append(res.normalized[:120].replace("\n", " / "))
        print(f"{corpus}: {n:,} documents, {sum(rules.values()):,} dropped: {dict(rules.most_common())}")
        print(f"  lines dropped by rule: {dict(line_rules.most_common())}")
        for rule, texts in examples.items():
            for t in texts:
                print(f"  {rule} | {t}")


if __name__ == "__main__":
    main()
