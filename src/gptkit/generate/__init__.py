"""Generation: the token-level engine (`engine`), logits processors (`sampling`), and text in and out (`text`).

`gptkit.generate(model, prompts, ...)` is `gptkit.generate.engine.generate`; import submodules with
`from gptkit.generate.engine import ...` (the name `gptkit.generate` is the function once gptkit is imported).
"""

from gptkit.generate.engine import (
    GenerationError,
    GenerationSettings,
    TokenStream,
    generate,
    stream_generate,
)
from gptkit.generate.sampling import SamplingSettings

__all__ = [
    "GenerationError",
    "GenerationSettings",
    "SamplingSettings",
    "TokenStream",
    "generate",
    "stream_generate",
]
