"""A sweep request: the base job spec, the search space, the method, the objective and early stopping.

Every search dimension is checked against the base spec's model kind before anything is stored: a
field the kind does not take, a choice or a range end the field refuses, each is an error naming it
(`search.hidden_units.choices[2]`), which the API answers with a 422.
"""

import itertools
import math
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, ValidationError, model_validator

from models.kinds import KINDS
from models.kinds.common import NO_CONTROL_CHARACTERS
from specs import RunOptions, job_fields, job_spec_adapter

MAX_TRIALS = 500
MAX_CHOICES = 100
# the kind's fields a search may not vary: what the job is, and its label
FIXED_FIELDS = {"model", "name"}
# fields a search may not vary, with why: each would need its own checks per trial
NOT_SEARCHABLE = {
    "init_from_job": "the job to start from is checked once, for the base (set it there); a sweep over "
    "starting points is one sweep per starting job",
    # how a job runs (its priority against the admins' limit, its gpus and cpus against the caller's quotas) is
    # checked once, on the base: a searched value would reach the trials unchecked
    **{
        option: f"{option} is how a trial runs, not what it trains: set it in `base`, where it is checked"
        for option in RunOptions.model_fields
    },
}


class Choices(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choices: list[Any] = Field(min_length=1, max_length=MAX_CHOICES, description="The values to try.")


class Uniform(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uniform: tuple[float, float] = Field(description="[low, high], drawn uniformly (integers for an integer field).")


class LogUniform(BaseModel):
    model_config = ConfigDict(extra="forbid")
    log_uniform: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = Field(
        description="[low, high], both > 0, drawn uniformly on a log scale (integers for an integer field)."
    )


def _dimension_kind(value: Any) -> str | None:
    """Which of the three a search dimension is, by its one key."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return next((key for key in ("choices", "uniform", "log_uniform") if key in value), None)
    return None


Dimension = Annotated[
    Annotated[Choices, Tag("choices")] | Annotated[Uniform, Tag("uniform")] | Annotated[LogUniform, Tag("log_uniform")],
    Discriminator(
        _dimension_kind,
        custom_error_type="invalid_dimension",
        custom_error_message='give {"choices": [...]}, {"uniform": [low, high]} or {"log_uniform": [low, high]}',
    ),
]


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: Literal["accuracy", "loss"] = Field("accuracy", description="Read from the test evaluations.")
    split: Literal["test"] = Field("test", description="The test evaluations every job logs (`eval_every`).")
    mode: Literal["max", "min"] | None = Field(None, description="Default: `max` for accuracy, `min` for loss.")

    @model_validator(mode="after")
    def _default_mode(self) -> "Objective":
        if self.mode is None:
            self.mode = "max" if self.metric == "accuracy" else "min"
        return self


class EarlyStopping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["successive_halving", "hyperband"] = Field(
        "successive_halving",
        description="Optuna's pruner on the test evaluations: a trial that is not in the best "
        "1/`reduction_factor` of those that reached the same rung stops there.",
    )
    min_steps: int = Field(ge=1, le=1_000_000, description="The first rung: no trial stops before this step.")
    reduction_factor: int = Field(3, ge=2, le=10, description="Keep the best 1/this at each rung.")


class SweepSpec(BaseModel):
    """What `POST /sweeps` takes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "wide vs deep",
                    "base": {"model": "torch_mlp", "optimizer": "adam", "max_steps": 5000},
                    "search": {
                        "hidden_units": {"choices": [[800, 600, 400], [100, 100, 50, 50, 50, 50], [1024, 1024]]},
                        "learning_rate": {"log_uniform": [1e-4, 3e-3]},
                        "norm": {"choices": ["none", "batchnorm", "layernorm_manual"]},
                    },
                    "method": "tpe",
                    "trials": 24,
                    "max_concurrent": 2,
                    "objective": {"metric": "accuracy", "split": "test", "mode": "max"},
                    "early_stopping": {"method": "successive_halving", "min_steps": 500},
                }
            ]
        },
    )

    name: str | None = Field(None, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    base: dict[str, Any] = Field(description="A job spec (as `POST /jobs` takes) that every trial starts from.")
    search: dict[str, Dimension] = Field(
        min_length=1,
        max_length=20,
        description='Spec field -> `{"choices": [...]}`, `{"uniform": [low, high]}` or `{"log_uniform": [low, high]}`.',
    )
    method: Literal["grid", "random", "tpe"] = Field(
        "tpe", description="`grid`: every combination of the choices; `random`; `tpe`: Optuna's TPE sampler."
    )
    trials: int | None = Field(
        None, ge=1, le=MAX_TRIALS, description="Trials to run; default: the grid's size for `grid`, else 10."
    )
    max_concurrent: int = Field(2, ge=1, le=64, description="Trials queued or running at one time.")
    objective: Objective = Field(default_factory=lambda: Objective(metric="accuracy", split="test", mode=None))
    early_stopping: EarlyStopping | None = Field(None, description="Stop hopeless trials early (off when absent).")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seeds the sampler.")
    _base: dict[str, Any] = PrivateAttr(default_factory=dict)  # the base with defaults, parsed once

    @model_validator(mode="after")
    def _check_against_the_kind(self) -> "SweepSpec":
        base = self._base = self._parsed_base()
        kind_fields = job_fields(base["model"])
        for field, dimension in self.search.items():
            where = f"search.{field}"
            if field in NOT_SEARCHABLE:
                raise ValueError(f"{where}: not searchable: {NOT_SEARCHABLE[field]}")
            if field in FIXED_FIELDS or field not in kind_fields:
                raise ValueError(f"{where}: the {base['model']} model kind has no field {field!r} to search")
            if isinstance(dimension, Choices):
                for i, choice in enumerate(dimension.choices):
                    _check_value(base, field, choice, f"{where}.choices[{i}]")
                if len({repr(c) for c in dimension.choices}) != len(dimension.choices):
                    raise ValueError(f"{where}.choices: a value is listed twice")
                continue
            low, high = dimension.uniform if isinstance(dimension, Uniform) else dimension.log_uniform
            kind = "uniform" if isinstance(dimension, Uniform) else "log_uniform"
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"{where}.{kind}: needs [low, high] with low < high")
            _check_value(base, field, _as_field_number(base, field, low), f"{where}.{kind}[0]")
            _check_value(base, field, _as_field_number(base, field, high), f"{where}.{kind}[1]")
        if self.method == "grid":
            ranged = [f for f, d in self.search.items() if not isinstance(d, Choices)]
            if ranged:
                raise ValueError(f"search.{ranged[0]}: a grid takes only `choices`, not a range")
            size = self.grid_size()
            if size > MAX_TRIALS:
                raise ValueError(f"search: the grid has {size:,} points, over the limit of {MAX_TRIALS}")
            if self.trials is not None and self.trials > size:
                raise ValueError(f"trials: {self.trials} is more than the grid's {size} points")
        if self.trials is None:
            self.trials = self.grid_size() if self.method == "grid" else 10
        if self.early_stopping is not None:
            max_steps = int(base["max_steps"])
            if "max_steps" not in self.search and self.early_stopping.min_steps >= max_steps:
                raise ValueError(
                    f"early_stopping.min_steps: {self.early_stopping.min_steps} is not below the base max_steps "
                    f"({max_steps}), so no trial could stop early"
                )
        return self

    def _parsed_base(self) -> dict[str, Any]:
        try:
            return job_spec_adapter.validate_python(self.base).model_dump(mode="json")
        except ValidationError as exc:
            raise ValueError(f"base: {_first_error(exc)}") from None

    def grid_size(self) -> int:
        return math.prod(len(d.choices) for d in self.search.values() if isinstance(d, Choices))

    def grid(self) -> list[dict[str, Any]]:
        names = list(self.search)
        values = [d.choices for d in self.search.values() if isinstance(d, Choices)]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]

    def base_spec(self) -> dict[str, Any]:
        """The base spec with the kind's defaults filled in."""
        return self._base

    def is_integer_field(self, field: str) -> bool:
        return _is_integer(self.base_spec(), field)


def _is_integer(base: dict[str, Any], field: str) -> bool:
    annotation = job_fields(base["model"])[field].annotation
    return annotation is int or (int in get_args(annotation) and bool not in get_args(annotation))


def _as_field_number(base: dict[str, Any], field: str, value: float) -> float | int:
    return round(value) if _is_integer(base, field) else value


def _check_value(base: dict[str, Any], field: str, value: Any, where: str) -> None:
    try:
        job_spec_adapter.validate_python({**base, field: value})
    except ValidationError as exc:
        raise ValueError(f"{where}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"] if part not in KINDS)
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message
