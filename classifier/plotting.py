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

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from classifier.explain import overlay_heatmap
from classifier.images import encode_jpeg
from classifier.model import Explanation, Prediction

__all__ = ["figure_to_png", "plot_explanation", "plot_predictions"]

_BAR_COLOR: Final[str] = "#1f6feb"
_WIDTH_INCHES: Final[float] = 3.6
_INCHES_PER_BAR: Final[float] = 0.42
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
    count = len(predictions)
    title_inches = 0.3 if title else 0.0
    height = 0.1 + _INCHES_PER_BAR * count + title_inches
    figure = _InlineFigure(figsize=(_WIDTH_INCHES, height))
    # Fixed margins instead of a layout engine: there are no tick labels to fit,
    # and layout passes were half of the rendering time.
    axes = figure.add_axes((0.02, 0.02, 0.96, 0.96 - title_inches / height))
    axes.set_axis_off()
    axes.set_xlim(0, 100)
    axes.set_ylim(count - 0.45, -0.75)
    rows = range(count)
    percentages = [100 * prediction.probability for prediction in predictions]
    axes.barh(rows, [100] * count, height=0.38, color=_BAR_COLOR, alpha=0.12)
    axes.barh(rows, percentages, height=0.38, color=_BAR_COLOR)
    for row, prediction, percentage in zip(rows, predictions, percentages):
        axes.text(0, row - 0.3, _shorten(prediction.label), fontsize=_FONT_SIZE, va="bottom", ha="left")
        axes.text(100, row - 0.3, f"{percentage:.1f}%", fontsize=_FONT_SIZE, va="bottom", ha="right")
    if title:
        figure.suptitle(title, fontsize=_FONT_SIZE, x=0.02, y=1 - 0.05 / height, ha="left", va="top")
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


def _shorten(label: str) -> str:
    if len(label) <= _MAX_LABEL_CHARS:
        return label
    return label[: _MAX_LABEL_CHARS - 1].rstrip() + "…"
