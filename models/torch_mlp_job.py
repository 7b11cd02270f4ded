"""The `torch_mlp` kind: building, training and loading the PyTorch MLP."""

from models.artifacts import ModelArtifact
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.reporting import Reporter
from models.results import RunEnv, RunResult
from models.specs import CIFAR_INPUTS, TorchMLPSpec, parse_spec
from models.torch_job import train_torch_model
from models.torch_mlp import TorchMLP, TorchMLPConfig
from models.torch_predict import TorchPredictor


def build_model(spec: TorchMLPSpec, n_classes: int) -> TorchMLP:
    return TorchMLP(
        TorchMLPConfig(
            CIFAR_INPUTS, tuple(spec.hidden_units), n_classes, spec.activation, spec.norm, spec.dropout, spec.init
        )
    )


def train_torch_mlp(
    spec: TorchMLPSpec, arrays: ImageArrays, norm: Normalization, reporter: Reporter, env: RunEnv
) -> RunResult:
    return train_torch_model(spec, lambda: build_model(spec, arrays.n_classes), arrays, norm, reporter, env.resume)


def load_torch_mlp(artifact: ModelArtifact) -> TorchPredictor:
    spec = parse_spec(artifact.spec)
    assert isinstance(spec, TorchMLPSpec)
    return TorchPredictor(build_model(spec, len(artifact.class_names)), artifact)
