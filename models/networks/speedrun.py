"""The `speedrun` network: the small VGG-like net of "94% on CIFAR-10 in 3.29 Seconds on a Single GPU"
(Keller Jordan, arXiv 2404.00498), written here from the paper's description.

    whiten (2x2 conv, frozen weights: the training patches' whitening) · GELU
    · 3 blocks of [conv3x3 · max-pool 2 · BN · GELU · conv3x3 · BN · GELU] (widths 64, 256, 256)
    · global max-pool · linear (no bias) · x scaling

Convolutions have no bias; batch norms have a fixed scale of 1 and a learned bias; the first
`in_channels` filters of every block convolution start as the identity (partial identity init).
"""

import torch
from torch import nn

WHITEN_KERNEL = 2


class FrozenScaleBatchNorm(nn.BatchNorm2d):
    """Batch norm whose scale stays 1 (only the bias learns). `momentum` is the paper's: the weight of
    the running statistics' old value (torch's momentum is one minus it)."""

    def __init__(self, channels: int, momentum: float) -> None:
        super().__init__(channels, eps=1e-12, momentum=1 - momentum)
        self.weight.requires_grad = False


class ConvGroup(nn.Module):
    def __init__(self, c_in: int, c_out: int, bn_momentum: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = FrozenScaleBatchNorm(c_out, bn_momentum)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = FrozenScaleBatchNorm(c_out, bn_momentum)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        out: torch.Tensor = self.act(self.norm2(self.conv2(x)))
        return out


class SpeedrunNet(nn.Module):
    def __init__(
        self,
        widths: tuple[int, ...] = (64, 256, 256),
        n_classes: int = 10,
        scaling: float = 1 / 9,
        bn_momentum: float = 0.6,
    ) -> None:
        super().__init__()
        whiten_width = 2 * 3 * WHITEN_KERNEL**2  # each whitening filter and its negative
        self.whiten = nn.Conv2d(3, whiten_width, WHITEN_KERNEL, padding=0, bias=True)
        self.whiten.weight.requires_grad = False
        nn.init.zeros_(self.whiten.bias)  # type: ignore[arg-type]
        self.act = nn.GELU()
        channels = [whiten_width, *widths]
        pairs = zip(channels[:-1], channels[1:], strict=True)
        self.blocks = nn.Sequential(*(ConvGroup(a, b, bn_momentum) for a, b in pairs))
        self.head = nn.Linear(widths[-1], n_classes, bias=False)
        self.scaling = scaling
        for module in self.blocks.modules():
            if isinstance(module, nn.Conv2d):  # partial identity: the first in_channels filters pass x on
                weight = module.weight.data
                nn.init.dirac_(weight[: weight.size(1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.act(self.whiten(x)))
        x = torch.amax(x, dim=(2, 3))  # global max-pool
        out: torch.Tensor = self.head(x) * self.scaling
        return out

    def norm_biases(self) -> list[nn.Parameter]:
        """The batch norms' biases: trained with a larger step (the paper's bias scaler)."""
        return [m.bias for m in self.modules() if isinstance(m, nn.BatchNorm2d)]


def whitening_filters(images: torch.Tensor, eps: float = 5e-4) -> torch.Tensor:
    """(2 * 12, 3, 2, 2) filters that whiten the 2x2 patches of `images` (N, 3, H, W; normalised floats):
    the patches' covariance eigenvectors scaled by 1/sqrt(eigenvalue + eps), each with its negative."""
    c = images.shape[1]
    patches = images.float().unfold(2, WHITEN_KERNEL, 1).unfold(3, WHITEN_KERNEL, 1)  # N, C, H', W', k, k
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * WHITEN_KERNEL**2).double()  # rows of (C, k, k)
    patches = patches - patches.mean(0)
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).float()
    filters = filters.reshape(-1, c, WHITEN_KERNEL, WHITEN_KERNEL)
    return torch.cat([filters, -filters])
