"""Streaming decode: token ids in, whole characters out."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gptkit.tokenizer.core import Tokenizer


class StreamDecoder:
    """Incremental decoding for streaming: `push(id)` returns the text completed by that token.

    Text comes out in whole characters: the bytes of a character split across tokens (a Han character is
    3 UTF-8 bytes, which byte-level BPE may cut anywhere) are held until the character is complete.
    U+FFFD appears only for bytes that are not valid UTF-8 whatever follows (or, at `flush()`, an
    unfinished character), exactly where `decode` of the same ids puts it: the pushes and the flush
    together equal `decode(ids)`.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        return self._decoder.decode(self._tokenizer.token_bytes(token_id))

    def flush(self, drop_incomplete: bool = False) -> str:
        """Text still held back: an unfinished character, as U+FFFD, or nothing with drop_incomplete=True
        (its bytes are dropped). The decoder can be reused."""
        text = "" if drop_incomplete else self._decoder.decode(b"", final=True)
        self._decoder.reset()
        return text


class TextStreamDecoder:
    """Streaming for a tokenizer whose decode is not the concatenation of token bytes (WordPiece puts
    spaces between words and cleans some up): `push(id)` returns the text that no later token can change,
    and the pushes and the flush together equal `decode(ids)`.

    A later token only appends (its separating space and text), except that HF's clean-up of " ' ", " n't",
    " 's", ... also removes spaces up to 5 characters back: text is held back while a "'" is that close.
    """

    HOLD = 6

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._emitted = 0

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        text = self._decode(self._ids)
        safe = len(text) - self.HOLD if "'" in text[-self.HOLD :] else len(text)
        out = text[self._emitted : max(self._emitted, safe)]
        self._emitted += len(out)
        return out

    def flush(self, drop_incomplete: bool = False) -> str:
        """The held-back rest (every token's text is whole characters, so nothing is incomplete)."""
        text = self._decode(self._ids)[self._emitted :] if self._ids else ""
        self._ids, self._emitted = [], 0
        return text
