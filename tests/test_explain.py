"""Tests for classifier/explain.py: class activation maps that point at the object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from classifier import Classifier, plot_explanation
from classifier.explain import Head, class_activation_map, overlay_heatmap
from tests.conftest import CANVAS, CORNERS, heatmap_mass_per_corner


def _cat_in_corner(photos: dict[str, Path], corner: str) -> Image.Image:
    """A plain grey canvas with the cat photo filling one quarter of it."""
    canvas = Image.new("RGB", (CANVAS, CANVAS), (128, 128, 128))
    cat = Image.open(photos["chelsea"]).convert("RGB").resize((CANVAS // 2, CANVAS // 2))
    canvas.paste(cat, CORNERS[corner])
    return canvas


@pytest.mark.parametrize("corner", sorted(CORNERS))
def test_heatmap_mass_falls_on_the_cat(classifier: Classifier, photos: dict[str, Path], corner: str) -> None:
    explanation = classifier.explain(_cat_in_corner(photos, corner))
    assert "cat" in explanation.predictions[0].label or explanation.predictions[0].label == "Egyptian Mau"
    mass = heatmap_mass_per_corner(explanation.heatmap)
    assert mass[corner] > 0.6, mass
    assert mass[corner] == max(mass.values())


def test_explain_matches_classify_and_batches(classifier: Classifier, photos: dict[str, Path]) -> None:
    alone = classifier.explain(photos["coffee"], top_k=3)
    (batched,) = classifier.explain_batch([photos["coffee"]], top_k=3)
    assert alone.predictions == classifier.classify(photos["coffee"], top_k=3)
    assert [p.index for p in batched.predictions] == [p.index for p in alone.predictions]
    np.testing.assert_allclose(batched.heatmap, alone.heatmap, atol=1e-4)
    assert alone.heatmap.shape == (7, 7) and alone.heatmap.max() == pytest.approx(1.0)


def test_linear_head_gives_the_classic_cam() -> None:
    rng = np.random.default_rng(0)
    features = rng.random((7, 7, 16), dtype=np.float32)
    kernel = rng.normal(size=(16, 10)).astype(np.float32)
    head = Head((kernel,), (np.zeros(10, np.float32),), ("linear",))
    expected = np.maximum(features @ kernel[:, 3], 0)
    np.testing.assert_allclose(class_activation_map(features, head, 3), expected / expected.max(), rtol=1e-5)


def test_non_linear_head_uses_the_true_gradient() -> None:
    rng = np.random.default_rng(1)
    kernels = (rng.normal(size=(8, 6)), rng.normal(size=(6, 4)))
    biases = (rng.normal(size=6), rng.normal(size=4))
    head = Head(kernels, biases, ("hard_swish", "linear"))
    features = rng.random((3, 3, 8))
    pooled = features.mean(axis=(0, 1))

    def logit(x: np.ndarray) -> float:
        hidden = x @ kernels[0] + biases[0]
        hidden = hidden * np.clip(hidden + 3, 0, 6) / 6
        return float((hidden @ kernels[1] + biases[1])[2])

    step = 1e-6
    gradient = np.array([(logit(pooled + step * e) - logit(pooled - step * e)) / (2 * step) for e in np.eye(8)])
    expected = np.maximum(features @ gradient, 0)
    np.testing.assert_allclose(class_activation_map(features, head, 2), expected / expected.max(), atol=1e-5)


def test_overlay_keeps_size_and_tints_only_hot_places() -> None:
    picture = Image.new("RGB", (80, 40), (120, 120, 120))
    heatmap = np.zeros((7, 7))
    heatmap[:, :2] = 1.0  # hot on the left
    overlay = overlay_heatmap(picture, heatmap, alpha=0.6)
    assert overlay.size == picture.size and overlay.mode == "RGB"
    assert overlay.getpixel((2, 20)) != (120, 120, 120)
    assert overlay.getpixel((78, 20)) == (120, 120, 120)
    assert overlay_heatmap(picture, np.zeros((7, 7))).tobytes() == picture.tobytes()


def test_plot_explanation_shows_the_picture_and_names_the_class(
    classifier: Classifier, photos: dict[str, Path]
) -> None:
    picture = Image.open(photos["coffee"])
    figure = plot_explanation(picture, classifier.explain(picture))
    assert isinstance(figure, Figure)
    assert figure.axes[0].images[0].get_array().shape[:2] == (picture.height, picture.width)
    assert "espresso" in figure.get_suptitle()
