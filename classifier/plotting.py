"""Horizontal bar charts of predictions, as matplotlib figures and PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` rather than pyplot, so
no global figure registry grows with every upload and nothing needs closing.
They show themselves inline in Jupyter (as the last expression of a cell, or
with ``display``) whether or not pyplot was ever imported.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Final

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from classifier.explain import overlay_heatmap
from classifier.images import encode_jpeg
from classifier.model import Explanation, Prediction
from classifier.teach import Evaluation

__all__ = ["figure_to_png", "plot_confusion", "plot_explanation", "plot_predictions"]

_BAR_COLOR: Final[str] = "#1f6feb"
_WIDTH_INCHES: Final[float] = 3.6
_INCHES_PER_BAR: Final[float] = 0.42
_BAR_INCHES: Final[float] = 0.16
_BAR_OFFSET_INCHES: Final[float] = 0.2  # from the top of a row to its bar, below the label
_MARGIN_INCHES: Final[float] = 0.05
_LEFT: Final[float] = 0.02  # figure fraction
_TRACK: Final[float] = 0.96  # the full-width track that 100% fills
_FONT_SIZE: Final[float] = 10
_PNG_COLORS: Final[int] = 64
_DPI: Final[int] = 160
_MAX_LABEL_CHARS: Final[int] = 34  # leaves room for the percentage on the same line


class _InlineFigure(Figure):
    """A figure that renders itself when a notebook displays it: a small PNG, or a JPEG for photos."""

    def __init__(self, *args: object, photographic: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._photographic = photographic

    def _repr_png_(self) -> bytes | None:
        return None if self._photographic else figure_to_png(self)

    def _repr_jpeg_(self) -> bytes | None:
        return encode_jpeg(_render(self, _DPI)) if self._photographic else None

    def __repr__(self) -> str:
        width, height = self.get_size_inches() * self.dpi
        return f"<Figure size {width:g}x{height:g} with {len(self.axes)} Axes>"


def plot_predictions(predictions: Sequence[Prediction], *, title: str | None = None) -> Figure:
    """Draw predictions as horizontal bars, the most probable on top.

    Each bar is a share of a full-width track, with its label above it on the
    left and its percentage on the right, so long labels never squeeze the bars.

    Parameters
    ----------
    predictions
        Predictions as returned by :meth:`classifier.Classifier.classify`.
    title
        Optional title above the bars.

    Returns
    -------
    matplotlib.figure.Figure
        A figure 3.6 inches wide, 0.42 inch per bar; it shows inline in Jupyter
        and can be saved with :func:`figure_to_png`.

    Raises
    ------
    ValueError
        If ``predictions`` is empty.
    """
    if not predictions:
        raise ValueError("plot_predictions needs at least one prediction, got none")
    title_inches = 0.3 if title else 0.0
    height = _MARGIN_INCHES + title_inches + _INCHES_PER_BAR * len(predictions) + _MARGIN_INCHES
    figure = _InlineFigure(figsize=(_WIDTH_INCHES, height))

    def below_top(inches: float) -> float:  # figure coordinates run upwards from 0 to 1
        return 1 - inches / height

    # Rectangles and text placed on the figure itself: an Axes (with its axis, ticks and
    # spines, all hidden here) took a third of the time to draw a chart.
    for row, prediction in enumerate(predictions):
        top = _MARGIN_INCHES + title_inches + row * _INCHES_PER_BAR
        bar_bottom = below_top(top + _BAR_OFFSET_INCHES + _BAR_INCHES)
        for width, alpha in ((1.0, 0.12), (prediction.probability, None)):  # the track, then the bar
            figure.add_artist(Rectangle(
                (_LEFT, bar_bottom), _TRACK * width, _BAR_INCHES / height,
                transform=figure.transFigure, facecolor=_BAR_COLOR, alpha=alpha, linewidth=0,
            ))
        baseline = below_top(top + _BAR_OFFSET_INCHES - 0.03)
        figure.text(_LEFT, baseline, _shorten(prediction.label), fontsize=_FONT_SIZE, va="bottom", ha="left")
        figure.text(_LEFT + _TRACK, baseline, f"{100 * prediction.probability:.1f}%",
                    fontsize=_FONT_SIZE, va="bottom", ha="right")
    if title:
        figure.suptitle(title, fontsize=_FONT_SIZE, x=_LEFT, y=below_top(_MARGIN_INCHES), ha="left", va="top")
    return figure


def plot_explanation(picture: Image.Image, explanation: Explanation, *, alpha: float = 0.5) -> Figure:
    """Show where the evidence for the top prediction lies, over the picture.

    Parameters
    ----------
    picture
        The picture that was classified (any size; the map is stretched over it).
    explanation
        As returned by :meth:`classifier.Classifier.explain`.
    alpha
        Opacity of the heatmap where the evidence is strongest.

    Returns
    -------
    matplotlib.figure.Figure
        The picture with the heatmap blended over it, titled with the prediction.
    """
    width, height = picture.size
    figure = _InlineFigure(figsize=(_WIDTH_INCHES, _WIDTH_INCHES * height / width + 0.3), photographic=True)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0 - 0.3 / (_WIDTH_INCHES * height / width + 0.3)))
    axes.imshow(overlay_heatmap(picture.convert("RGB"), explanation.heatmap, alpha=alpha))
    axes.set_axis_off()
    figure.suptitle(f"Evidence for “{explanation.predictions[0]}”", fontsize=_FONT_SIZE, y=0.99, va="top")
    return figure


def plot_confusion(evaluation: Evaluation) -> Figure:
    """Draw a cross-validation's confusion matrix: which class each held-out photo was taken for.

    Rows are the true classes, columns what the classifier said; the diagonal
    holds the photos it got right.  Each cell shows its count, shaded by the
    share of its row.

    Parameters
    ----------
    evaluation
        As returned by :meth:`classifier.TaughtClassifier.evaluate`.

    Returns
    -------
    matplotlib.figure.Figure
        Square cells, labelled; it shows inline in Jupyter.
    """
    confusion = evaluation.confusion
    count = len(evaluation.classes)
    names = [_shorten(name, 18) for name in evaluation.classes]
    # In inches: names on the left, the title above, the slanted names and a label below.
    left, top, bottom, cell = 1.5, 0.7, 1.35, 0.45
    # At least wide enough for the title, however few the classes.
    width, height = max(left + cell * count + 0.2, 3.2), top + cell * count + bottom
    figure = _InlineFigure(figsize=(width, height))
    axes = figure.add_axes((left / width, bottom / height, cell * count / width, cell * count / height))
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), value in np.ndenumerate(confusion):
        axes.text(column, row, str(value), ha="center", va="center", fontsize=_FONT_SIZE,
                  color="white" if shares[row, column] > 0.6 else "black")
    axes.set_xticks(range(count), names, rotation=45, ha="right", rotation_mode="anchor", fontsize=_FONT_SIZE - 1)
    axes.set_yticks(range(count), names, fontsize=_FONT_SIZE - 1)
    axes.set_xlabel("taken for", fontsize=_FONT_SIZE - 1)
    axes.set_ylabel("photos of", fontsize=_FONT_SIZE - 1)
    axes.tick_params(length=0)
    title = f"{evaluation.accuracy:.0%} of {evaluation.photos} photos right\n({evaluation.method} cross-validation)"
    figure.text(0.1 / width, 1 - 0.1 / height, title, fontsize=_FONT_SIZE - 1, ha="left", va="top")
    return figure


def figure_to_png(figure: Figure, *, dpi: int = _DPI, colors: int | None = _PNG_COLORS) -> bytes:
    """Render ``figure`` to a small PNG.

    The default of 160 dpi draws a 3.6-inch chart 576 pixels wide: sharp on a
    high-density phone screen where it is shown about 300 CSS pixels wide.  A
    64-colour palette looks the same for flat charts and makes the file about a
    quarter of the size of a full-colour PNG; pass ``colors=None`` for figures
    with photos, such as :func:`plot_explanation`.
    """
    image = _render(figure, dpi)
    if colors is not None:
        # The fastest quantizer; it may turn white into (254, 254, 254), which no one can see.
        image = image.quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _render(figure: Figure, dpi: int) -> Image.Image:
    """Draw ``figure`` with Agg at ``dpi``, as an RGB picture."""
    shown_dpi = figure.dpi
    figure.set_dpi(dpi)
    try:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    finally:
        figure.set_dpi(shown_dpi)


def _shorten(label: str, limit: int = _MAX_LABEL_CHARS) -> str:
    if len(label) <= limit:
        return label
    return label[: limit - 1].rstrip() + "…"
