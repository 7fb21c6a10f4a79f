"""The valid-UTF-8 constraint: its tables against Python's UTF-8 decoder (brute force over byte strings), and
generation with it (token level, every strategy, eager and static decoders; Generator text has no U+FFFD)."""

from __future__ import annotations

import codecs
import functools
import itertools
import random

import pytest
import torch

from gptkit import GPT, Generator, ModelConfig, Tokenizer
from gptkit.generation.engine import GenerationError, generate
from gptkit.generation.utf8 import EXAMPLE_PENDING, N_STATES, START, Utf8Table
from tests.test_generate_text import scripted_model

# Bytes from every class that the UTF-8 rules tell apart (ASCII, continuation ranges, lead bytes, never-valid).
PROBE = bytes([0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF,
               0xF0, 0xF1, 0xF4, 0xF5, 0xFF])  # fmt: skip
# Every string of up to 3 probe bytes: enough to tell any two decoding states apart.
SUFFIXES = [bytes(s) for n in range(4) for s in itertools.product(PROBE, repeat=n)]
PENDING = {START: b"", **EXAMPLE_PENDING}  # a byte string that leaves each state pending


def valid_prefix(data: bytes) -> bool:
    """Can `data` be continued to valid UTF-8? Python's incremental decoder rejects what is already wrong,
    but holds back a lead byte with a continuation that no character can follow (ED A0: a surrogate), so
    the bytes it holds back are tried with every continuation."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return completable(decoder.getstate()[0])


CONTINUATIONS = bytes([0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF])  # the ends of each continuation range


@functools.cache
def completable(pending: bytes) -> bool:
    if not pending:
        return True
    for n in (1, 2, 3):
        for tail in itertools.product(CONTINUATIONS, repeat=n):
            try:
                (pending + bytes(tail)).decode("utf-8")
            except UnicodeDecodeError:
                continue
            return True
    return False


@functools.cache
def future(data: bytes) -> tuple[bool, ...]:
    """Which probe suffixes keep `data` a valid prefix: two byte strings with the same future are in the
    same decoding state as far as any continuation can tell."""
    return tuple(valid_prefix(data + s) for s in SUFFIXES)


STATE_OF_FUTURE = {future(PENDING[s]): s for s in range(N_STATES)}


def pending_state(data: bytes, errors: str = "strict") -> int:
    """The state after `data` per Python's incremental decoder: the bytes it holds back, by their future."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors)
    decoder.decode(data, final=False)
    return STATE_OF_FUTURE[future(decoder.getstate()[0])]


def random_tokens(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces = [c.encode() for c in "aé中😀"] + [bytes([b]) for b in range(256)]
    tokens = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:  # arbitrary bytes, mostly high ones
            tokens.append(bytes(rng.choice(PROBE) if rng.random() < 0.7 else rng.randrange(256)
                                for _ in range(rng.randint(1, 5))))  # fmt: skip
        else:  # slices of valid text: whole characters, or cut inside one at either end
            text = b"".join(rng.choice(pieces[:4]) for _ in range(rng.randint(1, 3)))
            i, j = rng.randint(0, 2), rng.randint(0, 2)
            tokens.append(text[i : len(text) - j] or text)
    return tokens


def test_state_examples_are_distinct_states():
    assert len(STATE_OF_FUTURE) == N_STATES  # each state allows a different set of continuations


@pytest.mark.parametrize("seed", [0, 1])
def test_tables_match_python_decoder(seed):
    tokens = random_tokens(400, seed) + [bytes([b]) for b in range(256)]
    table = Utf8Table(tokens)
    for state, pending in PENDING.items():
        for t, data in enumerate(tokens):
            after = pending + data
            assert bool(table.blocked[state, t]) == (not valid_prefix(after)), (state, data)
            if valid_prefix(after):
                assert int(table.next_state[state, t]) == pending_state(after), (state, data)


def test_prompt_state_is_where_a_replacing_decoder_stands():
    rng = random.Random(3)
    tokens = random_tokens(200, 3)
    table = Utf8Table(tokens)
    for _ in range(500):
        ids = [rng.randrange(len(tokens)) for _ in range(rng.randint(1, 6))]
        data = b"".join(tokens[i] for i in ids)
        assert table.prompt_state(ids) == pending_state(data, errors="replace"), data


def test_char_vocabulary_is_not_constrained_and_a_dead_end_is_an_error():
    assert not Utf8Table([c.encode() for c in "ab中"]).constrains
    table = Utf8Table([b"a", b"\xe4"])  # a lead byte with nothing that could finish it
    assert table.constrains and "cannot be kept valid UTF-8" in table.dead_end()
    model = GPT(ModelConfig(vocab_size=2, block_size=16, n_layer=1, n_head=1, n_embd=8).replace()).eval()
    with pytest.raises(GenerationError, match="valid_utf8"):
        generate(model, [[0]], max_new_tokens=2, valid_utf8=table)


@pytest.fixture(scope="module")
def tok():
    texts = ["今天天气很好，我们去公园散步吧。", "中文和English混在一起也可以。", "😀 emoji 和 é accents"] * 20
    return Tokenizer.train(texts, vocab_size=350)


@pytest.fixture(scope="module")
def model(tok):
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=96, n_layer=2, n_head=2, n_embd=32).replace()
    torch.manual_seed(0)
    m = GPT(cfg)
    with torch.no_grad():  # large random weights: a flat, noisy next-token distribution
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return m.eval()


PROMPTS = ["今天", "中文和", "emoji", "公园散"]


@pytest.mark.parametrize(
    "kw",
    [
        dict(strategy="sample", seed=1, temperature=2.0),
        dict(strategy="sample", seed=2, top_k=50, top_p=0.95),
        dict(strategy="greedy"),
        dict(strategy="beam", num_beams=3, num_return_sequences=2),
        dict(strategy="sample", seed=5, temperature=2.0, static_cache=True),
    ],
    ids=["sample", "filters", "greedy", "beam", "static"],
)
def test_generated_bytes_stay_valid_utf8(tok, model, kw):
    table = Utf8Table.for_tokenizer(tok)
    assert table is Utf8Table.for_tokenizer(tok)  # built once per tokenizer
    prompts = [[tok.eot_id, *tok.encode(p)] for p in PROMPTS]
    free = generate(model, prompts, max_new_tokens=40, **kw)
    held = generate(model, prompts, max_new_tokens=40, valid_utf8=table, **kw)
    n = kw.get("num_return_sequences", 1)
    for i, out in enumerate(held):
        data = b"".join(tok.token_bytes(t) for t in prompts[i // n] + out if t != tok.eot_id)
        assert valid_prefix(data), data
    if kw["strategy"] == "sample" and "top_k" not in kw:  # the unconstrained model does emit invalid bytes
        assert any(not valid_prefix(b"".join(tok.token_bytes(t) for t in out if t != tok.eot_id)) for out in free)


def test_generator_text_has_no_replacement_character(tok, model):
    gen = Generator(model, tok)
    outs = [gen.complete(p, max_new_tokens=40, strategy="sample", seed=s, temperature=2.0)
            for p in PROMPTS for s in range(3)]  # fmt: skip
    assert all("\ufffd" not in o for o in outs) and any(outs)
    streamed = "".join(gen.stream(PROMPTS[0], max_new_tokens=40, strategy="sample", seed=0, temperature=2.0))
    assert streamed == outs[0]
    free = [gen.complete(p, max_new_tokens=40, strategy="sample", seed=s, temperature=2.0, valid_utf8=False)
            for p in PROMPTS for s in range(3)]  # fmt: skip
    assert any("\ufffd" in o for o in free)  # what the constraint prevents


def test_unfinished_character_at_the_end_is_dropped(tok):
    # A scripted model: greedy emits the first two bytes of 中 and then hits max_new_tokens.
    ids = {tok.token_bytes(i)[0]: i for i in range(tok.vocab_size) if len(tok.token_bytes(i)) == 1}
    script = [ids[b] for b in "ab中".encode()[:4]]
    gen = Generator(scripted_model(tok, script, prompt_len=2), tok)  # prompt: <|endoftext|> and "x"
    assert len(gen.encode_prompt("x")) == 2
    assert gen.complete("x", max_new_tokens=len(script)) == "ab"
    assert gen.complete("x", max_new_tokens=len(script), valid_utf8=False) == "ab"
