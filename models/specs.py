"""Job specs: one pydantic class per model kind, with the assignment's defaults and hard limits.

The API validates requests with these classes and the worker parses stored specs with them,
so a spec means the same thing on both sides. Nothing here imports torch.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator, model_validator

from models.data.catalog import DATASET_NAME_PATTERN

CIFAR_INPUTS = 3 * 32 * 32
MAX_PARAMETERS = 50_000_000
MAX_STEPS = 1_000_000
MAX_BATCH = 8192


# Text that reaches the database: PostgreSQL refuses NUL in text, and control characters in a label
# are never meant.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


class CommonSpec(BaseModel):
    """Fields every model kind takes."""

    model_config = ConfigDict(extra="forbid")

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
    priority: int = Field(0, ge=-1000, le=1000, description="Higher runs first; equal priorities run oldest first.")
    timeout_s: int | None = Field(
        None, ge=1, le=30 * 24 * 3600, description="Fail the job when one attempt runs longer than this."
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="How often a job whose worker was lost is started again before it fails."
    )


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


class FastPathOptions(BaseModel):
    """How a torch model runs on its device."""

    mixed_precision: Literal["auto", "off", "bf16"] = Field(
        "auto", description="`auto`: bfloat16 autocast on a GPU, full float32 on the CPU; `bf16` forces autocast."
    )
    compile: bool = Field(False, description="torch.compile the model first (pays off on long GPU runs).")


class TorchMLPSpec(MLPSpecMixin, TorchTrainingOptions, FastPathOptions, CommonSpec):
    """The assignment's PyTorch MLP (part 2), with the options of the report's experiments and more."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model": "torch_mlp"},
                {"model": "torch_mlp", "hidden_units": [800, 600, 400], "optimizer": "adam", "max_steps": 5000},
            ]
        },
    )

    model: Literal["torch_mlp"] = Field(description="The kind of network to train.")
    activation: Literal["elu", "relu", "leaky_relu", "tanh", "gelu"] = Field(
        "elu", description="Non-linearity after each hidden layer."
    )
    norm: Literal["none", "batchnorm", "layernorm", "layernorm_custom", "layernorm_manual"] = Field(
        "none",
        description="Normalisation after each hidden Linear: torch's BatchNorm1d or LayerNorm, or the "
        "custom Layer Normalization (`layernorm_custom`: autograd; `layernorm_manual`: hand-written backward).",
    )
    dropout: float = Field(0.0, ge=0, le=0.9, description="Dropout after each hidden activation.")
    init: Literal["assignment", "default"] = Field(
        "assignment", description="`assignment`: weights N(0, 1e-4), biases 0; `default`: PyTorch's own."
    )


class ConvNetSpec(TorchTrainingOptions, FastPathOptions, CommonSpec):
    """The assignment's pre-activation ConvNet (part 4); defaults are the assignment's."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"model": "convnet"}]})

    model: Literal["convnet"] = Field(description="The kind of network to train.")
    learning_rate: float = Field(1e-4, gt=0, le=10, description="Step size of the optimizer.")
    optimizer: Literal["sgd", "sgd_momentum", "adam", "adamw"] = Field(
        "adam",
        description="`sgd` (plain), `sgd_momentum` (see `momentum`), `adam`, or `adamw` (decoupled weight decay).",
    )
    batch_size: int = Field(32, ge=1, le=MAX_BATCH, description="Training images per step.")
    max_steps: int = Field(5000, ge=1, le=MAX_STEPS, description="Training steps (mini-batches).")
    eval_every: int = Field(
        500, ge=1, le=MAX_STEPS, description="Evaluate on the whole test set every this many steps and at the end."
    )


class ResNet18Spec(TorchTrainingOptions, FastPathOptions, CommonSpec):
    """torchvision's ResNet18 with a new 10-class head, from scratch or from ImageNet weights."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model": "resnet18", "pretrained": True, "stem": "imagenet"},
                {
                    "model": "resnet18",
                    "stem": "cifar",
                    "augmentation": "crop_flip",
                    "optimizer": "sgd_momentum",
                    "learning_rate": 0.1,
                    "weight_decay": 0.0005,
                    "lr_schedule": "cosine",
                    "batch_size": 128,
                },
            ]
        },
    )

    model: Literal["resnet18"] = Field(description="The kind of network to train.")
    pretrained: bool = Field(False, description="Start from torchvision's ImageNet weights (see the README).")
    freeze_backbone: bool = Field(False, description="Train only the new head.")
    stem: Literal["cifar", "imagenet"] = Field(
        "cifar",
        description="`imagenet`: torchvision's 7x7 stride-2 stem and max-pool, as in the report; `cifar`: "
        "3x3 stride 1 without the max-pool, the usual choice for 32x32 images.",
    )
    input_size: int = Field(32, ge=32, le=256, description="Images are upsampled on the device to this size.")
    preprocessing: Literal["assignment", "standardize", "imagenet"] | None = Field(  # type: ignore[assignment]
        None, description="Default: `imagenet` with pretrained weights, else `standardize`."
    )
    learning_rate: float = Field(1e-4, gt=0, le=10, description="Step size of the optimizer.")
    optimizer: Literal["sgd", "sgd_momentum", "adam", "adamw"] = Field(
        "adam",
        description="`sgd` (plain), `sgd_momentum` (see `momentum`), `adam`, or `adamw` (decoupled weight decay).",
    )
    batch_size: int = Field(32, ge=1, le=MAX_BATCH, description="Training images per step.")
    max_steps: int = Field(5000, ge=1, le=MAX_STEPS, description="Training steps (mini-batches).")
    eval_every: int = Field(
        500, ge=1, le=MAX_STEPS, description="Evaluate on the whole test set every this many steps and at the end."
    )

    @model_validator(mode="after")
    def _default_preprocessing(self) -> "ResNet18Spec":
        if self.preprocessing is None:
            self.preprocessing = "imagenet" if self.pretrained else "standardize"
        return self


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


JobSpec = Annotated[TorchMLPSpec | NumpyMLPSpec | ConvNetSpec | ResNet18Spec, Field(discriminator="model")]
job_spec_adapter: TypeAdapter[JobSpec] = TypeAdapter(JobSpec)


def parse_spec(raw: dict) -> JobSpec:
    """A stored spec (JSON) back into its typed class."""
    return job_spec_adapter.validate_python(raw)
