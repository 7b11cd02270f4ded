"""Data augmentation on batches already on the training device: no DataLoader, no PIL."""

import torch
import torch.nn.functional as F


class RandomCropFlip:
    """Pad by `pad` pixels (zeros: the mean after normalisation), crop back at a random offset,
    and flip half the images left-right; one gather for the whole batch."""

    def __init__(self, pad: int, seed: int, device: torch.device) -> None:
        self.pad = pad
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        dev, p = x.device, self.pad
        padded = F.pad(x, (p, p, p, p))  # (N, C, H + 2p, W + 2p)
        dy = torch.randint(0, 2 * p + 1, (n, 1), device=dev, generator=self.generator)
        dx = torch.randint(0, 2 * p + 1, (n, 1), device=dev, generator=self.generator)
        rows = dy + torch.arange(h, device=dev)  # (N, H)
        cols = dx + torch.arange(w, device=dev)  # (N, W)
        flip = torch.rand(n, 1, device=dev, generator=self.generator) < 0.5
        cols = torch.where(flip, cols.flip(1), cols)
        batch = torch.arange(n, device=dev)[:, None, None]
        out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C): indexed dims come first
        return out.permute(0, 3, 1, 2)  # (N, C, H, W) in channels-last memory order
