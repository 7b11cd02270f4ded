"""The data set on the training device: uint8 images held once, normalised one batch at a time."""

from dataclasses import dataclass

import numpy as np
import torch

from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization


@dataclass
class DeviceData:
    train_x: torch.Tensor  # (N_train, 3, 32, 32) uint8, on the device
    train_y: torch.Tensor  # (N_train,) int64
    test_x: torch.Tensor  # (N_test, 3, 32, 32) uint8
    test_y: torch.Tensor  # (N_test,) int64
    mean: torch.Tensor  # broadcasts against (N, 3, 32, 32)
    inv_std: torch.Tensor | None  # None when the preprocessing only subtracts the mean

    @classmethod
    def build(cls, arrays: ImageArrays, norm: Normalization, device: torch.device) -> "DeviceData":
        def put(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        inv_std = None if norm.kind == "assignment" else put(1.0 / norm.std)
        return cls(
            put(arrays.train_x), put(arrays.train_y), put(arrays.test_x), put(arrays.test_y), put(norm.mean), inv_std
        )

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    def normalize(self, images_u8: torch.Tensor) -> torch.Tensor:
        """(N, 3, 32, 32) uint8 -> float32, (x - mean) / std."""
        x = images_u8.float().sub_(self.mean)
        return x.mul_(self.inv_std) if self.inv_std is not None else x


class EpochSampler:
    """Batches of indices drawn without replacement, reshuffled every epoch, from a seeded generator."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device) -> None:
        self.n, self.batch_size, self.device = n, batch_size, device
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.int64)
        self.position = 0

    def next(self) -> torch.Tensor:
        parts: list[torch.Tensor] = []
        needed = self.batch_size
        while needed > 0:
            if self.position >= len(self.order):
                self.order = torch.randperm(self.n, generator=self.generator)
                self.position = 0
            take = self.order[self.position : self.position + needed]
            self.position += len(take)
            needed -= len(take)
            parts.append(take)
        batch = parts[0] if len(parts) == 1 else torch.cat(parts)
        return batch.to(self.device, non_blocking=True)

    def state(self) -> dict[str, object]:
        return {"generator": self.generator.get_state(), "order": self.order.clone(), "position": self.position}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.position = state["order"], state["position"]
