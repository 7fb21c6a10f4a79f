"""Process groups, devices and the parallel wrappers (DDP, FSDP2). The model file knows nothing of these.

Under `torchrun --nproc_per_node N -m gptkit train ...` the environment carries RANK, LOCAL_RANK and
WORLD_SIZE; NCCL is used on CUDA and gloo on the CPU. Without torchrun everything here is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from gptkit.errors import ConfigError


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(setting: str, local_rank: int = 0) -> torch.device:
    """train.device (auto | cpu | cuda) to a torch.device; auto takes CUDA when there is one."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' was asked for, but PyTorch sees no CUDA device")
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device_setting: str) -> DistInfo:
    """Join the process group that torchrun describes in the environment (if any) and pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_setting, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def shutdown(wait_for_peers: bool = False) -> None:
    """Leave the process group. wait_for_peers (after a run that ended normally on every rank): a barrier
    first, so no rank tears gloo down while a peer still has work in flight (that aborted a rank at exit
    now and then in the CPU FSDP2 test: "terminate called without an active exception")."""
    if dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def max_over_ranks(value: float, info: DistInfo) -> float:
    """The largest of every rank's `value` (a collective: every rank must call it)."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True if `flag` is true on any rank (a collective: every rank must call it)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def wrap_model(model: nn.Module, info: DistInfo, parallel: str, param_dtype: torch.dtype | None) -> nn.Module:
    """DDP or FSDP2 around `model` (already on its device for DDP); the model itself is returned alone.

    FSDP2 shards each transformer block, then the rest (embeddings, final norm, tied head) at the root.
    With `param_dtype` (bf16 / fp16 training) FSDP2 gathers parameters in that dtype and reduces
    gradients in float32; master weights and optimizer state stay float32.
    """
    if not info.distributed:
        return model
    if parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        # GPT.forward returns logits[..., :vocab_size], a view of the padded logits; nothing edits it in place.
        warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module \(FSDPGPT\) returned a view tensor")
        mp = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
        for block in model.h:
            fully_shard(block, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[info.device.index] if info.device.type == "cuda" else None)


def gradient_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """A context for one micro-batch: skip the gradient all-reduce unless `sync` (the last micro-batch).

    DDP has `no_sync()`; FSDP2 modules have `set_requires_gradient_sync`.
    """
    if hasattr(model, "no_sync") and not sync:
        return model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(sync)
    return contextlib.nullcontext()
