"""Chat supervised fine-tuning (`gptkit finetune chat`): a Task for the Trainer over packed conversations.

The rows and the loss are gptkit.train.chat_packing's. Batches are a pure function of (seed, step, micro,
rank): epoch e's rows come from packing the training conversations in the order of a permutation seeded by
(seed, e), and global row g of the run is row g mod R of epoch g div R (R: the rows of epoch 0). Every
VAL_EVERY-th conversation of the data validates and is never trained on. The checkpoint is a normal model
directory whose config.json also has a "chat" section: the base checkpoint, its tokenizer's fingerprint,
the data and the template.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gptkit.checkpoint import load_model, read_config_json, save_model_state, update_config_json
from gptkit.config import dataclass_from_dict
from gptkit.data.conversations import load_conversations
from gptkit.errors import ConfigError
from gptkit.tokenizer import Tokenizer
from gptkit.tokenizer.chat_template import CHAT_TEMPLATE, chat_token_ids
from gptkit.train.chat_packing import chat_loss, make_batch, pack_rows, render_conversations
from gptkit.train.config import TrainConfig, read_config_tables
from gptkit.train.task import Batch, Task

VAL_EVERY = 20  # conversation i of the training data validates (and is not trained on) when i % 20 == 19
CHAT_SECTION = "chat"  # config.json section of a chat model: base, tokenizer, data, template


@dataclass
class ChatSFTConfig:
    """`gptkit finetune chat` settings: [chat] base / data, and the usual [train] table."""

    base: str = ""  # checkpoint directory of the base model (its tokenizer comes with it)
    data: str = "builtin:zh-chat"  # builtin:zh-chat | builtin:en-chat | FILE.jsonl
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            lr=3e-4, warmup_steps=20, max_steps=500, batch_size=8, eval_interval=100, checkpoint_interval=100,
            eval_steps=10, sample_tokens=0, weight_decay=0.0,
        )
    )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"chat": {"base": self.base, "data": self.data}, "train": dataclasses.asdict(self.train)}

    def to_toml(self) -> str:
        from gptkit.train.config import _toml_value

        out = ["# gptkit finetune chat: resolved settings (--resume reads this file)"]
        for section, values in self.to_dict().items():
            out.append(f"\n[{section}]")
            out += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
        return "\n".join(out) + "\n"

    @classmethod
    def from_tables(cls, tables: dict[str, Any], where: str = "") -> ChatSFTConfig:
        for section in tables:
            if section not in ("chat", "train"):
                raise ConfigError(f"{where}{section}: unknown section (known: chat, train)")
        chat = dict(tables.get("chat", {}))
        for key, value in chat.items():
            if key not in ("base", "data"):
                raise ConfigError(f"{where}chat.{key}: unknown setting (known: base, data)")
            if not isinstance(value, str):
                raise ConfigError(f"{where}chat.{key}: expected a string, got {value!r}")
        train = dataclasses.asdict(cls().train)
        train.update(tables.get("train", {}))
        cfg = cls(**chat, train=dataclass_from_dict(TrainConfig, train, where=f"{where}train."))
        if not cfg.base:
            raise ConfigError(f"{where}chat.base: no base model given (--base CKPT)")
        return cfg


def load_chat_config(path: str | os.PathLike | None, overrides: list[str]) -> ChatSFTConfig:
    """Defaults, then the TOML file (if any), then `--set section.key=value` overrides, validated together."""
    tables, where = read_config_tables(path, overrides)
    return ChatSFTConfig.from_tables(tables, where=where)


class ChatSFTTask(Task):
    """Chat SFT of a base checkpoint on conversations (see the module docstring)."""

    resume_hint = "gptkit finetune chat --out {run_dir} --resume"

    def __init__(self, cfg: ChatSFTConfig, *, rank: int = 0, world_size: int = 1, log=print) -> None:
        self.cfg = cfg
        self.base = Path(cfg.base)
        base_config = read_config_json(self.base)  # an error naming the file if it is not a checkpoint
        self.tokenizer = Tokenizer.load(self.base)
        chat_token_ids(self.tokenizer)  # the reserved tokens must be there
        self.tokenizer.chat_template = CHAT_TEMPLATE  # the checkpoints are chat models
        self._base_model = load_model(self.base)
        self.model_config = self._base_model.config
        self.block_size = self.model_config.block_size
        self.rank, self.world_size = rank, world_size
        tc = cfg.train
        conversations = load_conversations(cfg.data, "train")
        train = [c for i, c in enumerate(conversations) if i % VAL_EVERY != VAL_EVERY - 1]
        val = [c for i, c in enumerate(conversations) if i % VAL_EVERY == VAL_EVERY - 1]
        self.train_chats = render_conversations(self.tokenizer, train, self.block_size)
        self.val_chats = render_conversations(self.tokenizer, val, self.block_size)
        cut = sum(len(c.ids) == self.block_size + 1 for c in self.train_chats)
        log(
            f"chat data {cfg.data}: {len(train):,} training and {len(val):,} validation conversations, "
            f"{sum(len(c.ids) for c in self.train_chats):,} training tokens"
            + (f"; {cut} longer than block_size {self.block_size} are cut" if cut else "")
        )
        self.tokens_per_step = tc.batch_size * tc.grad_accum * world_size * self.block_size
        if not self.train_chats:
            raise ConfigError(f"chat.data: {cfg.data} leaves no training conversations")
        self._epochs: dict[int, list[list[int]]] = {}
        self.rows_per_epoch = len(self._epoch_rows(0))
        self.step = 0
        self.base_info = {
            "base": str(self.base.resolve()),
            "base_training": base_config.get("training", {}).get("step"),
            "tokenizer_fingerprint": self.tokenizer.fingerprint,
            "data": cfg.data,
            "template": "chatml",
        }

    def _epoch_rows(self, epoch: int) -> list[list[int]]:
        """The packed rows of epoch `epoch` (the last two epochs' packings are kept)."""
        if epoch not in self._epochs:
            order = np.random.default_rng([self.cfg.train.seed, epoch]).permutation(len(self.train_chats))
            self._epochs = {e: r for e, r in self._epochs.items() if e >= epoch - 1}
            self._epochs[epoch] = pack_rows(self.train_chats, order, self.block_size)
        return self._epochs[epoch]

    def batch(self, step: int, micro: int) -> Batch:
        """Global rows g .. g + B - 1 of the run; an epoch is as many rows as epoch 0 packed into (another
        epoch's packing may differ by a row or two: its rows are then reused from its start)."""
        tc = self.cfg.train
        first = ((step * tc.grad_accum + micro) * self.world_size + self.rank) * tc.batch_size
        rows = []
        for g in range(first, first + tc.batch_size):
            epoch, r = divmod(g, self.rows_per_epoch)
            epoch_rows = self._epoch_rows(epoch)
            rows.append(epoch_rows[r % len(epoch_rows)])
        return make_batch(self.train_chats, rows, self.block_size, self.tokenizer.eot_id)

    def val_batches(self, eval_steps: int) -> list[Batch]:
        rows = pack_rows(self.val_chats, range(len(self.val_chats)), self.block_size)
        B = self.cfg.train.batch_size
        rows = rows[self.rank :: self.world_size]
        return [
            make_batch(self.val_chats, rows[i : i + B], self.block_size, self.tokenizer.eot_id)
            for i in range(0, min(len(rows), eval_steps * B), B)
        ]

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return chat_loss(model, batch)

    def build_model(self) -> nn.Module:
        model, self._base_model = self._base_model, None
        return model if model is not None else load_model(self.base)

    def write_model(self, model_state: dict[str, torch.Tensor], directory: Path) -> None:
        save_model_state(self.model_config, model_state, directory)
        self.tokenizer.save(directory)
        update_config_json(directory, {CHAT_SECTION: self.base_info})

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "data": self.cfg.data, "n_train": len(self.train_chats)}

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        from gptkit.errors import CheckpointError

        if state.get("data") != self.cfg.data or state.get("n_train") != len(self.train_chats):
            raise CheckpointError(
                f"{source}: the run was trained on {state.get('data')!r} ({state.get('n_train')} conversations), "
                f"not on {self.cfg.data!r} ({len(self.train_chats)}): resume with the same data"
            )
        self.step = int(state.get("step", 0))

    def advance(self, step: int) -> None:
        self.step = step


def finetune_chat(cfg: ChatSFTConfig, run_dir: str | os.PathLike, *, resume: bool = False, quiet: bool = False):
    """Run chat SFT per `cfg` into `run_dir` (checkpoints under RUN_DIR/checkpoints, like `gptkit train`)."""
    from gptkit.train.trainer import train

    def log(message: str) -> None:
        if not quiet:
            print(message, flush=True)

    dist_rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    task = ChatSFTTask(cfg, rank=dist_rank, world_size=world, log=log if dist_rank == 0 else (lambda m: None))
    return train(cfg, run_dir, resume=resume, task=task, quiet=quiet)


__all__ = ["ChatSFTConfig", "ChatSFTTask", "finetune_chat", "load_chat_config"]
