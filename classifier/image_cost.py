"""What decoding an untrusted image will cost, known before any pixel is decoded.

A small file can still take gigabytes or minutes to decode: a 38-byte lossless
WebP says it has 8000 x 8000 pixels, a progressive JPEG can repeat its scans
thousands of times, a PNG can hold a million empty chunks, a TIFF a million
strips.  Two checks stop them, both before Pillow decodes a pixel:

* :func:`check_structure` walks the file's own structure (JPEG markers, PNG
  chunks, GIF blocks, the first TIFF directory) with a bounded number of steps,
  before Pillow parses anything, and refuses files whose structure would make
  the decoder loop far longer than any real photo needs;
* :func:`decoding_memory` estimates, from the header Pillow has read, the
  memory that decoding and shrinking the picture will take: pixels (after
  JPEG's reduced-size decoding) times the bytes Pillow stores per pixel, plus
  what the decoder itself holds (JPEG coefficients of multi-scan files, the
  two canvases of libwebp's decoder, a TIFF strip).

Both raise :class:`~classifier.images.ImageError` with a message for a person.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from typing import Final

from PIL import Image

__all__ = [
    "MAX_JPEG_BLOCK_SCANS",
    "MAX_JPEG_SCANS",
    "MAX_PNG_CHUNKS",
    "MAX_RLE_PIXELS",
    "MAX_SEGMENTS",
    "MAX_STRIPS",
    "check_decoding_time",
    "check_structure",
    "decoding_memory",
    "jpeg_draft_scale",
]

MAX_SEGMENTS: Final[int] = 3000
"""JPEG marker segments, GIF blocks or TIFF directory entries; real photos have a few dozen."""
MAX_PNG_CHUNKS: Final[int] = 20_000
"""PNG chunks: a 20 MB PNG written in libpng's 8 kB chunks has 2600; Pillow handles each in Python."""
MAX_JPEG_SCANS: Final[int] = 1000
"""Scans in one JPEG; progressive photos have about ten."""
MAX_JPEG_BLOCK_SCANS: Final[int] = 150_000_000
"""Scans times 8x8 blocks: every scan of a multi-scan JPEG revisits every block it
covers (about 7 ns each), so this bounds the decoding time to about a second.
A 50-megapixel progressive photo with ten scans needs 12 million."""
MAX_STRIPS: Final[int] = 20_000
"""Strips or tiles of one TIFF image: Pillow handles each uncompressed one in Python."""
MAX_RLE_PIXELS: Final[int] = 4_000_000
"""Pixels of a run-length encoded BMP: Pillow decodes those in Python, about 6 million a second."""

_JPEG_BLOCK: Final[int] = 8
_DRAFT_SCALES: Final[tuple[int, ...]] = (8, 4, 2, 1)
_COEFFICIENT_BYTES: Final[int] = 64 * 2  # one 8x8 block of 16-bit DCT coefficients
_WEBP_DECODER_CANVASES: Final[int] = 3  # measured: libwebp's animation decoder and Pillow's copy
_RGBA_BYTES: Final[int] = 4

# Bytes Pillow stores per pixel (every mode with more than one band uses four).
_PIXEL_BYTES: Final[dict[str, int]] = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Copies made while shrinking a mode that cannot be reduced as it is (see images._shrink):
# palettes and 1-bit to RGB(A) or L, 16-bit to 32-bit, alpha premultiplied.
_SHRINK_COPY_BYTES: Final[dict[str, int]] = {
    "1": 1, "P": 4, "PA": 8, "I;16": 4, "I;16L": 4, "I;16B": 4, "I;16N": 4, "LA": 4, "RGBA": 4,
}

# JPEG markers without a length field, and the start-of-frame markers Pillow decodes.
_STANDALONE_MARKERS: Final[frozenset[int]] = frozenset({0x01, *range(0xD0, 0xD8)})
_START_OF_FRAME: Final[frozenset[int]] = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SEQUENTIAL_FRAMES: Final[frozenset[int]] = frozenset({0xC0, 0xC1, 0xC3, 0xC9, 0xCB})
_START_OF_SCAN: Final[int] = 0xDA
_END_OF_IMAGE: Final[int] = 0xD9
# The next marker after entropy-coded data: 0xFF not followed by a stuffed zero, a
# restart marker or another fill byte.
_NEXT_MARKER: Final[re.Pattern[bytes]] = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_FILL_BYTES: Final[re.Pattern[bytes]] = re.compile(rb"\xff+")

_TIFF_STRIP_TAGS: Final[frozenset[int]] = frozenset({273, 279, 324, 325})  # offsets and byte counts
_TIFF_COMPRESSIONS: Final[frozenset[int]] = frozenset({1, 2, 3, 4, 5, 8, 32773, 32946})
"""None, CCITT fax (2-4), LZW, Deflate and PackBits: what scanners and editors write.
JPEG-in-TIFF and the rarer codecs are refused rather than handed to more decoders."""
_TIFF_COMPRESSION_TAG: Final[int] = 259


def check_structure(data: bytes) -> None:
    """Refuse a file whose structure would make decoding loop far too long.

    Reads only the file's framing (markers, chunk and block headers, directory
    entries), never pixel data, and stops as soon as a limit is passed, so it
    costs at most a few thousand steps whatever the file holds.

    Raises
    ------
    ImageError
        For a structure no real photo has, in words a person understands.
    """
    if data.startswith(b"\xff\xd8"):
        _check_jpeg(data)
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        _check_count(_png_chunks(data), MAX_PNG_CHUNKS, "PNG", "chunks")
    elif data.startswith((b"GIF87a", b"GIF89a")):
        _check_count(_gif_blocks(data), MAX_SEGMENTS, "GIF", "blocks")
    elif data.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        _check_tiff(data)


def decoding_memory(image: Image.Image, data: bytes, size: int) -> int:
    """Bytes that decoding ``image`` and shrinking it to about ``size`` will take at peak.

    Parameters
    ----------
    image
        An image whose header Pillow has read and whose pixels are not decoded.
    data
        The file ``image`` was opened from, already accepted by :func:`check_structure`.
    size
        The side the picture is wanted at; JPEGs are decoded at 1/2 to 1/8 scale
        when both sides stay at least this large.

    Returns
    -------
    int
        Pixels as decoded times the bytes Pillow stores per pixel, plus the
        copies shrinking needs and what the decoder itself holds.
    """
    width, height = image.size
    mode = image.mode
    if image.format in ("JPEG", "MPO"):
        scale = jpeg_draft_scale(image.size, size)
        width, height = -(-width // scale), -(-height // scale)
        mode = "L" if mode == "L" else "RGB"
    pixels = width * height
    per_pixel = _PIXEL_BYTES.get(mode, 4) + _SHRINK_COPY_BYTES.get(mode, 0)
    return pixels * per_pixel + _decoder_memory(image, data)


def jpeg_draft_scale(original: tuple[int, int], size: int) -> int:
    """The reduction (1, 2, 4 or 8) libjpeg decodes at when both sides must stay ``size`` or more."""
    return next(scale for scale in _DRAFT_SCALES if scale == 1 or min(original) // scale >= size)


def _decoder_memory(image: Image.Image, data: bytes) -> int:
    width, height = image.size
    if image.format == "WEBP":
        return _WEBP_DECODER_CANVASES * _RGBA_BYTES * width * height
    if image.format in ("JPEG", "MPO"):
        return _jpeg_multi_scan_coefficients(data)
    if image.format == "TIFF":
        # libtiff decodes one strip or tile at a time into a buffer of its own.
        tags = image.tag_v2
        tile = (tags.get(322), tags.get(323))
        rows = tags.get(278, height) if tile == (None, None) else tile[1]
        columns = width if tile == (None, None) else tile[0]
        return int(min(rows, height)) * int(columns) * _RGBA_BYTES * _samples_factor(image)
    return 0


def _samples_factor(image: Image.Image) -> int:
    """How many 4-byte pixels one TIFF sample row needs (8-byte samples need two)."""
    bits = image.tag_v2.get(258, (8,))
    widest = max(bits) if isinstance(bits, tuple) else int(bits)
    return max(1, math.ceil(widest / 32))


# --- JPEG ------------------------------------------------------------------------------------


def _jpeg_multi_scan_coefficients(data: bytes) -> int:
    """Bytes of the DCT coefficients libjpeg keeps for a progressive or multi-scan JPEG, else 0.

    Such files are decoded scan by scan into a buffer of every block's
    coefficients, whatever scale the picture is drafted to.
    """
    frame, scans = _jpeg_frame_and_scans(data)
    if frame is None:
        return 0
    marker, components = frame
    if marker in _SEQUENTIAL_FRAMES and len(scans) <= 1:
        return 0
    return sum(components.values()) * _COEFFICIENT_BYTES


def _check_jpeg(data: bytes) -> None:
    frame, scans = _jpeg_frame_and_scans(data)
    if len(scans) > MAX_JPEG_SCANS:
        raise _unusual("JPEG", f"{len(scans)} or more scans")
    if frame is not None:
        _marker, blocks = frame
        work = sum(blocks.get(component, 0) for scan in scans for component in scan)
        if work > MAX_JPEG_BLOCK_SCANS:
            raise _unusual("JPEG", f"{len(scans)} scans over {sum(blocks.values()):,} blocks")


def _jpeg_frame_and_scans(
    data: bytes,
) -> tuple[tuple[int, dict[int, int]] | None, list[tuple[int, ...]]]:
    """The start-of-frame marker with the 8x8 blocks of each component, and each scan's components."""
    frame: tuple[int, dict[int, int]] | None = None
    scans: list[tuple[int, ...]] = []
    segments = 0
    for marker, body in _jpeg_segments(data):
        segments += 1
        if segments > MAX_SEGMENTS:
            raise _unusual("JPEG", f"over {MAX_SEGMENTS} marker segments")
        if marker in _START_OF_FRAME and frame is None:
            frame = (marker, _jpeg_component_blocks(body))
        elif marker == _START_OF_SCAN:
            count = body[0] if body else 0
            scans.append(tuple(body[1 + 2 * i] for i in range(count) if 1 + 2 * i < len(body)))
            if len(scans) > MAX_JPEG_SCANS:
                break
    return frame, scans


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Each marker segment of the first image (up to its end marker), entropy-coded data skipped."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:
            fill = _FILL_BYTES.match(data, position)
            position = fill.end() - 1 if fill else position + 1
            continue
        if marker in _STANDALONE_MARKERS:
            position += 2
            continue
        if marker == _END_OF_IMAGE:
            return
        length = int.from_bytes(data[position + 2:position + 4], "big")
        body_end = position + 2 + length
        yield marker, data[position + 4:body_end]
        if marker == _START_OF_SCAN:
            following = _NEXT_MARKER.search(data, body_end)
            if following is None:
                return
            position = following.start()
        else:
            position = body_end


def _jpeg_component_blocks(frame: bytes) -> dict[int, int]:
    """Blocks of each component, by component id, as libjpeg allocates them (padded to whole MCUs)."""
    if len(frame) < 6:
        return {}
    height, width, count = struct.unpack(">HHB", frame[1:6])
    components = [frame[6 + 3 * i: 9 + 3 * i] for i in range(count) if 9 + 3 * i <= len(frame)]
    if not components:
        return {}
    h_max = max(c[1] >> 4 for c in components) or 1
    v_max = max(c[1] & 0x0F for c in components) or 1
    mcu_columns = -(-width // (_JPEG_BLOCK * h_max))
    mcu_rows = -(-height // (_JPEG_BLOCK * v_max))
    return {c[0]: mcu_columns * (c[1] >> 4) * mcu_rows * (c[1] & 0x0F) for c in components}


# --- PNG, GIF ---------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> Iterator[bytes]:
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        yield kind
        if kind == b"IEND":
            return
        position += 12 + length


def _gif_blocks(data: bytes) -> Iterator[bytes]:
    """Extension blocks and their sub-blocks, up to the first image (the one decoded)."""
    position = 13
    flags = data[10] if len(data) > 10 else 0
    if flags & 0x80:
        position += 3 * (2 << (flags & 0x07))
    while position < len(data):
        introducer = data[position]
        if introducer != 0x21:  # an image descriptor, the trailer or damage: Pillow decides
            return
        position += 2
        while position < len(data) and data[position]:
            yield b"sub-block"
            position += 1 + data[position]
        position += 1
        yield b"extension"


def _check_count(parts: Iterator[bytes], limit: int, format_name: str, kind: str) -> None:
    for count, _part in enumerate(parts, start=1):
        if count > limit:
            raise _unusual(format_name, f"over {limit} {kind}")


# --- TIFF -------------------------------------------------------------------------------------


def _check_tiff(data: bytes) -> None:
    order = "<" if data.startswith(b"II") else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    if big:
        (offset,) = struct.unpack(order + "Q", data[8:16]) if len(data) >= 16 else (0,)
        count_format, entry_format, entry_size = "Q", "HHQ", 20
    else:
        (offset,) = struct.unpack(order + "I", data[4:8])
        count_format, entry_format, entry_size = "H", "HHI", 12
    count_size = struct.calcsize(count_format)
    if offset + count_size > len(data):
        return  # damaged: Pillow will say so
    (entries,) = struct.unpack_from(order + count_format, data, offset)
    if entries > MAX_SEGMENTS:
        raise _unusual("TIFF", f"{entries} directory entries")
    for index in range(entries):
        start = offset + count_size + index * entry_size
        if start + entry_size > len(data):
            return
        tag, _type, values = struct.unpack_from(order + entry_format, data, start)
        if tag in _TIFF_STRIP_TAGS and values > MAX_STRIPS:
            raise _unusual("TIFF", f"{values} strips or tiles")
        if tag == _TIFF_COMPRESSION_TAG:
            (compression,) = struct.unpack_from(order + "H", data, start + 4 + struct.calcsize(entry_format[2]))
            if compression not in _TIFF_COMPRESSIONS:
                raise _image_error(
                    f"This TIFF file uses a kind of compression (number {compression}) that this app "
                    "does not read. Please save it as JPEG or PNG and upload that."
                )


def check_decoding_time(image: Image.Image) -> None:
    """Refuse a header whose decoder would run far too long: a large run-length encoded BMP.

    Pillow decodes those in Python, one pixel at a time in the worst case.
    """
    if any(tile.codec_name == "bmp_rle" for tile in image.tile):
        width, height = image.size
        if width * height > MAX_RLE_PIXELS:
            raise _image_error(
                f"This is a compressed (RLE) BMP of {width} x {height} pixels, which would take too "
                f"long to read; the limit for such files is {MAX_RLE_PIXELS // 1_000_000} megapixels. "
                "Please save it as PNG or JPEG and upload that."
            )


# --- messages -----------------------------------------------------------------------------------


def _unusual(format_name: str, what: str) -> Exception:
    return _image_error(
        f"This {format_name} file is built in a way no ordinary photo is ({what}), and reading it "
        f"would take far too long. Please open it in any image editor, save it again as an "
        "ordinary JPEG or PNG, and upload that."
    )


def _image_error(message: str) -> Exception:
    from classifier.images import ImageError  # images imports this module

    return ImageError(message)
