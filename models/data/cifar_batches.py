"""Reading the standard `cifar-10-batches-py` pickle batches."""

import pickle
from pathlib import Path

import numpy as np

from models.data.arrays import DatasetError, ImageArrays

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def find_batches_dir(dataset_dir: Path) -> Path | None:
    """The folder holding data_batch_1 .. test_batch: the data set folder or its cifar-10-batches-py."""
    for candidate in (dataset_dir / "cifar-10-batches-py", dataset_dir):
        if (candidate / TRAIN_BATCHES[0]).is_file() and (candidate / TEST_BATCH).is_file():
            return candidate
    return None


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, ValueError) as exc:
        raise DatasetError(f"cannot read CIFAR batch {path.name}: {type(exc).__name__}") from exc
    return data.reshape(-1, 3, 32, 32), labels  # rows are R(1024) G(1024) B(1024), row-major


def _class_names(batches_dir: Path) -> list[str]:
    meta = batches_dir / "batches.meta"
    if meta.is_file():
        with meta.open("rb") as f:
            names = pickle.load(f, encoding="bytes").get(b"label_names")
        if names:
            return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return list(CIFAR10_CLASSES)


def batch_files(batches_dir: Path) -> list[Path]:
    return [batches_dir / name for name in [*TRAIN_BATCHES, TEST_BATCH] if (batches_dir / name).exists()]


def read_cifar_batches(batches_dir: Path) -> ImageArrays:
    train = [_read_batch(batches_dir / name) for name in TRAIN_BATCHES if (batches_dir / name).is_file()]
    test_x, test_y = _read_batch(batches_dir / TEST_BATCH)
    return ImageArrays(
        train_x=np.concatenate([x for x, _ in train]),
        train_y=np.concatenate([y for _, y in train]),
        test_x=test_x,
        test_y=test_y,
        class_names=_class_names(batches_dir),
    )
