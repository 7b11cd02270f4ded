"""Turning one decoded image into the 3x32x32 uint8 array every model trains on.

Training data and uploaded images go through the same function, so prediction sees exactly
what training saw.
"""

import numpy as np
from PIL import Image

IMAGE_SIZE = 32


def image_to_array(image: Image.Image) -> np.ndarray:
    """Any mode, any size -> (3, 32, 32) uint8, RGB, resized with bilinear filtering."""
    rgb = image.convert("RGB")
    if rgb.size != (IMAGE_SIZE, IMAGE_SIZE):
        rgb = rgb.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)


def load_image_file(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return image_to_array(image)
