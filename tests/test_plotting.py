"""Tests for classifier/plotting.py: bars that match the predictions."""

from __future__ import annotations

import io

import pytest
from matplotlib.figure import Figure
from PIL import Image

from classifier import Prediction, figure_to_png, plot_predictions

PREDICTIONS = [
    Prediction("military uniform", 0.585, 652),
    Prediction("military hat (bearskin or shako)", 0.10, 439),
    Prediction("graduation cap", 0.054, 400),
]


def test_one_bar_per_prediction_most_probable_on_top() -> None:
    figure = plot_predictions(PREDICTIONS)
    axes = figure.axes[0]
    bars = axes.patches
    assert isinstance(figure, Figure)
    assert len(bars) == len(PREDICTIONS)
    top_bar = max(bars, key=lambda bar: bar.get_y())
    assert top_bar.get_width() == pytest.approx(58.5)
    assert [tick.get_text() for tick in axes.get_yticklabels()][-1] == "military uniform"


def test_bars_are_labelled_with_percentages() -> None:
    texts = {text.get_text() for text in plot_predictions(PREDICTIONS).axes[0].texts}
    assert {"58.5%", "10.0%", "5.4%"} <= texts


def test_long_labels_are_shortened_with_an_ellipsis() -> None:
    long_name = "a remarkably long class name that would squeeze the bars"
    labels = [t.get_text() for t in plot_predictions([Prediction(long_name, 0.5, 1)]).axes[0].get_yticklabels()]
    assert labels[0].endswith("…") and len(labels[0]) <= 26


def test_title_is_shown() -> None:
    assert plot_predictions(PREDICTIONS, title="grace_hopper.jpg").axes[0].get_title(loc="left") == "grace_hopper.jpg"


def test_empty_predictions_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one prediction"):
        plot_predictions([])


def test_png_is_sharp_and_small() -> None:
    png = figure_to_png(plot_predictions(PREDICTIONS * 2 + PREDICTIONS[:1]))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.width >= 560  # about twice the ~300 CSS pixels it is shown at
    assert len(png) < 40_000
