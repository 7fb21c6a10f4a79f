"""What the decoders share: the device of a model, left padding, and the choice of the next token."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gptkit.generation.sampling import sample
from gptkit.generation.settings import GenerationSettings
from gptkit.model import GPT

Events = list[tuple[int, int]]  # (row, token) pairs, in the order the tokens were produced


def device_of(model: GPT) -> torch.device:
    return model.wte.weight.device


def left_pad(rows: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token ids (B, P) right-aligned, and the (B, P) 1/0 mask of real tokens (None when nothing is padded)."""
    P = max(len(r) for r in rows)
    idx = torch.zeros(len(rows), P, dtype=torch.long)
    mask = torch.zeros(len(rows), P, dtype=torch.long)
    for i, r in enumerate(rows):
        idx[i, P - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, P - len(r) :] = 1
    padded = any(len(r) < P for r in rows)
    return idx.to(device), (mask.to(device) if padded else None)


def choose(logits: torch.Tensor, s: GenerationSettings, step, rows: torch.Tensor) -> torch.Tensor:
    """Next token per row (B,) from processed logits."""
    if s.strategy == "greedy" or s.sampling.greedy:
        return logits.argmax(dim=-1)
    return sample(logits, s.seed, step, rows)


__all__ = ["Events", "choose", "device_of", "left_pad"]
