"""Input normalisation constants, fitted on the training images.

`assignment`: subtract the per-pixel mean image of the training set from the raw 0-255 values,
as the course's `cifar10_utils` does (no scaling). `standardize`: per-channel mean and standard
deviation, so every channel has zero mean and unit variance. `imagenet`: the fixed ImageNet
per-channel constants that pretrained torchvision weights expect. Both are stored as a `mean` and a
`std` that broadcast against (N, 3, 32, 32): x_normalised = (x - mean) / std.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

PreprocessingKind = Literal["assignment", "standardize", "imagenet"]
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255  # torchvision's constants, in 0-255 units
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255


@dataclass(frozen=True)
class Normalization:
    kind: PreprocessingKind
    mean: np.ndarray  # (3, 32, 32) for `assignment`, (3, 1, 1) for `standardize`; float32
    std: np.ndarray  # (1, 1, 1) ones for `assignment`, (3, 1, 1) for `standardize`; float32

    def inverse_std(self) -> np.ndarray | None:
        """1 / std, or None for `assignment` (which only subtracts the mean)."""
        return None if self.kind == "assignment" else (1 / self.std).astype(np.float32)

    def apply(self, images_u8: np.ndarray) -> np.ndarray:
        """(N, 3, 32, 32) uint8 -> float32, normalised."""
        out: np.ndarray = images_u8.astype(np.float32) - self.mean
        if self.kind != "assignment":
            out /= self.std
        return out


class FlatNormalizer:
    """Normalisation of flattened images (N, 3072), its constants broadcast once: the NumPy MLP's input."""

    def __init__(self, norm: Normalization, dtype: type) -> None:
        self.dtype = dtype
        self.mean: np.ndarray = np.broadcast_to(norm.mean, (3, 32, 32)).reshape(-1).astype(dtype)
        inv_std = norm.inverse_std()
        self.inv_std: np.ndarray | None = (
            None if inv_std is None else np.broadcast_to(inv_std, (3, 32, 32)).reshape(-1).astype(dtype)
        )

    def __call__(self, rows_u8: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.subtract(rows_u8, self.mean, dtype=self.dtype)
        if self.inv_std is not None:
            out *= self.inv_std
        return out


def fit_normalization(kind: PreprocessingKind, train_x: np.ndarray) -> Normalization:
    if kind == "imagenet":
        return Normalization(
            kind, IMAGENET_MEAN.astype(np.float32).reshape(3, 1, 1), IMAGENET_STD.astype(np.float32).reshape(3, 1, 1)
        )
    if kind == "assignment":
        mean = train_x.mean(axis=0, dtype=np.float64).astype(np.float32)
        return Normalization(kind, mean, np.ones((1, 1, 1), dtype=np.float32))
    mean_c = train_x.mean(axis=(0, 2, 3), dtype=np.float64)
    # E[(x - mean)^2] per channel, in float64 chunks: no full float copy of the data set
    sq_sum = np.zeros(3)
    for start in range(0, len(train_x), 4096):
        chunk = train_x[start : start + 4096].astype(np.float64) - mean_c.reshape(1, 3, 1, 1)
        sq_sum += np.square(chunk).sum(axis=(0, 2, 3))
    std_c = np.sqrt(np.maximum(sq_sum / (train_x.size / 3), 1e-12))
    return Normalization(
        kind,
        mean_c.astype(np.float32).reshape(3, 1, 1),
        std_c.astype(np.float32).reshape(3, 1, 1),
    )
