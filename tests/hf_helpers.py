"""Tiny random-weight HF GPT-2 models built locally (nothing is downloaded)."""

from __future__ import annotations

import pytest
import torch


def tiny_hf_gpt2(vocab_size: int = 1000, n_positions: int = 64, **overrides):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=vocab_size - 1,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        **overrides,
    )
    model = transformers.GPT2LMHeadModel(cfg)
    with torch.no_grad():  # LayerNorms and biases random too, so a mapping mistake cannot hide
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.2 if "ln" in name else 0.05))
    return model.eval()
