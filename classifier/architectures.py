"""The MobileNet variants the classifier can run, described without importing Keras.

Each entry names a ``keras.applications`` constructor and what differs between
them: the weights file Keras caches, the input size and the pixel scaling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["ARCHITECTURES", "DEFAULT_ARCHITECTURE", "INPUT_SIZE", "Architecture", "architecture"]

INPUT_SIZE: Final[int] = 224
"""Side of the square input of every supported MobileNet, in pixels."""


@dataclass(frozen=True, slots=True)
class Architecture:
    """One ImageNet classifier from ``keras.applications``.

    Attributes
    ----------
    name
        The ``keras.applications`` constructor, also shown to visitors.
    weights_file
        The file Keras downloads into ``$KERAS_HOME/models`` for ``weights="imagenet"``.
    input_size
        Side of the square input, in pixels.
    input_scale, input_offset
        The model's input is ``pixels * input_scale + input_offset`` for 8-bit
        pixels: [-1, 1] for MobileNet and MobileNetV2, raw 0..255 for
        MobileNetV3, which rescales inside the model.
    keras_options
        Extra keyword arguments for the constructor.
    """

    name: str
    weights_file: str
    input_size: int = INPUT_SIZE
    input_scale: float = 1 / 127.5
    input_offset: float = -1.0
    keras_options: dict[str, Any] = field(default_factory=dict)


ARCHITECTURES: Final[dict[str, Architecture]] = {
    spec.name: spec
    for spec in (
        Architecture("MobileNet", "mobilenet_1_0_224_tf.h5"),
        Architecture("MobileNetV2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
        # Without a fixed input shape MobileNetV3 converts with a 1x1 dynamic input.
        Architecture(
            "MobileNetV3Small", "weights_mobilenet_v3_small_224_1.0_float.h5",
            input_scale=1.0, input_offset=0.0, keras_options={"input_shape": (224, 224, 3)},
        ),
        Architecture(
            "MobileNetV3Large", "weights_mobilenet_v3_large_224_1.0_float.h5",
            input_scale=1.0, input_offset=0.0, keras_options={"input_shape": (224, 224, 3)},
        ),
    )
}
"""Every supported architecture, by name."""

DEFAULT_ARCHITECTURE: Final[str] = "MobileNetV2"


def architecture(name: str) -> Architecture:
    """Return the architecture called ``name``, or say which names exist."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"model must be one of {', '.join(ARCHITECTURES)}, got {name!r}"
        ) from None
