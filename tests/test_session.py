"""Tests for classifier/session.py: what a visitor has and does, without any widget."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from classifier import Classifier, ModelUnavailableError
from classifier.conversion import ProgressCallback
from classifier.session import (
    DISPLAY_SIZE,
    MAX_FILES,
    MAX_UPLOAD_BYTES,
    Refusal,
    Result,
    Session,
    UploadError,
    upload_problem,
)
from tests.conftest import encode


@pytest.fixture
def session(classifier: Classifier) -> Session:
    return Session(classifier)


def _files(photos: dict[str, Path], *keys: str) -> list[tuple[str, bytes]]:
    return [(f"{key}.img", photos[key].read_bytes()) for key in keys]


def test_classify_gives_one_entry_per_file_in_order(session: Session, photos: dict[str, Path]) -> None:
    files = _files(photos, "grace_hopper", "coffee")
    files.insert(1, ("notes.txt", b"not a photo"))

    entries = session.classify(files)

    assert [entry.name for entry in entries] == ["grace_hopper.img", "notes.txt", "coffee.img"]
    hopper, notes, cup = entries
    assert isinstance(hopper, Result) and hopper.predictions(1)[0].label == "military uniform"
    assert isinstance(notes, Refusal) and "not an image this app can read" in notes.message
    assert isinstance(cup, Result) and cup.model == "MobileNetV2"
    assert session.entries == entries


def test_the_app_answers_exactly_as_the_api(session: Session, classifier: Classifier, photos: dict[str, Path]) -> None:
    (result,) = session.classify(_files(photos, "rocket"))
    assert result.predictions(5) == classifier.classify(photos["rocket"], top_k=5)


def test_a_new_upload_replaces_the_photos(session: Session, photos: dict[str, Path]) -> None:
    session.classify(_files(photos, "grace_hopper", "coffee"))
    session.classify(_files(photos, "camera"))
    assert [entry.name for entry in session.entries] == ["camera.img"]


def test_the_shown_photo_is_a_small_jpeg_without_metadata(session: Session, photos: dict[str, Path]) -> None:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # where the photo was taken
    big = encode(Image.open(photos["rocket"]).resize((3000, 2000)), "JPEG", exif=exif)
    (result,) = session.classify([("trip.jpg", big)])
    shown = Image.open(io.BytesIO(result.photo.jpeg))
    assert shown.format == "JPEG" and max(shown.size) == DISPLAY_SIZE and dict(shown.getexif()) == {}
    heatmap = Image.open(io.BytesIO(result.heatmap_jpeg))
    assert heatmap.size == shown.size


def test_top_k_changes_what_is_shown_not_what_was_computed(session: Session, photos: dict[str, Path]) -> None:
    (result,) = session.classify(_files(photos, "coffee"))
    session.set_top_k(2)
    assert session.top_k == 2 and len(result.predictions(session.top_k)) == 2
    rows = list(csv.reader(io.StringIO(session.csv())))
    assert [row[:3] for row in rows] == [["file name", "rank", "label"], ["coffee.img", "1", "espresso"], ["coffee.img", "2", rows[2][2]]]
    for wrong in (0, 11):
        with pytest.raises(ValueError, match=f"got {wrong}"):
            session.set_top_k(wrong)


def test_unsure_below_thirty_percent(session: Session, photos: dict[str, Path]) -> None:
    from classifier.examples import EXAMPLES

    astronaut = next(example for example in EXAMPLES if example.title == "Astronaut")
    (result,) = session.classify([("astronaut.jpg", astronaut.path.read_bytes())])
    assert result.unsure and result.predictions(1)[0].probability < 0.30


def _untrained(calls: list[str]):  # type: ignore[no-untyped-def]
    def load(model: str, on_progress: ProgressCallback) -> Classifier:
        calls.append(model)
        return Classifier(model=model, weights=None, on_progress=on_progress)

    return load


def test_switching_model_reclassifies_the_same_photos(classifier: Classifier, photos: dict[str, Path]) -> None:
    calls: list[str] = []
    session = Session(classifier, load_classifier=_untrained(calls))
    session.classify(_files(photos, "grace_hopper") + [("notes.txt", b"no")])

    entries = session.switch_model("MobileNet")

    assert session.model == "MobileNet" and calls == ["MobileNet"]
    assert [entry.name for entry in entries] == ["grace_hopper.img", "notes.txt"]
    assert entries[0].model == "MobileNet" and isinstance(entries[1], Refusal)
    session.switch_model("MobileNetV2")
    assert session.entries[0].predictions(1)[0].label == "military uniform" and calls == ["MobileNet"]


def test_a_model_that_fails_to_load_leaves_the_session_as_it_was(classifier: Classifier, photos: dict[str, Path]) -> None:
    def broken(model: str, on_progress: ProgressCallback) -> Classifier:
        raise OSError("disk on fire")

    session = Session(classifier, load_classifier=broken)
    before = session.classify(_files(photos, "coffee"))
    with pytest.raises(ModelUnavailableError, match="The MobileNet model could not be loaded. Please try again later."):
        session.switch_model("MobileNet")
    assert session.model == "MobileNetV2" and session.entries == before


def test_a_model_is_built_once_however_many_ask_at_once() -> None:
    release = threading.Event()
    calls: list[str] = []

    def slow(model: str, on_progress: ProgressCallback) -> Classifier:
        calls.append(model)
        assert release.wait(timeout=60)
        return Classifier(model=model, weights=None)

    session = Session(load_classifier=slow)
    results: list[Classifier] = []
    threads = [threading.Thread(target=lambda: results.append(session.load_model("MobileNet"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    assert calls == ["MobileNet"] and len(results) == 3 and len({id(result) for result in results}) == 1


def test_waiting_for_a_model_another_thread_builds_has_a_time_limit() -> None:
    release = threading.Event()

    def stuck(model: str, on_progress: ProgressCallback) -> Classifier:
        release.wait(timeout=60)
        return Classifier(model=model, weights=None)

    session = Session(load_classifier=stuck)
    builder = threading.Thread(target=session.load_model)
    builder.start()
    try:
        while not session._loading:  # the builder has claimed the model
            threading.Event().wait(0.01)
        with pytest.raises(ModelUnavailableError, match="still being prepared"):
            session.load_model(timeout=0.2)
    finally:
        release.set()
        builder.join(timeout=60)


@pytest.mark.parametrize(
    ("count", "total", "message"),
    [
        (MAX_FILES + 1, 10, "That is 101 files; one upload can hold 100."),
        (2, MAX_UPLOAD_BYTES + 1, "These files add up to 50.0 MB; one upload can carry 50 MB."),
        (MAX_FILES, MAX_UPLOAD_BYTES, None),
    ],
)
def test_upload_limits_have_plain_messages(count: int, total: int, message: str | None) -> None:
    assert upload_problem(count, total) == (message and message + " Please upload fewer photos at a time.")


def test_an_upload_over_the_limits_is_refused_as_a_whole(session: Session, photos: dict[str, Path]) -> None:
    before = session.classify(_files(photos, "coffee"))
    with pytest.raises(UploadError, match="one upload can hold 100"):
        session.classify([("p.png", b"x")] * (MAX_FILES + 1))
    assert session.entries == before


def test_a_file_held_back_by_the_browser_is_refused_with_its_size(session: Session, photos: dict[str, Path]) -> None:
    entries = session.classify([("huge.jpg", 25 * 2**20), *_files(photos, "coffee")])
    assert entries[0] == Refusal("huge.jpg", "This file is 25 MB; the limit is 20 MB per photo. Please upload a smaller copy.")
    assert isinstance(entries[1], Result)
    (lying,) = session.classify([("small.jpg", 100)])
    assert isinstance(lying, Refusal) and "did not arrive" in lying.message


def test_file_names_are_kept_but_control_characters_and_length_are_not(session: Session) -> None:
    (entry,) = session.classify([("a\x00b\x1b[31mc\u202e.jpg" + "x" * 1000, b"no")])
    assert entry.name.startswith("ab[31mc") and "\x00" not in entry.name and len(entry.name) == 300


def test_the_session_imports_no_widgets() -> None:
    code = "import sys, classifier.session; print('ipywidgets' in sys.modules, 'anywidget' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr[-2000:]
