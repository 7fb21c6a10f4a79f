"""train.time_budget_s: a run that ends after so many seconds of the wall or CPU clock, whatever max_steps says.

The seconds count from the start of the training loop (evaluations included) plus those that the runs it
resumes used before (saved in each checkpoint), so a resumed run gets only what is left. The lr schedule follows
`fraction()` instead of the step count (gptkit.train.optim.lr_at), and progress lines show the time used.
"""

from __future__ import annotations

import time

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
