"""The shared PyTorch training loop, run in-process on tiny data."""

from pathlib import Path
from typing import Any

from models.kinds import parse_spec
from models.run import run_job
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource


class StopAfter(InMemoryReporter):
    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def should_stop(self) -> bool:
        return bool(self.last_progress and self.last_progress[0] >= self.steps)


def tiny_spec(**overrides: object) -> dict[str, Any]:
    return {
        "model": "torch_mlp",
        "hidden_units": [32],
        "batch_size": 40,
        "max_steps": 60,
        "eval_every": 20,
        "log_every": 5,
        "optimizer": "adam",
        "learning_rate": 0.01,
        "preprocessing": "standardize",
        **overrides,
    }


def test_same_spec_gives_the_same_curve(data_dir: Path) -> None:
    first, second = InMemoryReporter(), InMemoryReporter()
    result = run_job(parse_spec(tiny_spec()), first, DataSource(data_dir))
    run_job(parse_spec(tiny_spec()), second, DataSource(data_dir))
    assert first.points == second.points
    assert result.metrics["test_accuracy"] >= 0.9
    other = InMemoryReporter()
    run_job(parse_spec(tiny_spec(seed=7)), other, DataSource(data_dir))
    assert other.points != first.points


def test_train_points_are_running_means_and_test_points_cover_the_last_step(data_dir: Path) -> None:
    reporter = InMemoryReporter()
    run_job(parse_spec(tiny_spec(max_steps=23, eval_every=10, log_every=4)), reporter, DataSource(data_dir))
    train = [p[0] for p in reporter.points if p[1] == "train"]
    test = [p[0] for p in reporter.points if p[1] == "test"]
    assert train == [4, 8, 10, 12, 16, 20, 23]  # every log_every, at evaluations, and at the end
    assert test == [10, 20, 23]


def test_default_sgd_with_assignment_preprocessing_learns(data_dir: Path) -> None:
    result = run_job(
        parse_spec({"model": "torch_mlp", "batch_size": 50, "max_steps": 200, "learning_rate": 1e-3}),
        InMemoryReporter(),
        DataSource(data_dir),
    )
    assert result.metrics["test_accuracy"] >= 0.8


def test_should_stop_ends_the_loop_between_steps(data_dir: Path) -> None:
    reporter = StopAfter(10)
    result = run_job(parse_spec(tiny_spec(max_steps=1000)), reporter, DataSource(data_dir))
    assert result.stopped and result.steps_done == 10
