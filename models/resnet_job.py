"""The `resnet18` kind: torchvision's ResNet18, from scratch or from ImageNet weights."""

import logging

from models.artifacts import ModelArtifact
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.reporting import Reporter
from models.resnet import ResNet18Classifier, find_imagenet_weights, load_imagenet_weights
from models.results import RunEnv, RunResult
from models.specs import ResNet18Spec, parse_spec
from models.torch_job import train_torch_model
from models.torch_predict import TorchPredictor

log = logging.getLogger(__name__)


def build_model(spec: ResNet18Spec, n_classes: int) -> ResNet18Classifier:
    return ResNet18Classifier(n_classes, spec.stem, spec.input_size, spec.freeze_backbone)


def train_resnet18(
    spec: ResNet18Spec, arrays: ImageArrays, norm: Normalization, reporter: Reporter, env: RunEnv
) -> RunResult:
    weights = find_imagenet_weights(env.data_dir, env.download) if spec.pretrained else None  # fail before training

    def build() -> ResNet18Classifier:
        model = build_model(spec, arrays.n_classes)
        if weights is not None:
            skipped = load_imagenet_weights(model, weights)
            log.info("loaded ImageNet weights from %s; new: %s", weights, ", ".join(skipped))
        return model

    scale = (32 / spec.input_size) ** 2 / 4  # ResNet18 needs about 4x the MLP's memory per image at 32x32
    return train_torch_model(spec, build, arrays, norm, reporter, env.resume, eval_scale=scale)


def load_resnet18(artifact: ModelArtifact) -> TorchPredictor:
    spec = parse_spec(artifact.spec)
    assert isinstance(spec, ResNet18Spec)
    model = build_model(spec, len(artifact.class_names))
    model.freeze_backbone = False  # eval mode everywhere anyway
    return TorchPredictor(model, artifact, channels_last=True)
