"""Keras MobileNetV2 converted once to a LiteRT model, cached next to its weights.

Keras stays the source of the model: ``keras.applications.MobileNetV2(weights=
"imagenet")`` downloads its weights once into the Keras cache
(``$KERAS_HOME/models``, by default ``~/.keras/models``).  Converting that model
with ``tf.lite.TFLiteConverter`` gives the same network in a form that LiteRT
runs several times faster, in a process that never imports TensorFlow.

The converted file is stored beside the weights under a name that contains the
TensorFlow version and a hash of the weights, so a new TensorFlow or new weights
build a new file, and it is written atomically (temporary file, then rename), so
two kernels converting at once, or a crash half-way, never leave a torn file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Final

__all__ = [
    "ModelUnavailableError",
    "ProgressCallback",
    "WEIGHTS_FILE",
    "converted_model_path",
    "keras_home",
]

WEIGHTS_FILE: Final[str] = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
"""The file name Keras gives MobileNetV2 (alpha 1.0, 224 px, with top) in its cache."""

ProgressCallback = Callable[[str, float], None]
"""Called with a message for people and the fraction of the work done (0..1)."""

# Bump when the conversion itself changes, so old cached files are not reused.
_CONVERSION_VERSION: Final[int] = 1
_LOG = logging.getLogger(__name__)
_TENSORFLOW_DISTRIBUTIONS: Final[tuple[str, ...]] = ("tensorflow", "tensorflow-cpu", "tf-nightly")


class ModelUnavailableError(RuntimeError):
    """The model could not be loaded, downloaded or converted; says what to do."""


def keras_home() -> Path:
    """Return the Keras cache folder exactly as Keras chooses it.

    ``$KERAS_HOME`` if set, else ``~/.keras``, else ``/tmp/.keras`` when the home
    folder is not writable.
    """
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    home = os.path.expanduser("~")
    return Path(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def converted_model_path(on_progress: ProgressCallback | None = None) -> Path:
    """Return the path of the converted MobileNetV2, building it if needed.

    With a warm cache this reads and hashes the weights file and imports nothing
    heavy.  Otherwise it imports TensorFlow, lets Keras download the weights if
    they are missing, converts the model and stores it beside the weights.

    Parameters
    ----------
    on_progress
        Receives ``(message, fraction_done)`` while the one-time conversion runs.

    Returns
    -------
    pathlib.Path
        A ``.tflite`` file in ``keras_home() / "models"``.

    Raises
    ------
    ModelUnavailableError
        If the weights are missing and cannot be downloaded, or conversion fails.
    """
    weights = keras_home() / "models" / WEIGHTS_FILE
    if weights.is_file():
        cached = _cache_path(weights)
        if cached.is_file():
            return cached
    return build_converted_model(on_progress)


def build_converted_model(on_progress: ProgressCallback | None = None) -> Path:
    """Convert MobileNetV2 now, replacing any cached file; see :func:`converted_model_path`."""
    report = on_progress or (lambda message, fraction: None)
    report("Loading TensorFlow to prepare the model (one time only)…", 0.05)
    keras, tf = _import_tensorflow()
    report("Loading MobileNetV2 weights (downloaded once if missing)…", 0.25)
    weights = keras_home() / "models" / WEIGHTS_FILE
    had_weights = weights.is_file()
    try:
        model = keras.applications.MobileNetV2(weights="imagenet")
    except Exception as error:  # Keras raises bare Exception for failed downloads
        if had_weights:
            raise ModelUnavailableError(
                f"The MobileNetV2 weights at {weights} could not be loaded ({error}); the file "
                "may be damaged. Delete it so that it is downloaded again, or replace it, and reload."
            ) from error
        raise ModelUnavailableError(
            "The MobileNetV2 weights are not on this machine and could not be "
            f"downloaded ({error}). Put the file {WEIGHTS_FILE} in {weights.parent} "
            "(the Keras cache, set by KERAS_HOME) and reload."
        ) from error
    report("Converting the model for fast inference…", 0.5)
    chatter = io.StringIO()
    try:
        # The converter prints pages of details; in a kernel they would reach the page.
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            converted = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    except Exception as error:  # the converter raises many unrelated types
        raise ModelUnavailableError(f"Converting MobileNetV2 for LiteRT failed: {error}") from error
    finally:
        _LOG.debug("converter output:\n%s", chatter.getvalue())
    report("Saving the converted model…", 0.95)
    target = _cache_path(weights)
    _write_atomically(target, converted)
    report("The model is ready.", 1.0)
    return target


def _import_tensorflow() -> tuple[ModuleType, ModuleType]:
    # Keep TensorFlow's C++ start-up notices out of the kernel's log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
        import tensorflow as tf
    except ImportError as error:
        raise ModelUnavailableError(
            "TensorFlow is needed once to convert the model, but it is not installed: "
            f"{error}. Install the project with `pip install -e .`."
        ) from error
    return keras, tf


def _cache_path(weights: Path) -> Path:
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    name = f"mobilenet_v2_1.0_224.tf-{_tensorflow_version()}.w-{digest}.v{_CONVERSION_VERSION}.tflite"
    return weights.with_name(name)


def _tensorflow_version() -> str:
    for distribution in _TENSORFLOW_DISTRIBUTIONS:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    raise ModelUnavailableError(
        "TensorFlow is not installed, so the cached model cannot be checked or built. "
        "Install the project with `pip install -e .`."
    )


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
