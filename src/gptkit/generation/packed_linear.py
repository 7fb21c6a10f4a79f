"""oneDNN-packed Linear layers for float32 (or bfloat16) decoding on a CPU (the batched server's decoder).

A decode step multiplies a few rows of activations (B, C) by every weight of the model. nn.Linear hands that to
the BLAS (MKL's sgemm), which re-packs the weight for each call; oneDNN can pack each weight once, into the
blocked layout its kernel reads. Measured with thread CPU time on this project's busy machine (AMD EPYC, one
thread, the `small` preset's 33 weights, 26 MB): 7.6 -> 4.9 ms for the 33 products at batch 16, 6.0 -> 2.6 ms
at batch 5, 15.4 -> 10.5 ms at batch 64, 3.7 -> 3.6 ms at batch 1 (docs/serve.md: the server end to end).
A bfloat16 model (AVX512_BF16 CPUs) is packed the same way, its weights in bfloat16 (half the bytes to read).

Same values up to float rounding (a different summation order than MKL's, tested against float64). Each
output row depends on its own input row only, bit for bit, whatever the batch size (tested): MKL's batch-1
path (a matrix-vector product) rounds differently from its batch-16 path, oneDNN's does not, so the linear
layers cannot make a request's tokens depend on its neighbours in the batch.
"""

from __future__ import annotations

import torch
from torch import nn


def packing_available(model: nn.Module) -> bool:
    """True when the model is float32 (or bfloat16, where this CPU has oneDNN's bf16 kernels) on a CPU and this
    torch has oneDNN's packed linear operators."""
    p = next(model.parameters())
    if p.device.type != "cpu" or p.dtype not in (torch.float32, torch.bfloat16):
        return False
    ops = torch.ops.mkldnn
    if not (torch.backends.mkldnn.is_available() and hasattr(ops, "_reorder_linear_weight")):
        return False
    if p.dtype == torch.bfloat16 and not (
        hasattr(ops, "_is_mkldnn_bf16_supported") and ops._is_mkldnn_bf16_supported()
    ):
        return False
    return hasattr(ops, "_linear_pointwise")


class PackedLinear(nn.Module):
    """y = x W^T + b for x (..., in_features), with W held in oneDNN's packed layout (inference only).
    batch_hint: the number of rows the packing is tuned for (any number works)."""

    def __init__(self, linear: nn.Linear, batch_hint: int = 16) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        with torch.no_grad():
            weight = linear.weight.detach().contiguous()
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch_hint)
            self.bias = None if linear.bias is None else linear.bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def pack_linears(model: nn.Module, batch_hint: int = 16) -> int:
    """Replace every nn.Linear of `model` by a PackedLinear, in place (a model that only generates from now
    on: it cannot be trained or saved as before). Returns how many were replaced; 0 (nothing changed) when
    `packing_available` is False."""
    if not packing_available(model):
        return 0
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, PackedLinear(child, batch_hint))
                replaced += 1
    return replaced


__all__ = ["PackedLinear", "pack_linears", "packing_available"]
