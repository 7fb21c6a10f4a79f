"""Tokenizers: byte-level BPE (trained and run by HF `tokenizers`) and character-level, one API.

    tok = Tokenizer.train(["input.txt"], vocab_size=8000)      # or kind="char"; or an iterable of str
    tok.save(ckpt_dir); tok = Tokenizer.load(ckpt_dir)         # also loads HF GPT-2 tokenizer directories
    ids = tok.encode(text); text = tok.decode(ids)             # decode(encode(s)) == s for every str
    ids_per_doc = tok.encode_batch(docs)                       # Rust, all cores

Vocabulary layout: the learned tokens first, then the special tokens <|im_start|>, <|im_end|> and
<|endoftext|>, so <|endoftext|> (the document separator, also used as BOS) is the last id, as in GPT-2.
Special tokens enter only by id (`tok.special_tokens[...]`, `tok.eot_id`): text that contains the string
"<|endoftext|>" encodes as ordinary text. `tokenizers` would match special tokens inside text, so the
backend runs with `encode_special_tokens = True` and the saved tokenizer_config.json sets
`split_special_tokens: true`, which makes transformers' AutoTokenizer do the same.

Files in a checkpoint directory:
    bpe:  tokenizer.json (the whole pipeline, for gptkit and AutoTokenizer), vocab.json + merges.txt
          (GPT-2 style), tokenizer_config.json (for transformers), gptkit_tokenizer.json
    char: gptkit_tokenizer.json (its "chars" list is the vocabulary in id order)
gptkit_tokenizer.json holds the kind, the special tokens and the fingerprint (sha256 of the canonical
definition: tokens in id order, merges, normalizer, pre-tokenizer, special tokens), which token shards
carry so they are never read with another tokenizer; loading recomputes and checks it.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from gptkit.errors import GptkitError
from gptkit.files import atomic_write_bytes
from gptkit.text_inputs import TextInputs, iter_texts

EOT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (IM_START, IM_END, EOT)  # appended in this order after the learned tokens

META_FILE = "gptkit_tokenizer.json"
META_FORMAT = "gptkit-tokenizer"
META_VERSION = 1
HF_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json")

# Pre-tokenization: BPE merges never cross the boundaries these regexes draw (Oniguruma syntax).
# gpt2: GPT-2's rule: letters of every script run together ("用Python写" is one piece), digits too.
# cl100k: GPT-4's rule: a letter run may take one leading non-letter (" the", "(the"), digits in groups
#   of at most 3, punctuation runs take trailing newlines, newlines group with the whitespace before them.
# gptkit (default): cl100k, but Han runs stand apart from other letters (never glued to Latin words) and,
#   like letter runs, may take one leading non-letter ("，我"). Chosen by measurement on held-out Chinese and
#   English (docs/tokenizer.md: `python benchmarks/tokenizer.py --study`).
_CONTRACTIONS = r"'(?i:[sdmt]|ll|ve|re)"
_PUNCT_AND_SPACE = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PRETOKENIZERS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "cl100k": _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}" + _PUNCT_AND_SPACE,
    "gptkit": _CONTRACTIONS
    + r"|[^\r\n\p{L}\p{N}]?(?:(?!\p{Han})\p{L})+|[^\r\n\p{L}\p{N}]?\p{Han}+|\p{N}{1,3}"
    + _PUNCT_AND_SPACE,
}
DEFAULT_PRETOKENIZER = "gptkit"
_SURROGATE = re.compile("[\ud800-\udfff]")


class TokenizerError(GptkitError, ValueError):
    """Bad tokenizer files, bad arguments, or text/ids a tokenizer cannot handle; the message says which."""


@lru_cache(maxsize=1)
def byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character that stands for each byte, mapped to the byte.

    Bytes that are printable Latin-1 stand for themselves; the other 68 bytes take code points 256, 257, ...
    in byte order (so the space 0x20 is "Ġ", U+0120). `tokenizers.pre_tokenizers.ByteLevel` uses the same map.
    """
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    chars = {chr(b): b for b in printable}
    chars.update({chr(256 + i): b for i, b in enumerate(others)})
    return chars


def _check_vocab_size(vocab_size: int | None, minimum: int, kind: str) -> None:
    if vocab_size is None:
        return
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < minimum:
        raise TokenizerError(f"vocab_size={vocab_size!r} is too small for a {kind} tokenizer (minimum {minimum})")


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


class Tokenizer:
    """What all gptkit tokenizers share; `Tokenizer.load` and `Tokenizer.train` return a subclass."""

    kind: str

    def __init__(self, token_bytes: list[bytes], special_tokens: dict[str, int]) -> None:
        self._token_bytes = token_bytes  # id -> the bytes it stands for (special tokens: their UTF-8 text)
        self.special_tokens = dict(special_tokens)
        if EOT not in self.special_tokens:
            raise TokenizerError(f"the tokenizer has no {EOT} token (gptkit needs it to separate documents)")
        self.eot_id = self.special_tokens[EOT]
        self.fingerprint = _sha256_json(self._canonical())

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
        if kind == "bpe":
            if pretokenizer not in PRETOKENIZERS:
                raise TokenizerError(f"unknown pretokenizer {pretokenizer!r} (known: {', '.join(PRETOKENIZERS)})")
            return BPETokenizer.train_bpe(
                inputs, vocab_size, pattern=PRETOKENIZERS[pretokenizer], min_frequency=min_frequency, progress=progress
            )
        if kind == "char":
            return CharTokenizer.train_char(inputs, vocab_size, progress=progress)
        raise TokenizerError(f"unknown tokenizer kind {kind!r} (expected 'bpe' or 'char')")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Load from a directory: gptkit's files, or a HF tokenizer (tokenizer.json, or vocab.json + merges.txt)."""
        path = Path(path)
        if not path.is_dir():
            raise TokenizerError(f"{path}: not a directory (expected a checkpoint or tokenizer directory)")
        meta_path = path / META_FILE
        if meta_path.is_file():
            meta = _read_json(meta_path)
            if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
                raise TokenizerError(f'{meta_path}: not a gptkit tokenizer file (expected "format": "{META_FORMAT}")')
            if meta.get("format_version") != META_VERSION:
                raise TokenizerError(
                    f"{meta_path}: format_version {meta.get('format_version')!r} is not supported "
                    f"(this gptkit reads {META_VERSION})"
                )
            kind = meta.get("kind")
            if kind == "char":
                tok: Tokenizer = CharTokenizer.from_meta(meta, meta_path)
            elif kind == "bpe":
                tok = BPETokenizer.from_hf_dir(path)
            else:
                raise TokenizerError(f"{meta_path}: unknown kind {kind!r} (expected 'bpe' or 'char')")
            if meta.get("special_tokens") != tok.special_tokens:
                raise TokenizerError(
                    f"{meta_path}: special_tokens {meta.get('special_tokens')} do not match the vocabulary's "
                    f"{tok.special_tokens}"
                )
            if meta.get("fingerprint") != tok.fingerprint:
                raise TokenizerError(
                    f"{meta_path}: fingerprint {meta.get('fingerprint')} does not match the tokenizer files "
                    f"({tok.fingerprint}); they were changed after saving"
                )
            return tok
        if (path / "tokenizer.json").is_file() or (path / "vocab.json").is_file():
            return BPETokenizer.from_hf_dir(path)
        raise TokenizerError(
            f"{path}: no tokenizer found (expected {META_FILE}, tokenizer.json, or vocab.json + merges.txt)"
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer files into directory `path` (created if needed), beside any checkpoint files."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        extra = self._write_files(path)
        meta = {
            "format": META_FORMAT,
            "format_version": META_VERSION,
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "special_tokens": self.special_tokens,
            "fingerprint": self.fingerprint,
            **extra,
        }
        _write_json(path / META_FILE, meta)
        return path

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
        added = {i: t.content for i, t in hf.get_added_tokens_decoder().items()}
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
        specials = {name: vocab[name] for name in SPECIAL_TOKENS if name in vocab}
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
        """Train with pre-tokenization regex `pattern` (`Tokenizer.train` takes a name from PRETOKENIZERS)."""
        _check_vocab_size(vocab_size, 256 + len(SPECIAL_TOKENS), "byte-level BPE")
        if vocab_size is None:
            raise TokenizerError("vocab_size is required for a BPE tokenizer")
        hf = new_byte_level_bpe(pattern)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size - len(SPECIAL_TOKENS),
            min_frequency=min_frequency,
            show_progress=progress and sys.stderr.isatty(),  # its bars print blank lines elsewhere
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
        )
        hf.train_from_iterator(iter_texts(inputs, progress=progress), trainer=trainer)
        hf.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIAL_TOKENS])
        return cls(hf, json.loads(hf.to_str()), source="trained tokenizer")

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
        """tokenizer_config.json for transformers: load tokenizer.json as it is, never split specials out."""
        extra = [t for t in (IM_START, IM_END) if t in self.special_tokens]
        return {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "split_special_tokens": True,
            "add_prefix_space": False,
            "clean_up_tokenization_spaces": False,
            "bos_token": EOT,
            "eos_token": EOT,
            "extra_special_tokens": extra,
        }


def new_byte_level_bpe(pattern: str) -> HFTokenizer:
    """An untrained `tokenizers` byte-level BPE that pre-tokenizes with regex `pattern` (Oniguruma syntax).

    The rule is a `Split` regex followed by the byte-level mapping, both serialisable, so tokenizer.json
    carries it and AutoTokenizer reproduces gptkit's ids.
    """
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    hf.decoder = decoders.ByteLevel()
    return hf


class CharTokenizer(Tokenizer):
    """One id per character (nanoGPT's shakespeare_char), characters in code-point order, then specials."""

    kind = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        self._chars = list(chars)
        if any(not isinstance(c, str) or len(c) != 1 for c in self._chars) or len(set(self._chars)) != len(chars):
            raise TokenizerError("a char vocabulary must be distinct single characters")
        if any(_SURROGATE.match(c) for c in self._chars):
            raise TokenizerError("a char vocabulary cannot hold lone surrogates")
        self._index = {c: i for i, c in enumerate(self._chars)}
        n = len(self._chars)
        specials = {name: n + i for i, name in enumerate(SPECIAL_TOKENS)}
        token_bytes = [c.encode("utf-8") for c in self._chars] + [s.encode("utf-8") for s in SPECIAL_TOKENS]
        super().__init__(token_bytes, specials)

    @classmethod
    def train_char(cls, inputs: TextInputs, vocab_size: int | None, *, progress: bool = False) -> CharTokenizer:
        _check_vocab_size(vocab_size, 1 + len(SPECIAL_TOKENS), "char")
        counts: Counter[str] = Counter()
        for text in iter_texts(inputs, progress=progress):
            counts.update(text)
        for c in list(counts):
            if _SURROGATE.match(c):
                raise _bad_text_error(c, "training text: ")
        if not counts:
            raise TokenizerError("the training text is empty")
        keep = len(counts) if vocab_size is None else vocab_size - len(SPECIAL_TOKENS)
        # Most frequent first (ties by code point), then the kept ones in code-point order.
        ranked = sorted(counts, key=lambda c: (-counts[c], c))[:keep]
        return cls(sorted(ranked))

    @classmethod
    def from_meta(cls, meta: dict[str, Any], source: Path) -> CharTokenizer:
        chars = meta.get("chars")
        if not isinstance(chars, list):
            raise TokenizerError(f'{source}: a char tokenizer needs a "chars" list')
        try:
            return cls(chars)
        except TokenizerError as e:
            raise TokenizerError(f"{source}: {e}") from None

    def encode(self, text: str) -> list[int]:
        try:
            return list(map(self._index.__getitem__, text))
        except (KeyError, TypeError):
            pass
        if not isinstance(text, str) or _SURROGATE.search(text):
            raise _bad_text_error(text) from None
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

    def _canonical(self) -> dict[str, Any]:
        return {"kind": "char", "chars": self._chars, "special_tokens": self.special_tokens}

    def _write_files(self, path: Path) -> dict[str, Any]:
        # A BPE tokenizer saved here before would otherwise be found by HF and by tools that read HF files.
        for name in HF_FILES:
            (path / name).unlink(missing_ok=True)
        return {"chars": self._chars}
