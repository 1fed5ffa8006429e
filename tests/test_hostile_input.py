"""Promises about hostile and unusual files, through the public API and through the UI.

Every file below ends in one of two ways, with the kernel alive and the other
files of the same upload still classified:

* ``CLASSIFIED``: it is a usable picture, and it gets five predictions;
* a message fragment: it is refused with an :class:`~classifier.ImageError`
  whose message a person understands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np
import pytest
from PIL import Image

from classifier import Classifier, ImageError
from classifier.ui import ClassifierApp, build_app
from tests.conftest import SKIMAGE_DATA, card_html, encode, upload_files
from tests.crafted_files import (
    bmp_rle8_long_line,
    gif_with_extensions,
    jpeg_flat_baseline,
    jpeg_with_comments,
    jpeg_with_repeated_scans,
    png,
    png_chunk,
    png_header_only,
    tiff,
    webp_lossless,
)

CLASSIFIED: Final = "classified"
CAMERA: Final = SKIMAGE_DATA / "camera.png"  # grayscale; MobileNetV2 says "tripod"
ROCKET: Final = SKIMAGE_DATA / "rocket.jpg"  # MobileNetV2 says "missile"


def _photo(path: Path = ROCKET) -> Image.Image:
    return Image.open(path).convert("RGB")


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _before_end(data: bytes, chunk: bytes) -> bytes:
    """A PNG with one more chunk inserted before its end chunk."""
    end = data.index(b"IEND") - 4
    return data[:end] + chunk + data[end:]


def _animated(format: str) -> bytes:
    """Two frames: the photo first, then a plain red frame that must be ignored."""
    frames = [_photo(CAMERA), Image.new("RGB", _photo(CAMERA).size, (255, 0, 0))]
    return encode(frames[0], format, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _exif_rotated() -> bytes:
    """The rocket photo stored on its side, with EXIF orientation 6 to stand it up again."""
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    return encode(_photo().rotate(90, expand=True), "JPEG", exif=exif)


def _sixteen_bit_gray() -> bytes:
    pixels = np.asarray(Image.open(CAMERA), dtype=np.uint16) * 257
    return encode(Image.fromarray(pixels), "PNG")


def _palette_with_transparency() -> bytes:
    picture = _photo(CAMERA).convert("P", palette=Image.Palette.ADAPTIVE)
    return encode(picture, "PNG", transparency=0)


# name -> (how to build the file, what must happen)
HOSTILE_FILES: Final[dict[str, tuple[Callable[[], bytes], str]]] = {
    "empty.jpg": (lambda: b"", "empty"),
    "notes.txt": (lambda: b"Dear visitor,\nthis is plain text.\n", "not an image"),
    "page.html": (lambda: b"<!doctype html><script>alert(1)</script>", "not an image"),
    "drawing.svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "not an image"),
    "document.pdf": (lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "not an image"),
    "figure.eps": (lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "not an image"),
    "print.ps": (lambda: b"%!PS-Adobe-3.0\n/Helvetica findfont 12 scalefont setfont\nshowpage\n", "not an image"),
    "noise.jpg": (lambda: np.random.default_rng(1).bytes(50_000), "not an image"),
    "cut.jpg": (lambda: _truncated(encode(_photo(), "JPEG")), "damaged or incomplete"),
    "cut.png": (lambda: _truncated(encode(_photo(), "PNG")), "damaged or incomplete"),
    "bomb.png": (lambda: png_header_only(30_000, 30_000), "megapixels"),
    "huge.png": (lambda: png(12_000, 12_000), "megapixels"),
    "ribbon.png": (lambda: png(100_000, 1), CLASSIFIED),
    "jpeg-named.png": (lambda: encode(_photo(), "JPEG"), CLASSIFIED),
    "animated.gif": (lambda: _animated("GIF"), CLASSIFIED),
    "animated.webp": (lambda: _animated("WEBP"), CLASSIFIED),
    "animated.png": (lambda: _animated("PNG"), CLASSIFIED),
    "cmyk.jpg": (lambda: encode(_photo().convert("CMYK"), "JPEG"), CLASSIFIED),
    "gray.png": (lambda: encode(_photo(CAMERA), "PNG"), CLASSIFIED),
    "gray-alpha.png": (lambda: encode(_photo(CAMERA).convert("LA"), "PNG"), CLASSIFIED),
    "palette-transparent.png": (_palette_with_transparency, CLASSIFIED),
    "rgba.png": (lambda: encode(_photo().convert("RGBA"), "PNG"), CLASSIFIED),
    "one-bit.png": (lambda: encode(_photo(CAMERA).convert("1"), "PNG"), CLASSIFIED),
    "sixteen-bit.png": (_sixteen_bit_gray, CLASSIFIED),
    "rotated.jpg": (_exif_rotated, CLASSIFIED),
    "tiny.png": (lambda: encode(Image.new("RGB", (3, 3), (200, 30, 30)), "PNG"), CLASSIFIED),
    "too-big.jpg": (lambda: b"\xff\xd8\xff" + bytes(21 * 2**20), "the limit is 20 MB per photo"),
    "photo.heic": (lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "convert it to JPEG"),
    # Tiny files that would decode to gigabytes, refused from their headers:
    "flat-8000.webp": (lambda: webp_lossless(8000, 8000), "megapixels"),
    "gray16-8000.png": (lambda: png(8000, 8000, bit_depth=16, color_type=0), "megapixels"),
    "rgba-8000.png": (lambda: png(8000, 8000, color_type=6), "megapixels"),
    "float-8000.tiff": (lambda: tiff(8000, 8000, bits=32, sample_format=3), "megapixels"),
    # Small files built to make a decoder loop for seconds or minutes:
    "5000-scans.jpg": (lambda: jpeg_with_repeated_scans(4000, 4000, 5000), "scans"),
    # (300 000 parts rather than a million keep the whole set within one 50 MB upload.)
    "many-comments.jpg": (lambda: jpeg_with_comments(300_000), "marker segments"),
    "many-chunks.png": (lambda: png(16, 16, chunks_before_pixels=png_chunk(b"prVt", b"") * 300_000), "chunks"),
    "many-extensions.gif": (lambda: gif_with_extensions(300_000), "blocks"),
    "many-strips.tiff": (lambda: tiff(60, 300_000, strips=300_000, compression=1), "strips"),
    "long-line-rle.bmp": (lambda: bmp_rle8_long_line(64_000_000), "RLE"),
    # Large but real: what phones and screens make.
    "phone-200mp.jpg": (lambda: jpeg_flat_baseline(16_320, 12_240), CLASSIFIED),
    "screenshot-5k.png": (lambda: png(5120, 2880, color_type=6), CLASSIFIED),
    "garbage-exif.png": (
        lambda: _before_end(encode(_photo(), "PNG"), png_chunk(b"eXIf", b"MM\x00*\xff\xff\xff\xff" + bytes(20))),
        CLASSIFIED,
    ),
}

# Files whose content is a known photo, so the answer itself is checked, not only its shape.
KNOWN_ANSWERS: Final[dict[str, str]] = {
    "jpeg-named.png": "missile",
    "cmyk.jpg": "missile",
    "rgba.png": "missile",
    "rotated.jpg": "missile",
    "animated.gif": "tripod",
    "animated.webp": "tripod",
    "animated.png": "tripod",
    "gray.png": "tripod",
    "gray-alpha.png": "tripod",
    "sixteen-bit.png": "tripod",
    "garbage-exif.png": "missile",
}


@pytest.fixture(scope="module")
def hostile_files() -> dict[str, bytes]:
    return {name: build() for name, (build, _) in HOSTILE_FILES.items()}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_each_file_is_classified_or_refused_in_plain_words(
    classifier: Classifier, hostile_files: dict[str, bytes], name: str
) -> None:
    expected = HOSTILE_FILES[name][1]
    if expected == CLASSIFIED:
        predictions = classifier.classify(hostile_files[name])
        assert len(predictions) == 5
        if name in KNOWN_ANSWERS:
            assert predictions[0].label == KNOWN_ANSWERS[name]
    else:
        with pytest.raises(ImageError, match=expected):
            classifier.classify(hostile_files[name])


def test_oversized_images_are_refused_before_any_decoding(
    classifier: Classifier, hostile_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    for name in ("bomb.png", "huge.png", "flat-8000.webp", "gray16-8000.png", "rgba-8000.png", "float-8000.tiff"):
        with pytest.raises(ImageError, match="megapixels"):
            classifier.classify(hostile_files[name])


def test_eps_never_reaches_ghostscript(classifier: Classifier, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ghostscript(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ghostscript was called")

    monkeypatch.setattr("PIL.EpsImagePlugin.Ghostscript", no_ghostscript)
    eps = HOSTILE_FILES["figure.eps"][0]()
    with pytest.raises(ImageError):
        classifier.classify(eps)


def test_one_upload_of_every_hostile_file_keeps_the_good_photo(
    classifier: Classifier, hostile_files: dict[str, bytes], photos: dict[str, Path]
) -> None:
    app: ClassifierApp = build_app(classifier)
    files = [(name, content) for name, content in hostile_files.items()]
    files.insert(len(files) // 2, ("good.jpg", photos["grace_hopper"].read_bytes()))
    upload_files(app, *files)
    cards = dict(zip((name for name, _ in files), card_html(app)))
    assert len(cards) == len(files)
    assert "military uniform" in cards["good.jpg"]
    for name, (_, expected) in HOSTILE_FILES.items():
        if expected == CLASSIFIED:
            assert "mn-predictions" in cards[name], name
        else:
            assert "mn-card-error" in cards[name] and expected in cards[name], name
    refused = sum(expected != CLASSIFIED for _, expected in HOSTILE_FILES.values())
    assert f"{len(files) - refused} photos classified, {refused} could not be read" in app.status.value
