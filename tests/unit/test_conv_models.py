"""The ConvNet and ResNet18 kinds: architecture, weights loading, and training on tiny data."""

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from models.data.weights_files import WEIGHTS_FILE
from models.errors import JobError
from models.kinds import parse_spec
from models.networks.convnet import ConvNet, PreActBlock
from models.networks.resnet import ResNet18Classifier, load_imagenet_weights
from models.run import run_job
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource
from tests.datagen import write_cifar_batches


def conv_params(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def preact_params(c: int) -> int:
    return 2 * c + conv_params(c, c, 3)  # BN (gamma, beta) + 3x3 conv with bias


def test_convnet_layers_and_parameter_count_match_the_assignment() -> None:
    net = ConvNet()
    layout = []
    for m in net.features:
        if isinstance(m, nn.Conv2d):
            layout.append(f"conv{m.kernel_size[0]}:{m.in_channels}->{m.out_channels}")
        elif isinstance(m, PreActBlock):
            layout.append(f"preact{m.conv.in_channels}")
        elif isinstance(m, nn.MaxPool2d):
            assert (m.kernel_size, m.stride, m.padding) == (3, 2, 1)
            layout.append("pool")
        else:
            layout.append(type(m).__name__)
    assert layout == [
        "conv3:3->64", "preact64", "conv1:64->128", "pool", "preact128", "preact128", "conv1:128->256", "pool",
        "preact256", "preact256", "conv1:256->512", "pool", "preact512", "preact512", "pool", "preact512",
        "preact512", "pool", "BatchNorm2d", "ReLU",
    ]  # fmt: skip
    expected = (
        conv_params(3, 64, 3) + preact_params(64) + conv_params(64, 128, 1) + 2 * preact_params(128)
        + conv_params(128, 256, 1) + 2 * preact_params(256) + conv_params(256, 512, 1) + 4 * preact_params(512)
        + 2 * 512 + (512 * 10 + 10)
    )  # fmt: skip
    assert sum(p.numel() for p in net.parameters()) == expected
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_the_weights_file_name_is_torchvisions() -> None:
    from torchvision.models import ResNet18_Weights

    assert Path(ResNet18_Weights.IMAGENET1K_V1.url).name == WEIGHTS_FILE


@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_resnet18_forward_backward_and_new_head(stem: str) -> None:
    model = ResNet18Classifier(10, stem=stem)
    assert model.net.fc.out_features == 10
    assert model.net.conv1.kernel_size == ((3, 3) if stem == "cifar" else (7, 7))
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()


def test_frozen_backbone_trains_only_the_head() -> None:
    model = ResNet18Classifier(10, freeze_backbone=True).train()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["net.fc.weight", "net.fc.bias"]
    assert not model.net.bn1.training and model.net.fc.training


def write_torchvision_weights(folder: Path) -> dict[str, torch.Tensor]:
    """A freshly initialised torchvision ResNet18's state dict, saved where the service looks for it."""
    from torchvision.models import resnet18

    torch.manual_seed(123)
    state: dict[str, torch.Tensor] = resnet18(weights=None).state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / WEIGHTS_FILE)
    return state


def test_pretrained_weights_are_loaded_for_everything_but_the_head(tmp_path: Path) -> None:
    state = write_torchvision_weights(tmp_path / "weights")
    model = ResNet18Classifier(10, stem="imagenet")
    skipped = load_imagenet_weights(model, tmp_path / "weights" / WEIGHTS_FILE)
    assert skipped == ["fc.weight", "fc.bias"]
    own = model.net.state_dict()
    for name, value in state.items():
        if not name.startswith("fc."):
            assert torch.equal(own[name], value), name
    assert own["fc.weight"].shape == (10, 512)


def test_weights_file_that_is_not_a_state_dict_fails_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(JobError, match="not a readable PyTorch state dict"):
        load_imagenet_weights(ResNet18Classifier(10), bad)
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(JobError, match="does not match ResNet18"):
        load_imagenet_weights(ResNet18Classifier(10), bad)


def test_pretrained_job_without_weights_says_where_to_put_them(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(JobError) as err:
        run_job(
            parse_spec({"model": "resnet18", "pretrained": True, "max_steps": 1}),
            InMemoryReporter(),
            DataSource(data_dir),
        )
    assert WEIGHTS_FILE in str(err.value) and "DATA_DIR/weights/" in str(err.value)
    assert str(data_dir) not in str(err.value)  # no server paths in job errors


def test_pretrained_job_trains_from_the_weights_file(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    write_torchvision_weights(data_dir / "weights")
    spec = {
        "model": "resnet18",
        "pretrained": True,
        "stem": "imagenet",
        "max_steps": 3,
        "batch_size": 8,
        "eval_every": 3,
    }
    result = run_job(parse_spec(spec), InMemoryReporter(), DataSource(data_dir))
    assert result.steps_done == 3 and result.artifact is not None


@pytest.fixture
def micro_data_dir(tmp_path: Path) -> Path:
    """Two training images per class: small enough for a convolutional network to overfit in seconds."""
    write_cifar_batches(tmp_path / "micro" / "cifar10", n_train_per_class=2, n_test_per_class=1)
    return tmp_path / "micro"


@pytest.mark.parametrize(
    "spec",
    [
        {"model": "convnet", "learning_rate": 3e-3},
        {"model": "resnet18", "stem": "cifar", "learning_rate": 3e-3},
    ],
    ids=["convnet", "resnet18"],
)
def test_conv_models_overfit_a_tiny_dataset(micro_data_dir: Path, spec: dict[str, Any]) -> None:
    spec = {**spec, "max_steps": 15, "batch_size": 20, "eval_every": 15, "log_every": 5}
    reporter = InMemoryReporter()
    result = run_job(parse_spec(spec), reporter, DataSource(micro_data_dir))
    train_points = [p for p in reporter.points if p[1] == "train"]
    assert train_points[-1][2] < train_points[0][2] / 4  # the training loss falls
    assert train_points[-1][3] == 1.0  # every training image right
    assert reporter.last_progress is not None and reporter.last_progress[2] > 0  # images per second reported
    assert result.artifact is not None
