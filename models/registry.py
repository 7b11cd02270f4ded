"""Model kinds: each maps a spec's `model` to the function that trains it.

Trainers are named by import path and imported only when a job of that kind runs, so the
NumPy kinds never import torch. A trainer takes (spec, arrays, normalization, reporter) and
returns a RunResult.
"""

import importlib
from collections.abc import Callable
from typing import Any

TRAINERS: dict[str, str] = {
    "torch_mlp": "models.torch_mlp_job:train_torch_mlp",
    "numpy_mlp": "models.numpy_mlp.train:train_numpy_mlp",
}


def trainer_for(model: str) -> Callable[..., Any]:
    module_name, function_name = TRAINERS[model].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def preload_trainers() -> None:
    """Import every trainer now (a worker does this once, before it forks a child per job)."""
    for model in TRAINERS:
        trainer_for(model)
