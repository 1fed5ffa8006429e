"""Hostile image files, built in memory byte by byte: no large file is ever committed.

Each builder returns the bytes an attacker would upload.  Most are tiny but
promise huge pictures or endless decoder loops; their headers are what
:mod:`classifier.image_cost` reads before any pixel is decoded.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Iterator

from PIL import Image

__all__ = [
    "bmp_rle8_long_line",
    "gif_with_extensions",
    "jpeg_flat_baseline",
    "jpeg_with_comments",
    "jpeg_with_repeated_scans",
    "png",
    "png_chunk",
    "png_header_only",
    "tiff",
    "webp_lossless",
]

_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data and CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` RGB pixels, with no pixel data at all."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")


def png(
    width: int, height: int, *, bit_depth: int = 8, color_type: int = 2, chunks_before_pixels: bytes = b""
) -> bytes:
    """A complete, valid PNG of black pixels, compressed row by row without holding the picture.

    ``color_type`` is PNG's: 0 gray, 2 RGB, 4 gray with alpha, 6 RGBA.
    """
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row = b"\x00" + bytes(width * channels * bit_depth // 8)  # filter byte, then the samples
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + chunks_before_pixels
        + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    )


def webp_lossless(width: int, height: int) -> bytes:
    """A lossless WebP of one flat colour, about 40 bytes whatever ``width`` x ``height`` it claims.

    A flat picture needs no bits per pixel, so a tiny one's bitstream serves any size.
    """
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buffer, "WEBP", lossless=True)
    data = bytearray(buffer.getvalue())
    header = data.index(b"VP8L") + 8 + 1  # chunk header, then the 0x2f signature
    bits = int.from_bytes(data[header:header + 4], "little")
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    data[header:header + 4] = bits.to_bytes(4, "little")
    return bytes(data)


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each segment of a well-formed JPEG, entropy data included in its scan."""
    position = 2
    while position < len(data):
        marker = data[position + 1]
        if marker == 0xD9:
            yield marker, position, position + 2
            return
        end = position + 2 + struct.unpack(">H", data[position + 2:position + 4])[0]
        if marker == 0xDA:
            end = _JPEG_NEXT_MARKER.search(data, end).start()
        yield marker, position, end
        position = end


def jpeg_with_repeated_scans(width: int, height: int, scans: int) -> bytes:
    """A flat grey progressive JPEG whose first AC scan is repeated ``scans`` times.

    libjpeg only warns about the repeats, and decodes each one over every block.
    """
    buffer = io.BytesIO()
    Image.new("L", (width, height), 128).save(buffer, "JPEG", progressive=True, quality=50)
    data = buffer.getvalue()
    segments = list(_jpeg_segments(data))
    # The first scan whose spectral selection starts above 0 (after the component list).
    start, end = next(
        (start, end) for marker, start, end in segments
        if marker == 0xDA and data[start + 5 + 2 * data[start + 4]] > 0
    )
    end_of_image = segments[-1][1]
    return data[:end_of_image] + data[start:end] * scans + data[end_of_image:]


def jpeg_with_comments(count: int) -> bytes:
    """A small JPEG preceded by ``count`` empty comment segments (4 bytes each)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 0, 0)).save(buffer, "JPEG")
    data = buffer.getvalue()
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def jpeg_flat_baseline(width: int, height: int) -> bytes:
    """A baseline grayscale JPEG of any size, every 8x8 block flat grey: 6 bits a block.

    200 megapixels take 2.4 MB, as a real phone photo's header would claim.
    """
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, "JPEG", quality=50, optimize=False)
    data = buffer.getvalue()
    blocks = -(-width // 8) * -(-height // 8)
    out = bytearray(data[:2])
    for marker, start, end in _jpeg_segments(data):
        segment = data[start:end]
        if marker == 0xC0:  # frame header: patch height and width
            segment = segment[:5] + struct.pack(">HH", height, width) + segment[9:]
        elif marker == 0xDA:  # scan: its header, then "00" (DC difference 0) "1010" (end of block) per block
            segment = segment[:2 + struct.unpack(">H", segment[2:4])[0]]
            whole, rest = divmod(blocks, 4)
            segment += bytes.fromhex("28a28a") * whole + (b"", b"\x2b", b"\x28\xaf", b"\x28\xa2\xbf")[rest]
        out += segment
    return bytes(out)


def bmp_rle8_long_line(width: int) -> bytes:
    """A 1 kB run-length encoded BMP, ``width`` x 1: one pixel, then end-of-line.

    Pillow pads the rest of the line one byte at a time, in Python.
    """
    palette = bytes(4 * 256)
    pixels = b"\x01\x00" + b"\x00\x00" + b"\x00\x01"  # one pixel, end of line, end of bitmap
    info = struct.pack("<IiiHHIIiiII", 40, width, 1, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def gif_with_extensions(count: int) -> bytes:
    """An 8x8 GIF whose image is preceded by ``count`` one-letter comment extensions."""
    buffer = io.BytesIO()
    Image.new("P", (8, 8)).save(buffer, "GIF")
    data = buffer.getvalue()
    image = data.index(b",")  # the image descriptor
    return data[:image] + b"\x21\xfe\x01x\x00" * count + data[image:]


def tiff(
    width: int, height: int, *, strips: int = 1, bits: int = 8, sample_format: int = 1, compression: int = 8
) -> bytes:
    """A little-endian one-channel TIFF of zeros; every strip offset points at the same strip.

    ``compression`` 8 is Deflate, 1 none; ``sample_format`` 1 unsigned, 2 signed, 3 float.
    """
    rows_per_strip = -(-height // strips)
    row = bytes(width * bits // 8)
    if compression == 8:
        compressor = zlib.compressobj(9)
        strip = b"".join(compressor.compress(row) for _ in range(rows_per_strip)) + compressor.flush()
    else:
        strip = row * rows_per_strip
    count = -(-height // rows_per_strip)
    strip_offset = 8
    arrays_offset = strip_offset + len(strip)
    offsets = struct.pack(f"<{count}I", *[strip_offset] * count)
    lengths = struct.pack(f"<{count}I", *[len(strip)] * count)
    tags = [  # (tag, type: 3 short / 4 long, count, value bytes)
        (256, 4, 1, struct.pack("<I", width)),
        (257, 4, 1, struct.pack("<I", height)),
        (258, 3, 1, struct.pack("<H", bits)),
        (259, 3, 1, struct.pack("<H", compression)),
        (262, 3, 1, struct.pack("<H", 1)),
        (273, 4, count, offsets),
        (277, 3, 1, struct.pack("<H", 1)),
        (278, 4, 1, struct.pack("<I", rows_per_strip)),
        (279, 4, count, lengths),
        (339, 3, 1, struct.pack("<H", sample_format)),
    ]
    arrays = bytearray()
    entries = bytearray()
    for tag, kind, values, value in tags:
        if len(value) <= 4:
            entries += struct.pack("<HHI", tag, kind, values) + value.ljust(4, b"\x00")
        else:
            entries += struct.pack("<HHII", tag, kind, values, arrays_offset + len(arrays))
            arrays += value
    directory_offset = arrays_offset + len(arrays)
    directory = struct.pack("<H", len(tags)) + entries + bytes(4)
    return b"II*\x00" + struct.pack("<I", directory_offset) + strip + arrays + directory
