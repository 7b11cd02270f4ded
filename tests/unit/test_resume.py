"""Checkpoints: a run stopped part-way and resumed ends exactly where an uninterrupted run ends."""

from pathlib import Path

import numpy as np
import pytest

from models.artifacts import unpack_model
from models.kinds import parse_spec
from models.run import run_job
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource, StartFrom


class StopAtStep(InMemoryReporter):
    """Asks the loop to stop after `steps` steps (should_stop is called once per step)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps, self.calls = steps, 0

    def should_stop(self) -> bool:
        self.calls += 1
        return self.calls >= self.steps


SPECS = {
    "torch_mlp": {"model": "torch_mlp", "hidden_units": [24], "norm": "batchnorm", "dropout": 0.2,
                  "optimizer": "adamw", "weight_decay": 0.01, "lr_schedule": "cosine", "warmup_steps": 3,
                  "augmentation": "crop_flip", "learning_rate": 0.01, "init": "default"},
    "numpy_mlp": {"model": "numpy_mlp", "hidden_units": [24], "learning_rate": 0.01, "preprocessing": "standardize"},
    # 6 full batches an epoch: the stop falls inside the third epoch, past the whitening bias's freeze
    # and between two Lookahead pulls
    "speedrun": {"model": "speedrun", "widths": [8, 16, 16], "whiten_bias_epochs": 2},
    # the example plugin (examples/vit_kind): the service's torch loop, with dropout and warm-up
    "vit": {"model": "vit", "width": 32, "depth": 2, "heads": 2, "dropout": 0.1, "warmup_steps": 5},
}  # fmt: skip


@pytest.mark.parametrize("kind", list(SPECS))
def test_resumed_run_ends_with_the_same_weights_and_curve(data_dir: Path, kind: str) -> None:
    spec = {**SPECS[kind], "batch_size": 30, "max_steps": 30, "eval_every": 10, "log_every": 4,
            "checkpoint_every": 8, "device": "cpu"}  # fmt: skip
    whole = InMemoryReporter()
    uninterrupted = run_job(parse_spec(spec), whole, DataSource(data_dir))

    first = StopAtStep(13)  # between train points: the running means carry over too
    stopped = run_job(parse_spec(spec), first, DataSource(data_dir))
    assert stopped.stopped and stopped.steps_done == 13 and stopped.artifact is not None  # the model it reached
    assert [step for step, _ in first.checkpoints] == [8, 13]  # every checkpoint_every, and at the stop

    second = InMemoryReporter()
    resumed = run_job(parse_spec(spec), second, DataSource(data_dir), StartFrom(first.checkpoints[-1][1]))
    assert resumed.steps_done == 30 and not resumed.stopped
    assert uninterrupted.artifact is not None and resumed.artifact is not None
    expected, got = unpack_model(uninterrupted.artifact).weights, unpack_model(resumed.artifact).weights
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert first.points + second.points == whole.points  # no point lost, none twice
    assert resumed.metrics["best_test_accuracy"] == uninterrupted.metrics["best_test_accuracy"]
