"""gptkit tokenizers <-> HF: AutoTokenizer reads gptkit's files, gptkit reads HF GPT-2 tokenizer directories."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from tokenizers import ByteLevelBPETokenizer

from gptkit import Tokenizer, load_model
from gptkit.interop.hf import export_hf, import_hf
from gptkit.tokenizer import EOT, SPECIAL_TOKENS
from tests.hf_helpers import tiny_hf_gpt2
from tests.tokenizer_helpers import any_text, mixed_corpus

transformers = pytest.importorskip("transformers")

# Text that exercises the hard parts: Chinese, mixed scripts, digits, emoji, combining marks, whitespace runs.
EXTRA = [
    "用Python写的代码，共12345行。",
    "  naïve café\u0301 😀👩\u200d💻\n\n\n\t x",
    "l'été 'LL",
    "\x00\x1f\u3000\r\n",
]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    return mixed_corpus()


@pytest.fixture(scope="module")
def gptkit_dir(corpus, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gptkit_tok")
    Tokenizer.train(corpus["train"], vocab_size=800).save(path)
    return path


@pytest.fixture(scope="module")
def hf_gpt2_dirs(corpus, tmp_path_factory) -> dict[str, Path]:
    """HF GPT-2 tokenizer directories built locally, <|endoftext|> last as in GPT-2:
    "files": vocab.json + merges.txt + tokenizer_config.json (the layout of the original gpt2 repository);
    "json": what transformers' save_pretrained writes (tokenizer.json + tokenizer_config.json)."""
    root = tmp_path_factory.mktemp("hf_gpt2")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus["train"], vocab_size=700)
    bpe.add_special_tokens([EOT])
    files = root / "files"
    files.mkdir()
    bpe.save_model(str(files))
    (files / "vocab.json").write_text(json.dumps(bpe.get_vocab()), encoding="utf-8")  # with <|endoftext|>
    (files / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}), encoding="utf-8")
    transformers.AutoTokenizer.from_pretrained(files).save_pretrained(root / "json")
    assert not (root / "json" / "vocab.json").exists()
    return {"files": files, "json": root / "json", "reference": bpe}


def _texts(corpus) -> list[str]:
    return corpus["held_out"] + EXTRA


def test_autotokenizer_reads_gptkit_files_with_identical_ids(gptkit_dir, corpus):
    ours = Tokenizer.load(gptkit_dir)
    hf = transformers.AutoTokenizer.from_pretrained(gptkit_dir)
    texts = _texts(corpus)
    hf_ids = [hf.encode(t) for t in texts]
    assert hf_ids == ours.encode_batch(texts)
    assert [hf.decode(ids) for ids in hf_ids] == texts
    # Special strings inside text: ordinary text for gptkit; transformers matches them as control tokens (so
    # that apply_chat_template can write them, see test_chat_template.py) unless told to split them.
    special = f"a{EOT}b <|im_start|>user\nhi<|im_end|>"
    assert hf.encode(special) == [*hf.encode("a"), ours.eot_id, *hf.encode("b <|im_start|>user\nhi<|im_end|>")]
    assert hf.encode(special, split_special_tokens=True) == ours.encode(special)
    assert hf.decode(hf.encode(special)) == special
    assert hf.eos_token_id == hf.bos_token_id == ours.eot_id
    assert hf.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [ours.special_tokens[s] for s in SPECIAL_TOKENS]
    assert len(hf) == ours.vocab_size


@settings(max_examples=150, deadline=None)
@given(any_text)
def test_autotokenizer_agrees_on_any_text(gptkit_dir, text):
    ours, hf = _both(gptkit_dir)
    assert hf.encode(text, split_special_tokens=True) == ours.encode(text)
    if not any(s in text for s in SPECIAL_TOKENS):  # else transformers' default matches them as control tokens
        assert hf.encode(text) == ours.encode(text)


@functools.cache
def _both(path: Path):
    return Tokenizer.load(path), transformers.AutoTokenizer.from_pretrained(path)


def test_gptkit_reads_hf_gpt2_directories_with_identical_ids(hf_gpt2_dirs, corpus):
    texts = _texts(corpus)
    reference = [e.ids for e in hf_gpt2_dirs["reference"].encode_batch(texts)]
    fingerprints = set()
    for layout in ("files", "json"):
        ours = Tokenizer.load(hf_gpt2_dirs[layout])
        hf = transformers.AutoTokenizer.from_pretrained(hf_gpt2_dirs[layout])
        assert ours.encode_batch(texts) == [hf.encode(t) for t in texts] == reference, layout
        assert ours.special_tokens == {EOT: 700} and ours.eot_id == hf.eos_token_id == 700
        assert ours.vocab_size == len(hf) == 701
        assert [ours.decode(ids) for ids in reference] == texts
        fingerprints.add(ours.fingerprint)
    assert len(fingerprints) == 1  # the same tokenizer, whichever files it came from


def test_hf_gpt2_treats_special_strings_in_text_as_specials_unless_told(hf_gpt2_dirs):
    """What HF does with "<|endoftext|>" in text (documented in docs/tokenizer.md): GPT-2's own tokenizer
    config matches it as the special token; gptkit, and AutoTokenizer on gptkit's files, do not."""
    ours = Tokenizer.load(hf_gpt2_dirs["json"])
    hf = transformers.AutoTokenizer.from_pretrained(hf_gpt2_dirs["json"])
    assert hf.encode(f"a{EOT}") == [*hf.encode("a"), 700]
    assert 700 not in ours.encode(f"a{EOT}")
    split = transformers.AutoTokenizer.from_pretrained(hf_gpt2_dirs["json"], split_special_tokens=True)
    assert split.encode(f"a{EOT}") == ours.encode(f"a{EOT}")


def test_import_hf_copies_the_tokenizer_and_it_loads(hf_gpt2_dirs, tmp_path):
    src = tmp_path / "hf"
    tiny_hf_gpt2(vocab_size=701).save_pretrained(src)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(hf_gpt2_dirs["json"] / name, src / name)
    out = import_hf(src, tmp_path / "ckpt")
    tok = Tokenizer.load(out)
    assert tok.vocab_size == load_model(out).config.vocab_size == 701
    assert tok.fingerprint == Tokenizer.load(hf_gpt2_dirs["json"]).fingerprint
    text = "Hello 世界, 12345!"
    assert tok.encode(text) == transformers.AutoTokenizer.from_pretrained(src).encode(text)


def test_export_hf_carries_gptkit_tokenizer_to_autotokenizer(gptkit_dir, corpus, tmp_path):
    from gptkit import GPT, ModelConfig, save_model

    tok = Tokenizer.load(gptkit_dir)
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16).replace()
    save_model(GPT(cfg), tmp_path / "ckpt")
    tok.save(tmp_path / "ckpt")
    export_hf(tmp_path / "ckpt", tmp_path / "hf")
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    texts = _texts(corpus)
    assert [hf.encode(t) for t in texts] == tok.encode_batch(texts)
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_config["eos_token_id"] == hf_config["bos_token_id"] == tok.eot_id
    back = import_hf(tmp_path / "hf", tmp_path / "back")
    assert Tokenizer.load(back).fingerprint == tok.fingerprint
