"""Fixtures shared by the tests: the real classifier and real photos."""

from __future__ import annotations

import io
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import matplotlib.cbook
import numpy as np
import pytest
import skimage
from PIL import Image

from classifier import Classifier
from classifier.photo_input import PhotoInput
from classifier.testing import CHROMIUM, CHROMIUM_FLAGS
from classifier.ui import ClassifierApp

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"

CANVAS = 448
"""Side of the grey canvas a photo is pasted on, a quarter of it, to see where a heatmap points."""
CORNERS = {
    "top left": (0, 0),
    "top right": (CANVAS // 2, 0),
    "bottom left": (0, CANVAS // 2),
    "bottom right": (CANVAS // 2, CANVAS // 2),
}


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


def heatmap_mass_per_corner(heatmap: np.ndarray) -> dict[str, float]:
    """The share of a heatmap's mass on each quarter of the canvas, stretched over it as the app shows it."""
    stretched = np.asarray(
        Image.fromarray(heatmap.astype(np.float32), mode="F").resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)
    )
    half = CANVAS // 2
    total = stretched.sum()
    return {
        corner: float(stretched[top : top + half, left : left + half].sum() / total)
        for corner, (left, top) in CORNERS.items()
    }


class BrowserSide:
    """Plays the browser's side of :class:`~classifier.photo_input.PhotoInput`, message by message.

    Messages go through the widget's own comm handler, as they do in a kernel, and
    the widget's replies are recorded.
    """

    def __init__(self, widget: PhotoInput) -> None:
        self.widget = widget
        self.replies: list[dict[str, object]] = []
        widget.send = lambda content, buffers=None: self.replies.append(content)  # type: ignore[method-assign]

    def message(self, content: object, buffers: list[bytes] | None = None) -> None:
        self.widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                                 "buffers": buffers or []})

    def upload(self, files: list[tuple[str, bytes]], *, upload_id: str = "upload-1") -> None:
        """Send ``files`` as the page does: announce them, send each in chunks, end."""
        limits = self.widget.limits
        self.message({"type": "begin", "upload": upload_id,
                      "files": [{"name": name, "size": len(content)} for name, content in files]})
        for index, (_name, content) in enumerate(files):
            if len(content) > limits["max_file_bytes"]:
                continue  # held back, as the browser does
            for offset in range(0, len(content), limits["chunk_bytes"]):
                chunk = content[offset:offset + limits["chunk_bytes"]]
                self.message({"type": "chunk", "upload": upload_id, "file": index, "offset": offset}, [chunk])
        self.message({"type": "end", "upload": upload_id})


def upload_files(app: ClassifierApp, *files: tuple[str, bytes]) -> None:
    """Upload ``(name, content)`` pairs through the photo input, as the page does, and wait for the app."""
    BrowserSide(app.photo_input).upload(list(files))
    app.wait()


def card_html(app: ClassifierApp) -> list[str]:
    """The HTML of each card the app shows now, in order (name, photo, guesses; or the refusal)."""
    return ["".join(part.value for part in card.children if isinstance(part, widgets.HTML))
            for card in app.cards.children]


def page_kernel_id(url: str) -> str:
    """Load the app as a browser would (starting its kernel) and read the kernel's id from Voilà's page config."""
    with urllib.request.urlopen(url, timeout=120) as response:
        page = response.read().decode()
    config = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.DOTALL)
    assert config, "Voilà's page config is not in the page"
    return json.loads(config.group(1))["kernelId"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright, for the browser tests of one module."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


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
