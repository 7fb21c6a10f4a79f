"""What `gptkit train --resume` may change, and which checkpoint it continues from.

A resumed run continues the weights, optimizer moments and data position of one checkpoint, so the settings
those depend on are fixed; the rest is the user's to change:

    fixed        model.* (the shape of the weights; model.dropout and model.attention excepted), data.* (path,
                 tokenizer, split and sampling: the token stream), the global batch (train.batch_size x
                 train.grad_accum x processes: how many windows one step draws) and train.seed (the data order
                 and the dropout replay); how the global batch is split over processes and micro-batches may
                 change (a 2-rank run with batch 2 continues in one process with batch 4)
    may change   train.max_steps (upward: above the checkpoint's step), the lr schedule (lr, min_lr, warmup_steps,
                 decay_steps, schedule), optimizer constants, eval / log / checkpoint intervals and how many to
                 keep, device, dtype, compile, threads, samples, tensorboard, model.dropout, model.attention

Every refusal happens before anything in RUN_DIR is written.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from gptkit.errors import CheckpointError, ConfigError
from gptkit.train import checkpoint as ckpt
from gptkit.train.config import RunConfig, build_run_config

MODEL_MAY_CHANGE = ("dropout", "attention")
TRAIN_FIXED = ("seed",)
FIXED_SUMMARY = (
    "fixed on resume: model shape, data.*, the global batch (batch_size x grad_accum x processes), train.seed; "
    "train.max_steps may only grow"
)


def resolve_run_paths(cfg: RunConfig) -> None:
    """Make data.path, a data.tokenizer directory and train.init_from absolute (in place), so that `--resume`
    from another working directory finds them. builtin:NAME, the tokenizer kinds (auto, char, bpe:N) and paths
    that do not exist (the error about them names them as given) stay as they are."""
    data = cfg.data
    if data.path and not data.path.startswith("builtin:") and os.path.exists(data.path):
        data.path = os.path.abspath(data.path)
    if data.tokenizer not in ("auto", "char") and os.path.isdir(data.tokenizer):
        data.tokenizer = os.path.abspath(data.tokenizer)
    init_from = getattr(cfg.train, "init_from", None)  # a checkpoint directory (train --init-from)
    if init_from and os.path.exists(init_from):
        cfg.train.init_from = os.path.abspath(init_from)


def checkpoint_run_config(path: Path) -> RunConfig | None:
    """The settings a training checkpoint was saved with (config.json "training"."config"), or None if it has none."""
    from gptkit.checkpoint import CONFIG_FILE, read_config_json

    try:
        tables = read_config_json(path).get("training", {}).get("config")
    except CheckpointError:
        return None
    if not isinstance(tables, dict):
        return None
    try:
        return build_run_config(tables, where=f"{path / CONFIG_FILE}: training.config: ")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def _same_path(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith("builtin:") or b.startswith("builtin:"):
        return False
    return os.path.realpath(a) == os.path.realpath(b)


def check_resume_settings(saved: RunConfig, new: RunConfig, source: Path) -> None:
    """Refuse a change of any setting the checkpoint at `source` fixes, naming it with both values."""

    def refuse(name: str, was: object, asked: object) -> None:
        raise ConfigError(
            f"{name}: the run in {source.parent.parent} was trained with {was!r}, this resume asks for {asked!r}; "
            f"{FIXED_SUMMARY} (start a new --out to train with other settings)"
        )

    was_model = saved.model_config()
    asked_model = new.model_config(vocab_size=was_model.vocab_size)
    for f in dataclasses.fields(was_model):
        if f.name not in MODEL_MAY_CHANGE and getattr(was_model, f.name) != getattr(asked_model, f.name):
            refuse(f"model.{f.name}", getattr(was_model, f.name), getattr(asked_model, f.name))
    for f in dataclasses.fields(saved.data):
        was, asked = getattr(saved.data, f.name), getattr(new.data, f.name)
        same = _same_path(was, asked) if f.name in ("path", "tokenizer") else was == asked
        if not same:
            refuse(f"data.{f.name}", was, asked)
    for name in TRAIN_FIXED:
        was, asked = getattr(saved.train, name), getattr(new.train, name)
        if was != asked:
            refuse(f"train.{name}", was, asked)


def check_global_batch(new: RunConfig, world_size: int, state: ckpt.TrainingState, source: Path) -> None:
    """Refuse a resume whose steps would draw another number of windows than the checkpoint's steps did."""
    saved = state.trainer.get("loader", {}).get("global_batch")
    asked = new.train.batch_size * new.train.grad_accum * world_size
    if saved is not None and saved != asked:
        raise ConfigError(
            f"train.batch_size: the run in {source.parent.parent} drew {saved} windows per step, this resume asks "
            f"for {asked} (batch_size {new.train.batch_size} x grad_accum {new.train.grad_accum} x {world_size} "
            f"process(es)); {FIXED_SUMMARY} (start a new --out to train with other settings)"
        )


def check_max_steps(new: RunConfig, step: int, source: Path) -> None:
    if new.train.max_steps <= step:
        if new.train.max_steps == step:
            why = f"the run is already at train.max_steps={step}"
        else:
            why = f"{new.train.max_steps} is below the step of the checkpoint"
        raise ConfigError(
            f"train.max_steps: {why} ({source}: step {step}); to train on, "
            f"--resume --set train.max_steps=N with N > {step}"
        )


def choose_checkpoint(run_dir: Path, resume_from: str | os.PathLike | None) -> Path:
    """The checkpoint to continue: `resume_from` (which must be one of RUN_DIR's) or the newest complete one."""
    found = [path for _, path in ckpt.list_checkpoints(run_dir)]
    if resume_from is None:
        if not found:
            raise CheckpointError(f"{run_dir}: no complete checkpoint to resume from (in {ckpt.CHECKPOINTS}/)")
        return found[-1]
    wanted = Path(resume_from)
    for path in found:
        if wanted.exists() and os.path.samefile(wanted, path):
            return path
    listed = ", ".join(p.name for p in found) or "none"
    raise CheckpointError(
        f"--resume-from {resume_from}: not a complete checkpoint of {run_dir} (its checkpoints: {listed}); "
        "to start a new run from other weights, use a new --out"
    )


def load_resume_state(run_dir: Path, path: Path, explicit: bool) -> ckpt.TrainingState:
    """Load checkpoint `path`; if it is damaged, name the newest older checkpoint that loads, for --resume-from."""
    try:
        return ckpt.load_checkpoint(path)
    except CheckpointError as e:
        if explicit:
            raise
        older = [p for step, p in ckpt.list_checkpoints(run_dir) if p != path and step < _step(path)]
        for candidate in reversed(older):
            try:
                ckpt.load_checkpoint(candidate)
            except CheckpointError:
                continue
            raise CheckpointError(
                f"{e}; the newest checkpoint is damaged, the older {candidate} loads: continue from it with "
                f"`gptkit train --out {run_dir} --resume-from {candidate}`"
            ) from None
        raise CheckpointError(f"{e}; no older checkpoint of {run_dir} loads either") from None


def _step(path: Path) -> int:
    return int(path.name.removeprefix("step_"))
