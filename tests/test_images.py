"""Unit tests of :mod:`classifier.images`, on small images built in memory."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from classifier import images
from classifier.images import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_PIXELS,
    SUPPORTED_FORMATS,
    ImageError,
    encode_jpeg,
    load_image,
    resize_square,
    to_rgb,
)
from tests.conftest import encode
from tests.crafted_files import jpeg_flat_baseline, png, png_chunk, png_header_only, tiff, webp_lossless

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def _assert_colour(pixel: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 0) -> None:
    """Each channel of ``pixel`` is within ``tolerance`` of ``expected`` (lossy codecs shift a little)."""
    assert len(pixel) == 3, pixel
    assert all(abs(got - want) <= tolerance for got, want in zip(pixel, expected)), (pixel, expected)


def _red_left_blue_right(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    return image


def _noise(width: int, height: int) -> Image.Image:
    """Incompressible content, so that half of the encoded file is half of the picture."""
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _rotated_jpeg() -> bytes:
    """A 40x20 JPEG, red left and blue right, tagged EXIF orientation 6 (rotate 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(_red_left_blue_right(40, 20), "JPEG", exif=exif)


# --- sources and sizes -------------------------------------------------------


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "str path", "Path", "PIL image"])
def test_every_source_kind_gives_rgb_within_size(kind: str, tmp_path: Path) -> None:
    picture = _red_left_blue_right(300, 200)
    data = encode(picture, "PNG")
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    source = {
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "str path": str(path),
        "Path": path,
        "PIL image": picture,
    }[kind]

    result = load_image(source, size=150)

    assert result.mode == "RGB"
    assert result.size == (150, 100)
    _assert_colour(result.getpixel((5, 50)), RED)
    _assert_colour(result.getpixel((144, 50)), BLUE)


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "PIL image"])
def test_small_images_are_not_upscaled(as_bytes: bool) -> None:
    picture = Image.new("RGB", (30, 20), RED)

    result = load_image(encode(picture) if as_bytes else picture, size=480)

    assert result.size == (30, 20)


def test_format_is_identified_by_content_not_file_name(tmp_path: Path) -> None:
    path = tmp_path / "really_a_jpeg.png"
    path.write_bytes(encode(Image.new("RGB", (16, 12), RED), "JPEG"))

    result = load_image(path)

    assert result.size == (16, 12)
    _assert_colour(result.getpixel((8, 6)), RED, tolerance=8)


def test_big_jpeg_comes_back_at_the_requested_size() -> None:
    big = encode(Image.new("RGB", (4000, 3000), RED), "JPEG")

    result = load_image(big, size=480)

    assert result.size == (480, 360)
    _assert_colour(result.getpixel((240, 180)), RED, tolerance=8)


# --- formats -----------------------------------------------------------------


@pytest.mark.parametrize("format", SUPPORTED_FORMATS)
def test_supported_formats_decode(format: str) -> None:
    data = encode(Image.new("RGB", (16, 12), RED), format)

    result = load_image(data)

    assert result.mode == "RGB"
    assert result.size == (16, 12)
    _assert_colour(result.getpixel((8, 6)), RED, tolerance=8)


def test_animated_gif_gives_its_first_frame() -> None:
    red, blue = Image.new("RGB", (10, 10), RED), Image.new("RGB", (10, 10), BLUE)
    data = encode(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2

    result = load_image(data)

    _assert_colour(result.getpixel((5, 5)), RED)


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "PIL image"])
def test_exif_orientation_is_applied(as_bytes: bool) -> None:
    data = _rotated_jpeg()
    source = data if as_bytes else Image.open(io.BytesIO(data))

    result = load_image(source)

    # Rotating 90 degrees clockwise turns the left (red) half into the top half.
    assert result.size == (20, 40)
    _assert_colour(result.getpixel((10, 5)), RED, tolerance=8)
    _assert_colour(result.getpixel((10, 35)), BLUE, tolerance=8)


def test_an_upright_picture_is_not_turned_again_when_read_again() -> None:
    upright = load_image(_rotated_jpeg())

    assert load_image(upright).size == upright.size == (20, 40)
    assert upright.info == {}


# --- modes -------------------------------------------------------------------


def test_rgb_image_is_returned_unchanged() -> None:
    image = Image.new("RGB", (2, 2), RED)

    assert to_rgb(image) is image


def test_rgba_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 255))

    result = load_image(encode(image, "PNG"))

    assert result.mode == "RGB"
    _assert_colour(result.getpixel((0, 0)), WHITE)
    _assert_colour(result.getpixel((1, 0)), RED)


def test_rgba_half_transparent_pixel_is_blended_with_background() -> None:
    image = Image.new("RGBA", (1, 1), (0, 0, 0, 128))

    result = to_rgb(image, background=(0, 0, 254))

    _assert_colour(result.getpixel((0, 0)), (0, 0, 127), tolerance=1)


def test_la_transparent_pixels_become_white() -> None:
    image = Image.new("LA", (2, 1), (0, 0))
    image.putpixel((1, 0), (0, 255))

    result = to_rgb(image)

    _assert_colour(result.getpixel((0, 0)), WHITE)
    _assert_colour(result.getpixel((1, 0)), BLACK)


def test_palette_transparency_index_becomes_white() -> None:
    image = Image.new("P", (2, 1), 0)
    image.putpalette([*RED, *BLUE])
    image.putpixel((1, 0), 1)

    result = load_image(encode(image, "PNG", transparency=0))

    _assert_colour(result.getpixel((0, 0)), WHITE)
    _assert_colour(result.getpixel((1, 0)), BLUE)


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("1", [0, 1], [BLACK, WHITE]),
        ("L", [0, 100], [BLACK, (100, 100, 100)]),
        ("CMYK", [(0, 255, 255, 0), (0, 0, 0, 255)], [RED, BLACK]),
    ],
)
def test_narrow_modes_convert_to_rgb(mode: str, values: list, expected: list) -> None:
    image = Image.new(mode, (len(values), 1))
    for x, value in enumerate(values):
        image.putpixel((x, 0), value)

    result = to_rgb(image)

    assert result.mode == "RGB"
    assert [result.getpixel((x, 0)) for x in range(len(values))] == expected


@pytest.mark.parametrize("as_png", [False, True], ids=["in memory", "16-bit PNG"])
def test_16_bit_grayscale_is_scaled_not_clipped(as_png: bool) -> None:
    image = Image.fromarray(np.array([[65535, 32896, 257, 0]], dtype=np.uint16))
    assert image.mode == "I;16"

    result = load_image(encode(image, "PNG")) if as_png else to_rgb(image)

    assert [result.getpixel((x, 0))[0] for x in range(4)] == [255, 128, 1, 0]
    assert result.getpixel((1, 0)) == (128, 128, 128)


def test_float_image_is_stretched_to_full_range() -> None:
    image = Image.fromarray(np.array([[0.0, 1.0, 4.0]], dtype=np.float32))
    assert image.mode == "F"

    result = to_rgb(image)

    assert [result.getpixel((x, 0)) for x in range(3)] == [BLACK, (64, 64, 64), WHITE]


# --- refusals ----------------------------------------------------------------


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


@pytest.mark.parametrize(
    "content",
    [
        np.random.default_rng(1).bytes(2048),
        b"Just some plain text, not a picture.\n",
        b"<!DOCTYPE html><html><body><img src='cat.jpg'></body></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
    ],
    ids=["random bytes", "text", "html", "svg", "pdf"],
)
def test_non_images_are_refused(content: bytes) -> None:
    with pytest.raises(ImageError, match="not an image this app can read.*JPEG"):
        load_image(content)


def test_eps_is_refused_without_ghostscript(monkeypatch: pytest.MonkeyPatch) -> None:
    def ghostscript_must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ghostscript was called")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript_must_not_run)
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", ghostscript_must_not_run)
    eps = (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
        b"0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n"
    )

    with pytest.raises(ImageError, match="not an image this app can read"):
        load_image(eps)


@pytest.mark.parametrize("format", ["JPEG", "PNG"])
def test_truncated_files_are_refused(format: str) -> None:
    data = encode(_noise(64, 64), format)

    with pytest.raises(ImageError, match="damaged or incomplete"):
        load_image(data[: len(data) // 2])


@pytest.mark.parametrize("as_path", [False, True], ids=["bytes", "path"])
def test_files_over_max_bytes_are_refused(as_path: bool, tmp_path: Path) -> None:
    data = encode(_noise(64, 64), "PNG")
    path = tmp_path / "big.png"
    path.write_bytes(data)
    assert len(data) > 2**20 // 100

    with pytest.raises(ImageError, match=r"is 12 kB; the limit is 10 kB per photo"):
        load_image(path if as_path else data, max_bytes=2**20 // 100)


def test_default_limits_are_generous_but_finite() -> None:
    assert DEFAULT_MAX_BYTES == 20 * 2**20
    assert DEFAULT_MAX_PIXELS == 256_000_000
    assert DEFAULT_MAX_MEMORY == 256 * 2**20


@pytest.mark.parametrize(
    "data",
    [
        lambda: webp_lossless(8000, 8000),  # 38 bytes, 1 GB to decode
        lambda: png(8000, 8000, bit_depth=16, color_type=0),
        lambda: png(6000, 6000, color_type=6),
        lambda: tiff(8000, 8000, bits=32, sample_format=3),
    ],
    ids=["webp", "16-bit png", "rgba png", "float tiff"],
)
def test_images_too_costly_to_decode_are_refused_from_their_header(data: object, monkeypatch: pytest.MonkeyPatch) -> None:
    crafted = data()  # type: ignore[operator]
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", _no_decoding)

    with pytest.raises(ImageError, match=r"megapixels\) and decoding it would take about \d+ MB of memory; the limit is 256 MB"):
        load_image(crafted)


def _no_decoding(*args: object, **kwargs: object) -> None:
    raise AssertionError("pixels were decoded")


def test_a_200_megapixel_jpeg_decodes_at_reduced_scale() -> None:
    result = load_image(jpeg_flat_baseline(16_320, 12_240), size=224, shrink=False)

    assert result.size == (2040, 1530)  # 1/8 scale
    _assert_colour(result.getpixel((1000, 700)), (128, 128, 128), tolerance=1)


@pytest.mark.parametrize("as_bytes", [True, False], ids=["decoded file", "PIL image"])
def test_without_shrinking_other_formats_are_reduced_like_a_jpeg_draft(as_bytes: bool) -> None:
    picture = _red_left_blue_right(4000, 3000)
    result = load_image(encode(picture, "PNG") if as_bytes else picture, size=224, shrink=False)

    # Files are reduced right after decoding, as JPEG's draft would; a PIL image is the caller's as it is.
    assert result.size == ((500, 375) if as_bytes else (4000, 3000))
    _assert_colour(result.getpixel((10, 10)), RED)


@pytest.mark.parametrize(
    ("mode", "colour"),
    [("1", BLACK), ("P", BLUE), ("LA", (76, 76, 76)), ("I;16", (128, 128, 128)), ("RGBA", RED)],
)
def test_modes_that_cannot_be_reduced_directly_still_come_out_right(mode: str, colour: tuple[int, int, int]) -> None:
    base = {"1": Image.new("1", (1200, 900), 0), "I;16": Image.new("I;16", (1200, 900), 32896)}.get(mode)
    if base is None:
        base = Image.new("RGB", (1200, 900), BLUE if mode == "P" else RED).convert(mode)
    result = load_image(encode(base, "PNG"), size=224)

    assert result.mode == "RGB" and max(result.size) == 224
    _assert_colour(result.getpixel((100, 80)), colour, tolerance=2)


def test_concurrent_decodes_share_one_memory_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = images._MemoryBudget(100)
    monkeypatch.setattr(images, "_DECODING", budget)
    inside: list[int] = []
    most_inside = []
    lock = threading.Lock()
    real_decode = images._decode

    def slow_decode(image: Image.Image, size: int) -> Image.Image:
        with lock:
            inside.append(1)
            most_inside.append(len(inside))
        time.sleep(0.2)
        with lock:
            inside.pop()
        return real_decode(image, size)

    monkeypatch.setattr(images, "_decode", slow_decode)
    monkeypatch.setattr(images, "decoding_memory", lambda image, data, size: 60)  # two would need 120
    data = encode(Image.new("RGB", (8, 8)), "PNG")
    threads = [threading.Thread(target=load_image, args=(data,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert max(most_inside) == 1  # one at a time: each reserved 60 of 100
    assert budget._free == 100  # everything given back


def test_a_reservation_larger_than_the_budget_still_runs_alone() -> None:
    budget = images._MemoryBudget(100)
    with budget.reserve(500):
        assert budget._free == 0
    assert budget._free == 100


def test_image_over_max_pixels_is_refused_from_its_header() -> None:
    with pytest.raises(ImageError, match=r"100 x 100 pixels.*the limit is 0 megapixels"):
        load_image(png_header_only(100, 100), max_pixels=9_999)


def test_decompression_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(ImageError, match="megapixels"):
        load_image(png_header_only(30_000, 30_000))


def test_heic_is_refused_with_advice_to_convert_to_jpeg() -> None:
    heic = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64

    with pytest.raises(ImageError, match="HEIC.*JPEG"):
        load_image(heic)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("photo\0.jpg", "not a usable file name"),
        ("x" * 5000 + ".jpg", "not a usable file name"),
        ("/dev/zero", "not a regular file"),
    ],
    ids=["NUL byte", "5000 characters", "device"],
)
def test_unusable_paths_are_refused_without_reading(path: str, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_a_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    result: list[BaseException] = []
    reader = threading.Thread(target=lambda: _capture(result, lambda: load_image(pipe)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a pipe blocked"
    assert isinstance(result[0], ImageError) and "not a regular file" in str(result[0])


def _capture(into: list[BaseException], call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except BaseException as error:  # noqa: BLE001 (handed to the test)
        into.append(error)


def test_a_long_path_that_exists_is_read(tmp_path: Path) -> None:
    folder = tmp_path / ("d" * 200) / ("e" * 200)
    folder.mkdir(parents=True)
    (folder / "photo.png").write_bytes(encode(Image.new("RGB", (4, 4), RED)))

    assert load_image(folder / "photo.png").size == (4, 4)


@pytest.mark.parametrize("problem", ["closed", "lazily opened, then cut short"])
def test_unusable_pil_images_are_image_errors(problem: str, tmp_path: Path) -> None:
    if problem == "closed":
        image = Image.new("RGB", (4, 4))
        image.close()
    else:
        path = tmp_path / "photo.png"
        data = encode(_noise(64, 64), "PNG")
        path.write_bytes(data)
        image = Image.open(path)
        path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ImageError, match="damaged or incomplete"):
        load_image(image)


def test_pil_image_in_mode_la_is_converted() -> None:
    image = Image.new("LA", (2, 1), (0, 255)).convert("La")

    result = load_image(image)

    _assert_colour(result.getpixel((0, 0)), BLACK)


@pytest.mark.parametrize("where", ["PIL info", "PNG eXIf chunk", "JPEG APP1"])
def test_garbage_exif_costs_the_orientation_not_the_picture(where: str) -> None:
    garbage = b"Exif\x00\x00MM\x00*\xff\xff\xff\xff" + bytes(20)
    if where == "PIL info":
        source: object = Image.new("RGB", (8, 8), RED)
        source.info["exif"] = garbage[6:]  # type: ignore[attr-defined]
    elif where == "PNG eXIf chunk":
        plain = encode(Image.new("RGB", (8, 8), RED), "PNG")
        end = plain.index(b"IEND") - 4
        source = plain[:end] + png_chunk(b"eXIf", garbage[6:]) + plain[end:]
    else:
        plain = encode(Image.new("RGB", (8, 8), RED), "JPEG")
        source = plain[:2] + b"\xff\xe1" + (2 + len(garbage)).to_bytes(2, "big") + garbage + plain[2:]

    result = load_image(source)  # type: ignore[arg-type]

    assert result.size == (8, 8)
    _assert_colour(result.getpixel((4, 4)), RED, tolerance=8)


def test_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no file at"):
        load_image(tmp_path / "missing.jpg")


def test_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_unsupported_source_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="int"):
        load_image(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -1])
def test_size_below_one_is_a_value_error(size: int) -> None:
    with pytest.raises(ValueError, match="size must be a positive") as raised:
        load_image(encode(Image.new("RGB", (4, 4))), size=size)

    assert not isinstance(raised.value, ImageError)


# --- resizing and re-encoding ------------------------------------------------


def test_resize_square_keeps_the_whole_picture() -> None:
    result = resize_square(_red_left_blue_right(200, 100), 50)

    assert result.size == (50, 50)
    for y in (0, 25, 49):
        _assert_colour(result.getpixel((0, y)), RED)
        _assert_colour(result.getpixel((49, y)), BLUE)


def test_encode_jpeg_writes_a_jpeg_without_exif() -> None:
    tagged = Image.open(io.BytesIO(_rotated_jpeg()))
    assert tagged.getexif()[0x0112] == 6

    data = encode_jpeg(tagged)

    assert data.startswith(b"\xff\xd8\xff")
    reopened = Image.open(io.BytesIO(data))
    assert reopened.format == "JPEG"
    assert reopened.size == (40, 20)
    assert dict(reopened.getexif()) == {}


def test_without_shrinking_a_big_jpeg_is_only_drafted() -> None:
    big = encode(Image.new("RGB", (4000, 3000), (10, 200, 30)), "JPEG")
    picture = load_image(big, size=224, shrink=False)
    assert picture.size == (500, 375)  # 1/8 scale: the smallest with both sides >= 224
    assert load_image(Image.new("RGB", (900, 600)), size=224, shrink=False).size == (900, 600)


def test_any_decoder_failure_becomes_an_image_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fuzzed TIFF made Pillow's decoder raise TypeError; whatever a decoder raises, it is one file's problem.
    def broken_decoder(self: Image.Image) -> None:
        raise TypeError("'float' object cannot be interpreted as an integer")

    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", broken_decoder)
    with pytest.raises(ImageError, match="damaged or incomplete"):
        load_image(encode(Image.new("RGB", (8, 8)), "TIFF"))
