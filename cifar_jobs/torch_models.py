"""A trained model as a torch module: the job's network with the normalisation it trained with in front, and
for the speedrun kind its test-time augmentation, so it answers what `/predict` answers.

Importing this module imports torch; the rest of the client does not.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from models.artifacts import ModelArtifact, unpack_model
from models.data.images import image_to_array
from models.kinds import KINDS, parse_spec
from models.kinds.numpy_mlp import NumpyMLPSpec
from models.kinds.speedrun import SpeedrunSpec
from models.training.torch_data import TorchNormalizer


class TrainedModel(nn.Module):
    """`forward` takes images as the models see them, (N, 3, 32, 32) uint8 RGB (`to_inputs` makes them from files or
    PIL images), and returns the logits; `probabilities` their softmax, as `/predict` computes it (in float32, where
    `/predict` may use bfloat16 on a CPU fast at it). `network` is the job's own module, `class_names` the labels."""

    def __init__(self, network: nn.Module, artifact: ModelArtifact, tta_level: int = 0) -> None:
        super().__init__()
        self.network = network
        self.class_names: list[str] = list(artifact.class_names)
        self.spec: dict[str, Any] = dict(artifact.spec)
        self.tta_level = tta_level
        normalize = TorchNormalizer(artifact.normalization)
        self.register_buffer("mean", normalize.mean.unsqueeze(0))  # broadcasts over (N, 3, 32, 32)
        self.register_buffer(
            "inv_std", (normalize.inv_std if normalize.inv_std is not None else torch.ones(1, 1, 1)).unsqueeze(0)
        )
        self.eval()

    def forward(self, images_u8: torch.Tensor) -> torch.Tensor:
        mean, inv_std = self.get_buffer("mean"), self.get_buffer("inv_std")
        x = (images_u8.float() - mean) * inv_std
        if self.tta_level:
            from models.training.speedrun import tta_logits

            return tta_logits(self.network, x, self.tta_level)
        return self.network(x)  # type: ignore[no-any-return]

    @torch.inference_mode()
    def probabilities(self, images_u8: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self(images_u8).double(), dim=1)

    @staticmethod
    def to_inputs(images: Iterable[str | Path | Image.Image]) -> torch.Tensor:
        """Image files or PIL images -> (N, 3, 32, 32) uint8, decoded and resized as training images are."""
        arrays = []
        for image in images:
            if isinstance(image, Image.Image):
                arrays.append(image_to_array(image))
            else:
                with Image.open(image) as opened:
                    arrays.append(image_to_array(opened))
        return torch.from_numpy(np.stack(arrays))


class _NumpyMLPInTorch(nn.Module):
    """The NumPy MLP's layers as torch's: Linear and ELU blocks, then a Linear, on flattened images."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            blocks.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                blocks.append(nn.ELU())
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))  # type: ignore[no-any-return]


def trained_model(model_file: bytes) -> TrainedModel:
    """The network of a downloaded model file (`GET /jobs/{id}/model`) with its weights, in eval mode."""
    artifact = unpack_model(model_file)
    spec = parse_spec(artifact.spec)
    weights = {name: torch.from_numpy(np.array(value)) for name, value in artifact.weights.items()}
    n_classes = len(artifact.class_names)
    network: nn.Module
    if isinstance(spec, NumpyMLPSpec):
        network = _NumpyMLPInTorch([3 * 32 * 32, *spec.hidden_units, n_classes])
        weights = {name: value.float() for name, value in weights.items()}
    else:
        network = KINDS[spec.model].build(spec, n_classes)
    network.load_state_dict(weights)
    tta_level = spec.tta_level if isinstance(spec, SpeedrunSpec) and spec.predict_tta else 0
    return TrainedModel(network, artifact, tta_level)
