"""gptkit: raw text to a working GPT.

Python API (the CLI calls the same functions):
    gptkit.load_model(path) -> GPT (eval mode); gptkit.save_model(model, path)
    gptkit.GPT(ModelConfig(...)), gptkit.preset("gpt2")
    gptkit.Tokenizer.train(paths_or_texts, vocab_size), gptkit.Tokenizer.load(path)
"""

from gptkit.checkpoint import load_model, save_model
from gptkit.config import PRESETS, ModelConfig, preset
from gptkit.errors import CheckpointError, ConfigError, GptkitError, InteropError
from gptkit.model import GPT, KVCache
from gptkit.tokenizer import Tokenizer, TokenizerError

__version__ = "0.1.0"

__all__ = [
    "GPT",
    "PRESETS",
    "CheckpointError",
    "ConfigError",
    "GptkitError",
    "InteropError",
    "KVCache",
    "ModelConfig",
    "Tokenizer",
    "TokenizerError",
    "load_model",
    "preset",
    "save_model",
]
