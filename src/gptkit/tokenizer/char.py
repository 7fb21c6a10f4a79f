"""Character-level tokenizers: one id per character."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gptkit.text_inputs import TextInputs
from gptkit.tokenizer.core import _SURROGATE, HF_FILES, SPECIAL_TOKENS, Tokenizer, TokenizerError, _bad_text_error


class CharTokenizer(Tokenizer):
    """One id per character (nanoGPT's shakespeare_char), characters in code-point order, then specials.

    With `byte_fallback` (what training gives when the vocabulary is smaller than the text's characters), 256
    byte tokens follow the characters, and a character outside the vocabulary encodes as its UTF-8 bytes, so
    every text encodes and decodes back exactly (as SentencePiece's byte fallback). Ids: characters, then the
    bytes 0x00..0xFF, then the special tokens.
    """

    kind = "char"

    def __init__(
        self, chars: Sequence[str], extra_special_tokens: Sequence[str] = (), *, byte_fallback: bool = False
    ) -> None:
        """`extra_special_tokens`: more special tokens after gptkit's three (task tokens added later)."""
        self._chars = list(chars)
        self.byte_fallback = bool(byte_fallback)
        self._extra_specials = list(extra_special_tokens)
        if any(not isinstance(c, str) or len(c) != 1 for c in self._chars) or len(set(self._chars)) != len(chars):
            raise TokenizerError("a char vocabulary must be distinct single characters")
        if any(_SURROGATE.match(c) for c in self._chars):
            raise TokenizerError("a char vocabulary cannot hold lone surrogates")
        self._index = {c: i for i, c in enumerate(self._chars)}
        n = len(self._chars)
        names = [*SPECIAL_TOKENS, *self._extra_specials]
        if len(set(names)) != len(names) or any(not isinstance(t, str) or not t for t in names):
            raise TokenizerError(f"special tokens must be distinct non-empty strings, got {names}")
        byte_tokens = [bytes([b]) for b in range(256)] if self.byte_fallback else []
        self._byte_base = n  # id of byte 0x00 (with byte_fallback)
        specials = {name: n + len(byte_tokens) + i for i, name in enumerate(names)}
        token_bytes = [c.encode("utf-8") for c in self._chars] + byte_tokens + [s.encode("utf-8") for s in names]
        super().__init__(token_bytes, specials)

    @classmethod
    def train_char(cls, inputs: TextInputs, vocab_size: int | None, *, progress: bool = False) -> CharTokenizer:
        """`gptkit.tokenizer.training.train_char`."""
        from gptkit.tokenizer.training import train_char

        return train_char(inputs, vocab_size, progress=progress)

    @classmethod
    def from_meta(cls, meta: dict[str, Any], source: Path) -> CharTokenizer:
        chars = meta.get("chars")
        if not isinstance(chars, list):
            raise TokenizerError(f'{source}: a char tokenizer needs a "chars" list')
        extra = meta.get("extra_special_tokens", [])
        if not isinstance(extra, list):
            raise TokenizerError(f'{source}: "extra_special_tokens" must be a list of strings')
        fallback = meta.get("byte_fallback", False)
        if not isinstance(fallback, bool):
            raise TokenizerError(f'{source}: "byte_fallback" must be true or false, got {fallback!r}')
        try:
            return cls(chars, extra, byte_fallback=fallback)
        except TokenizerError as e:
            raise TokenizerError(f"{source}: {e}") from None

    def encode(self, text: str) -> list[int]:
        try:
            return list(map(self._index.__getitem__, text))
        except (KeyError, TypeError):
            pass
        if not isinstance(text, str) or _SURROGATE.search(text):
            raise _bad_text_error(text) from None
        if self.byte_fallback:
            ids: list[int] = []
            index, base = self._index, self._byte_base
            for c in text:
                i = index.get(c)
                if i is None:
                    ids.extend(base + b for b in c.encode("utf-8"))
                else:
                    ids.append(i)
            return ids
        pos, c = next((i, c) for i, c in enumerate(text) if c not in self._index)
        raise TokenizerError(
            f"character {c!r} (U+{ord(c):04X}) at position {pos} is not in this char tokenizer's vocabulary "
            f"of {len(self._chars)} characters (train it on text that has it, or use kind='bpe')"
        )

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """One list of ids per text (a dict lookup per character; char tokenizers are for small corpora)."""
        return [self.encode(t) for t in texts]

    @property
    def chars(self) -> list[str]:
        return list(self._chars)

    @property
    def extra_special_tokens(self) -> list[str]:
        return list(self._extra_specials)

    def _canonical(self) -> dict[str, Any]:
        fallback = {"byte_fallback": True} if self.byte_fallback else {}  # absent: fingerprints as before
        return {"kind": "char", "chars": self._chars, **fallback, "special_tokens": self.special_tokens}

    def _write_files(self, path: Path) -> dict[str, Any]:
        # A BPE tokenizer saved here before would otherwise be found by HF and by tools that read HF files.
        for name in HF_FILES:
            (path / name).unlink(missing_ok=True)
        return {
            "chars": self._chars,
            **({"byte_fallback": True} if self.byte_fallback else {}),
            **({"extra_special_tokens": self._extra_specials} if self._extra_specials else {}),
        }
