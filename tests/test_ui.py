"""Tests for classifier/ui.py, driven from Python by setting widget values."""

from __future__ import annotations

import base64
import csv
import io
import re
import sys
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

    monkeypatch.setattr(classifier, "explain_batch", broken)
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    assert "Something went wrong" in app.status.value
    assert "internal detail" not in app.status.value and "Traceback" not in app.status.value
    assert not app.upload.disabled

    monkeypatch.undo()
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    assert "tripod" in card_html(app)[0]


def _wait_for_model(app: ClassifierApp) -> None:
    app.ready.exception(timeout=120)  # raises TimeoutError if loading hangs


def test_app_loads_the_model_in_the_background_and_then_accepts_uploads(photos: dict[str, Path]) -> None:
    app = build_app()
    _wait_for_model(app)
    assert "Ready" in app.status.value and not app.upload.disabled
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    assert "tripod" in card_html(app)[0]


def test_unavailable_model_is_explained_and_uploads_stay_off() -> None:
    message = "The MobileNetV2 weights are not on this machine. Put the file in /somewhere."

    def unavailable(model: str, on_progress: object) -> Classifier:
        raise ModelUnavailableError(message)

    app = build_app(load_classifier=unavailable)
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


def _untrained_loader(calls: list[str]) -> ui.ClassifierLoader:
    """Real classifiers; only MobileNetV2 has offline weights, so the others run untrained."""

    def load(model: str, on_progress: ui.ProgressCallback) -> Classifier:
        calls.append(model)
        weights = "imagenet" if model == "MobileNetV2" else None
        return Classifier(model=model, weights=weights, on_progress=on_progress)

    return load


def _two_photos(photos: dict[str, Path]) -> tuple[tuple[str, bytes], ...]:
    return ("hopper.jpg", photos["grace_hopper"].read_bytes()), ("cup.png", photos["coffee"].read_bytes())


def test_cards_say_which_model_answered(app: ClassifierApp, photos: dict[str, Path]) -> None:
    upload_files(app, *_two_photos(photos))
    assert all("Answered by MobileNetV2" in card for card in card_html(app))


def test_switching_model_keeps_the_photos_and_reclassifies_them(
    classifier: Classifier, photos: dict[str, Path]
) -> None:
    calls: list[str] = []
    app = build_app(classifier, load_classifier=_untrained_loader(calls))
    upload_files(app, *_two_photos(photos), ("notes.txt", b"not a photo"))
    app.model.value = "MobileNet"
    cards = card_html(app)
    assert [re.search(r"class='mn-name'[^>]*>([^<]+)<", card).group(1) for card in cards] == [
        "hopper.jpg", "cup.png", "notes.txt",
    ]
    assert all("Answered by MobileNet<" in card for card in cards[:2]) and "mn-card-error" in cards[2]
    app.model.value = "MobileNetV2"
    assert "military uniform" in card_html(app)[0] and "Answered by MobileNetV2" in card_html(app)[0]
    assert calls == ["MobileNet"]  # MobileNetV2 was given; each model is built once


def test_a_model_that_cannot_load_is_explained_and_the_previous_one_stays(
    classifier: Classifier, photos: dict[str, Path]
) -> None:
    def offline(model: str, on_progress: ui.ProgressCallback) -> Classifier:
        raise ModelUnavailableError(f"The {model} weights are not on this machine.")

    app = build_app(classifier, load_classifier=offline)
    upload_files(app, *_two_photos(photos))
    app.model.value = "MobileNetV3Small"
    assert "The MobileNetV3Small weights are not on this machine." in app.status.value
    assert app.model.value == "MobileNetV2" and not app.model.disabled
    assert "Answered by MobileNetV2" in card_html(app)[0]


def test_top_k_changes_the_cards_without_running_the_model(
    app: ClassifierApp, classifier: Classifier, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_files(app, *_two_photos(photos))

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model ran again")

    monkeypatch.setattr(classifier, "explain_batch", no_model)
    app.results.children[1].children[1].value = True  # a heatmap, which must stay on
    for top_k in (1, 10, 3):
        app.top_k.value = top_k
        assert all(card.count("<li>") == top_k for card in card_html(app))
    assert "Most likely <b>military uniform</b>" in card_html(app)[0]
    assert "mn-heatmap" not in card_html(app)[0] and "mn-heatmap" in card_html(app)[1]


def test_heatmap_toggle_swaps_the_photo_for_the_overlay(app: ClassifierApp, photos: dict[str, Path]) -> None:
    upload_files(app, *_two_photos(photos))
    card = app.results.children[0]
    body, toggle = card.children
    photo_before = re.search(r"class='mn-photo'[^>]*src='([^']+)'", body.value).group(1)
    toggle.value = True
    overlay = re.search(r"class='mn-photo mn-heatmap'[^>]*src='([^']+)'", body.value)
    assert overlay and overlay.group(1) != photo_before
    assert toggle.description == "Hide heatmap" and "coloured where the model saw military uniform" in body.value
    toggle.value = False
    assert photo_before in body.value and "mn-heatmap" not in body.value


def test_download_link_holds_the_current_results_as_csv(app: ClassifierApp, photos: dict[str, Path]) -> None:
    assert app.download.value == ""
    upload_files(app, *_two_photos(photos), ("=cmd.png", b"not a photo"))
    app.top_k.value = 2
    link = re.search(r"download='photo-predictions.csv' href='data:text/csv;charset=utf-8;base64,([^']+)'", app.download.value)
    data = base64.b64decode(link.group(1))
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark, for spreadsheets
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["file name", "rank", "label", "probability", "model"]
    assert [row[:3] for row in rows[1:]][:1] == [["hopper.jpg", "1", "military uniform"]]
    assert [row[0] for row in rows[1:]] == ["hopper.jpg", "hopper.jpg", "cup.png", "cup.png"]
    assert {row[4] for row in rows[1:]} == {"MobileNetV2"}


def test_an_upload_over_the_stated_total_is_refused_plainly(app: ClassifierApp, photos: dict[str, Path]) -> None:
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    big = bytes(ui.MAX_UPLOAD_BYTES // 2 + 1)
    upload_files(app, ("one.jpg", big), ("two.jpg", big))
    assert "These files add up to 50.0 MB; one upload can carry 50 MB." in app.status.value
    assert "tripod" in card_html(app)[0] and app.upload.value == ()
