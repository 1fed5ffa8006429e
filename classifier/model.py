"""MobileNetV2 ImageNet classification: preprocess -> forward -> postprocess.

The forward pass runs the converted model (see :mod:`classifier.conversion`) with
LiteRT, so a process that classifies never imports TensorFlow once the cache is
warm.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Final

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from classifier.conversion import (
    ModelUnavailableError,
    ProgressCallback,
    build_converted_model,
    converted_model_path,
)
from classifier.images import ImageError, ImageSource, load_image, resize_square
from classifier.labels import NUM_CLASSES, imagenet_labels

__all__ = ["BatchResult", "Classifier", "INPUT_SIZE", "Prediction", "preprocess"]

INPUT_SIZE: Final[int] = 224
_MAX_BATCH: Final[int] = 8


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


BatchResult = list[Prediction] | ImageError
"""One entry of :meth:`Classifier.classify_batch`: predictions, or why the file was refused."""


class Classifier:
    """MobileNetV2 with ImageNet weights, run with LiteRT.

    Parameters
    ----------
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

    Examples
    --------
    >>> clf = Classifier()
    >>> clf.classify("grace_hopper.jpg", top_k=1)
    [Prediction(label='military uniform', probability=0.65..., index=652)]
    """

    def __init__(self, *, num_threads: int = 2, on_progress: ProgressCallback | None = None) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {num_threads!r}")
        self._labels = imagenet_labels()
        self._interpreter = _load_interpreter(num_threads, on_progress)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch_size = 1
        self._lock = threading.Lock()

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
        probabilities = self._forward(preprocess(_decode_for_model(source))[np.newaxis])
        return self._postprocess(probabilities[0], top_k)

    def classify_batch(
        self,
        sources: Sequence[ImageSource],
        *,
        top_k: int = 5,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[BatchResult]:
        """Classify many pictures; a bad file never stops the others.

        Decoding runs on a thread pool (Pillow releases the GIL) while the model
        runs batches of up to eight pictures.

        Parameters
        ----------
        sources
            Encoded image bytes, paths or :class:`PIL.Image.Image` objects.
        top_k
            How many predictions to return per picture, 1 to 1000.
        on_progress
            Called with ``(done, total)`` after each batch.

        Returns
        -------
        list
            One entry per source, in order: its predictions, highest probability
            first, or the :class:`ImageError` that says why it was refused.
        """
        _check_top_k(top_k)
        results: list[BatchResult] = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            inputs = pool.map(_preprocess_or_error, sources)
            while chunk := list(islice(inputs, _MAX_BATCH)):
                arrays = [item for item in chunk if isinstance(item, np.ndarray)]
                rows = iter(self._forward(np.stack(arrays)) if arrays else ())
                results.extend(
                    self._postprocess(next(rows), top_k) if isinstance(item, np.ndarray) else item
                    for item in chunk
                )
                if on_progress is not None:
                    on_progress(len(results), len(sources))
        return results

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            if batch.shape[0] != self._batch_size:
                self._interpreter.resize_tensor_input(self._input, list(batch.shape))
                self._interpreter.allocate_tensors()
                self._batch_size = batch.shape[0]
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()

    def _postprocess(self, probabilities: np.ndarray, top_k: int) -> list[Prediction]:
        best = np.argsort(probabilities)[::-1][:top_k]
        return [Prediction(self._labels[i], float(probabilities[i]), int(i)) for i in best]


def preprocess(picture: Image.Image) -> np.ndarray:
    """Turn an RGB picture into MobileNetV2's input: 224 x 224 x 3, scaled to [-1, 1]."""
    square = resize_square(picture, INPUT_SIZE)
    return np.asarray(square, dtype=np.float32) / 127.5 - 1.0


def _decode_for_model(source: ImageSource) -> Image.Image:
    # Big JPEGs decode at 1/2 to 1/8 scale (cheap); the one resize happens in preprocess.
    return load_image(source, size=INPUT_SIZE, shrink=False)


def _preprocess_or_error(source: ImageSource) -> np.ndarray | ImageError:
    try:
        return preprocess(_decode_for_model(source))
    except ImageError as error:
        return error


def _check_top_k(top_k: int) -> None:
    if not 1 <= top_k <= NUM_CLASSES:
        raise ValueError(f"top_k must be between 1 and {NUM_CLASSES}, got {top_k!r}")


def _load_interpreter(num_threads: int, on_progress: ProgressCallback | None) -> Interpreter:
    path = converted_model_path(on_progress)
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    except ValueError:
        # A torn or corrupt cache file: rebuild it once rather than fail.
        path = build_converted_model(on_progress)
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    interpreter.allocate_tensors()
    if interpreter.get_output_details()[0]["shape"][-1] != NUM_CLASSES:
        raise ModelUnavailableError(f"The cached model at {path} does not have {NUM_CLASSES} outputs.")
    return interpreter
