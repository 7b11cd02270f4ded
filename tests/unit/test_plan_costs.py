"""A plan's cost count (issue 40, finding 7): counted in a child process once per network shape, remembered for
the newest MAX_COSTS_KEPT shapes; a NumPy MLP's counted in place."""

from pathlib import Path
from typing import Any

import pytest

import app.jobs.job_plan as planning
from app.jobs.job_plan import Prober
from models.cost import Cost
from specs import parse_job_spec


def test_each_shape_is_counted_once_and_the_oldest_forgotten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prober, counted = Prober(tmp_path, 0), []

    def in_a_child(_target: Any, args: tuple[Any, ...], _seconds: float) -> Cost:
        spec = args[0]
        counted.append(spec.hidden_units)
        return Cost(len(spec.hidden_units), 1, 1)

    monkeypatch.setattr(prober, "_in_a_child", in_a_child)
    monkeypatch.setattr(planning, "MAX_COSTS_KEPT", 2)
    torch_mlp = [parse_job_spec({"model": "torch_mlp", "hidden_units": units}) for units in ([8], [8, 8], [8, 8, 8])]
    assert prober.cost(torch_mlp[0]).parameters == 1
    assert prober.cost(torch_mlp[0].model_copy(update={"seed": 3, "learning_rate": 0.5})).parameters == 1  # same shape
    prober.cost(torch_mlp[1]), prober.cost(torch_mlp[2]), prober.cost(torch_mlp[0])  # [8] was the oldest: forgotten
    assert counted == [[8], [8, 8], [8, 8, 8], [8]]
    numpy_mlp = prober.cost(parse_job_spec({"model": "numpy_mlp", "hidden_units": [100]}))
    assert numpy_mlp.parameters == 3072 * 100 + 100 + 100 * 10 + 10 and len(counted) == 4  # in place
