"""Readers: file kinds, directories, built-in corpora, and split plans that never lose or repeat a document."""

from __future__ import annotations

import gzip
import json

import pytest

from gptkit.data.sources import (
    SourceError,
    news_title_line,
    plan_splits,
    read_split,
    resolve_inputs,
    strip_news_tags,
)


def _read_all(files, split_bytes):
    return [(d.id, d.text) for s in plan_splits(files, split_bytes) for d in read_split(s)]


def test_file_kinds_and_directories(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("第一篇文章。\n第二段。", encoding="utf-8")
    (tmp_path / "corpus" / "b.md").write_text("# Title\nbody", encoding="utf-8")
    (tmp_path / "corpus" / "skip.bin").write_bytes(b"\0\1")
    lines = tmp_path / "lines.txt"
    lines.write_text("one\n\ntwo\r\nthree", encoding="utf-8")
    jl = tmp_path / "d.jsonl"
    jl.write_text(json.dumps({"text": "json doc", "url": "x"}) + "\n\n" + json.dumps({"text": "second"}) + "\n")
    gz = tmp_path / "e.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"text": "gzipped"}) + "\n")
    files = resolve_inputs([str(tmp_path / "corpus"), str(jl), str(gz)])
    docs = _read_all(files, 1 << 20)
    assert [t for _, t in docs] == ["第一篇文章。\n第二段。", "# Title\nbody", "json doc", "second", "gzipped"]
    assert docs[0][0].endswith("a.txt") and docs[2][0] == f"{jl}:0"
    per_line = resolve_inputs([str(lines)], doc_per_line=True)
    assert [t for _, t in _read_all(per_line, 1 << 20)] == ["one", "two", "three"]
    assert [t for _, t in _read_all(resolve_inputs([str(lines)]), 1 << 20)] == ["one\n\ntwo\r\nthree"]


def test_invalid_utf8_is_counted(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes("好的".encode() + b"\xff\xfe" + "文本".encode())
    (doc,) = [d for s in plan_splits(resolve_inputs([str(p)]), 1 << 20) for d in read_split(s)]
    assert doc.bad_bytes == 2 and doc.text.startswith("好的") and doc.text.endswith("文本")


@pytest.mark.parametrize("split_bytes", [7, 50, 333, 1 << 20])
def test_byte_range_splits_read_every_document_once(tmp_path, split_bytes):
    p = tmp_path / "many.jsonl"
    rows = [json.dumps({"text": f"文档 {i} " + "字" * (i % 17)}, ensure_ascii=False) for i in range(200)]
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    docs = _read_all(resolve_inputs([str(p)]), split_bytes)
    assert [t for _, t in docs] == [json.loads(r)["text"] for r in rows]
    assert len({i for i, _ in docs}) == 200


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        resolve_inputs([str(tmp_path / "missing.txt")])
    with pytest.raises(SourceError, match="unknown built-in corpus 'builtin:nope'"):
        resolve_inputs(["builtin:nope"])
    odd = tmp_path / "x.csv"
    odd.write_text("a,b")
    with pytest.raises(SourceError, match="x.csv: unsupported file type"):
        resolve_inputs([str(odd)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"title": "no text"}\n')
    with pytest.raises(SourceError, match=r"bad.jsonl: the record at byte 15 has no string field 'text'"):
        _read_all(resolve_inputs([str(bad)]), 1 << 20)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok"\n')
    with pytest.raises(SourceError, match="broken.jsonl: invalid JSON in the record at byte 0"):
        _read_all(resolve_inputs([str(broken)]), 1 << 20)


def test_builtin_news_tags_and_article_grouping():
    assert strip_news_tags("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n") == "迈向充满希望的新世纪"
    assert news_title_line("北京举行新年音乐会")
    assert news_title_line("迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）")
    assert not news_title_line("（新华社记者樊如钧摄）")  # a caption
    assert not news_title_line("谢谢！（新华社北京１２月３１日电）")
    assert not news_title_line("他说：“再等一会儿。”")
    (news,) = resolve_inputs(["builtin:zh-news"])
    head = news.__class__(news.path, news.kind, news.source, news.label, 60_000, news.mtime_ns)  # first 60 KB
    docs = _read_all([head], 60_000)
    assert docs[0][1].startswith("迈向充满希望的新世纪") and "同胞们、朋友们" in docs[0][1]
    assert docs[1][1].startswith("在十五大精神指引下胜利前进——元旦献辞")
    assert docs[2][1].startswith("北京举行新年音乐会")
    assert all("/" not in t.split("\n")[0] for _, t in docs)
    # the same articles whatever the split boundaries
    assert _read_all([head], 7_777) == docs


def test_builtin_reviews_are_one_per_line():
    files = resolve_inputs(["builtin:zh-reviews"])
    assert [f.label for f in files] == ["builtin:zh-reviews/pos.txt", "builtin:zh-reviews/neg.txt"]
    small = [f.__class__(f.path, f.kind, f.source, f.label, 20_000, f.mtime_ns) for f in files]
    docs = _read_all(small, 5_000)
    assert len(docs) > 100 and all("\n" not in t for _, t in docs)
