"""Full state dicts of an unsharded model and its optimizers, keyed by parameter names: the form
torch.distributed.checkpoint.state_dict's get_model_state_dict / get_optimizer_state_dict write with
`full_state_dict=True, cpu_offload=True` (what gptkit.train.checkpoint saves), for a model that is not
sharded (one process, or DDP, whose ranks each hold everything).

torch's functions are needed for FSDP2's sharded parameters, but they import torch._dynamo (to recognise a
torch.compile'd module), about 1.3 CPU-s of a short training process on a 2-core CPU; the Trainer uses them
only under FSDP. tests/test_full_state.py checks that these give what torch's give, both ways.

The optimizer form: {"state": {NAME: {"step": ..., "exp_avg": ...}}, "param_groups": [{...hyperparameters,
"params": [NAME, ...]}]}, the groups of every optimizer in order. A parameter without state (never stepped)
has no entry, as in torch's own Optimizer.state_dict.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gptkit.errors import CheckpointError


def _names(model: nn.Module) -> dict[int, str]:
    """id(parameter) -> its name in model.named_parameters() (a tied parameter: its first name)."""
    return {id(p): name for name, p in model.named_parameters()}


def _cpu(value: Any) -> Any:
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """model.state_dict() with every tensor detached and on the CPU."""
    return {name: _cpu(t) for name, t in model.state_dict().items()}


def full_optimizer_state(model: nn.Module, optimizers: list[torch.optim.Optimizer]) -> dict[str, Any]:
    """The optimizers' states and groups keyed by `model`'s parameter names, tensors on the CPU."""
    names = _names(model)
    state: dict[str, dict[str, Any]] = {}
    groups: list[dict[str, Any]] = []
    for opt in optimizers:
        saved = opt.state_dict()  # ids count the parameters of its groups in order
        order = [names[id(p)] for group in opt.param_groups for p in group["params"]]
        for index, values in saved["state"].items():
            state[order[index]] = {key: _cpu(v) for key, v in values.items()}
        for group in saved["param_groups"]:
            groups.append({**group, "params": [order[i] for i in group["params"]]})
    return {"state": state, "param_groups": groups}


def load_full_optimizer_state(
    model: nn.Module, optimizers: list[torch.optim.Optimizer], full: dict[str, Any], source: str = "checkpoint"
) -> None:
    """Load what full_optimizer_state wrote into `optimizers` (each group found by its parameters' names);
    CheckpointError naming `source` where a group or a state entry does not match."""
    names = _names(model)
    saved_groups = {tuple(g["params"]): g for g in full.get("param_groups", [])}
    for opt in optimizers:
        order: list[str] = []
        groups = []
        for group in opt.param_groups:
            group_names = [names[id(p)] for p in group["params"]]
            saved = saved_groups.get(tuple(group_names))
            if saved is None:
                raise CheckpointError(
                    f"{source}: the optimizer has no saved parameter group of {', '.join(group_names[:3])}"
                    f"{' ...' if len(group_names) > 3 else ''} ({len(group_names)} parameters)"
                )
            ids = list(range(len(order), len(order) + len(group_names)))
            order += group_names
            groups.append({**saved, "params": ids})
        state = {i: dict(full["state"][name]) for i, name in enumerate(order) if name in full.get("state", {})}
        opt.load_state_dict({"state": state, "param_groups": groups})
