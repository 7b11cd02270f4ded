"""The model kinds: a spec's `model` -> its spec class, how it trains, and how it loads to predict.

`KINDS` is the one list (`models.kinds.registry.discover`): a built-in kind is one module of this package with a
`KIND`; an installed package adds one through the `cifar_jobs.kinds` entry point group. What validates specs
(`JobSpec` here, the job classes in `specs`) is made from it at start. Kind modules import torch only inside their
train and load functions, so the API and the NumPy kind never import it until they need it.
"""

from __future__ import annotations  # `JobSpec` in signatures is made at first use

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, TypeAdapter

from models.artifacts import ModelArtifact
from models.kinds.common import CommonSpec
from models.kinds.registry import KindNotInstalled, KindPluginError, ModelKind, discover
from models.prediction import Predictor

__all__ = ["KINDS", "TORCH_KINDS", "JobSpec", "KindNotInstalled", "KindPluginError", "ModelKind", "parse_spec"]

if TYPE_CHECKING:
    JobSpec = CommonSpec  # any kind's spec (what they share; `model` among it)
    KINDS: dict[str, ModelKind[Any]]
    TORCH_KINDS: tuple[str, ...]
    job_spec_adapter: TypeAdapter[JobSpec]


@dataclass(frozen=True)
class _Registry:
    kinds: dict[str, ModelKind[Any]]
    union: Any  # the kinds' specs, discriminated by `model`
    adapter: TypeAdapter[Any]


@functools.cache
def _registry() -> _Registry:
    """The kinds and what is made of them, at their first use: not when this package is imported, which a plugin
    does (for `models.kinds.common`) before it has made its own `KIND`."""
    try:
        kinds = discover()
    except KindPluginError as exc:  # the service does not start half-way: one line naming the package
        raise SystemExit(f"cifar-jobs cannot start: {exc}") from None
    union: Any = Annotated[Union[tuple(kind.spec for kind in kinds.values())], Field(discriminator="model")]  # noqa: UP007
    return _Registry(kinds, union, TypeAdapter(union))


def __getattr__(name: str) -> Any:
    """`KINDS`, `TORCH_KINDS`, `JobSpec` and `job_spec_adapter`, made at the first use of one of them."""
    if name not in ("KINDS", "TORCH_KINDS", "JobSpec", "job_spec_adapter"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    registry = _registry()
    if name == "KINDS":
        return registry.kinds
    if name == "TORCH_KINDS":
        return tuple(kind_name for kind_name, kind in registry.kinds.items() if kind.uses_torch)
    return registry.union if name == "JobSpec" else registry.adapter


def parse_spec(raw: dict[str, Any]) -> JobSpec:
    """What a spec (JSON: a stored job's, or a model's) says to train, in its kind's class. A job's spec also
    holds how it ran (`specs.RunOptions`), which is not the model's: only the kind's own fields are read.
    KindNotInstalled when its kind is not (any more) installed here."""
    name = raw.get("model")
    kind = _registry().kinds.get(name)  # type: ignore[arg-type]
    if kind is None:
        if isinstance(name, str) and name:
            raise KindNotInstalled(name)
        parsed: JobSpec = _registry().adapter.validate_python(raw)  # the error names `model`
        return parsed
    parsed = _registry().adapter.validate_python(
        {key: value for key, value in raw.items() if key in kind.spec.model_fields}
    )
    return parsed


def load_predictor(artifact: ModelArtifact) -> Predictor:
    """The predictor of a stored model; its spec is parsed here, once."""
    spec = parse_spec(artifact.spec)
    return _registry().kinds[spec.model].load(spec, artifact)


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
    for field in _registry().kinds[spec.model].architecture:
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
