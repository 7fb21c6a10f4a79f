"""The text layer (Generator: complete, stream, stop strings) and the `gptkit generate` CLI."""

from __future__ import annotations

import codecs
import itertools
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit import GPT, GenerationError, Generator, ModelConfig, Tokenizer, save_model
from gptkit.cli import main as cli_main
from gptkit.generation.engine import generate
from gptkit.generation.text import StopStrings
from gptkit.generation.utf8 import Utf8Table
from tests.serve_helpers import position_model

TEXTS = [
    "今天天气很好，我们去公园散步吧。",
    "The quick brown fox jumps over the lazy dog.",
    "中文和English混在一起也可以。",
    "To be, or not to be, that is the question.",
] * 20


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train(TEXTS, vocab_size=400)


def random_model(tok) -> GPT:
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32).replace()
    torch.manual_seed(0)
    model = GPT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def scripted_model(tok, script: list[int], prompt_len: int) -> GPT:
    """A GPT that greedily emits `script` after any prompt of prompt_len tokens (logits depend on position only)."""
    return position_model(tok, 64, {prompt_len - 1 + i: t for i, t in enumerate(script)})


def byte_ids(tok) -> dict[int, int]:
    """byte value -> the id of the single-byte token (byte-level BPE has all 256)."""
    ids = {}
    for i in range(tok.vocab_size):
        b = tok.token_bytes(i)
        if len(b) == 1:
            ids.setdefault(b[0], i)
    assert len(ids) == 256
    return ids


def test_complete_is_the_engine_plus_decode(tok):
    gen = Generator(random_model(tok), tok)
    prompt = "今天天气"
    ids = [tok.eot_id, *tok.encode(prompt)]
    table = Utf8Table.for_tokenizer(tok)  # Generator keeps the text valid UTF-8 by default
    new = generate(gen.model, [ids], max_new_tokens=20, eos_token_id=tok.eot_id, valid_utf8=table)[0]
    new = new[:-1] if new and new[-1] == tok.eot_id else new
    # Valid UTF-8 throughout (strict); a character left unfinished at max_new_tokens is dropped.
    expected = codecs.getincrementaldecoder("utf-8")().decode(b"".join(map(tok.token_bytes, new)), final=False)
    assert gen.complete(prompt, max_new_tokens=20) == expected
    assert "".join(gen.stream(prompt, max_new_tokens=20)) == expected


def test_batch_equals_one_by_one(tok):
    gen = Generator(random_model(tok), tok)
    prompts = ["The quick", "中文", "To be, or not to be, that"]
    assert gen.complete_batch(prompts, max_new_tokens=12) == [gen.complete(p, max_new_tokens=12) for p in prompts]
    sampled = gen.complete_batch(prompts, max_new_tokens=12, top_k=20, seed=3, num_return_sequences=2)
    assert len(sampled) == 6
    assert sampled == gen.complete_batch(prompts, max_new_tokens=12, top_k=20, seed=3, num_return_sequences=2)


def test_stream_never_splits_a_character_and_stops_at_eos(tok):
    text = "中文 and 世界"
    ids = byte_ids(tok)
    script = [ids[b] for b in text.encode("utf-8")] + [tok.eot_id] + [ids[ord("x")]] * 3
    gen = Generator(scripted_model(tok, script, prompt_len=2), tok)
    prompt = "a"
    assert len(gen.encode_prompt(prompt)) == 2
    pieces = list(gen.stream(prompt, max_new_tokens=len(script)))
    assert "".join(pieces) == text  # EOS ends it; nothing after
    assert pieces[:2] == ["中", "文"]  # each Han character comes out whole, once its third byte arrives
    assert all("\ufffd" not in p for p in pieces)


@pytest.mark.parametrize(
    "stop, expected",
    [
        (["世界"], "中文 and "),  # spans six single-byte tokens
        (["n", "zzz"], "中文 a"),
        (["文 a"], "中"),  # inside the text, across a character boundary
        (["not there"], "中文 and 世界"),
    ],
)
def test_stop_strings_spanning_tokens(tok, stop, expected):
    text = "中文 and 世界"
    ids = byte_ids(tok)
    script = [ids[b] for b in text.encode("utf-8")]
    gen = Generator(scripted_model(tok, script, prompt_len=2), tok)
    n = len(script)
    assert gen.complete("a", max_new_tokens=n, stop=stop) == expected
    assert "".join(gen.stream("a", max_new_tokens=n, stop=stop)) == expected
    beams = gen.complete("a", max_new_tokens=n, stop=stop, num_beams=2)
    assert beams == expected


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="ab\n中", max_size=30),
    stops=st.lists(st.text(alphabet="ab\n中", min_size=1, max_size=4), min_size=1, max_size=3),
    cuts=st.lists(st.integers(0, 30), max_size=8),
)
def test_stop_strings_match_a_plain_search(text, stops, cuts):
    checker = StopStrings(stops)
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    out, stopped = "", False
    for a, b in itertools.pairwise(bounds):
        piece, stopped = checker.push(text[a:b])
        out += piece
        if stopped:
            break
    if not stopped:
        out += checker.flush()
    # Reference: feed one character at a time and stop at the first stop string that ends there.
    expected = text
    for end in range(1, len(text) + 1):
        starts = [end - len(s) for s in stops if text[:end].endswith(s)]
        if starts:
            expected = text[: min(starts)]
            break
    assert out == expected


def test_mismatched_tokenizer_is_an_error(tok):
    model = GPT(ModelConfig(vocab_size=tok.vocab_size + 1, block_size=32, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(GenerationError, match=f"tokenizer has {tok.vocab_size} tokens"):
        Generator(model, tok)


@pytest.fixture(scope="module")
def ckpt(tok, tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    save_model(random_model(tok), d)
    tok.save(d)
    return d


def test_generator_load_and_cli(ckpt, capsys, tmp_path):
    gen = Generator.load(ckpt)
    expected = gen.complete("The quick", max_new_tokens=10, stop=["\n\n"])
    assert cli_main(["generate", "--model", str(ckpt), "--prompt", "The quick", "--max-new-tokens", "10",
                     "--stop", r"\n\n", "--device", "cpu"]) == 0  # fmt: skip
    assert capsys.readouterr().out == "The quick" + expected + "\n"
    assert cli_main(["generate", "--model", str(ckpt), "--prompt", "The quick", "--max-new-tokens", "10",
                     "--stream", "--device", "cpu"]) == 0  # fmt: skip
    assert capsys.readouterr().out == "The quick" + gen.complete("The quick", max_new_tokens=10) + "\n"
    assert cli_main(["generate", "--model", str(ckpt), "--prompt", "中", "--max-new-tokens", "10", "--seed", "0",
                     "--temperature", "3", "--allow-invalid-utf8", "--device", "cpu"]) == 0  # fmt: skip
    free = gen.complete("中", max_new_tokens=10, seed=0, temperature=3.0, valid_utf8=False)
    assert capsys.readouterr().out == "中" + free + "\n"

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "中文"}\n"The quick"\n', encoding="utf-8")
    args = ["generate", "--model", str(ckpt), "--prompt-file", str(prompts), "--max-new-tokens", "8"]
    assert cli_main([*args, "--top-k", "5", "--seed", "1", "--num-return-sequences", "2", "--device", "cpu"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["prompt"], r["sequence"]) for r in lines] == [
        ("中文", 0),
        ("中文", 1),
        ("The quick", 0),
        ("The quick", 1),
    ]
    assert [r["completion"] for r in lines] == gen.complete_batch(
        ["中文", "The quick"], max_new_tokens=8, top_k=5, seed=1, num_return_sequences=2
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--top-p", "1.5"], "top_p"),
        (["--max-new-tokens", "100"], "context of 64"),
        (["--strategy", "greedy", "--temperature", "0.5"], "temperature"),
    ],
)
def test_cli_errors_exit_2_with_the_setting(ckpt, capsys, extra, message):
    assert cli_main(["generate", "--model", str(ckpt), "--prompt", "hi", "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_temperature_1_samples(ckpt, capsys):
    """Issue 10 item 6: an explicit --temperature 1 samples (it was taken for 'not set' and decoded greedily)."""
    base = ["generate", "--model", str(ckpt), "--prompt", "中", "--max-new-tokens", "12", "--device", "cpu"]
    outs = []
    for seed in ("0", "1", "2"):
        assert cli_main([*base, "--temperature", "1", "--seed", seed]) == 0
        outs.append(capsys.readouterr().out)
    assert len(set(outs)) == 3, outs
    gen = Generator.load(ckpt)
    # The same text as explicit sampling at temperature 1 with that seed, and not the greedy one.
    assert outs[0] == "中" + gen.complete("中", max_new_tokens=12, strategy="sample", seed=0) + "\n"
    assert cli_main(base) == 0
    assert capsys.readouterr().out == "中" + gen.complete("中", max_new_tokens=12, strategy="greedy") + "\n"


def test_api_temperature_1_samples(tok):
    gen = Generator(random_model(tok), tok)
    by_seed = [gen.complete("中", max_new_tokens=12, temperature=1.0, seed=s) for s in range(3)]
    assert len(set(by_seed)) == 3
    assert by_seed[1] == gen.complete("中", max_new_tokens=12, strategy="sample", seed=1)
    ids = [[tok.eot_id, *tok.encode("中")]]
    tokens = [generate(gen.model, ids, max_new_tokens=12, temperature=1.0, seed=s) for s in range(3)]
    assert tokens[0] != tokens[1] != tokens[2]
    assert generate(gen.model, ids, max_new_tokens=12) == generate(gen.model, ids, max_new_tokens=12,
                                                                     strategy="greedy")  # fmt: skip


def test_cli_default_max_new_tokens_fits_the_context(ckpt, capsys):
    """Issue 10 item 7: the default (128) on a model of context 64 is capped, said on stderr; an explicit
    value that does not fit stays an error."""
    gen = Generator.load(ckpt)
    n_prompt = len(gen.encode_prompt("The quick"))
    room = 64 - n_prompt
    assert cli_main(["generate", "--model", str(ckpt), "--prompt", "The quick", "--no-eos", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert f"max_new_tokens {room}" in captured.err and "context of 64" in captured.err
    expected = gen.complete("The quick", max_new_tokens=room, eos_token_id=None)
    assert captured.out == "The quick" + expected + "\n"
    new_ids = generate(gen.model, [gen.encode_prompt("The quick")], max_new_tokens=room,
                       valid_utf8=Utf8Table.for_tokenizer(tok := gen.tokenizer))[0]  # fmt: skip
    assert len(new_ids) == room and tok is gen.tokenizer
    # The API's default is capped the same way (silently).
    assert gen.complete("The quick", eos_token_id=None) == expected
    assert cli_main(["generate", "--model", str(ckpt), "--prompt", "The quick", "--max-new-tokens", "128",
                     "--device", "cpu"]) == 2  # fmt: skip
    assert "context of 64" in capsys.readouterr().err


def test_cli_presence_penalty_reaches_the_engine(ckpt, capsys):
    """A flag made from a settings field (no list of flags in the CLI) gives what the API gives."""
    gen = Generator.load(ckpt)
    args = ["generate", "--model", str(ckpt), "--prompt", "The", "--max-new-tokens", "12", "--device", "cpu"]
    assert cli_main([*args, "--presence-penalty", "2", "--frequency-penalty", "1.5"]) == 0
    expected = gen.complete("The", max_new_tokens=12, presence_penalty=2.0, frequency_penalty=1.5)
    assert capsys.readouterr().out == "The" + expected + "\n"
    assert expected != gen.complete("The", max_new_tokens=12)
