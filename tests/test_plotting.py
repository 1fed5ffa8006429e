"""Tests for classifier/plotting.py: bars that match the predictions."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from classifier import Evaluation, Prediction, figure_to_png, plot_confusion, plot_predictions

PREDICTIONS = [
    Prediction("military uniform", 0.585, 652),
    Prediction("military hat (bearskin or shako)", 0.10, 439),
    Prediction("graduation cap", 0.054, 400),
]


def _bars(figure: Figure) -> tuple[list, list]:
    """The pale full-width tracks, and the filled bars in front of them."""
    tracks = [patch for patch in figure.artists if patch.get_alpha() is not None]
    return tracks, [patch for patch in figure.artists if patch.get_alpha() is None]


def _texts(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.texts]


def test_one_bar_per_prediction_most_probable_on_top() -> None:
    figure = plot_predictions(PREDICTIONS)
    tracks, bars = _bars(figure)
    assert isinstance(figure, Figure) and figure.axes == []  # drawn on the figure itself: no Axes to draw
    assert [bar.get_width() / track.get_width() for bar, track in zip(bars, tracks)] == pytest.approx([0.585, 0.10, 0.054])
    assert bars[0].get_y() > bars[1].get_y() > bars[2].get_y()  # figure coordinates run upwards


def test_bars_are_labelled_with_names_and_percentages() -> None:
    texts = _texts(plot_predictions(PREDICTIONS))
    assert texts == [
        "military uniform", "58.5%",
        "military hat (bearskin or shako)", "10.0%",
        "graduation cap", "5.4%",
    ]


def test_long_labels_are_shortened_with_an_ellipsis() -> None:
    long_name = "tights for gymnastics, a one-piece leotard, or a sport jersey"
    label = _texts(plot_predictions([Prediction(long_name, 0.5, 639)]))[0]
    assert label.endswith("…") and len(label) <= 34 and long_name.startswith(label[:-1])


def test_title_is_shown() -> None:
    figure = plot_predictions(PREDICTIONS, title="grace_hopper.jpg")
    assert figure.get_suptitle() == "grace_hopper.jpg"


def test_empty_predictions_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one prediction"):
        plot_predictions([])


def test_png_is_sharp_and_small() -> None:
    png = figure_to_png(plot_predictions(PREDICTIONS * 2 + PREDICTIONS[:1]))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.width >= 560  # about twice the ~300 CSS pixels it is shown at
    assert len(png) < 25_000


def test_png_shows_the_bar_colour() -> None:
    image = Image.open(io.BytesIO(figure_to_png(plot_predictions(PREDICTIONS)))).convert("RGB")
    colours = {colour for _, colour in image.getcolors(maxcolors=256)}
    assert any(min(colour) >= 250 for colour in colours)  # the white background
    assert any(abs(r - 0x1F) < 8 and abs(g - 0x6F) < 8 and abs(b - 0xEB) < 8 for r, g, b in colours)


def test_rendering_leaves_the_figure_as_it_was() -> None:
    figure = plot_predictions(PREDICTIONS)
    dpi = figure.dpi
    figure_to_png(figure, dpi=300)
    assert figure.dpi == dpi


def test_figures_show_inline_in_a_notebook_without_pyplot() -> None:
    # A fresh interpreter, as a new kernel: pyplot (and with it matplotlib's inline backend) never imported.
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from IPython.core.formatters import format_display_data\n"
        "from PIL import Image\n"
        "from classifier import Explanation, Prediction, plot_explanation, plot_predictions\n"
        "chart = plot_predictions([Prediction('espresso', 0.8, 967)])\n"
        "overlay = plot_explanation(Image.new('RGB', (64, 48)), Explanation([Prediction('espresso', 0.8, 967)], np.ones((7, 7))))\n"
        "for figure in (chart, overlay):\n"
        "    data, _metadata = format_display_data(figure)\n"
        "    print(sorted(data), data['text/plain'])\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    chart, overlay, pyplot = result.stdout.splitlines()
    assert chart == "['image/png', 'text/plain'] <Figure size 360x52 with 0 Axes>"
    assert overlay.startswith("['image/jpeg', 'text/plain'] <Figure size 360x")  # a photo: JPEG, not a huge PNG
    assert pyplot == "False"


def test_a_confusion_matrix_shows_every_count_and_the_accuracy() -> None:
    evaluation = Evaluation(("cat", "dog", "hot dog"), np.array([[3, 1, 0], [0, 4, 0], [1, 0, 2]]), "leave-one-out")
    figure = plot_confusion(evaluation)
    (axes,) = figure.axes
    assert sorted(text.get_text() for text in axes.texts) == sorted(map(str, evaluation.confusion.ravel()))
    assert [label.get_text() for label in axes.get_yticklabels()] == ["cat", "dog", "hot dog"]
    assert figure.texts[0].get_text() == "82% of 11 photos right\n(leave-one-out cross-validation)"
    assert Image.open(io.BytesIO(figure_to_png(figure))).format == "PNG"


@pytest.mark.parametrize("classes", [2, 10])
def test_a_confusion_matrix_fits_its_words_in_the_figure(classes: int) -> None:
    names = tuple(f"class with a long name {n}" for n in range(classes))
    figure = plot_confusion(Evaluation(names, np.eye(classes, dtype=int) * 5, "5-fold"))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    words = [figure.texts[0], *figure.axes[0].get_xticklabels(), *figure.axes[0].get_yticklabels()]
    for text in words:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.width and box.y1 <= figure.bbox.height, text
