"""The training batch loader: deterministic, resumable, rank-aware, windows inside shards, BOS alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from gptkit.data.loader import TokenLoader, open_shards
from gptkit.data.shards import HEADER_SIZE, ShardError, shard_paths, write_shards
from tests.train_helpers import BOS, FINGERPRINT, make_shards


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"), max_tokens=3000)


def loader(data, **kw):
    kw = {"block_size": 16, "batch_size": 4, "seed": 7, **kw}
    train = open_shards(shard_paths(data, "train"))
    val = open_shards(shard_paths(data, "val"))
    return TokenLoader(train, val, **kw)


def test_rows_are_windows_of_the_shards_and_targets_are_shifted(data):
    ld = loader(data)
    assert len(ld.train.shards) > 2
    streams = [sliding_window_view(np.asarray(s.tokens, dtype=np.int64), 17) for s in ld.train.shards]
    for step in range(5):
        x, y = ld.get(step, 0)
        assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
        assert torch.equal(x[:, 1:], y[:, :-1])
        for row_x, row_y in zip(x.numpy(), y.numpy(), strict=True):
            window = np.concatenate([row_x, row_y[-1:]])
            # Each window lies inside one shard (brute-force search of all shards and offsets).
            assert any((windows == window).all(axis=1).any() for windows in streams)


def test_every_window_start_is_reachable_including_the_last(tmp_path):
    # One shard of 40 tokens 0..39 (a single document): block 8 gives starts 0..31, all equally likely.
    (path,) = write_shards(
        tmp_path, "train", [np.arange(40)], vocab_size=64, bos_id=0, tokenizer_fingerprint=FINGERPRINT
    )
    ld = TokenLoader(open_shards([path]), None, block_size=8, batch_size=64, seed=0)
    starts = np.concatenate([ld.get(s, 0)[0][:, 0].numpy() for s in range(100)])
    counts = np.bincount(starts, minlength=32)
    assert len(counts) == 32 and counts.min() > 100  # 6400 draws over 32 starts: ~200 each


def test_same_seed_same_batches_other_seed_other_batches(data):
    a, b, c = loader(data), loader(data), loader(data, seed=8)
    for step in (0, 3, 1000):
        assert torch.equal(a.get(step, 0)[0], b.get(step, 0)[0])
        assert not torch.equal(a.get(step, 0)[0], c.get(step, 0)[0])
    assert not torch.equal(a.get(0, 0)[0], a.get(1, 0)[0])


def test_ranks_and_micro_batches_partition_the_global_batch(data):
    """2 ranks x batch b, and grad_accum 2 x batch b, see exactly the rows of 1 process with batch 2b."""
    whole = loader(data, batch_size=8)
    ranks = [loader(data, batch_size=4, rank=r, world_size=2) for r in range(2)]
    accum = loader(data, batch_size=4, grad_accum=2)
    for step in range(3):
        x = whole.get(step, 0)[0]
        assert torch.equal(torch.cat([ld.get(step, 0)[0] for ld in ranks]), x)
        assert torch.equal(torch.cat([accum.get(step, m)[0] for m in range(2)]), x)
        assert not torch.equal(ranks[0].get(step, 0)[0], ranks[1].get(step, 0)[0])
    # 2 ranks x grad_accum 2: micro-batch m of rank r holds rows (2m + r) * b ... of the global batch.
    big = loader(data, batch_size=16)
    both = [loader(data, batch_size=4, grad_accum=2, rank=r, world_size=2) for r in range(2)]
    x = big.get(5, 0)[0]
    for m in range(2):
        for r in range(2):
            assert torch.equal(both[r].get(5, m)[0], x[(2 * m + r) * 4 : (2 * m + r + 1) * 4])


def test_document_sampling_starts_every_row_at_bos(data):
    ld = loader(data, sampling="document", batch_size=32)
    starts = set()
    for step in range(10):
        x, _ = ld.get(step, 0)
        assert (x[:, 0] == BOS).all()
        starts |= {tuple(r) for r in x[:, :4].tolist()}
    assert len(starts) > 100  # many different documents
    vx, _ = ld.val_batches(2)[0]
    assert (vx[:, 0] == BOS).all()


def test_val_batches_are_fixed_evenly_spaced_and_split_over_ranks(data):
    one = loader(data).val_batches(3)
    again = loader(data, seed=99).val_batches(3)  # the seed does not move the val windows
    assert len(one) == 3 and all(torch.equal(a[0], b[0]) for a, b in zip(one, again, strict=True))
    rows = torch.cat([x for x, _ in one])
    assert len({tuple(r) for r in rows.tolist()}) == 12
    ranks = [loader(data, batch_size=2, rank=r, world_size=2).val_batches(3) for r in range(2)]
    split_rows = torch.cat([x for rank in ranks for x, _ in rank])
    assert sorted(map(tuple, split_rows.tolist())) == sorted(map(tuple, rows.tolist()))


def test_state_dict_resumes_and_refuses_other_data(data):
    ld = loader(data)
    first = [ld.next_step() for _ in range(3)]
    state = ld.state_dict()
    assert state["step"] == 3
    rest = [ld.next_step() for _ in range(2)]
    again = loader(data)
    again.load_state_dict(state)
    for got, want in zip([again.next_step() for _ in range(2)], rest, strict=True):
        assert torch.equal(got[0][0], want[0][0])
    assert not torch.equal(first[0][0][0], rest[0][0][0])
    with pytest.raises(ShardError, match="seed was 7 when saved, now 8"):
        loader(data, seed=8).load_state_dict(state)
    with pytest.raises(ShardError, match="train_windows was"):
        loader(data, block_size=15).load_state_dict(state)


def test_too_little_data_and_bad_shards_are_named(tmp_path):
    (path,) = write_shards(
        tmp_path, "train", [np.arange(10)], vocab_size=64, bos_id=0, tokenizer_fingerprint=FINGERPRINT
    )
    with pytest.raises(ShardError, match=r"train split: .*train_000000.bin: 10 tokens hold no windows of"):
        TokenLoader(open_shards([path]), None, block_size=16, batch_size=2)
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + 3] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match=r"train_000000.bin: corrupt"):
        open_shards([path])
    # Validation is shared out: rank 1 of 2 does not read shard 0 (rank 0 does).
    open_shards([path], rank=1, world_size=2)
