"""The report's runs are the report's: every run's full spec against the command the report ran
(`../shared/assignment-report.md`, quoted here) on top of the assignment scripts' defaults."""

import shlex
from pathlib import Path
from typing import Any

import pytest

from app.reports.runs import full_spec, report_runs
from models.data.weights_files import WEIGHTS_FILE

# The assignment's scripts' defaults (train_mlp_numpy.py, train_mlp_pytorch.py, train_convnet_pytorch.py)
MLP_DEFAULTS = {"hidden_units": [100], "learning_rate": 1e-3, "max_steps": 1400, "batch_size": 200, "eval_every": 100}
PYTORCH_MLP_DEFAULTS = {**MLP_DEFAULTS, "optimizer": "sgd"}
CONVNET_DEFAULTS = {"learning_rate": 1e-4, "batch_size": 32, "max_steps": 5000, "eval_every": 500, "optimizer": "adam"}

# The report's commands, as it prints them, by the figure that shows each run
COMMANDS = {
    "1": "python train_mlp_numpy.py",
    "2": "python train_mlp_pytorch.py",
    "3": "python train_mlp_pytorch.py --dnn_hidden_units 800,600,400 --optim adam --learn_rate 0.0001 --max_steps 5000",
    "4": "python train_mlp_pytorch.py --dnn_hidden_units 100,100,50,50,50,50 --optim adam --learn_rate 0.0001 "
    "--max_steps 5000",
    "5": "python train_convnet_pytorch.py",
    "6": "python train_convnet_pytorch.py --pretrained",
}


def expected_fields(command: str) -> dict[str, Any]:
    """The spec fields a command sets: the script's defaults, then its flags."""
    script, *flags = shlex.split(command)[1:]
    fields: dict[str, Any] = {
        "train_mlp_numpy.py": {"model": "numpy_mlp", **MLP_DEFAULTS},
        "train_mlp_pytorch.py": {"model": "torch_mlp", **PYTORCH_MLP_DEFAULTS},
        "train_convnet_pytorch.py": {"model": "convnet", **CONVNET_DEFAULTS},
    }[script]
    while flags:
        flag = flags.pop(0)
        if flag == "--pretrained":  # the transfer-learning run: ResNet18, only its last layer replaced, none frozen
            fields = {**fields, "model": "resnet18", "pretrained": True, "freeze_backbone": False, "stem": "imagenet"}
            del fields["optimizer"]  # the ResNet18 run's optimizer is the convnet script's, checked below
            continue
        value = flags.pop(0)
        if flag == "--dnn_hidden_units":
            fields["hidden_units"] = [int(units) for units in value.split(",")]
        elif flag == "--optim":
            fields["optimizer"] = value
        elif flag == "--learn_rate":
            fields["learning_rate"] = float(value)
        elif flag == "--max_steps":
            fields["max_steps"] = int(value)
        else:
            raise AssertionError(f"a flag this test does not know: {flag}")
    return fields


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / WEIGHTS_FILE).write_bytes(b"present")  # the report fine-tuned ImageNet weights
    return {run.figure: run for run in report_runs(tmp_path, 5000, 5000)}


def test_every_figures_run_is_the_command_the_report_ran(runs: dict[str, Any]) -> None:
    figures = [figure for figure, run in runs.items() if run.in_report]
    assert figures == ["1", "2", "3", "4", "5", "6"]
    for figure, command in COMMANDS.items():
        spec = full_spec(runs[figure]).model_dump(mode="json")
        for field, value in expected_fields(command).items():
            assert spec[field] == value, f"figure {figure}: {field} is {spec[field]!r}, the report's {value!r}"
    assert full_spec(runs["6"]).model_dump()["optimizer"] == "adam"  # the convnet script's optimizer


def test_the_reports_accuracies_where_its_text_gives_one(runs: dict[str, Any]) -> None:
    # "approximately 0.49 test accuracy" (2.1); "stays around 0.53" (the wide and the deep runs)
    assert {figure: run.report_accuracy for figure, run in runs.items() if run.report_accuracy is not None} == {
        "2": 0.49, "3": 0.53, "4": 0.53}  # fmt: skip
    assert runs["3"].caption.startswith("Test/train scores of a wide MLP PyTorch model")


def test_runs_beyond_the_figures_are_marked_and_differ_from_a_figures_run_in_one_field(runs: dict[str, Any]) -> None:
    beyond = {figure: run for figure, run in runs.items() if not run.in_report}
    assert list(beyond) == ["tanh-wide", "tanh-deep", "batchnorm", "layernorm"]
    assert all(run.heading.startswith("Beyond the report's figures (section") for run in beyond.values())
    bases = {"tanh-wide": "3", "tanh-deep": "4", "batchnorm": "3", "layernorm": "3"}
    for name, base in bases.items():
        ours = full_spec(beyond[name]).model_dump(mode="json")
        theirs = full_spec(runs[base]).model_dump(mode="json")
        changed = {field for field in ours if ours[field] != theirs[field]} - {"name"}
        assert changed in ({"activation"}, {"norm"}), (name, changed)


def test_only_the_deep_runs_leave_the_assignments_initialisation_and_say_why(runs: dict[str, Any]) -> None:
    inits = {figure: full_spec(run).model_dump().get("init") for figure, run in runs.items()}
    assert {figure for figure, init in inits.items() if init == "default"} == {"4", "tanh-deep"}
    assert all("chance" in (runs[figure].note or "") for figure in ("4", "tanh-deep"))
