"""The model kinds: a spec's `model` -> its spec class, how it trains, and how it loads to predict.

Each kind is one module in this package; adding one is that module plus its line in `KINDS` and
in `JobSpec` (and its job class in `specs`: the kind's spec with the run options). Kind modules
import torch only inside their train and load functions, so the API and the NumPy kind never
import it until they need it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, TypeAdapter

from models.artifacts import ModelArtifact
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.kinds import convnet, numpy_mlp, resnet18, speedrun, torch_mlp
from models.kinds.convnet import ConvNetSpec
from models.kinds.numpy_mlp import NumpyMLPSpec
from models.kinds.resnet18 import ResNet18Spec
from models.kinds.speedrun import SpeedrunSpec
from models.kinds.torch_mlp import TorchMLPSpec
from models.prediction import Predictor
from models.training.reporting import Reporter
from models.training.results import DataSource, RunResult, StartFrom

SpecT = TypeVar("SpecT", bound=BaseModel)


@dataclass(frozen=True)
class ModelKind(Generic[SpecT]):
    spec: type[SpecT]
    train: Callable[[SpecT, ImageArrays, Normalization, Reporter, DataSource, StartFrom], RunResult]
    load: Callable[[SpecT, ModelArtifact], Predictor]
    build: Callable[[SpecT, int], Any]  # the network for `n_classes` classes (a torch module, or the NumPy MLP)
    architecture: tuple[str, ...] = ()  # the spec fields that change the network's tensors
    uses_torch: bool = True  # False: trains and predicts without importing torch


KINDS: dict[str, ModelKind[Any]] = {
    "torch_mlp": ModelKind(TorchMLPSpec, torch_mlp.train, torch_mlp.load, torch_mlp.build, ("hidden_units", "norm")),
    "numpy_mlp": ModelKind(
        NumpyMLPSpec, numpy_mlp.train, numpy_mlp.load, numpy_mlp.build, ("hidden_units",), uses_torch=False
    ),
    "convnet": ModelKind(ConvNetSpec, convnet.train, convnet.load, convnet.build),
    "resnet18": ModelKind(ResNet18Spec, resnet18.train, resnet18.load, resnet18.build, ("stem",)),
    "speedrun": ModelKind(SpeedrunSpec, speedrun.train, speedrun.load, speedrun.build, ("widths",)),
}

TORCH_KINDS = tuple(name for name, kind in KINDS.items() if kind.uses_torch)

JobSpec = Annotated[
    TorchMLPSpec | NumpyMLPSpec | ConvNetSpec | ResNet18Spec | SpeedrunSpec, Field(discriminator="model")
]
job_spec_adapter: TypeAdapter[JobSpec] = TypeAdapter(JobSpec)


def parse_spec(raw: dict[str, Any]) -> JobSpec:
    """What a spec (JSON: a stored job's, or a model's) says to train, in its kind's class. A job's spec also
    holds how it ran (`specs.RunOptions`), which is not the model's: only the kind's own fields are read."""
    kind = KINDS.get(raw.get("model"))  # type: ignore[arg-type]
    if kind is None:
        return job_spec_adapter.validate_python(raw)  # the error names `model`
    return job_spec_adapter.validate_python({key: value for key, value in raw.items() if key in kind.spec.model_fields})


def load_predictor(artifact: ModelArtifact) -> Predictor:
    """The predictor of a stored model; its spec is parsed here, once."""
    spec = parse_spec(artifact.spec)
    return KINDS[spec.model].load(spec, artifact)


def preload_torch() -> None:
    """Import torch and the torch training code now: a worker does this once, before it forks a
    child per job, so each child starts with them already imported. Not torchvision (ResNet18's): it takes
    over a second to import, which every worker's start would pay, and a ResNet18 job's child pays once."""
    import torch._dynamo  # noqa: F401  (torch's optimizers import it at their first step: a second per child)

    import models.networks.convnet
    import models.networks.mlp
    import models.networks.speedrun
    import models.training.speedrun
    import models.training.torch_setup  # noqa: F401


def architecture_mismatch(source_spec: dict[str, Any], spec: JobSpec) -> str | None:
    """Why a job with `source_spec` cannot seed `spec` (another kind, another architecture), or None."""
    if source_spec.get("model") != spec.model:
        return f"it trained a {source_spec.get('model')}, not a {spec.model}"
    for field in KINDS[spec.model].architecture:
        theirs, ours = source_spec.get(field), getattr(spec, field)
        if field == "hidden_units" and theirs != ours:
            assert isinstance(theirs, list)
            if len(theirs) != len(ours):
                return f"it has {len(theirs)} hidden layers ({theirs}) and this spec {len(ours)} ({ours})"
            layer = next(i for i, (a, b) in enumerate(zip(theirs, ours, strict=True)) if a != b)
            return f"hidden layer {layer + 1} has {theirs[layer]} units there and {ours[layer]} here"
        if theirs != ours:
            return f"its {field} is {theirs!r} and this spec's {ours!r}"
    return None
