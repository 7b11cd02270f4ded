"""Model kinds: each maps a spec's `model` to how it is trained and how it is loaded to predict.

Both are named by import path and imported only when needed, so the NumPy kind never imports
torch. A trainer takes (spec, arrays, normalization, reporter) and returns a RunResult; a
loader takes a ModelArtifact and returns a Predictor (models.predict).
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelKind:
    trainer: str
    loader: str


KINDS: dict[str, ModelKind] = {
    "torch_mlp": ModelKind("models.torch_mlp_job:train_torch_mlp", "models.torch_mlp_job:load_torch_mlp"),
    "numpy_mlp": ModelKind("models.numpy_mlp.train:train_numpy_mlp", "models.numpy_mlp.predict:load_numpy_mlp"),
    "convnet": ModelKind("models.convnet_job:train_convnet", "models.convnet_job:load_convnet"),
    "resnet18": ModelKind("models.resnet_job:train_resnet18", "models.resnet_job:load_resnet18"),
}


def _resolve(path: str) -> Callable[..., Any]:
    module_name, function_name = path.split(":")
    return getattr(importlib.import_module(module_name), function_name)  # type: ignore[no-any-return]


def trainer_for(model: str) -> Callable[..., Any]:
    return _resolve(KINDS[model].trainer)


def loader_for(model: str) -> Callable[..., Any]:
    return _resolve(KINDS[model].loader)


def preload_trainers() -> None:
    """Import every trainer now (a worker does this once, before it forks a child per job)."""
    for model in KINDS:
        trainer_for(model)
