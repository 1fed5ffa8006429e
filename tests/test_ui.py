"""Tests for classifier/ui.py, driven from Python by setting widget values."""

from __future__ import annotations

import base64
import io
import re
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from classifier import Classifier, ModelUnavailableError
from classifier import ui
from classifier.ui import ClassifierApp, build_app
from tests.conftest import card_html, encode, upload_files


def _text(card: str) -> str:
    return re.sub(r"<[^>]+>", " ", card)


@pytest.fixture
def app(classifier: Classifier) -> ClassifierApp:
    return build_app(classifier)


def test_upload_shows_one_card_per_photo_with_predictions_as_text(app: ClassifierApp, photos: dict[str, Path]) -> None:
    upload_files(app, ("hopper.jpg", photos["grace_hopper"].read_bytes()), ("cup.png", photos["coffee"].read_bytes()))
    hopper, cup = card_html(app)
    assert "hopper.jpg" in hopper and "Most likely <b>military uniform</b>" in hopper
    assert "cup.png" in cup and "espresso" in _text(cup)
    assert len(re.findall(r"<li>", hopper)) == ui.TOP_K
    assert app.status.value.count("Done: 2 photos classified.") == 1


def test_card_shows_a_reencoded_downscaled_photo_and_a_chart(app: ClassifierApp, photos: dict[str, Path]) -> None:
    big = Image.open(photos["rocket"]).resize((2400, 1600))
    upload_files(app, ("big.png", encode(big, "PNG")))
    (card,) = card_html(app)
    photo_uri, chart_uri = re.findall(r"src='data:image/(?:jpeg|png);base64,([^']+)'", card)
    photo = Image.open(io.BytesIO(base64.b64decode(photo_uri)))
    chart = Image.open(io.BytesIO(base64.b64decode(chart_uri)))
    assert photo.format == "JPEG" and max(photo.size) <= 480
    assert chart.format == "PNG"


def test_broken_file_gets_its_own_message_and_the_others_still_work(
    app: ClassifierApp, photos: dict[str, Path]
) -> None:
    files = [(f"photo{i}.png", photos["camera"].read_bytes()) for i in range(9)]
    files.insert(4, ("notes.txt", b"shopping list: eggs, milk"))
    upload_files(app, *files)
    cards = card_html(app)
    assert len(cards) == 10
    assert "mn-card-error" in cards[4] and "not an image this app can read" in cards[4]
    assert all("tripod" in card for i, card in enumerate(cards) if i != 4)
    assert "9 photos classified, 1 could not be read" in app.status.value


def test_new_upload_replaces_results_and_same_file_twice_works(app: ClassifierApp, photos: dict[str, Path]) -> None:
    upload_files(app, ("a.png", photos["coffee"].read_bytes()), ("b.png", photos["coffee"].read_bytes()))
    assert len(card_html(app)) == 2
    for _ in range(2):
        upload_files(app, ("cam.png", photos["camera"].read_bytes()))
        assert app.upload.value == ()
        (card,) = card_html(app)
        assert "tripod" in card


def test_example_button_classifies_a_bundled_photo(app: ClassifierApp) -> None:
    button = next(b for b in app.example_buttons if b.description == "Grace Hopper")
    button.click()
    (card,) = card_html(app)
    assert "military uniform" in card and "grace_hopper.jpg" in card


def test_low_confidence_is_called_unsure(app: ClassifierApp) -> None:
    next(b for b in app.example_buttons if b.description == "Astronaut").click()
    (card,) = card_html(app)
    assert "The model is unsure about this one" in card


def test_file_names_are_shown_as_literal_truncated_text(app: ClassifierApp, photos: dict[str, Path]) -> None:
    hostile = "<img src=x onerror=alert(1)>.jpg"
    upload_files(app, (hostile, photos["camera"].read_bytes()), ("x" * 10_000 + ".jpg", b"not an image"))
    hostile_card, long_card = card_html(app)
    assert "<img src=x" not in hostile_card and "&lt;img src=x onerror=alert(1)&gt;.jpg" in hostile_card
    assert "x" * 10_000 not in long_card and "…" in long_card


def test_unexpected_failure_shows_a_plain_message_and_the_app_recovers(
    app: ClassifierApp, classifier: Classifier, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail that must not reach the page")

    monkeypatch.setattr(classifier, "classify_batch", broken)
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    assert "Something went wrong" in app.status.value
    assert "internal detail" not in app.status.value and "Traceback" not in app.status.value
    assert not app.upload.disabled

    monkeypatch.undo()
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    assert "tripod" in card_html(app)[0]


def _wait_for_model(app: ClassifierApp) -> None:
    deadline = time.monotonic() + 120
    while not app._model.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # let the loading thread finish updating the widgets


def test_app_loads_the_model_in_the_background_and_then_accepts_uploads(photos: dict[str, Path]) -> None:
    app = build_app()
    _wait_for_model(app)
    assert "Ready" in app.status.value and not app.upload.disabled
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    assert "tripod" in card_html(app)[0]


def test_unavailable_model_is_explained_and_uploads_stay_off(monkeypatch: pytest.MonkeyPatch) -> None:
    message = "The MobileNetV2 weights are not on this machine. Put the file in /somewhere."

    def unavailable(**kwargs: object) -> Classifier:
        raise ModelUnavailableError(message)

    monkeypatch.setattr(ui, "Classifier", unavailable)
    app = build_app()
    _wait_for_model(app)
    assert message in app.status.value and "role='alert'" in app.status.value
    assert app.upload.disabled and all(button.disabled for button in app.example_buttons)


def test_hint_states_the_limits_that_apply(app: ClassifierApp) -> None:
    hint = next(child.value for child in app.widget.children if "class='mn-hint'" in getattr(child, "value", ""))
    assert "up to 20 MB each and 50 MB per upload" in hint
    assert ui.MAX_UPLOAD_BYTES == 50 * 2**20


def test_a_hundred_uploads_keep_the_widget_count_flat(app: ClassifierApp, photos: dict[str, Path]) -> None:
    from ipywidgets.widgets.widget import _instances

    content = photos["camera"].read_bytes()
    upload_files(app, ("first.png", content), ("broken.txt", b"no"))
    baseline = len(_instances)
    for round_number in range(100):
        upload_files(app, (f"photo{round_number}.png", content), ("broken.txt", b"no"))
    assert len(_instances) == baseline
    assert len(card_html(app)) == 2 and "photo99.png" in card_html(app)[0]


def test_shown_photo_is_reencoded_without_the_uploads_metadata(app: ClassifierApp, photos: dict[str, Path]) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Secret Camera Co."  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS latitude: where the photo was taken
    original = encode(Image.open(photos["rocket"]), "JPEG", exif=exif, quality=95)
    upload_files(app, ("holiday.jpg", original))
    photo_uri = re.search(r"class='mn-photo'[^>]*src='data:image/jpeg;base64,([^']+)'", card_html(app)[0])
    shown = base64.b64decode(photo_uri.group(1))
    assert shown != original and b"Secret Camera" not in shown
    assert dict(Image.open(io.BytesIO(shown)).getexif()) == {}


_WRITES: list[str] = []
_WATCHING_WRITES: list[bool] = []


def _record_writes(event: str, arguments: tuple) -> None:
    if _WATCHING_WRITES and event == "open":
        path, mode, flags = arguments
        writes = (mode and any(m in str(mode) for m in "wax+")) or (isinstance(flags, int) and flags & 0o3)
        if writes:
            _WRITES.append(str(path))


sys.addaudithook(_record_writes)  # audit hooks cannot be removed; this one only records while asked


def test_uploads_are_never_written_to_disk(app: ClassifierApp, photos: dict[str, Path]) -> None:
    _WATCHING_WRITES.append(True)
    try:
        upload_files(app, ("a.jpg", photos["grace_hopper"].read_bytes()), ("b.png", photos["coffee"].read_bytes()))
    finally:
        _WATCHING_WRITES.clear()
    assert len(card_html(app)) == 2 and "espresso" in card_html(app)[1]
    assert _WRITES == []
