from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptkit import Tokenizer, TokenizerError
from gptkit.text_inputs import TextInputError
from gptkit.tokenizer import EOT, PRETOKENIZERS, SPECIAL_TOKENS, BPETokenizer, CharTokenizer
from tests.tokenizer_helpers import any_text, mixed_corpus, reference_bpe_encode

VOCAB = 1000


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    return mixed_corpus()


@pytest.fixture(scope="module")
def bpe(corpus) -> BPETokenizer:
    return Tokenizer.train(corpus["train"], vocab_size=VOCAB)


@pytest.fixture(scope="module")
def char(corpus) -> CharTokenizer:
    return Tokenizer.train(corpus["train"], vocab_size=None, kind="char")


# ---- BPE ---------------------------------------------------------------------------------------
def test_trained_vocab_has_exactly_the_requested_size_and_specials_at_the_end(bpe):
    assert bpe.vocab_size == VOCAB
    assert bpe.special_tokens == {"<|im_start|>": VOCAB - 3, "<|im_end|>": VOCAB - 2, EOT: VOCAB - 1}
    assert bpe.eot_id == VOCAB - 1
    assert len(bpe.fingerprint) == 64 and int(bpe.fingerprint, 16) >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_text)
def test_bpe_round_trip_property(bpe, text):
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert not set(ids) & set(bpe.special_tokens.values())  # special strings in text are ordinary text


@settings(max_examples=150, deadline=None)
@given(any_text)
def test_char_round_trip_property(text):
    tok = CharTokenizer(sorted(set(text) | {"a"}))
    assert tok.decode(tok.encode(text)) == text


def test_round_trip_of_a_1mb_line(bpe, corpus):
    base = "".join(corpus["held_out"]).replace("\n", " ")
    line = (base * (1 + 1_000_000 // len(base.encode())))[:400_000]
    assert len(line.encode()) >= 1_000_000 and "\n" not in line
    assert bpe.decode(bpe.encode(line)) == line
    assert bpe.decode(bpe.encode_batch([line, line[::-1]])[1]) == line[::-1]


def test_every_single_token_id_decodes_and_round_trips(bpe):
    ids_of = {i: bpe.token_bytes(i) for i in range(bpe.vocab_size)}
    assert len(set(ids_of.values())) == bpe.vocab_size  # no two ids stand for the same bytes
    for i, raw in ids_of.items():
        stream = bpe.stream_decoder()
        assert stream.push(i) + stream.flush() == bpe.decode([i]) == raw.decode("utf-8", errors="replace")
        if i in bpe.special_tokens.values():
            assert bpe.decode([i]) in SPECIAL_TOKENS
            assert i not in bpe.encode(bpe.decode([i]))  # its text is ordinary text
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a piece of a character: only meaningful next to its other bytes
        assert bpe.decode(bpe.encode(text)) == text
    assert all(len(bpe.token_bytes(i)) == 1 for i in range(256))  # every byte is a token: nothing is unknown


def test_encode_matches_a_plain_python_bpe_over_the_saved_files(bpe, corpus, tmp_path):
    bpe.save(tmp_path)
    text = "".join(corpus["held_out"][::10]) + "  1234567 l'été <|endoftext|>\n\n\t x"
    assert bpe.encode(text) == reference_bpe_encode(text, tmp_path, PRETOKENIZERS["gptkit"])


def test_special_token_strings_in_text_are_ordinary_text(bpe):
    text = f"a{EOT}b<|im_start|>user\nhi<|im_end|>"
    specials = set(bpe.special_tokens.values())
    for ids in (bpe.encode(text), *bpe.encode_batch([text, EOT])):
        assert not set(ids) & specials
    assert bpe.decode(bpe.encode(text)) == text
    assert bpe.decode([bpe.eot_id, 5, bpe.special_tokens["<|im_end|>"]]) == EOT + bpe.decode([5]) + "<|im_end|>"


def test_encode_batch_equals_encode(bpe, corpus):
    docs = corpus["held_out"] + ["", " ", EOT, "字"]
    assert bpe.encode_batch(docs) == [bpe.encode(d) for d in docs]
    assert bpe.encode_batch(iter(docs[:3])) == [bpe.encode(d) for d in docs[:3]]


def test_lone_surrogate_is_a_clear_error(bpe, char):
    for tok in (bpe, char):
        with pytest.raises(TokenizerError, match=r"lone surrogate '\\udc80' at character 2"):
            tok.encode("ab\udc80c")
    with pytest.raises(TokenizerError, match=r"texts\[1\]: .*lone surrogate '\\ud800'"):
        bpe.encode_batch(["fine", "\ud800"])
    with pytest.raises(TokenizerError, match="expected str, got bytes"):
        bpe.encode(b"bytes")


def test_decode_refuses_out_of_range_ids(bpe):
    for bad in ([bpe.vocab_size], [1, -1]):
        with pytest.raises(TokenizerError, match=f"token id {bad[-1]} is out of range"):
            bpe.decode(bad)
    with pytest.raises(TokenizerError, match="out of range"):
        bpe.stream_decoder().push(bpe.vocab_size)


# ---- streaming ---------------------------------------------------------------------------------
def _splits_a_character(tok, ids: list[int]) -> bool:
    """True if some token of `ids` ends inside a multi-byte character (the next token completes it)."""
    done = b""
    for i in ids[:-1]:
        done += tok.token_bytes(i)
        try:
            done.decode("utf-8")
        except UnicodeDecodeError:
            return True
    return False


def test_stream_decoder_emits_only_whole_characters(bpe, corpus):
    text = "".join(line for line in corpus["held_out"] if any("\u4e00" <= c <= "\u9fff" for c in line))[:3000]
    text += "龘𠀀😀"  # rare characters: BPE spells them in single bytes
    ids = bpe.encode(text)
    assert _splits_a_character(bpe, ids), "the test text must really split characters between tokens"
    multi_byte_token_pieces = [i for i in set(ids) if len(bpe.token_bytes(i)) > 1 and not _valid(bpe.token_bytes(i))]
    assert multi_byte_token_pieces, "expected merged tokens that hold part of a character"
    stream = bpe.stream_decoder()
    out, seen = "", b""
    for i in ids:
        piece = stream.push(i)
        seen += bpe.token_bytes(i)
        assert "\ufffd" not in piece
        out += piece
        # Exactly the complete characters so far: the longest valid UTF-8 prefix of the bytes seen.
        assert out == _longest_valid_prefix(seen)
    assert stream.flush() == ""
    assert out == text


def _valid(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _longest_valid_prefix(raw: bytes) -> str:
    for cut in range(len(raw), max(-1, len(raw) - 4), -1):
        if _valid(raw[:cut]):
            return raw[:cut].decode("utf-8")
    raise AssertionError("no valid prefix")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, VOCAB - 1), max_size=40))
def test_stream_decoder_pieces_equal_decode_for_any_ids(bpe, ids):
    stream = bpe.stream_decoder()
    assert "".join(stream.push(i) for i in ids) + stream.flush() == bpe.decode(ids)


def test_stream_decoder_holds_an_unfinished_character_until_flush(bpe):
    han = "龘".encode()  # 3 bytes, spelled as 3 byte tokens
    ids = bpe.encode("龘")
    assert [bpe.token_bytes(i) for i in ids] == [han[:1], han[1:2], han[2:]]
    stream = bpe.stream_decoder()
    assert [stream.push(i) for i in ids[:2]] == ["", ""]
    assert stream.flush() == "\ufffd"  # ended in the middle of a character: nothing else to say
    assert [stream.push(i) for i in ids] == ["", "", "龘"]  # reusable after flush


# ---- save / load -------------------------------------------------------------------------------
def test_bpe_save_load_round_trip(bpe, corpus, tmp_path):
    bpe.save(tmp_path / "ckpt")
    names = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "gptkit_tokenizer.json"} <= names
    loaded = Tokenizer.load(tmp_path / "ckpt")
    assert isinstance(loaded, BPETokenizer)
    assert (loaded.fingerprint, loaded.vocab_size, loaded.special_tokens) == (
        bpe.fingerprint,
        bpe.vocab_size,
        bpe.special_tokens,
    )
    assert loaded.encode_batch(corpus["held_out"]) == bpe.encode_batch(corpus["held_out"])


def test_char_tokenizer_like_nanogpt_shakespeare_char(shared_dir, tmp_path):
    path = shared_dir / "data" / "tinyshakespeare.txt"
    tok = Tokenizer.train([path], vocab_size=None, kind="char")
    text = path.read_text(encoding="utf-8")
    chars = sorted(set(text))
    assert len(chars) == 65  # nanoGPT's shakespeare_char prepare.py reports 65 characters
    assert tok.vocab_size == 65 + 3 and tok.eot_id == 67
    assert tok.encode(text[:1000]) == [chars.index(c) for c in text[:1000]]
    tok.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    assert isinstance(loaded, CharTokenizer) and loaded.fingerprint == tok.fingerprint
    assert loaded.decode(loaded.encode(text)) == text
    with pytest.raises(TokenizerError, match=r"character '世' \(U\+4E16\) at position 2 is not in"):
        tok.encode("ab世")


def test_char_vocab_size_that_holds_the_text_keeps_every_character():
    # Smaller vocabularies keep the most frequent characters with byte fallback: tests/test_char_coverage.py.
    tok = Tokenizer.train(["aaaa bbb cc d"], vocab_size=3 + 256 + 3, kind="char")
    assert tok.chars == [" ", "a", "b", "c", "d"] and not tok.byte_fallback
    assert tok.encode("ab c") == [1, 2, 0, 3]


def test_fingerprint_tells_tokenizers_apart(bpe, char, corpus):
    other = Tokenizer.train(corpus["train"][::10], vocab_size=VOCAB)
    assert len({bpe.fingerprint, char.fingerprint, other.fingerprint}) == 3
    assert Tokenizer.train(corpus["train"][::10], vocab_size=VOCAB).fingerprint == other.fingerprint


def test_load_refuses_edited_files(bpe, tmp_path):
    bpe.save(tmp_path)
    definition = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    definition["model"]["merges"] = definition["model"]["merges"][:-1]
    (tmp_path / "tokenizer.json").write_text(json.dumps(definition), encoding="utf-8")
    with pytest.raises(TokenizerError, match="fingerprint .* does not match the tokenizer files"):
        Tokenizer.load(tmp_path)


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(TokenizerError, match="no tokenizer found"):
        Tokenizer.load(tmp_path)
    with pytest.raises(TokenizerError, match="not a directory"):
        Tokenizer.load(tmp_path / "missing")
    (tmp_path / "gptkit_tokenizer.json").write_text("{", encoding="utf-8")
    with pytest.raises(TokenizerError, match="gptkit_tokenizer.json: not valid JSON"):
        Tokenizer.load(tmp_path)


def test_saving_char_over_bpe_removes_the_bpe_files(bpe, char, tmp_path):
    bpe.save(tmp_path)
    char.save(tmp_path)
    assert not (tmp_path / "tokenizer.json").exists()
    assert Tokenizer.load(tmp_path).fingerprint == char.fingerprint


# ---- training inputs ---------------------------------------------------------------------------
def test_train_reads_txt_jsonl_gz_directories_and_generators(tmp_path, corpus):
    lines = corpus["train"][::8]
    half = len(lines) // 2
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("".join(lines[:half]), encoding="utf-8")
    with gzip.open(tmp_path / "d" / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        for line in lines[half:]:
            f.write(json.dumps({"text": line, "id": 1}) + "\n")
    (tmp_path / "d" / "ignored.bin").write_bytes(b"\xff")
    from_dir = Tokenizer.train([tmp_path / "d"], vocab_size=600)
    texts = ["".join(lines[:half]), *lines[half:]]  # what the files hold: one .txt (< 1 MB), jsonl lines
    from_strings = Tokenizer.train(texts, vocab_size=600)
    from_generator = Tokenizer.train((t for t in texts), vocab_size=600)
    from_str_paths = Tokenizer.train(
        [str(tmp_path / "d" / "a.txt"), str(tmp_path / "d" / "b.jsonl.gz")], vocab_size=600
    )
    assert from_dir.fingerprint == from_strings.fingerprint == from_generator.fingerprint
    assert from_str_paths.fingerprint == from_dir.fingerprint


def test_train_input_errors(tmp_path):
    with pytest.raises(TextInputError, match="nope.txt: no such file"):
        Tokenizer.train(tmp_path / "nope.txt", vocab_size=500)
    with pytest.raises(TextInputError, match="nope.jsonl: no such file"):  # a file name, not a text
        Tokenizer.train(["nope.jsonl", "x.txt"], vocab_size=500)
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(TextInputError, match=r'bad.jsonl:2: expected an object with a string "text" field'):
        Tokenizer.train(tmp_path / "bad.jsonl", vocab_size=500)
    with pytest.raises(TokenizerError, match="vocab_size=100 is too small"):
        Tokenizer.train(["abc"], vocab_size=100)
    with pytest.raises(TokenizerError, match="unknown tokenizer kind 'wordpiece'"):
        Tokenizer.train(["abc"], vocab_size=500, kind="wordpiece")
    with pytest.raises(TokenizerError, match="unknown pretokenizer 'gpt5'"):
        Tokenizer.train(["abc"], vocab_size=500, pretokenizer="gpt5")


def test_load_refuses_tokenizers_gptkit_cannot_run(tmp_path):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models

    (tmp_path / "wp").mkdir()
    HFTokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]")).save(str(tmp_path / "wp/tokenizer.json"))
    with pytest.raises(TokenizerError, match=r"wp/tokenizer.json: model type 'WordPiece' is not BPE"):
        Tokenizer.load(tmp_path / "wp")
    (tmp_path / "chars").mkdir()  # a BPE over characters, not bytes: "中" is not a byte-level symbol
    HFTokenizer(models.BPE({"a": 0, "中": 1, EOT: 2}, [])).save(str(tmp_path / "chars/tokenizer.json"))
    with pytest.raises(TokenizerError, match="token '中' .* is not made of byte-level characters"):
        Tokenizer.load(tmp_path / "chars")
    (tmp_path / "noeot").mkdir()
    HFTokenizer(models.BPE({"a": 0, "b": 1}, [])).save(str(tmp_path / "noeot/tokenizer.json"))
    with pytest.raises(TokenizerError, match=r"noeot/tokenizer.json: no <\|endoftext\|> token"):
        Tokenizer.load(tmp_path / "noeot")
