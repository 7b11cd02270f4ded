"""Decoding uploaded images safely: size and pixel caps before any pixel is decoded."""

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from app.services.errors import RequestRefused, TooLarge, UnsupportedMedia
from models.data.images import image_to_array

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # Pillow decodes many more (TGA, PCX, EPS, ...): not here


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def decode_upload(upload: Upload, max_bytes: int, max_pixels: int) -> np.ndarray:
    """One upload -> (3, 32, 32) uint8, exactly as training images are made. Raises TooLarge or UnsupportedMedia."""
    if len(upload.data) > max_bytes:
        raise TooLarge(f"file {upload.filename!r} is {len(upload.data):,} bytes, over the limit of {max_bytes:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(upload.data), formats=ACCEPTED_FORMATS) as image:
                width, height = image.size  # read from the header; nothing decoded yet
                if width * height > max_pixels:
                    raise TooLarge(
                        f"file {upload.filename!r} is {width}x{height} pixels, over the limit of {max_pixels:,} pixels",
                    )
                return image_to_array(image)
    except RequestRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(f"file {upload.filename!r} is too large to decode: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedMedia(
            f"file {upload.filename!r} is not an image in an accepted format (PNG, JPEG, BMP, GIF, WebP): "
            f"{type(exc).__name__}"
        ) from exc
