"""Prediction from a stored model: the same decoding and normalisation as training, then softmax."""

from typing import Protocol

import numpy as np

from models.artifacts import ModelArtifact
from models.registry import loader_for


class Predictor(Protocol):
    class_names: list[str]

    def probabilities(self, images_u8: np.ndarray) -> np.ndarray:
        """(N, 3, 32, 32) uint8 -> (N, n_classes) float64 probabilities, rows summing to 1."""
        ...


def load_predictor(artifact: ModelArtifact) -> Predictor:
    return loader_for(artifact.spec["model"])(artifact)  # type: ignore[no-any-return]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
