"""How `prepare` runs, not what it decides: the clean stage's task order (gptkit.data.split_costs, Stage.costs),
the line counts the clean task writes, the pool kept across stages (release_between_stages), the documents
task's copy in runs. Structure only: the outputs must be the same in every variant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gptkit.data import pipeline, tasks
from gptkit.data.line_counts import LineCounter, count_lines_task
from gptkit.data.pipeline import PrepareConfig, prepare
from gptkit.data.runner import LocalExecutor, Runner, Stage, timed_call
from gptkit.data.sources import InputSplit, plan_splits, read_split, resolve_inputs
from gptkit.data.split_costs import MULTILINE_COST, estimate_cost, estimate_costs, multiline_share
from tests.prepare_helpers import output_tree

ARTICLE = "第一段讲的是城市里新开的图书馆。\n第二段讲的是周末去那里看书的人很多。\n第三段是结尾。"
REVIEW = "这家酒店的房间很干净，服务也不错，下次还会再来。"


def _jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return path


def _split(path: Path) -> InputSplit:
    size = path.stat().st_size
    return InputSplit("jsonl", str(path), "x", path=str(path), start=0, end=size, n_bytes=size)


def test_multiline_share_counts_the_bytes_of_records_with_a_line_break():
    one, two = b'{"text": "a"}', b'{"text": "a\\nb"}'
    assert multiline_share(one + b"\n" + one + b"\n") == 0.0
    assert multiline_share(two + b"\n") == 1.0
    assert multiline_share(one + b"\n" + two + b"\n") == (len(two) + 1) / (len(one) + len(two) + 2)
    assert multiline_share(b"") == 0.0


def test_a_split_of_articles_is_estimated_costlier_than_one_of_reviews_of_the_same_size(tmp_path):
    articles = _split(_jsonl(tmp_path / "a.jsonl", [ARTICLE] * 400))
    reviews = _split(_jsonl(tmp_path / "r.jsonl", [REVIEW] * 400))
    mixed = _split(_jsonl(tmp_path / "m.jsonl", [ARTICLE] * 200 + [REVIEW] * 500))  # articles first: sampled
    ca, cr, cm = estimate_costs([articles, reviews, mixed])
    # (the pieces cut records: a cut-off piece of an article may hold no line break)
    assert ca == pytest.approx(MULTILINE_COST * articles.n_bytes, rel=0.02) and cr == reviews.n_bytes
    assert cr / reviews.n_bytes < cm / mixed.n_bytes < ca / articles.n_bytes  # the pieces spread over the split
    lines = InputSplit("lines", "t.txt", "t", path="t.txt", end=10, n_bytes=10)  # one document per line
    assert estimate_cost(lines) == 10 and estimate_cost(InputSplit("files", "d", "", n_bytes=7)) == 7 * MULTILINE_COST
    gone = InputSplit("jsonl", "x", "x", path=str(tmp_path / "missing.jsonl"), end=99, n_bytes=99)
    assert estimate_cost(gone) == 99  # the clean task reports the missing file


def _record(out: str, item: int, log: str, progress=None) -> dict:
    with open(log, "a") as f:
        f.write(f"{item}\n")
    return {"item": item}


def _builtin_texts(news_bytes: int, review_bytes: int) -> list[str]:
    """The documents in the first news_bytes of builtin:zh-news, then the first review_bytes of the reviews."""
    news, reviews, _ = resolve_inputs(["builtin:zh-news", "builtin:zh-reviews"])
    return [
        d.text
        for f, n in ((news, news_bytes), (reviews, review_bytes))
        for s in plan_splits([f.__class__(f.path, f.kind, f.source, f.label, n, f.mtime_ns)], 1 << 20)
        for d in read_split(s)
    ]


def test_the_runner_starts_the_costliest_tasks_first_and_keeps_results_by_item(tmp_path):
    log = tmp_path / "order.txt"
    runner = Runner(tmp_path, LocalExecutor(1), False)
    stage = Stage("s", _record, [0, 1, 2, 3, 4], (str(log),), costs=[1.0, 5.0, 2.0, 5.0, 0.5])
    outcome, _ = runner.run(stage, "")
    assert log.read_text().split() == ["1", "3", "2", "0", "4"]  # equal costs keep their item order
    assert [s["item"] for s in outcome.stats] == [0, 1, 2, 3, 4]


def test_prepare_writes_the_same_files_in_any_task_order(tmp_path, monkeypatch):
    texts = _builtin_texts(60_000, 30_000)
    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):  # four files, each articles then reviews, as benchmarks/prepare.py writes them
        _jsonl(src / f"part-{k}.jsonl", [*texts[k::4], REVIEW, ARTICLE])

    def run(name: str, costs) -> Path:
        monkeypatch.setattr(pipeline, "estimate_costs", costs)
        out = tmp_path / name
        prepare(PrepareConfig(inputs=(str(src),), out=str(out), workers=2, split_bytes=20_000, progress=False))
        return out

    ordered = run("ordered", estimate_costs)
    items = run("items", lambda splits: None)  # item order, as before the costs
    backwards = run("backwards", lambda splits: [float(i) for i in range(len(splits))])
    assert len(json.loads((ordered / "work" / "plan.json").read_text())["splits"]) >= 4
    assert output_tree(ordered) == output_tree(items) == output_tree(backwards)
    for out in (ordered, items, backwards):  # the clean task's line counts are those read back from its output
        for p in sorted((out / "work" / "lines").glob("0*.npy")):
            direct = tmp_path / "direct" / out.name
            (direct / "work" / "clean").mkdir(parents=True, exist_ok=True)
            (direct / "work" / "clean" / f"{p.stem}.jsonl").write_bytes(
                (out / "work" / "clean" / f"{p.stem}.jsonl").read_bytes()
            )
            count_lines_task(str(direct), int(p.stem))
            assert np.array_equal(np.load(p), np.load(direct / "work" / "lines" / p.name))


def test_line_counter_counts_each_document_once_per_line():
    c = LineCounter()
    page = "这一行是一个足够长的句子用来计数\n另一行也是一个足够长的句子用来计数\n这一行是一个足够长的句子用来计数"
    c.add(page)
    c.add(page)
    c.add("一行的文档没有键，也足够长足够长足够长")
    assert c.docs == 3 and sorted(c.counts.values()) == [2, 2]


def _prepared(tmp_path: Path, workers: int = 1) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    texts = _builtin_texts(30_000, 20_000)
    _jsonl(src / "a.jsonl", texts + texts[:50] + [REVIEW] * 3)  # exact duplicates to drop
    out = tmp_path / "out"
    prepare(PrepareConfig(inputs=(str(src),), out=str(out), workers=workers, split_bytes=8_000, progress=False))
    return out


def test_the_documents_copy_in_runs_writes_what_the_per_document_edit_writes(tmp_path, monkeypatch):
    out = _prepared(tmp_path)
    n = len(json.loads((out / "work" / "plan.json").read_text())["splits"])
    assert n >= 3 and any(json.loads(p.read_text()) for p in (out / "work" / "dedup").glob("0*.json"))

    def documents() -> list[dict]:
        return [{k: v for k, v in tasks.documents_task(str(out), i).items() if k != "seconds"} for i in range(n)]

    fast = documents()
    files = output_tree(out)
    assert sum(sum(st["duplicates"].values()) for st in fast) >= 20
    monkeypatch.setattr(tasks, "DOCUMENTS_CHUNK_BYTES", 3_000)  # chunks end between and on the duplicates
    assert documents() == fast and output_tree(out) == files
    # a repeated-line key no document has: every kept document parsed and written again by _edit_documents
    monkeypatch.setattr(tasks, "load_repeated", lambda _out: frozenset({12345}))
    slow = documents()
    assert slow == fast and output_tree(out) == files
    assert [json.dumps(st) for st in slow] == [json.dumps(st) for st in fast]  # the counts' keys in one order


def test_a_worker_lets_the_clean_cache_go_when_it_turns_to_another_stage(tmp_path):
    tasks.CLEAN_CACHE.clean(REVIEW, tasks.CleanConfig())
    assert tasks.CLEAN_CACHE.results
    timed_call(_record, (str(tmp_path), 0, str(tmp_path / "log")))  # another function than the last one
    assert not tasks.CLEAN_CACHE.results
    tasks.CLEAN_CACHE.clean(REVIEW, tasks.CleanConfig())
    timed_call(_record, (str(tmp_path), 1, str(tmp_path / "log")))  # the same function again: kept
    assert tasks.CLEAN_CACHE.results
    tasks.CLEAN_CACHE.clear()
