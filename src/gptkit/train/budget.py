"""Budgets of a run: seconds of the wall or CPU clock (train.time_budget_s), or steps of a reference workload
converted into the run's own steps (train.time_budget_ref_steps).

train.time_budget_s: the run ends after so many seconds, whatever max_steps says. The seconds count from the
start of the training loop (evaluations included) plus those that the runs it resumes used before (saved in each
checkpoint), so a resumed run gets only what is left. The lr schedule follows `fraction()` instead of the step
count (gptkit.train.optim.lr_at), and progress lines show the time used.

train.time_budget_ref_steps = N: at the start of a new run, N steps of a fixed float32 reference workload
(nanoGPT's CPU shakespeare_char model and batch, `reference_step`) become the run's own step count: the two
steps are timed in turn under the same load (`paired_step_times`), and the run trains N x (reference step /
own step) steps (`steps_for_reference`) with its schedule over the steps. A fixed step count slows down with the
machine as nanoGPT's fixed 2000 steps do, so a neighbour that starts or stops during the run moves both alike;
what the timing has to get right is only the ratio of the two steps, which a load shared by both leaves alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median

import torch

CLOCKS = ("wall", "cpu")


class TimeBudget:
    """Seconds of one clock. Under torchrun each rank's clock differs a little, so the ranks would take their
    schedules and their last step from different readings: `agree` (a collective that returns the largest of
    the ranks' values) makes `sync()` fix one reading for every rank, which used() then returns until the next
    sync(). Every rank calls sync() at the same points of its loop; without `agree` the clock is read live."""

    def __init__(
        self,
        seconds: float,
        clock: str = "wall",
        prior_s: float = 0.0,
        agree: Callable[[float], float] | None = None,
    ) -> None:
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, not {clock!r}")
        self.seconds = float(seconds)  # 0: no budget
        self.clock = clock
        self.prior_s = float(prior_s)  # used by the runs this one resumes
        self._start: float | None = None
        self._agree = agree
        self._agreed: float | None = None

    def __bool__(self) -> bool:
        return self.seconds > 0

    def _now(self) -> float:
        return time.process_time() if self.clock == "cpu" else time.perf_counter()

    def start(self) -> None:
        self._start = self._now()

    def _read(self) -> float:
        if self._start is None:
            return self.prior_s
        return self.prior_s + self._now() - self._start

    def sync(self) -> None:
        """Fix the reading every rank uses from now until the next sync (the largest rank's); a no-op
        without `agree` or without a budget (a collective otherwise: every rank must call it)."""
        if self._agree is not None and self:
            self._agreed = self._agree(self._read())

    def used(self) -> float:
        """Seconds of the budget's clock since start(), plus those of the runs this one resumes (under
        `agree`: the reading of the last sync())."""
        if self._agreed is not None:
            return self._agreed
        return self._read()

    def fraction(self) -> float | None:
        """The share of the budget used, at most 1; None without a budget."""
        return min(1.0, self.used() / self.seconds) if self else None

    def spent(self) -> bool:
        return bool(self) and self.used() >= self.seconds

    def left(self) -> float:
        return max(0.0, self.seconds - self.used())


# The reference workload of train.time_budget_ref_steps: one float32 training step of nanoGPT's CPU
# shakespeare_char model (4 layers, 4 heads, 128 wide, block 64, batch 12, 65 characters, no biases, exact GELU)
# with AdamW and clipping, the same kernels nanoGPT's own CPU run spends its steps in (docs/training.md).
REFERENCE_MODEL = dict(
    vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False, activation="gelu"
)
REFERENCE_BATCH = 12


def reference_step() -> Callable[[], None]:
    """One float32 training step of REFERENCE_MODEL (seeded weights and batch) per call, at torch's current
    thread count. Building it and each call leave torch's random state as they found it."""
    from gptkit.config import ModelConfig
    from gptkit.model import GPT
    from gptkit.train.eager_optim import EagerAdamW
    from gptkit.train.optim import clip_grad_norm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT(ModelConfig(**REFERENCE_MODEL))
        model.train()
        opt = EagerAdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
        cfg = model.config
        idx = torch.randint(0, cfg.vocab_size, (REFERENCE_BATCH, cfg.block_size + 1))
    x, y = idx[:, :-1].contiguous(), idx[:, 1:].contiguous()

    def step() -> None:
        _, loss = model(x, y)
        loss.backward()
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


@dataclass(frozen=True)
class PairedTiming:
    """Seconds per step of the reference workload and of the run's own step, timed in turn."""

    ref_s: float  # the median over the rounds
    own_s: float  # the median over the rounds
    ratio: float  # own step / reference step: the median of the rounds' own ratios


def paired_step_times(
    own_step: Callable[[], None],
    ref_step: Callable[[], None],
    warmup: int = 1,
    rounds: int = 5,
    steps: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> PairedTiming:
    """Time `own_step` and `ref_step` in turn: `warmup` untimed steps of each, then `rounds` rounds of
    `steps` steps of one and `steps` of the other (which goes first alternates, so a load that grows or
    shrinks during a round favours neither). Each round gives a ratio of the two, measured under the same
    load; the median of the rounds' ratios is what a steady disturbance leaves alone and a short one moves
    least. Leaves torch's random state as it found it."""
    if rounds < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"rounds and steps must be at least 1 and warmup at least 0, got {rounds}, {steps}, {warmup}")

    def timed(fn: Callable[[], None]) -> float:
        t0 = clock()
        for _ in range(steps):
            fn()
        return (clock() - t0) / steps

    own, ref = [], []
    with torch.random.fork_rng(devices=[]):
        for _ in range(warmup):
            ref_step()
            own_step()
        for r in range(rounds):
            if r % 2 == 0:
                ref.append(timed(ref_step))
                own.append(timed(own_step))
            else:
                own.append(timed(own_step))
                ref.append(timed(ref_step))
    ratios = [o / f for o, f in zip(own, ref, strict=True)]
    return PairedTiming(ref_s=median(ref), own_s=median(own), ratio=median(ratios))


def steps_for_reference(ref_steps: int, ratio: float) -> int:
    """The run's own step count that takes the time of `ref_steps` reference steps, where one own step takes
    `ratio` reference steps: ref_steps / ratio, rounded to the nearest step (halves up), at least 1."""
    if not (ratio > 0 and ratio < float("inf")):
        raise ValueError(f"ratio must be a positive finite number, got {ratio}")
    return max(1, math.floor(ref_steps / ratio + 0.5))
