"""Two options beside the papers' GPT that feed token identities past the first layer (ModelConfig.value_embeddings,
ModelConfig.smear), as the modded-nanogpt speedrun does. Both are off in every preset.

Value embeddings: N extra token tables (Vp, C), each looked up with the input ids. Table j feeds layer j and,
shared, layer n_layer - N + j of the last N layers where that is not already one of the first N
(`value_embedding_layers`): 3 tables of a 12-layer model feed layers 0, 1, 2 and 9, 10, 11; 1 table of a 3-layer
model feeds layers 0 and 2; 3 tables of 3 layers feed one layer each. A fed layer's attention values become
v + s * ve (s a learned scalar of that layer, starting at 1; ve the table's row of the token at that position,
the same for every head's slice of the C channels). The values are what the keys' positions hand on, so each
attended position contributes its own token's identity directly, not only what the residual stream kept of it.
The tables are embeddings for the optimizer (train.embedding_lr, AdamW); the scales are gains.

Smear: right after the token embedding, position t gets g_t * e_{t-1}, e the token embeddings (before the smear)
and g_t = s * sigmoid(w . e_t[:12]) a gate read from the first SMEAR_CHANNELS channels of its own embedding
(w (12,), s a scalar, both start at 0, so the smear starts at exactly nothing and the model is the one
without it). A position whose position id is 0 (the first of a sequence, of a left-padded row's real tokens,
or of a packed document) gets nothing. With a KV cache the embedding of the last position seen is kept in the
cache (`KVCache.smear_prev`), so a decode step smears the same as a full forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from gptkit.config import SMEAR_CHANNELS, ModelConfig


def value_embedding_layers(config: ModelConfig) -> list[int | None]:
    """The value-embedding table that feeds each layer's attention values, None for a layer without one."""
    N, L = config.value_embeddings, config.n_layer
    tables: list[int | None] = []
    for layer in range(L):
        if layer < N:
            tables.append(layer)
        elif layer >= max(N, L - N):  # one of the last N layers, not one of the first N
            tables.append(layer - (L - N))
        else:
            tables.append(None)
    return tables


class ValueEmbeddings(nn.Module):
    """The N tables (`tables.j.weight`, (Vp, C)) and a scale per fed layer (`scales`, (fed layers,))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.layer_tables = value_embedding_layers(config)
        fed = sum(t is not None for t in self.layer_tables)
        self.tables = nn.ModuleList(
            nn.Embedding(config.padded_vocab_size, config.n_embd) for _ in range(config.value_embeddings)
        )
        self.scales = nn.Parameter(torch.ones(fed))
        self.vocab_size = config.vocab_size

    def reset_parameters(self) -> None:
        """Tables N(0, 0.02) as the token embedding (padding rows zero), scales 1."""
        with torch.no_grad():
            for table in self.tables:
                nn.init.normal_(table.weight, mean=0.0, std=0.02)
                table.weight[self.vocab_size :].zero_()
            self.scales.fill_(1.0)

    def forward(self, idx: torch.Tensor) -> list[torch.Tensor | None]:
        """Per layer: s * ve (B, T, C) to add to its values, or None. Each table is looked up once."""
        rows = [table(idx) for table in self.tables]
        out: list[torch.Tensor | None] = []
        fed = 0
        for t in self.layer_tables:
            if t is None:
                out.append(None)
            else:
                out.append(self.scales[fed] * rows[t])
                fed += 1
        return out


class Smear(nn.Module):
    """x_t + s * sigmoid(w . x_t[:12]) * x_{t-1} (see the module docstring): `gate` is w (12,), `scale` s (1,)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(SMEAR_CHANNELS))
        self.scale = nn.Parameter(torch.zeros(1))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gate.zero_()
            self.scale.zero_()

    def forward(self, x: torch.Tensor, before: torch.Tensor | None, position_ids: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) token embeddings; before (B, C): the embedding of the position before x[:, 0] (a KV
        cache's), None for none; position_ids (B or 1, T): positions with id 0 get nothing."""
        first = before.unsqueeze(1).to(x.dtype) if before is not None else torch.zeros_like(x[:, :1])
        prev = torch.cat([first, x[:, :-1]], dim=1)  # (B, T, C): each position's predecessor
        g = self.scale * torch.sigmoid(x[..., :SMEAR_CHANNELS] @ self.gate.to(x.dtype))  # (B, T)
        g = g * (position_ids > 0)
        return x + g.unsqueeze(-1) * prev


__all__ = ["Smear", "ValueEmbeddings", "value_embedding_layers"]
