"""Tiny, easily separable CIFAR-like data sets written by the tests themselves."""

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def class_images(n_per_class: int, n_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) uint8 images whose class sets a distinct colour and stripe pattern, plus noise."""
    rng = np.random.default_rng(seed)
    palette = np.random.default_rng(1234).integers(20, 236, size=(n_classes, 3))
    images, labels = [], []
    for label in range(n_classes):
        base = np.broadcast_to(palette[label].reshape(3, 1, 1), (3, 32, 32)).astype(np.int16).copy()
        base[:, label * 3 : label * 3 + 3, :] = 255 - base[:, label * 3 : label * 3 + 3, :]  # a class-specific stripe
        noise = rng.integers(-12, 13, size=(n_per_class, 3, 32, 32))
        images.append(np.clip(base[None] + noise, 0, 255).astype(np.uint8))
        labels += [label] * n_per_class
    return np.concatenate(images), np.asarray(labels, dtype=np.int64)


def write_cifar_batches(folder: Path, n_train_per_class: int = 20, n_test_per_class: int = 10) -> Path:
    """data_batch_1..5 and test_batch in the pickle format of `cifar-10-batches-py`."""
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True, exist_ok=True)
    train_x, train_y = class_images(n_train_per_class, seed=1)
    order = np.random.default_rng(2).permutation(len(train_y))
    train_x, train_y = train_x[order], train_y[order]
    for i, part in enumerate(np.array_split(np.arange(len(train_y)), 5), start=1):
        _dump(batches / f"data_batch_{i}", train_x[part], train_y[part])
    test_x, test_y = class_images(n_test_per_class, seed=3)
    _dump(batches / "test_batch", test_x, test_y)
    with (batches / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES]}, f)
    return batches


def _dump(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    with path.open("wb") as f:
        pickle.dump({b"data": x.reshape(len(x), -1), b"labels": y.tolist()}, f)


def write_image_folder(
    folder: Path,
    classes: list[str],
    n_train_per_class: int = 12,
    n_test_per_class: int = 6,
    size: tuple[int, int] = (32, 32),
    fmt: str = "PNG",
) -> Path:
    """train/<class>/*.png and test/<class>/*.png, the layout of the shared CIFAR-10 copy."""
    for split, n, seed in (("train", n_train_per_class, 5), ("test", n_test_per_class, 6)):
        x, y = class_images(n, n_classes=len(classes), seed=seed)
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            target = folder / split / classes[label]
            target.mkdir(parents=True, exist_ok=True)
            picture = Image.fromarray(image.transpose(1, 2, 0))
            if picture.size != size:
                picture = picture.resize(size, Image.Resampling.NEAREST)
            picture.save(target / f"{i:04d}.{fmt.lower()}", fmt)
    return folder
