"""Images as torch tensors: the data set held once on the training device as uint8, and the
normalisation that turns a uint8 batch into the network's input (training, evaluation, prediction)."""

from dataclasses import dataclass

import numpy as np
import torch

from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization


def to_tensor(array: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


class TorchNormalizer:
    """(N, 3, 32, 32) uint8 -> float32 (x - mean) / std, on the tensors' device."""

    def __init__(self, norm: Normalization, device: torch.device | str = "cpu") -> None:
        self.mean = to_tensor(norm.mean, device)
        inv_std = norm.inverse_std()
        self.inv_std = None if inv_std is None else to_tensor(inv_std, device)

    def __call__(self, images_u8: torch.Tensor) -> torch.Tensor:
        x = images_u8.float().sub_(self.mean)
        return x.mul_(self.inv_std) if self.inv_std is not None else x


@dataclass
class DeviceData:
    train_x: torch.Tensor  # (N_train, 3, 32, 32) uint8, on the device
    train_y: torch.Tensor  # (N_train,) int64
    test_x: torch.Tensor  # (N_test, 3, 32, 32) uint8
    test_y: torch.Tensor  # (N_test,) int64
    normalize: TorchNormalizer

    @classmethod
    def build(cls, arrays: ImageArrays, norm: Normalization, device: torch.device) -> "DeviceData":
        return cls(
            to_tensor(arrays.train_x, device),
            to_tensor(arrays.train_y, device),
            to_tensor(arrays.test_x, device),
            to_tensor(arrays.test_y, device),
            TorchNormalizer(norm, device),
        )

    @property
    def device(self) -> torch.device:
        return self.train_x.device
