"""Tiny chat checkpoints for the chat tests (random or briefly trained; CPU, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gptkit import GPT, ModelConfig, Tokenizer, save_model
from gptkit.tokenizer.chat_template import CHAT_TEMPLATE

CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 ?!.,\n你好是的"

CONVERSATIONS = [
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"}],
    [{"role": "user", "content": "how are you?"}, {"role": "assistant", "content": "fine, thanks."}],
    [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好是的"}],
    [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "a b c"},
        {"role": "assistant", "content": "d e f"},
        {"role": "user", "content": "more?"},
        {"role": "assistant", "content": "g h"},
    ],
]


def tiny_checkpoint(path: Path, *, chat: bool, block_size: int = 128, seed: int = 0) -> Path:
    """A random 2-layer GPT with a char tokenizer; `chat` gives its tokenizer the chat template."""
    tok = Tokenizer.train([CHARS], vocab_size=None, kind="char")
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=32))
    save_model(model, path)
    tok.save(path)
    return path


def write_conversations(path: Path, conversations=CONVERSATIONS, repeat: int = 10) -> Path:
    path.write_text(
        "".join(json.dumps({"messages": c}, ensure_ascii=False) + "\n" for c in conversations * repeat),
        encoding="utf-8",
    )
    return path
