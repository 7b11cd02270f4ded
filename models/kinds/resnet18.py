"""The `resnet18` kind: torchvision's ResNet18 with a new head, from scratch or from ImageNet weights.
torch is imported only when the kind trains or predicts."""

import logging
from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field, model_validator

from models.artifacts import ModelArtifact
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.kinds.common import MAX_BATCH, MAX_STEPS, TorchJobSpec
from models.kinds.registry import ModelKind
from models.training.reporting import Reporter
from models.training.results import DataSource, RunResult, StartFrom

if TYPE_CHECKING:
    from models.networks.resnet import ResNet18Classifier
    from models.prediction.torch_predictor import TorchPredictor

log = logging.getLogger(__name__)


class ResNet18Spec(TorchJobSpec):
    """torchvision's ResNet18 with a new 10-class head, from scratch or from ImageNet weights."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model": "resnet18", "pretrained": True, "stem": "imagenet"},
                {
                    "model": "resnet18",
                    "stem": "cifar",
                    "augmentation": "crop_flip",
                    "optimizer": "sgd_momentum",
                    "learning_rate": 0.1,
                    "weight_decay": 0.0005,
                    "lr_schedule": "cosine",
                    "batch_size": 128,
                },
            ]
        },
    )

    model: Literal["resnet18"] = Field(description="The kind of network to train.")
    pretrained: bool = Field(False, description="Start from torchvision's ImageNet weights (see the README).")
    freeze_backbone: bool = Field(False, description="Train only the new head.")
    stem: Literal["cifar", "imagenet"] = Field(
        "cifar",
        description="`imagenet`: torchvision's 7x7 stride-2 stem and max-pool, as in the report; `cifar`: "
        "3x3 stride 1 without the max-pool, the usual choice for 32x32 images.",
    )
    input_size: int = Field(32, ge=32, le=256, description="Images are upsampled on the device to this size.")
    preprocessing: Literal["assignment", "standardize", "imagenet"] | None = Field(  # type: ignore[assignment]
        None, description="Default: `imagenet` with pretrained weights, else `standardize`."
    )
    learning_rate: float = Field(1e-4, gt=0, le=10, description="Step size of the optimizer.")
    optimizer: Literal["sgd", "sgd_momentum", "adam", "adamw"] = Field(
        "adam",
        description="`sgd` (plain), `sgd_momentum` (see `momentum`), `adam`, or `adamw` (decoupled weight decay).",
    )
    batch_size: int = Field(32, ge=1, le=MAX_BATCH, description="Training images per step.")
    max_steps: int = Field(5000, ge=1, le=MAX_STEPS, description="Training steps (mini-batches).")
    eval_every: int = Field(
        500, ge=1, le=MAX_STEPS, description="Evaluate on the whole test set every this many steps and at the end."
    )

    @model_validator(mode="after")
    def _default_preprocessing(self) -> "ResNet18Spec":
        if self.preprocessing is None:
            self.preprocessing = "imagenet" if self.pretrained else "standardize"
        return self


def build(spec: ResNet18Spec, n_classes: int) -> "ResNet18Classifier":
    from models.networks.resnet import ResNet18Classifier

    return ResNet18Classifier(n_classes, spec.stem, spec.input_size, spec.freeze_backbone)


def train(
    spec: ResNet18Spec,
    arrays: ImageArrays,
    norm: Normalization,
    reporter: Reporter,
    source: DataSource,
    start: StartFrom,
) -> RunResult:
    from models.networks.resnet import find_imagenet_weights, load_imagenet_weights
    from models.training.torch_setup import train_torch_network

    weights = find_imagenet_weights(source.data_dir, source.download) if spec.pretrained else None  # fail early

    def build_network() -> "ResNet18Classifier":
        model = build(spec, arrays.n_classes)
        if weights is not None:
            skipped = load_imagenet_weights(model, weights)
            log.info("loaded ImageNet weights from %s; new: %s", weights, ", ".join(skipped))
        return model

    scale = (32 / spec.input_size) ** 2 / 4  # ResNet18 needs about 4x the MLP's memory per image at 32x32
    return train_torch_network(spec, build_network, arrays, norm, reporter, start, eval_scale=scale, convolutional=True)


def load(spec: ResNet18Spec, artifact: ModelArtifact) -> "TorchPredictor":
    from models.prediction.torch_predictor import TorchPredictor

    model = build(spec, len(artifact.class_names))
    model.freeze_backbone = False  # eval mode everywhere anyway
    return TorchPredictor(model, artifact, spec, convolutional=True)


KIND = ModelKind(ResNet18Spec, train, load, build, ("stem",), listed=4)
