"""Finding a data set by name under the data directory, in whichever layout it comes."""

import logging
import re
from pathlib import Path

from models.data.arrays import DatasetError, ImageArrays
from models.data.cache import load_cached
from models.data.cifar_batches import CIFAR10_CLASSES, batch_files, find_batches_dir, read_cifar_batches
from models.data.image_folder import has_image_folders, read_image_folder

DATASET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
log = logging.getLogger(__name__)


def dataset_dir(name: str, data_dir: Path) -> Path:
    """The folder of data set `name`, directly under the data directory.

    The name is one path component that cannot start with a dot, so it can never point
    outside DATA_DIR (a folder there may still be a symbolic link to the real data).
    """
    if not re.match(DATASET_NAME_PATTERN, name):
        raise DatasetError(f"invalid dataset name {name!r}: letters, digits, '_', '-', '.', not starting with '.'")
    return data_dir.resolve() / name


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for split in ("train", "test") for p in (folder / split).iterdir() if p.is_dir())


def _download_cifar10(folder: Path) -> None:
    import torchvision  # only here: the NumPy path never needs torch

    log.info("downloading CIFAR-10 into %s", folder)
    try:
        torchvision.datasets.CIFAR10(root=str(folder), train=True, download=True)
    except Exception as exc:  # network errors come in many types
        raise DatasetError(f"CIFAR-10 not found in DATA_DIR/cifar10 and the download failed: {exc}") from exc


def load_dataset(name: str, data_dir: Path, download: bool = False) -> ImageArrays:
    """Decoded train and test arrays of data set `name` (cached after the first call).

    `cifar10` is read from `cifar-10-batches-py` pickle batches or from `train/<class>/*`
    image folders, and downloaded when missing and `download` is set. Every other name is an
    image-folder data set.
    """
    folder = dataset_dir(name, data_dir)
    batches = find_batches_dir(folder) if name == "cifar10" else None
    if batches is None and name == "cifar10" and download and not has_image_folders(folder):
        _download_cifar10(folder)
        batches = find_batches_dir(folder)
    if batches is not None:
        return load_cached(folder, batch_files(batches), lambda: read_cifar_batches(batches))
    if has_image_folders(folder):
        names = CIFAR10_CLASSES if name == "cifar10" else None
        return load_cached(folder, _class_folders(folder), lambda: read_image_folder(folder, names))
    expected = "cifar-10-batches-py/data_batch_1..5 + test_batch, or " if name == "cifar10" else ""
    raise DatasetError(
        f"dataset {name!r} not found: looked for {expected}train/<class>/* and test/<class>/* image "
        f"folders in DATA_DIR/{name} (set DATA_DIR to the folder that holds {name}/)"
    )
