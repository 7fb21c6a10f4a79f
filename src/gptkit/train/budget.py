"""train.time_budget_s: a run that ends after so many seconds of the wall or CPU clock, whatever max_steps says.

train.time_budget_ref_steps = N instead sets that budget, at the start of a new run, to the wall time N steps of a
fixed float32 reference workload take on the machine at hand (`reference_step_s`: nanoGPT's CPU shakespeare_char
model and batch), so a recipe's budget follows the machine's speed rather than the one it was tuned on.

The seconds count from the start of the training loop (evaluations included) plus those that the runs it
resumes used before (saved in each checkpoint), so a resumed run gets only what is left. The lr schedule follows
`fraction()` instead of the step count (gptkit.train.optim.lr_at), and progress lines show the time used.
"""

from __future__ import annotations

import time

import torch

CLOCKS = ("wall", "cpu")


class TimeBudget:
    def __init__(self, seconds: float, clock: str = "wall", prior_s: float = 0.0) -> None:
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, not {clock!r}")
        self.seconds = float(seconds)  # 0: no budget
        self.clock = clock
        self.prior_s = float(prior_s)  # used by the runs this one resumes
        self._start: float | None = None

    def __bool__(self) -> bool:
        return self.seconds > 0

    def _now(self) -> float:
        return time.process_time() if self.clock == "cpu" else time.perf_counter()

    def start(self) -> None:
        self._start = self._now()

    def used(self) -> float:
        """Seconds of the budget's clock since start(), plus those of the runs this one resumes."""
        if self._start is None:
            return self.prior_s
        return self.prior_s + self._now() - self._start

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


def reference_step_s(warmup: int = 2, rounds: int = 5, steps: int = 3) -> float:
    """Wall seconds of one reference step (REFERENCE_MODEL) on this machine, at torch's current thread count:
    the median of `rounds` rounds of `steps` steps after `warmup` steps. The median, not the fastest: a neighbour
    that keeps running (the peer of a side-by-side benchmark) slows the whole run as it slows these rounds, and a
    short disturbance moves the median less than the mean. Leaves torch's random state as it found it."""
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

        for _ in range(warmup):
            step()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            times.append((time.perf_counter() - t0) / steps)
    return sorted(times)[len(times) // 2]
