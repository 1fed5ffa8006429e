"""ImageNet classification with MobileNets: preprocess -> forward -> postprocess.

A :class:`Classifier` owns every step for its architecture: decoding untrusted
files (:mod:`classifier.images`), resizing to its input, the forward pass of the
converted model (see :mod:`classifier.conversion`) with LiteRT, so a process that
classifies never imports TensorFlow once the cache is warm, and the top-k
predictions.  The same pass yields the last feature maps, from which
:meth:`Classifier.explain` draws class activation maps.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from classifier.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE, Architecture, architecture
from classifier.conversion import (
    ConvertedModel,
    ModelUnavailableError,
    ProgressCallback,
    Weights,
    build_converted_model,
    converted_model,
    weights_digest,
)
from classifier.explain import Head, class_activation_map, load_head
from classifier.images import ImageError, ImageSource, load_image, resize_square
from classifier.labels import NUM_CLASSES, imagenet_labels

if TYPE_CHECKING:
    from classifier.teach import TaughtClassifier

__all__ = ["BatchResult", "Classifier", "Explanation", "Prediction", "preprocess"]


@dataclass(frozen=True, slots=True)
class Prediction:
    """One class the model sees in a picture.

    Attributes
    ----------
    label
        Readable English name of the ImageNet class, e.g. ``"military uniform"``.
    probability
        The model's probability for this class, from 0 to 1.
    index
        The ImageNet class index, 0 to 999.
    """

    label: str
    probability: float
    index: int

    def __str__(self) -> str:
        return f"{self.label}: {self.probability:.1%}"


@dataclass(frozen=True, slots=True, eq=False)
class Explanation:
    """Predictions for a picture, and where the evidence for the first one lies.

    Attributes
    ----------
    predictions
        The most probable classes, highest probability first.
    heatmap
        Class activation map of ``predictions[0]``: values from 0 to 1 on the
        model's last feature grid (7 x 7 for 224-pixel inputs), rows from the top
        of the picture; stretch it over the picture to show it.
    """

    predictions: list[Prediction]
    heatmap: np.ndarray


BatchResult = list[Prediction] | ImageError
"""One entry of :meth:`Classifier.classify_batch`: predictions, or why the file was refused."""

_Outputs = tuple[np.ndarray, np.ndarray]  # probabilities and feature maps of one picture


class Classifier:
    """An ImageNet MobileNet, run with LiteRT.

    Parameters
    ----------
    model
        ``"MobileNetV2"`` (the default), ``"MobileNet"``, ``"MobileNetV3Small"``
        or ``"MobileNetV3Large"``: each is converted and cached on first use.
    weights
        ``"imagenet"``, or ``None`` for an untrained network (to test structure
        without downloading weights).
    num_threads
        CPU threads for the forward pass.
    on_progress
        Receives ``(message, fraction_done)`` if the model has to be converted
        first (a one-time step of 10-60 s that needs TensorFlow).

    Raises
    ------
    ModelUnavailableError
        If the weights are missing and cannot be downloaded, or conversion fails;
        the message says where the weights file must go.
    ValueError
        For an unknown ``model`` name or ``num_threads`` below 1.

    Examples
    --------
    >>> clf = Classifier()
    >>> clf.classify("grace_hopper.jpg", top_k=1)
    [Prediction(label='military uniform', probability=0.67..., index=652)]
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_ARCHITECTURE,
        weights: Weights = "imagenet",
        num_threads: int = 2,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {num_threads!r}")
        self.architecture: Architecture = architecture(model)
        self._labels = imagenet_labels()
        self._interpreter, self._head = _load(self.architecture.name, weights, num_threads, on_progress)
        self.weights_id: str = f"{self.architecture.name}:{weights_digest(self.architecture.name, weights)}"
        """The architecture and a hash of its weights: classifiers with the same one compute the same features."""
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._probabilities, self._features = _pick_outputs(self._interpreter)
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        """The architecture that answers, e.g. ``"MobileNetV2"``."""
        return self.architecture.name

    @property
    def input_size(self) -> int:
        """Side of the square picture the model reads, in pixels (224 for every MobileNet here)."""
        return self.architecture.input_size

    @property
    def feature_channels(self) -> int:
        """Channels of the last feature maps (1280 for MobileNetV2): the features a taught head reads."""
        return int(self._head.kernels[0].shape[0])

    def decode(self, source: ImageSource) -> Image.Image:
        """Decode ``source`` as this model needs it: upright RGB, reduced only while both sides stay large enough.

        A big JPEG is decoded at 1/2 to 1/8 scale and other formats are
        reduced by the same factors, keeping both sides at least
        :attr:`input_size`; nothing else is resampled.  Show this picture
        (shrunk) to people, and pass it to :meth:`prepare` or :meth:`classify`.

        Raises
        ------
        ImageError
            If ``source`` is not a usable image, or would cost too much to decode.
        """
        return load_image(source, size=self.input_size, shrink=False)

    def prepare(self, source: ImageSource) -> Image.Image:
        """The picture exactly as this model reads it: the whole of it, square, :attr:`input_size` wide.

        Classifying the result gives the same answer as classifying ``source``,
        by any classifier with the same input size, without decoding again.
        """
        return resize_square(self.decode(source), self.input_size)

    def classify(self, source: ImageSource, *, top_k: int = 5) -> list[Prediction]:
        """Classify one picture.

        Parameters
        ----------
        source
            Encoded image bytes, a path, or a :class:`PIL.Image.Image`.
        top_k
            How many predictions to return, 1 to 1000.

        Returns
        -------
        list of Prediction
            The ``top_k`` most probable classes, highest probability first.

        Raises
        ------
        ImageError
            If ``source`` is not a usable image.
        """
        _check_top_k(top_k)
        probabilities, _ = self._forward_one(source)
        return self._top(probabilities, top_k)

    def explain(self, source: ImageSource, *, top_k: int = 5) -> Explanation:
        """Classify one picture and map the evidence for the most probable class.

        Same parameters and errors as :meth:`classify`; costs the same single
        forward pass plus well under a millisecond.
        """
        _check_top_k(top_k)
        return self._explanation(self._forward_one(source), top_k)

    def classify_batch(
        self,
        sources: Sequence[ImageSource],
        *,
        top_k: int = 5,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[BatchResult]:
        """Classify many pictures; a bad file never stops the others.

        Decoding runs on a thread pool (Pillow releases the GIL) while the model
        reads the pictures one by one: on a few cores larger batches are no
        faster, and each picture in a batch costs about 6 MB more memory.

        Parameters
        ----------
        sources
            Encoded image bytes, paths or :class:`PIL.Image.Image` objects.
        top_k
            How many predictions to return per picture, 1 to 1000.
        on_progress
            Called with ``(done, total)`` after each picture.

        Returns
        -------
        list
            One entry per source, in order: its predictions, highest probability
            first, or the :class:`ImageError` that says why it was refused.
        """
        _check_top_k(top_k)
        return [
            outputs if isinstance(outputs, ImageError) else self._top(outputs[0], top_k)
            for outputs in self._forward_many(sources, on_progress)
        ]

    def explain_batch(
        self,
        sources: Sequence[ImageSource],
        *,
        top_k: int = 5,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[Explanation | ImageError]:
        """:meth:`explain` for many pictures, batched as in :meth:`classify_batch`."""
        _check_top_k(top_k)
        return [
            outputs if isinstance(outputs, ImageError) else self._explanation(outputs, top_k)
            for outputs in self._forward_many(sources, on_progress)
        ]

    def feature_maps(self, source: ImageSource) -> np.ndarray:
        """The last feature maps of the network for one picture, ``(height, width, channels)``.

        Their average over the grid is what the network's own head (and a
        taught one, see :meth:`teach`) reads; a class activation map weighs them.
        """
        return self._forward_one(source)[1]

    def feature_maps_batch(
        self, sources: Sequence[ImageSource], *, on_progress: Callable[[int, int], None] | None = None
    ) -> list[np.ndarray | ImageError]:
        """:meth:`feature_maps` for many pictures, decoded in parallel as in :meth:`classify_batch`."""
        return [
            outputs if isinstance(outputs, ImageError) else outputs[1]
            for outputs in self._forward_many(sources, on_progress)
        ]

    def teach(
        self, examples: Mapping[str, Sequence[ImageSource]], *, on_progress: Callable[[int, int], None] | None = None
    ) -> TaughtClassifier:
        """Teach a classifier of your own classes from a few photos of each; see :mod:`classifier.teach`.

        Parameters
        ----------
        examples
            Class name -> photos (bytes, paths or PIL images); one photo per
            class is enough to start, more give a better classifier.
        on_progress
            Called with ``(done, total)`` while the photos are read.

        Returns
        -------
        TaughtClassifier
            Classifies into the given classes, with this network's features.

        Raises
        ------
        TeachingError
            For fewer than two classes, more than 20, more than 500 photos,
            empty or repeated names, or a class without a readable photo; the
            message says which.  Unreadable photos are skipped and listed in
            :attr:`TaughtClassifier.skipped`.
        """
        from classifier.teach import teach

        return teach(self, examples, on_progress=on_progress)

    def _forward_one(self, source: ImageSource) -> _Outputs:
        return self._forward(preprocess(self.prepare(source), self.architecture))

    def _forward_many(
        self, sources: Sequence[ImageSource], on_progress: Callable[[int, int], None] | None
    ) -> Iterator[_Outputs | ImageError]:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for done, item in enumerate(pool.map(self._preprocess_or_error, sources), start=1):
                yield item if isinstance(item, ImageError) else self._forward(item)
                if on_progress is not None:
                    on_progress(done, len(sources))

    def _preprocess_or_error(self, source: ImageSource) -> np.ndarray | ImageError:
        try:
            return preprocess(self.prepare(source), self.architecture)
        except ImageError as error:
            return error

    def _forward(self, picture: np.ndarray) -> _Outputs:
        """Probabilities and feature maps of one preprocessed picture."""
        with self._lock:
            self._interpreter.set_tensor(self._input, picture[np.newaxis])
            self._interpreter.invoke()
            return (
                self._interpreter.get_tensor(self._probabilities)[0].copy(),
                self._interpreter.get_tensor(self._features)[0].copy(),
            )

    def _top(self, probabilities: np.ndarray, top_k: int) -> list[Prediction]:
        best = np.argsort(probabilities)[::-1][:top_k]
        return [Prediction(self._labels[i], float(probabilities[i]), int(i)) for i in best]

    def _explanation(self, outputs: _Outputs, top_k: int) -> Explanation:
        probabilities, features = outputs
        predictions = self._top(probabilities, top_k)
        return Explanation(predictions, class_activation_map(features, self._head, predictions[0].index))


def preprocess(picture: Image.Image, spec: Architecture = ARCHITECTURES[DEFAULT_ARCHITECTURE]) -> np.ndarray:
    """Turn an RGB picture into the input of ``spec``: the whole picture, square, scaled.

    For MobileNetV2 that is 224 x 224 x 3 in [-1, 1].
    """
    square = resize_square(picture, spec.input_size)
    return np.asarray(square, dtype=np.float32) * np.float32(spec.input_scale) + np.float32(spec.input_offset)


def _check_top_k(top_k: int) -> None:
    if not 1 <= top_k <= NUM_CLASSES:
        raise ValueError(f"top_k must be between 1 and {NUM_CLASSES}, got {top_k!r}")


def _load(
    model: str, weights: Weights, num_threads: int, on_progress: ProgressCallback | None
) -> tuple[Interpreter, Head]:
    files = converted_model(model, weights=weights, on_progress=on_progress)
    try:
        return _open(files, num_threads)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile):
        # Replaced by a damaged file since it was checked: rebuild once rather than fail.
        return _open(build_converted_model(model, weights=weights, on_progress=on_progress), num_threads)


def _open(files: ConvertedModel, num_threads: int) -> tuple[Interpreter, Head]:
    with _without_native_stderr():
        interpreter = Interpreter(model_path=str(files.network), num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter, load_head(files.head)


@contextlib.contextmanager
def _without_native_stderr() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 nowhere, for the next few milliseconds.

    LiteRT's C++ logger prints "INFO: Created TensorFlow Lite XNNPACK delegate
    for CPU." with no setting to turn it off; in a notebook it would show as a
    pink error box.  Only this process's native stderr is affected, briefly.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    nowhere = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(nowhere, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(nowhere)
        os.close(saved)


def _pick_outputs(interpreter: Interpreter) -> tuple[int, int]:
    """Indices of the probabilities and the feature maps, told apart by shape.

    LiteRT does not keep Keras's output order.
    """
    outputs = interpreter.get_output_details()
    probabilities = [o["index"] for o in outputs if len(o["shape"]) == 2 and o["shape"][-1] == NUM_CLASSES]
    features = [o["index"] for o in outputs if len(o["shape"]) == 4]
    if len(probabilities) != 1 or len(features) != 1:
        shapes = [o["shape"].tolist() for o in outputs]
        raise ModelUnavailableError(f"The converted model has outputs {shapes}, not probabilities and features.")
    return probabilities[0], features[0]
