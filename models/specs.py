"""Job specs: one pydantic class per model kind, with the assignment's defaults and hard limits.

The API validates requests with these classes and the worker parses stored specs with them,
so a spec means the same thing on both sides. Nothing here imports torch.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from models.data.catalog import DATASET_NAME_PATTERN

CIFAR_INPUTS = 3 * 32 * 32
MAX_PARAMETERS = 50_000_000
MAX_STEPS = 1_000_000
MAX_BATCH = 8192


class CommonSpec(BaseModel):
    """Fields every model kind takes."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200, description="A label of your own for the job.")
    dataset: str = Field(
        "cifar10",
        pattern=DATASET_NAME_PATTERN,
        max_length=64,
        description="A folder under DATA_DIR: `cifar10` (pickle batches or image folders) or any "
        "`train/<class>/*`, `test/<class>/*` image folder.",
    )
    preprocessing: Literal["assignment", "standardize"] = Field(
        "assignment",
        description="`assignment`: subtract the per-pixel training mean image (raw 0-255 scale); "
        "`standardize`: per-channel mean and standard deviation.",
    )
    batch_size: int = Field(200, ge=1, le=MAX_BATCH, description="Training images per step.")
    max_steps: int = Field(1400, ge=1, le=MAX_STEPS, description="Training steps (mini-batches).")
    eval_every: int = Field(
        100, ge=1, le=MAX_STEPS, description="Evaluate on the whole test set every this many steps and at the end."
    )
    log_every: int = Field(
        10, ge=1, le=MAX_STEPS, description="Write a train point (running mean since the last one) every this many steps."
    )
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Seeds weights and batch order.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="`auto`: a GPU when the worker has one, else the CPU."
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


class TorchMLPSpec(MLPSpecMixin, CommonSpec):
    """The assignment's PyTorch MLP (part 2)."""

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
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="Plain mini-batch SGD or Adam.")


JobSpec = Annotated[TorchMLPSpec, Field(discriminator="model")]
job_spec_adapter: TypeAdapter[JobSpec] = TypeAdapter(JobSpec)


def parse_spec(raw: dict) -> JobSpec:
    """A stored spec (JSON) back into its typed class."""
    return job_spec_adapter.validate_python(raw)
