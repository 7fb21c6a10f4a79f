"""What `--data` names, made ready for the loader: a directory of token shards and its tokenizer.

    DIR            a `gptkit prepare` output: train_*.bin, val_*.bin and the tokenizer files
    builtin:NAME   a built-in corpus, prepared with default settings into RUN_DIR/data
    FILE           a plain text file used as it is (no cleaning): tokenized per data.tokenizer
                   (char | bpe:N | a tokenizer directory) into RUN_DIR/data and split by position as
                   nanoGPT's shakespeare_char: the first 1 - val_fraction of the text trains, the rest validates.
Work done into RUN_DIR/data is reused when the run resumes (a stamp records what it was made from).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptkit.data.shards import Shard, shard_paths, write_shards
from gptkit.errors import ConfigError, GptkitError
from gptkit.train.config import DataConfig

DATA_SUBDIR = "data"
STAMP = "source.json"


@dataclass
class TrainingData:
    data_dir: Path
    train_paths: list[Path]
    val_paths: list[Path]
    tokenizer: Any | None  # gptkit.Tokenizer, or None for shards that came without tokenizer files
    vocab_size: int
    eot_id: int
    fingerprint: bytes  # of the tokenizer the shards were made with (from the shard headers)


def resolve_data(cfg: DataConfig, run_dir: str | os.PathLike, *, is_main: bool = True, barrier=None) -> TrainingData:
    """Shards and tokenizer for `cfg.path`; the main process does any tokenizing while the others wait."""
    spec = cfg.path
    if not spec:
        raise ConfigError("data.path: no training data given (--data DIR | builtin:NAME | FILE.txt)")
    if spec.startswith("builtin:"):
        out = Path(run_dir) / DATA_SUBDIR
        if is_main:
            _prepare_builtin(spec, out, cfg)
        if barrier:
            barrier()
        return open_data_dir(out)
    path = Path(spec)
    if path.is_dir():
        return open_data_dir(path)
    if path.is_file():
        out = Path(run_dir) / DATA_SUBDIR
        if is_main:
            text_to_shards(path, out, cfg)
        if barrier:
            barrier()
        return open_data_dir(out)
    raise ConfigError(f"data.path: {spec}: no such file or directory (expected DIR, builtin:NAME or a text file)")


def open_data_dir(data_dir: str | os.PathLike) -> TrainingData:
    """The shards of a directory and its tokenizer; the shards' headers must agree with each other."""
    data_dir = Path(data_dir)
    train, val = shard_paths(data_dir, "train"), shard_paths(data_dir, "val")
    if not train:
        raise GptkitError(f"{data_dir}: no train_*.bin token shards (make them with `gptkit prepare`)")
    headers = [(p, Shard(p).header) for p in train + val]
    first_path, first = headers[0]
    for p, h in headers[1:]:
        if (h.vocab_size, h.tokenizer_fingerprint, h.bos_id) != (
            first.vocab_size,
            first.tokenizer_fingerprint,
            first.bos_id,
        ):
            raise GptkitError(f"{p}: made with another tokenizer than {first_path} (vocab, fingerprint or BOS differ)")
    tokenizer = load_tokenizer_if_present(data_dir)
    if tokenizer is not None:
        if bytes.fromhex(tokenizer.fingerprint) != first.tokenizer_fingerprint:
            raise GptkitError(f"{first_path}: made with another tokenizer than the one in {data_dir}")
        if tokenizer.vocab_size != first.vocab_size:
            raise GptkitError(
                f"{first_path}: vocab_size {first.vocab_size}, the tokenizer in {data_dir} has {tokenizer.vocab_size}"
            )
    return TrainingData(
        data_dir=data_dir,
        train_paths=train,
        val_paths=val,
        tokenizer=tokenizer,
        vocab_size=first.vocab_size,
        eot_id=first.bos_id,
        fingerprint=first.tokenizer_fingerprint,
    )


def load_tokenizer_if_present(directory: Path) -> Any | None:
    """gptkit.Tokenizer.load(directory) if the directory has tokenizer files, else None."""
    if not any((directory / name).exists() for name in TOKENIZER_MARKERS):
        return None
    from gptkit.tokenizer import Tokenizer

    return Tokenizer.load(directory)


TOKENIZER_MARKERS = ("gptkit_tokenizer.json", "tokenizer.json", "vocab.json", "vocab.txt")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def text_to_shards(path: Path, out: Path, cfg: DataConfig) -> None:
    """Tokenize a text file into out/train_000000.bin + out/val_000000.bin (+ the tokenizer files).

    Skipped when `out` already holds the result for the same file and settings (a resumed run).
    char vocabularies come from the whole text (so every val character is known, as nanoGPT does);
    a BPE is trained on the train part only.
    """
    spec = cfg.tokenizer_for(builtin=False)
    stamp = {
        "source": str(path.resolve()),
        "sha256": _file_sha256(path),
        "tokenizer": spec,
        "val_fraction": cfg.val_fraction,
    }
    stamp_path = out / STAMP
    if stamp_path.is_file() and json.loads(stamp_path.read_text(encoding="utf-8")) == stamp:
        return
    from gptkit.tokenizer import Tokenizer

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise GptkitError(f"{path}: not UTF-8 text ({e})") from None
    split = int(len(text) * (1 - cfg.val_fraction))
    train_text, val_text = text[:split], text[split:]
    if not train_text or not val_text:
        raise GptkitError(f"{path}: too short to split into train and val parts ({len(text)} characters)")
    if spec == "char":
        tok = Tokenizer.train(path, None, kind="char")  # every character of the file
    elif spec.startswith("bpe:"):
        tok = Tokenizer.train(_chunks(train_text), int(spec[4:]), kind="bpe", progress=True)
    else:
        tok = Tokenizer.load(tokenizer_dir(spec))
    out.mkdir(parents=True, exist_ok=True)
    stamp_path.unlink(missing_ok=True)
    for old in shard_paths(out, "train") + shard_paths(out, "val"):
        old.unlink()
    tok.save(out)
    for split_name, part in (("train", train_text), ("val", val_text)):
        ids = [tok.eot_id, *encode_long(tok, part)]  # one document; every document starts with <|endoftext|>
        write_shards(
            out, split_name, [ids], vocab_size=tok.vocab_size, bos_id=tok.eot_id, tokenizer_fingerprint=tok.fingerprint
        )
    stamp_path.write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")


def tokenizer_dir(spec: str) -> Path:
    path = Path(spec)
    if not path.is_dir():
        raise ConfigError(f"data.tokenizer: {spec}: not auto, char, bpe:N or a tokenizer directory")
    return path


def _chunks(text: str, size: int = 1 << 20) -> list[str]:
    """`text` cut into pieces of about `size` characters, each cut just after a newline that a
    non-space character follows: no pre-token of gptkit's or GPT-2's BPE spans such a point, so encoding
    the pieces gives the ids of encoding the whole text."""
    pieces, start = [], 0
    while len(text) - start > size:
        cut = start + size
        while cut < len(text) and not (text[cut - 1] == "\n" and not text[cut].isspace()):
            cut += 1
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return [p for p in pieces if p]


def encode_long(tok: Any, text: str, piece_chars: int = 1 << 20) -> list[int]:
    """tok.encode(text) for a long text, encoded in pieces in parallel (encode_batch uses all cores)."""
    return [i for ids in tok.encode_batch(_chunks(text, piece_chars)) for i in ids]


def _prepare_builtin(spec: str, out: Path, cfg: DataConfig) -> None:
    """`gptkit prepare --input builtin:NAME --out RUN_DIR/data` with default settings and the tokenizer that
    data.tokenizer names (auto: an 8k BPE). prepare skips work already done, so a resumed run redoes nothing."""
    try:
        from gptkit.data.pipeline import PrepareConfig, prepare
    except ImportError:
        raise GptkitError(f"data.path: {spec}: built-in corpora need `gptkit prepare`, missing here") from None
    tok = cfg.tokenizer_for(builtin=True)
    if tok == "char":
        raise ConfigError(f"data.tokenizer: char is for text files; give {spec} bpe:N or a tokenizer directory")
    if tok.startswith("bpe:"):
        kwargs: dict[str, Any] = {"vocab_size": int(tok[4:])}
    else:
        kwargs = {"tokenizer": str(tokenizer_dir(tok))}
    prepare(PrepareConfig(inputs=(spec,), out=str(out), workers=os.cpu_count() or 1, **kwargs))
