"""Packing conversations into training rows, and the chat SFT loss.

Packing: each conversation is rendered by the chat template (ids + loss mask, gptkit.tokenizer.chat_template),
cut to block_size + 1 tokens, and contributes len - 1 (input, target) positions. Conversations are laid into
rows of block_size positions greedily in a seeded order (a new row when the next one does not fit); the rest
of a row is padding. Each row carries

    idx (B, T)           input ids                    targets (B, T)     next ids, -100 where not trained
    position_ids (B, T)  0, 1, ... restarting per conversation (padding: 0)
    document_ids (B, T)  which conversation of the row a position belongs to (padding: its own -1 block)
    conversation (B, T)  a batch-wide index of the conversation each target belongs to (untrained: B*T)

so the model's block-diagonal causal mask (GPT.forward(document_ids=...)) keeps conversations apart, and the
loss is the mean over the batch's conversations of each conversation's mean token loss: exactly what each
conversation would give alone (tests/test_chat_sft.py), whichever row it shares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gptkit.data.conversations import Conversation
from gptkit.tokenizer.chat_template import RenderedChat, render_chat

if TYPE_CHECKING:
    from gptkit.tokenizer import Tokenizer

Batch = dict[str, torch.Tensor]


def render_conversations(
    tokenizer: Tokenizer, conversations: list[Conversation], block_size: int
) -> list[RenderedChat]:
    """Each conversation rendered and cut to block_size + 1 tokens (the most one row can use)."""
    out = []
    for c in conversations:
        r = render_chat(tokenizer, c.messages, validate=False)  # validated when read
        if len(r.ids) > block_size + 1:
            r = RenderedChat(r.ids[: block_size + 1], r.loss_mask[: block_size + 1])
        out.append(r)
    return out


def pack_rows(chats: list[RenderedChat], order: np.ndarray | list[int], block_size: int) -> list[list[int]]:
    """Greedy packing: the conversations (indices into `chats`) in `order`, as rows of <= block_size positions."""
    rows: list[list[int]] = []
    used = block_size  # forces a first row
    for i in order:
        n = len(chats[i].ids) - 1
        if n < 1:
            continue
        if used + n > block_size:
            rows.append([])
            used = 0
        rows[-1].append(int(i))
        used += n
    return rows


def make_batch(chats: list[RenderedChat], rows: list[list[int]], block_size: int, pad_id: int) -> Batch:
    """The tensors of a batch of packed rows (see the module docstring)."""
    B, T = len(rows), block_size
    idx = torch.full((B, T), pad_id, dtype=torch.long)
    targets = torch.full((B, T), -100, dtype=torch.long)
    position_ids = torch.zeros((B, T), dtype=torch.long)
    document_ids = torch.full((B, T), -1, dtype=torch.long)
    conversation = torch.full((B, T), B * T, dtype=torch.long)
    k = 0
    for b, row in enumerate(rows):
        pos = 0
        for d, i in enumerate(row):
            ids, mask = chats[i].ids, chats[i].loss_mask
            n = len(ids) - 1
            idx[b, pos : pos + n] = torch.tensor(ids[:-1])
            y = torch.tensor(ids[1:])
            trained = torch.tensor(mask[1:])
            targets[b, pos : pos + n] = y.masked_fill(~trained, -100)
            position_ids[b, pos : pos + n] = torch.arange(n)
            document_ids[b, pos : pos + n] = d
            conversation[b, pos : pos + n] = torch.where(trained, k, B * T)
            pos += n
            k += 1
    return {
        "idx": idx,
        "targets": targets,
        "position_ids": position_ids,
        "document_ids": document_ids,
        "conversation": conversation,
    }


def chat_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean over the batch's conversations of each one's mean next-token loss on its trained positions.

    One forward pass over the packed rows; per-conversation sums by index_add (no host sync)."""
    logits = model(batch["idx"], position_ids=batch["position_ids"], document_ids=batch["document_ids"])
    targets = batch["targets"].reshape(-1)
    token_loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).to(torch.promote_types(logits.dtype, torch.float32)),
        targets,
        ignore_index=-100,
        reduction="none",
    )  # (B*T,), 0 where ignored
    conv = batch["conversation"].reshape(-1)  # untrained positions all go to the last slot, B*T
    slots = conv.numel() + 1
    sums = token_loss.new_zeros(slots).index_add_(0, conv, token_loss)[:-1]
    counts = token_loss.new_zeros(slots).index_add_(0, conv, (targets != -100).to(token_loss.dtype))[:-1]
    has = counts > 0
    return (sums / counts.clamp(min=1)).masked_fill(~has, 0.0).sum() / has.sum().clamp(min=1)


__all__ = ["chat_loss", "make_batch", "pack_rows", "render_conversations"]
