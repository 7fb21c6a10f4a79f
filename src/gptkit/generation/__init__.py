"""Generation: the token-level engine (`engine`) and its decoders (`eager`, `static`, `beam`, `batched`), the
settings (`settings`), logits processors (`sampling`), and text in and out (`text`).

`gptkit.generate(model, prompts, ...)` is `gptkit.generation.engine.generate`. Names are imported on first
use, so that `gptkit.generation.settings` (what the CLI builds its flags from) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "GenerationError": "gptkit.generation.settings",
    "GenerationSettings": "gptkit.generation.settings",
    "SamplingSettings": "gptkit.generation.settings",
    "TokenStream": "gptkit.generation.engine",
    "generate": "gptkit.generation.engine",
    "stream_generate": "gptkit.generation.engine",
    "Generator": "gptkit.generation.text",
    "StopStrings": "gptkit.generation.text",
}
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


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gptkit.generation' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from gptkit.generation.engine import TokenStream, generate, stream_generate
    from gptkit.generation.settings import GenerationError, GenerationSettings, SamplingSettings
    from gptkit.generation.text import Generator, StopStrings
