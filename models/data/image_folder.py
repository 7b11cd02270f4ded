"""Reading an image-folder data set: `train/<class>/*` and `test/<class>/*`."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from models.data.arrays import DatasetError, ImageArrays
from models.data.images import load_image_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}


def _shown(path: Path) -> str:
    """A path as job errors show it: from the data set's folder on (DATA_DIR/<dataset>/...), never absolute."""
    parts = path.parts
    for split in ("train", "test"):
        if split in parts:
            at = len(parts) - 1 - parts[::-1].index(split)
            return "DATA_DIR/" + "/".join(parts[max(0, at - 1) :])
    return "DATA_DIR/" + path.name


def has_image_folders(dataset_dir: Path) -> bool:
    return (dataset_dir / "train").is_dir() and (dataset_dir / "test").is_dir()


def _class_dirs(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_image_files(split_dir: Path, class_names: list[str]) -> list[tuple[Path, int]]:
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(class_names):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue
        files += [(p, label) for p in sorted(class_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    return files


def _decode(files: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
    images = np.empty((len(files), 3, 32, 32), dtype=np.uint8)
    labels = np.fromiter((label for _, label in files), dtype=np.int64, count=len(files))

    def decode_one(i: int) -> None:
        try:
            images[i] = load_image_file(str(files[i][0]))
        except OSError as exc:  # PIL raises UnidentifiedImageError (an OSError) for non-images
            raise DatasetError(f"cannot decode image {_shown(files[i][0])}: {exc}") from exc

    with ThreadPoolExecutor(max_workers=4) as pool:  # PIL releases the GIL while decoding
        list(pool.map(decode_one, range(len(files))))
    return images, labels


def read_image_folder(dataset_dir: Path, class_names: list[str] | None = None) -> ImageArrays:
    """Decode every image; class names come from train/'s sub-folders (sorted) unless given."""
    names = class_names or [p.name for p in _class_dirs(dataset_dir / "train")]
    if not names:
        raise DatasetError(f"no class folders in {_shown(dataset_dir / 'train')}")
    train_files = list_image_files(dataset_dir / "train", names)
    test_files = list_image_files(dataset_dir / "test", names)
    if not train_files or not test_files:
        raise DatasetError(f"no images under {_shown(dataset_dir / 'train')} or {_shown(dataset_dir / 'test')}")
    train_x, train_y = _decode(train_files)
    test_x, test_y = _decode(test_files)
    return ImageArrays(train_x, train_y, test_x, test_y, names)
