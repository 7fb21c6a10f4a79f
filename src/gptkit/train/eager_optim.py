"""torch.optim's AdamW and Muon, unchanged, without importing torch._dynamo (about 1.3 CPU-s of a process).

torch.optim.Optimizer wraps add_param_group, zero_grad, state_dict and load_state_dict in
torch._disable_dynamo, and Adam's step in _use_grad_for_differentiable. Both wrappers import torch._dynamo
(with sympy and torch.fx) the first time they run, for one purpose: to keep torch.compile from tracing into
the optimizer. On this project's 2-core CPU that import costs about as much as `import torch` itself, a
large share of a short training process. gptkit never compiles an optimizer step (train.compile compiles the
model), so `EagerAdamW` and `EagerMuon` call torch's own methods beneath those two wrappers: the same code,
arithmetic, state and param_groups, so checkpoints of either resume in the other. Where a torch release
wraps them differently, the methods run as torch defines them (the import comes back, nothing else
changes); tests/test_eager_optim.py checks both the equality and that a training process stays free of
torch._dynamo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import Optimizer, _use_grad_for_differentiable


def _probe() -> None:  # only its wrappers' code objects are used
    return None


# The code objects of the wrappers that import torch._dynamo when called (shared by every function they wrap),
# and of the step-profiling wrapper Optimizer puts around a class's step (the eager class gets its own).
_DYNAMO_WRAPPERS = frozenset(
    {
        torch._disable_dynamo(_probe).__code__,
        _use_grad_for_differentiable(_probe).__code__,
        Optimizer.profile_hook_step(_probe).__code__,
    }
)


def beneath_dynamo_wrappers(fn: Callable) -> Callable:
    """`fn` without the wrappers in _DYNAMO_WRAPPERS (each keeps the function it wraps in __wrapped__)."""
    while getattr(fn, "__code__", None) in _DYNAMO_WRAPPERS and hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


_ADD_PARAM_GROUP = beneath_dynamo_wrappers(Optimizer.add_param_group)
_ZERO_GRAD = beneath_dynamo_wrappers(Optimizer.zero_grad)
_STATE_DICT = beneath_dynamo_wrappers(Optimizer.state_dict)
_LOAD_STATE_DICT = beneath_dynamo_wrappers(Optimizer.load_state_dict)
_ADAM_STEP = beneath_dynamo_wrappers(torch.optim.Adam.__dict__["step"])


class _EagerMethods:
    """Optimizer's methods beneath their torch._disable_dynamo wrappers (mixed in before the torch class)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _ADD_PARAM_GROUP(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _ZERO_GRAD(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _STATE_DICT(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # the keyword torch.distributed passes
        _LOAD_STATE_DICT(self, state_dict)


class EagerAdamW(_EagerMethods, torch.optim.AdamW):
    """torch.optim.AdamW (same arguments, update, state and groups) that never imports torch._dynamo."""

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        # What _use_grad_for_differentiable does around Adam's step, less its torch.compile graph breaks.
        previous = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(self.defaults["differentiable"])
            return _ADAM_STEP(self, closure)
        finally:
            torch.set_grad_enabled(previous)


class EagerMuon(_EagerMethods, torch.optim.Muon):
    """torch.optim.Muon (same arguments, update, state and groups; its step has no dynamo wrapper) that never
    imports torch._dynamo."""
