"""Starting from a trained model, in process: the matched weights, the first evaluation, and a new head
for another class count."""

from pathlib import Path

import numpy as np
import pytest

from models.artifacts import ModelArtifact, unpack_model
from models.errors import JobError
from models.kinds import parse_spec
from models.run import run_job
from models.training.init_weights import matched_weights
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource, StartFrom
from tests.conftest import TINY_TRAINING
from tests.datagen import write_image_folder


def test_matched_weights_keep_every_layer_but_a_head_for_other_classes() -> None:
    source = ModelArtifact(
        {}, [str(i) for i in range(10)], None,  # type: ignore[arg-type]
        {"body.weight": np.ones((64, 3)), "head.weight": np.ones((10, 64)), "head.bias": np.ones(10)},
    )  # fmt: skip
    same = matched_weights({"body.weight": (64, 3), "head.weight": (10, 64), "head.bias": (10,)}, source, 7, 10)
    assert set(same) == {"body.weight", "head.weight", "head.bias"}
    three = matched_weights({"body.weight": (64, 3), "head.weight": (3, 64), "head.bias": (3,)}, source, 7, 3)
    assert set(three) == {"body.weight"}  # the head starts new
    with pytest.raises(JobError, match=r"body.weight is \(64, 3\) in job 7's model and \(32, 3\) here"):
        matched_weights({"body.weight": (32, 3), "head.weight": (10, 64), "head.bias": (10,)}, source, 7, 10)


@pytest.mark.parametrize("model", ["torch_mlp", "numpy_mlp", "speedrun"])
def test_a_run_from_a_model_first_evaluates_exactly_where_that_model_ended(data_dir: Path, model: str) -> None:
    raw = {"model": model, **TINY_TRAINING, "learning_rate": 0.01}
    if model == "speedrun":  # its own widths and step units
        raw = {**raw, "widths": [8, 16, 16], "learning_rate": 11.5}
        del raw["hidden_units"]
    spec = parse_spec(raw)
    first_reporter = InMemoryReporter()
    first = run_job(spec, first_reporter, DataSource(data_dir))
    assert first.artifact is not None
    source = unpack_model(first.artifact)
    last_test = [p for p in first_reporter.points if p[1] == "test"][-1]

    reporter = InMemoryReporter()
    second = run_job(spec, reporter, DataSource(data_dir), StartFrom(None, source, 1))
    step0 = reporter.points[0]
    assert step0[:2] == (0, "test")
    assert step0[2] == pytest.approx(last_test[2], rel=1e-6) and step0[3] == last_test[3]
    assert second.steps_done == 40 and [p[0] for p in reporter.points if p[1] == "test"] == [0, 20, 40]


def test_convnet_from_a_cifar_job_gets_a_new_head_for_three_classes(data_dir: Path) -> None:
    write_image_folder(data_dir / "my_photos", ["cat", "dog", "frog"], n_train_per_class=8, n_test_per_class=4)
    spec = {"model": "convnet", "batch_size": 16, "max_steps": 2, "eval_every": 2, "log_every": 1}
    first = run_job(parse_spec(spec), InMemoryReporter(), DataSource(data_dir))
    assert first.artifact is not None
    source = unpack_model(first.artifact)
    tuned = run_job(
        parse_spec({**spec, "dataset": "my_photos", "learning_rate": 1e-12}),
        InMemoryReporter(),
        DataSource(data_dir),
        StartFrom(None, source, 1),
    )
    assert tuned.artifact is not None
    weights = unpack_model(tuned.artifact).weights
    heads = [name for name, value in weights.items() if value.shape[:1] == (3,)]
    assert heads and all(source.weights[name].shape[:1] == (10,) for name in heads)
    first_conv = next(name for name in weights if name.endswith("weight") and weights[name].ndim == 4)
    np.testing.assert_allclose(weights[first_conv], source.weights[first_conv], atol=1e-6)  # lr 1e-12: unchanged
