"""The clean-result table the local pool's workers share (gptkit.data.shared_cache)."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from gptkit.data import tasks
from gptkit.data.clean import CleanConfig, clean_document
from gptkit.data.shared_cache import SharedCleanCache, fork_available

DOCS = [
    "这家酒店的服务很好，房间也很干净，下次还会再来。",
    "首页 > 新闻 > 体育\n今天的比赛非常精彩，两队都发挥出了很高的水平。\n责任编辑：张三",
    "好" * 20 + "\ufffd" * 5,  # dropped by a document rule: the result without text comes back too
    "Read more »\nThe council met on Tuesday and approved the new budget for the library.",
]


def test_a_shared_result_is_the_computed_one():
    cfg = CleanConfig()
    table = SharedCleanCache(cfg, slots=64, arena_bytes=1 << 16)
    for doc in DOCS:
        assert table.get(doc) is None
        assert table.put(doc, clean_document(doc, cfg))
        assert not table.put(doc, clean_document(doc, cfg))  # already there
    for doc in DOCS:
        assert table.get(doc) == clean_document(doc, cfg)  # every field, the statistics included
    assert table.entries == len(DOCS)
    table.close()


def test_a_full_table_takes_no_more_and_keeps_what_it_has():
    cfg = CleanConfig()
    small = SharedCleanCache(cfg, slots=4, arena_bytes=1 << 16)  # 2 entries at the load limit
    assert [small.put(d, clean_document(d, cfg)) for d in DOCS] == [True, True, False, False]
    assert small.get(DOCS[0]) == clean_document(DOCS[0], cfg) and small.get(DOCS[2]) is None
    tiny = SharedCleanCache(cfg, slots=64, arena_bytes=10)  # no room for one result
    assert not tiny.put(DOCS[0], clean_document(DOCS[0], cfg)) and tiny.get(DOCS[0]) is None


def _clean_in_child(table: SharedCleanCache) -> None:
    cache = tasks.CleanCache()
    cache.share(table)
    for doc in DOCS:
        cache.clean(doc, table.cfg)


@pytest.mark.skipif(not fork_available(), reason="the table is shared with forked processes only")
def test_results_cleaned_in_a_forked_worker_are_seen_by_another(monkeypatch):
    cfg = CleanConfig()
    table = SharedCleanCache(cfg, slots=64, arena_bytes=1 << 16)
    child = mp.get_context("fork").Process(target=_clean_in_child, args=(table,))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and table.entries == len(DOCS)
    calls = []
    real = tasks.clean_document
    monkeypatch.setattr(tasks, "clean_document", lambda text, c: calls.append(text) or real(text, c))
    cache = tasks.CleanCache()
    cache.share(table)
    assert [cache.clean(d, cfg) for d in DOCS] == [real(d, cfg) for d in DOCS]
    assert calls == []  # every one came from the other process's results
    other = CleanConfig(line_model=None)  # another setting never uses the table's results
    cache.clean(DOCS[1], other)
    assert calls == [DOCS[1]]
    table.close()
