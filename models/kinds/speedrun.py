"""The `speedrun` kind: the fast CIFAR-10 recipe of "94% on CIFAR-10 in 3.29 Seconds on a Single GPU"
(Keller Jordan, arXiv 2404.00498), written from the paper's description. torch is imported only when
the kind trains or predicts.

Its defaults are the paper's 94% recipe (airbench94): batch 1024, 9.9 epochs (476 steps of 48 full
batches per epoch), Nesterov SGD with momentum 0.85, learning rate 11.5 and weight decay 0.0153 per
1024 images, batch-norm biases at 64x the step, label smoothing 0.2, Lookahead, alternating flips and
2-pixel translations, and a 6-view test-time augmentation. What changes on a CPU is only the
precision: bfloat16 autocast where `mixed_precision: "auto"` says the CPU runs it faster (the paper's
GPU runs use float16, which CPUs do not speed up), float32 elsewhere.
"""

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import ConfigDict, Field

from models.artifacts import ModelArtifact
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.kinds.common import MAX_BATCH, MAX_STEPS, CommonSpec, TorchRuntimeOptions
from models.kinds.registry import ModelKind
from models.training.reporting import Reporter
from models.training.results import DataSource, RunResult, StartFrom

if TYPE_CHECKING:
    from models.networks.speedrun import SpeedrunNet
    from models.training.speedrun import SpeedrunPredictor

Width = Annotated[int, Field(ge=8, le=1024)]


class SpeedrunSpec(TorchRuntimeOptions, CommonSpec):
    """The paper's 94% CIFAR-10 recipe; every default is the paper's."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "speedrun"}, {"model": "speedrun", "seed": 1, "max_steps": 240}]},
    )

    model: Literal["speedrun"] = Field(description="The kind of network to train.")
    preprocessing: Literal["assignment", "standardize", "imagenet"] = Field(
        "standardize", description="Per-channel standardisation, as in the paper (see the other kinds)."
    )
    batch_size: int = Field(1024, ge=1, le=MAX_BATCH, description="Training images per step.")
    max_steps: int = Field(
        476, ge=1, le=MAX_STEPS, description="Training steps: 476 is the paper's 9.9 epochs of CIFAR-10 "
        "(48 full batches of 1,024 per epoch; the rest of each epoch's shuffle is left out)."
    )  # fmt: skip
    eval_every: int = Field(
        476, ge=1, le=MAX_STEPS, description="Evaluate (with the test-time augmentation) every this many steps and "
        "at the end; each evaluation runs the network 6 times over the test set."
    )  # fmt: skip
    checkpoint_every: int = Field(
        100, ge=1, le=MAX_STEPS, description="Save the full training state every this many steps (and on a "
        "graceful stop); a job handed back to the queue resumes from its last checkpoint."
    )  # fmt: skip
    widths: list[Width] = Field(
        [64, 256, 256], min_length=3, max_length=3, description="Channels of the three conv blocks."
    )
    learning_rate: float = Field(
        11.5, gt=0, le=100, description="Nesterov SGD's step per 1,024 images (the paper's units: the loss is "
        "summed over the batch, and the step divided by 1,024 x (1 + 1 / (1 - momentum)))."
    )  # fmt: skip
    momentum: float = Field(0.85, ge=0, lt=1, description="Nesterov momentum.")
    weight_decay: float = Field(0.0153, ge=0, le=1, description="Weight decay per 1,024 images.")
    bias_scaler: float = Field(64.0, gt=0, le=1024, description="The batch norms' biases learn this much faster.")
    label_smoothing: float = Field(0.2, ge=0, le=0.5, description="Cross-entropy label smoothing.")
    whiten_bias_epochs: int = Field(
        3, ge=0, le=1000, description="Train the whitening layer's bias for this many epochs, then freeze it."
    )
    lookahead: bool = Field(
        True, description="Every 5 steps pull the weights towards a slow average (weight 0.95^5 x progress^3), "
        "and end on that average."
    )  # fmt: skip
    flip: Literal["alternating", "random", "none"] = Field(
        "alternating", description="`alternating`: each image flipped in every other epoch (random in the first); "
        "`random`: half the images each batch."
    )  # fmt: skip
    translate: int = Field(2, ge=0, le=8, description="Random shifts of up to this many pixels (reflect padding).")
    tta_level: Literal[0, 1, 2] = Field(
        2, description="Test-time augmentation of evaluations and predictions: 0 none; 1 the mirror image too; "
        "2 also both shifted by one pixel (6 views)."
    )  # fmt: skip
    predict_tta: bool = Field(True, description="Predictions use `tta_level` too; false: one view (6x cheaper).")


def train(
    spec: SpeedrunSpec,
    arrays: ImageArrays,
    norm: Normalization,
    reporter: Reporter,
    source: DataSource,
    start: StartFrom,
) -> RunResult:
    from models.training.speedrun import train_speedrun

    return train_speedrun(spec, arrays, norm, reporter, start)


def build(spec: SpeedrunSpec, n_classes: int) -> "SpeedrunNet":
    from models.training.speedrun import build_network

    return build_network(spec, n_classes)


def load(spec: SpeedrunSpec, artifact: ModelArtifact) -> "SpeedrunPredictor":
    from models.training.speedrun import SpeedrunPredictor

    return SpeedrunPredictor(spec, artifact)


KIND = ModelKind(SpeedrunSpec, train, load, build, ("widths",), listed=5)
