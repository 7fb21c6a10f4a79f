from __future__ import annotations

import hashlib

import numpy as np
import pytest

from gptkit.data.shards import HEADER_SIZE, Shard, ShardError, ShardWriter, read_header, shard_paths, write_shards

FP = hashlib.sha256(b"tokenizer A").hexdigest()
OTHER_FP = hashlib.sha256(b"tokenizer B").hexdigest()
BOS = 0


def docs(n: int, vocab: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.concatenate([[BOS], rng.integers(1, vocab, rng.integers(1, 50))]) for _ in range(n)]


@pytest.mark.parametrize("vocab", [300, 70_000])  # uint16 and uint32 tokens
def test_round_trip_and_validate(tmp_path, vocab):
    documents = docs(40, vocab)
    paths = write_shards(
        tmp_path, "train", documents, vocab_size=vocab, bos_id=BOS, tokenizer_fingerprint=FP, max_tokens=300
    )
    assert len(paths) > 1 and paths == shard_paths(tmp_path, "train")
    read_back = []
    for p in paths:
        shard = Shard(p)
        shard.validate(tokenizer_fingerprint=FP, vocab_size=vocab)
        assert shard.tokens.dtype == (np.uint16 if vocab < 65536 else np.uint32)
        read_back += [shard.document(i) for i in range(shard.header.n_docs)]
    assert len(read_back) == 40
    for a, b in zip(documents, read_back, strict=True):
        assert np.array_equal(a, b)
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_corrupt_and_foreign_shards_are_named(tmp_path):
    (path,) = write_shards(tmp_path, "val", docs(10, 500), vocab_size=500, bos_id=BOS, tokenizer_fingerprint=FP)
    with pytest.raises(ShardError, match="made with another tokenizer"):
        Shard(path).validate(tokenizer_fingerprint=OTHER_FP)
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + 5] ^= 0xFF  # flip a token byte
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=r"val_000000.bin: corrupt: checksum"):
        Shard(path).validate()
    path.write_bytes(bytes(data[:-7]))
    with pytest.raises(ShardError, match=r"val_000000.bin: truncated or padded"):
        Shard(path)
    path.write_bytes(b"GPTKSH")
    with pytest.raises(ShardError, match="truncated header"):
        read_header(path)
    path.write_bytes(b"x" * 300)
    with pytest.raises(ShardError, match="not a gptkit token shard"):
        read_header(path)


def test_abandoned_writer_leaves_no_complete_looking_file(tmp_path):
    with (
        pytest.raises(RuntimeError),
        ShardWriter(tmp_path / "train_000000.bin", vocab_size=10, bos_id=0, tokenizer_fingerprint=FP) as w,
    ):
        w.add([0, 1, 2])
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_documents_without_bos(tmp_path):
    with ShardWriter(tmp_path / "a.bin", vocab_size=10, bos_id=0, tokenizer_fingerprint=FP) as w:
        with pytest.raises(ValueError, match="BOS"):
            w.add([3, 1])
        with pytest.raises(ValueError, match=r"\[0, 10\)"):
            w.add([0, 10])
        w.add([0, 9])
    assert Shard(tmp_path / "a.bin").header.n_docs == 1
