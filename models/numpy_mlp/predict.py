"""Loading a trained NumPy MLP to predict."""

import numpy as np

from models.artifacts import ModelArtifact
from models.numpy_mlp.mlp import MLP
from models.predict import softmax
from models.specs import CIFAR_INPUTS


class NumpyMLPPredictor:
    def __init__(self, artifact: ModelArtifact) -> None:
        spec = artifact.spec
        self.class_names = artifact.class_names
        dtype = np.float64 if spec.get("dtype") == "float64" else np.float32
        self.model = MLP(CIFAR_INPUTS, list(spec["hidden_units"]), len(self.class_names), dtype=dtype)
        for name, value in self.model.state_dict().items():
            value[...] = artifact.weights[name]
        norm = artifact.normalization
        self.mean = np.broadcast_to(norm.mean, (3, 32, 32)).reshape(-1).astype(dtype)
        self.inv_std = (1 / np.broadcast_to(norm.std, (3, 32, 32))).reshape(-1).astype(dtype)

    def probabilities(self, images_u8: np.ndarray) -> np.ndarray:
        x = np.subtract(images_u8.reshape(len(images_u8), -1), self.mean, dtype=self.mean.dtype)
        x *= self.inv_std
        return softmax(self.model.forward(x))


def load_numpy_mlp(artifact: ModelArtifact) -> NumpyMLPPredictor:
    return NumpyMLPPredictor(artifact)
