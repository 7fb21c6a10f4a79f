"""The `Tokenizer` base class, the special tokens, and helpers every tokenizer kind shares.

Vocabulary layout: the learned tokens first, then the special tokens <|im_start|>, <|im_end|> and
<|endoftext|>, so <|endoftext|> (the document separator, also used as BOS) is the last id, as in GPT-2.
Special tokens enter only by id (`tok.special_tokens[...]`, `tok.eot_id`): text that contains the string
"<|endoftext|>" encodes as ordinary text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gptkit.errors import GptkitError
from gptkit.files import atomic_write_bytes
from gptkit.text_inputs import TextInputs
from gptkit.tokenizer.pretokenize import DEFAULT_PRETOKENIZER
from gptkit.tokenizer.stream import StreamDecoder

EOT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (IM_START, IM_END, EOT)  # appended in this order after the learned tokens

# Files in a checkpoint directory (gptkit.tokenizer.files reads and writes them).
META_FILE = "gptkit_tokenizer.json"
META_FORMAT = "gptkit-tokenizer"
META_VERSION = 1
HF_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json")

_SURROGATE = re.compile("[\ud800-\udfff]")


class TokenizerError(GptkitError, ValueError):
    """Bad tokenizer files, bad arguments, or text/ids a tokenizer cannot handle; the message says which."""


def _bad_text_error(text: object, where: str = "") -> TokenizerError:
    """The error for a text the backend refused: not a str, or a str with a lone surrogate."""
    if not isinstance(text, str):
        return TokenizerError(f"{where}expected str, got {type(text).__name__}")
    m = _SURROGATE.search(text)
    if m:
        return TokenizerError(
            f"{where}text has a lone surrogate {m.group()!a} at character {m.start()}: it is not valid "
            "Unicode and has no UTF-8 encoding (was it decoded with errors='surrogateescape'?)"
        )
    return TokenizerError(f"{where}text cannot be encoded")


def _sha256_json(obj: Any) -> str:
    canonical = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise TokenizerError(f"{path}: cannot be read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TokenizerError(f"{path}: not valid JSON ({e})") from None


def _write_json(path: Path, obj: Any, indent: int | None = 2) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=indent, ensure_ascii=False) + "\n").encode("utf-8"))


class Tokenizer:
    """What all gptkit tokenizers share; `Tokenizer.load` and `Tokenizer.train` return a subclass."""

    kind: str
    eot_token: str = EOT  # the special token that separates documents (WordPiece vocabularies: [SEP])

    def __init__(self, token_bytes: list[bytes], special_tokens: dict[str, int]) -> None:
        self._token_bytes = token_bytes  # id -> the bytes it stands for (special tokens: their UTF-8 text)
        self.special_tokens = dict(special_tokens)
        if self.eot_token not in self.special_tokens:
            raise TokenizerError(f"the tokenizer has no {self.eot_token} token (gptkit needs it to separate documents)")
        self.eot_id = self.special_tokens[self.eot_token]
        self.fingerprint = _sha256_json(self._canonical())
        # The chat template its files carry: a chat model's tokenizer (gptkit finetune chat sets it), else None.
        # Not part of the fingerprint: it changes how conversations are rendered, not the vocabulary.
        self.chat_template: str | None = None

    @property
    def bos_id(self) -> int:
        """The id a prompt starts with: <|endoftext|>, which starts every document gptkit trains on."""
        return self.eot_id

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        inputs: TextInputs,
        vocab_size: int | None,
        kind: str = "bpe",
        *,
        pretokenizer: str = DEFAULT_PRETOKENIZER,
        min_frequency: int = 2,
        progress: bool = False,
    ) -> Tokenizer:
        """Train on `inputs`: a path, a list of paths (.txt, .jsonl(.gz) with a "text" field, directories),
        or an iterable of text strings (see `gptkit.text_inputs.split_inputs` for how they are told apart).

        `vocab_size` counts the special tokens. bpe: the vocabulary has exactly that size unless the text
        runs out of pairs seen `min_frequency` times. char: the most frequent vocab_size - 3 characters
        (None: every character seen); text with other characters cannot be encoded.
        """
        from gptkit.tokenizer.training import train_tokenizer

        return train_tokenizer(
            inputs, vocab_size, kind, pretokenizer=pretokenizer, min_frequency=min_frequency, progress=progress
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Load from a directory: gptkit's files, or a HF tokenizer (tokenizer.json, or vocab.json + merges.txt)."""
        from gptkit.tokenizer.files import load_tokenizer

        return load_tokenizer(path)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer files into directory `path` (created if needed), beside any checkpoint files."""
        from gptkit.tokenizer.files import save_tokenizer

        return save_tokenizer(self, path)

    # ---- what subclasses provide --------------------------------------------------------------
    def _canonical(self) -> dict[str, Any]:
        raise NotImplementedError

    def _write_files(self, path: Path) -> dict[str, Any]:
        """Write the kind's own files; return extra fields for gptkit_tokenizer.json."""
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        raise NotImplementedError

    # ---- shared -------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._token_bytes)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes token `token_id` stands for (a special token: its text in UTF-8)."""
        if not 0 <= token_id < len(self._token_bytes):
            raise TokenizerError(f"token id {token_id} is out of range (vocab_size {len(self._token_bytes)})")
        return self._token_bytes[token_id]

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        if hasattr(ids, "tolist"):  # numpy array or torch tensor
            ids = ids.tolist()
        ids = ids if isinstance(ids, list) else list(ids)
        if ids and (min(ids) < 0 or max(ids) >= len(self._token_bytes)):
            bad = next(i for i in ids if not 0 <= i < len(self._token_bytes))
            raise TokenizerError(f"token id {bad} is out of range (vocab_size {len(self._token_bytes)})")
        return b"".join(map(self._token_bytes.__getitem__, ids))

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; special tokens come out as their text. Bytes that are not valid UTF-8 (only
        possible for ids that no `encode` produced) become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} vocab_size={self.vocab_size} fingerprint={self.fingerprint[:12]}>"
