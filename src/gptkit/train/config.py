"""The settings of a training run: three sections, `model`, `train` and `data`, read from a TOML file and
`--set section.key=value` overrides, and validated (an unknown key or a bad value is an error naming it).

    [model]   preset = "small" plus any ModelConfig field (n_layer, n_embd, block_size, dropout, bias, ...);
              vocab_size defaults to the tokenizer's.
    [train]   TrainConfig below: optimizer, schedule, batch, eval, checkpoints, device and precision.
    [data]    DataConfig below: how a plain text file is tokenized and split, how batches are drawn.

The resolved settings are written to RUN_DIR/config.toml, which `--resume` reads back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gptkit.config import PRESETS, ModelConfig, _choice, dataclass_from_dict
from gptkit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCHEDULES = ("cosine", "linear", "constant", "wsd")
COOLDOWN_SHAPES = ("linear", "1-sqrt")
OPTIMIZERS = ("adamw", "muon")
CLOCKS = ("wall", "cpu")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
PARALLEL = ("ddp", "fsdp")
SAMPLING = ("random", "document")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainConfig:
    """Optimizer, schedule and loop settings. Steps count optimizer updates."""

    batch_size: int = 12  # sequences per micro-batch on each process
    grad_accum: int = 1  # micro-batches per optimizer step (each process)
    max_steps: int = 2000
    lr: float = 1e-3  # peak learning rate, reached after warmup
    min_lr: float | None = None  # floor of the decay; None: lr / 10
    warmup_steps: int = 100  # linear warmup from lr / (warmup_steps + 1)
    decay_steps: int | None = None  # step at which the decay reaches min_lr; None: max_steps
    schedule: str = "cosine"  # cosine | linear | constant | wsd (warmup-stable-decay) (after warmup)
    cooldown_fraction: float = 0.2  # wsd: the last fraction of the run decays to min_lr ...
    # ... along a straight line, or "1-sqrt": 1 - sqrt(x) of the way x through the cooldown (Hägele et al. 2024,
    # "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations": below linear at equal length)
    cooldown_shape: str = "linear"
    # Stop after this many seconds of the loop (0: no budget; max_steps still caps the steps). With a budget
    # the schedule runs over the time: its decay reaches min_lr when the budget is spent, however fast the
    # machine is. Clock "wall" (the user's time) or "cpu" (this process's CPU seconds: fair on a busy machine).
    time_budget_s: float = 0.0
    time_budget_clock: str = "wall"
    # > 0: a new run's max_steps becomes the number of its own steps that take the time of this many steps of a
    # fixed float32 reference workload (nanoGPT's CPU shakespeare_char model and batch), from the two steps timed
    # in turn before the loop (gptkit.train.budget.paired_step_times), and is saved as such, so --resume keeps
    # it. A budget that follows the machine's speed instead of the seconds of the machine it was tuned on. CPU
    # only; not with time_budget_s on a new run.
    time_budget_ref_steps: int = 0
    optimizer: str = "adamw"  # adamw | muon (Muon for the hidden matrices, AdamW for the rest)
    embedding_lr: float | None = None  # peak lr of the embeddings (and a tied head); None: lr
    head_lr: float | None = None  # peak lr of an untied LM head; None: lr
    muon_momentum: float = 0.95
    muon_ns_steps: int = 5  # Newton-Schulz iterations per Muon update (torch.optim.Muon's ns_steps)
    weight_decay: float = 0.1  # AdamW decay, applied to matrices (weights and embeddings) only
    embedding_weight_decay: float | None = None  # the embeddings' (and a tied head's) own decay; None: weight_decay
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global L2 norm of the gradients; 0 disables clipping
    eval_interval: int = 250  # steps between evaluations on the val split (0: only at the end)
    eval_steps: int = 20  # val batches per evaluation
    log_interval: int = 10  # steps between progress lines and metrics.jsonl records
    checkpoint_interval: int = 250  # steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 2  # the newest K checkpoints are kept, and the best by val loss
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda
    # auto: bfloat16 on CUDA and on CPUs with bfloat16 kernels, else float32 (gptkit.train.trainer.resolve_dtype)
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    compile: bool = False  # torch.compile the model
    compile_mode: str = "default"  # torch.compile mode: default | max-autotune-no-cudagraphs | max-autotune | ...
    # The training loss through gptkit.fused_loss: LM head + cross-entropy per chunk of rows, no (B, T, V)
    # logits tensor (same loss; pays on CPUs for a large vocabulary). Evaluation uses it too.
    chunked_loss: bool = False
    cpu_threads: int = 0  # torch.set_num_threads on the CPU (0: PyTorch's default, one per core)
    parallel: str = "ddp"  # under torchrun: ddp (replicate) | fsdp (FSDP2, shard parameters and optimizer)
    sample_tokens: int = 100  # tokens generated at each evaluation to show progress (0: none)
    sample_prompt: str = ""  # text the sample starts from ("" starts from <|endoftext|>)
    tensorboard: bool = False  # also write TensorBoard events to RUN_DIR/tensorboard
    init_from: str = ""  # a gptkit checkpoint whose model, weights and tokenizer start the run (train.init_from)

    def validate(self) -> None:
        for name in ("sample_tokens", "cpu_threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be at least 0, got {getattr(self, name)}")
        for name in ("batch_size", "grad_accum", "max_steps", "log_interval", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_interval", "eval_steps", "checkpoint_interval", "time_budget_ref_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be at least 0, got {getattr(self, name)}")
        if self.decay_steps is not None and self.decay_steps < 1:
            raise ConfigError(f"decay_steps: must be at least 1 or absent, got {self.decay_steps}")
        for name in ("lr", "weight_decay", "grad_clip", "eps", "time_budget_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name}: must be a finite number >= 0, got {value}")
        if self.lr == 0:
            raise ConfigError("lr: must be positive, got 0")
        if self.min_lr is not None and not (math.isfinite(self.min_lr) and 0 <= self.min_lr <= self.lr):
            raise ConfigError(f"min_lr: must be between 0 and lr={self.lr}, got {self.min_lr}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be in [0, 1), got {getattr(self, name)}")
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("cooldown_shape", self.cooldown_shape, COOLDOWN_SHAPES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("time_budget_clock", self.time_budget_clock, CLOCKS)
        if not 0 < self.cooldown_fraction <= 1:
            raise ConfigError(f"cooldown_fraction: must be in (0, 1], got {self.cooldown_fraction}")
        for name in ("embedding_lr", "head_lr"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name}: must be a positive number or absent, got {value}")
        ewd = self.embedding_weight_decay
        if ewd is not None and not (math.isfinite(ewd) and ewd >= 0):
            raise ConfigError(f"embedding_weight_decay: must be a finite number >= 0 or absent, got {ewd}")
        if not 1 <= self.muon_ns_steps < 100:
            raise ConfigError(f"muon_ns_steps: must be in [1, 100), got {self.muon_ns_steps}")
        if not 0 <= self.muon_momentum < 1:
            raise ConfigError(f"muon_momentum: must be in [0, 1), got {self.muon_momentum}")
        if self.optimizer == "muon" and self.dtype == "float16":
            raise ConfigError("optimizer: muon with dtype float16 (a grad scaler) is not supported; use bfloat16")
        _choice("device", self.device, DEVICES)
        _choice("dtype", self.dtype, DTYPES)
        _choice("parallel", self.parallel, PARALLEL)
        _choice("compile_mode", self.compile_mode, COMPILE_MODES)

    @property
    def resolved_min_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr

    @property
    def resolved_embedding_lr(self) -> float:
        return self.lr if self.embedding_lr is None else self.embedding_lr

    @property
    def resolved_embedding_weight_decay(self) -> float:
        return self.weight_decay if self.embedding_weight_decay is None else self.embedding_weight_decay

    @property
    def resolved_head_lr(self) -> float:
        return self.lr if self.head_lr is None else self.head_lr

    @property
    def resolved_decay_steps(self) -> int:
        return self.max_steps if self.decay_steps is None else self.decay_steps


@dataclass
class DataConfig:
    """Where batches come from. `path` is what --data named (a prepare output, builtin:NAME or a text file)."""

    path: str = ""
    # For a text file or builtin corpus: auto (char for a text file, bpe:8000 for a builtin corpus) | char |
    # bpe:N (train an N-token BPE) | a tokenizer directory. A prepare output brings its own tokenizer.
    tokenizer: str = "auto"
    val_fraction: float = 0.1  # text file only: the last fraction of the text validates (as nanoGPT)
    sampling: str = "random"  # random windows (nanoGPT) | document: windows that start at <|endoftext|>

    def tokenizer_for(self, builtin: bool) -> str:
        """data.tokenizer with "auto" resolved for a text file or a builtin corpus."""
        if self.tokenizer == "auto":
            return "bpe:8000" if builtin else "char"
        return self.tokenizer

    def validate(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction: must be in (0, 1), got {self.val_fraction}")
        _choice("sampling", self.sampling, SAMPLING)
        tok = self.tokenizer
        if tok.startswith("bpe:"):
            n = tok[4:]
            if not n.isdigit() or int(n) < 1:
                raise ConfigError(f"tokenizer: {tok!r}: bpe:N needs a positive vocabulary size N, e.g. bpe:8000")
        elif not tok:
            raise ConfigError("tokenizer: must be auto, char, bpe:N or a tokenizer directory, got ''")


@dataclass
class RunConfig:
    """All settings of a run. `model` holds the [model] table as given (preset name plus overrides)."""

    model: dict[str, Any] = field(default_factory=lambda: {"preset": "small"})
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def model_config(self, vocab_size: int | None = None) -> ModelConfig:
        """The ModelConfig of this run; `vocab_size` (the tokenizer's) fills model.vocab_size unless it is set.

        An explicit model.vocab_size must hold every token id of the data, so it may only be larger.
        """
        settings = dict(self.model)
        name = settings.pop("preset", "small")
        if vocab_size is not None:
            given = settings.get("vocab_size")
            if given is not None and given < vocab_size:
                raise ConfigError(f"model.vocab_size: {given} is smaller than the tokenizer's {vocab_size} tokens")
            settings.setdefault("vocab_size", vocab_size)
        base = PRESETS[name].settings
        return ModelConfig.from_dict({**base, **settings}, where="model.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "train": dataclasses.asdict(self.train),
            "data": dataclasses.asdict(self.data),
        }

    def to_toml(self) -> str:
        """The settings as TOML that `load_run_config` reads back to an equal RunConfig."""
        out = ["# gptkit training run: resolved settings (gptkit train --resume reads this file)"]
        for section, values in self.to_dict().items():
            out.append(f"\n[{section}]")
            for key, value in values.items():
                if value is None:  # TOML has no null: a derived setting is left out and shown as a comment
                    out.append(f"# {key} = {_derived(self, section, key)}")
                else:
                    out.append(f"{key} = {_toml_value(value)}")
        return "\n".join(out) + "\n"


def _derived(cfg: RunConfig, section: str, key: str) -> str:
    if section == "train" and key == "min_lr":
        return f"{_toml_value(cfg.train.resolved_min_lr)}  (not set: lr / 10)"
    if section == "train" and key in ("embedding_lr", "head_lr"):
        return "(not set: lr)"
    if section == "train" and key == "embedding_weight_decay":
        return "(not set: weight_decay)"
    if section == "train" and key == "decay_steps":
        return f"{cfg.train.resolved_decay_steps}  (not set: max_steps)"
    return "(not set)"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) as a TOML value")


def parse_override(text: str) -> tuple[str, str, Any]:
    """'section.key=value' -> (section, key, value); the value is read as TOML, else kept as a string.

    So `train.lr=3e-4` is a float, `train.compile=true` a bool, and `data.tokenizer=bpe:8000` a string.
    """
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. train.lr=3e-4")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set {text!r}: expected section.key=value with one dot, e.g. model.n_layer=4")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts[0], parts[1], value


def build_run_config(tables: dict[str, Any], where: str = "") -> RunConfig:
    """A validated RunConfig from {section: {key: value}}; errors name `where` and section.key."""
    known = ("model", "train", "data")
    for section, table in tables.items():
        if section not in known:
            raise ConfigError(f"{where}{section}: unknown section (known: {', '.join(known)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}{section}: expected a table of settings, got {table!r}")
    model = dict(tables.get("model", {}))
    name = model.get("preset", "small")
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"{where}model.preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    for key in model:
        if key != "preset" and key not in model_fields:
            raise ConfigError(f"{where}model.{key}: unknown setting (known: preset, {', '.join(sorted(model_fields))})")
    model["preset"] = name
    cfg = RunConfig(
        model=model,
        train=dataclass_from_dict(TrainConfig, tables.get("train", {}), where=f"{where}train."),
        data=dataclass_from_dict(DataConfig, tables.get("data", {}), where=f"{where}data."),
    )
    try:  # validate the model table now (vocab_size comes later, from the data)
        cfg.model_config(vocab_size=None)
    except ConfigError as e:
        raise ConfigError(f"{where}{e}") from None
    return cfg


def load_run_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults, then the TOML file at `path` (if any), then `--set` overrides, validated together."""
    tables, where = read_config_tables(path, overrides)
    return build_run_config(tables, where=where)


def read_config_tables(
    path: str | os.PathLike | None, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[dict[str, Any], str]:
    """The tables of the TOML file at `path` (none when None) with the `--set section.key=value` overrides
    applied, and the prefix that names the file in errors ("" without one). Every run kind's settings
    (pretraining, fine-tuning, chat SFT) are read this way, then validated by their own builder."""
    tables: dict[str, Any] = {}
    where = ""
    if path is not None:
        path = Path(path)
        where = f"{path}: "
        try:
            with open(path, "rb") as f:
                tables = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
    for text in overrides:
        section, key, value = parse_override(text)
        table = tables.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"--set {text!r}: {section} is not a section")
        table[key] = value
    return tables, where


__all__ = [
    "DataConfig",
    "RunConfig",
    "TrainConfig",
    "build_run_config",
    "load_run_config",
    "parse_override",
]
