"""A trained model as one safetensors file: the weights, the normalisation constants, and in the
header's metadata the spec and the class names. No pickle anywhere, NumPy weights included."""

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from safetensors.numpy import load, save

from models.data.preprocessing import Normalization

FORMAT_VERSION = "1"
NORM_MEAN, NORM_STD = "__normalization.mean__", "__normalization.std__"


@dataclass
class ModelArtifact:
    spec: dict[str, Any]
    class_names: list[str]
    normalization: Normalization
    weights: dict[str, np.ndarray]


def pack_model(artifact: ModelArtifact) -> bytes:
    tensors = {name: np.ascontiguousarray(value) for name, value in artifact.weights.items()}
    tensors[NORM_MEAN] = np.ascontiguousarray(artifact.normalization.mean, dtype=np.float32)
    tensors[NORM_STD] = np.ascontiguousarray(artifact.normalization.std, dtype=np.float32)
    metadata = {
        "format_version": FORMAT_VERSION,
        "spec": json.dumps(artifact.spec),
        "class_names": json.dumps(artifact.class_names),
        "preprocessing": artifact.normalization.kind,
    }
    return save(tensors, metadata=metadata)


def read_metadata(data: bytes) -> dict[str, str]:
    """The header's `__metadata__`, without reading the tensors."""
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_size])
    return dict(header.get("__metadata__", {}))


def unpack_model(data: bytes) -> ModelArtifact:
    metadata = read_metadata(data)
    tensors = load(data)
    normalization = Normalization(
        metadata["preprocessing"],  # type: ignore[arg-type]
        tensors.pop(NORM_MEAN),
        tensors.pop(NORM_STD),
    )
    return ModelArtifact(json.loads(metadata["spec"]), json.loads(metadata["class_names"]), normalization, tensors)
