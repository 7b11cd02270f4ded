"""Decoding uploaded images safely: size and pixel caps before any pixel is decoded, a pixel budget
per request, and JPEGs decoded at a reduced scale (the models see 32x32)."""

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from app.http.refusals import RequestRefused, TooLarge, UnsupportedMedia
from models.data.images import image_to_array

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # Pillow decodes many more (TGA, PCX, EPS, ...): not here


DRAFT_EDGE = 64  # JPEG decodes at 1/2 to 1/8 scale while both sides stay at least this long


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    refused: RequestRefused | None = None  # why it cannot be decoded, known before decoding (bad base64)


class PixelBudget:
    """The pixels one request may still decode (MAX_REQUEST_PIXELS)."""

    def __init__(self, pixels: int) -> None:
        self.total = self.left = pixels

    def take(self, filename: str, pixels: int) -> None:
        if pixels > self.left:
            raise TooLarge(
                f"files: {filename!r} would take the request over its budget of {self.total:,} decoded pixels; "
                "send fewer or smaller images per request"
            )
        self.left -= pixels


def decode_upload(upload: Upload, max_bytes: int, max_pixels: int, budget: PixelBudget | None = None) -> np.ndarray:
    """One upload -> (3, 32, 32) uint8, as training images are made. Raises TooLarge or UnsupportedMedia
    (or the upload's own refusal)."""
    if upload.refused is not None:
        raise upload.refused
    if len(upload.data) > max_bytes:
        raise TooLarge(f"file {upload.filename!r} is {len(upload.data):,} bytes, over the limit of {max_bytes:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(upload.data), formats=ACCEPTED_FORMATS) as image:
                image.draft("RGB", (DRAFT_EDGE, DRAFT_EDGE))  # JPEG only: a smaller decode, header read only
                width, height = image.size  # what will be decoded; nothing decoded yet
                if width * height > max_pixels:
                    side = math.isqrt(max_pixels)
                    or_jpeg = ", or send it as JPEG (decoded at up to 1/8 scale)" if image.format != "JPEG" else ""
                    raise TooLarge(
                        f"file {upload.filename!r} is {width}x{height} pixels as decoded, over the limit of "
                        f"{max_pixels:,}: resize it to at most {side}x{side} (the models see 32x32; e.g. "
                        f"`convert in.png -resize 512x512 out.png`){or_jpeg}"
                    )
                if budget is not None:
                    budget.take(upload.filename, width * height)
                factor = min(width, height) // DRAFT_EDGE
                if factor >= 2:  # box-average down first: cheap, and the bilinear resize then sees no aliasing
                    return image_to_array(image.convert("RGB").reduce(factor))
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
