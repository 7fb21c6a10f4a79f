"""Input encodings: GBK, GB18030, Big5, UTF-16/32 with a BOM are detected, decoded and reported per file; a file
in no known text encoding is named in a clear error (issue 10, item 14). One resolver for every command."""

from __future__ import annotations

import codecs
import gzip
import json

import pytest

from gptkit.cli import main
from gptkit.data.encoding import EncodingError, detect_encoding, detect_file_encoding
from gptkit.text_inputs import iter_texts

SIMPLIFIED = [
    "这家酒店的服务很好，房间也很干净，早餐的种类很多，前台的工作人员态度热情，下次出差还会再来住。",
    "图书馆新开了一个阅览室，周末的时候有很多学生来这里看书，安静的环境让人可以专心地学习一整天。",
    "今年春天的雨水比往年多，农民们抓紧时间播种，村里的合作社还请来了农业专家讲解新的种植技术。",
]
TRADITIONAL = "臺灣的夜市小吃非常有名，每到晚上就有許多觀光客來這裡品嚐各種美食，熱鬧的氣氛一直持續到深夜。"
RARE = "𠀀"  # CJK Extension B: in GB18030, not in GBK


@pytest.mark.parametrize(
    "text, encoding, expected",
    [
        (SIMPLIFIED[0], "gbk", "gbk"),
        (SIMPLIFIED[1] + RARE, "gb18030", "gb18030"),
        (TRADITIONAL, "big5", "big5"),
        (TRADITIONAL, "gbk", "gbk"),  # Traditional characters in GBK: the coherence test must not call it Big5
        (SIMPLIFIED[2], "utf-8", "utf-8"),
        ("plain ASCII text\n", "ascii", "utf-8"),
    ],
)
def test_encodings_are_detected(text, encoding, expected):
    raw = text.encode(encoding)
    assert detect_encoding(raw) == expected
    assert raw.decode(expected) == text


@pytest.mark.parametrize(
    "bom, codec, expected",
    [
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
        (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),
        (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
    ],
)
def test_a_byte_order_mark_decides(bom, codec, expected):
    raw = bom + SIMPLIFIED[0].encode(codec)
    assert detect_encoding(raw) == expected and raw.decode(expected) == SIMPLIFIED[0]


def test_a_long_ascii_head_does_not_hide_gbk(tmp_path):
    path = tmp_path / "late.txt"
    path.write_bytes(b"header line\n" * 200_000 + SIMPLIFIED[0].encode("gbk") + b"\n")  # 2.4 MB of ASCII first
    assert detect_file_encoding(path) == "gbk"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,  # an image
        SIMPLIFIED[0].encode("utf-16-le"),  # UTF-16 without a BOM: NUL bytes
        bytes(range(128, 256)) * 8,  # no known codec decodes it
    ],
)
def test_a_file_in_no_known_encoding_is_named(tmp_path, raw):
    path = tmp_path / "blob.txt"
    path.write_bytes(raw)
    with pytest.raises(EncodingError, match=r"blob\.txt: not a text file in a known encoding"):
        detect_file_encoding(path)


def _write_inputs(directory):
    directory.mkdir()
    files = {
        "a_gbk.txt": (SIMPLIFIED[0], "gbk"),
        "b_gb18030.txt": (SIMPLIFIED[1] + RARE, "gb18030"),
        "c_big5.txt": (TRADITIONAL, "big5"),
        "d_utf16.txt": (SIMPLIFIED[2], "utf-16"),  # Python's utf-16 writes a BOM
    }
    for name, (text, codec) in files.items():
        (directory / name).write_bytes(text.encode(codec))
    return files


def test_prepare_decodes_and_reports_each_files_encoding(tmp_path, capsys):
    files = _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    args = ["prepare", "--input", str(tmp_path / "in"), "--out", str(out), "--workers", "1", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    expected = {"a_gbk.txt": "gbk", "b_gb18030.txt": "gb18030", "c_big5.txt": "big5", "d_utf16.txt": "utf-16"}
    assert {k.split("/")[-1]: v for k, v in report["encodings"].items()} == expected
    assert "a_gbk.txt: decoded as gbk" in printed and "c_big5.txt: decoded as big5" in printed
    docs = []
    for path in sorted((out / "documents").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            docs += [json.loads(x) for x in f]
    assert sorted(d["text"] for d in docs) == sorted(t for t, _ in files.values())


def test_damaged_utf8_is_still_utf8():
    raw = SIMPLIFIED[0].encode() + b"\xff" + SIMPLIFIED[1].encode()
    assert detect_encoding(raw) == "utf-8"


def test_prepare_names_a_binary_input_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.txt").write_text(SIMPLIFIED[0], encoding="utf-8")
    (tmp_path / "in" / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    out = tmp_path / "out"
    assert main(["prepare", "--input", str(tmp_path / "in"), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "photo.txt: not a text file in a known encoding" in err and "Traceback" not in err
    assert not out.exists()


def test_tokenizer_inputs_use_the_same_resolver_and_decoding(tmp_path):
    files = _write_inputs(tmp_path / "in")
    (tmp_path / "in" / "notes.md").write_text("# 标题\n一段说明文字。\n", encoding="utf-8")  # prepare reads .md
    texts = list(iter_texts(str(tmp_path / "in")))
    assert sorted(texts) == sorted([t for t, _ in files.values()] + ["# 标题\n一段说明文字。\n"])
