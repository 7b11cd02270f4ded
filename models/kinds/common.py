"""The parts of job specs that several model kinds share: common fields, limits, MLP widths, and
the training and runtime options of every torch kind.

These are what to train; a job's spec also says how to run it (`specs`, which joins the two into the flat
object clients send). The API validates requests and the worker reads stored specs with the same classes, so
a spec means the same thing on both sides. Nothing here imports torch.
"""

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from models.data.catalog import DATASET_NAME_PATTERN
from models.training.alerts import MAX_ALERTS, AlertRule

CIFAR_INPUTS = 3 * 32 * 32
MAX_PARAMETERS = 50_000_000
MAX_STEPS = 1_000_000
MAX_BATCH = 8192
MAX_TRAIN_POINTS = 100_000  # a curve's train points: bounds the rows a job writes and /metrics reads
MAX_EVALUATIONS = 1_000  # whole-test-set evaluations per job


# The schema version of the specs this code writes and reads. Bump it when a kind gains a field (or a
# field changes meaning): a job is stored with it, and an executor claims only jobs of a version it
# knows, so a worker older than the API leaves a newer spec to the workers that understand it (instead of
# failing it on a field it does not know). 2: the version this was introduced at; 3: the `speedrun` kind;
# 4: `alerts`.
SPEC_VERSION = 4

# Text that reaches the database: PostgreSQL refuses NUL in text, and control characters in a label
# are never meant.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


class CommonSpec(BaseModel):
    """What every model kind takes: its data, steps, curve, checkpoints, seed and device. How a job runs (the
    queue's fields: priority, attempts, timeout, GPUs and CPUs) is not the model's: `specs.RunOptions`."""

    model_config = ConfigDict(extra="forbid")
    spec_version: ClassVar[int] = SPEC_VERSION  # stored with each job (store.jobs)

    if TYPE_CHECKING:  # each kind declares it: `Literal["<its name>"]`
        model: str

    name: str | None = Field(
        None,
        max_length=200,
        pattern=NO_CONTROL_CHARACTERS,
        description="A label of your own for the job (no control characters).",
    )
    dataset: str = Field(
        "cifar10",
        pattern=DATASET_NAME_PATTERN,
        max_length=64,
        description="A folder under DATA_DIR: `cifar10` (pickle batches or image folders) or any "
        "`train/<class>/*`, `test/<class>/*` image folder.",
    )
    preprocessing: Literal["assignment", "standardize", "imagenet"] = Field(
        "assignment",
        description="`assignment`: subtract the per-pixel training mean image (raw 0-255 scale); "
        "`standardize`: per-channel mean and standard deviation of the training set; `imagenet`: ImageNet's "
        "per-channel mean and standard deviation (for pretrained weights).",
    )
    batch_size: int = Field(200, ge=1, le=MAX_BATCH, description="Training images per step.")
    max_steps: int = Field(1400, ge=1, le=MAX_STEPS, description="Training steps (mini-batches).")
    eval_every: int = Field(
        100, ge=1, le=MAX_STEPS, description="Evaluate on the whole test set every this many steps and at the end."
    )
    log_every: int = Field(
        10,
        ge=1,
        le=MAX_STEPS,
        description="Write a train point (running mean since the last one) every this many steps.",
    )
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Seeds weights and batch order.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="`auto`: a GPU when the worker has one, else the CPU."
    )
    checkpoint_every: int = Field(
        1000,
        ge=1,
        le=MAX_STEPS,
        description="Save the full training state every this many steps (and on a "
        "graceful stop); a job handed back to the queue resumes from its last checkpoint.",
    )
    alerts: list[AlertRule] = Field(
        [],
        max_length=MAX_ALERTS,
        description='Rules watched while it trains, each firing once: `{"when": "loss_not_finite"}`, '
        '`{"when": "no_improvement", "metric": "accuracy", "split": "test", "evals": 5}`, '
        '`{"when": "above" | "below", "metric": ..., "split": ..., "value": ...}`, `{"when": "stalled", "seconds": '
        '600}`; each with `"action": "stop"` to end the job `stopped_early` (keeping its points and model). A firing '
        "is shown in GET /jobs/{id} (`alerts_fired`) and sent as a `job.alert` event (events stream, webhooks).",
    )
    init_from_job: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="Start from this earlier job's weights (same model kind and architecture; a conv net's "
        "head starts new when the data set has another class count) and its normalisation; the job's curve "
        "then starts with an evaluation at step 0. With the same spec and more steps it continues that run "
        "(the optimizer starts afresh).",
    )

    @field_validator("log_every", "eval_every")
    @classmethod
    def _bounded_curve(cls, value: int, info: ValidationInfo) -> int:
        """A job writes at most MAX_TRAIN_POINTS train points and MAX_EVALUATIONS evaluations."""
        max_steps = info.data.get("max_steps")
        if max_steps is None:
            return value
        count = max_steps // value
        limit, what = (
            (MAX_TRAIN_POINTS, "train points") if info.field_name == "log_every" else (MAX_EVALUATIONS, "evaluations")
        )
        if count > limit:
            raise ValueError(
                f"{max_steps:,} steps with one every {value} is {count:,} {what}, over the limit of {limit:,}: "
                f"raise {info.field_name} to at least {-(-max_steps // limit)}"
            )
        return value


def count_mlp_parameters(hidden_units: list[int], n_inputs: int = CIFAR_INPUTS, n_classes: int = 10) -> int:
    sizes = [n_inputs, *hidden_units, n_classes]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


HiddenUnits = Annotated[
    list[Annotated[int, Field(ge=1, le=16384)]],
    Field(min_length=1, max_length=32, description="Width of each hidden layer, e.g. `[800, 600, 400]`."),
]


class MLPSpecMixin(BaseModel):
    hidden_units: HiddenUnits = [100]
    learning_rate: float = Field(1e-3, gt=0, le=10, description="Step size of the optimizer.")

    @field_validator("hidden_units")
    @classmethod
    def _limit_parameters(cls, hidden_units: list[int]) -> list[int]:
        n = count_mlp_parameters(hidden_units)
        if n > MAX_PARAMETERS:
            raise ValueError(f"{n:,} parameters is over the limit of {MAX_PARAMETERS:,}")
        return hidden_units


class TorchTrainingOptions(BaseModel):
    """Optimizer, schedule, regularisation and augmentation options of every torch model kind."""

    optimizer: Literal["sgd", "sgd_momentum", "adam", "adamw"] = Field(
        "sgd",
        description="`sgd` (plain), `sgd_momentum` (see `momentum`), `adam`, or `adamw` (decoupled weight decay).",
    )
    momentum: float | None = Field(
        None, ge=0, lt=1, description="Momentum of `sgd_momentum` (default 0.9); only with that optimizer."
    )
    weight_decay: float = Field(0.0, ge=0, le=1, description="L2 penalty (decoupled for `adamw`).")
    lr_schedule: Literal["constant", "cosine", "step"] = Field(
        "constant",
        description="After warm-up: keep the rate, cosine-decay it to 0, or multiply it by "
        "`lr_step_gamma` every `lr_step_every` steps.",
    )
    warmup_steps: int = Field(0, ge=0, le=MAX_STEPS, description="Linear learning-rate warm-up from 0.")
    lr_step_every: int | None = Field(
        None, ge=1, le=MAX_STEPS, validate_default=True, description="Required with `lr_schedule: step`, only there."
    )
    lr_step_gamma: float | None = Field(
        None, gt=0, le=1, description="Factor of each `step` decay (default 0.1); only with `lr_schedule: step`."
    )
    label_smoothing: float = Field(0.0, ge=0, le=0.5, description="Cross-entropy label smoothing.")
    augmentation: Literal["none", "crop_flip"] = Field(
        "none", description="`crop_flip`: random crop after 4-pixel padding and horizontal flips, on the device."
    )

    @field_validator("momentum")
    @classmethod
    def _momentum_needs_sgd_momentum(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("optimizer") != "sgd_momentum":
            raise ValueError(
                f'momentum applies only to "optimizer": "sgd_momentum", not {info.data.get("optimizer")!r}'
            )
        return value

    @field_validator("lr_step_every", "lr_step_gamma")
    @classmethod
    def _step_options_go_with_step_schedule(cls, value: object, info: ValidationInfo) -> object:
        is_step = info.data.get("lr_schedule") == "step"
        if value is None and is_step and info.field_name == "lr_step_every":
            raise ValueError('required with "lr_schedule": "step"')
        if value is not None and not is_step:
            raise ValueError(f'{info.field_name} applies only to "lr_schedule": "step"')
        return value

    @field_validator("warmup_steps")
    @classmethod
    def _warmup_within_training(cls, value: int, info: ValidationInfo) -> int:
        max_steps = info.data.get("max_steps")
        if max_steps is not None and value > max_steps:
            raise ValueError(f"{value} warm-up steps is more than max_steps ({max_steps})")
        return value

    @model_validator(mode="after")
    def _fill_dependent_defaults(self) -> "TorchTrainingOptions":
        if self.optimizer == "sgd_momentum" and self.momentum is None:
            self.momentum = 0.9
        if self.lr_schedule == "step" and self.lr_step_gamma is None:
            self.lr_step_gamma = 0.1
        return self


class TorchRuntimeOptions(BaseModel):
    """How a torch model runs on its device: precision and compilation."""

    mixed_precision: Literal["auto", "off", "bf16"] = Field(
        "auto",
        description="`auto`: bfloat16 autocast on a GPU, and for the conv nets on a CPU whose bfloat16 kernels "
        "measured faster (AVX-512 BF16 or AMX; measured once per CPU model and kept); float32 otherwise. "
        "`off`: float32; `bf16`: autocast wherever it runs. The job's final metrics say which precision it used.",
    )
    compile: bool = Field(False, description="torch.compile the model first (pays off on long GPU runs).")


class TorchJobSpec(TorchTrainingOptions, TorchRuntimeOptions, CommonSpec):
    """The base of every torch kind's spec: what `models.training.torch_setup` reads."""

    if TYPE_CHECKING:  # each kind declares it, with its own default
        learning_rate: float
