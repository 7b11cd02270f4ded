"""Prediction with any torch model kind, on the CPU, in inference mode."""

import numpy as np
import torch
from torch import nn

from models.artifacts import ModelArtifact
from models.training.torch_data import TorchNormalizer


class TorchPredictor:
    def __init__(self, model: nn.Module, artifact: ModelArtifact, channels_last: bool = False) -> None:
        """channels_last: NHWC memory order, faster for the convolutional kinds on the CPU in a quick check."""
        model.load_state_dict({name: torch.from_numpy(value) for name, value in artifact.weights.items()})
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(memory_format=self.memory_format)
        self.class_names = artifact.class_names
        self.normalize = TorchNormalizer(artifact.normalization)  # exactly as in training

    @torch.inference_mode()
    def probabilities(self, images_u8: np.ndarray) -> np.ndarray:
        x = self.normalize(torch.from_numpy(images_u8)).contiguous(memory_format=self.memory_format)
        probabilities: np.ndarray = torch.softmax(self.model(x).double(), dim=1).numpy()
        return probabilities
