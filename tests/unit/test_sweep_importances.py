"""A sweep's parameter importances (Optuna's fANOVA over the trials that ran to their end)."""

from sweeps.search import param_importances
from sweeps.spec import SweepSpec

SPEC = SweepSpec.model_validate(
    {
        "base": {"model": "torch_mlp", "max_steps": 100},
        "search": {
            "learning_rate": {"log_uniform": [1e-4, 1e-1]},
            "optimizer": {"choices": ["sgd", "adam"]},
            "hidden_units": {"choices": [[100], [800, 600, 400]]},
        },
        "method": "random",
        "trials": 20,
    }
)


def trial(rate: float, optimizer: str, hidden: list[int]) -> dict[str, object]:
    return {"learning_rate": rate, "optimizer": optimizer, "hidden_units": hidden}


def test_the_field_that_decides_the_objective_has_most_of_the_importance() -> None:
    finished = [
        (
            trial(10 ** -(1 + i % 3), ("sgd", "adam")[i % 2], [100] if i % 4 < 2 else [800, 600, 400]),
            0.5 + (0.3 if i % 2 else 0.0) + 0.001 * (i % 3),
        )  # fmt: skip
        for i in range(16)
    ]
    found = param_importances(SPEC, finished)
    assert set(found) == {"learning_rate", "optimizer", "hidden_units"}
    assert abs(sum(found.values()) - 1) < 1e-9
    assert list(found)[0] == "optimizer" and found["optimizer"] > 0.8, found  # largest first
    assert param_importances(SPEC, finished) == found  # seeded: the same trials, the same answer


def test_fewer_than_two_trials_or_no_varied_field_give_none() -> None:
    assert param_importances(SPEC, []) == {}
    assert param_importances(SPEC, [(trial(0.01, "sgd", [100]), 0.5)]) == {}
    same = [(trial(0.01, "sgd", [100]), 0.5), (trial(0.01, "sgd", [100]), 0.6)]
    assert param_importances(SPEC, same) == {}
    one_varied = [(trial(0.01, optimizer, [100]), value) for optimizer, value in (("sgd", 0.4), ("adam", 0.6))] * 2
    assert set(param_importances(SPEC, one_varied)) == {"optimizer"}  # only what varied is weighed
