"""A char tokenizer covers its own training text (issue 10 item 15): all its characters, or, with a smaller
vocab_size, the most frequent ones plus 256 byte tokens for the rest (byte fallback), so that
`prepare --tokenizer-kind char --vocab-size N` tokenizes every document of its corpus."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from gptkit.corpora import zh_news
from gptkit.tokenizer import Tokenizer, TokenizerError


@pytest.fixture(scope="module")
def news() -> str:
    return "".join(zh_news().train[:300])


def test_a_small_vocab_keeps_the_most_frequent_characters_and_falls_back_to_bytes(news, tmp_path):
    counts = Counter(news)
    assert len(counts) > 600  # many more characters than the vocabulary below holds
    tok = Tokenizer.train([news], vocab_size=400, kind="char")
    assert tok.vocab_size == 400 and tok.byte_fallback
    kept = 400 - 3 - 256
    assert set(tok.chars) == {c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:kept]}
    ids = tok.encode(news)
    assert tok.decode(ids) == news  # every character of its corpus, back exactly
    decoder = tok.stream_decoder()  # generation's decoder holds a character's bytes until it is whole
    pieces = [decoder.push(i) for i in ids]
    assert "".join(pieces) + decoder.flush() == news and "\ufffd" not in "".join(pieces)
    rare = next(c for c in counts if c not in tok.chars)
    base = len(tok.chars)  # byte 0x00's id: the byte tokens follow the characters
    assert tok.encode(rare) == [base + b for b in rare.encode("utf-8")]
    assert tok.encode(tok.chars[0]) == [0]
    tok.save(tmp_path / "tok")
    loaded = Tokenizer.load(tmp_path / "tok")
    assert loaded.byte_fallback and loaded.fingerprint == tok.fingerprint and loaded.encode(news) == ids


def test_a_vocab_that_holds_every_character_needs_no_fallback(news):
    tok = Tokenizer.train([news], vocab_size=None, kind="char")
    assert not tok.byte_fallback and tok.vocab_size == len(set(news)) + 3
    with pytest.raises(TokenizerError, match=r"is not in this char tokenizer's vocabulary"):
        tok.encode("\U0001f600")  # text outside its training text still names the character


def test_a_vocab_too_small_for_the_fallback_is_refused():
    with pytest.raises(TokenizerError, match=r"vocab_size=6: the training text has 5 distinct characters.*at least 8"):
        Tokenizer.train(["aaaa bbb cc d"], vocab_size=6, kind="char")


def test_prepare_with_a_char_vocab_smaller_than_the_corpus(news, tmp_path, gptkit_cli):
    docs = tmp_path / "news.jsonl"
    lines = zh_news().train[:300]
    docs.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in lines), encoding="utf-8")
    argv = ["prepare", "--input", str(docs), "--out", str(tmp_path / "out"), "--tokenizer-kind", "char"]
    argv += ["--vocab-size", "400", "--workers", "1", "--no-progress", "--no-dedup"]
    r = gptkit_cli.run(argv, tmp_path)
    assert r.returncode == 0, r.stderr
    tok = Tokenizer.load(tmp_path / "out")
    assert tok.kind == "char" and tok.vocab_size == 400 and tok.byte_fallback
