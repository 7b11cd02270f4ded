"""The assignment's PyTorch MLP: blocks of Linear -> [norm] -> activation -> [dropout], then a final Linear."""

from dataclasses import dataclass

import torch
from torch import nn

from models.networks.layernorm import CustomLayerNormAutograd, CustomLayerNormManualModule

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}
NORMS: dict[str, type[nn.Module]] = {
    "batchnorm": nn.BatchNorm1d,
    "layernorm": nn.LayerNorm,
    "layernorm_custom": CustomLayerNormAutograd,
    "layernorm_manual": CustomLayerNormManualModule,
}


@dataclass(frozen=True)
class TorchMLPConfig:
    n_inputs: int
    hidden_units: tuple[int, ...]
    n_classes: int
    activation: str = "elu"
    norm: str = "none"  # after each hidden Linear, before the activation
    dropout: float = 0.0
    init: str = "assignment"  # N(0, 1e-4) weights and zero biases, as the assignment asks; or PyTorch's


class TorchMLP(nn.Module):
    def __init__(self, config: TorchMLPConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = config.n_inputs
        for units in config.hidden_units:
            layers.append(nn.Linear(width, units))
            if config.norm != "none":
                layers.append(NORMS[config.norm](units))
            layers.append(ACTIVATIONS[config.activation]())
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width = units
        layers.append(nn.Linear(width, config.n_classes))
        self.layers = nn.Sequential(*layers)
        if config.init == "assignment":
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, mean=0.0, std=1e-4)
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.layers(x.flatten(1))  # (N, 3, 32, 32) -> (N, 3072) -> (N, n_classes)
        return logits
