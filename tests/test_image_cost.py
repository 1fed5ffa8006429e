"""Tests for classifier/image_cost.py: costs known from a file's structure and header."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from classifier import image_cost
from classifier.image_cost import (
    MAX_JPEG_SCANS,
    MAX_PNG_CHUNKS,
    MAX_SEGMENTS,
    MAX_STRIPS,
    check_decoding_time,
    check_structure,
    decoding_memory,
    jpeg_draft_scale,
)
from classifier.images import ImageError
from tests.conftest import encode
from tests.crafted_files import (
    bmp_rle8_long_line,
    gif_with_extensions,
    jpeg_flat_baseline,
    jpeg_with_comments,
    jpeg_with_repeated_scans,
    png,
    png_chunk,
    tiff,
    webp_lossless,
)


def _opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


# --- structure: refused in a bounded number of steps ------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda: jpeg_with_repeated_scans(1000, 1000, MAX_JPEG_SCANS + 5), r"JPEG .*1001 or more scans"),
        (lambda: jpeg_with_repeated_scans(4000, 4000, 650), r"JPEG .*scans over 250,000 blocks"),
        (lambda: jpeg_with_comments(1_000_000), rf"JPEG .*over {MAX_SEGMENTS} marker segments"),
        (lambda: png(16, 16, chunks_before_pixels=png_chunk(b"prVt", b"") * 1_000_000), r"PNG .*over 20000 chunks"),
        (lambda: gif_with_extensions(1_000_000), rf"GIF .*over {MAX_SEGMENTS} blocks"),
        (lambda: tiff(60, 1_000_000, strips=1_000_000, compression=1), r"TIFF .*1000000 strips or tiles"),
        (lambda: tiff(16, 16, compression=7), r"TIFF .*compression \(number 7\)"),
    ],
    ids=["scans", "block scans", "segments", "png chunks", "gif blocks", "tiff strips", "tiff compression"],
)
def test_structures_no_photo_has_are_refused_at_once(data: object, message: str) -> None:
    crafted = data()  # type: ignore[operator]
    started = time.process_time()
    with pytest.raises(ImageError, match=message) as refused:
        check_structure(crafted)
    assert time.process_time() - started < 0.5  # a bounded walk, not a decode (decoding takes 2-30 s)
    assert "JPEG or PNG" in str(refused.value)  # and what to do instead


@pytest.mark.parametrize(
    "data",
    [
        lambda: encode(Image.new("RGB", (64, 48), (200, 10, 10)), "JPEG", progressive=True),
        lambda: jpeg_with_repeated_scans(800, 600, 100),
        lambda: jpeg_with_comments(MAX_SEGMENTS - 20),
        lambda: png(16, 16, chunks_before_pixels=png_chunk(b"prVt", b"") * (MAX_PNG_CHUNKS - 10)),
        lambda: gif_with_extensions(MAX_SEGMENTS // 2 - 10),
        lambda: tiff(100, MAX_STRIPS, strips=MAX_STRIPS, compression=1),
        lambda: encode(Image.new("RGB", (64, 48)), "TIFF", compression="tiff_lzw"),
        lambda: encode(Image.new("RGB", (64, 48)), "WEBP"),
    ],
    ids=["progressive", "100 scans", "many segments", "many chunks", "many blocks", "many strips", "lzw tiff", "webp"],
)
def test_structures_within_the_limits_pass(data: object) -> None:
    check_structure(data())  # type: ignore[operator]


def test_a_damaged_structure_is_left_to_pillow_to_refuse() -> None:
    for damaged in (b"\xff\xd8\xff\xe0\x00", b"\x89PNG\r\n\x1a\n\x00\x00", b"GIF89a", b"II*\x00\xff\xff\xff\xff"):
        check_structure(damaged)


def test_large_run_length_bmp_is_refused_and_small_one_is_not() -> None:
    with pytest.raises(ImageError, match=r"compressed \(RLE\) BMP of 64000000 x 1 pixels"):
        check_decoding_time(_opened(bmp_rle8_long_line(64_000_000)))
    check_decoding_time(_opened(bmp_rle8_long_line(1000)))
    check_decoding_time(_opened(png(6400, 1000)))  # only the run-length decoder is slow


# --- memory: from the header ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "bytes_per_pixel"),
    [
        (lambda: png(100, 100), 4),  # RGB is stored in 4 bytes
        (lambda: png(100, 100, color_type=0), 1),
        (lambda: png(100, 100, color_type=6), 8),  # RGBA, and its premultiplied copy for reducing
        (lambda: png(100, 100, color_type=4), 8),  # LA is stored like RGBA
        (lambda: png(100, 100, bit_depth=16, color_type=0), 6),  # 16-bit, then 32-bit to reduce
        (lambda: encode(Image.new("P", (100, 100)), "GIF"), 5),  # palette, then RGB
        (lambda: tiff(100, 100, bits=32, sample_format=3), 8),  # float, and libtiff's strip buffer
        (lambda: webp_lossless(100, 100), 16),  # RGB, and three RGBA canvases of the decoder
    ],
    ids=["rgb png", "gray png", "rgba png", "la png", "16-bit png", "gif", "float tiff", "webp"],
)
def test_decoding_memory_counts_what_pillow_holds_per_pixel(data: object, bytes_per_pixel: int) -> None:
    crafted = data()  # type: ignore[operator]
    assert decoding_memory(_opened(crafted), crafted, size=224) == 100 * 100 * bytes_per_pixel


def test_jpeg_memory_is_that_of_the_reduced_scale_it_decodes_at() -> None:
    crafted = jpeg_flat_baseline(9_600, 6_400)  # 61 megapixels
    assert jpeg_draft_scale((9_600, 6_400), 224) == 8
    assert decoding_memory(_opened(crafted), crafted, size=224) == 1200 * 800 * 1  # 1/8 scale, gray


def test_progressive_jpeg_memory_counts_every_coefficient() -> None:
    crafted = jpeg_with_repeated_scans(4000, 4000, 1)
    blocks = 500 * 500
    assert decoding_memory(_opened(crafted), crafted, size=224) == 500 * 500 + blocks * 64 * 2


@pytest.mark.parametrize(
    ("size", "wanted", "scale"),
    [((4000, 3000), 224, 8), ((4000, 3000), 480, 4), ((900, 600), 224, 2), ((300, 3000), 224, 1), ((100, 60), 224, 1)],
)
def test_draft_scale_keeps_both_sides_at_least_the_wanted_size(size: tuple[int, int], wanted: int, scale: int) -> None:
    assert jpeg_draft_scale(size, wanted) == scale


def test_the_draft_scale_is_pillows_own() -> None:
    image = _opened(encode(Image.new("RGB", (4000, 3000)), "JPEG"))
    image.draft("RGB", (480, 480))
    assert image.size == (4000 // jpeg_draft_scale((4000, 3000), 480), 3000 // jpeg_draft_scale((4000, 3000), 480))


def test_limits_stay_above_what_real_photos_need() -> None:
    # A 50-megapixel progressive photo with ten scans, 4:2:0: 1.17 million blocks a scan.
    assert 10 * 1_170_000 < image_cost.MAX_JPEG_BLOCK_SCANS
    assert MAX_PNG_CHUNKS > 20 * 2**20 // 8192  # a 20 MB PNG in libpng's default chunks
