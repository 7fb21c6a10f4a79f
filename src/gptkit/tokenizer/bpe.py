"""Byte-level BPE tokenizers (GPT-2 style), run by HF `tokenizers`.

The backend runs with `encode_special_tokens = True` (special-token strings inside text are ordinary text).
The saved tokenizer_config.json sets `split_special_tokens: false`, as HF chat tokenizers do: transformers
then matches the control tokens that its `apply_chat_template` writes (it renders the chat to text and
encodes that), and so gives gptkit's chat ids; `apply_chat_template(msgs, sanitize_control_tokens=True)`
also keeps special strings inside messages as text, as gptkit does, and `encode(text,
split_special_tokens=True)` equals gptkit's `encode(text)` on any text (tests/test_tokenizer_hf.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from gptkit.files import atomic_write_bytes
from gptkit.text_inputs import TextInputs
from gptkit.tokenizer.core import (
    _SURROGATE,
    EOT,
    SPECIAL_TOKENS,
    Tokenizer,
    TokenizerError,
    _bad_text_error,
    _read_json,
    _write_json,
)
from gptkit.tokenizer.pretokenize import DEFAULT_PRETOKENIZER, PRETOKENIZERS, byte_level_alphabet


class BPETokenizer(Tokenizer):
    """Byte-level BPE run by HF `tokenizers`: every string encodes, nothing is ever unknown."""

    kind = "bpe"

    def __init__(self, hf: HFTokenizer, definition: dict[str, Any], source: str) -> None:
        """`hf`: the backend; `definition`: its tokenizer.json as a dict (the file's text when loaded, so
        the fingerprint does not depend on how a `tokenizers` version re-serialises it)."""
        hf.no_truncation()
        hf.no_padding()
        hf.encode_special_tokens = True  # special-token strings inside text are ordinary text
        self._hf = hf
        self._definition = definition
        self._source = source
        model = definition.get("model") or {}
        if model.get("type") != "BPE":
            raise TokenizerError(f"{source}: model type {model.get('type')!r} is not BPE")
        vocab: dict[str, int] = hf.get_vocab(with_added_tokens=True)
        size = hf.get_vocab_size(with_added_tokens=True)
        tokens: list[str | None] = [None] * size
        for token, i in vocab.items():
            if i >= size:
                raise TokenizerError(f"{source}: token {token!r} has id {i} beyond the vocabulary size {size}")
            tokens[i] = token
        if None in tokens:
            raise TokenizerError(f"{source}: the vocabulary has no token with id {tokens.index(None)}")
        hf_added = hf.get_added_tokens_decoder()
        added = {i: t.content for i, t in hf_added.items()}
        alphabet = byte_level_alphabet()
        token_bytes = []
        for i, token in enumerate(tokens):
            assert token is not None
            if i in added:
                token_bytes.append(added[i].encode("utf-8"))
            elif all(c in alphabet for c in token):
                token_bytes.append(bytes(alphabet[c] for c in token))
            else:
                raise TokenizerError(
                    f"{source}: token {token!r} (id {i}) is not made of byte-level characters; gptkit reads "
                    "byte-level BPE tokenizers (GPT-2 style) only"
                )
        self._tokens = tokens
        # gptkit's own special tokens, then any other added token flagged special (e.g. task tokens that
        # `gptkit.tokenizer.extend.add_special_tokens` appended), in id order.
        specials = {name: vocab[name] for name in SPECIAL_TOKENS if name in vocab}
        for i in sorted(added):
            if hf_added[i].special and added[i] not in specials:
                specials[added[i]] = i
        if EOT not in specials:
            raise TokenizerError(f"{source}: no {EOT} token in the vocabulary (gptkit needs it to separate documents)")
        super().__init__(token_bytes, specials)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def train_bpe(
        cls,
        inputs: TextInputs,
        vocab_size: int,
        *,
        pattern: str = PRETOKENIZERS[DEFAULT_PRETOKENIZER],
        min_frequency: int = 2,
        progress: bool = False,
    ) -> BPETokenizer:
        """Train with pre-tokenization regex `pattern` (`gptkit.tokenizer.training.train_bpe`)."""
        from gptkit.tokenizer.training import train_bpe

        return train_bpe(inputs, vocab_size, pattern=pattern, min_frequency=min_frequency, progress=progress)

    @classmethod
    def from_hf_dir(cls, path: Path) -> BPETokenizer:
        """tokenizer.json if present (the whole pipeline), else GPT-2's vocab.json + merges.txt."""
        tj = path / "tokenizer.json"
        if tj.is_file():
            try:
                text = tj.read_text(encoding="utf-8")
                hf = HFTokenizer.from_str(text)
            except OSError as e:
                raise TokenizerError(f"{tj}: cannot be read ({e.strerror})") from None
            except Exception as e:  # tokenizers raises plain Exception for malformed files
                raise TokenizerError(f"{tj}: not a valid tokenizers file ({e})") from None
            return cls(hf, json.loads(text), source=str(tj))
        vocab, merges = path / "vocab.json", path / "merges.txt"
        if not merges.is_file():
            raise TokenizerError(f"{merges}: not found (a GPT-2 tokenizer needs vocab.json and merges.txt)")
        config_path = path / "tokenizer_config.json"
        config = _read_json(config_path) if config_path.is_file() else {}
        try:
            model = models.BPE.from_file(str(vocab), str(merges))
        except Exception as e:  # tokenizers raises plain Exception for malformed files
            raise TokenizerError(f"{path}: vocab.json / merges.txt cannot be read ({e})") from None
        # What GPT2TokenizerFast builds from these two files.
        hf = HFTokenizer(model)
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=bool(config.get("add_prefix_space", False)))
        hf.decoder = decoders.ByteLevel()
        if EOT in hf.get_vocab():
            hf.add_special_tokens([AddedToken(EOT, special=True, normalized=False)])
        return cls(hf, json.loads(hf.to_str()), source=str(vocab))

    # ---- API ----------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        try:
            return self._hf.encode(text, add_special_tokens=False).ids
        except TypeError:
            raise _bad_text_error(text) from None

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """One list of ids per text, encoded in parallel on all cores by `tokenizers` (Rust threads)."""
        if not isinstance(texts, list):
            texts = list(texts)
        try:
            encodings = self._hf.encode_batch_fast(texts, add_special_tokens=False)
        except TypeError:
            bad = next((i for i, t in enumerate(texts) if not isinstance(t, str) or _SURROGATE.search(t)), None)
            raise _bad_text_error(texts[bad] if bad is not None else None, f"texts[{bad}]: ") from None
        return [e.ids for e in encodings]

    @property
    def backend(self) -> HFTokenizer:
        """The `tokenizers.Tokenizer` (for benchmarks and interop; do not change its settings)."""
        return self._hf

    def _canonical(self) -> dict[str, Any]:
        d = self._definition
        merges = [m.split(" ", 1) if isinstance(m, str) else list(m) for m in d["model"].get("merges", [])]
        return {
            "kind": "bpe",
            "tokens": self._tokens,
            "merges": merges,
            "normalizer": d.get("normalizer"),
            "pre_tokenizer": d.get("pre_tokenizer"),
            "special_tokens": self.special_tokens,
        }

    def _write_files(self, path: Path) -> dict[str, Any]:
        canonical = self._canonical()
        _write_json(path / "tokenizer.json", self._definition)
        _write_json(path / "vocab.json", {t: i for i, t in enumerate(self._tokens)}, indent=None)
        merges = "".join(f"{a} {b}\n" for a, b in canonical["merges"])
        atomic_write_bytes(path / "merges.txt", ("#version: 0.2\n" + merges).encode("utf-8"))
        _write_json(path / "tokenizer_config.json", self.hf_tokenizer_config())
        return {}

    def hf_tokenizer_config(self) -> dict[str, Any]:
        """tokenizer_config.json for transformers: load tokenizer.json as it is; the chat template of a chat
        model's tokenizer (also written as chat_template.jinja)."""
        extra = [t for t in self.special_tokens if t != EOT]
        chat = {"chat_template": self.chat_template} if self.chat_template is not None else {}
        return {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "split_special_tokens": False,
            "add_prefix_space": False,
            "clean_up_tokenization_spaces": False,
            "bos_token": EOT,
            "eos_token": EOT,
            "extra_special_tokens": extra,
            **chat,
        }
