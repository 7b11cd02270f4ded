"""Decoded arrays cached next to the data, so that only the first job pays for decoding.

The cache is one uncompressed `.npz` in `<dataset>/.cache/`, tagged with a fingerprint of the
source files or folders (see `fingerprint`): when the source changes, it is rebuilt.
Where the data folder is read-only, the arrays are simply not cached.
"""

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.data.arrays import ImageArrays

CACHE_VERSION = 1
log = logging.getLogger(__name__)


def fingerprint(sources: list[Path], root: Path) -> str:
    """Names, sizes and modification times of files; for folders also their entry count
    (adding or removing a file changes both), which is far cheaper than stat-ing every image."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for path in sources:
        st = path.stat()
        entries = len(os.listdir(path)) if path.is_dir() else 0
        digest.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}:{entries};".encode())
    return digest.hexdigest()


def cache_path(dataset_dir: Path) -> Path:
    return dataset_dir / ".cache" / "arrays.npz"


def _read(path: Path, expected_fingerprint: str) -> ImageArrays | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["fingerprint"]) != expected_fingerprint:
                return None
            return ImageArrays(
                train_x=npz["train_x"],
                train_y=npz["train_y"],
                test_x=npz["test_x"],
                test_y=npz["test_y"],
                class_names=json.loads(str(npz["class_names"])),
            )
    except (OSError, KeyError, ValueError):
        return None


def _write(path: Path, arrays: ImageArrays, source_fingerprint: str) -> None:
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                train_x=arrays.train_x,
                train_y=arrays.train_y,
                test_x=arrays.test_x,
                test_y=arrays.test_y,
                class_names=np.array(json.dumps(arrays.class_names)),
                fingerprint=np.array(source_fingerprint),
            )
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
        tmp = None
    except OSError as exc:  # a full disk, say: training goes on without the cache
        log.warning("could not cache decoded arrays at %s: %s", path, exc)
    finally:
        if tmp is not None:  # never leave a partial file behind (about 180 MB for CIFAR-10)
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def load_cached(dataset_dir: Path, sources: list[Path], build: Callable[[], ImageArrays]) -> ImageArrays:
    """The cached arrays when they match `sources`, else `build()`, cached for next time."""
    source_fingerprint = fingerprint(sources, dataset_dir)
    path = cache_path(dataset_dir)
    cached = _read(path, source_fingerprint) if path.is_file() else None
    if cached is not None:
        return cached
    arrays = build()
    _write(path, arrays, source_fingerprint)
    return arrays
