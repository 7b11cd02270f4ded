"""The `vit` kind: a small vision transformer for 32x32 images (Dosovitskiy et al., "An Image is Worth 16x16
Words", 2021, scaled down as in "Vision Transformer for Small-Size Datasets", Lee et al. 2021): the image cut
into patches, each a token; a class token; pre-norm encoder blocks; a linear head on the class token.

What a plugin gives: the spec (hyperparameters with defaults, ranges and descriptions) and `build`. The service's
torch loop does the rest: optimizer, schedule, bf16 and channels-last, checkpoints and exact resume, evaluation,
curves, predictions with the same preprocessing. torch is imported only when a network is built.
"""

from typing import TYPE_CHECKING, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from models.kinds.common import MAX_BATCH, MAX_PARAMETERS, MAX_STEPS, TorchJobSpec
from models.kinds.registry import torch_kind

if TYPE_CHECKING:
    from torch import nn

IMAGE_SIZE = 32


class ViTSpec(TorchJobSpec):
    """A small vision transformer (ViT): patches as tokens, a class token, pre-norm encoder blocks. Defaults: a
    6-block, 192-wide network (about 1.8 M parameters) trained with AdamW, a cosine schedule and crop-and-flip."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "vit"}, {"model": "vit", "depth": 4, "width": 128, "heads": 4}]},
    )

    model: Literal["vit"] = Field(description="The kind of network to train.")
    patch_size: Literal[2, 4, 8] = Field(4, description="Each token is a square of this many pixels a side.")
    width: int = Field(192, ge=8, le=1024, description="Each token's width (a multiple of `heads`).")
    depth: int = Field(6, ge=1, le=24, description="Encoder blocks.")
    heads: int = Field(3, ge=1, le=16, description="Attention heads per block.")
    mlp_ratio: float = Field(2.0, ge=1, le=8, description="Each block's hidden layer, as a multiple of `width`.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout in the blocks.")
    learning_rate: float = Field(1e-3, gt=0, le=10, description="Step size of the optimizer (the peak, with warm-up).")
    optimizer: Literal["sgd", "sgd_momentum", "adam", "adamw"] = Field(
        "adamw", description="`adamw` (decoupled weight decay) suits transformers; `sgd`, `sgd_momentum`, `adam`."
    )
    weight_decay: float = Field(0.05, ge=0, le=1, description="Weight decay (decoupled for `adamw`).")
    lr_schedule: Literal["constant", "cosine", "step"] = Field("cosine", description="How the learning rate decays.")
    warmup_steps: int = Field(200, ge=0, le=MAX_STEPS, description="Linear learning-rate warm-up from 0.")
    augmentation: Literal["none", "crop_flip"] = Field(
        "crop_flip", description="`crop_flip`: random 4-pixel-padded crops and horizontal flips."
    )
    batch_size: int = Field(128, ge=1, le=MAX_BATCH, description="Training images per step.")
    max_steps: int = Field(5000, ge=1, le=MAX_STEPS, description="Training steps (mini-batches).")
    eval_every: int = Field(
        500, ge=1, le=MAX_STEPS, description="Evaluate on the whole test set every this many steps and at the end."
    )

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        if count_parameters(self) > MAX_PARAMETERS:
            raise ValueError(f"{count_parameters(self):,} parameters: at most {MAX_PARAMETERS:,}")
        return self


def count_parameters(spec: ViTSpec, n_classes: int = 10) -> int:
    """The network's parameters, counted without building it."""
    tokens = (IMAGE_SIZE // spec.patch_size) ** 2 + 1
    hidden = int(spec.width * spec.mlp_ratio)
    block = 4 * spec.width * (spec.width + 1) + 2 * spec.width * hidden + hidden + spec.width + 4 * spec.width
    embedding = 3 * spec.patch_size**2 * spec.width + spec.width + tokens * spec.width + spec.width
    return embedding + spec.depth * block + 2 * spec.width + spec.width * n_classes + n_classes


def build(spec: ViTSpec, n_classes: int) -> "nn.Module":
    from cifar_jobs_vit.network import VisionTransformer

    return VisionTransformer(
        IMAGE_SIZE, spec.patch_size, spec.width, spec.depth, spec.heads, spec.mlp_ratio, spec.dropout, n_classes
    )


KIND = torch_kind(ViTSpec, build, architecture=("patch_size", "width", "depth", "heads", "mlp_ratio"))
