"""Reading untrusted image files into small, upright RGB pictures.

Everything here is a plain function of bytes or :class:`PIL.Image.Image`; nothing
knows about models or widgets.  The rules, in the order they are applied:

1. refuse files over ``max_bytes`` before reading them, and read paths only if
   they are regular files;
2. identify the format from the content (never the file name) and only hand it to
   the decoders in :data:`SUPPORTED_FORMATS`; EPS, PDF, SVG and friends are refused
   without ever reaching Ghostscript or any other external program;
3. refuse files whose structure or header promises too much work before decoding
   (see :mod:`classifier.image_cost`): over ``max_pixels``, over ``max_memory``
   to decode, or built to make the decoder loop;
4. decode large JPEGs at a reduced scale (``Image.draft``), and reduce other
   formats by the same factors right after decoding, in their own mode, since
   only a small picture is ever needed; decodes running at once in one process
   share a memory budget, so a batch cannot stack them up;
5. apply the EXIF orientation and convert every mode to 8-bit RGB correctly.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Union

from PIL import ExifTags, Image, JpegImagePlugin

from classifier.image_cost import check_decoding_time, check_structure, decoding_memory, jpeg_draft_scale

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MAX_PIXELS",
    "ImageError",
    "ImageSource",
    "SUPPORTED_FORMATS",
    "check_size",
    "downscale",
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

DEFAULT_MAX_PIXELS: Final[int] = 256_000_000
"""Largest accepted picture, from its header: a 200-megapixel phone photo still fits
(JPEGs are decoded at 1/8 scale); other formats meet :data:`DEFAULT_MAX_MEMORY` first."""

DEFAULT_MAX_MEMORY: Final[int] = 256 * 1024 * 1024
"""Most memory decoding one file may take: a 64-megapixel RGB PNG, a 32-megapixel PNG
with transparency, a 21-megapixel lossless WebP.  It is also what all the decodes
running at once in one process may take together."""

_LOG = logging.getLogger(__name__)
_DEFAULT_SIZE: Final[int] = 480
_BACKGROUND: Final[tuple[int, int, int]] = (255, 255, 255)
_FORMAT_NAMES: Final[str] = "JPEG, PNG, GIF, WebP, BMP or TIFF"
_MAX_PATH_CHARS: Final[int] = 4096

# HEIF/HEIC/AVIF files are ISO media files: bytes 4-8 are "ftyp", then a brand.
_HEIF_BRANDS: Final[frozenset[bytes]] = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
)

# Modes Image.reduce cannot take as they are, and what to convert them to first.
_REDUCIBLE_AS: Final[dict[str, str]] = {"1": "L", "P": "RGB", "PA": "RGBA", "La": "LA"}
_SIXTEEN_BIT_MODES: Final[frozenset[str]] = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ORIENTATIONS: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation values and the transposition that stands the picture upright."""


class ImageError(ValueError):
    """A file that is not a usable image; the message is meant for a person."""


class _MemoryBudget:
    """Bytes that decodes running at once may take together; a decode waits for its share."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = capacity
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, amount: int) -> Iterator[None]:
        amount = min(amount, self.capacity)
        with self._changed:
            self._changed.wait_for(lambda: self._free >= amount)
            self._free -= amount
        try:
            yield
        finally:
            with self._changed:
                self._free += amount
                self._changed.notify_all()


_DECODING = _MemoryBudget(DEFAULT_MAX_MEMORY)


@contextmanager
def _quietly() -> Iterator[None]:
    """Silence Pillow's warnings about what this module checks or tolerates itself.

    ``warnings.catch_warnings`` swaps process-wide state, so the decoding threads
    take turns; only header parsing and EXIF reading run inside, never decoding.
    """
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


_QUIET_LOCK = threading.Lock()


def load_image(
    source: ImageSource,
    *,
    size: int = _DEFAULT_SIZE,
    shrink: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> Image.Image:
    """Decode an untrusted image into an upright RGB picture no larger than ``size``.

    Parameters
    ----------
    source
        Encoded image bytes, a path to an image file, or an already opened
        :class:`PIL.Image.Image` (used as is: the limits apply to files only).
    size
        Longest side of the returned picture, in pixels; smaller images are kept
        at their own size.
    shrink
        If false, the picture is not resized to ``size``, only reduced by 2, 4 or
        8 while both sides stay at least ``size`` (JPEGs while decoding, other
        formats right after), for callers that resize it themselves.
    max_bytes
        Files larger than this are refused before they are read.
    max_pixels
        Images with more pixels than this are refused from their header.
    max_memory
        Images whose decoding would take more memory than this are refused
        from their header (see :func:`classifier.image_cost.decoding_memory`).

    Returns
    -------
    PIL.Image.Image
        A loaded ``RGB`` image, EXIF orientation applied.

    Raises
    ------
    ImageError
        For anything that is not a usable image, or would cost too much to
        decode, with a message a person understands.
    """
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size!r}")
    if isinstance(source, Image.Image):
        return _from_pil(source, size, shrink)
    data = _read_bytes(source, max_bytes)
    check_structure(data)
    image = _open(data)
    _check_pixels(image, max_pixels)
    check_decoding_time(image)
    memory = decoding_memory(image, data, size)
    if memory > max_memory:
        raise ImageError(_too_costly_message(image, memory, max_memory))
    with _DECODING.reserve(memory):
        upright = _decode(image, size)
    return downscale(upright, size) if shrink else upright


def check_size(size: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Refuse a file of ``size`` bytes if it is over ``max_bytes``, with the same words as :func:`load_image`.

    Raises
    ------
    ImageError
        If ``size`` is over ``max_bytes``.
    """
    if size > max_bytes:
        raise ImageError(_too_large_message(size, max_bytes))


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
    if image.mode in (*_SIXTEEN_BIT_MODES, "I", "F"):
        return _wide_gray_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode == "La":
        image = image.convert("LA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def downscale(image: Image.Image, size: int) -> Image.Image:
    """Shrink ``image`` so its longest side is at most ``size``, keeping its aspect ratio.

    Smaller images are returned as they are (the same object).
    """
    if max(image.size) > size:
        image = image.copy() if image.readonly else image
        image.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


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


def _from_pil(image: Image.Image, size: int, shrink: bool) -> Image.Image:
    try:
        image.load()
        upright = _orient(to_rgb(image), _orientation(image))
    except Exception as error:  # closed, truncated behind a lazy open, modes Pillow cannot convert
        raise _damaged(error) from error
    return downscale(upright, size) if shrink else upright


def _decode(image: Image.Image, size: int) -> Image.Image:
    """Decode ``image``, reduced while both sides stay at least ``size``, upright and in RGB."""
    # Decode JPEGs at 1/2, 1/4 or 1/8 scale when that still leaves `size` pixels.
    image.draft("RGB", (size, size))
    try:
        image.load()
        orientation = _orientation(image)
        # JPEGs are already drafted; other formats are reduced by the factors draft uses.
        factor = 1 if image.format in ("JPEG", "MPO") else jpeg_draft_scale(image.size, size)
        reduced = _reduce(image, factor)
        if reduced is not image:
            image.close()  # the full-size pixels, before the conversion takes more memory
        return _orient(to_rgb(reduced), orientation)
    except Exception as error:  # decoders of damaged files raise many types, not only OSError
        raise _damaged(error) from error


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """Reduce by ``factor`` in the decoded mode (after the smallest conversion it needs)."""
    if factor == 1:
        return image
    mode = _REDUCIBLE_AS.get(image.mode, "I" if image.mode in _SIXTEEN_BIT_MODES else image.mode)
    if image.mode == "P" and "transparency" in image.info:
        mode = "RGBA"
    converted = image if mode == image.mode else image.convert(mode)
    return converted.reduce(factor)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 to 8), or 1 when it is missing or unreadable."""
    try:
        with _quietly():
            value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # damaged EXIF must not cost the picture, which decodes fine
        return 1
    return value if value in _ORIENTATIONS else 1


def _orient(image: Image.Image, orientation: int) -> Image.Image:
    upright = image.transpose(_ORIENTATIONS[orientation]) if orientation in _ORIENTATIONS else image.copy()
    # The file's metadata (EXIF and XMP orientation above all) would turn it again if it were read again.
    upright.info = {}
    return upright


def _read_bytes(source: bytes | bytearray | memoryview | str | os.PathLike, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        data = _read_file(source, max_bytes)
    else:
        raise TypeError(
            "source must be bytes, a path or a PIL.Image.Image, "
            f"got {type(source).__name__}"
        )
    if not data:
        raise ImageError("This file is empty.")
    check_size(len(data), max_bytes)
    return data


def _read_file(source: str | os.PathLike, max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes``; devices, pipes and folders are refused unread."""
    name = os.fsdecode(source)
    shown = repr(name if len(name) <= 80 else name[:79] + "…")
    if "\0" in name or len(name) > _MAX_PATH_CHARS:
        raise ImageError(f"{shown} is not a usable file name.")
    try:
        # Opening without blocking and checking the opened file itself: a pipe would
        # block forever, and a path checked before opening could be swapped in between.
        descriptor = os.open(name, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as error:
        raise ImageError(f"There is no file at {shown}.") from error
    except IsADirectoryError as error:
        raise ImageError(f"{shown} is a folder, not an image file.") from error
    except OSError as error:
        raise ImageError(f"The file {shown} cannot be opened ({error.strerror}).") from error
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise ImageError(f"{shown} is a folder, not an image file.")
        raise ImageError(f"{shown} is not a regular file (a device or a pipe, perhaps).")
    with os.fdopen(descriptor, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        check_size(os.stat(name).st_size, max_bytes)
    return data


def _open(data: bytes) -> Image.Image:
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        raise ImageError(
            "This looks like a HEIC/HEIF or AVIF photo, which this app cannot read yet. "
            "Please convert it to JPEG first (on an iPhone: Settings > Camera > Formats > "
            "Most Compatible; or share it as JPEG)."
        )
    try:
        with _quietly():  # our own limits decide (see _check_pixels and image_cost)
            if data.startswith(b"\xff\xd8\xff"):
                # Image.open refuses JPEGs over 179 megapixels, but a 200-megapixel phone
                # photo decodes at 1/8 scale into a few megabytes: image_cost's limits,
                # which know about that scale, decide for JPEG instead.
                return JpegImagePlugin.jpeg_factory(io.BytesIO(data))
            return Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageError(
            f"This image has over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, far too many "
            "to be processed safely. Please upload a smaller copy."
        ) from error
    except Exception as error:  # plugins raise many types for malformed headers
        _LOG.info("could not identify an upload: %r", error)
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


def _wide_gray_to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "F":
        # Float images have no fixed range: stretch what is there.
        low, high = image.getextrema()
        scale = 255.0 / (high - low) if high > low else 0.0
        gray = image.point(lambda value: (value - low) * scale + 0.5).convert("L")
    else:
        wide = image if image.mode == "I" else image.convert("I")
        gray = wide.point(lambda value: value / 257 + 0.5).convert("L")  # 65535 -> 255, rounded
    return gray.convert("RGB")


def _damaged(error: Exception) -> ImageError:
    _LOG.info("could not decode an upload: %r", error)
    return ImageError(
        "This image file is damaged or incomplete (perhaps the upload was cut "
        "short), so it cannot be read."
    )


def _too_costly_message(image: Image.Image, memory: int, max_memory: int) -> str:
    width, height = image.size
    return (
        f"This image is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels) and "
        f"decoding it would take about {round(memory / 2**20)} MB of memory; the limit is "
        f"{_format_bytes(max_memory)}. Please upload a smaller copy."
    )


def _too_large_message(size: int, max_bytes: int) -> str:
    return (
        f"This file is {_format_bytes(size)}; the limit is {_format_bytes(max_bytes)} per photo. "
        "Please upload a smaller copy."
    )


def _format_bytes(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:.1f} MB".replace(".0 MB", " MB")
    return f"{max(1, round(size / 1024))} kB"
