"""train.time_budget_ref_steps: the paired timing of the reference step and the run's own step, and the
conversion of reference steps into the run's steps (a fake clock: exact arithmetic)."""

from __future__ import annotations

import pytest
import torch

from gptkit.train.budget import PairedTiming, paired_step_times, reference_step, steps_for_reference


class FakeMachine:
    """A clock that only the steps move: an own step costs `own` seconds and a reference step `ref`, both times
    the machine's slowness, which `slowdowns` sets from the step of that index on (a neighbour starting)."""

    def __init__(self, own: float, ref: float, slowdowns: dict[int, float]) -> None:
        self.t = 0.0
        self.own, self.ref = own, ref
        self.slowdowns = slowdowns  # steps done -> slowness from then on
        self.factor = 1.0
        self.steps = 0
        self.log: list[str] = []

    def clock(self) -> float:
        return self.t

    def _advance(self, seconds: float, name: str) -> None:
        self.factor = self.slowdowns.get(self.steps, self.factor)
        self.t += seconds * self.factor
        self.steps += 1
        self.log.append(name)

    def own_step(self) -> None:
        self._advance(self.own, "own")

    def ref_step(self) -> None:
        self._advance(self.ref, "ref")


def test_paired_timing_measures_the_ratio_under_each_rounds_load():
    # 0.25 s an own step, 0.1 s a reference step; the machine gets 3x slower from step 6 (round 1) on and
    # 1.5x faster than that from step 10 (round 2): the steps' seconds move, their ratio does not.
    machine = FakeMachine(own=0.25, ref=0.1, slowdowns={6: 3.0, 10: 2.0})
    timing = paired_step_times(machine.own_step, machine.ref_step, warmup=1, rounds=3, steps=2, clock=machine.clock)
    # warmup ref, own; round 0 ref x2, own x2; round 1 (order flipped) own x2, ref x2; round 2 ref x2, own x2
    assert machine.log == ["ref", "own"] + ["ref"] * 2 + ["own"] * 4 + ["ref"] * 4 + ["own"] * 2
    assert timing.ratio == pytest.approx(2.5, rel=1e-12)
    # per round: ref 0.1, 0.3, 0.2 and own 0.25, 0.75, 0.5 seconds a step; the medians
    assert timing.ref_s == pytest.approx(0.2, rel=1e-12) and timing.own_s == pytest.approx(0.5, rel=1e-12)


def test_paired_timing_takes_the_median_ratio_of_the_rounds():
    # A disturbance inside one round (round 1's own steps only) moves that round's ratio, not the median.
    machine = FakeMachine(own=0.3, ref=0.1, slowdowns={6: 4.0, 8: 1.0})
    timing = paired_step_times(machine.own_step, machine.ref_step, warmup=1, rounds=3, steps=2, clock=machine.clock)
    assert timing.ratio == pytest.approx(3.0, rel=1e-12)  # rounds' ratios 3, 12, 3
    assert timing.own_s == pytest.approx(0.3, rel=1e-12) and timing.ref_s == pytest.approx(0.1, rel=1e-12)
    # An even number of rounds: the mean of the middle two.
    # round 1's own steps 0.3 + 0.2 s, round 3's 0.3 + 0.4 s
    machine = FakeMachine(own=0.2, ref=0.1, slowdowns={4: 1.5, 5: 1.0, 12: 1.5, 13: 2.0, 14: 1.0})
    timing = paired_step_times(machine.own_step, machine.ref_step, warmup=0, rounds=4, steps=2, clock=machine.clock)
    assert machine.log[4:6] == machine.log[12:14] == ["own", "own"]
    assert timing.ratio == pytest.approx(2.25, rel=1e-12)  # ratios 2, 2.5, 2, 3.5 -> (2 + 2.5) / 2
    with pytest.raises(ValueError, match="rounds"):
        paired_step_times(machine.own_step, machine.ref_step, rounds=0)


def test_reference_steps_convert_into_the_runs_own_steps():
    assert steps_for_reference(1900, 2.5) == 760
    assert steps_for_reference(1900, 3.0) == 633  # 633.33 -> 633
    assert steps_for_reference(1000, 1.6) == 625
    assert steps_for_reference(5, 2.0) == 3  # 2.5 rounds up
    assert steps_for_reference(10, 0.5) == 20  # a step cheaper than the reference's: more steps
    assert steps_for_reference(1, 100.0) == 1  # at least one
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="ratio"):
            steps_for_reference(100, bad)


def test_paired_timing_of_real_steps_leaves_the_random_state_alone():
    torch.set_num_threads(1)
    weights = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(weights.parameters(), lr=0.1)

    def own() -> None:
        weights(torch.randn(4, 8)).square().mean().backward()
        opt.step()
        opt.zero_grad()

    torch.manual_seed(3)
    before = torch.get_rng_state()
    timing = paired_step_times(own, reference_step(), warmup=1, rounds=1, steps=1)
    assert torch.equal(torch.get_rng_state(), before)
    assert isinstance(timing, PairedTiming) and timing.ref_s > 0 and timing.own_s > 0
    assert timing.ratio == pytest.approx(timing.own_s / timing.ref_s)
