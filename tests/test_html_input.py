"""HTML and WARC input: main text extracted (resiliparse), then the same cleaner; one resolver for all commands."""

from __future__ import annotations

import gzip
import json

import pytest

pytest.importorskip("resiliparse")

from gptkit.cli import main
from gptkit.data.sources import plan_splits, read_split, resolve_inputs
from gptkit.text_inputs import iter_texts

ARTICLE = [
    "图书馆新开了一个阅览室，周末的时候有很多学生来这里看书，安静的环境让人可以专心地学习一整天。",
    "管理员说，阅览室每天早上八点开门，晚上十点关门，读者凭借书证就可以免费进入，还可以借阅最新的杂志。",
]


def _page(charset: str = "utf-8") -> str:
    body = "".join(f"<p>{p}</p>" for p in ARTICLE)
    return (
        f'<html><head><meta charset="{charset}"><title>阅览室开放</title></head><body>'
        '<nav><ul><li><a href="/">首页</a></li><li><a href="/news">新闻</a></li><li><a href="/login">登录</a></li>'
        "</ul></nav>"
        f"<main><article><h1>阅览室开放</h1>{body}</article></main>"
        '<footer><p>版权所有 2024 某某网 京ICP备12345678号</p><a href="/about">关于我们</a></footer>'
        "</body></html>"
    )


def _warc_record(uri: str, html: bytes) -> bytes:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n" % len(html)
    payload = http + html
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:12345678-1234-1234-1234-123456789abc>\r\n"
        f"WARC-Date: 2024-01-01T00:00:00Z\r\nWARC-Target-URI: {uri}\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    return head + payload + b"\r\n\r\n"


def test_html_file_gives_its_main_text(tmp_path):
    path = tmp_path / "page.html"
    path.write_bytes(_page("gbk").encode("gbk"))  # the page's own charset
    (f,) = resolve_inputs([str(path)])
    (doc,) = [d for s in plan_splits([f], 1 << 20) for d in read_split(s)]
    for p in ARTICLE:
        assert p in doc.text
    assert "登录" not in doc.text and "关于我们" not in doc.text


@pytest.mark.parametrize("name", ["crawl.warc", "crawl.warc.gz"])
def test_warc_records_become_documents(tmp_path, name):
    records = [_warc_record(f"http://example.org/{i}", _page().encode()) for i in range(2)]
    raw = b"".join(gzip.compress(r) for r in records) if name.endswith(".gz") else b"".join(records)
    (tmp_path / name).write_bytes(raw)
    docs = [d for s in plan_splits(resolve_inputs([str(tmp_path / name)]), 1 << 20) for d in read_split(s)]
    assert len(docs) == 2 and all(ARTICLE[0] in d.text for d in docs)
    assert len({d.id for d in docs}) == 2


def test_prepare_and_tokenizer_inputs_read_html(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.htm").write_text(_page(), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["prepare", "--input", str(tmp_path / "in"), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    with gzip.open(next((out / "documents").glob("*.jsonl.gz")), "rt", encoding="utf-8") as f:
        (doc,) = [json.loads(x) for x in f]
    assert ARTICLE[1] in doc["text"] and "版权所有" not in doc["text"]
    assert any(ARTICLE[0] in t for t in iter_texts(str(tmp_path / "in")))  # tokenizer training reads it too
