"""Corpus-level repeated lines: counted per split, summed, and dropped from the documents (gptkit.data.line_counts)."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter

import numpy as np

from gptkit.cli import main
from gptkit.data.line_counts import (
    REPEAT_MIN_DOCS,
    count_lines_task,
    drop_repeated_lines,
    line_key,
    load_repeated,
    repeated_lines_task,
)

TEMPLATE = "本站所有文章均由网友投稿，仅供学习交流，如有问题请联系管理员处理"
TOPICS = ["春天", "夏天", "秋天", "冬天", "清晨", "傍晚", "雨后", "雪夜"]


def _page(i: int) -> str:
    t = TOPICS[i]
    return (
        f"{t}的公园里总是很热闹，老人在树下下棋，孩子们在草地上追逐打闹，笑声一阵接着一阵传得很远。\n"
        f"我常常在{t}去那里散步，看湖面上的小船慢慢划过，心里觉得格外平静，烦恼也好像少了许多。\n"
        f"{TEMPLATE}"
    )


def test_counts_summed_over_splits_match_a_direct_count(tmp_path):
    rng = random.Random(0)
    pool = [f"第{k}行内容是一句足够长的话用来计数" for k in range(30)]
    splits = [[rng.sample(pool, 4) for _ in range(20)] for _ in range(3)]  # 3 splits x 20 documents x 4 lines
    (tmp_path / "work" / "clean").mkdir(parents=True)
    for i, docs in enumerate(splits):
        with open(tmp_path / "work" / "clean" / f"{i:05d}.jsonl", "w", encoding="utf-8") as f:
            for lines in docs:
                f.write(json.dumps({"text": "\n".join(lines)}, ensure_ascii=False) + "\n")
        count_lines_task(str(tmp_path), i)
    repeated_lines_task(str(tmp_path), 0, 3, 7)
    direct = Counter(line for docs in splits for lines in docs for line in set(lines))
    assert load_repeated(tmp_path) == {line_key(line) for line, c in direct.items() if c >= 7}
    assert np.load(tmp_path / "work" / "lines" / "repeated.npy").dtype == np.uint64


def test_one_line_records_are_skipped_without_changing_the_counts(tmp_path):
    pool = [f"第{k}行内容是一句足够长的话用来计数" for k in range(6)]
    docs = [pool[0], f"{pool[1]}\\n{pool[2]}", "\n".join(pool[:3]), "\n\n".join(pool[2:5]), pool[5] + "\n"]
    (tmp_path / "work" / "clean").mkdir(parents=True)
    with open(tmp_path / "work" / "clean" / "00000.jsonl", "w", encoding="utf-8") as f:
        for k, text in enumerate(docs):
            f.write(json.dumps({"id": f"a\nb{k}", "text": text}, ensure_ascii=False) + "\n")
    assert count_lines_task(str(tmp_path), 0) == {"docs": 5, "distinct_lines": 5}
    keys, counts = np.load(tmp_path / "work" / "lines" / "00000.npy")
    got = dict(zip(keys.tolist(), counts.tolist(), strict=True))
    assert got == {line_key(line): 2 if line == pool[2] else 1 for line in pool[:5]}


def test_one_line_documents_and_short_lines_are_never_touched():
    repeated = frozenset({line_key(TEMPLATE)})
    assert drop_repeated_lines(TEMPLATE, repeated) == (TEMPLATE, [])  # a one-line document is its own line
    text = "第一段内容，足够长的一句话。\n" + TEMPLATE
    assert drop_repeated_lines(text, repeated) == ("第一段内容，足够长的一句话。", [(1, TEMPLATE)])
    assert line_key("谢谢！") is None


def _prepare(tmp_path, n_pages: int) -> tuple[list[dict], dict]:
    src = tmp_path / f"in{n_pages}"
    src.mkdir()
    for i in range(n_pages):
        (src / f"p{i}.txt").write_text(_page(i), encoding="utf-8")
    out = tmp_path / f"out{n_pages}"
    args = ["prepare", "--input", str(src), "--out", str(out), "--workers", "1", "--no-progress", "--no-near-dedup"]
    assert main(args) == 0  # (the pages share a sentence pattern: near dedup would merge them)
    docs = []
    for path in sorted((out / "documents").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            docs += [json.loads(x) for x in f]
    return docs, json.loads((out / "report.json").read_text())


def test_prepare_drops_a_template_line_found_in_enough_documents(tmp_path):
    docs, report = _prepare(tmp_path, REPEAT_MIN_DOCS + 1)
    assert len(docs) == REPEAT_MIN_DOCS + 1 and not any(TEMPLATE in d["text"] for d in docs)
    assert report["dropped_lines"]["corpus-repeated-line"] == REPEAT_MIN_DOCS + 1
    docs, report = _prepare(tmp_path, REPEAT_MIN_DOCS - 1)  # below the threshold: kept
    assert all(TEMPLATE in d["text"] for d in docs) and "corpus-repeated-line" not in report["dropped_lines"]
