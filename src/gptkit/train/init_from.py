"""`gptkit train --init-from CKPT`: start a new run from the weights of any gptkit checkpoint.

Unlike `--resume` (which continues a run: same run directory, optimizer state, schedule position and data
order), --init-from starts a fresh run (new RUN_DIR, fresh AdamW, schedule from step 0) whose model
config, weights and tokenizer are the checkpoint's: a training checkpoint, a `gptkit tokenizer extend`
output or an `import-hf` conversion. The data must be tokenized with that tokenizer: a text file or a
builtin corpus is tokenized with it; a prepare directory made with another tokenizer is refused.

`train.init_from` holds the path (the CLI flag sets it), so RUN_DIR/config.toml records where the run
started; a resumed run restores its own checkpoint and does not read the source again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptkit.checkpoint import WEIGHTS_FILE, load_model_config, load_state_checked
from gptkit.config import ModelConfig
from gptkit.errors import ConfigError
from gptkit.train.config import RunConfig

# Model settings a run from a checkpoint may still change: they do not change the weights' shapes or meaning.
CHANGEABLE_MODEL_SETTINGS = ("dropout",)


@dataclass
class InitSource:
    path: Path
    model_config: ModelConfig
    tokenizer: Any  # gptkit.Tokenizer


def read_init_source(path: str | Path) -> InitSource:
    """The checkpoint's model config and tokenizer, checked (weights are read later, by `load_init_weights`)."""
    from gptkit.tokenizer import Tokenizer, TokenizerError

    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"--init-from {path}: not a directory (expected a gptkit checkpoint directory)")
    config = load_model_config(path)
    if not (path / WEIGHTS_FILE).is_file():
        raise ConfigError(f"--init-from {path}: no {WEIGHTS_FILE}")
    try:
        tokenizer = Tokenizer.load(path)
    except TokenizerError as e:
        raise ConfigError(f"--init-from {path}: the checkpoint's tokenizer cannot be used ({e})") from None
    if tokenizer.vocab_size > config.vocab_size:
        raise ConfigError(
            f"--init-from {path}: the tokenizer has {tokenizer.vocab_size} tokens, the model only "
            f"{config.vocab_size} rows"
        )
    return InitSource(path, config, tokenizer)


def apply_init_from(cfg: RunConfig, source: InitSource) -> None:
    """Make `cfg` a run from `source`: its model config, its tokenizer for text data (in place).

    Refuses [model] settings that would change the model (all but CHANGEABLE_MODEL_SETTINGS) and a
    data.tokenizer other than auto or a directory holding the same tokenizer; a prepare directory
    given as data.path must have been made with the checkpoint's tokenizer.
    """
    where = f"--init-from {source.path}"
    given = {k: v for k, v in cfg.model.items() if k != "preset"}
    fixed = [k for k in given if k not in CHANGEABLE_MODEL_SETTINGS]
    if fixed:
        raise ConfigError(
            f"model.{fixed[0]}: fixed by {where} (the model is the checkpoint's; only "
            f"{', '.join('model.' + k for k in CHANGEABLE_MODEL_SETTINGS)} may be changed)"
        )
    cfg.model = {"preset": cfg.model.get("preset", "small"), **source.model_config.to_dict(), **given}
    fingerprint = source.tokenizer.fingerprint
    tok_setting = cfg.data.tokenizer
    if tok_setting == "auto":
        cfg.data.tokenizer = str(source.path)
    elif _tokenizer_fingerprint(Path(tok_setting)) != fingerprint:
        raise ConfigError(
            f"data.tokenizer: {tok_setting} is not the tokenizer of {where}; leave data.tokenizer unset to "
            "use the checkpoint's"
        )
    data = Path(cfg.data.path) if cfg.data.path and not cfg.data.path.startswith("builtin:") else None
    if data is not None and data.is_dir():
        from gptkit.train.data import open_data_dir

        check_init_data(source, open_data_dir(data).fingerprint, str(data))


def check_init_data(source: InitSource, shard_fingerprint: bytes, data_dir: str) -> None:
    """Refuse token shards made with another tokenizer than the checkpoint's."""
    if shard_fingerprint.hex() != source.tokenizer.fingerprint:
        raise ConfigError(
            f"data.path: {data_dir} was tokenized with another tokenizer than --init-from {source.path}; "
            f"prepare it with `gptkit prepare ... --tokenizer {source.path}`"
        )


def _tokenizer_fingerprint(directory: Path) -> str | None:
    from gptkit.tokenizer import Tokenizer

    return Tokenizer.load(directory).fingerprint if directory.is_dir() else None


def load_init_weights(model: Any, path: str | Path) -> None:
    """Copy the checkpoint's weights into `model` (a GPT built with the checkpoint's model config)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from gptkit.errors import CheckpointError

    weights = Path(path) / WEIGHTS_FILE
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights}: cannot be read as safetensors ({e})") from None
    load_state_checked(model, {k: v.float() for k, v in state.items()}, source=str(weights))
