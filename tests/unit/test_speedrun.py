"""The `speedrun` kind: its network, the whitening, the epoch plans, the batch augmentation, the
test-time augmentation, and training on tiny data."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models.artifacts import unpack_model
from models.data.catalog import load_dataset
from models.kinds import load_predictor, parse_spec
from models.networks.speedrun import SpeedrunNet, whitening_filters
from models.run import run_job
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource
from models.training.speedrun import (
    epoch_plan,
    shift_and_mirror,
    steps_per_epoch,
    triangle,
    tta_logits,
    whitening_sample,
)
from tests.datagen import write_cifar_batches

SMALL = {"model": "speedrun", "widths": [16, 32, 32]}


def test_the_network_is_the_papers() -> None:
    net = SpeedrunNet()
    convs = [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [(3, 24, 2), (24, 64, 3), (64, 64, 3), (64, 256, 3), (256, 256, 3), (256, 256, 3), (256, 256, 3)]
    trainable = {name for name, p in net.named_parameters() if p.requires_grad}
    assert "whiten.weight" not in trainable and "whiten.bias" in trainable  # the whitening is fitted, not learned
    assert not any(name.endswith("norm1.weight") or name.endswith("norm2.weight") for name in trainable)
    assert all(m.bias is None for m in net.blocks.modules() if isinstance(m, nn.Conv2d)) and net.head.bias is None
    first = net.blocks[1].conv1.weight  # 64 -> 256: its first 64 filters pass their channel on
    assert torch.equal(first[:64, :, 1, 1], torch.eye(64)) and first[:64, :, 0].abs().sum() == 0
    assert not torch.equal(first[64:], torch.zeros_like(first[64:]))  # the rest keep their random start
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_whitening_filters_decorrelate_the_patches() -> None:
    rng = np.random.default_rng(0)
    mix = torch.tensor(rng.normal(size=(3, 3)), dtype=torch.float32)
    images = torch.einsum("dc,nchw->ndhw", mix, torch.randn(200, 3, 16, 16))  # correlated channels
    images = images + 0.5 * torch.roll(images, 1, dims=3)  # and correlated neighbours
    filters = whitening_filters(images, eps=0)
    assert filters.shape == (24, 3, 2, 2) and torch.allclose(filters[12:], -filters[:12])
    out = torch.nn.functional.conv2d(images, filters[:12]).permute(0, 2, 3, 1).reshape(-1, 12).double()
    covariance = torch.cov(out.T)
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.float64), atol=1e-2)


def test_epoch_plans_repeat_for_a_seed_and_alternate_the_flips() -> None:
    first, again = epoch_plan(1000, 7, 0, 2, "alternating"), epoch_plan(1000, 7, 0, 2, "alternating")
    assert np.array_equal(first.order, again.order) and np.array_equal(first.shifts, again.shifts)
    second = epoch_plan(1000, 7, 1, 2, "alternating")
    assert not np.array_equal(first.order, second.order)
    assert np.array_equal(second.flips, ~first.flips)  # every image the other way in the next epoch
    assert np.array_equal(epoch_plan(1000, 7, 2, 2, "alternating").flips, first.flips)
    assert 400 < first.flips.sum() < 600 and first.shifts.min() == 0 and first.shifts.max() == 4
    assert not epoch_plan(1000, 7, 0, 2, "none").flips.any()
    assert not np.array_equal(epoch_plan(1000, 8, 0, 2, "alternating").order, first.order)


def test_shift_and_mirror_cuts_each_image_from_its_padded_copy() -> None:
    x = torch.randn(5, 3, 8, 8)
    shifts = torch.tensor([[0, 0], [4, 4], [2, 2], [1, 3], [3, 0]])
    flips = torch.tensor([False, True, False, True, False])
    out = shift_and_mirror(x, shifts, flips, translate=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for i in range(5):
        dy, dx = shifts[i].tolist()
        expected = padded[i, :, dy : dy + 8, dx : dx + 8]
        assert torch.equal(out[i], expected.flip(-1) if flips[i] else expected), i
    assert torch.equal(shift_and_mirror(x, torch.full((5, 2), 2), torch.zeros(5, dtype=torch.bool), 2), x)


def test_test_time_augmentation_averages_six_views() -> None:
    torch.manual_seed(0)
    net = SpeedrunNet((8, 16, 16)).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(tta_logits(net, x, 0), net(x))
        mirrored = 0.5 * (net(x) + net(x.flip(-1)))
        assert torch.allclose(tta_logits(net, x, 1), mirrored)
        padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
        views = [padded[:, :, :32, :32], padded[:, :, 2:, 2:]]
        shifted = sum(0.5 * (net(v) + net(v.flip(-1))) for v in views) / 2
        assert torch.allclose(tta_logits(net, x, 2), 0.5 * mirrored + 0.5 * shifted, atol=1e-6)


def test_the_schedule_and_the_epochs_are_the_papers() -> None:
    assert steps_per_epoch(50_000, 1024) == 48 and parse_spec({"model": "speedrun"}).max_steps == 476  # 9.9 epochs
    assert triangle(0, 476) == pytest.approx(0.2) and triangle(109, 476) == pytest.approx(1.0)
    assert triangle(476, 476) == pytest.approx(0.07)
    assert steps_per_epoch(20, 1024) == 1  # a data set smaller than a batch: one batch of all of it


@pytest.fixture
def micro_data_dir(tmp_path: Path) -> Path:
    write_cifar_batches(tmp_path / "micro" / "cifar10", n_train_per_class=4, n_test_per_class=2)
    return tmp_path / "micro"


def test_speedrun_learns_a_tiny_dataset(micro_data_dir: Path) -> None:
    spec = parse_spec({**SMALL, "batch_size": 20, "max_steps": 40, "eval_every": 15, "log_every": 5,
                       "whiten_bias_epochs": 1, "learning_rate": 60, "label_smoothing": 0})  # fmt: skip
    reporter = InMemoryReporter()
    result = run_job(spec, reporter, DataSource(micro_data_dir))
    train = [p for p in reporter.points if p[1] == "train"]
    assert train[-1][2] < train[0][2] / 2 and train[-1][3] >= 0.9  # the loss falls; it learns its images
    assert [p[0] for p in reporter.points if p[1] == "test"] == [15, 30, 40]
    assert result.runtime["memory_format"] == "channels_last" and result.artifact is not None
    artifact = unpack_model(result.artifact)
    arrays = load_dataset("cifar10", micro_data_dir)
    predicted = load_predictor(artifact).probabilities(arrays.test_x).argmax(1)
    assert (predicted == arrays.test_y).mean() == pytest.approx(reporter.points[-1][3])  # as its evaluation
    one_view = load_predictor(type(artifact)({**artifact.spec, "predict_tta": False}, artifact.class_names,
                                             artifact.normalization, artifact.weights))  # fmt: skip
    assert not np.allclose(one_view.probabilities(arrays.test_x[:4]), load_predictor(artifact).probabilities(
        arrays.test_x[:4]))  # fmt: skip


def test_the_whitening_is_fitted_on_a_sample_of_every_class() -> None:
    labels = np.repeat(np.arange(10), 5000)  # an image folder loads class by class
    sample = whitening_sample(len(labels), seed=3)
    assert len(sample) == 5000 and len(np.unique(sample)) == 5000
    assert np.bincount(labels[sample], minlength=10).min() > 400  # not the first class alone
    assert np.array_equal(sample, whitening_sample(len(labels), seed=3))
    assert len(whitening_sample(40, seed=3)) == 40
    bias = SpeedrunNet().whiten.bias
    assert bias is not None and torch.equal(bias, torch.zeros(24))
