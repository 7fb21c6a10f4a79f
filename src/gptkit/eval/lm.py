"""Language-model quality in units that compare across tokenizers: the one definition gptkit uses.

    nats_per_token  total next-token cross-entropy (natural log) / predicted tokens
    nats_per_char   the same total / the characters those tokens stand for
    bits_per_byte   the same total / ln 2 / the UTF-8 bytes those tokens stand for

Characters and bytes of a predicted token come from the tokenizer: a token's bytes are its UTF-8 bytes, and
the characters it holds are the bytes that start a character (not 10xxxxxx continuation bytes), so a
character split over two byte-level tokens counts once, in the token holding its first byte. A special token
(<|endoftext|> between documents) counts as one character and one byte: it is the document separator, which
a character model (the n-gram baseline in benchmarks/) predicts as one symbol too.

A token stream is scored in consecutive windows of at most block_size targets (no overlap), each window
starting from its first token with no earlier context; the first token of the stream is never predicted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gptkit.errors import GptkitError


@dataclass(frozen=True)
class LMScore:
    """Summed loss over `tokens` predicted tokens, and the characters / bytes they stand for."""

    nats: float
    tokens: int
    chars: int
    bytes: int

    @property
    def nats_per_token(self) -> float:
        return self.nats / self.tokens

    @property
    def nats_per_char(self) -> float:
        return self.nats / self.chars

    @property
    def bits_per_byte(self) -> float:
        return self.nats / math.log(2) / self.bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "nats_per_token": self.nats_per_token,
            "nats_per_char": self.nats_per_char,
            "bits_per_byte": self.bits_per_byte,
            "tokens": self.tokens,
            "chars": self.chars,
            "bytes": self.bytes,
        }


def token_text_units(tokenizer: Any) -> tuple[np.ndarray, np.ndarray]:
    """(chars, bytes): two (V,) int64 arrays, the characters and UTF-8 bytes each token id stands for."""
    special = set(tokenizer.special_tokens.values())
    chars = np.zeros(tokenizer.vocab_size, dtype=np.int64)
    nbytes = np.zeros(tokenizer.vocab_size, dtype=np.int64)
    for i in range(tokenizer.vocab_size):
        if i in special:
            chars[i] = nbytes[i] = 1
            continue
        b = tokenizer.token_bytes(i)
        nbytes[i] = len(b)
        chars[i] = sum(1 for c in b if c & 0xC0 != 0x80)  # bytes that start a UTF-8 character
    return chars, nbytes


def count_units(targets: np.ndarray | torch.Tensor, units: np.ndarray) -> int:
    """Sum of `units` (V,) over the target ids (any shape); ids < 0 (ignored targets) count nothing."""
    ids = targets.cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    ids = ids.reshape(-1)
    return int(units[ids[ids >= 0]].sum())


@torch.no_grad()
def score_tokens(
    model: torch.nn.Module,
    ids: np.ndarray,
    tokenizer: Any,
    *,
    block_size: int | None = None,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> LMScore:
    """Score the token stream `ids` (N,): every token after the first is predicted (see the module doc)."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < 2:
        raise GptkitError(f"nothing to score: {len(ids)} token(s), at least 2 are needed")
    T = block_size or model.config.block_size
    chars_of, bytes_of = token_text_units(tokenizer)
    n_targets = len(ids) - 1
    starts = list(range(0, n_targets, T))  # window w: inputs ids[s : s+T], targets ids[s+1 : s+T+1]
    total = 0.0
    was_training = model.training
    model.eval()
    for b in range(0, len(starts), batch_size):
        group = starts[b : b + batch_size]
        width = min(T, n_targets - group[0])  # the first window of a group is the longest
        x = torch.zeros(len(group), width, dtype=torch.long)
        y = torch.full((len(group), width), -100, dtype=torch.long)  # -100: padding of a short last window
        for row, s in enumerate(group):
            n = min(T, n_targets - s)
            x[row, :n] = torch.from_numpy(ids[s : s + n])
            y[row, :n] = torch.from_numpy(ids[s + 1 : s + n + 1])
        logits = model(x.to(device))
        logp = torch.log_softmax(logits.float(), dim=-1)
        mask = y >= 0
        picked = logp.gather(-1, y.clamp(min=0).to(device).unsqueeze(-1)).squeeze(-1).cpu()
        total -= float(picked[mask].double().sum())
        if progress and (b // batch_size) % 20 == 0:
            print(f"  scored {min(b + batch_size, len(starts))}/{len(starts)} windows", flush=True)
    model.train(was_training)
    targets = ids[1:]
    return LMScore(
        nats=total,
        tokens=n_targets,
        chars=count_units(targets, chars_of),
        bytes=count_units(targets, bytes_of),
    )


def split_tokens(data_dir: str | Path, split: str = "val", max_tokens: int | None = None) -> np.ndarray:
    """The tokens of one split of a prepared directory as one stream (documents keep their <|endoftext|>)."""
    from gptkit.data.shards import Shard, shard_paths

    paths = shard_paths(data_dir, split)
    if not paths:
        raise GptkitError(f"{data_dir}: no {split}_*.bin token shards (make them with `gptkit prepare`)")
    parts, n = [], 0
    for p in paths:
        tokens = np.asarray(Shard(p).tokens, dtype=np.int64)
        parts.append(tokens)
        n += len(tokens)
        if max_tokens is not None and n >= max_tokens:
            break
    ids = np.concatenate(parts)
    return ids[:max_tokens] if max_tokens is not None else ids


def text_tokens(text: str, tokenizer: Any) -> np.ndarray:
    """<|endoftext|> followed by the tokens of `text`: the text is one document, predicted from its start."""
    return np.asarray([tokenizer.eot_id, *tokenizer.encode(text)], dtype=np.int64)


def evaluate_lm(
    model_dir: str | Path,
    data: str | Path,
    *,
    split: str = "val",
    max_tokens: int | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    progress: bool = False,
) -> LMScore:
    """Score the checkpoint at `model_dir` on a prepared directory's split, or on a text file."""
    from gptkit.checkpoint import load_model
    from gptkit.tokenizer import Tokenizer
    from gptkit.train.data import open_data_dir

    model_dir, data = Path(model_dir), Path(data)
    tokenizer = Tokenizer.load(model_dir)
    model = load_model(model_dir, device=device)
    if data.is_dir():
        prepared = open_data_dir(data)
        if bytes.fromhex(tokenizer.fingerprint) != prepared.fingerprint:
            raise GptkitError(f"{data}: tokenized with another tokenizer than the one in {model_dir}")
        ids = split_tokens(data, split, max_tokens)
    elif data.is_file():
        try:
            text = data.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise GptkitError(f"{data}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        ids = text_tokens(text, tokenizer)
        if max_tokens is not None:
            ids = ids[:max_tokens]
    else:
        raise GptkitError(f"{data}: no such file or directory (expected a prepared directory or a text file)")
    return score_tokens(model, ids, tokenizer, batch_size=batch_size, device=device, progress=progress)
