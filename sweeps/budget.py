"""What a sweep will spend before it runs: its trials' steps with and without early stopping.

Early stopping is Optuna's successive halving (or Hyperband, a mix of successive halvings that start at later
rungs): a trial is checked at rungs `min_steps * reduction_factor**k`, at its first test evaluation at or past
each, and goes on only when it is in the best 1/`reduction_factor` of the trials that reached that rung. The
expected steps below assume exactly that share goes on at every rung. On simulated trials of random quality
Optuna's pruners let them run within a fifth of that (`tests/unit/test_sweep_budget.py`); a search that finds
better trials as it goes stops fewer of its later ones.
"""

import math
from dataclasses import dataclass

from sweeps.spec import Choices, EarlyStopping, LogUniform, SweepSpec


@dataclass(frozen=True)
class Budget:
    trials: int
    steps_without_early_stopping: float
    expected_steps: float  # with early stopping, when the sweep has it; else the same as without
    steps_per_trial: list[tuple[int, float]]  # (max_steps, expected steps) for each max_steps a trial may have


def stop_steps(max_steps: int, eval_every: int, min_steps: int, factor: int, first_rate: int = 0) -> list[int]:
    """The steps at which a trial with these settings can be stopped: its first evaluation at or past each rung
    before its end (evaluations at every `eval_every` steps)."""
    found: list[int] = []
    k = first_rate
    while (rung := min_steps * factor**k) < max_steps:
        at = math.ceil(rung / eval_every) * eval_every
        if at >= max_steps:
            break
        if not found or at > found[-1]:
            found.append(at)
        k += 1
    return found


def _halving_steps(max_steps: int, stops: list[int], factor: int) -> float:
    """Expected steps of one trial when a 1/`factor` share goes on at each of `stops`."""
    expected, reaching = 0.0, 1.0
    for at in stops:
        expected += reaching * (1 - 1 / factor) * at
        reaching /= factor
    return expected + reaching * max_steps


def expected_trial_steps(max_steps: int, eval_every: int, stopping: EarlyStopping | None, base_max_steps: int) -> float:
    if stopping is None:
        return float(max_steps)
    factor = stopping.reduction_factor
    if stopping.method == "successive_halving":
        return _halving_steps(max_steps, stop_steps(max_steps, eval_every, stopping.min_steps, factor), factor)
    # Hyperband as Optuna runs it: brackets b = 0..n-1, bracket b's halving starting at rung b, trials given to
    # brackets in proportion to ceil(n * factor**s / (s + 1)) with s = n - 1 - b
    brackets = math.floor(math.log(base_max_steps / stopping.min_steps, factor)) + 1
    if brackets < 1:  # min_steps past the base's max_steps (max_steps searched): Optuna's Hyperband stops nothing
        return float(max_steps)
    weights = [math.ceil(brackets * factor ** (brackets - 1 - b) / (brackets - b)) for b in range(brackets)]
    per_bracket = [
        _halving_steps(max_steps, stop_steps(max_steps, eval_every, stopping.min_steps, factor, b), factor)
        for b in range(brackets)
    ]
    return float(sum(w * s for w, s in zip(weights, per_bracket, strict=True)) / sum(weights))


def _max_steps_values(spec: SweepSpec) -> list[int]:
    """The max_steps a trial may have, equally likely: the base's, or the searched choices, or a range's mean."""
    dimension = spec.search.get("max_steps")
    if dimension is None:
        return [int(spec.base_spec()["max_steps"])]
    if isinstance(dimension, Choices):
        return [int(value) for value in dimension.choices]
    if isinstance(dimension, LogUniform):
        low, high = dimension.log_uniform
        return [round((high - low) / math.log(high / low))]
    low, high = dimension.uniform
    return [round((low + high) / 2)]


def budget(spec: SweepSpec) -> Budget:
    assert spec.trials is not None  # filled in by the spec's validator
    base = spec.base_spec()
    eval_every, base_max_steps = int(base["eval_every"]), int(base["max_steps"])
    per_trial = [
        (steps, expected_trial_steps(steps, eval_every, spec.early_stopping, base_max_steps))
        for steps in _max_steps_values(spec)
    ]
    mean_max = sum(steps for steps, _ in per_trial) / len(per_trial)
    mean_expected = sum(expected for _, expected in per_trial) / len(per_trial)
    return Budget(spec.trials, spec.trials * mean_max, spec.trials * mean_expected, per_trial)
