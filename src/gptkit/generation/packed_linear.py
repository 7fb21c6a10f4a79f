"""oneDNN-packed Linear layers for float32 (or bfloat16) decoding on a CPU (the batched server's decoder).

A decode step multiplies a few rows of activations (B, C) by every weight of the model. nn.Linear hands that to
the BLAS (MKL's sgemm), which re-packs the weight for each call; oneDNN can pack each weight once, into the
blocked layout its kernel reads. Measured with thread CPU time on this project's busy machine (AMD EPYC, one
thread, the `small` preset's 33 weights, 26 MB): 7.6 -> 4.9 ms for the 33 products at batch 16, 6.0 -> 2.6 ms
at batch 5, 15.4 -> 10.5 ms at batch 64, 3.7 -> 3.6 ms at batch 1 (docs/serve.md: the server end to end).
On CPUs with oneDNN's bfloat16 kernels (AVX512_BF16), the weights can be packed in bfloat16 in a float32 model
(`gptkit serve --dtype bfloat16`): then a layer computes what CPU autocast computes for a Linear (input, weight
and bias in bfloat16, one rounding of the float32 sum to a bfloat16 output), so a layer's bfloat16 output goes
into the next product (c_fc -> activation -> c_proj) without being cast back and forth; the float32 residual
stream and norms stay as autocast keeps them. A bfloat16 model can be packed too.

Same values up to float rounding (a different summation order than MKL's, tested against float64). Each
output row depends on its own input row only, bit for bit, whatever the batch size (tested): MKL's batch-1
path (a matrix-vector product) rounds differently from its batch-16 path, oneDNN's does not, so the linear
layers cannot make a request's tokens depend on its neighbours in the batch.
"""

from __future__ import annotations

import torch
from torch import nn


def bf16_kernels_available() -> bool:
    """True when this CPU and torch have oneDNN's bfloat16 kernels (AVX512_BF16 or AMX)."""
    ops = torch.ops.mkldnn
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(ops, "_is_mkldnn_bf16_supported")
        and bool(ops._is_mkldnn_bf16_supported())
    )


def packing_available(model: nn.Module, weight_dtype: torch.dtype | None = None) -> bool:
    """True when the model is on a CPU, float32 or bfloat16, and this torch has oneDNN's packed linear operators
    for weights of `weight_dtype` (None: the model's dtype; bfloat16 needs `bf16_kernels_available`)."""
    p = next(model.parameters())
    weight_dtype = weight_dtype or p.dtype
    if p.device.type != "cpu" or p.dtype not in (torch.float32, torch.bfloat16):
        return False
    if weight_dtype not in (torch.float32, torch.bfloat16) or (weight_dtype == torch.float32 != p.dtype):
        return False
    ops = torch.ops.mkldnn
    if not (torch.backends.mkldnn.is_available() and hasattr(ops, "_reorder_linear_weight")):
        return False
    if weight_dtype == torch.bfloat16 and not bf16_kernels_available():
        return False
    return hasattr(ops, "_linear_pointwise")


class PackedLinear(nn.Module):
    """y = x W^T + b for x (..., in_features), with W held in oneDNN's packed layout (inference only).
    batch_hint: the number of rows the packing is tuned for (any number works). weight_dtype bfloat16 for a
    float32 Linear ("mixed"): W and b are held in bfloat16 (half the bytes a step reads), x is rounded to
    bfloat16 unless it already is, oneDNN sums in float32 with the bias and rounds once, and y is bfloat16:
    the values CPU autocast gives for a Linear, without re-casting the weight at every call."""

    def __init__(self, linear: nn.Linear, batch_hint: int = 16, weight_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight_dtype = weight_dtype or linear.weight.dtype
        self.mixed = self.weight_dtype != linear.weight.dtype  # float32 activations, bfloat16 weight
        with torch.no_grad():
            weight = linear.weight.detach().to(self.weight_dtype).contiguous()
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch_hint)
            bias = None if linear.bias is None else linear.bias.detach()
            self.bias = None if bias is None else bias.to(self.weight_dtype).clone()  # (out,) in the weights' dtype

    @property
    def out_dtype(self) -> torch.dtype:
        """The dtype of y: the weights' (bfloat16 when mixed)."""
        return self.weight_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x if x.dtype == self.weight_dtype else x.to(self.weight_dtype)  # mixed: float32 in (norms, attention)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        dtype = f", weight_dtype={self.weight_dtype}" if self.mixed else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}{dtype}"


def pack_linears(model: nn.Module, batch_hint: int = 16, weight_dtype: torch.dtype | None = None) -> int:
    """Replace every nn.Linear of `model` by a PackedLinear (weights in `weight_dtype`, None: the model's), in
    place (a model that only generates from now on: it cannot be trained or saved as before). Returns how many
    were replaced; 0 (nothing changed) when `packing_available` is False."""
    if not packing_available(model, weight_dtype):
        return 0
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, PackedLinear(child, batch_hint, weight_dtype))
                replaced += 1
    return replaced


def mixed_dtype(model: nn.Module) -> torch.dtype | None:
    """bfloat16 when `model`'s linear layers are PackedLinear with bfloat16 weights in a float32 model (their
    outputs are bfloat16: its forward then runs under CPU autocast, see `BatchScheduler`); else None."""
    for module in model.modules():
        if isinstance(module, PackedLinear) and module.mixed:
            return module.weight_dtype
    return None


__all__ = ["PackedLinear", "bf16_kernels_available", "mixed_dtype", "pack_linears", "packing_available"]
