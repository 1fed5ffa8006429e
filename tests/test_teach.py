"""Tests for classifier/teach.py: classes of your own, taught from real photos.

scikit-image ships textures (brick, grass, gravel: different crops are different
pixels) and a stereo pair of photos of one motorcycle, so what is held out was
never seen while teaching.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classifier import Classifier, Evaluation, ImageError, TaughtClassifier, TeachingError, load_taught
from classifier.teach import (
    MAX_CLASSES,
    MAX_PHOTOS,
    REGRESSION_FROM,
    _cross_validate,
    _Examples,
    photo_features,
    teach_features,
)
from tests.conftest import CANVAS, CORNERS, SKIMAGE_DATA, encode, heatmap_mass_per_corner

TEXTURES = ("brick", "grass", "gravel")


def _crops(name: str, count: int, *, offset: float = 0.0, size: float = 0.4) -> list[Image.Image]:
    """``count`` crops of a texture along its diagonal, starting at ``offset`` (a fraction of the side)."""
    picture = Image.open(SKIMAGE_DATA / f"{name}.png").convert("RGB")
    side = picture.width
    step = (1 - size - offset) / max(count - 1, 1)
    return [
        picture.crop((int((offset + i * step) * side), int((offset + i * step) * side),
                      int((offset + i * step + size) * side), int((offset + i * step + size) * side)))
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def textures(classifier: Classifier) -> TaughtClassifier:
    """Taught from the top-left corner of each texture: one or two photos per class."""
    return classifier.teach({name: _crops(name, 2 if name != "gravel" else 1, size=0.3) for name in TEXTURES})


def test_classes_taught_from_one_or_two_photos_recognise_photos_never_seen(textures: TaughtClassifier) -> None:
    assert textures.classes == TEXTURES and textures.method == "nearest class mean"
    for name in TEXTURES:
        for held_out in [Image.open(SKIMAGE_DATA / f"{name}.png").convert("RGB").crop((300, 300, 512, 512))]:
            assert textures.classify(held_out, top_k=1)[0].label == name


def test_a_different_photo_of_the_same_thing_is_recognised(classifier: Classifier, photos: dict[str, Path]) -> None:
    taught = classifier.teach({
        "motorcycle": [SKIMAGE_DATA / "motorcycle_left.png"], "cat": [photos["chelsea"]], "espresso": [photos["coffee"]],
    })
    assert taught.classify(SKIMAGE_DATA / "motorcycle_right.png", top_k=1)[0].label == "motorcycle"


def test_predictions_name_the_classes_in_order_of_probability(textures: TaughtClassifier) -> None:
    predictions = textures.classify(_crops("grass", 1, offset=0.5)[0], top_k=3)
    assert [p.label for p in predictions][0] == "grass"
    assert sorted(p.label for p in predictions) == sorted(TEXTURES)
    assert all(textures.classes[p.index] == p.label for p in predictions)
    assert [p.probability for p in predictions] == sorted((p.probability for p in predictions), reverse=True)
    assert sum(p.probability for p in predictions) == pytest.approx(1.0, abs=1e-5)
    assert len(textures.classify(_crops("grass", 1)[0], top_k=1)) == 1


def test_the_heatmap_finds_a_taught_class_where_it_is(classifier: Classifier) -> None:
    taught = classifier.teach({"brick": _crops("brick", 2), "plain": [Image.new("RGB", (200, 200), (128, 128, 128))]})
    canvas = Image.new("RGB", (CANVAS, CANVAS), (128, 128, 128))
    canvas.paste(_crops("brick", 1, offset=0.5, size=0.3)[0].resize((CANVAS // 2, CANVAS // 2)), CORNERS["bottom right"])
    explanation = taught.explain(canvas)
    assert explanation.predictions[0].label == "brick"
    assert explanation.heatmap.shape == (7, 7) and explanation.heatmap.max() == pytest.approx(1.0)
    mass = heatmap_mass_per_corner(explanation.heatmap)
    assert mass["bottom right"] > 0.6, mass  # most of the evidence where the brick is


def test_a_batch_keeps_its_order_and_reports_a_bad_file(textures: TaughtClassifier) -> None:
    results = textures.classify_batch([_crops("gravel", 1, offset=0.6)[0], b"not a photo", _crops("brick", 1, offset=0.6)[0]])
    assert results[0][0].label == "gravel" and isinstance(results[1], ImageError) and results[2][0].label == "brick"


def test_with_enough_photos_a_logistic_regression_is_taught_and_cross_validated(classifier: Classifier) -> None:
    taught = classifier.teach({name: _crops(name, REGRESSION_FROM + 1, size=0.25) for name in ("brick", "gravel")})
    assert taught.method == "logistic regression"
    assert taught.classify(_crops("gravel", 1, offset=0.7, size=0.3)[0], top_k=1)[0].label == "gravel"
    evaluation = taught.evaluate()
    assert evaluation.method == "5-fold" and evaluation.photos == 2 * (REGRESSION_FROM + 1)
    assert evaluation.accuracy >= 0.9 and set(evaluation.recall) == {"brick", "gravel"}


def test_cross_validation_matches_a_matrix_worked_out_by_hand() -> None:
    # Six photos, two per class, in two dimensions; each photo's mirror image is the same point.
    # Leave-one-out with class means: held out, B2 = (0.8, 0.2) is nearer the mean of A (about
    # (0.995, 0.05)) than what is left of B, B1 = (0, 1); every other photo is nearest its own class.
    points = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.8, 0.2], [-1, 0], [-0.9, -0.1]], dtype=np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    examples = _Examples(np.repeat(points, 2, axis=0), np.repeat([0, 0, 1, 1, 2, 2], 2), np.repeat(np.arange(6), 2))

    evaluation = _cross_validate(examples, ("A", "B", "C"))

    assert evaluation.method == "leave-one-out"
    np.testing.assert_array_equal(evaluation.confusion, [[2, 0, 0], [1, 1, 0], [0, 0, 2]])
    assert evaluation.accuracy == pytest.approx(5 / 6) and evaluation.recall == {"A": 1.0, "B": 0.5, "C": 1.0}
    assert str(evaluation) == "83% of 6 photos right (leave-one-out cross-validation)"


def test_a_class_with_one_photo_cannot_be_cross_validated(textures: TaughtClassifier) -> None:
    with pytest.raises(TeachingError, match="every class needs at least two photos; “gravel” has one"):
        textures.evaluate()


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ({"only": [b"x"]}, "at least two classes"),
        ({f"class {i}": [b"x"] for i in range(MAX_CLASSES + 1)}, "at most 20"),
        ({"cat": [b"x"] * (MAX_PHOTOS + 1), "dog": [b"x"]}, "at most 500"),
        ({"cat": [b"x"], "  ": [b"x"]}, "needs a name"),
        ({"Cat": [b"x"], " cat ": [b"x"]}, "Two classes are called “cat”"),
    ],
    ids=["one class", "21 classes", "501 photos", "empty name", "same name twice"],
)
def test_examples_that_cannot_teach_are_refused_in_plain_words(
    classifier: Classifier, examples: dict[str, list[bytes]], message: str
) -> None:
    with pytest.raises(TeachingError, match=message):
        classifier.teach(examples)


def test_unreadable_photos_are_skipped_and_reported_and_the_rest_teach(classifier: Classifier, tmp_path: Path) -> None:
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"not a jpeg at all")
    taught = classifier.teach({"brick": [*_crops("brick", 1), broken], "grass": [b"", *_crops("grass", 1)]})
    assert [(skip.class_name, skip.photo) for skip in taught.skipped] == [("brick", "holiday.jpg"), ("grass", "photo 1")]
    assert "not an image this app can read" in taught.skipped[0].reason and "empty" in taught.skipped[1].reason
    assert taught.classify(_crops("grass", 1, offset=0.6)[0], top_k=1)[0].label == "grass"


def test_a_class_without_a_readable_photo_is_refused_with_why(classifier: Classifier) -> None:
    with pytest.raises(TeachingError, match="“dog” has no photo this app can read: photo 1 in “dog”: This file is empty"):
        classifier.teach({"cat": _crops("brick", 1), "dog": [b""]})


def test_a_saved_classifier_loads_and_answers_the_same(textures: TaughtClassifier, classifier: Classifier, tmp_path: Path) -> None:
    path = tmp_path / "my-classes.npz"
    textures.save(path)
    assert path.stat().st_size < 50_000  # names and a small linear model: no photos
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    loaded = load_taught(path, classifier=classifier)
    photo = _crops("brick", 1, offset=0.6)[0]
    assert loaded.classes == textures.classes and loaded.classify(photo) == textures.classify(photo)
    assert load_taught(path.read_bytes(), classifier=classifier).classify(photo) == textures.classify(photo)
    with pytest.raises(TeachingError, match="photos are not in the file"):
        loaded.evaluate()


def _saved(textures: TaughtClassifier) -> bytes:
    buffer = io.BytesIO()
    textures.save(buffer)
    return buffer.getvalue()


def _rewritten(data: bytes, **changes: np.ndarray) -> bytes:
    with np.load(io.BytesIO(data)) as saved:
        arrays = {key: saved[key] for key in saved.files}
    arrays.update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "damage",
    ["cut short", "random bytes", "a photo", "pickled object", "missing array", "wrong shape", "not finite", "unknown model"],
)
def test_a_damaged_or_foreign_file_is_refused_with_one_plain_message(
    textures: TaughtClassifier, classifier: Classifier, damage: str
) -> None:
    data = _saved(textures)
    crafted = {
        "cut short": lambda: data[: len(data) // 2],
        "random bytes": lambda: np.random.default_rng(0).bytes(4000),
        "a photo": lambda: encode(Image.new("RGB", (8, 8)), "PNG"),
        "pickled object": lambda: _rewritten(data, classes=np.array([object(), object(), object()], dtype=object)),
        "missing array": lambda: _without(data, "bias"),
        "wrong shape": lambda: _rewritten(data, weights=np.zeros((10, 3), np.float32)),
        "not finite": lambda: _rewritten(data, bias=np.array([np.nan, 0, 0], np.float32)),
        "unknown model": lambda: _rewritten(data, base_model=np.array("ResNet50")),
    }[damage]()
    with pytest.raises(TeachingError, match="not a taught classifier this app can open"):
        load_taught(crafted, classifier=classifier)


def _without(data: bytes, key: str) -> bytes:
    with np.load(io.BytesIO(data)) as saved:
        arrays = {name: saved[name] for name in saved.files if name != key}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_file_taught_on_another_network_says_so(textures: TaughtClassifier) -> None:
    untrained = Classifier(weights=None)  # MobileNetV2 too, but other weights: other features
    with pytest.raises(TeachingError, match="taught on MobileNetV2 with other weights"):
        load_taught(_saved(textures), classifier=untrained)


def test_an_evaluation_is_plain_numbers() -> None:
    evaluation = Evaluation(("a", "b"), np.array([[3, 1], [0, 4]]), "leave-one-out")
    assert (evaluation.photos, evaluation.accuracy) == (8, 0.875)
    assert evaluation.recall == {"a": 0.75, "b": 1.0}


def test_teaching_from_features_computed_earlier_is_teaching_from_photos(classifier: Classifier) -> None:
    # The app computes each photo's features when it is added, and teaches from them when asked.
    examples = {name: _crops(name, 2, size=0.3) for name in TEXTURES}
    features = {
        name: photo_features(classifier, [classifier.prepare(crop) for crop in crops]) for name, crops in examples.items()
    }
    assert all(pair.shape == (2, classifier.feature_channels) for pairs in features.values() for pair in pairs)
    from_features, from_photos = teach_features(classifier, features), classifier.teach(examples)
    held_out = _crops("gravel", 1, offset=0.6)[0]
    assert from_features.classify(held_out, top_k=3) == from_photos.classify(held_out, top_k=3)
    assert np.array_equal(from_features.evaluate().confusion, from_photos.evaluate().confusion)


def test_a_saved_classifier_finds_its_network_through_a_function(textures: TaughtClassifier, classifier: Classifier) -> None:
    asked: list[str] = []

    def network(model: str) -> Classifier:
        asked.append(model)
        return classifier

    assert load_taught(_saved(textures), classifier=network).base is classifier and asked == ["MobileNetV2"]
