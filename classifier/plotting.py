"""Horizontal bar charts of predictions, as matplotlib figures and PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` rather than pyplot, so
no global figure registry grows with every upload and nothing needs closing.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Final

from matplotlib.figure import Figure

from classifier.model import Prediction

__all__ = ["figure_to_png", "plot_predictions"]

_BAR_COLOR: Final[str] = "#1f6feb"
_WIDTH_INCHES: Final[float] = 3.6
_INCHES_PER_BAR: Final[float] = 0.3
_MAX_LABEL_CHARS: Final[int] = 26


def plot_predictions(predictions: Sequence[Prediction], *, title: str | None = None) -> Figure:
    """Draw predictions as horizontal bars, the most probable on top.

    Parameters
    ----------
    predictions
        Predictions as returned by :meth:`classifier.Classifier.classify`.
    title
        Optional title above the bars.

    Returns
    -------
    matplotlib.figure.Figure
        A figure 3.6 inches wide, 0.3 inch per bar; it shows
        inline in Jupyter and can be saved with :func:`figure_to_png`.

    Raises
    ------
    ValueError
        If ``predictions`` is empty.
    """
    if not predictions:
        raise ValueError("plot_predictions needs at least one prediction, got none")
    height = 0.45 + _INCHES_PER_BAR * len(predictions) + (0.25 if title else 0.0)
    figure = Figure(figsize=(_WIDTH_INCHES, height), layout="constrained")
    axes = figure.add_subplot()
    labels = [_shorten(prediction.label) for prediction in reversed(predictions)]
    percentages = [100 * prediction.probability for prediction in reversed(predictions)]
    bars = axes.barh(labels, percentages, color=_BAR_COLOR, height=0.7)
    axes.bar_label(bars, labels=[f"{value:.1f}%" for value in percentages], padding=3, fontsize=9)
    axes.set_xlim(0, 100 * 1.18)  # room for the percentage after a full bar
    axes.set_xticks([])
    axes.tick_params(axis="y", length=0, labelsize=10)
    for side in ("top", "right", "bottom"):
        axes.spines[side].set_visible(False)
    if title:
        axes.set_title(title, fontsize=10, loc="left")
    return figure


def figure_to_png(figure: Figure, *, dpi: int = 160) -> bytes:
    """Render ``figure`` to PNG bytes.

    The default of 160 dpi draws the 3.6-inch chart 576 pixels wide: sharp on a
    high-density phone screen where it is shown about 300 CSS pixels wide.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def _shorten(label: str) -> str:
    if len(label) <= _MAX_LABEL_CHARS:
        return label
    return label[: _MAX_LABEL_CHARS - 1].rstrip() + "…"
