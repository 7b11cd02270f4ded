"""The one list of model kinds: the built-in ones (a module of this package each, holding its `KIND`) and those
installed packages add through the `cifar_jobs.kinds` entry point group (a plugin's `KIND`, most often made with
`torch_kind`). Everything that knows the kinds (the API's validation, `/models`, the OpenAPI document, the page's
form, sweeps, plans, the workers) reads `discover()`'s answer.

A kind that cannot be registered (its package fails to import, its name is taken, a field has no default) is a
`KindPluginError` naming the package: the service does not start half-way.
"""

import dataclasses
import importlib
import pkgutil
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from models.artifacts import ModelArtifact
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.kinds.common import CommonSpec, TorchJobSpec
from models.prediction import Predictor
from models.training.reporting import Reporter
from models.training.results import DataSource, RunResult, StartFrom

SpecT = TypeVar("SpecT", bound=BaseModel)
ENTRY_POINT_GROUP = "cifar_jobs.kinds"
KIND_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
BUILT_IN = "cifar-jobs"  # the package of the built-in kinds


class KindPluginError(RuntimeError):
    """A kind that cannot be registered; the message names its package and what to fix."""


class KindNotInstalled(LookupError):
    """A stored spec (a job's, a model's) of a kind this service does not have (its plugin was uninstalled)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"the model kind {kind!r} is not installed in this service (its package is missing): "
                         "install it and restart the service to use this job's model")  # fmt: skip
        self.kind = kind


@dataclass(frozen=True)
class ModelKind(Generic[SpecT]):
    """A model kind: its spec class (hyperparameters with defaults; `model` a Literal of the kind's name), how
    it trains, how a stored model loads to predict, and how its network is built for `n_classes` classes."""

    spec: type[SpecT]
    train: Callable[[SpecT, ImageArrays, Normalization, Reporter, DataSource, StartFrom], RunResult]
    load: Callable[[SpecT, ModelArtifact], Predictor]
    build: Callable[[SpecT, int], Any]  # a torch module, or the NumPy MLP
    architecture: tuple[str, ...] = ()  # the spec fields that change the network's tensors
    uses_torch: bool = True  # False: trains and predicts without importing torch
    listed: int = field(default=100, compare=False)  # where /models and the page list it (then by name)
    package: str = field(default=BUILT_IN, compare=False)  # who registered it (set by `discover`)
    version: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return kind_name(self.spec)


def kind_name(spec: type[BaseModel]) -> str:
    """The kind a spec class is of: its `model` field's one Literal value."""
    model = spec.model_fields.get("model")
    values = typing.get_args(model.annotation) if model is not None else ()
    if model is None or typing.get_origin(model.annotation) is not typing.Literal or len(values) != 1:
        raise ValueError(f'{spec.__name__} needs a field `model: Literal["<kind name>"]`')
    return str(values[0])


def torch_kind(
    spec: type[SpecT],
    build: Callable[[SpecT, int], Any],
    architecture: Iterable[str] = (),
    convolutional: bool = True,
    listed: int = 100,
) -> ModelKind[SpecT]:
    """A kind from a spec class (a `TorchJobSpec` with the network's fields and `learning_rate`) and
    `build(spec, n_classes) -> torch.nn.Module` (taking images as N x 3 x H x W when `convolutional`, else
    flattened): the service's torch loop trains it (optimizer, schedule, precision, checkpoints, evaluation) and
    its predictor answers with the same preprocessing."""

    def train(spec_: SpecT, arrays: ImageArrays, norm: Normalization, reporter: Reporter, source: DataSource,
              start: StartFrom) -> RunResult:  # fmt: skip
        from models.training.torch_setup import train_torch_network

        assert isinstance(spec_, TorchJobSpec)
        return train_torch_network(spec_, lambda: build(spec_, arrays.n_classes), arrays, norm, reporter, start,
                                   convolutional=convolutional)  # fmt: skip

    def load(spec_: SpecT, artifact: ModelArtifact) -> Predictor:
        from models.prediction.torch_predictor import TorchPredictor

        assert isinstance(spec_, TorchJobSpec)
        return TorchPredictor(build(spec_, len(artifact.class_names)), artifact, spec_, convolutional=convolutional)

    if not (isinstance(spec, type) and issubclass(spec, TorchJobSpec)):
        raise TypeError(f"torch_kind: {getattr(spec, '__name__', spec)} is not a models.kinds.common.TorchJobSpec")
    return ModelKind(spec, train, load, build, tuple(architecture), listed=listed)


def discover() -> dict[str, ModelKind[Any]]:
    """Every kind: the built-in ones (each module of this package that has a `KIND`), then the plugins'."""
    import models.kinds as built_in

    kinds: dict[str, ModelKind[Any]] = {}
    modules = [info.name for info in pkgutil.iter_modules(built_in.__path__) if not info.ispkg]
    for module_name in modules:
        kind = getattr(importlib.import_module(f"models.kinds.{module_name}"), "KIND", None)
        if isinstance(kind, ModelKind):
            _register(kinds, kind, BUILT_IN, "")
    kinds = dict(sorted(kinds.items(), key=lambda item: (item[1].listed, item[0])))
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda entry: entry.name):
        package, version = _package_of(entry)
        _register(kinds, _load(entry, package), package, version, entry.name)
    return kinds


def _package_of(entry: EntryPoint) -> tuple[str, str]:
    dist = entry.dist
    return (dist.name, dist.version) if dist is not None else (entry.value.split(":")[0], "")


def _load(entry: EntryPoint, package: str) -> ModelKind[Any]:
    try:
        kind = entry.load()
    except Exception as exc:  # whatever the plugin's import raises stops the start, naming it
        raise KindPluginError(
            f"the model kind {entry.name!r} of package {package} could not be loaded ({entry.value}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(kind, ModelKind):
        raise KindPluginError(
            f"the model kind {entry.name!r} of package {package} ({entry.value}) is a {type(kind).__name__}, "
            "not a models.kinds.registry.ModelKind (see torch_kind)"
        )
    return kind


def _register(
    kinds: dict[str, ModelKind[Any]], kind: ModelKind[Any], package: str, version: str, entry_name: str | None = None
) -> None:
    where = f"package {package}" + (f" (entry point {entry_name!r})" if entry_name else "")
    try:
        name = kind.name
    except ValueError as exc:
        raise KindPluginError(f"a model kind of {where}: {exc}") from None
    if not KIND_NAME.match(name):
        raise KindPluginError(f"the model kind {name!r} of {where}: a kind's name is lower-case letters, digits "
                              "and `_`, starting with a letter, up to 40 characters")  # fmt: skip
    if entry_name is not None and entry_name != name:
        raise KindPluginError(f"the entry point {entry_name!r} of package {package} registers a kind named "
                              f"{name!r}: name the entry point as the kind")  # fmt: skip
    if name in kinds:
        raise KindPluginError(f"the model kind {name!r} of {where} is already registered by package "
                              f"{kinds[name].package}: one of them must be renamed or uninstalled")  # fmt: skip
    if not issubclass(kind.spec, CommonSpec):
        raise KindPluginError(f"the model kind {name!r} of {where}: its spec {kind.spec.__name__} is not a "
                              "models.kinds.common.CommonSpec (TorchJobSpec for torch networks)")  # fmt: skip
    required = [key for key, info in kind.spec.model_fields.items() if key != "model" and info.is_required()]
    if required:
        raise KindPluginError(f"the model kind {name!r} of {where}: every field needs a default, and "
                              f"{', '.join(required)} has none")  # fmt: skip
    missing = [key for key in kind.architecture if key not in kind.spec.model_fields]
    if missing:
        raise KindPluginError(f"the model kind {name!r} of {where}: its architecture names "
                              f"{', '.join(missing)}, which its spec lacks")  # fmt: skip
    kinds[name] = dataclasses.replace(kind, package=package, version=version)
