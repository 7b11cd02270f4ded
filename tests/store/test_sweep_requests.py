"""A sweep request is checked against its model kind before anything is stored: a 422 naming the field."""

from pathlib import Path
from typing import Any

import pytest

from app.main import create_app
from app.settings import ApiSettings
from tests.conftest import local_client


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"search": {"hidden_layers": {"choices": [1, 2]}}},
            "search.hidden_layers: the torch_mlp model kind has no field",
        ),
        ({"search": {"dtype": {"choices": ["float64"]}}}, "search.dtype: the torch_mlp model kind has no field"),
        ({"search": {"hidden_units": {"choices": [[100], [0]]}}}, "search.hidden_units.choices[1]: hidden_units.0:"),
        ({"search": {"learning_rate": {"uniform": [0.1, 20]}}}, "search.learning_rate.uniform[1]: learning_rate:"),
        ({"search": {"learning_rate": {"log_uniform": [0.1, 0.01]}}}, "low < high"),
        (
            {"search": {"learning_rate": {"log_uniform": [0.0, 0.01]}}},
            "search.learning_rate.log_uniform[0]: Input should be greater than 0",
        ),
        ({"search": {"norm": {"choices": ["none", "groupnorm"]}}}, "search.norm.choices[1]: norm:"),
        ({"search": {"model": {"choices": ["numpy_mlp"]}}}, "search.model: the torch_mlp model kind has no field"),
        ({"search": {"init_from_job": {"choices": [999999, 1]}}}, "search.init_from_job: not searchable"),
        ({"method": "grid"}, "search.learning_rate: a grid takes only `choices`"),
        ({"early_stopping": {"min_steps": 1000}}, "early_stopping.min_steps: 1000 is not below the base max_steps"),
        ({"base": {"model": "torch_mlp", "batch_size": 0}}, "base: batch_size:"),
        ({"base": {"model": "resnet50"}}, "base:"),
        ({"trials": 501}, "trials:"),
        ({"method": "grid", "search": {"norm": {"choices": ["none"]}}, "trials": 2}, "trials: 2 is more than"),
    ],
)
def test_sweep_requests_are_checked_against_the_model_kind(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    request: dict[str, Any] = {
        "base": {"model": "torch_mlp", "max_steps": 1000},
        "search": {"learning_rate": {"log_uniform": [1e-4, 1e-2]}},
        **change,
    }
    settings = ApiSettings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'jobs.db'}")
    with local_client(create_app(settings)) as client:
        answer = client.post("/sweeps", json=request)
        assert answer.status_code == 422, answer.text
        assert expected in answer.json()["message"], answer.json()["message"]
        assert client.get("/sweeps").json()["count"] == 0  # nothing stored
