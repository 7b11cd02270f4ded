"""The PyTorch MLP's options: architecture, optimizers, schedules and augmentation."""

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from models.kinds import parse_spec
from models.kinds.torch_mlp import build
from models.networks.mlp import TorchMLP, TorchMLPConfig
from models.run import run_job
from models.training.augment import RandomCropFlip
from models.training.optim import build_optimizer, lr_factor
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource


def mlp_spec(**overrides: object) -> dict[str, Any]:
    return {"model": "torch_mlp", "hidden_units": [32, 16], **overrides}


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm", "layernorm_custom", "layernorm_manual"])
def test_norm_layers_follow_each_hidden_linear(norm: str) -> None:
    model = build(parse_spec(mlp_spec(norm=norm, activation="tanh", dropout=0.1)), 10)  # type: ignore[arg-type]
    kinds = [type(m).__name__ for m in model.layers]
    norm_name = {
        "batchnorm": "BatchNorm1d",
        "layernorm": "LayerNorm",
        "layernorm_custom": "CustomLayerNormAutograd",
        "layernorm_manual": "CustomLayerNormManualModule",
    }[norm]
    assert kinds == ["Linear", norm_name, "Tanh", "Dropout", "Linear", norm_name, "Tanh", "Dropout", "Linear"]


def test_assignment_init_draws_small_weights_and_zero_biases() -> None:
    torch.manual_seed(0)
    model = TorchMLP(TorchMLPConfig(3072, (500,), 10))
    first = model.layers[0]
    assert isinstance(first, nn.Linear)
    assert abs(first.weight.std().item() - 1e-4) < 5e-6
    assert first.bias.abs().max().item() == 0
    default = TorchMLP(TorchMLPConfig(3072, (500,), 10, init="default")).layers[0]
    assert isinstance(default, nn.Linear) and default.weight.std().item() > 1e-3


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", torch.optim.SGD),
        ("sgd_momentum", torch.optim.SGD),
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
    ],
)
def test_optimizers(name: str, cls: type) -> None:
    spec = parse_spec(mlp_spec(optimizer=name, weight_decay=0.01))
    optimizer = build_optimizer(nn.Linear(2, 2).parameters(), spec, 0.1)  # type: ignore[arg-type]
    assert isinstance(optimizer, cls)
    assert optimizer.defaults["weight_decay"] == 0.01
    if name == "sgd_momentum":
        assert optimizer.defaults["momentum"] == 0.9


def test_schedules_warm_up_then_decay() -> None:
    cosine = parse_spec(mlp_spec(lr_schedule="cosine", warmup_steps=10, max_steps=110))
    assert [lr_factor(s, cosine, 110) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])  # type: ignore[arg-type]
    assert lr_factor(60, cosine, 110) == pytest.approx(0.5)  # type: ignore[arg-type]
    assert lr_factor(110, cosine, 110) == pytest.approx(0.0)  # type: ignore[arg-type]
    step = parse_spec(mlp_spec(lr_schedule="step", lr_step_every=100, lr_step_gamma=0.5))
    assert [lr_factor(s, step, 1000) for s in (0, 99, 100, 250)] == [1.0, 1.0, 0.5, 0.25]  # type: ignore[arg-type]


def test_crop_flip_shifts_and_mirrors_whole_images() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = RandomCropFlip(2, seed=0, device=torch.device("cpu"))(x)
    assert out.shape == x.shape
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):  # each output is some 8x8 window of the padded image, maybe mirrored
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    again = RandomCropFlip(2, seed=0, device=torch.device("cpu"))(x)
    assert torch.equal(out, again)  # seeded


@pytest.mark.parametrize(
    "options",
    [
        {
            "norm": "layernorm_manual",
            "optimizer": "adamw",
            "weight_decay": 0.05,
            "lr_schedule": "cosine",
            "warmup_steps": 5,
            "label_smoothing": 0.1,
            "augmentation": "crop_flip",
            "dropout": 0.1,
            "activation": "gelu",
            "init": "default",
        },
        {
            "norm": "batchnorm",
            "optimizer": "sgd_momentum",
            "learning_rate": 0.05,
            "lr_schedule": "step",
            "lr_step_every": 20,
            "activation": "relu",
        },
    ],
)
def test_option_combinations_train_on_tiny_data(data_dir: Path, options: dict[str, Any]) -> None:
    spec = mlp_spec(
        batch_size=40,
        max_steps=60,
        eval_every=60,
        log_every=20,
        preprocessing="standardize",
        **{"optimizer": "adam", "learning_rate": 0.01, **options},
    )
    result = run_job(parse_spec(spec), InMemoryReporter(), DataSource(data_dir))
    assert result.metrics["test_accuracy"] >= 0.8
