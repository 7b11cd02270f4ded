"""Data sets: pickle batches, image folders of any size and mode, the array cache, name checks."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.data import catalog
from models.data.arrays import DatasetError
from models.data.cache import cache_path
from models.data.catalog import load_dataset
from models.data.images import image_to_array
from models.data.preprocessing import fit_normalization
from tests.datagen import CLASSES, class_images, write_cifar_batches, write_image_folder


def test_cifar_batches_are_read_in_nchw_with_their_labels(tmp_path: Path) -> None:
    write_cifar_batches(tmp_path / "cifar10", n_train_per_class=5, n_test_per_class=2)
    arrays = load_dataset("cifar10", tmp_path)
    assert arrays.train_x.shape == (50, 3, 32, 32) and arrays.train_x.dtype == np.uint8
    assert arrays.test_x.shape == (20, 3, 32, 32)
    assert arrays.class_names == CLASSES
    expected_x, expected_y = class_images(2, seed=3)
    np.testing.assert_array_equal(arrays.test_x, expected_x)
    np.testing.assert_array_equal(arrays.test_y, expected_y)


def test_image_folder_of_any_size_and_mode_becomes_3x32x32(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "shapes", ["circle", "square"], size=(48, 40), fmt="JPEG")
    gray = tmp_path / "shapes" / "train" / "circle" / "gray.png"
    Image.new("L", (7, 100), 128).save(gray)
    Image.new("RGBA", (64, 64), (10, 20, 30, 0)).save(tmp_path / "shapes" / "test" / "square" / "alpha.png")
    arrays = load_dataset("shapes", tmp_path)
    assert arrays.class_names == ["circle", "square"]
    assert arrays.train_x.shape == (25, 3, 32, 32)
    assert arrays.test_x.shape == (13, 3, 32, 32)
    assert sorted(set(arrays.train_y.tolist())) == [0, 1]


def test_image_to_array_matches_pil_resize() -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 60, 3), dtype=np.uint8))
    expected = np.asarray(image.resize((32, 32), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
    np.testing.assert_array_equal(image_to_array(image), expected)


def test_second_load_comes_from_the_cache_and_a_changed_folder_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_image_folder(tmp_path / "pets", ["cat", "dog"])
    first = load_dataset("pets", tmp_path)
    assert cache_path(tmp_path / "pets").is_file()

    def no_decoding(*_args: object) -> None:
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(catalog, "read_image_folder", no_decoding)
    second = load_dataset("pets", tmp_path)
    np.testing.assert_array_equal(first.train_x, second.train_x)
    monkeypatch.undo()

    Image.new("RGB", (32, 32), (255, 0, 0)).save(tmp_path / "pets" / "train" / "cat" / "new.png")
    assert len(load_dataset("pets", tmp_path).train_y) == len(first.train_y) + 1


def test_missing_dataset_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", tmp_path, download=False)
    assert "DATA_DIR/cifar10" in str(err.value) and str(tmp_path) not in str(err.value)  # relative: no probing
    assert "cifar-10-batches-py" in str(err.value)


@pytest.mark.parametrize("name", ["../x", "/etc", ".cache", "a/b", "", "x" * 65])
def test_dataset_names_cannot_leave_the_data_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(DatasetError, match="invalid dataset name"):
        load_dataset(name, tmp_path)


def test_assignment_preprocessing_subtracts_the_mean_image() -> None:
    x, _ = class_images(4)
    norm = fit_normalization("assignment", x)
    out = norm.apply(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(out, x.astype(np.float64) - x.mean(axis=0), atol=1e-3)  # no scaling


def test_standardize_gives_zero_mean_unit_variance_per_channel() -> None:
    x, _ = class_images(4)
    out = fit_normalization("standardize", x).apply(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-4)
