"""BERT-style WordPiece vocabularies (GPT2-Chinese): against transformers' BertTokenizerFast and
GPT2LMHeadModel.generate on a tiny model built here (nothing is downloaded)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from gptkit.cli import main
from gptkit.corpora import CorpusError, zh_reviews
from gptkit.generation import Generator, generate
from gptkit.generation.sampling import uniform
from gptkit.tokenizer import Tokenizer, TokenizerError, WordPieceTokenizer

transformers = pytest.importorskip("transformers")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ENGLISH = ["hello", "world", "gp", "##t", "don", "'", "t", "s", "a", ".", ",", "!", "?", "##s"]


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    try:
        return zh_reviews().train[:3000]
    except CorpusError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory, reviews):
    """vocab.txt: the specials, the 300 most frequent review characters, a few English pieces."""
    chars = [c for c, _ in Counter("".join(reviews)).most_common(320) if not c.isspace() and c not in ENGLISH]
    directory = tmp_path_factory.mktemp("wordpiece")
    (directory / "vocab.txt").write_text("".join(t + "\n" for t in [*SPECIALS, *chars[:300], *ENGLISH]), "utf-8")
    return directory


def test_encode_matches_bert_tokenizer_fast(vocab_dir, reviews):
    tok = Tokenizer.load(vocab_dir)
    bert = transformers.BertTokenizerFast.from_pretrained(vocab_dir)
    assert isinstance(tok, WordPieceTokenizer) and tok.vocab_size == len(bert)
    assert (tok.eot_id, tok.bos_id) == (bert.sep_token_id, bert.cls_token_id)
    texts = [*reviews[-200:], "这个很好，Hello World! 我爱GPT。", "don't   a's\tb.", "ＡＢ１２　全角", "😀 unknown"]
    for text in texts:
        assert tok.encode(text) == bert(text, add_special_tokens=False)["input_ids"], text
    assert tok.encode_batch(texts[:50]) == [tok.encode(t) for t in texts[:50]]
    # Special tokens enter only by id: "[SEP]" in text is ordinary text (HF would match it).
    assert tok.eot_id not in tok.encode("[SEP]")


def test_decode_and_its_spaces(vocab_dir, reviews):
    tok = Tokenizer.load(vocab_dir)
    bert = transformers.BertTokenizerFast.from_pretrained(vocab_dir)
    ids = tok.encode("这个很好，Hello World! 我爱GPT。")
    # HF puts a space between all words, CJK characters included; gptkit none next to a CJK character.
    assert bert.decode(ids) == "这 个 很 好 ， hello world! 我 爱 gpt 。"
    assert tok.decode(ids) == "这个很好，hello world!我爱gpt。"
    known = set(tok.backend.get_vocab())
    plain = [t.strip() for t in reviews[-300:] if all(c in known for c in t.strip()) and t.strip()]
    assert len(plain) > 5
    for text in plain:  # Chinese text of known characters comes back as it was
        assert tok.decode(tok.encode(text)) == text
    english = tok.encode("don't hello , a's")
    assert tok.decode(english) == bert.decode(english, clean_up_tokenization_spaces=False) == "don ' t hello, a ' s"
    (vocab_dir / "tokenizer_config.json").write_text('{"clean_up_tokenization_spaces": true}')
    try:
        cleaned = Tokenizer.load(vocab_dir)
        assert cleaned.decode(english) == bert.decode(english, clean_up_tokenization_spaces=True) == "don't hello, a's"
        assert cleaned.fingerprint != tok.fingerprint
    finally:
        (vocab_dir / "tokenizer_config.json").unlink()


def test_stream_decode_equals_decode(vocab_dir):
    tok = Tokenizer.load(vocab_dir)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        ids = torch.randint(0, tok.vocab_size, (30,), generator=gen).tolist()
        ids[5:8] = tok.encode("don't")
        decoder = tok.stream_decoder()
        assert "".join(decoder.push(i) for i in ids) + decoder.flush() == tok.decode(ids)


def test_save_load_and_errors(vocab_dir, tmp_path):
    tok = Tokenizer.load(vocab_dir)
    tok.save(tmp_path / "saved")
    again = Tokenizer.load(tmp_path / "saved")
    assert again.fingerprint == tok.fingerprint and again.kind == "wordpiece"
    bert = transformers.BertTokenizerFast.from_pretrained(tmp_path / "saved")
    assert bert("这个很好", add_special_tokens=False)["input_ids"] == tok.encode("这个很好")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "vocab.txt").write_text("a\nb\n")
    with pytest.raises(TokenizerError, match=r"vocab.txt: the vocabulary has no unk_token '\[UNK\]'"):
        Tokenizer.load(bad)


@pytest.fixture(scope="module")
def hf_model_dir(vocab_dir, tmp_path_factory):
    """A tiny random GPT2LMHeadModel over the vocabulary, saved as GPT2-Chinese is: weights + vocab.txt."""
    tok = Tokenizer.load(vocab_dir)
    bert = transformers.BertTokenizerFast.from_pretrained(vocab_dir)
    config = transformers.GPT2Config(
        vocab_size=tok.vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=4,
        bos_token_id=bert.cls_token_id, eos_token_id=bert.sep_token_id, pad_token_id=bert.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # peaked distributions, so greedy and sampling differ
    directory = tmp_path_factory.mktemp("hf_gpt2_chinese")
    model.save_pretrained(directory)
    bert.save_pretrained(directory)
    (directory / "vocab.txt").write_text((vocab_dir / "vocab.txt").read_text("utf-8"), "utf-8")
    return directory, model, bert


class _InverseCdf:
    """An HF logits processor that makes `do_sample` draw as gptkit does: the token where HF's float64 CDF
    first exceeds gptkit's uniform for (seed, step, row 0); every other token gets -inf."""

    def __init__(self, seed: int) -> None:
        self.seed, self.step = seed, 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        cdf = torch.softmax(scores.double(), dim=-1).cumsum(dim=-1)[0]
        u = uniform(self.seed, self.step, torch.zeros(1, dtype=torch.long), 1).double().item()
        token = int(torch.searchsorted(cdf, torch.tensor([u * cdf[-1].item()], dtype=torch.double), right=True))
        self.step += 1
        out = torch.full_like(scores, float("-inf"))
        out[0, token] = 0.0
        return out


@pytest.mark.parametrize("mode", ["greedy", "sample"])
def test_import_hf_generates_as_transformers(hf_model_dir, tmp_path, mode):
    directory, hf_model, bert = hf_model_dir
    assert main(["import-hf", str(directory), str(tmp_path / "ckpt")]) == 0
    generator = Generator.load(tmp_path / "ckpt")
    assert isinstance(generator.tokenizer, WordPieceTokenizer)
    prompt = "这个很好，"
    ids = generator.encode_prompt(prompt)
    assert ids == [bert.cls_token_id, *bert(prompt, add_special_tokens=False)["input_ids"]]
    options = {"max_new_tokens": 24, "eos_token_id": bert.sep_token_id}
    if mode == "sample":
        options.update(strategy="sample", seed=1234)
        hf_options = {"do_sample": True, "top_k": 0, "logits_processor": [_InverseCdf(1234)]}
    else:
        hf_options = {"do_sample": False}
    ours = generate(generator.model, [ids], **options)[0]
    with torch.no_grad():
        out = hf_model.generate(torch.tensor([ids]), max_new_tokens=24, **hf_options)
    theirs = out[0, len(ids) :].tolist()
    assert ours == theirs and len(set(ours)) > 3
    text = generator.complete(prompt, **{k: v for k, v in options.items() if k != "eos_token_id"})
    expected = theirs[:-1] if theirs[-1] == bert.sep_token_id else theirs
    assert text == generator.tokenizer.decode(expected)
