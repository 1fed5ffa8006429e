"""Tests for classifier/ui.py, driven from Python by setting widget values."""

from __future__ import annotations

import base64
import io
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from classifier import Classifier, ModelUnavailableError
from classifier import ui
from classifier.ui import ClassifierApp, build_app
from tests.conftest import encode


def _file(name: str, content: bytes) -> dict[str, object]:
    """One entry of FileUpload.value, as the browser sends it."""
    return {
        "name": name, "type": "image/jpeg", "size": len(content),
        "content": memoryview(content), "last_modified": datetime.now(timezone.utc),
    }


def _upload(app: ClassifierApp, *files: tuple[str, bytes]) -> None:
    app.upload.value = tuple(_file(name, content) for name, content in files)


def _cards(app: ClassifierApp) -> list[str]:
    return [card.value for card in app.results.children]


def _text(card: str) -> str:
    return re.sub(r"<[^>]+>", " ", card)


@pytest.fixture
def app(classifier: Classifier) -> ClassifierApp:
    return build_app(classifier)


def test_upload_shows_one_card_per_photo_with_predictions_as_text(app: ClassifierApp, photos: dict[str, Path]) -> None:
    _upload(app, ("hopper.jpg", photos["grace_hopper"].read_bytes()), ("cup.png", photos["coffee"].read_bytes()))
    hopper, cup = _cards(app)
    assert "hopper.jpg" in hopper and "Most likely <b>military uniform</b>" in hopper
    assert "cup.png" in cup and "espresso" in _text(cup)
    assert len(re.findall(r"<li>", hopper)) == ui.TOP_K
    assert app.status.value.count("Done: 2 photos classified.") == 1


def test_card_shows_a_reencoded_downscaled_photo_and_a_chart(app: ClassifierApp, photos: dict[str, Path]) -> None:
    big = Image.open(photos["rocket"]).resize((2400, 1600))
    _upload(app, ("big.png", encode(big, "PNG")))
    (card,) = _cards(app)
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
    _upload(app, *files)
    cards = _cards(app)
    assert len(cards) == 10
    assert "mn-card-error" in cards[4] and "not an image this app can read" in cards[4]
    assert all("tripod" in card for i, card in enumerate(cards) if i != 4)
    assert "9 photos classified, 1 could not be read" in app.status.value


def test_new_upload_replaces_results_and_same_file_twice_works(app: ClassifierApp, photos: dict[str, Path]) -> None:
    _upload(app, ("a.png", photos["coffee"].read_bytes()), ("b.png", photos["coffee"].read_bytes()))
    assert len(_cards(app)) == 2
    for _ in range(2):
        _upload(app, ("cam.png", photos["camera"].read_bytes()))
        assert app.upload.value == ()
        (card,) = _cards(app)
        assert "tripod" in card


def test_example_button_classifies_a_bundled_photo(app: ClassifierApp) -> None:
    button = next(b for b in app.example_buttons if b.description == "Grace Hopper")
    button.click()
    (card,) = _cards(app)
    assert "military uniform" in card and "grace_hopper.jpg" in card


def test_low_confidence_is_called_unsure(app: ClassifierApp) -> None:
    next(b for b in app.example_buttons if b.description == "Astronaut").click()
    (card,) = _cards(app)
    assert "The model is unsure about this one" in card


def test_file_names_are_shown_as_literal_truncated_text(app: ClassifierApp, photos: dict[str, Path]) -> None:
    hostile = "<img src=x onerror=alert(1)>.jpg"
    _upload(app, (hostile, photos["camera"].read_bytes()), ("x" * 10_000 + ".jpg", b"not an image"))
    hostile_card, long_card = _cards(app)
    assert "<img src=x" not in hostile_card and "&lt;img src=x onerror=alert(1)&gt;.jpg" in hostile_card
    assert "x" * 10_000 not in long_card and "…" in long_card


def test_unexpected_failure_shows_a_plain_message_and_the_app_recovers(
    app: ClassifierApp, classifier: Classifier, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail that must not reach the page")

    monkeypatch.setattr(classifier, "classify_batch", broken)
    _upload(app, ("cam.png", photos["camera"].read_bytes()))
    assert "Something went wrong" in app.status.value
    assert "internal detail" not in app.status.value and "Traceback" not in app.status.value
    assert not app.upload.disabled

    monkeypatch.undo()
    _upload(app, ("cam.png", photos["camera"].read_bytes()))
    assert "tripod" in _cards(app)[0]


def _wait_for_model(app: ClassifierApp) -> None:
    deadline = time.monotonic() + 120
    while not app._model.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # let the loading thread finish updating the widgets


def test_app_loads_the_model_in_the_background_and_then_accepts_uploads(photos: dict[str, Path]) -> None:
    app = build_app()
    _wait_for_model(app)
    assert "Ready" in app.status.value and not app.upload.disabled
    _upload(app, ("cam.png", photos["camera"].read_bytes()))
    assert "tripod" in _cards(app)[0]


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
