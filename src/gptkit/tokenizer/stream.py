"""Streaming decode: token ids in, whole characters out."""

from __future__ import annotations

import codecs
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
