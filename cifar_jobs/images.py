"""Images as `/predict` takes them: files, each with a name its answer is matched by."""

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ImageInput = str | Path | bytes | Image.Image | np.ndarray


def upload_files(images: ImageInput | Iterable[ImageInput]) -> list[tuple[str, tuple[str, bytes]]]:
    """Multipart `files` for `/predict`: a path is sent as its bytes under its name; bytes as they are; a PIL image
    or a uint8 array (height, width, 3), or a batch of them (n, height, width, 3), as PNG."""
    if isinstance(images, str | Path | bytes | Image.Image) or (isinstance(images, np.ndarray) and images.ndim == 3):
        images = [images]
    files: list[tuple[str, tuple[str, bytes]]] = []
    for image in images:
        if isinstance(image, np.ndarray) and image.ndim == 4:
            files.extend(("files", (f"image-{len(files)}.png", _png(one))) for one in image)
        else:
            files.append(("files", _file(image, len(files))))
    return files


def _file(image: Any, index: int) -> tuple[str, bytes]:
    if isinstance(image, str | Path):
        path = Path(image)
        return path.name, path.read_bytes()
    if isinstance(image, bytes):
        return f"image-{index}", image
    if isinstance(image, Image.Image | np.ndarray):
        return f"image-{index}.png", _png(image)
    raise TypeError(f"image {index}: a path, bytes, a PIL image or a uint8 array, not {type(image).__name__}")


def _png(image: Image.Image | np.ndarray) -> bytes:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3, 4):
            raise ValueError(f"an image array is uint8 (height, width, 3), not {image.dtype} {image.shape}")
        image = Image.fromarray(image if image.shape[2] != 1 else image[:, :, 0])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
