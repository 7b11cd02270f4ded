"""The `torch_mlp` kind: the assignment's PyTorch MLP (part 2), with the options of the report's
experiments and more. torch is imported only when the kind trains or predicts."""

from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field

from models.kinds.common import CIFAR_INPUTS, MLPSpecMixin, TorchJobSpec
from models.kinds.registry import torch_kind

if TYPE_CHECKING:
    from models.networks.mlp import TorchMLP


class TorchMLPSpec(MLPSpecMixin, TorchJobSpec):
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


def build(spec: TorchMLPSpec, n_classes: int) -> "TorchMLP":
    from models.networks.mlp import TorchMLP, TorchMLPConfig

    return TorchMLP(
        TorchMLPConfig(
            CIFAR_INPUTS, tuple(spec.hidden_units), n_classes, spec.activation, spec.norm, spec.dropout, spec.init
        )
    )


KIND = torch_kind(TorchMLPSpec, build, ("hidden_units", "norm"), convolutional=False, listed=1)
