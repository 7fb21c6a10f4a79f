"""The checkpoint directory: `config.json` + `model.safetensors` (+ tokenizer files, training state).

config.json is one JSON object with a "format" marker and one section per concern ("model" here;
other modules add their own sections with `update_config_json`). Loading never unpickles: tensors
come from safetensors and metadata from JSON, and every mismatch is an error naming the tensor or field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gptkit.config import ModelConfig
from gptkit.errors import CheckpointError, ConfigError
from gptkit.files import atomic_write_bytes
from gptkit.model import GPT

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_NAME = "gptkit"
FORMAT_VERSION = 1
# Fields a checkpoint's "model" section must give: the shape of its tensors (the others have safe defaults).
SHAPE_FIELDS = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")


def read_config_json(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(ckpt_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found (is {ckpt_dir} a gptkit checkpoint directory?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise CheckpointError(f'{path}: not a gptkit config (expected "format": "{FORMAT_NAME}")')
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {data.get('format_version')!r} is not supported (this gptkit reads "
            f"{FORMAT_VERSION})"
        )
    return data


def update_config_json(ckpt_dir: str | os.PathLike, sections: Mapping[str, Any]) -> None:
    """Set top-level sections of config.json, keeping the others (creating the file if needed)."""
    path = Path(ckpt_dir) / CONFIG_FILE
    data = read_config_json(ckpt_dir) if path.exists() else {}
    data.update({"format": FORMAT_NAME, "format_version": FORMAT_VERSION})
    data.update(sections)
    atomic_write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def model_state_for_saving(model: GPT) -> dict[str, torch.Tensor]:
    """The model's tensors, a tied LM head stored once (as wte.weight), contiguous and detached."""
    state = model.state_dict()
    if model.config.tie_embeddings:
        state.pop("lm_head.weight")
    return {k: v.detach().contiguous() for k, v in state.items()}


def save_model(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Write `model`'s config and weights into directory `path` (created if needed); returns the path."""
    model = unwrap_model(model)
    if not isinstance(model, GPT):
        raise TypeError(f"save_model expects a gptkit GPT, got {type(model).__name__}")
    return save_model_state(model.config, model_state_for_saving(model), path)


def save_model_state(config: ModelConfig, state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write `config` and a full state dict (e.g. one gathered from FSDP shards) as `save_model` does."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    if config.tie_embeddings:
        state.pop("lm_head.weight", None)  # stored once, as wte.weight
    tmp = path / f".{WEIGHTS_FILE}.tmp"
    save_file(state, str(tmp), metadata={"format": "pt", "producer": "gptkit"})
    os.replace(tmp, path / WEIGHTS_FILE)
    update_config_json(path, {"model": config.to_dict()})
    return path


def load_model_config(path: str | os.PathLike) -> ModelConfig:
    data = read_config_json(path)
    if "model" not in data:
        raise CheckpointError(f'{Path(path) / CONFIG_FILE}: has no "model" section')
    if isinstance(data["model"], dict):
        for name in SHAPE_FIELDS:
            if name not in data["model"]:
                raise CheckpointError(
                    f"{Path(path) / CONFIG_FILE}: model.{name}: missing (a checkpoint must give its model's shape; "
                    "a default would not fit its tensors)"
                )
    try:
        return ModelConfig.from_dict(data["model"], where=f"{Path(path) / CONFIG_FILE}: model.")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def load_model(
    path: str | os.PathLike,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> GPT:
    """Load a gptkit checkpoint directory into a GPT in eval mode."""
    path = Path(path)
    config = load_model_config(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights}: not found")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights}: cannot be read as safetensors ({e})") from None
    with torch.device("meta"):
        model = GPT(config)
    model.to_empty(device=device)
    load_state_checked(model, state, source=str(weights))
    model.reset_buffers()
    if dtype is not None:
        model.to(dtype=dtype)
    return model.eval()


def load_state_checked(model: GPT, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy `state` into `model`, refusing any missing, unknown or wrongly shaped tensor by name."""
    expected = model_state_for_saving(model)
    missing = [k for k in expected if k not in state]
    unknown = [k for k in state if k not in expected]
    if missing:
        raise CheckpointError(f"{source}: missing tensor {missing[0]!r}" + _more(missing))
    if unknown:
        raise CheckpointError(f"{source}: unknown tensor {unknown[0]!r}" + _more(unknown))
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"{source}: tensor {name!r} has shape {tuple(tensor.shape)}, the config needs "
                f"{tuple(expected[name].shape)}"
            )
        if not tensor.is_floating_point():
            raise CheckpointError(f"{source}: tensor {name!r} has dtype {tensor.dtype}, expected floating point")
    params = dict(model.named_parameters(remove_duplicate=False))
    params.update(dict(model.named_buffers()))
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor)
    if model.config.tie_embeddings:
        model.lm_head.weight = model.wte.weight


def _more(names: list[str]) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP (`.module`) or torch.compile (`._orig_mod`) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(getattr(model, "module", None), torch.nn.Module):
            model = model.module
        else:
            return model
