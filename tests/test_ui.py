"""Tests for classifier/ui.py, driven from Python by setting widget values and sending upload messages."""

from __future__ import annotations

import base64
import csv
import io
import re
import sys
import threading
import time
from pathlib import Path

import ipywidgets as widgets
import pytest
from PIL import Image

from classifier import Classifier, ModelUnavailableError
from classifier.conversion import ProgressCallback
from classifier.session import MAX_FILES, MAX_UPLOAD_BYTES, TOP_K, Session
from classifier.ui import Card, ClassifierApp, RefusalCard, build_app
from tests.conftest import BrowserSide, card_html, encode, upload_files


def _text(card: str) -> str:
    return re.sub(r"<[^>]+>", " ", card)


def _cards(app: ClassifierApp) -> list[Card | RefusalCard]:
    return list(app.cards.children)


@pytest.fixture
def app(classifier: Classifier) -> ClassifierApp:
    built = build_app(classifier)
    built.wait()
    return built


def test_upload_shows_one_card_per_photo_with_predictions_as_text(app: ClassifierApp, photos: dict[str, Path]) -> None:
    upload_files(app, ("hopper.jpg", photos["grace_hopper"].read_bytes()), ("cup.png", photos["coffee"].read_bytes()))
    hopper, cup = card_html(app)
    assert "hopper.jpg" in hopper and "Most likely <b>military uniform</b>" in hopper
    assert "cup.png" in cup and "espresso" in _text(cup)
    assert len(re.findall(r"<li>", hopper)) == TOP_K
    assert app.status.value.count("Done: 2 photos classified.") == 1


def test_card_shows_a_reencoded_downscaled_photo_and_a_matplotlib_chart_in_an_output(
    app: ClassifierApp, photos: dict[str, Path]
) -> None:
    big = Image.open(photos["rocket"]).resize((2400, 1600))
    upload_files(app, ("big.png", encode(big, "PNG")))
    (card,) = _cards(app)
    photo_uri = re.search(r"src='data:image/jpeg;base64,([^']+)'", card.photo.value).group(1)
    photo = Image.open(io.BytesIO(base64.b64decode(photo_uri)))
    assert photo.format == "JPEG" and max(photo.size) <= 480
    assert isinstance(card.chart, widgets.Output)
    (output,) = card.chart.outputs
    assert output["output_type"] == "display_data"
    chart = Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"])))
    assert chart.format == "PNG" and chart.width == 576  # 3.6 inches at 160 dpi


def test_broken_file_gets_its_own_message_and_the_others_still_work(
    app: ClassifierApp, photos: dict[str, Path]
) -> None:
    files = [(f"photo{i}.png", photos["camera"].read_bytes()) for i in range(9)]
    files.insert(4, ("notes.txt", b"shopping list: eggs, milk"))
    upload_files(app, *files)
    cards = card_html(app)
    assert len(cards) == 10
    assert isinstance(_cards(app)[4], RefusalCard) and "not an image this app can read" in cards[4]
    assert all("tripod" in card for i, card in enumerate(cards) if i != 4)
    assert "9 photos classified, 1 could not be read" in app.status.value


def test_new_upload_replaces_results_and_same_file_twice_works(app: ClassifierApp, photos: dict[str, Path]) -> None:
    upload_files(app, ("a.png", photos["coffee"].read_bytes()), ("b.png", photos["coffee"].read_bytes()))
    assert len(card_html(app)) == 2
    for _ in range(2):
        upload_files(app, ("cam.png", photos["camera"].read_bytes()))
        (card,) = card_html(app)
        assert "tripod" in card


def test_example_button_classifies_a_bundled_photo(app: ClassifierApp) -> None:
    next(b for b in app.example_buttons if b.description == "Grace Hopper").click()
    app.wait()
    (card,) = card_html(app)
    assert "military uniform" in card and "grace_hopper.jpg" in card


def test_low_confidence_is_called_unsure(app: ClassifierApp) -> None:
    next(b for b in app.example_buttons if b.description == "Astronaut").click()
    app.wait()
    (card,) = card_html(app)
    assert "The model is unsure about this one" in card


def test_file_names_are_shown_as_literal_truncated_text(app: ClassifierApp, photos: dict[str, Path]) -> None:
    hostile = "<img src=x onerror=alert(1)>.jpg"
    upload_files(app, (hostile, photos["camera"].read_bytes()), ("x" * 10_000 + ".jpg", b"not an image"))
    hostile_card, long_card = card_html(app)
    assert "<img src=x" not in hostile_card and "&lt;img src=x onerror=alert(1)&gt;.jpg" in hostile_card
    assert "x" * 1000 not in long_card and "…" in long_card


def test_unexpected_failure_shows_a_plain_message_and_the_app_recovers(
    app: ClassifierApp, classifier: Classifier, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail that must not reach the page")

    monkeypatch.setattr(classifier, "explain_batch", broken)
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    assert "Something went wrong" in app.status.value
    assert "internal detail" not in app.status.value and "Traceback" not in app.status.value
    assert not app.photo_input.disabled

    monkeypatch.undo()
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    assert "tripod" in card_html(app)[0]


def test_app_loads_the_model_in_the_background_and_then_accepts_uploads(photos: dict[str, Path]) -> None:
    app = build_app()
    assert app.photo_input.disabled  # until the model is there
    app.wait()
    assert "Ready" in app.status.value and not app.photo_input.disabled
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    assert "tripod" in card_html(app)[0]


def test_unavailable_model_is_explained_and_uploads_stay_off() -> None:
    message = "The MobileNetV2 weights are not on this machine. Put the file in /somewhere."

    def unavailable(model: str, on_progress: ProgressCallback) -> Classifier:
        raise ModelUnavailableError(message)

    app = build_app(load_classifier=unavailable)
    app.wait()
    assert message in app.status.value and "role='alert'" in app.status.value
    assert app.photo_input.disabled and app.model_choice.disabled
    assert all(button.disabled for button in app.example_buttons)


def test_hint_states_the_limits_that_apply(app: ClassifierApp) -> None:
    classify_tab = app.tabs.children[0]
    hint = next(child.value for child in classify_tab.children if "class='mn-hint'" in getattr(child, "value", ""))
    assert "up to 20 MB each, 100 photos and 50 MB per upload" in hint
    assert (MAX_FILES, MAX_UPLOAD_BYTES) == (100, 50 * 2**20)
    assert app.photo_input.limits == {
        "max_files": 100, "max_file_bytes": 20 * 2**20, "max_total_bytes": 50 * 2**20, "chunk_bytes": 4 * 2**20,
    }


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


def _untrained_loader(calls: list[str]):  # type: ignore[no-untyped-def]
    """Real classifiers; only MobileNetV2 has offline weights, so the others run untrained."""

    def load(model: str, on_progress: ProgressCallback) -> Classifier:
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
    app.model_choice.value = "MobileNet"
    app.wait()
    cards = card_html(app)
    assert [re.search(r"class='mn-name'[^>]*>([^<]+)<", card).group(1) for card in cards] == [
        "hopper.jpg", "cup.png", "notes.txt",
    ]
    assert all("Answered by MobileNet<" in card for card in cards[:2]) and "mn-card-error" in cards[2]
    app.model_choice.value = "MobileNetV2"
    app.wait()
    assert "military uniform" in card_html(app)[0] and "Answered by MobileNetV2" in card_html(app)[0]
    assert calls == ["MobileNet"]  # MobileNetV2 was given; each model is built once


def test_a_model_that_cannot_load_is_explained_and_the_previous_one_stays(
    classifier: Classifier, photos: dict[str, Path]
) -> None:
    def offline(model: str, on_progress: ProgressCallback) -> Classifier:
        raise ModelUnavailableError(f"The {model} weights are not on this machine.")

    app = build_app(classifier, load_classifier=offline)
    upload_files(app, *_two_photos(photos))
    app.model_choice.value = "MobileNetV3Small"
    app.wait()
    assert "The MobileNetV3Small weights are not on this machine." in app.status.value
    assert app.model_choice.value == "MobileNetV2" and not app.model_choice.disabled
    assert "Answered by MobileNetV2" in card_html(app)[0]


def test_guesses_change_only_the_text_and_chart_without_running_the_model(
    app: ClassifierApp, classifier: Classifier, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_files(app, *_two_photos(photos))

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model ran again")

    monkeypatch.setattr(classifier, "explain_batch", no_model)
    first, second = _cards(app)
    second.heatmap.value = True  # a heatmap, which must stay on
    app.wait()
    photos_before = [first.photo.value, second.photo.value]
    for top_k in (1, 10, 3):
        charts_before = [first.chart.outputs, second.chart.outputs]
        app.guesses.value = top_k
        app.wait()
        assert [card.guesses.value.count("<li>") for card in (first, second)] == [top_k, top_k]
        assert [first.chart.outputs, second.chart.outputs] != charts_before
        assert [first.photo.value, second.photo.value] == photos_before
    assert "Most likely <b>military uniform</b>" in first.guesses.value
    assert "mn-heatmap" not in first.photo.value and "mn-heatmap" in second.photo.value


def test_heatmap_toggle_changes_only_the_photo(app: ClassifierApp, photos: dict[str, Path]) -> None:
    upload_files(app, *_two_photos(photos))
    card = _cards(app)[0]
    photo_before, guesses_before, chart_before = card.photo.value, card.guesses.value, card.chart.outputs
    card.heatmap.value = True
    app.wait()
    overlay = re.search(r"class='mn-photo mn-heatmap'[^>]*src='([^']+)'", card.photo.value)
    assert overlay and overlay.group(1) not in photo_before
    assert card.heatmap.description == "Hide heatmap" and "coloured where the model saw military uniform" in card.photo.value
    assert (card.guesses.value, card.chart.outputs) == (guesses_before, chart_before)
    card.heatmap.value = False
    app.wait()
    assert card.photo.value == photo_before


def test_download_link_holds_the_current_results_as_csv(app: ClassifierApp, photos: dict[str, Path]) -> None:
    assert app.download.value == ""
    upload_files(app, *_two_photos(photos), ("=cmd.png", b"not a photo"))
    app.guesses.value = 2
    app.wait()
    link = re.search(r"download='photo-predictions.csv' href='data:text/csv;charset=utf-8;base64,([^']+)'", app.download.value)
    data = base64.b64decode(link.group(1))
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark, for spreadsheets
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["file name", "rank", "label", "probability", "model"]
    assert [row[:3] for row in rows[1:]][:1] == [["hopper.jpg", "1", "military uniform"]]
    assert [row[0] for row in rows[1:]] == ["hopper.jpg", "hopper.jpg", "cup.png", "cup.png"]
    assert {row[4] for row in rows[1:]} == {"MobileNetV2"}


@pytest.mark.parametrize("how", ["refused in the browser", "announced by a script"])
@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([("p.jpg", 10)] * (MAX_FILES + 1), "That is 101 files; one upload can hold 100."),
        ([("one.jpg", 19 * 2**20), ("two.jpg", 19 * 2**20), ("three.jpg", 19 * 2**20)],
         "These files add up to 57.0 MB; one upload can carry 50 MB."),
    ],
    ids=["too many files", "too many bytes"],
)
def test_an_upload_over_the_limits_is_refused_plainly_and_the_input_keeps_working(
    app: ClassifierApp, photos: dict[str, Path], how: str, files: list[tuple[str, int]], message: str
) -> None:
    upload_files(app, ("cam.png", photos["camera"].read_bytes()))
    browser = BrowserSide(app.photo_input)
    if how == "refused in the browser":
        browser.message({"type": "refused", "files": len(files), "bytes": sum(size for _name, size in files)})
    else:
        browser.message({"type": "begin", "upload": "big",
                         "files": [{"name": name, "size": size} for name, size in files]})
        assert browser.replies[-1] == {"type": "abort", "upload": "big"}
    app.wait()
    assert message in app.status.value and "role='alert'" in app.status.value
    assert "tripod" in card_html(app)[0] and not app.photo_input.disabled
    upload_files(app, ("cup.png", photos["coffee"].read_bytes()))
    assert "espresso" in card_html(app)[0]


def test_a_photo_over_the_limit_is_held_back_and_refused_on_its_own_card(
    app: ClassifierApp, photos: dict[str, Path]
) -> None:
    upload_files(app, ("cup.png", photos["coffee"].read_bytes()), ("huge.jpg", b"\xff\xd8" + bytes(21 * 2**20)))
    cup, huge = card_html(app)
    assert "espresso" in cup
    assert "This file is 21 MB; the limit is 20 MB per photo." in huge


def test_a_slow_conversion_blocks_neither_the_kernel_nor_unrelated_controls(
    classifier: Classifier, photos: dict[str, Path]
) -> None:
    converting = threading.Event()
    finish = threading.Event()

    def slow(model: str, on_progress: ProgressCallback) -> Classifier:
        converting.set()
        on_progress("Converting the model for fast inference…", 0.5)
        assert finish.wait(timeout=60)
        return Classifier(model=model, weights=None)

    app = build_app(classifier, load_classifier=slow)
    upload_files(app, *_two_photos(photos))
    started = time.monotonic()
    app.model_choice.value = "MobileNet"  # the event handler returns at once...
    assert time.monotonic() - started < 1
    assert converting.wait(timeout=30)
    assert "Converting the model" in app.status.value and app.photo_input.disabled

    card = _cards(app)[0]
    app.guesses.value = 2  # ...and guesses and heatmaps still answer during the conversion
    card.heatmap.value = True
    deadline = time.monotonic() + 30
    while ("mn-heatmap" not in card.photo.value or card.guesses.value.count("<li>") != 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "mn-heatmap" in card.photo.value and card.guesses.value.count("<li>") == 2

    finish.set()
    app.wait()
    assert all("Answered by MobileNet<" in card for card in card_html(app))
    assert not app.photo_input.disabled


def test_a_card_is_five_widgets_and_a_refusal_two(app: ClassifierApp, photos: dict[str, Path]) -> None:
    # Each widget costs a message to make and one to close; layouts and styles are shared by all cards.
    from ipywidgets.widgets.widget import _instances

    before = len(_instances)
    upload_files(app, *[(f"p{n}.png", photos["camera"].read_bytes()) for n in range(10)], *[("bad.txt", b"no")] * 10)
    assert len(_instances) - before == 10 * 5 + 10 * 2


def test_cards_are_sent_whole_when_created(app: ClassifierApp, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # Jupyter Server drops messages past a rate; 100 cards must cost their creation, not a stream of updates.
    updates: list[str] = []
    original = widgets.Widget.send_state

    def counted(widget: widgets.Widget, key: object = None) -> None:
        updates.append(type(widget).__name__)
        original(widget, key)

    monkeypatch.setattr(widgets.Widget, "send_state", counted)
    counts = []
    for files in (4, 60):
        updates.clear()
        upload_files(app, *[(f"p{n}.png", photos["camera"].read_bytes()) for n in range(files - 1)], ("bad.txt", b"no"))
        assert len(_cards(app)) == files
        counts.append((updates.count("FloatProgress"), len(updates) - updates.count("FloatProgress")))
    (few_progress, few_others), (many_progress, many_others) = counts
    assert many_others == few_others  # status, controls, list of cards, CSV link: the same for 4 or 60 cards
    assert many_progress <= 52  # the bar moves in steps of at least 2%


def test_the_connection_lost_notice_says_what_to_do_in_voila_and_in_a_notebook(app: ClassifierApp) -> None:
    notice = next(child for child in app.widget.children if "mn-connection-lost" in child._dom_classes)
    assert "Please reload the page." in notice.value and "Run the cell again" in notice.value
    style = app.widget.children[0].value
    assert "body[data-voila] .mn-connection-lost .mn-in-notebook" in style


def test_the_app_shows_a_session_built_elsewhere(classifier: Classifier, photos: dict[str, Path]) -> None:
    session = Session(classifier)
    session.classify([("cup.png", photos["coffee"].read_bytes())])
    app = ClassifierApp(session)
    app.wait()
    assert app.session is session and app.guesses.value == session.top_k
    assert "espresso" in card_html(app)[0] and "Done: 1 photo classified." in app.status.value
