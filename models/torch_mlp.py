"""The assignment's PyTorch MLP: Linear/activation blocks and a final Linear."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TorchMLPConfig:
    n_inputs: int
    hidden_units: tuple[int, ...]
    n_classes: int
    init: str = "assignment"  # N(0, 1e-4) weights, zero biases, as the assignment asks


class TorchMLP(nn.Module):
    def __init__(self, config: TorchMLPConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = config.n_inputs
        for units in config.hidden_units:
            layers += [nn.Linear(width, units), nn.ELU()]
            width = units
        layers.append(nn.Linear(width, config.n_classes))
        self.layers = nn.Sequential(*layers)
        if config.init == "assignment":
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, mean=0.0, std=1e-4)
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))  # (N, 3, 32, 32) -> (N, 3072) -> (N, n_classes)
