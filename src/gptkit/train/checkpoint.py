"""Resumable training checkpoints: RUN_DIR/checkpoints/step_NNNNNNN/, each a complete model directory plus
the state a run needs to continue exactly.

    config.json           the model checkpoint's (gptkit.checkpoint) with a "training" section added
    model.safetensors     weights (gptkit.load_model reads the directory as any checkpoint)
    tokenizer files       when the run has a tokenizer
    optimizer.safetensors AdamW moments and step counts, keyed "PARAM_NAME/exp_avg" etc. (full, unsharded)
    trainer_state.json    step, loader position, optimizer hyperparameters, grad-scaler state, val losses

A checkpoint is written into `.tmp-step_N` and renamed into place; trainer_state.json is the last file
written, so a directory named step_N that has it is complete, and anything else is ignored (and cleaned).
Random state needs no saving: the trainer reseeds from (seed, rank, step) at every step.
Loading never unpickles: tensors come from safetensors, everything else from JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gptkit.checkpoint import save_model_state, update_config_json
from gptkit.config import ModelConfig
from gptkit.errors import CheckpointError
from gptkit.files import atomic_write_bytes

CHECKPOINTS = "checkpoints"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class TrainingState:
    """What a checkpoint restores besides the weights."""

    model_state: dict[str, torch.Tensor]  # full state dict, names as GPT.state_dict() (no tied lm_head)
    optimizer_state: dict[str, Any]  # torch's "full state dict" form, keyed by parameter names
    trainer: dict[str, Any]  # trainer_state.json


def step_dir_name(step: int) -> str:
    return f"step_{step:07d}"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first, as (step, path)."""
    root = Path(run_dir) / CHECKPOINTS
    found = []
    if root.is_dir():
        for path in root.iterdir():
            m = _STEP_DIR.match(path.name)
            if m and (path / STATE_FILE).is_file():
                found.append((int(m.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def remove_incomplete(run_dir: str | os.PathLike) -> list[Path]:
    """Delete leftovers of checkpoints interrupted while being written; returns what was removed."""
    root = Path(run_dir) / CHECKPOINTS
    removed = []
    if root.is_dir():
        for path in root.iterdir():
            if path.name.startswith(".tmp-") or (_STEP_DIR.match(path.name) and not (path / STATE_FILE).exists()):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _flatten_optimizer(osd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Torch's full optimizer state dict -> (tensors for safetensors, the JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for name, entry in osd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(name, {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in osd["param_groups"]]
    return tensors, {"param_groups": groups, "scalar_state": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        name, _, field = key.rpartition("/")
        state.setdefault(name, {})[field] = value
    for name, entries in meta.get("scalar_state", {}).items():
        state.setdefault(name, {}).update(entries)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    *,
    model_config: ModelConfig,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    trainer: dict[str, Any],
    training_section: dict[str, Any],
    tokenizer: Any = None,
    write_model: Callable[[dict[str, torch.Tensor], Path], None] | None = None,
) -> Path:
    """Write checkpoint `step` atomically and return its path (an existing one for that step is replaced).

    `write_model(model_state, directory)` writes the model files instead of the plain GPT + tokenizer
    (a fine-tuned model adds its head and label set)."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    if write_model is not None:
        write_model(model_state, tmp)
    else:
        save_model_state(model_config, model_state, tmp)
        if tokenizer is not None:
            tokenizer.save(tmp)
    update_config_json(tmp, {"training": training_section})
    tensors, meta = _flatten_optimizer(optimizer_state)
    save_file(tensors, str(tmp / OPTIMIZER_FILE), metadata={"producer": "gptkit"})
    state = {**trainer, "step": step, "optimizer": meta}
    atomic_write_bytes(tmp / STATE_FILE, (json.dumps(state, indent=1) + "\n").encode("utf-8"))
    _fsync_dir(tmp)
    if final.exists():  # re-saving a step (e.g. interrupted right after resuming): swap, then delete the old
        old = root / f".tmp-old-{final.name}-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)
    _fsync_dir(root)
    return final


def load_checkpoint(path: str | os.PathLike) -> TrainingState:
    """Read a checkpoint written by `save_checkpoint`; every problem names the file."""
    path = Path(path)
    state_path = path / STATE_FILE
    try:
        trainer = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{state_path}: not found (not a resumable checkpoint)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{state_path}: not valid JSON ({e})") from None
    tensors = {}
    for name in ("model.safetensors", OPTIMIZER_FILE):
        try:
            tensors[name] = load_file(str(path / name), device="cpu")
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path / name}: cannot be read as safetensors ({e})") from None
    if "optimizer" not in trainer or "step" not in trainer:
        raise CheckpointError(f"{state_path}: missing 'step' or 'optimizer'")
    return TrainingState(
        model_state=tensors["model.safetensors"],
        optimizer_state=_unflatten_optimizer(tensors[OPTIMIZER_FILE], trainer["optimizer"]),
        trainer=trainer,
    )


def prune_checkpoints(run_dir: str | os.PathLike, keep_last: int) -> Path | None:
    """Keep the newest `keep_last` checkpoints and the one with the lowest val loss; return that best one.

    Also points RUN_DIR/latest and RUN_DIR/best (relative symlinks) at the newest and the best checkpoint.
    """
    found = list_checkpoints(run_dir)
    best: tuple[float, Path] | None = None
    for _, path in found:
        val = _val_loss(path)
        if val is not None and (best is None or val < best[0]):
            best = (val, path)
    keep = {p for _, p in found[-keep_last:]}
    if best is not None:
        keep.add(best[1])
    for _, path in found:
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)
    if found:
        _point(Path(run_dir) / "latest", found[-1][1])
    if best is not None:
        _point(Path(run_dir) / "best", best[1])
    return best[1] if best else None


def _val_loss(path: Path) -> float | None:
    try:
        value = json.loads((path / STATE_FILE).read_text(encoding="utf-8")).get("val_loss")
    except (OSError, json.JSONDecodeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _point(link: Path, target: Path) -> None:
    """Make `link` a relative symlink to `target`, replacing any old one atomically."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
