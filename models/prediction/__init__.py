"""Prediction from a stored model: the same decoding and normalisation as training, then softmax.

Each model kind loads its own predictor (`models.kinds.load_predictor`)."""

from typing import Protocol

import numpy as np


class Predictor(Protocol):
    class_names: list[str]

    def probabilities(self, images_u8: np.ndarray) -> np.ndarray:
        """(N, 3, 32, 32) uint8 -> (N, n_classes) float64 probabilities, rows summing to 1."""
        ...


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]
