"""The in-memory form of a data set: compact uint8 images and int64 labels."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageArrays:
    train_x: np.ndarray  # (N_train, 3, 32, 32) uint8
    train_y: np.ndarray  # (N_train,) int64
    test_x: np.ndarray  # (N_test, 3, 32, 32) uint8
    test_y: np.ndarray  # (N_test,) int64
    class_names: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


class DatasetError(Exception):
    """A data set that cannot be found or read; the message says where it was looked for."""
