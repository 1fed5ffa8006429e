"""Tests for classifier/model.py with the real MobileNetV2 weights."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classifier import Classifier, ImageError, Prediction
from classifier.model import preprocess
from tests.conftest import encode

KNOWN_ANSWERS = {
    "grace_hopper": "military uniform",
    "coffee": "espresso",
    "rocket": "missile",
    "camera": "tripod",
}


@pytest.mark.parametrize("photo, expected", sorted(KNOWN_ANSWERS.items()))
def test_real_photos_get_their_known_answer_first(
    classifier: Classifier, photos: dict[str, Path], photo: str, expected: str
) -> None:
    assert classifier.classify(photos[photo], top_k=1)[0].label == expected


def test_the_cat_is_seen_as_a_cat(classifier: Classifier, photos: dict[str, Path]) -> None:
    cats = {"tabby cat", "a cat having a striped coat", "Egyptian Mau", "Persian cat", "Siamese cat"}
    assert classifier.classify(photos["chelsea"], top_k=1)[0].label in cats


def test_grace_hopper_matches_the_published_model(classifier: Classifier, photos: dict[str, Path]) -> None:
    best = classifier.classify(photos["grace_hopper"])[0]
    assert best == Prediction("military uniform", best.probability, 652)
    assert 0.55 < best.probability < 0.8  # the published model gives about 0.65; these weights 0.675


def test_bytes_path_and_image_sources_agree(classifier: Classifier, photos: dict[str, Path]) -> None:
    path = photos["coffee"]
    from_path = classifier.classify(path)
    from_bytes = classifier.classify(path.read_bytes())
    from_image = classifier.classify(Image.open(path))
    assert from_path == from_bytes
    assert [p.index for p in from_image] == [p.index for p in from_path]
    assert from_image[0].probability == pytest.approx(from_path[0].probability, abs=1e-5)


@pytest.mark.parametrize("top_k", [1, 5, 10])
def test_top_k_predictions_sorted_by_probability(classifier: Classifier, photos: dict[str, Path], top_k: int) -> None:
    predictions = classifier.classify(photos["rocket"], top_k=top_k)
    probabilities = [p.probability for p in predictions]
    assert len(predictions) == top_k
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert len({p.index for p in predictions}) == top_k


def test_all_probabilities_sum_to_one(classifier: Classifier, photos: dict[str, Path]) -> None:
    everything = classifier.classify(photos["camera"], top_k=1000)
    assert sum(p.probability for p in everything) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("top_k", [0, -1, 1001])
def test_top_k_out_of_range_says_what_it_got(classifier: Classifier, photos: dict[str, Path], top_k: int) -> None:
    with pytest.raises(ValueError, match=f"got {top_k}"):
        classifier.classify(photos["camera"], top_k=top_k)


def test_unusable_input_raises_image_error(classifier: Classifier) -> None:
    with pytest.raises(ImageError, match="not an image"):
        classifier.classify(b"this is a text file, not a photo")


def test_batch_keeps_order_and_isolates_broken_files(classifier: Classifier, photos: dict[str, Path]) -> None:
    sources = [photos["coffee"], b"", photos["camera"], b"GIF89a broken", photos["grace_hopper"]] * 3
    results = classifier.classify_batch(sources, top_k=3)
    assert len(results) == len(sources)
    for source, result in zip(sources, results):
        if isinstance(source, bytes):
            assert isinstance(result, ImageError)
        else:
            assert [p.label for p in result] == [p.label for p in classifier.classify(source, top_k=3)]


def test_batch_reports_progress_up_to_the_total(classifier: Classifier, photos: dict[str, Path]) -> None:
    seen: list[tuple[int, int]] = []
    classifier.classify_batch([photos["camera"]] * 11, on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (11, 11)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_batch_of_nothing_is_empty(classifier: Classifier) -> None:
    assert classifier.classify_batch([]) == []


def test_batch_predictions_match_single_ones(classifier: Classifier, photos: dict[str, Path]) -> None:
    batch = classifier.classify_batch([photos["chelsea"], photos["rocket"]], top_k=5)
    single = [classifier.classify(photos["chelsea"]), classifier.classify(photos["rocket"])]
    for from_batch, alone in zip(batch, single):
        assert [p.index for p in from_batch] == [p.index for p in alone]
        assert from_batch[0].probability == pytest.approx(alone[0].probability, abs=1e-4)


def test_prepared_picture_gives_the_same_answer_as_the_file(classifier: Classifier, photos: dict[str, Path]) -> None:
    prepared = classifier.prepare(photos["grace_hopper"])

    assert prepared.size == (classifier.input_size, classifier.input_size) and prepared.mode == "RGB"
    assert classifier.classify(prepared) == classifier.classify(photos["grace_hopper"])


def test_decoded_picture_is_drafted_for_the_model_and_upright(classifier: Classifier) -> None:
    big = encode(Image.new("RGB", (4000, 3000), (200, 30, 30)), "JPEG")
    assert classifier.decode(big).size == (500, 375)  # 1/8 scale keeps both sides >= 224


def test_loading_the_model_prints_nothing_on_stderr(photos: dict[str, Path]) -> None:
    # LiteRT's C++ logger writes to file descriptor 2, which a notebook shows as an error box.
    code = "from classifier import Classifier; print(Classifier().classify(__import__('sys').argv[1])[0].label)"
    result = subprocess.run([sys.executable, "-c", code, str(photos["coffee"])], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "espresso"
    assert result.stderr == ""


def test_prediction_is_frozen_and_readable() -> None:
    prediction = Prediction("espresso", 0.756, 967)
    assert str(prediction) == "espresso: 75.6%"
    with pytest.raises(dataclasses.FrozenInstanceError):
        prediction.label = "tea"  # type: ignore[misc]


def test_preprocess_scales_whole_picture_to_minus_one_one() -> None:
    picture = Image.new("RGB", (300, 100), (255, 0, 0))
    picture.paste((0, 0, 0), (0, 0, 150, 100))
    tensor = preprocess(picture)
    assert tensor.shape == (224, 224, 3) and tensor.dtype == np.float32
    assert tensor[0, 0].tolist() == [-1.0, -1.0, -1.0]
    assert tensor[-1, -1].tolist() == [1.0, -1.0, -1.0]


def test_grayscale_photo_is_classified(classifier: Classifier, photos: dict[str, Path]) -> None:
    gray = Image.open(photos["camera"])
    assert gray.mode == "L"
    assert classifier.classify(encode(gray, "JPEG"), top_k=1)[0].label == "tripod"


def test_num_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="got 0"):
        Classifier(num_threads=0)
