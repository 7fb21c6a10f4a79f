"""BERT-style WordPiece vocabularies (`vocab.txt`), as the GPT2-Chinese checkpoints (uer/gpt2-chinese-*) use.

The pipeline is what transformers' `BertTokenizerFast` builds from vocab.txt (+ tokenizer_config.json),
run by HF `tokenizers`: BERT's normalizer (clean text, a space around every CJK ideograph, lowercasing
unless do_lower_case is false), BERT's pre-tokenizer (whitespace and punctuation), WordPiece with "##"
continuations and [UNK] for what the vocabulary cannot spell. So `encode(text)` equals
`BertTokenizerFast(...)(text, add_special_tokens=False).input_ids`. As for every gptkit tokenizer, special
tokens enter only by id: "[SEP]" inside text is ordinary text.

Conventions: [SEP] ends a text and separates documents (`eot_id`, the default EOS of generation), [CLS]
starts a prompt (`bos_id`), as GPT2-Chinese trains on "[CLS] text [SEP]".

Unlike byte-level BPE, encoding loses information (case, spacing, unknown characters), so
`decode(encode(s)) == s` does not hold. decode: HF's `decode(ids, clean_up_tokenization_spaces=...)` with the
setting of tokenizer_config.json (absent: False, transformers 5's default; True also joins " ' " and
contractions: "don ' t" -> "don't"; both have no space before . , ! ?), and then no space next to a CJK
character: HF writes "这 是 中 文 。" (BERT's
normalizer put those spaces there, they are not in the text, and clean_up_tokenization_spaces does not touch
them); gptkit writes "这是中文。". Spaces between other words stay ("hello world").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from gptkit.tokenizer.core import Tokenizer, TokenizerError, _bad_text_error, _read_json, _write_json
from gptkit.tokenizer.stream import TextStreamDecoder

VOCAB_FILE = "vocab.txt"
BERT_SPECIALS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                 "mask_token": "[MASK]"}  # fmt: skip
# CJK ideographs (the ranges BERT's normalizer isolates), CJK punctuation, full-width forms.
_CJK = (
    "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0002a6df\U0002a700-\U0002ceaf\U0002f800-\U0002fa1f"
)
# transformers' clean_up_tokenization (decode with clean_up_tokenization_spaces=True), in its order.
_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
             (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))  # fmt: skip
_SPACE_BY_CJK = re.compile(f"(?<=[{_CJK}]) | (?=[{_CJK}])")


class WordPieceTokenizer(Tokenizer):
    kind = "wordpiece"

    def __init__(self, vocab: list[str], settings: dict[str, Any], source: str) -> None:
        """`vocab`: the tokens in id order (vocab.txt's lines); `settings`: BERT tokenizer settings
        (do_lower_case, tokenize_chinese_chars, strip_accents, clean_up_tokenization_spaces, the special
        token names)."""
        self._vocab = list(vocab)
        self._settings = settings = _bert_settings(settings, source)
        index = {token: i for i, token in enumerate(self._vocab)}  # a repeated line: the last id, as HF reads it
        specials = {}
        for key in BERT_SPECIALS:
            name = settings[key]
            if name not in index:
                raise TokenizerError(f"{source}: the vocabulary has no {key} {name!r}")
            specials[name] = index[name]
        self.eot_token = settings["sep_token"]
        model = models.WordPiece(index, unk_token=settings["unk_token"], max_input_chars_per_word=100)
        hf = HFTokenizer(model)
        hf.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=settings["tokenize_chinese_chars"],
            strip_accents=settings["strip_accents"],
            lowercase=settings["do_lower_case"],
        )
        hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        hf.decoder = decoders.WordPiece(prefix="##")  # as BertTokenizerFast: its per-token clean-up on
        hf.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in specials])
        hf.encode_special_tokens = True  # special-token strings inside text are ordinary text
        hf.no_truncation()
        hf.no_padding()
        self._hf = hf
        token_bytes = [t.removeprefix("##").encode("utf-8") if t not in specials else t.encode("utf-8") for t in vocab]
        super().__init__(token_bytes, specials)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dir(cls, path: Path) -> WordPieceTokenizer:
        """vocab.txt, with tokenizer_config.json's settings when present (BertTokenizer's defaults otherwise)."""
        vocab_path = path / VOCAB_FILE
        try:
            lines = vocab_path.read_text(encoding="utf-8").split("\n")
        except OSError as e:
            raise TokenizerError(f"{vocab_path}: cannot be read ({e.strerror})") from None
        except UnicodeDecodeError as e:
            raise TokenizerError(f"{vocab_path}: not UTF-8 ({e})") from None
        if lines and lines[-1] == "":
            lines.pop()  # the newline that ends the last line
        vocab = [line.rstrip("\r") for line in lines]
        if not vocab:
            raise TokenizerError(f"{vocab_path}: empty vocabulary")
        config_path = path / "tokenizer_config.json"
        config = _read_json(config_path) if config_path.is_file() else {}
        if not isinstance(config, dict):
            raise TokenizerError(f"{config_path}: expected a JSON object")
        return cls(vocab, config, source=str(vocab_path))

    # ---- API ----------------------------------------------------------------------------------
    @property
    def bos_id(self) -> int:
        """[CLS]: GPT2-Chinese trains on "[CLS] text [SEP]", so a prompt starts with it."""
        return self.special_tokens[self._settings["cls_token"]]

    def encode(self, text: str) -> list[int]:
        try:
            return self._hf.encode(text, add_special_tokens=False).ids
        except TypeError:
            raise _bad_text_error(text) from None

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not isinstance(texts, list):
            texts = list(texts)
        try:
            return [e.ids for e in self._hf.encode_batch_fast(texts, add_special_tokens=False)]
        except TypeError:
            bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
            raise _bad_text_error(texts[bad] if bad is not None else None, f"texts[{bad}]: ") from None

    def decode(self, ids: Iterable[int]) -> str:
        """HF's decode (special tokens kept, clean_up_tokenization_spaces as configured), then no space next
        to a CJK character (see the module docstring)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        ids = ids if isinstance(ids, list) else list(ids)
        self.decode_bytes(ids)  # range check, with gptkit's error
        text = self._hf.decode(ids, skip_special_tokens=False)
        if self._settings["clean_up_tokenization_spaces"]:
            for dirty, clean in _CLEAN_UP:
                text = text.replace(dirty, clean)
        return _SPACE_BY_CJK.sub("", text)

    def stream_decoder(self) -> TextStreamDecoder:
        return TextStreamDecoder(self.decode)

    @property
    def backend(self) -> HFTokenizer:
        return self._hf

    def _canonical(self) -> dict[str, Any]:
        return {"kind": "wordpiece", "vocab": self._vocab, "settings": self._settings}

    def _write_files(self, path: Path) -> dict[str, Any]:
        from gptkit.tokenizer.core import HF_FILES

        for name in HF_FILES:  # a BPE saved here before would be found first by HF and by gptkit
            (path / name).unlink(missing_ok=True)
        (path / VOCAB_FILE).write_text("".join(t + "\n" for t in self._vocab), encoding="utf-8")
        _write_json(path / "tokenizer_config.json", {"tokenizer_class": "BertTokenizer", **self._settings})
        return {}


def _bert_settings(config: dict[str, Any], source: str) -> dict[str, Any]:
    """BertTokenizer's settings from a tokenizer_config.json (its defaults for what is absent)."""
    out = {
        "do_lower_case": config.get("do_lower_case", True),
        "tokenize_chinese_chars": config.get("tokenize_chinese_chars", True),
        "strip_accents": config.get("strip_accents"),
        # absent: False, as transformers 5 decodes (BertTokenizer in transformers 4 defaulted to True)
        "clean_up_tokenization_spaces": config.get("clean_up_tokenization_spaces", False),
    }
    for key in ("do_lower_case", "tokenize_chinese_chars", "clean_up_tokenization_spaces"):
        if not isinstance(out[key], bool):
            raise TokenizerError(f"{source}: {key} must be true or false, got {json.dumps(out[key])}")
    if out["strip_accents"] is not None and not isinstance(out["strip_accents"], bool):
        raise TokenizerError(f"{source}: strip_accents must be true, false or null")
    for key, default in BERT_SPECIALS.items():
        name = config.get(key, default)
        if isinstance(name, dict):  # transformers may save an AddedToken as {"content": ...}
            name = name.get("content")
        if not isinstance(name, str) or not name:
            raise TokenizerError(f"{source}: {key} must be a token string, got {json.dumps(name)}")
        out[key] = name
    return out
