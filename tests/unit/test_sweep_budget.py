"""A sweep's steps with early stopping, by hand, and against Optuna's own pruners on a simulated search."""

import random

import optuna
import pytest

from sweeps.budget import expected_trial_steps, stop_steps
from sweeps.spec import EarlyStopping


def test_trials_stop_at_the_first_evaluation_past_each_rung_before_the_end() -> None:
    assert stop_steps(1000, 100, 100, 3) == [100, 300, 900]
    assert stop_steps(1000, 250, 100, 3) == [250, 500]  # 900's evaluation is the last step: nothing stops there
    assert stop_steps(1000, 100, 100, 3, first_rate=2) == [900]
    assert stop_steps(1000, 400, 100, 2) == [400, 800]  # rungs 100, 200 and 400 share the evaluation at 400


def test_expected_steps_by_hand() -> None:
    halving = EarlyStopping(method="successive_halving", min_steps=100, reduction_factor=3)
    # a third goes on at each rung: 2/3 stop at 100, 2/9 at 300, 2/27 at 900, 1/27 run to 1000
    assert expected_trial_steps(1000, 100, halving, 1000) == pytest.approx(
        2 / 3 * 100 + 2 / 9 * 300 + 2 / 27 * 900 + 1 / 27 * 1000
    )
    hyperband = EarlyStopping(method="hyperband", min_steps=100, reduction_factor=3)
    # three brackets, from rungs 100, 300 and 900, given trials as 9 : 5 : 3 (Optuna's allocation)
    brackets = [2 / 3 * 100 + 2 / 9 * 300 + 2 / 27 * 900 + 1 / 27 * 1000, 2 / 3 * 300 + 2 / 9 * 900 + 1 / 9 * 1000,
                2 / 3 * 900 + 1 / 3 * 1000]  # fmt: skip
    expected = (9 * brackets[0] + 5 * brackets[1] + 3 * brackets[2]) / 17
    assert expected_trial_steps(1000, 100, hyperband, 1000) == pytest.approx(expected)
    assert expected_trial_steps(1000, 100, None, 1000) == 1000
    # Hyperband's brackets come from the base's max_steps: a first rung past it (max_steps searched) stops nothing
    assert expected_trial_steps(2000, 100, EarlyStopping(method="hyperband", min_steps=500), 100) == 2000


@pytest.mark.parametrize("method", ["successive_halving", "hyperband"])
def test_the_expected_steps_match_optunas_pruners_on_trials_of_random_quality(method: str) -> None:
    """300 trials whose curves are a random level plus noise: the steps Optuna's pruner lets them run, on average,
    within a fifth of the expectation (Hyperband gives trials to brackets by a hash of the study's name: named
    here, so that every run draws the same)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stopping = EarlyStopping(method=method, min_steps=100, reduction_factor=3)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.HyperbandPruner(100, 1000, 3)
        if method == "hyperband"
        else optuna.pruners.SuccessiveHalvingPruner(100, 3)
    )
    study = optuna.create_study(
        study_name="budget", direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    noise = random.Random(0)
    ran = []
    for _ in range(300):
        trial = study.ask()
        level, step = noise.random(), 0
        for step in range(100, 1001, 100):
            trial.report(level + 0.05 * noise.random() * step / 1000, step)
            if step < 1000 and trial.should_prune():
                break
        ran.append(step)
        study.tell(trial, level)
    measured = sum(ran) / len(ran)
    assert 0.8 <= measured / expected_trial_steps(1000, 100, stopping, 1000) <= 1.2
