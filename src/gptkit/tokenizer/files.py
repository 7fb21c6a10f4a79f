"""Reading and writing tokenizer directories.

Files in a checkpoint directory:
    bpe:  tokenizer.json (the whole pipeline, for gptkit and AutoTokenizer), vocab.json + merges.txt
          (GPT-2 style), tokenizer_config.json (for transformers), gptkit_tokenizer.json
    both: chat_template.jinja, only a chat model's (bpe: also tokenizer_config.json's "chat_template")
    char: gptkit_tokenizer.json (its "chars" list is the vocabulary in id order)
gptkit_tokenizer.json holds the kind, the special tokens and the fingerprint (sha256 of the canonical
definition: tokens in id order, merges, normalizer, pre-tokenizer, special tokens), which token shards
carry so they are never read with another tokenizer; loading recomputes and checks it.
"""

from __future__ import annotations

import os
from pathlib import Path

from gptkit.files import atomic_write_bytes
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.char import CharTokenizer
from gptkit.tokenizer.chat_template import CHAT_TEMPLATE_FILE
from gptkit.tokenizer.core import (
    META_FILE,
    META_FORMAT,
    META_VERSION,
    Tokenizer,
    TokenizerError,
    _read_json,
    _write_json,
)
from gptkit.tokenizer.wordpiece import VOCAB_FILE, WordPieceTokenizer


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load from a directory: gptkit's files, or a HF tokenizer (tokenizer.json, or vocab.json + merges.txt),
    with its chat template if it has one (chat_template.jinja, else tokenizer_config.json's "chat_template")."""
    tok = _load_vocabulary(Path(path))
    tok.chat_template = _read_chat_template(Path(path))
    return tok


def _read_chat_template(path: Path) -> str | None:
    jinja = path / CHAT_TEMPLATE_FILE
    if jinja.is_file():
        try:
            return jinja.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TokenizerError(f"{jinja}: cannot be read ({e})") from None
    config = path / "tokenizer_config.json"
    if config.is_file():
        template = _read_json(config).get("chat_template")
        if isinstance(template, str):
            return template
    return None


def _load_vocabulary(path: Path) -> Tokenizer:
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
        elif kind == "wordpiece":
            tok = WordPieceTokenizer.from_dir(path)
        else:
            raise TokenizerError(f"{meta_path}: unknown kind {kind!r} (expected 'bpe', 'char' or 'wordpiece')")
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
    if (path / VOCAB_FILE).is_file() and not (path / "vocab.json").is_file() and _wordpiece_or_absent(path):
        return WordPieceTokenizer.from_dir(path)  # BERT style (GPT2-Chinese); BertTokenizerFast's tokenizer.json
    if (path / "tokenizer.json").is_file() or (path / "vocab.json").is_file():
        return BPETokenizer.from_hf_dir(path)
    raise TokenizerError(
        f"{path}: no tokenizer found (expected {META_FILE}, tokenizer.json, vocab.json + merges.txt, or a "
        "WordPiece vocab.txt)"
    )


def _wordpiece_or_absent(path: Path) -> bool:
    """True when the directory has no tokenizer.json or one whose model is WordPiece (made from vocab.txt)."""
    tj = path / "tokenizer.json"
    if not tj.is_file():
        return True
    model = _read_json(tj).get("model") or {}
    return model.get("type") == "WordPiece"


def save_tokenizer(tok: Tokenizer, path: str | os.PathLike) -> Path:
    """Write `tok`'s files into directory `path` (created if needed), beside any checkpoint files."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    extra = tok._write_files(path)
    if tok.chat_template is not None:
        atomic_write_bytes(path / CHAT_TEMPLATE_FILE, tok.chat_template.encode("utf-8"))
    else:  # a base model's tokenizer saved over a chat model's files
        (path / CHAT_TEMPLATE_FILE).unlink(missing_ok=True)
    meta = {
        "format": META_FORMAT,
        "format_version": META_VERSION,
        "kind": tok.kind,
        "vocab_size": tok.vocab_size,
        "special_tokens": tok.special_tokens,
        "fingerprint": tok.fingerprint,
        **extra,
    }
    _write_json(path / META_FILE, meta)
    return path
