"""Why did the model say that? Class activation maps from the same forward pass.

MobileNet and MobileNetV2 end in global average pooling and one dense layer, so
the evidence for class ``c`` at each place of the last feature maps is those
features weighted by the dense weights of ``c`` (CAM, Zhou et al. 2016).
MobileNetV3 has a small non-linear head after the pooling; there the weights are
the gradient of the class logit with respect to the pooled features
(Grad-CAM), which equals CAM whenever the head is linear.  Either way, only
numpy runs here: no TensorFlow, no second forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image

__all__ = ["Head", "class_activation_map", "load_head", "overlay_heatmap"]

_COLORMAP: Final[str] = "jet"


@dataclass(frozen=True, slots=True, eq=False)
class Head:
    """The layers after global pooling: ``activation(x @ kernel + bias)`` in turn."""

    kernels: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activations: tuple[str, ...]

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """The class scores before softmax for globally pooled features."""
        return _run_head(self, pooled)[0]


def load_head(path: Path) -> Head:
    """Read a head saved by :func:`classifier.conversion.build_converted_model`."""
    with np.load(path) as arrays:
        count = len(arrays["activations"])
        return Head(
            kernels=tuple(arrays[f"kernel_{i}"].astype(np.float32) for i in range(count)),
            biases=tuple(arrays[f"bias_{i}"].astype(np.float32) for i in range(count)),
            activations=tuple(str(name) for name in arrays["activations"]),
        )


def class_activation_map(features: np.ndarray, head: Head, class_index: int) -> np.ndarray:
    """Where in the picture the evidence for ``class_index`` lies.

    Parameters
    ----------
    features
        The last feature maps of one picture, ``(height, width, channels)``.
    head
        The layers after global pooling.
    class_index
        The ImageNet class to explain.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` values from 0 to 1 (all zeros if nothing speaks for
        the class), rows from the top of the picture.
    """
    weights = _logit_gradient(head, features.mean(axis=(0, 1)), class_index)
    evidence = np.maximum(features @ weights, 0.0)
    peak = float(evidence.max())
    return evidence / peak if peak > 0 else evidence


def overlay_heatmap(picture: Image.Image, heatmap: np.ndarray, *, alpha: float = 0.5) -> Image.Image:
    """Blend a heatmap over an RGB picture, hot places most visible.

    Parameters
    ----------
    picture
        An RGB picture.
    heatmap
        Values from 0 to 1 on any grid; it is stretched over the whole picture,
        as the model saw the whole picture.
    alpha
        Opacity of the colour where the heatmap is 1; where it is 0 the photo
        shows untouched.

    Returns
    -------
    PIL.Image.Image
        A new RGB picture of the same size.
    """
    levels = Image.fromarray(np.uint8(np.clip(heatmap, 0.0, 1.0) * 255)).resize(
        picture.size, Image.Resampling.BILINEAR
    )
    coloured = levels.convert("P")
    coloured.putpalette(_palette())
    opacity = levels.point(lambda level: round(level * alpha))
    return Image.composite(coloured.convert("RGB"), picture.convert("RGB"), opacity)


@cache
def _palette() -> list[int]:
    from matplotlib import colormaps  # only needed once, when the first heatmap is drawn

    table = colormaps[_COLORMAP](np.linspace(0.0, 1.0, 256))[:, :3]
    return np.uint8(np.round(table * 255)).ravel().tolist()


def _run_head(head: Head, pooled: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The head's outputs, and the input of every activation (for the backward pass)."""
    outputs = pooled
    pre_activations = []
    for kernel, bias, activation in zip(head.kernels, head.biases, head.activations):
        pre_activations.append(outputs @ kernel + bias)
        outputs = _ACTIVATIONS[activation][0](pre_activations[-1])
    return outputs, pre_activations


def _logit_gradient(head: Head, pooled: np.ndarray, class_index: int) -> np.ndarray:
    logits, pre_activations = _run_head(head, pooled)
    gradient = np.zeros_like(logits)
    gradient[class_index] = 1.0
    for kernel, activation, pre_activation in reversed(
        list(zip(head.kernels, head.activations, pre_activations))
    ):
        gradient = kernel @ (gradient * _ACTIVATIONS[activation][1](pre_activation))
    return gradient


def _hard_swish(x: np.ndarray) -> np.ndarray:
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _hard_swish_slope(x: np.ndarray) -> np.ndarray:
    return np.where(x < -3.0, 0.0, np.where(x > 3.0, 1.0, (2.0 * x + 3.0) / 6.0))


_ACTIVATIONS: Final = {
    "linear": (lambda x: x, np.ones_like),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(x.dtype)),
    "hard_swish": (_hard_swish, _hard_swish_slope),
}
"""Each activation and its derivative, for the backward pass through the head."""
