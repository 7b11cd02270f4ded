"""Prediction with any torch model kind, on the CPU, in inference mode."""

import numpy as np
import torch
from torch import nn

from models.artifacts import ModelArtifact
from models.kinds.common import TorchJobSpec
from models.training.precision import bf16_is_fast_on_cpu
from models.training.torch_data import TorchNormalizer


class TorchPredictor:
    def __init__(
        self, model: nn.Module, artifact: ModelArtifact, spec: TorchJobSpec, convolutional: bool = False
    ) -> None:
        """Convolutional networks run channels-last, and in bfloat16 where the CPU does that faster
        (unless the job said `mixed_precision: "off"`); bench/predict_consistency.py compares the classes."""
        model.load_state_dict({name: torch.from_numpy(value) for name, value in artifact.weights.items()})
        self.memory_format = torch.channels_last if convolutional else torch.contiguous_format
        self.model = model.eval().to(memory_format=self.memory_format)
        self.class_names = artifact.class_names
        self.normalize = TorchNormalizer(artifact.normalization)  # exactly as in training
        wanted = spec.mixed_precision
        self.bf16 = convolutional and (wanted == "bf16" or (wanted == "auto" and bf16_is_fast_on_cpu()))

    @torch.inference_mode()
    def probabilities(self, images_u8: np.ndarray) -> np.ndarray:
        x = self.normalize(torch.from_numpy(images_u8)).contiguous(memory_format=self.memory_format)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(x)
        probabilities: np.ndarray = torch.softmax(logits.double(), dim=1).numpy()
        return probabilities
