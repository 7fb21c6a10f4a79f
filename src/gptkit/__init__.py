"""gptkit: raw text to a working GPT.

Python API (the CLI calls the same functions):
    gptkit.load_model(path) -> GPT (eval mode); gptkit.save_model(model, path)
    gptkit.GPT(ModelConfig(...)), gptkit.preset("gpt2")
    gptkit.Tokenizer.train(paths_or_texts, vocab_size), gptkit.Tokenizer.load(path)
    gptkit.generate(model, [token_ids], max_new_tokens=..., strategy=...) -> new token ids per prompt
    gptkit.Generator.load(ckpt_dir).complete(text) / .stream(text)
"""

from gptkit.checkpoint import load_model, save_model
from gptkit.config import PRESETS, ModelConfig, preset
from gptkit.errors import CheckpointError, ConfigError, GptkitError, InteropError
from gptkit.generate import GenerationError, Generator  # gptkit.generate itself is callable: generate(...)
from gptkit.model import GPT, KVCache
from gptkit.tokenizer import Tokenizer, TokenizerError

__version__ = "0.1.0"

__all__ = [
    "GPT",
    "PRESETS",
    "CheckpointError",
    "ConfigError",
    "GenerationError",
    "Generator",
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
