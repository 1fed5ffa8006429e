"""Keras MobileNets converted once to LiteRT models, cached next to their weights.

Keras stays the source of the model: ``keras.applications.MobileNetV2(weights=
"imagenet")`` downloads its weights once into the Keras cache
(``$KERAS_HOME/models``, by default ``~/.keras/models``).  Converting that model
with ``tf.lite.TFLiteConverter`` gives the same network in a form that LiteRT
runs several times faster, in a process that never imports TensorFlow.

The converted model has two outputs, the class probabilities and the last
feature maps (the input of the final global pooling), and comes with the
weights of the layers after the pooling in a small ``.npz``: together they give
class activation maps from the same forward pass (see :mod:`classifier.explain`).

The files are stored beside the weights under names that contain the
architecture, the TensorFlow version and a hash of the weights, so a new
TensorFlow or new weights build new files, and they are written atomically
(temporary file, then rename), so two kernels converting at once, or a crash
half-way, never leave a torn file.  A manifest with the size and SHA-256 of
both files is written last; the cache is used only when the files still match
it, so a file damaged later on disk (a zeroed page gives wrong answers, not an
error) is rebuilt rather than served.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

import numpy as np

from classifier.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE, Architecture, architecture

__all__ = [
    "ConvertedModel",
    "cached_converted_model",
    "ModelUnavailableError",
    "ProgressCallback",
    "WEIGHTS_FILE",
    "build_converted_model",
    "converted_model",
    "keras_home",
    "weights_digest",
]

WEIGHTS_FILE: Final[str] = ARCHITECTURES[DEFAULT_ARCHITECTURE].weights_file
"""The file name Keras gives MobileNetV2 (alpha 1.0, 224 px, with top) in its cache."""

ProgressCallback = Callable[[str, float], None]
"""Called with a message for people and the fraction of the work done (0..1)."""

Weights = Literal["imagenet"] | None
"""``"imagenet"`` for trained weights, ``None`` for an untrained network (for tests)."""

# Bump when the conversion itself changes, so old cached files are not reused.
_CONVERSION_VERSION: Final[int] = 2
_LOG = logging.getLogger(__name__)
_TENSORFLOW_DISTRIBUTIONS: Final[tuple[str, ...]] = ("tensorflow", "tensorflow-cpu", "tf-nightly")
_HEAD_ACTIVATIONS: Final[dict[str, str]] = {
    "linear": "linear", "softmax": "linear", "relu": "relu", "hard_silu": "hard_swish", "hard_swish": "hard_swish",
}
"""Activations after global pooling; softmax is left out, explanations work on logits."""


@dataclass(frozen=True, slots=True)
class ConvertedModel:
    """The files of one converted model.

    Attributes
    ----------
    network
        LiteRT model with two outputs: probabilities and the last feature maps.
    head
        ``.npz`` with the kernels, biases and activations after global pooling.
    manifest
        JSON with the size and SHA-256 of the two files, written after them.
    """

    network: Path
    head: Path
    manifest: Path

    def is_intact(self) -> bool:
        """Whether both files exist and still match the manifest written with them."""
        try:
            expected = json.loads(self.manifest.read_text())
            return all(expected[path.name] == _fingerprint(path) for path in (self.network, self.head))
        except (OSError, ValueError, KeyError, TypeError):
            return False


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


def converted_model(
    model: str = DEFAULT_ARCHITECTURE,
    *,
    weights: Weights = "imagenet",
    on_progress: ProgressCallback | None = None,
) -> ConvertedModel:
    """Return the converted files of ``model``, building them if needed.

    With a warm cache this reads and hashes the weights file and imports nothing
    heavy.  Otherwise it imports TensorFlow, lets Keras download the weights if
    they are missing, converts the model and stores it beside the weights.

    Parameters
    ----------
    model
        A name from :data:`classifier.architectures.ARCHITECTURES`.
    weights
        ``"imagenet"``, or ``None`` for an untrained network.
    on_progress
        Receives ``(message, fraction_done)`` while the one-time conversion runs.

    Returns
    -------
    ConvertedModel
        Files that matched their manifest when this returned.

    Raises
    ------
    ModelUnavailableError
        If the weights are missing and cannot be downloaded, or conversion fails.
    """
    cached = cached_converted_model(model, weights=weights)
    return cached if cached is not None else build_converted_model(model, weights=weights, on_progress=on_progress)


def cached_converted_model(model: str = DEFAULT_ARCHITECTURE, *, weights: Weights = "imagenet") -> ConvertedModel | None:
    """The converted files of ``model`` if they are cached and intact, else ``None`` (nothing is built)."""
    spec = architecture(model)
    if weights is not None and not (keras_home() / "models" / spec.weights_file).is_file():
        return None
    cached = _cache_files(spec, weights)
    if cached.is_intact():
        return cached
    if cached.manifest.exists():
        _LOG.warning("the converted %s in %s is damaged; it will be converted again", spec.name, cached.network.parent)
    return None


def build_converted_model(
    model: str = DEFAULT_ARCHITECTURE,
    *,
    weights: Weights = "imagenet",
    on_progress: ProgressCallback | None = None,
) -> ConvertedModel:
    """Convert ``model`` now, replacing any cached files; see :func:`converted_model`."""
    spec = architecture(model)
    report = on_progress or (lambda message, fraction: None)
    report(f"Loading TensorFlow to prepare {spec.name} (one time only)…", 0.05)
    keras, tf = _import_tensorflow()
    report(f"Loading {spec.name} weights (downloaded once if missing)…", 0.25)
    network = _build_keras_model(keras, spec, weights)
    report("Converting the model for fast inference…", 0.5)
    pooling = [layer for layer in network.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)][-1]
    two_outputs = keras.Model(network.inputs, [network.output, pooling.input])
    chatter = io.StringIO()
    try:
        # The converter prints pages of details; in a kernel they would reach the page.
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            converted = tf.lite.TFLiteConverter.from_keras_model(two_outputs).convert()
    except Exception as error:  # the converter raises many unrelated types
        raise ModelUnavailableError(f"Converting {spec.name} for LiteRT failed: {error}") from error
    finally:
        _LOG.debug("converter output:\n%s", chatter.getvalue())
    report("Saving the converted model…", 0.95)
    target = _cache_files(spec, weights)
    head = io.BytesIO()
    np.savez(head, **_head_arrays(keras, network, pooling))
    _write_atomically(target.head, head.getvalue())
    _write_atomically(target.network, converted)
    # The manifest is written last: its presence means both files are complete.
    manifest = {path.name: _fingerprint(path) for path in (target.network, target.head)}
    _write_atomically(target.manifest, json.dumps(manifest, indent=1).encode())
    _remove_stale_files(target)
    report("The model is ready.", 1.0)
    return target


def _build_keras_model(keras: ModuleType, spec: Architecture, weights: Weights) -> Any:
    weights_path = keras_home() / "models" / spec.weights_file
    had_weights = weights_path.is_file()
    # Keras reads KERAS_HOME once, at import: name the file it would find, when it is there,
    # so a process whose KERAS_HOME changed still converts the weights it hashed.
    source = str(weights_path) if weights == "imagenet" and had_weights else weights
    try:
        return getattr(keras.applications, spec.name)(weights=source, **spec.keras_options)
    except Exception as error:  # Keras raises bare Exception for failed downloads
        if had_weights:
            raise ModelUnavailableError(
                f"The {spec.name} weights at {weights_path} could not be loaded ({error}); the file "
                "may be damaged. Delete it so that it is downloaded again, or replace it, and reload."
            ) from error
        raise ModelUnavailableError(
            f"The {spec.name} weights are not on this machine and could not be "
            f"downloaded ({error}). Put the file {spec.weights_file} in {weights_path.parent} "
            "(the Keras cache, set by KERAS_HOME) and reload."
        ) from error


def _head_arrays(keras: ModuleType, network: Any, pooling: Any) -> dict[str, np.ndarray]:
    """Kernels, biases and activations of the dense (or 1x1 convolution) layers after pooling."""
    arrays: dict[str, np.ndarray] = {}
    activations: list[str] = []
    for layer in network.layers[network.layers.index(pooling) + 1:]:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            kernel, bias = layer.get_weights()
            arrays[f"kernel_{len(activations)}"] = kernel.reshape(-1, kernel.shape[-1])
            arrays[f"bias_{len(activations)}"] = bias
            activations.append(_head_activation(layer.activation.__name__))
        elif isinstance(layer, keras.layers.Activation) and activations:
            if _head_activation(layer.activation.__name__) != "linear":
                activations[-1] = _head_activation(layer.activation.__name__)
    arrays["activations"] = np.array(activations)
    return arrays


def _head_activation(name: str) -> str:
    try:
        return _HEAD_ACTIVATIONS[name]
    except KeyError:
        raise ModelUnavailableError(f"Unexpected activation {name!r} after global pooling") from None


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


def weights_digest(model: str = DEFAULT_ARCHITECTURE, weights: Weights = "imagenet") -> str:
    """A short hash of the weights file ``model`` uses (``"untrained"`` without weights).

    Two classifiers with the same digest compute the same features.
    """
    if weights is None:
        return "untrained"
    path = keras_home() / "models" / architecture(model).weights_file
    status = path.stat()
    return _digest(path, status.st_size, status.st_mtime_ns)


def _cache_files(spec: Architecture, weights: Weights) -> ConvertedModel:
    folder = keras_home() / "models"
    stem = f"{spec.name}.tf-{_tensorflow_version()}.w-{weights_digest(spec.name, weights)}.v{_CONVERSION_VERSION}"
    return ConvertedModel(folder / f"{stem}.tflite", folder / f"{stem}.head.npz", folder / f"{stem}.json")


def _fingerprint(path: Path) -> str:
    """Size and SHA-256 of a file, read in chunks (LiteRT maps the model; no copy is kept)."""
    with path.open("rb") as file:
        return f"{os.fstat(file.fileno()).st_size}:{hashlib.file_digest(file, 'sha256').hexdigest()}"


@lru_cache(maxsize=16)
def _digest(path: Path, size: int, modified_ns: int) -> str:
    """Hash of a weights file, read once per process while its size and time stay the same."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _remove_stale_files(current: ConvertedModel) -> None:
    """Delete this architecture's files from older TensorFlow, weights or conversion versions.

    Untrained files (used by tests) and trained ones live side by side: each
    kind only replaces its own kind.  A concurrent writer of the same files
    uses temporary names that start with the same stem, so it is never disturbed.
    """
    stem = current.network.name.removesuffix(".tflite")
    architecture_prefix = stem.split(".tf-")[0] + ".tf-"
    untrained = ".w-untrained." in stem
    for path in current.network.parent.glob(architecture_prefix + "*"):
        if not path.name.startswith(stem) and (".w-untrained." in path.name) == untrained:
            path.unlink(missing_ok=True)


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


def main(argv: list[str] | None = None) -> None:
    """Convert models ahead of use, e.g. when an image is built: ``python -m classifier.conversion --all``.

    Prints the converted network file of each model.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m classifier.conversion", description=main.__doc__)
    parser.add_argument("models", nargs="*", default=[DEFAULT_ARCHITECTURE],
                        help=f"models to convert, of {', '.join(ARCHITECTURES)} (default: {DEFAULT_ARCHITECTURE})")
    parser.add_argument("--all", action="store_true", help="convert every model the app offers")
    arguments = parser.parse_args(argv)
    models = list(ARCHITECTURES) if arguments.all else arguments.models
    for unknown in (model for model in models if model not in ARCHITECTURES):
        parser.error(f"unknown model {unknown!r}; choose from {', '.join(ARCHITECTURES)}")
    for model in models:
        print(converted_model(model).network, flush=True)


if __name__ == "__main__":
    main()
