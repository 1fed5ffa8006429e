"""Fixtures shared by the tests: the real classifier and real photos."""

from __future__ import annotations

import io
import os
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.cbook
import pytest
import skimage
from PIL import Image

from classifier import Classifier
from classifier.testing import CHROMIUM
from classifier.ui import ClassifierApp

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    """The real MobileNetV2 (converted once per test session, if the cache is cold)."""
    return Classifier()


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    """Real photos with known ImageNet answers, shipped by matplotlib and scikit-image."""
    return {
        "grace_hopper": Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
        "chelsea": SKIMAGE_DATA / "chelsea.png",
        "coffee": SKIMAGE_DATA / "coffee.png",
        "rocket": SKIMAGE_DATA / "rocket.jpg",
        "camera": SKIMAGE_DATA / "camera.png",
    }


def encode(image: Image.Image, format: str = "PNG", **options: object) -> bytes:
    """Encode ``image`` in memory, as an uploaded file would arrive."""
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def upload_files(app: ClassifierApp, *files: tuple[str, bytes]) -> None:
    """Upload ``(name, content)`` pairs by setting the FileUpload value, as the browser does."""
    app.upload.value = tuple(
        {
            "name": name, "type": "application/octet-stream", "size": len(content),
            "content": memoryview(content), "last_modified": datetime.now(timezone.utc),
        }
        for name, content in files
    )


def card_html(app: ClassifierApp) -> list[str]:
    """The HTML of the result cards the app shows now, in order."""
    return [card.children[0].value for card in app.results.children]


def require_chromium() -> None:
    """Fail in CI without Chromium; elsewhere skip the calling tests, loudly."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI needs Chromium for the browser tests, but {CHROMIUM} is missing")
    pytest.skip(
        "BROWSER TESTS SKIPPED: Chromium is not installed (apt-get install -y chromium)",
        allow_module_level=True,
    )
