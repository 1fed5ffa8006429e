"""Tests for classifier/teach_ui.py: the Teach tab, driven from Python by clicking and sending messages."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from classifier import Classifier, load_taught
from classifier.conversion import ProgressCallback
from classifier.teach_ui import ClassBox, TeachApp
from classifier.ui import Card, ClassifierApp, RefusalCard, build_app
from tests.conftest import BrowserSide, encode


def _half(path: Path, side: str) -> bytes:
    picture = Image.open(path).convert("RGB")
    box = (0, 0, picture.width // 2 + 40, picture.height) if side == "left" else \
        (picture.width // 2 - 40, 0, picture.width, picture.height)
    return encode(picture.crop(box), "JPEG", quality=92)


def _mirror(path: Path) -> bytes:
    return encode(ImageOps.mirror(Image.open(path).convert("RGB")), "PNG")


def _text(value: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", value)).strip()


@pytest.fixture
def app(classifier: Classifier) -> ClassifierApp:
    built = build_app(classifier)
    built.wait()
    return built


@pytest.fixture
def teach(app: ClassifierApp) -> TeachApp:
    app.tabs.selected_index = 1
    assert app.teach is not None
    return app.teach


def _boxes(teach: TeachApp) -> list[ClassBox]:
    return list(teach.class_boxes.children)


def _add_photos(teach: TeachApp, box: ClassBox, *files: tuple[str, bytes]) -> None:
    BrowserSide(box.photo_input).upload(list(files))
    teach.wait()


def _rename(teach: TeachApp, box: ClassBox, name: str) -> None:
    box.name.value = name
    teach.wait()


def _cat_and_espresso(teach: TeachApp, photos: dict[str, Path]) -> None:
    cat, cup = _boxes(teach)
    _rename(teach, cat, "cat")
    _rename(teach, cup, "espresso")
    _add_photos(teach, cat, ("cat-left.jpg", _half(photos["chelsea"], "left")), ("cat-mirror.png", _mirror(photos["chelsea"])))
    _add_photos(teach, cup, ("cup-left.jpg", _half(photos["coffee"], "left")), ("cup-mirror.png", _mirror(photos["coffee"])))


def _train(teach: TeachApp) -> None:
    teach.train.click()
    teach.wait()


def test_the_teach_tab_is_built_once_when_first_opened(app: ClassifierApp) -> None:
    assert app.tabs.titles == ("Classify", "Teach") and app.tabs.selected_index == 0 and app.teach is None
    app.tabs.selected_index = 1
    teach = app.teach
    assert isinstance(teach, TeachApp) and app.tabs.children[1] is teach.widget
    app.tabs.selected_index = 0
    app.tabs.selected_index = 1
    assert app.teach is teach and [box.name.value for box in _boxes(teach)] == ["Class 1", "Class 2"]


def test_a_visitor_who_only_classifies_never_loads_the_teach_tab() -> None:
    script = (
        "import sys\n"
        "from classifier import Classifier\n"
        "from classifier.ui import build_app\n"
        "app = build_app(Classifier()); app.wait()\n"
        "print(sorted(name for name in ('classifier.teach_ui', 'classifier.teach_session', 'sklearn') "
        "if name in sys.modules))\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert shown.stdout.strip() == "[]"


def test_teach_two_classes_train_try_a_photo_download_and_open(
    app: ClassifierApp, teach: TeachApp, photos: dict[str, Path], classifier: Classifier
) -> None:
    _cat_and_espresso(teach, photos)
    assert [len(box.strip.photos) for box in _boxes(teach)] == [2, 2]
    _train(teach)
    assert "Trained on MobileNetV2 in" in teach.status.value
    assert "Accuracy: 100%" in teach.evaluation.value and "leave-one-out" in teach.evaluation.value
    (chart,) = teach.confusion.outputs
    assert Image.open(io.BytesIO(base64.b64decode(chart["data"]["image/png"]))).format == "PNG"

    BrowserSide(teach.try_input).upload([("which.jpg", _half(photos["chelsea"], "right")), ("notes.txt", b"no")])
    teach.wait()
    card, refusal = teach.cards.children
    assert isinstance(card, Card) and isinstance(refusal, RefusalCard)
    assert "Most likely <b>cat</b>" in card.guesses.value and "espresso" in card.guesses.value
    assert "Answered by your classifier (on MobileNetV2)" in card.guesses.value
    assert "Done: 1 photo classified, 1 could not be read." in teach.try_note.value
    card.heatmap.value = True
    teach.wait()
    assert "mn-heatmap" in card.photo.value and "coloured where the model saw cat" in card.photo.value

    link = re.search(r"download='taught-classifier.npz' href='data:application/octet-stream;base64,([^']+)'",
                     teach.download.value)
    saved = base64.b64decode(link.group(1))
    assert load_taught(saved, classifier=classifier).classes == ("cat", "espresso")

    BrowserSide(teach.open_input).upload([("taught-classifier.npz", saved)])
    teach.wait()
    assert "Opened taught-classifier.npz: cat, espresso (taught on MobileNetV2)" in teach.keep_note.value
    assert "not in the file" in teach.evaluation.value and teach.confusion.outputs == ()
    assert "Most likely <b>cat</b>" in teach.cards.children[0].guesses.value
    assert app.cards.children == ()  # the Classify tab is left alone


def test_classes_are_added_up_to_ten_renamed_and_removed(teach: TeachApp) -> None:
    assert all(box.remove.disabled for box in _boxes(teach))  # two classes stay
    for _ in range(8):
        teach.add_class.click()
        teach.wait()
    assert len(_boxes(teach)) == 10 and teach.add_class.disabled
    assert not any(box.remove.disabled for box in _boxes(teach))
    third = _boxes(teach)[2]
    _rename(teach, third, "  hot dog ")
    assert teach.session.classes[2].name == "  hot dog "
    third.remove.click()
    teach.wait()
    assert third not in _boxes(teach) and third.comm is None and third.strip.comm is None
    assert len(_boxes(teach)) == 9 and not teach.add_class.disabled


def test_a_photo_is_removed_from_its_strip(teach: TeachApp, photos: dict[str, Path]) -> None:
    _cat_and_espresso(teach, photos)
    _train(teach)
    cat = _boxes(teach)[0]
    first = cat.strip.photos[0]["id"]
    cat.strip._handle_msg({"content": {"data": {"method": "custom", "content": {"type": "remove", "photo": first}}},
                           "buffers": []})
    teach.wait()
    assert [photo["name"] for photo in cat.strip.photos] == ["cat-mirror.png"]
    assert len(teach.session.classes[0].photos) == 1
    assert "Removed the photo. Press Train to teach the classes as they are now." in teach.status.value


def test_bad_input_gets_a_plain_message_where_it_happened_and_the_tab_keeps_working(
    teach: TeachApp, photos: dict[str, Path]
) -> None:
    BrowserSide(teach.try_input).upload([("cup.png", photos["coffee"].read_bytes())])
    teach.wait()
    assert "press Train first" in teach.try_note.value and "role='alert'" in teach.try_note.value

    cat, dog = _boxes(teach)
    _rename(teach, cat, "cat")
    _rename(teach, dog, "dog")
    _add_photos(teach, cat, ("cat.png", photos["chelsea"].read_bytes()), ("notes.txt", b"shopping list"))
    assert "Added 1 photo to “cat”. 1 file could not be read (notes.txt: This file is not an image" in teach.status.value
    _train(teach)
    assert "“dog” has no photos yet" in teach.status.value and teach.evaluation.value == ""

    BrowserSide(teach.open_input).upload([("holiday.npz", photos["coffee"].read_bytes())])
    teach.wait()
    assert "not a taught classifier this app can open" in teach.keep_note.value

    _add_photos(teach, dog, ("dog.png", photos["grace_hopper"].read_bytes()))
    _train(teach)
    assert "Trained on MobileNetV2" in teach.status.value and not teach.train.disabled
    assert "needs at least two photos" in teach.evaluation.value


def test_a_second_file_to_open_is_refused_in_the_browser_with_a_message(teach: TeachApp) -> None:
    BrowserSide(teach.open_input).message({"type": "refused", "files": 2, "bytes": 10})
    assert "one saved classifier (.npz file) at a time" in teach.keep_note.value


def test_names_a_visitor_types_are_shown_as_text(teach: TeachApp, photos: dict[str, Path]) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    cat, cup = _boxes(teach)
    _rename(teach, cat, hostile)
    _add_photos(teach, cat, ("a.png", photos["chelsea"].read_bytes()), ("b.png", _mirror(photos["chelsea"])))
    _add_photos(teach, cup, ("c.png", photos["coffee"].read_bytes()), ("d.png", _mirror(photos["coffee"])))
    _train(teach)
    BrowserSide(teach.try_input).upload([("e.png", photos["chelsea"].read_bytes())])
    teach.wait()
    shown = teach.evaluation.value + teach.cards.children[0].guesses.value + teach.status.value
    assert hostile not in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown


def test_training_uses_the_model_chosen_in_the_classify_tab(classifier: Classifier, photos: dict[str, Path]) -> None:
    def untrained(model: str, on_progress: ProgressCallback) -> Classifier:
        return Classifier(model=model, weights=None)

    app = build_app(classifier, load_classifier=untrained)
    app.wait()
    app.tabs.selected_index = 1
    teach = app.teach
    _cat_and_espresso(teach, photos)
    app.model_choice.value = "MobileNet"
    app.wait()
    _train(teach)
    assert "Trained on MobileNet in" in teach.status.value


def test_adding_and_removing_classes_and_trying_photos_keep_the_widget_count_flat(
    teach: TeachApp, photos: dict[str, Path]
) -> None:
    from ipywidgets.widgets.widget import _instances

    _cat_and_espresso(teach, photos)
    _train(teach)
    baseline = 0
    for round_number in range(21):
        teach.add_class.click()
        teach.wait()
        _boxes(teach)[-1].remove.click()
        teach.wait()  # while the app works its inputs are off, and an upload is refused as busy
        BrowserSide(teach.try_input).upload([("cup.png", photos["coffee"].read_bytes()), ("bad.txt", b"no")])
        teach.wait()
        baseline = baseline or len(_instances)  # after the first round: two cards shown
    assert len(_instances) == baseline and len(teach.cards.children) == 2
