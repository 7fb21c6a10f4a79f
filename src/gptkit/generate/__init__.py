"""Generation: the token-level engine (`engine`), logits processors (`sampling`), and text in and out (`text`).

This package is callable: `gptkit.generate(model, prompts, ...)` is `gptkit.generate.engine.generate`,
while `gptkit.generate.sampling` etc. stay importable as modules.
"""

import inspect
import sys
import types

from gptkit.generate.engine import (
    GenerationError,
    GenerationSettings,
    TokenStream,
    generate,
    stream_generate,
)
from gptkit.generate.sampling import SamplingSettings
from gptkit.generate.text import Generator, StopStrings

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


class _CallablePackage(types.ModuleType):
    __call__ = staticmethod(generate)


sys.modules[__name__].__class__ = _CallablePackage
__signature__ = inspect.signature(generate)  # what help() and IDEs show for gptkit.generate(...)
