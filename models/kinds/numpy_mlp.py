"""The `numpy_mlp` kind: the assignment's NumPy MLP (part 1), hand-written backprop, plain SGD, CPU only.
Never imports torch."""

import logging
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, field_validator

from models.artifacts import ModelArtifact
from models.data.arrays import ImageArrays
from models.data.preprocessing import FlatNormalizer, Normalization
from models.kinds.common import CIFAR_INPUTS, CommonSpec, MLPSpecMixin
from models.kinds.registry import ModelKind
from models.networks.numpy_mlp import MLP
from models.prediction import softmax
from models.training.init_weights import matched_weights
from models.training.loop import LoopPlan, run_loop
from models.training.numpy_backend import NumpyMLPBackend
from models.training.reporting import Reporter
from models.training.results import DataSource, RunResult, StartFrom

log = logging.getLogger(__name__)


class NumpyMLPSpec(MLPSpecMixin, CommonSpec):
    """The assignment's NumPy MLP (part 1): hand-written backprop, plain SGD, CPU only."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"model": "numpy_mlp"}]})

    model: Literal["numpy_mlp"] = Field(description="The kind of network to train.")
    optimizer: Literal["sgd"] = Field("sgd", description="The NumPy MLP trains with plain mini-batch SGD only.")
    dtype: Literal["float32", "float64"] = Field("float32", description="Floating-point type of weights and batches.")

    @field_validator("optimizer", mode="before")
    @classmethod
    def _sgd_only(cls, value: object) -> object:
        if value != "sgd":
            raise ValueError(f"numpy_mlp trains with plain SGD only, not {value!r}; use torch_mlp for other optimizers")
        return value

    @field_validator("device")
    @classmethod
    def _cpu_only(cls, value: str) -> str:
        if value == "cuda":
            raise ValueError('numpy_mlp runs on the CPU only: use "cpu" or "auto", or torch_mlp for a GPU')
        return value


def build(spec: NumpyMLPSpec, n_classes: int) -> MLP:
    dtype = np.float64 if spec.dtype == "float64" else np.float32
    return MLP(CIFAR_INPUTS, list(spec.hidden_units), n_classes, seed=spec.seed, dtype=dtype)


def train(
    spec: NumpyMLPSpec,
    arrays: ImageArrays,
    norm: Normalization,
    reporter: Reporter,
    source: DataSource,
    start: StartFrom,
) -> RunResult:
    model = build(spec, arrays.n_classes)
    if start.init is not None and start.checkpoint is None:
        weights = model.state_dict()
        shapes = {name: tuple(value.shape) for name, value in weights.items()}
        for name, value in matched_weights(shapes, start.init, start.init_job or 0, arrays.n_classes).items():
            weights[name][...] = value
    backend = NumpyMLPBackend(model, arrays, norm, spec.batch_size, spec.learning_rate, spec.seed)
    log.info("training on the CPU with NumPy in %s, %s parameters", spec.dtype,
             f"{sum(w.size for w in model.state_dict().values()):,}")  # fmt: skip
    plan = LoopPlan(spec.max_steps, spec.log_every, spec.eval_every, spec.checkpoint_every, spec.batch_size)
    result = run_loop(backend, plan, reporter, start.checkpoint, evaluate_first=start.init is not None)
    runtime = {"device": "cpu", "precision": spec.dtype}
    return RunResult(result.steps_done, result.stopped, result.metrics, runtime, model.state_dict())


class NumpyMLPPredictor:
    def __init__(self, spec: NumpyMLPSpec, artifact: ModelArtifact) -> None:
        self.class_names = artifact.class_names
        self.model = build(spec, len(self.class_names))
        for name, value in self.model.state_dict().items():
            value[...] = artifact.weights[name]
        self.normalize = FlatNormalizer(artifact.normalization, self.model.dtype)

    def probabilities(self, images_u8: np.ndarray) -> np.ndarray:
        return softmax(self.model.forward(self.normalize(images_u8.reshape(len(images_u8), -1))))


def load(spec: NumpyMLPSpec, artifact: ModelArtifact) -> NumpyMLPPredictor:
    return NumpyMLPPredictor(spec, artifact)


KIND = ModelKind(NumpyMLPSpec, train, load, build, ("hidden_units",), uses_torch=False, listed=2)
