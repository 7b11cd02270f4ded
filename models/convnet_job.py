"""The `convnet` kind: the assignment's pre-activation ConvNet."""

from models.artifacts import ModelArtifact
from models.convnet import ConvNet
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.reporting import Reporter
from models.results import RunEnv, RunResult
from models.specs import ConvNetSpec
from models.torch_job import train_torch_model
from models.torch_predict import TorchPredictor


def train_convnet(
    spec: ConvNetSpec, arrays: ImageArrays, norm: Normalization, reporter: Reporter, env: RunEnv
) -> RunResult:
    return train_torch_model(spec, lambda: ConvNet(3, arrays.n_classes), arrays, norm, reporter, env.resume)


def load_convnet(artifact: ModelArtifact) -> TorchPredictor:
    return TorchPredictor(ConvNet(3, len(artifact.class_names)), artifact, channels_last=True)
