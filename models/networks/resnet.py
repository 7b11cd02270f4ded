"""torchvision's ResNet18 with a new classification head, an optional CIFAR stem, and ImageNet weights."""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from models.data.weights_files import WEIGHTS_FILE, weight_candidates
from models.errors import JobError

WHERE_TO_PUT_WEIGHTS = "DATA_DIR/weights/ or $TORCH_HOME/hub/checkpoints/"  # job errors show no server paths


class ResNet18Classifier(nn.Module):
    def __init__(
        self, n_classes: int, stem: str = "cifar", input_size: int = 32, freeze_backbone: bool = False
    ) -> None:
        super().__init__()
        net = resnet18(weights=None)
        if stem == "cifar":  # 3x3 stride 1 and no max-pool: 32x32 images keep their detail
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        net.fc = nn.Linear(net.fc.in_features, n_classes)
        self.net = net
        self.input_size = input_size
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            for name, param in net.named_parameters():
                param.requires_grad = name.startswith("fc.")

    def train(self, mode: bool = True) -> "ResNet18Classifier":
        super().train(mode)
        if self.freeze_backbone:  # frozen means frozen: batch-norm statistics too
            for name, module in self.net.named_children():
                if name != "fc":
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size:  # upsampled on the device, e.g. to 224 for ImageNet weights
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self.net(x)  # type: ignore[no-any-return]


def find_imagenet_weights(data_dir: Path, download: bool) -> Path:
    """The ImageNet ResNet18 weights file: torchvision's cache, DATA_DIR/weights/, or a download."""
    candidates = weight_candidates(data_dir)
    for path in candidates:
        if path.is_file():
            return path
    if download:
        try:
            torch.hub.download_url_to_file(ResNet18_Weights.IMAGENET1K_V1.url, str(candidates[0]), progress=False)
            return candidates[0]
        except Exception as exc:  # network errors come in many types
            raise JobError(
                f"ImageNet weights for ResNet18 not found and the download failed ({type(exc).__name__}); put "
                f"{WEIGHTS_FILE} in {WHERE_TO_PUT_WEIGHTS}"
            ) from exc
    raise JobError(
        f"ImageNet weights for ResNet18 not found: put {WEIGHTS_FILE} (torchvision's "
        f"{ResNet18_Weights.IMAGENET1K_V1.url}) in {WHERE_TO_PUT_WEIGHTS}"
    )


def load_imagenet_weights(model: ResNet18Classifier, path: Path) -> list[str]:
    """Copy every tensor of the file into the model except the head (and conv1 with the CIFAR stem,
    whose shape differs). Returns the names it skipped. Only plain tensors are unpickled."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise JobError(f"{path} is not a readable PyTorch state dict: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise JobError(f"{path} is not a state dict of tensors")
    own = model.net.state_dict()
    missing = sorted(k for k in own if k not in state and not k.startswith("fc."))
    if missing:
        raise JobError(f"{path} does not match ResNet18: missing {', '.join(missing[:5])}")
    skipped = [k for k, v in state.items() if k.startswith("fc.") or k not in own or own[k].shape != v.shape]
    own.update({k: v for k, v in state.items() if k not in skipped})
    model.net.load_state_dict(own)
    return skipped
