"""Tests for classifier/teach_session.py: what a visitor teaches in the app, without any widget."""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from classifier import Classifier, ModelUnavailableError, TeachingError, load_taught
from classifier.conversion import ProgressCallback
from classifier.plotting import figure_to_png, plot_confusion
from classifier.session import MAX_FILES, Refusal, Session, UploadError
from classifier.teach import MAX_PHOTOS
from classifier.teach_session import MAX_APP_CLASSES, MAX_SAVED_BYTES, THUMBNAIL_SIZE, TeachSession
from tests.conftest import encode


def _half(path: Path, side: str) -> bytes:
    """The left or right half of a photo, as an uploaded file: two different photos of one thing."""
    picture = Image.open(path).convert("RGB")
    box = (0, 0, picture.width // 2 + 40, picture.height) if side == "left" else \
        (picture.width // 2 - 40, 0, picture.width, picture.height)
    return encode(picture.crop(box), "JPEG", quality=92)


@pytest.fixture
def teaching(classifier: Classifier) -> TeachSession:
    return TeachSession(Session(classifier))


def _name_classes(teaching: TeachSession, *names: str) -> list[int]:
    while len(teaching.classes) < len(names):
        teaching.add_class()
    ids = [photo_class.id for photo_class in teaching.classes]
    for class_id, name in zip(ids, names):
        teaching.rename_class(class_id, name)
    return ids


def _teach_three(teaching: TeachSession, photos: dict[str, Path], *, per_class: int = 1) -> list[int]:
    """Cat, espresso and rocket, from the left half of a photo of each (and its mirror image if two)."""
    ids = _name_classes(teaching, "cat", "espresso", "rocket")
    for class_id, key in zip(ids, ("chelsea", "coffee", "rocket")):
        left = _half(photos[key], "left")
        files = [(f"{key}-left.jpg", left)]
        if per_class == 2:
            files.append((f"{key}-mirror.jpg", encode(ImageOps.mirror(Image.open(photos[key]).convert("RGB")), "PNG")))
        assert teaching.add_photos(class_id, files) == ()
    return ids


def test_it_starts_with_two_named_classes_and_takes_up_to_ten(teaching: TeachSession) -> None:
    assert [photo_class.name for photo_class in teaching.classes] == ["Class 1", "Class 2"]
    for _ in range(MAX_APP_CLASSES - 2):
        teaching.add_class()
    with pytest.raises(TeachingError, match="at most 10 classes"):
        teaching.add_class()
    assert len(teaching.classes) == MAX_APP_CLASSES == 10


def test_two_classes_stay(teaching: TeachSession) -> None:
    third = teaching.add_class()
    teaching.remove_class(third.id)
    with pytest.raises(TeachingError, match="at least 2 classes"):
        teaching.remove_class(teaching.classes[0].id)
    assert len(teaching.classes) == 2


def test_a_name_keeps_printable_characters_and_sixty_of_them(teaching: TeachSession) -> None:
    class_id = teaching.classes[0].id
    assert teaching.rename_class(class_id, "hot\x00 dog\u202e" + "!" * 100) == "hot dog" + "!" * 53
    assert teaching.classes[0].name == "hot dog" + "!" * 53


def test_photos_are_kept_as_small_thumbnails_and_a_bad_file_is_refused_alone(
    teaching: TeachSession, photos: dict[str, Path]
) -> None:
    class_id = teaching.classes[0].id
    refused = teaching.add_photos(class_id, [
        ("cat.png", photos["chelsea"].read_bytes()), ("notes.txt", b"shopping list"), ("cup.png", photos["coffee"].read_bytes()),
    ])
    assert [refusal.name for refusal in refused] == ["notes.txt"]
    assert "not an image this app can read" in refused[0].message
    shown = teaching.classes[0].photos
    assert [photo.photo.name for photo in shown] == ["cat.png", "cup.png"]
    thumbnail = Image.open(io.BytesIO(shown[0].photo.jpeg))
    assert thumbnail.format == "JPEG" and max(thumbnail.size) == THUMBNAIL_SIZE


def test_an_upload_over_the_limits_is_refused_whole(teaching: TeachSession, photos: dict[str, Path]) -> None:
    class_id = teaching.classes[0].id
    with pytest.raises(UploadError, match="one upload can hold 100"):
        teaching.add_photos(class_id, [("a.png", b"x")] * (MAX_FILES + 1))
    assert teaching.photo_count == 0


def test_the_classes_hold_at_most_five_hundred_photos(teaching: TeachSession, photos: dict[str, Path]) -> None:
    small = encode(Image.open(photos["coffee"]).convert("RGB").resize((64, 64)), "JPEG")
    first, second = (photo_class.id for photo_class in teaching.classes)
    for _ in range(MAX_PHOTOS // MAX_FILES):
        teaching.add_photos(first, [("cup.jpg", small)] * MAX_FILES)
    assert teaching.photo_count == MAX_PHOTOS == 500
    with pytest.raises(UploadError, match="hold 500 photos in all; they have 500"):
        teaching.add_photos(second, [("cup.jpg", small)])


def test_a_photo_is_removed_by_its_id(teaching: TeachSession, photos: dict[str, Path]) -> None:
    class_id = teaching.classes[0].id
    teaching.add_photos(class_id, [("a.png", photos["coffee"].read_bytes()), ("b.png", photos["camera"].read_bytes())])
    first = teaching.classes[0].photos[0]
    teaching.remove_photo(class_id, first.id)
    teaching.remove_photo(class_id, 10**9)  # unknown: nothing happens
    assert [photo.photo.name for photo in teaching.classes[0].photos] == ["b.png"]


def test_classes_taught_from_one_photo_each_recognise_other_photos(
    teaching: TeachSession, photos: dict[str, Path]
) -> None:
    _teach_three(teaching, photos)
    training = teaching.train()
    assert training.taught.classes == ("cat", "espresso", "rocket") and training.evaluation is None
    assert "needs at least two photos" in training.note
    entries = teaching.try_photos([
        ("cat.jpg", _half(photos["chelsea"], "right")), ("cup.jpg", _half(photos["coffee"], "right")),
        ("rocket.jpg", _half(photos["rocket"], "right")), ("notes.txt", b"no"),
    ])
    assert [entry.predictions(1)[0].label for entry in entries[:3]] == ["cat", "espresso", "rocket"]
    assert isinstance(entries[3], Refusal)
    assert all(entry.model == "your classifier (on MobileNetV2)" for entry in entries[:3])
    assert entries[0].predictions(1)[0].label == "cat" and len(entries[0].predictions(10)) == 3


def test_with_two_photos_per_class_it_is_cross_validated(teaching: TeachSession, photos: dict[str, Path]) -> None:
    _teach_three(teaching, photos, per_class=2)
    evaluation = teaching.train().evaluation
    assert evaluation is not None and evaluation.method == "leave-one-out" and evaluation.photos == 6
    assert evaluation.confusion.sum(axis=1).tolist() == [2, 2, 2]


@pytest.mark.parametrize(("names", "message"), [
    (("cat", " CAT "), "Two classes are called “CAT”"),
    (("cat", "   "), "Every class needs a name."),
])
def test_names_that_cannot_name_classes_are_refused_at_training(
    teaching: TeachSession, photos: dict[str, Path], names: tuple[str, str], message: str
) -> None:
    for class_id, name in zip(_name_classes(teaching, *names), names):
        teaching.add_photos(class_id, [(f"{name}.png", photos["coffee"].read_bytes())])
    with pytest.raises(TeachingError, match=message):
        teaching.train()
    assert teaching.training is None


def test_a_class_without_photos_is_named(teaching: TeachSession, photos: dict[str, Path]) -> None:
    first, _ = _name_classes(teaching, "cat", "dog")
    teaching.add_photos(first, [("cat.png", photos["chelsea"].read_bytes())])
    with pytest.raises(TeachingError, match="“dog” has no photos yet"):
        teaching.train()


def test_trying_before_training_says_what_to_do(teaching: TeachSession, photos: dict[str, Path]) -> None:
    with pytest.raises(TeachingError, match="press Train first"):
        teaching.try_photos([("cup.png", photos["coffee"].read_bytes())])


def test_retraining_answers_the_tried_photos_again(teaching: TeachSession, photos: dict[str, Path]) -> None:
    ids = _teach_three(teaching, photos)
    teaching.train()
    teaching.try_photos([("cup.jpg", _half(photos["coffee"], "right"))])
    teaching.remove_class(ids[1])  # espresso
    assert teaching.changed_since_training
    teaching.train()
    assert not teaching.changed_since_training
    assert {p.label for p in teaching.entries[0].predictions(5)} == {"cat", "rocket"}


def test_changes_while_training_leave_the_classifier_marked_as_changed(
    teaching: TeachSession, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _teach_three(teaching, photos)
    original = teaching._features

    def features_then_a_rename(*args: object) -> object:
        computed = original(*args)
        teaching.rename_class(teaching.classes[0].id, "kitten")
        return computed

    monkeypatch.setattr(teaching, "_features", features_then_a_rename)
    assert teaching.train().taught.classes[0] == "cat"
    assert teaching.changed_since_training


def test_a_saved_classifier_opens_in_another_session_and_answers_the_same(
    teaching: TeachSession, classifier: Classifier, photos: dict[str, Path]
) -> None:
    _teach_three(teaching, photos)
    teaching.train()
    tried = [("cup.jpg", _half(photos["coffee"], "right"))]
    before = teaching.try_photos(tried)[0].predictions(3)
    saved = teaching.saved()
    assert len(saved) < 60_000 and load_taught(saved, classifier=classifier).classes == ("cat", "espresso", "rocket")

    other = TeachSession(Session(classifier))
    training = other.open("mine.npz", saved)
    assert training.source == "mine.npz" and training.evaluation is None and "not in the file" in training.note
    after = other.try_photos(tried)[0].predictions(3)
    assert [(p.label, round(p.probability, 5)) for p in after] == [(p.label, round(p.probability, 5)) for p in before]
    assert [photo_class.name for photo_class in other.classes] == ["Class 1", "Class 2"]  # its classes stay


def test_opening_answers_the_tried_photos_with_the_opened_classifier(
    teaching: TeachSession, classifier: Classifier, photos: dict[str, Path]
) -> None:
    _teach_three(teaching, photos)
    teaching.train()
    saved = teaching.saved()
    teaching.remove_class(teaching.classes[2].id)
    teaching.train()
    teaching.try_photos([("rocket.jpg", _half(photos["rocket"], "right"))])
    assert {p.label for p in teaching.entries[0].predictions(5)} == {"cat", "espresso"}
    teaching.open("three.npz", saved)
    assert teaching.entries[0].predictions(1)[0].label == "rocket"


@pytest.mark.parametrize(("content", "message"), [
    (b"PK\x03\x04 not really a zip", "not a taught classifier this app can open"),
    (b"\x00" * (MAX_SAVED_BYTES + 1), "too big for a classifier this app saved"),
    (MAX_SAVED_BYTES * 5, "too big for a classifier this app saved"),  # held back by the browser
    (1000, "did not arrive"),
])
def test_a_file_that_is_not_a_saved_classifier_is_refused_and_nothing_changes(
    teaching: TeachSession, photos: dict[str, Path], content: bytes | int, message: str
) -> None:
    _teach_three(teaching, photos)
    trained = teaching.train()
    with pytest.raises(TeachingError, match=message):
        teaching.open("photo.npz", content)
    assert teaching.training is trained


def test_a_classifier_taught_on_another_network_opens_on_it(classifier: Classifier, photos: dict[str, Path]) -> None:
    loaded: list[str] = []

    def untrained(model: str, on_progress: ProgressCallback) -> Classifier:
        loaded.append(model)
        return Classifier(model=model, weights=None)

    session = Session(classifier, load_classifier=untrained)
    session.switch_model("MobileNetV3Small")
    teaching = TeachSession(session)
    first, second = _name_classes(teaching, "cup", "cat")
    teaching.add_photos(first, [("cup.png", photos["coffee"].read_bytes())])
    teaching.add_photos(second, [("cat.png", photos["chelsea"].read_bytes())])
    saved = teaching.train().taught
    assert saved.base.model_name == "MobileNetV3Small"
    session.switch_model("MobileNetV2")
    buffer = io.BytesIO()
    saved.save(buffer)
    opened = teaching.open("small.npz", buffer.getvalue())
    assert opened.taught.base is saved.base and loaded == ["MobileNetV3Small"]


def test_photos_added_on_one_model_are_read_again_by_another(classifier: Classifier, photos: dict[str, Path]) -> None:
    session = Session(classifier, load_classifier=lambda model, _progress: Classifier(model=model, weights=None))
    teaching = TeachSession(session)
    first, second = _name_classes(teaching, "cup", "cat")
    teaching.add_photos(first, [("cup.png", photos["coffee"].read_bytes())])
    teaching.add_photos(second, [("cat.png", photos["chelsea"].read_bytes())])
    session.switch_model("MobileNet")
    progress: list[tuple[int, int]] = []
    taught = teaching.train(on_progress=lambda done, total: progress.append((done, total))).taught
    assert taught.base.model_name == "MobileNet" and progress[-1] == (2, 2)
    assert taught.base.feature_channels == 1024  # MobileNet's features, not MobileNetV2's 1280


def test_a_model_that_cannot_load_is_said_plainly(photos: dict[str, Path]) -> None:
    def broken(model: str, on_progress: ProgressCallback) -> Classifier:
        raise ModelUnavailableError("The weights file is missing.")

    teaching = TeachSession(Session(load_classifier=broken))
    with pytest.raises(ModelUnavailableError, match="The weights file is missing."):
        teaching.add_photos(teaching.classes[0].id, [("cup.png", photos["coffee"].read_bytes())])


_WRITES: list[str] = []
_WATCHING = threading.local()


def _note_writes(event: str, args: tuple[object, ...]) -> None:
    if not getattr(_WATCHING, "on", False):
        return
    if event == "open" and (any(flag in str(args[1] or "") for flag in "wax+") or (
        isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
    )):
        _WRITES.append(f"open {args[0]} {args[1]}")
    elif event in ("os.rename", "os.remove", "os.mkdir", "shutil.copyfile", "tempfile.mkstemp", "tempfile.mkdtemp"):
        _WRITES.append(f"{event} {args[0]}")


@pytest.fixture
def disk_watch() -> Iterator[list[str]]:
    """Every write to the disk from this thread while the test runs (Python's audit hooks see them all)."""
    if _note_writes not in getattr(sys, "_teach_hooks", ()):
        sys.addaudithook(_note_writes)  # a hook cannot be removed; it only records while watching
        sys._teach_hooks = (_note_writes,)  # type: ignore[attr-defined]
    _WRITES.clear()
    _WATCHING.on = True
    yield _WRITES
    _WATCHING.on = False


def test_the_hook_sees_a_write(disk_watch: list[str], tmp_path: Path) -> None:
    (tmp_path / "written.txt").write_text("yes")
    assert any("written.txt" in write for write in disk_watch)


def test_nothing_a_visitor_teaches_touches_the_disk(
    teaching: TeachSession, photos: dict[str, Path], disk_watch: list[str]
) -> None:
    _teach_three(teaching, photos, per_class=2)
    training = teaching.train()
    figure_to_png(plot_confusion(training.evaluation))
    teaching.try_photos([("cup.jpg", _half(photos["coffee"], "right"))])
    teaching.open("again.npz", teaching.saved())
    assert disk_watch == []
    assert np.isfinite(training.evaluation.accuracy)
