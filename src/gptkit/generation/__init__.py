"""Generation: the token-level engine (`engine`), logits processors (`sampling`), and text in and out (`text`).

`gptkit.generate(model, prompts, ...)` is `gptkit.generation.engine.generate`.
"""

from gptkit.generation.engine import (
    GenerationError,
    GenerationSettings,
    TokenStream,
    generate,
    stream_generate,
)
from gptkit.generation.sampling import SamplingSettings
from gptkit.generation.text import Generator, StopStrings

__all__ = [
    "GenerationError",
    "GenerationSettings",
    "Generator",
    "SamplingSettings",
    "StopStrings",
    "TokenStream",
    "generate",
    "stream_generate",
]
