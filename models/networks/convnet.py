"""The assignment's pre-activation ConvNet (part 4)."""

import torch
from torch import nn


class PreActBlock(nn.Module):
    """x + Conv3x3(ReLU(BN(x))), keeping the channel count."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.conv(torch.relu(self.bn(x)))
        return out


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class ConvNet(nn.Module):
    """conv0 · PreAct(64) · conv1 · pool · PreAct(128)x2 · conv2 · pool · PreAct(256)x2 · conv3 · pool ·
    PreAct(512)x2 · pool · PreAct(512)x2 · pool · BN · ReLU · Linear(512 -> classes)."""

    def __init__(self, n_channels: int = 3, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(n_channels, 64, kernel_size=3, stride=1, padding=1),  # conv0: (N, 64, 32, 32)
            PreActBlock(64),
            nn.Conv2d(64, 128, kernel_size=1),  # conv1
            _pool(),  # (N, 128, 16, 16)
            PreActBlock(128),
            PreActBlock(128),
            nn.Conv2d(128, 256, kernel_size=1),  # conv2
            _pool(),  # (N, 256, 8, 8)
            PreActBlock(256),
            PreActBlock(256),
            nn.Conv2d(256, 512, kernel_size=1),  # conv3
            _pool(),  # (N, 512, 4, 4)
            PreActBlock(512),
            PreActBlock(512),
            _pool(),  # (N, 512, 2, 2)
            PreActBlock(512),
            PreActBlock(512),
            _pool(),  # (N, 512, 1, 1)
            nn.BatchNorm2d(512),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(
            self.features(x).flatten(1)
        )  # (N, 512, 1, 1) -> (N, 512) -> (N, classes)
        return logits
