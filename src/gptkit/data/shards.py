"""The token shard format: the one place that defines, writes, reads and validates it.

A shard file is
    header (256 bytes, little-endian; layout in `_HEADER`)
    tokens       n_tokens x (uint16 | uint32)
    document index  n_docs x uint64: the end offset (exclusive) of each document within the tokens
Every document starts with the tokenizer's BOS token (<|endoftext|>). The header carries the tokenizer's
fingerprint, so a shard is never read with another tokenizer, and a CRC-32 of tokens and index, so a
corrupt shard is caught. Writers fill `NAME.tmp` and rename it to NAME only when complete, so a file
with the final name is always whole.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gptkit.errors import GptkitError
from gptkit.files import temp_path

MAGIC = b"GPTKSHRD"
VERSION = 1
HEADER_SIZE = 256
# magic, version, itemsize, n_tokens, n_docs, vocab_size, bos_id, crc32, tokenizer fingerprint (32 bytes)
_HEADER = struct.Struct("<8sIIQQQII32s")
assert _HEADER.size <= HEADER_SIZE
DEFAULT_MAX_TOKENS = 100_000_000  # per shard file (~200 MB of uint16)


class ShardError(GptkitError):
    """A shard is missing, truncated, corrupt, or made with another tokenizer; the message names the file."""


@dataclass(frozen=True)
class ShardHeader:
    itemsize: int  # 2 (uint16) or 4 (uint32)
    n_tokens: int
    n_docs: int
    vocab_size: int
    bos_id: int
    crc32: int  # of the token bytes followed by the index bytes
    tokenizer_fingerprint: bytes  # 32 bytes

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.itemsize == 2 else np.uint32)

    @property
    def file_size(self) -> int:
        return HEADER_SIZE + self.n_tokens * self.itemsize + self.n_docs * 8

    def pack(self) -> bytes:
        packed = _HEADER.pack(
            MAGIC,
            VERSION,
            self.itemsize,
            self.n_tokens,
            self.n_docs,
            self.vocab_size,
            self.bos_id,
            self.crc32,
            self.tokenizer_fingerprint,
        )
        return packed.ljust(HEADER_SIZE, b"\0")


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def fingerprint_bytes(fingerprint: str | bytes) -> bytes:
    """A tokenizer fingerprint as the header's 32 bytes (hex strings of sha256 digests are accepted)."""
    if isinstance(fingerprint, str):
        fingerprint = bytes.fromhex(fingerprint)
    if len(fingerprint) != 32:
        raise ValueError(f"tokenizer fingerprint must be 32 bytes, got {len(fingerprint)}")
    return fingerprint


def read_header(path: str | os.PathLike) -> ShardHeader:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(HEADER_SIZE)
    except OSError as e:
        raise ShardError(f"{path}: cannot be read ({e.strerror})") from None
    if len(raw) < HEADER_SIZE:
        raise ShardError(f"{path}: truncated header ({len(raw)} of {HEADER_SIZE} bytes)")
    magic, version, itemsize, n_tokens, n_docs, vocab_size, bos_id, crc, fp = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ShardError(f"{path}: not a gptkit token shard (bad magic {magic!r})")
    if version != VERSION:
        raise ShardError(f"{path}: shard format version {version} is not supported (this gptkit reads {VERSION})")
    if itemsize not in (2, 4):
        raise ShardError(f"{path}: bad token size {itemsize} in header (expected 2 or 4)")
    return ShardHeader(itemsize, n_tokens, n_docs, vocab_size, bos_id, crc, fp)


class Shard:
    """A shard opened for reading: `tokens` and `doc_ends` are read-only memory maps (nothing is loaded)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.header = h = read_header(self.path)
        size = self.path.stat().st_size
        if size != h.file_size:
            raise ShardError(
                f"{self.path}: truncated or padded: {size} bytes on disk, the header describes {h.file_size}"
            )
        self.tokens = np.memmap(self.path, dtype=h.dtype, mode="r", offset=HEADER_SIZE, shape=(h.n_tokens,))
        index_offset = HEADER_SIZE + h.n_tokens * h.itemsize
        self.doc_ends = np.memmap(self.path, dtype=np.uint64, mode="r", offset=index_offset, shape=(h.n_docs,))

    def __len__(self) -> int:
        return self.header.n_tokens

    def doc_starts(self) -> np.ndarray:
        return np.concatenate([[0], self.doc_ends[:-1]]).astype(np.int64)

    def document(self, i: int) -> np.ndarray:
        start = int(self.doc_ends[i - 1]) if i else 0
        return np.asarray(self.tokens[start : int(self.doc_ends[i])])

    def validate(self, tokenizer_fingerprint: str | bytes | None = None, vocab_size: int | None = None) -> None:
        """Check everything the header promises; raise ShardError naming this file and the problem."""
        h, name = self.header, self.path
        if tokenizer_fingerprint is not None and fingerprint_bytes(tokenizer_fingerprint) != h.tokenizer_fingerprint:
            raise ShardError(
                f"{name}: made with another tokenizer (fingerprint {h.tokenizer_fingerprint.hex()[:16]}..., "
                f"expected {fingerprint_bytes(tokenizer_fingerprint).hex()[:16]}...)"
            )
        if vocab_size is not None and vocab_size != h.vocab_size:
            raise ShardError(f"{name}: vocab_size {h.vocab_size} in header, the tokenizer has {vocab_size}")
        crc = 0
        chunk = 1 << 24
        token_bytes = self.tokens.view(np.uint8)
        for i in range(0, len(token_bytes), chunk):
            crc = zlib.crc32(token_bytes[i : i + chunk], crc)
        crc = zlib.crc32(self.doc_ends.view(np.uint8), crc)
        if crc != h.crc32:
            raise ShardError(f"{name}: corrupt: checksum {crc:08x} does not match the header's {h.crc32:08x}")
        if h.n_tokens and int(self.tokens.max()) >= h.vocab_size:
            raise ShardError(f"{name}: token id {int(self.tokens.max())} is outside the vocabulary of {h.vocab_size}")
        ends = np.asarray(self.doc_ends, dtype=np.int64)
        if h.n_docs:
            if ends[-1] != h.n_tokens or (np.diff(ends) <= 0).any() or ends[0] <= 0:
                raise ShardError(f"{name}: corrupt document index (ends must rise strictly to {h.n_tokens})")
            starts = self.doc_starts()
            if (np.asarray(self.tokens[starts]) != h.bos_id).any():
                raise ShardError(f"{name}: a document does not start with the BOS token {h.bos_id}")
        elif h.n_tokens:
            raise ShardError(f"{name}: {h.n_tokens} tokens but no documents in the index")


class ShardWriter:
    """Writes one shard: `add(doc_tokens)` per document, then `close()` (or use as a context manager).

    Tokens stream to NAME.<attempt>.tmp; the header and index are written at close, then the file is renamed into
    place. If the writer is abandoned (an exception inside `with`), the .tmp file is removed.
    """

    def __init__(
        self, path: str | os.PathLike, *, vocab_size: int, bos_id: int, tokenizer_fingerprint: str | bytes
    ) -> None:
        self.path = Path(path)
        self.tmp_path = temp_path(self.path)  # unique per attempt: NAME.PID-RANDOM.tmp
        self.vocab_size = vocab_size
        self.bos_id = bos_id
        self.fingerprint = fingerprint_bytes(tokenizer_fingerprint)
        self.dtype = token_dtype(vocab_size)
        self.doc_ends: list[int] = []
        self.n_tokens = 0
        self._crc = 0
        self._file = open(self.tmp_path, "wb")  # noqa: SIM115 - closed in close() / abort()
        self._file.write(b"\0" * HEADER_SIZE)

    def add(self, tokens: np.ndarray | list[int]) -> None:
        """Append one document; it must start with the BOS token."""
        arr = np.asarray(tokens)
        if arr.ndim != 1 or len(arr) == 0:
            raise ValueError("a document must be a non-empty 1-D sequence of token ids")
        if int(arr[0]) != self.bos_id:
            raise ValueError(f"a document must start with the BOS token {self.bos_id}, got {int(arr[0])}")
        if int(arr.max()) >= self.vocab_size or int(arr.min()) < 0:
            raise ValueError(f"token ids must be in [0, {self.vocab_size})")
        data = arr.astype(self.dtype, copy=False).tobytes()
        self._crc = zlib.crc32(data, self._crc)
        self._file.write(data)
        self.n_tokens += len(arr)
        self.doc_ends.append(self.n_tokens)

    def close(self) -> ShardHeader:
        index = np.asarray(self.doc_ends, dtype=np.uint64).tobytes()
        crc = zlib.crc32(index, self._crc)
        header = ShardHeader(
            self.dtype.itemsize, self.n_tokens, len(self.doc_ends), self.vocab_size, self.bos_id, crc, self.fingerprint
        )
        self._file.write(index)
        self._file.seek(0)
        self._file.write(header.pack())
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp_path, self.path)
        return header

    def abort(self) -> None:
        self._file.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_shards(
    out_dir: str | os.PathLike,
    prefix: str,
    documents: Iterable[np.ndarray | list[int]],
    *,
    vocab_size: int,
    bos_id: int,
    tokenizer_fingerprint: str | bytes,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> list[Path]:
    """Write documents to PREFIX_000000.bin, PREFIX_000001.bin, ... starting a new file past `max_tokens`."""
    out_dir = Path(out_dir)
    paths: list[Path] = []
    writer: ShardWriter | None = None
    try:
        for doc in documents:
            if writer is None or writer.n_tokens >= max_tokens:
                if writer is not None:
                    writer.close()
                paths.append(out_dir / f"{prefix}_{len(paths):06d}.bin")
                writer = ShardWriter(
                    paths[-1], vocab_size=vocab_size, bos_id=bos_id, tokenizer_fingerprint=tokenizer_fingerprint
                )
            writer.add(doc)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return paths


def shard_paths(data_dir: str | os.PathLike, split: str) -> list[Path]:
    """The shards of one split ("train" or "val") in a directory, in order."""
    return sorted(Path(data_dir).glob(f"{split}_*.bin"))


def iter_documents(paths: Iterable[str | os.PathLike]) -> Iterator[np.ndarray]:
    for path in paths:
        shard = Shard(path)
        for i in range(shard.header.n_docs):
            yield shard.document(i)
