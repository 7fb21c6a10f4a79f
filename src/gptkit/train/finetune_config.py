"""The settings of a fine-tuning run: [finetune] (what is fine-tuned on what) and [train] (the Trainer's
TrainConfig with the GPT-1 paper's fine-tuning defaults), read from TOML and `--set` overrides; RUN_DIR/config.toml
holds them resolved, which `--resume` reads back."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

from gptkit.config import _choice, dataclass_from_dict
from gptkit.errors import ConfigError
from gptkit.train.config import TrainConfig, _toml_value, read_config_tables
from gptkit.train.finetune_data import TASKS

TOKEN_INITS = ("mean", "random")
# The paper's fine-tuning settings (section 4.1): lr 6.25e-5, batch 32, linear decay to 0 with warmup over
# 0.2% of the steps, Adam (beta2 0.999), weight decay 0.01. max_steps and warmup_steps are derived from
# finetune.epochs and the data unless given.
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 6.25e-5,
    "batch_size": 32,
    "schedule": "linear",
    "min_lr": 0.0,
    "weight_decay": 0.01,
    "beta2": 0.999,
    "sample_tokens": 0,
    "log_interval": 10,
}
WARMUP_FRACTION = 0.002


@dataclass
class FinetuneConfig:
    """The [finetune] table: what is fine-tuned on what. TrainConfig ([train]) holds the optimisation."""

    base: str = ""  # the pretrained checkpoint directory
    data: str = ""  # training records: a JSONL file or builtin:zh-sentiment
    val: str = ""  # validation records ("" : builtin:zh-sentiment's val split for that data, else none)
    task: str = "auto"  # auto (from the fields) | classification | entailment | similarity | multiple_choice
    lm_weight: float = 0.5  # lambda of L3 = L2 + lambda L1
    epochs: float = 3.0
    clf_dropout: float = 0.1  # dropout on the extract token's state before the head
    dropout: float | None = None  # the GPT's dropout while fine-tuning; None: the base model's own
    token_init: str = "mean"  # new token rows: mean of the old embedding rows | random (N(0, 0.02))
    max_len: int | None = None  # longest row in tokens; None: the model's block_size
    # 0: batches are runs of a random permutation (the paper). K > 0: runs of K batches are sorted by length
    # (ClassifierTask.epoch_order), so rows of a batch are alike in length and padding costs little.
    sort_chunk: int = 0

    def validate(self) -> None:
        _choice("task", self.task, TASKS)
        _choice("token_init", self.token_init, TOKEN_INITS)
        if not (math.isfinite(self.lm_weight) and self.lm_weight >= 0):
            raise ConfigError(f"lm_weight: must be a finite number >= 0, got {self.lm_weight}")
        if not (math.isfinite(self.epochs) and self.epochs > 0):
            raise ConfigError(f"epochs: must be a positive number, got {self.epochs}")
        for name in ("clf_dropout", "dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ConfigError(f"{name}: must be in [0, 1), got {value}")
        if self.sort_chunk < 0:
            raise ConfigError(f"sort_chunk: must be at least 0, got {self.sort_chunk}")
        if self.max_len is not None and self.max_len < 4:
            raise ConfigError(f"max_len: must be at least 4 (the transform tokens need 3), got {self.max_len}")


@dataclass
class FinetuneRunConfig:
    """All settings of a fine-tuning run, as RUN_DIR/config.toml holds them (what --resume reads back)."""

    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    given_train: frozenset[str] = frozenset()  # [train] keys set explicitly (the others may be derived)

    def to_dict(self) -> dict[str, Any]:
        return {"finetune": dataclasses.asdict(self.finetune), "train": dataclasses.asdict(self.train)}

    def to_toml(self) -> str:
        out = ["# gptkit fine-tuning run: resolved settings (gptkit finetune classify --resume reads this file)"]
        for section, values in self.to_dict().items():
            out.append(f"\n[{section}]")
            for key, value in values.items():
                out.append(f"# {key} = (not set)" if value is None else f"{key} = {_toml_value(value)}")
        return "\n".join(out) + "\n"


def load_finetune_config(
    path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> FinetuneRunConfig:
    """The paper's defaults, then a TOML file with [finetune] and [train] tables, then --set overrides."""
    tables, where = read_config_tables(path, overrides)
    for section, table in tables.items():
        if section not in ("finetune", "train"):
            raise ConfigError(f"{where}{section}: unknown section (known: finetune, train)")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}{section}: expected a table of settings, got {table!r}")
    given = dict(tables.get("train", {}))
    return FinetuneRunConfig(
        finetune=dataclass_from_dict(FinetuneConfig, tables.get("finetune", {}), where=f"{where}finetune."),
        train=dataclass_from_dict(TrainConfig, {**TRAIN_DEFAULTS, **given}, where=f"{where}train."),
        given_train=frozenset(given),
    )


def derive_schedule(cfg: FinetuneRunConfig, n_records: int, world_size: int = 1) -> None:
    """max_steps from finetune.epochs, warmup over 0.2% of them, an evaluation and a checkpoint per epoch,
    each unless [train] sets it."""
    tc = cfg.train
    per_step = tc.batch_size * tc.grad_accum * world_size
    steps_per_epoch = max(1, math.ceil(n_records / per_step))
    derived = {
        "max_steps": max(1, math.ceil(cfg.finetune.epochs * n_records / per_step)),
        "eval_interval": steps_per_epoch,
        "checkpoint_interval": steps_per_epoch,
    }
    for key, value in derived.items():
        if key not in cfg.given_train:
            setattr(tc, key, value)
    if "warmup_steps" not in cfg.given_train:
        tc.warmup_steps = math.ceil(WARMUP_FRACTION * tc.max_steps)
    tc.validate()
