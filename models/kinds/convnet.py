"""The `convnet` kind: the assignment's pre-activation ConvNet (part 4). torch is imported only when
the kind trains or predicts."""

from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field

from models.kinds.common import MAX_BATCH, MAX_STEPS, TorchJobSpec
from models.kinds.registry import torch_kind

if TYPE_CHECKING:
    from models.networks.convnet import ConvNet


class ConvNetSpec(TorchJobSpec):
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


def build(spec: ConvNetSpec, n_classes: int) -> "ConvNet":
    from models.networks.convnet import ConvNet

    return ConvNet(3, n_classes)


KIND = torch_kind(ConvNetSpec, build, listed=3)
