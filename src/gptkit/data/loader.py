"""Training batches from token shards: deterministic for a seed, resumable exactly, rank-aware.

A batch row is a window of T + 1 consecutive tokens: x = window[:-1], y = window[1:] (targets pre-shifted,
as the model expects). Windows never cross a shard boundary. The possible window starts of all shards
form one index space:
    sampling="random":   every position with T + 1 tokens after it in its shard (nanoGPT's random windows)
    sampling="document": only document starts (each document begins with <|endoftext|>); the window runs on
                         into the following documents, so rows are packed and every row starts at a BOS.

Step s of training draws G = batch_size x grad_accum x world_size starts from a generator keyed by
(seed, s), and rank r's micro-batch m takes rows (m * world_size + r) * batch_size ... + batch_size.
So a batch is a pure function of (seed, step): resuming needs only the step (`state_dict` is tiny), and one
process with batch 2b, or grad_accum 2 with batch b, sees exactly the rows that 2 ranks with batch b see.
Validation uses `eval_steps x batch_size x world_size` windows evenly spaced over the val split, the same
ones at every evaluation, so val losses of different steps compare directly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gptkit.data.shards import Shard, ShardError


def open_shards(
    paths: Sequence[str | os.PathLike],
    *,
    tokenizer_fingerprint: str | bytes | None = None,
    vocab_size: int | None = None,
    validate: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> list[Shard]:
    """Open shards (header and size checked); fully validate those with index % world_size == rank.

    Full validation (checksum, token range, document index) reads every byte once, so distributed ranks
    share the work. Any problem raises ShardError naming the file.
    """
    shards = [Shard(p) for p in paths]
    if validate:
        for i, shard in enumerate(shards):
            if i % world_size == rank:
                shard.validate(tokenizer_fingerprint=tokenizer_fingerprint, vocab_size=vocab_size)
    return shards


class WindowIndex:
    """The window starts of a list of shards as one index space [0, len(self))."""

    def __init__(self, shards: Sequence[Shard], block_size: int, sampling: str, split: str = "") -> None:
        if sampling not in ("random", "document"):
            raise ValueError(f"sampling must be 'random' or 'document', got {sampling!r}")
        self.shards = list(shards)
        self.window = block_size + 1
        self.sampling = sampling
        self._starts: list[np.ndarray | None] = []  # document mode: eligible starts per shard
        counts = []
        for shard in self.shards:
            n = len(shard)
            if sampling == "random":
                counts.append(max(0, n - self.window + 1))
                self._starts.append(None)
            else:
                starts = shard.doc_starts()
                starts = starts[starts + self.window <= n]
                counts.append(len(starts))
                self._starts.append(starts)
        self._cum = np.cumsum([0, *counts]).astype(np.int64)  # (n_shards + 1,)
        if len(self) == 0:
            names = ", ".join(str(s.path) for s in self.shards) or "(no shards)"
            total = sum(len(s) for s in self.shards)
            what = "windows" if sampling == "random" else "documents followed by enough tokens"
            raise ShardError(
                f"{split + ' split: ' if split else ''}{names}: {total} tokens hold no {what} of "
                f"block_size + 1 = {self.window} tokens"
            )

    def __len__(self) -> int:
        return int(self._cum[-1])

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """Token windows (N, T + 1) as int64 for window indices (N,)."""
        shard_ids = np.searchsorted(self._cum, indices, side="right") - 1
        out = np.empty((len(indices), self.window), dtype=np.int64)
        for row, (index, sid) in enumerate(zip(indices.tolist(), shard_ids.tolist(), strict=True)):
            local = index - int(self._cum[sid])
            starts = self._starts[sid]
            start = local if starts is None else int(starts[local])
            out[row] = self.shards[sid].tokens[start : start + self.window]
        return out


class TokenLoader:
    """Micro-batches (x, y), each (batch_size, block_size) int64 on the CPU, for one rank."""

    def __init__(
        self,
        train_shards: Sequence[Shard],
        val_shards: Sequence[Shard] | None,
        *,
        block_size: int,
        batch_size: int,
        grad_accum: int = 1,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        sampling: str = "random",
    ) -> None:
        self.train = WindowIndex(train_shards, block_size, sampling, "train")
        self.val = WindowIndex(val_shards, block_size, sampling, "val") if val_shards else None
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.sampling = sampling
        self.step = 0  # the next step to draw; the loader's position

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step over all ranks and micro-batches."""
        return self.batch_size * self.grad_accum * self.world_size

    def _rank_rows(self, micro: int) -> slice:
        first = (micro * self.world_size + self.rank) * self.batch_size
        return slice(first, first + self.batch_size)

    def get(self, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's micro-batch `micro` of step `step`: x, y of shape (batch_size, block_size)."""
        rng = np.random.default_rng([self.seed, step])
        indices = rng.integers(0, len(self.train), size=self.global_batch, dtype=np.int64)
        return _split(self.train.rows(indices[self._rank_rows(micro)]))

    def next_step(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The micro-batches of the next step (grad_accum of them), advancing the position."""
        batches = [self.get(self.step, m) for m in range(self.grad_accum)]
        self.step += 1
        return batches

    def val_batches(self, eval_steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's share of the fixed validation windows: eval_steps batches of batch_size rows."""
        if self.val is None:
            return []
        n = eval_steps * self.batch_size * self.world_size
        # Evenly spaced over the val index space (endpoints included); the same at every evaluation.
        indices = np.linspace(0, len(self.val) - 1, num=n).round().astype(np.int64)
        mine = indices.reshape(eval_steps, self.world_size, self.batch_size)[:, self.rank]
        return [_split(self.val.rows(rows)) for rows in mine]

    # ---- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "seed": self.seed,
            "sampling": self.sampling,
            "train_windows": len(self.train),
            "global_batch": self.global_batch,
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "loader state") -> None:
        """Continue from `state`; refuse it when the data or the seed differ (the stream would not continue)."""
        for key, mine in (("seed", self.seed), ("sampling", self.sampling), ("train_windows", len(self.train))):
            if state.get(key) != mine:
                raise ShardError(
                    f"{source}: {key} was {state.get(key)!r} when saved, now {mine!r}: the training data or "
                    "settings changed, so the batch stream cannot continue where it stopped"
                )
        self.step = int(state["step"])


def _split(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.from_numpy(rows)
    return t[:, :-1].contiguous(), t[:, 1:].contiguous()
