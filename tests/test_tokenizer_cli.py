from __future__ import annotations

import json

import pytest

from gptkit import Tokenizer
from gptkit.cli import main
from gptkit.tokenizer import CharTokenizer
from gptkit.tokenizer.report import script_counts, tokenizer_report

TEXT = "中文，Hello wörld! 123 😀 日本語テキスト ĀĒ\n"  # Han 5, Latin 12 (incl. ö Ā Ē), the rest other


def test_script_counts_with_one_token_per_character():
    tok = CharTokenizer(sorted(set(TEXT)))
    counts = script_counts(tok, TEXT, tok.encode(TEXT))  # rows other, Latin, Han; columns tokens, bytes, chars
    han = sum(1 for c in TEXT if "\u4e00" <= c <= "\u9fff")
    latin = sum(1 for c in TEXT if (c.isalpha() and c.isascii()) or c in "öĀĒ")
    assert (han, latin) == (5, 12)
    assert counts[2].tolist() == [han, 3 * han, han]
    assert counts[1].tolist() == [latin, latin + 3, latin]  # ö Ā Ē take 2 bytes each
    assert counts[:, 2].sum() == len(TEXT) and counts[:, 1].sum() == len(TEXT.encode())


def test_script_counts_attribute_split_characters_once():
    # A byte-level tokenizer with no merges: every token is one byte; a Han character is 3 tokens.
    tok = Tokenizer.train(["x"], vocab_size=300)
    counts = script_counts(tok, "中a", tok.encode("中a"))
    assert counts.tolist() == [[0, 0, 0], [1, 1, 1], [3, 3, 1]]


def test_report_totals_match_encode(tmp_path):
    lines = [TEXT, "The quick brown fox.\n", "我爱北京天安门。\n"] * 50
    tok = Tokenizer.train(lines, vocab_size=320)
    report = tokenizer_report(tok, lines)
    total = report.rows[-1]
    text = "".join(lines)
    assert (total.script, total.tokens, total.bytes, total.chars) == (
        "all",
        len(tok.encode(text)),
        len(text.encode()),
        len(text),
    )
    assert [r.script for r in report.rows] == ["Han", "Latin", "other", "all"]
    assert report.encode_mb_s_one_thread > 0 and report.encode_mb_s_all_threads > 0


def test_cli_train_and_report(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join([TEXT, "The quick brown fox jumps.\n", "我爱北京天安门。\n"] * 200), encoding="utf-8")
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", "--input", str(corpus), "--vocab-size", "300", "--out", str(out)]) == 0
    assert "vocab_size 300" in capsys.readouterr().out
    tok = Tokenizer.load(out)
    assert tok.vocab_size == 300 and tok.kind == "bpe"
    assert main(["tokenizer", "report", str(out), "--input", str(corpus), "--json", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "chars/token" in printed and "MB/s on 1 thread" in printed
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["rows"][-1]["chars"] == len(corpus.read_text(encoding="utf-8"))
    assert main(["tokenizer", "train", "--input", str(corpus), "--kind", "char", "--out", str(tmp_path / "c")]) == 0
    assert Tokenizer.load(tmp_path / "c").kind == "char"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tokenizer", "train", "--input", "missing.txt", "--vocab-size", "300", "--out", "o"], "missing.txt: no such"),
        (["tokenizer", "train", "--input", "{corpus}", "--out", "o"], "--vocab-size is required for a bpe"),
        (["tokenizer", "report", "{tmp}", "--input", "{corpus}"], "no tokenizer found"),
    ],
)
def test_cli_errors_exit_2_with_a_message(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("some text\n", encoding="utf-8")
    argv = [a.format(corpus=corpus, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
