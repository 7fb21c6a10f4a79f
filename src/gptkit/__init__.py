"""gptkit: raw text to a working GPT.

Python API (the CLI calls the same functions):
    gptkit.load_model(path) -> GPT (eval mode); gptkit.save_model(model, path)
    gptkit.GPT(ModelConfig(...)), gptkit.preset("gpt2")
    gptkit.Tokenizer.train(paths_or_texts, vocab_size), gptkit.Tokenizer.load(path)
    gptkit.generate(model, [token_ids], max_new_tokens=..., strategy=...) -> new token ids per prompt
    gptkit.Generator.load(ckpt_dir).complete(text) / .stream(text)
    gptkit.Classifier.load(finetuned_dir).predict(texts) -> [(label, {label: probability}), ...]

Names are imported on first use, so `import gptkit` (and every CLI command) starts without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gptkit.errors import CheckpointError, ConfigError, GptkitError, InteropError

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Classifier": "gptkit.classifier",
    "load_model": "gptkit.checkpoint",
    "save_model": "gptkit.checkpoint",
    "PRESETS": "gptkit.config",
    "ModelConfig": "gptkit.config",
    "preset": "gptkit.config",
    "GPT": "gptkit.model",
    "KVCache": "gptkit.model",
    "Tokenizer": "gptkit.tokenizer",
    "TokenizerError": "gptkit.tokenizer",
    "generate": "gptkit.generation.engine",
    "GenerationError": "gptkit.generation.engine",
    "Generator": "gptkit.generation.text",
}

__all__ = [
    "GPT",
    "PRESETS",
    "CheckpointError",
    "Classifier",
    "ConfigError",
    "GenerationError",
    "Generator",
    "GptkitError",
    "InteropError",
    "KVCache",
    "ModelConfig",
    "Tokenizer",
    "TokenizerError",
    "generate",
    "load_model",
    "preset",
    "save_model",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gptkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from gptkit.checkpoint import load_model, save_model
    from gptkit.classifier import Classifier
    from gptkit.config import PRESETS, ModelConfig, preset
    from gptkit.generation.engine import GenerationError, generate
    from gptkit.generation.text import Generator
    from gptkit.model import GPT, KVCache
    from gptkit.tokenizer import Tokenizer, TokenizerError
