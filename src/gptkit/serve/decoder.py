"""A checkpoint loaded for the batched decoder: weights row-major and, on a CPU in float32, packed for oneDNN.

Used by the model process (`serve.model_process`) and by `Service.in_thread`'s callers alike, so both run
the same decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gptkit.errors import GptkitError
from gptkit.generation.packed_linear import bf16_kernels_available, pack_linears
from gptkit.generation.text import Generator
from gptkit.generation.utf8 import Utf8Table


@dataclass
class Decoder:
    generator: Generator
    utf8: Utf8Table | None  # the tokenizer's valid-UTF-8 table, None when it cannot block anything
    packed_linears: int  # Linear layers in oneDNN's packed layout
    weight_dtype: torch.dtype  # of the linear layers' weights (bfloat16 under float32 activations: see load_decoder)

    @property
    def model(self) -> torch.nn.Module:
        return self.generator.model


def default_dtype(device: str) -> torch.dtype:
    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


def load_decoder(
    path: str | Path, *, device: str = "cpu", dtype: str | None = None, max_batch: int = 16, pack: bool = True
) -> Decoder:
    """The checkpoint at `path` on `device` in `dtype` (a torch dtype's name; None: bfloat16 on CUDA, float32
    otherwise), laid out for the batched decoder; pack=False leaves nn.Linear as it is.

    bfloat16 on a CPU: bfloat16 weights (and biases) packed for oneDNN in a float32 model (`PackedLinear`'s
    weight_dtype): each linear layer computes what CPU autocast computes (bfloat16 product, one rounding, a
    bfloat16 output that the next product takes as it is), while embeddings, norms, the residual stream, the
    KV cache and attention stay float32, as under autocast, where this CPU runs them faster than in bfloat16
    (a whole bfloat16 model served at 1 client ran 19% slower than float32 in round 3: 6.91 against 5.59 ms
    of decode CPU per token, under the benchmark lock; torch's SDPA alone is about 5x slower in bfloat16
    there). The scheduler runs its forward passes under autocast to match (`BatchScheduler`). It needs
    oneDNN's bfloat16 kernels (AVX512_BF16) and packing; without them a GptkitError says so. On CUDA,
    bfloat16 is a bfloat16 model."""
    torch_dtype = default_dtype(device) if dtype is None else getattr(torch, dtype)
    weights_only = str(device) == "cpu" and torch_dtype == torch.bfloat16
    if weights_only and not (pack and bf16_kernels_available()):
        why = "this CPU or torch has no oneDNN bfloat16 kernels (AVX512_BF16)" if pack else "pack=False"
        raise GptkitError(f"--dtype bfloat16 on a CPU is served as packed bfloat16 weights, and {why}: use float32")
    generator = Generator.load(path, device=device, dtype=torch.float32 if weights_only else torch_dtype)
    row_major_weights(generator.model)
    weight_dtype = torch.bfloat16 if weights_only else None
    packed = pack_linears(generator.model, batch_hint=max_batch, weight_dtype=weight_dtype) if pack else 0
    return Decoder(generator, utf8_table(generator.tokenizer), packed, weight_dtype or torch_dtype)


def utf8_table(tokenizer) -> Utf8Table | None:
    table = Utf8Table.for_tokenizer(tokenizer)
    return table if table.constrains else None


def row_major_weights(model: torch.nn.Module) -> None:
    """Undo `cpu_decode_layout` (which Generator.load applies on CPU): the batched decoder multiplies (B, C)
    activations by each weight, and nn.Linear's own (out, in) layout is faster for that (the `small` preset,
    one thread: 38.5 against 46.6 ms per step at batch 16; 14.0 against 14.0 ms at batch 1). In place."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and not module.weight.is_contiguous():
                module.weight.data = module.weight.data.contiguous()


__all__ = ["Decoder", "load_decoder", "row_major_weights", "utf8_table"]
