"""Reading untrusted image files into small, upright RGB pictures.

Everything here is a plain function of bytes or :class:`PIL.Image.Image`; nothing
knows about models or widgets.  The rules, in the order they are applied:

1. refuse files over ``max_bytes`` before reading them;
2. identify the format from the content (never the file name) and only hand it to
   the decoders in :data:`SUPPORTED_FORMATS`; EPS, PDF, SVG and friends are refused
   without ever reaching Ghostscript or any other external program;
3. refuse images over ``max_pixels`` from the header alone, before decoding;
4. decode large JPEGs at a reduced scale (``Image.draft``), since only a small
   picture is ever needed;
5. apply the EXIF orientation and convert every mode to 8-bit RGB correctly.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path
from typing import Final, Union

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "ImageError",
    "ImageSource",
    "SUPPORTED_FORMATS",
    "encode_jpeg",
    "load_image",
    "resize_square",
    "to_rgb",
]

ImageSource = Union[bytes, bytearray, memoryview, str, os.PathLike, Image.Image]
"""Anything :func:`load_image` accepts: encoded bytes, a path, or a PIL image."""

SUPPORTED_FORMATS: Final[tuple[str, ...]] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
"""Pillow decoders that may see visitor data, identified from the content.

Pillow's JPEG decoder also opens MPO files (JPEGs with extra frames, from many cameras)."""

DEFAULT_MAX_BYTES: Final[int] = 20 * 1024 * 1024
"""Largest accepted file: 20 MiB comfortably covers phone photos (3-12 MB)."""

DEFAULT_MAX_PIXELS: Final[int] = 64_000_000
"""Largest accepted picture: 64 megapixels covers every phone and most cameras."""

_LOG = logging.getLogger(__name__)
_DEFAULT_SIZE: Final[int] = 480
_BACKGROUND: Final[tuple[int, int, int]] = (255, 255, 255)
_FORMAT_NAMES: Final[str] = "JPEG, PNG, GIF, WebP, BMP or TIFF"

# HEIF/HEIC/AVIF files are ISO media files: bytes 4-8 are "ftyp", then a brand.
_HEIF_BRANDS: Final[frozenset[bytes]] = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
)


class ImageError(ValueError):
    """A file that is not a usable image; the message is meant for a person."""


def load_image(
    source: ImageSource,
    *,
    size: int = _DEFAULT_SIZE,
    shrink: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode an untrusted image into an upright RGB picture no larger than ``size``.

    Parameters
    ----------
    source
        Encoded image bytes, a path to an image file, or an already opened
        :class:`PIL.Image.Image` (used as is, limits on bytes do not apply).
    size
        Longest side of the returned picture, in pixels; smaller images are kept
        at their own size.
    shrink
        If false, the picture is not resized to ``size``: JPEGs are still decoded
        at the smallest scale that keeps both sides at least ``size`` (cheap),
        but no further resampling happens, for callers that resize it themselves.
    max_bytes
        Files larger than this are refused before they are read.
    max_pixels
        Images with more pixels than this are refused from their header, before
        any decoding.

    Returns
    -------
    PIL.Image.Image
        A loaded ``RGB`` image, EXIF orientation applied.

    Raises
    ------
    ImageError
        For anything that is not a usable image, with a message a person
        understands.
    """
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size!r}")
    if isinstance(source, Image.Image):
        upright = to_rgb(ImageOps.exif_transpose(source))
        return _downscale(upright, size) if shrink else upright
    data = _read_bytes(source, max_bytes)
    image = _open(data)
    _check_pixels(image, max_pixels)
    # Decode JPEGs at 1/2, 1/4 or 1/8 scale when that still leaves `size` pixels.
    image.draft("RGB", (size, size))
    try:
        image.load()
        upright = to_rgb(ImageOps.exif_transpose(image))
    except Exception as error:  # decoders of damaged files raise many types, not only OSError
        _LOG.info("could not decode an upload: %r", error)
        raise ImageError(
            "This image file is damaged or incomplete (perhaps the upload was cut "
            "short), so it cannot be read."
        ) from error
    return _downscale(upright, size) if shrink else upright


def to_rgb(image: Image.Image, background: tuple[int, int, int] = _BACKGROUND) -> Image.Image:
    """Convert any Pillow mode to 8-bit ``RGB``.

    Transparent pixels are composited over ``background``; 16-bit grayscale
    (also when Pillow holds it in 32-bit mode ``I``) is scaled to 8 bits rather
    than clipped, and float images are stretched to their range; palette, 1-bit,
    CMYK and other colour spaces go through Pillow's own conversions.

    Parameters
    ----------
    image
        Any Pillow image.
    background
        Colour shown through transparent pixels.

    Returns
    -------
    PIL.Image.Image
        The image in mode ``RGB`` (the same object if it already was).
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _wide_gray_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def resize_square(image: Image.Image, side: int) -> Image.Image:
    """Resize the whole of ``image`` to ``side`` x ``side`` pixels.

    Nothing is cropped and the aspect ratio is not kept, exactly as Keras's
    ``load_img(target_size=...)`` prepares ImageNet inputs: cropping to the
    centre loses the subject of many photos (a portrait's hat, a wide scene).
    """
    return image.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)


def encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    """Re-encode ``image`` as a baseline JPEG with no metadata.

    Only re-encoded pictures are ever shown back to a visitor, never uploaded bytes.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _read_bytes(source: bytes | bytearray | memoryview | str | os.PathLike, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if path.stat().st_size > max_bytes:
                raise ImageError(_too_large_message(path.stat().st_size, max_bytes))
            data = path.read_bytes()
        except FileNotFoundError as error:
            raise ImageError(f"There is no file at {str(path)!r}.") from error
        except IsADirectoryError as error:
            raise ImageError(f"{str(path)!r} is a folder, not an image file.") from error
    else:
        raise TypeError(
            "source must be bytes, a path or a PIL.Image.Image, "
            f"got {type(source).__name__}"
        )
    if not data:
        raise ImageError("This file is empty.")
    if len(data) > max_bytes:
        raise ImageError(_too_large_message(len(data), max_bytes))
    return data


def _open(data: bytes) -> Image.Image:
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        raise ImageError(
            "This looks like a HEIC/HEIF or AVIF photo, which this app cannot read yet. "
            "Please convert it to JPEG first (on an iPhone: Settings > Camera > Formats > "
            "Most Compatible; or share it as JPEG)."
        )
    try:
        with warnings.catch_warnings():
            # Our own pixel limit decides (see _check_pixels), not Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageError(
            f"This image has over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, far too many "
            "to be processed safely. Please upload a smaller copy."
        ) from error
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageError(
            f"This file is not an image this app can read. Please upload a {_FORMAT_NAMES} photo."
        ) from error


def _check_pixels(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError("This image has no pixels.")
    if width * height > max_pixels:
        raise ImageError(
            f"This image is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {max_pixels / 1e6:.0f} megapixels. Please upload a smaller copy."
        )


def _downscale(image: Image.Image, size: int) -> Image.Image:
    if max(image.size) > size:
        image = image.copy() if image.readonly else image
        image.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


def _wide_gray_to_rgb(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        # Float images have no fixed range: stretch what is there.
        low, high = float(values.min()), float(values.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        values = (values - low) * scale
    else:
        values = values / 257.0  # 65535 -> 255, the full 16-bit range
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")


def _too_large_message(size: int, max_bytes: int) -> str:
    return (
        f"This file is {_format_bytes(size)}; the limit is {_format_bytes(max_bytes)} per photo. "
        "Please upload a smaller copy."
    )


def _format_bytes(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:.1f} MB".replace(".0 MB", " MB")
    return f"{max(1, round(size / 1024))} kB"
