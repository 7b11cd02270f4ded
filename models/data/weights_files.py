"""Where the ImageNet ResNet18 weights file is looked for (torch-free, so the API can ask too)."""

import os
from pathlib import Path

WEIGHTS_FILE = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1 (a test checks the name)


def weight_candidates(data_dir: Path) -> list[Path]:
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))  # noqa: TID251  (torch's)
    return [torch_home / "hub" / "checkpoints" / WEIGHTS_FILE, data_dir / "weights" / WEIGHTS_FILE]


def imagenet_weights_present(data_dir: Path) -> bool:
    return any(path.is_file() for path in weight_candidates(data_dir))
