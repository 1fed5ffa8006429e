"""Tests for classifier/photo_strip.py: thumbnails with a remove button each, driven by messages."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from classifier.photo_strip import PhotoStrip


@pytest.fixture
def removed() -> list[int]:
    return []


@pytest.fixture
def strip(removed: list[int]) -> PhotoStrip:
    shown = PhotoStrip(on_remove=removed.append)
    shown.show([(7, "cat.jpg", b"\xff\xd8jpeg"), (9, "<b>dog</b>.jpg", b"\xff\xd8more")])
    return shown


def _send(strip: PhotoStrip, content: object) -> None:
    strip._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def test_photos_are_shown_as_jpeg_data_with_their_names(strip: PhotoStrip) -> None:
    assert [photo["id"] for photo in strip.photos] == [7, 9]
    assert strip.photos[1]["name"] == "<b>dog</b>.jpg"  # the page shows it as text
    assert strip.photos[0]["src"] == "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8jpeg").decode()


def test_a_remove_message_names_a_photo_shown(strip: PhotoStrip, removed: list[int]) -> None:
    _send(strip, {"type": "remove", "photo": 9})
    assert removed == [9]


@pytest.mark.parametrize("content", [
    {"type": "remove", "photo": 8},  # not shown
    {"type": "remove", "photo": "7"},
    {"type": "remove", "photo": 7.0},
    {"type": "remove", "photo": True},
    {"type": "remove"},
    {"type": "delete", "photo": 7},
    ["remove", 7],
])
def test_anything_else_is_ignored(strip: PhotoStrip, removed: list[int], content: object) -> None:
    _send(strip, content)
    assert removed == []


def test_nothing_is_removed_while_disabled_and_the_browser_cannot_change_that(
    strip: PhotoStrip, removed: list[int]
) -> None:
    strip.disabled = True
    strip._handle_msg({"content": {"data": {"method": "update", "state": {
        "disabled": False, "photos": [{"id": 1, "name": "x", "src": "javascript:alert(1)"}],
    }}}, "buffers": []})
    _send(strip, {"type": "remove", "photo": 7})
    assert removed == [] and strip.disabled and [photo["id"] for photo in strip.photos] == [7, 9]


def test_the_page_side_shows_names_as_text_and_only_jpeg_data() -> None:
    module = Path(PhotoStrip._esm).read_text() if isinstance(PhotoStrip._esm, Path) else str(PhotoStrip._esm)
    assert "export default { render }" in module and "innerHTML" not in module
    assert 'startsWith("data:image/jpeg;base64,")' in module
