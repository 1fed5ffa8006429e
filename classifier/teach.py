"""Teach MobileNet your own classes from a few photos each: a small linear model on its features.

MobileNet's last feature maps, averaged over the picture, describe a photo in a
few hundred numbers (1280 for MobileNetV2) that ImageNet training made good at
telling things apart.  A new classifier is a linear model on those numbers:

* with few photos (fewer than five in some class), each class is the mean of
  its photos' features, and a photo belongs to the class whose mean it points
  to most (nearest class mean, as *weight imprinting* does);
* with more, a regularised logistic regression from scikit-learn.

Each photo also teaches with its mirror image.  Being linear on the pooled
features, the taught model has class activation maps exactly as ImageNet's
head does, so :meth:`TaughtClassifier.explain` shows where a class was seen.

A taught classifier saves to a small ``.npz`` of plain arrays (never pickle):
the class names, the linear model, and which base network (and weights) it
needs.  Loading checks all of that, and any damage, before trusting it.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import numpy as np
from PIL import Image, ImageOps

from classifier.architectures import ARCHITECTURES
from classifier.explain import Head, class_activation_map
from classifier.images import ImageError, ImageSource
from classifier.model import BatchResult, Classifier, Explanation, Prediction

__all__ = [
    "MAX_CLASSES",
    "MAX_PHOTOS",
    "Evaluation",
    "Skipped",
    "TaughtClassifier",
    "TeachingError",
    "check_class_names",
    "load_taught",
    "photo_features",
    "preload_learning",
    "teach",
    "teach_features",
]

MAX_CLASSES: Final[int] = 20
MAX_PHOTOS: Final[int] = 500
REGRESSION_FROM: Final[int] = 5
"""Photos every class needs before a logistic regression is fitted rather than class means."""

_NEAREST_MEAN: Final[str] = "nearest class mean"
_REGRESSION: Final[str] = "logistic regression"
_COSINE_SCALE: Final[float] = 10.0
"""Class means are unit vectors; scaled cosines make probabilities neither flat nor overconfident."""
_FILE_FORMAT: Final[int] = 1
_FOLDS: Final[int] = 5


class TeachingError(ValueError):
    """Why the examples cannot teach a classifier, or a file cannot be loaded; the message is for a person."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A photo that could not teach: its class, which photo it was, and why."""

    class_name: str
    photo: str
    reason: str

    def __str__(self) -> str:
        return f"{self.photo} in “{self.class_name}”: {self.reason}"


@dataclass(frozen=True, eq=False)
class Evaluation:
    """How well a taught classifier does on photos it was not taught with (cross-validated).

    Attributes
    ----------
    classes
        The class names, in the order of the matrix.
    confusion
        ``confusion[i, j]``: photos of class ``i`` classified as class ``j``.
    method
        How the photos were held out: ``"leave-one-out"`` or ``"5-fold"``.
    """

    classes: tuple[str, ...]
    confusion: np.ndarray
    method: str

    @property
    def photos(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        """Share of held-out photos put in their own class."""
        return float(np.trace(self.confusion) / self.confusion.sum())

    @property
    def recall(self) -> dict[str, float]:
        """For each class, the share of its held-out photos recognised as it."""
        return {name: float(row[i] / row.sum()) for i, (name, row) in enumerate(zip(self.classes, self.confusion))}

    def __str__(self) -> str:
        return f"{self.accuracy:.0%} of {self.photos} photos right ({self.method} cross-validation)"


@dataclass(frozen=True, eq=False)
class _Examples:
    """The pooled, normalised features a classifier was taught with: one row per photo or mirror image."""

    features: np.ndarray
    labels: np.ndarray
    photos: np.ndarray  # which photo each row came from: a photo and its mirror are held out together


class TaughtClassifier:
    """Classifies photos into classes of your own, with a MobileNet's features and a linear head.

    Made by :meth:`Classifier.teach` or :func:`load_taught`.  ``classify``,
    ``classify_batch`` and ``explain`` work as :class:`Classifier`'s do;
    a :class:`Prediction`'s ``label`` is a class name and its ``index`` the
    class's position in :attr:`classes`.

    Attributes
    ----------
    base
        The network whose features it reads.
    classes
        The class names, in order.
    method
        ``"nearest class mean"`` or ``"logistic regression"``.
    skipped
        Photos that could not be read while teaching, and why.
    """

    def __init__(
        self,
        base: Classifier,
        classes: Sequence[str],
        weights: np.ndarray,
        bias: np.ndarray,
        *,
        method: str,
        skipped: Sequence[Skipped] = (),
        examples: _Examples | None = None,
    ) -> None:
        self.base = base
        self.classes: tuple[str, ...] = tuple(classes)
        self.method = method
        self.skipped: tuple[Skipped, ...] = tuple(skipped)
        self._head = Head((np.asarray(weights, np.float32),), (np.asarray(bias, np.float32),), ("linear",))
        self._examples = examples

    def __repr__(self) -> str:
        return f"TaughtClassifier(classes={self.classes!r}, base={self.base.model_name!r}, method={self.method!r})"

    def classify(self, source: ImageSource, *, top_k: int = 5) -> list[Prediction]:
        """The ``top_k`` most probable of the taught classes for one picture, highest first."""
        return self._top(self.base.feature_maps(source), top_k)

    def classify_batch(
        self, sources: Sequence[ImageSource], *, top_k: int = 5, on_progress: Callable[[int, int], None] | None = None
    ) -> list[BatchResult]:
        """:meth:`classify` for many pictures; a bad file becomes its :class:`ImageError`."""
        return [
            maps if isinstance(maps, ImageError) else self._top(maps, top_k)
            for maps in self.base.feature_maps_batch(sources, on_progress=on_progress)
        ]

    def explain(self, source: ImageSource, *, top_k: int = 5) -> Explanation:
        """Predictions, and where in the picture the first one was seen (a class activation map)."""
        maps = self.base.feature_maps(source)
        predictions = self._top(maps, top_k)
        return Explanation(predictions, class_activation_map(maps, self._head, predictions[0].index))

    def evaluate(self) -> Evaluation:
        """Cross-validate on the photos it was taught with: each is classified by a model taught without it.

        Leave-one-out for small sets, five folds (stratified by class) for larger
        ones; a photo's mirror image is always held out with it.

        Raises
        ------
        TeachingError
            If a class has a single photo (nothing would be left to teach it),
            or the classifier was loaded from a file (its photos are not saved).
        """
        if self._examples is None:
            raise TeachingError("A classifier opened from a file cannot be evaluated: its photos are not in the file.")
        return _cross_validate(self._examples, self.classes)

    def save(self, target: str | os.PathLike[str] | IO[bytes]) -> None:
        """Write the classifier to ``target`` (a path or a binary file): class names, model, base network.

        Only numbers and names: no pickled code, and no photo.
        """
        arrays = {
            "format": np.array(_FILE_FORMAT),
            "classes": np.array(self.classes),
            "weights": self._head.kernels[0],
            "bias": self._head.biases[0],
            "method": np.array(self.method),
            "base_model": np.array(self.base.model_name),
            "base_weights": np.array(self.base.weights_id),
        }
        if isinstance(target, (str, os.PathLike)):
            with open(target, "wb") as file:
                np.savez(file, **arrays)
        else:
            np.savez(target, **arrays)

    def _top(self, feature_maps: np.ndarray, top_k: int) -> list[Prediction]:
        if not 1 <= top_k:
            raise ValueError(f"top_k must be at least 1, got {top_k!r}")
        logits = _pooled(feature_maps[np.newaxis])[0] @ self._head.kernels[0] + self._head.biases[0]
        probabilities = _softmax(logits)
        best = np.argsort(probabilities)[::-1][:top_k]
        return [Prediction(self.classes[i], float(probabilities[i]), int(i)) for i in best]


def teach(
    base: Classifier,
    examples: Mapping[str, Sequence[ImageSource]],
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> TaughtClassifier:
    """Teach a classifier of ``examples``' classes on ``base``'s features; see :meth:`Classifier.teach`."""
    names = _checked_names(examples)
    photos = [(name, index, source) for name, sources in zip(names, examples.values()) for index, source in enumerate(sources)]
    _check_photo_count(len(photos))
    pictures, skipped = [], []
    for done, (name, index, source) in enumerate(photos, start=1):
        try:
            prepared = base.prepare(source)
        except ImageError as error:
            skipped.append(Skipped(name, _describe(source, index), str(error)))
        else:
            pictures.append((name, prepared))
        if on_progress is not None:
            on_progress(done, 2 * len(photos))
    features = photo_features(
        base, [picture for _, picture in pictures],
        on_progress=None if on_progress is None else lambda done, _total: on_progress(len(photos) + done, 2 * len(photos)),
    )
    by_class: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for (name, _), pair in zip(pictures, features):
        by_class[name].append(pair)
    return teach_features(base, by_class, skipped=skipped)


def photo_features(
    base: Classifier, pictures: Sequence[Image.Image], *, on_progress: Callable[[int, int], None] | None = None
) -> list[np.ndarray]:
    """What ``base`` sees in each picture and in its mirror image: one ``(2, channels)`` array per picture.

    The features a classifier is taught with (pooled, unit length); pass
    pictures made by :meth:`Classifier.prepare`.  ``on_progress`` gets
    ``(done, total)`` per picture.
    """
    def report(views_done: int, _views: int) -> None:
        if on_progress is not None and views_done % 2 == 0:
            on_progress(views_done // 2, len(pictures))

    both_ways = [view for picture in pictures for view in (picture, ImageOps.mirror(picture))]
    maps = base.feature_maps_batch(both_ways, on_progress=report)
    failed = next((item for item in maps if isinstance(item, ImageError)), None)
    if failed is not None:
        raise failed
    if not maps:
        return []
    return list(_pooled(np.stack(maps)).reshape(len(pictures), 2, -1))


def teach_features(
    base: Classifier, features: Mapping[str, Sequence[np.ndarray]], *, skipped: Sequence[Skipped] = ()
) -> TaughtClassifier:
    """Teach a classifier from features :func:`photo_features` computed with ``base``: class name -> arrays.

    The checks and errors of :func:`teach`; ``skipped`` lists photos of the
    classes that could not be read (a class left without any is refused, with why).
    """
    names = _checked_names(features)
    _check_photo_count(sum(len(pairs) for pairs in features.values()))
    for name, pairs in zip(names, features.values()):
        if not pairs:
            reasons = "; ".join(str(skip) for skip in skipped if skip.class_name == name)
            raise TeachingError(f"“{name}” has no photo this app can read" + (f": {reasons}" if reasons else "."))
    pairs = [pair for class_pairs in features.values() for pair in class_pairs]
    labels = [label for label, class_pairs in enumerate(features.values()) for _ in class_pairs]
    examples = _Examples(
        features=np.concatenate(pairs),
        labels=np.repeat(labels, 2),
        photos=np.repeat(np.arange(len(pairs)), 2),
    )
    weights, bias, method = _fit(examples.features, examples.labels, len(names))
    return TaughtClassifier(base, names, weights, bias, method=method, skipped=skipped, examples=examples)


def load_taught(
    source: str | os.PathLike[str] | bytes | IO[bytes],
    *,
    classifier: Classifier | Callable[[str], Classifier] | None = None,
) -> TaughtClassifier:
    """Open a classifier saved by :meth:`TaughtClassifier.save`, on the base network it was taught on.

    Parameters
    ----------
    source
        A path, the file's bytes, or a binary file.
    classifier
        The base network to use, or a function that returns it for the saved
        model name (such as :func:`classifier.session.shared_classifier`); by
        default ``Classifier(model=name)``.

    Raises
    ------
    TeachingError
        If the file is damaged or not a taught classifier, or ``classifier``
        is another network, or the same one with other weights.
    """
    arrays = _read_arrays(source)
    model, needed = str(arrays["base_model"]), str(arrays["base_weights"])
    if isinstance(classifier, Classifier):
        base = classifier
    else:
        base = (classifier or _new_classifier)(model)
    if base.weights_id != needed:
        raise TeachingError(
            f"This classifier was taught on {model} with other weights ({needed}); it only works on the "
            f"same network, and this one is {base.weights_id}."
        )
    if arrays["weights"].shape[0] != base.feature_channels:
        raise _not_a_taught_file()
    classes = [str(name) for name in arrays["classes"]]
    return TaughtClassifier(base, classes, arrays["weights"], arrays["bias"], method=str(arrays["method"]))


def preload_learning() -> None:
    """Import the parts of scikit-learn that teaching uses (about a second), so the first training need not wait."""
    import sklearn.linear_model
    import sklearn.model_selection  # noqa: F401


def _new_classifier(model: str) -> Classifier:
    return Classifier(model=model)


# --- learning -----------------------------------------------------------------------------------


def _fit(features: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, str]:
    """A linear head ``(weights, bias)`` for normalised features, and the method that made it.

    The classes' average weight is taken out of each class's: every logit moves
    by the same amount, so the probabilities stay, but what all classes share
    (much, for class means) no longer counts as evidence in a heatmap.
    """
    counts = np.bincount(labels, minlength=classes) // 2  # rows per class, each photo twice
    if counts.min() < REGRESSION_FROM:
        means = np.stack([features[labels == c].mean(axis=0) for c in range(classes)])
        weights = _COSINE_SCALE * means / np.linalg.norm(means, axis=1, keepdims=True)
        bias, method = np.zeros(classes), _NEAREST_MEAN
    else:
        # Imported only when there is enough to regress on.
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1.0, max_iter=1000).fit(features, labels)
        weights, bias, method = model.coef_, model.intercept_, _REGRESSION
        if classes == 2:  # scikit-learn keeps one row for two classes: softmax([-z/2, z/2]) is sigmoid(z)
            weights, bias = np.vstack([-weights / 2, weights / 2]), np.array([-bias[0] / 2, bias[0] / 2])
    weights = weights - weights.mean(axis=0)
    return weights.T.astype(np.float32), bias.astype(np.float32), method


def _cross_validate(examples: _Examples, classes: tuple[str, ...]) -> Evaluation:
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold

    originals = examples.labels[::2]  # one label per photo
    counts = Counter(originals.tolist())
    lonely = [classes[c] for c in range(len(classes)) if counts[c] < 2]
    if lonely:
        raise TeachingError(
            f"To measure accuracy every class needs at least two photos; “{lonely[0]}” has "
            f"{'one' if counts[classes.index(lonely[0])] == 1 else 'none'}."
        )
    if min(counts.values()) >= _FOLDS:
        splitter, method = StratifiedGroupKFold(n_splits=_FOLDS), f"{_FOLDS}-fold"
    else:
        splitter, method = LeaveOneGroupOut(), "leave-one-out"
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    for taught, held_out in splitter.split(examples.features, examples.labels, examples.photos):
        weights, bias, _ = _fit(examples.features[taught], examples.labels[taught], len(classes))
        tested = held_out[::2]  # the photo itself, not its mirror image
        predicted = np.argmax(examples.features[tested] @ weights + bias, axis=1)
        np.add.at(confusion, (examples.labels[tested], predicted), 1)
    return Evaluation(classes, confusion, method)


def _pooled(feature_maps: np.ndarray) -> np.ndarray:
    """Average each picture's maps over the grid and scale to unit length: ``(pictures, channels)``."""
    pooled = feature_maps.mean(axis=(1, 2))
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def _softmax(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits - logits.max())
    return exponentials / exponentials.sum()


# --- checks -------------------------------------------------------------------------------------


def _checked_names(examples: Mapping[str, object]) -> list[str]:
    if not isinstance(examples, Mapping):
        raise TypeError(f"examples must map class names to photos, got {type(examples).__name__}")
    return check_class_names(examples)


def check_class_names(names: Iterable[str]) -> list[str]:
    """The class names, trimmed, if they can name a classifier's classes.

    Raises
    ------
    TeachingError
        For fewer than two names or more than :data:`MAX_CLASSES`, an empty name,
        or two names that are the same but for case.
    """
    names = [str(name).strip() for name in names]
    if len(names) < 2:
        raise TeachingError(f"A classifier needs at least two classes to tell apart; got {len(names)}.")
    if len(names) > MAX_CLASSES:
        raise TeachingError(f"That is {len(names)} classes; a classifier can have at most {MAX_CLASSES}.")
    if "" in names:
        raise TeachingError("Every class needs a name.")
    seen: dict[str, str] = {}
    for name in names:
        if name.casefold() in seen:
            raise TeachingError(f"Two classes are called “{name}”; please give each class its own name.")
        seen[name.casefold()] = name
    return names


def _check_photo_count(count: int) -> None:
    if count > MAX_PHOTOS:
        raise TeachingError(f"That is {count} photos; a classifier can be taught with at most {MAX_PHOTOS}.")


def _describe(source: ImageSource, index: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return f"photo {index + 1}"


def _read_arrays(source: str | os.PathLike[str] | bytes | IO[bytes]) -> dict[str, np.ndarray]:
    """The arrays of a saved classifier, checked: names and shapes as :meth:`save` writes them."""
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with np.load(stream, allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in ("format", "classes", "weights", "bias", "method", "base_model", "base_weights")}
        well_formed = _well_formed(arrays)
    except Exception as error:  # a damaged zip, a missing array, an object array, a wrong type: all the same to us
        raise _not_a_taught_file() from error
    if not well_formed:
        raise _not_a_taught_file()
    return arrays


def _well_formed(arrays: dict[str, np.ndarray]) -> bool:
    classes, weights, bias = arrays["classes"], arrays["weights"], arrays["bias"]
    strings = ("classes", "method", "base_model", "base_weights")
    return (
        arrays["format"].dtype.kind in "iu" and int(arrays["format"]) == _FILE_FORMAT
        and all(arrays[key].dtype.kind == "U" for key in strings)
        and str(arrays["base_model"]) in ARCHITECTURES
        and str(arrays["method"]) in (_NEAREST_MEAN, _REGRESSION)
        and classes.ndim == 1 and 2 <= len(classes) <= MAX_CLASSES
        and len({str(name).strip().casefold() for name in classes}) == len(classes)
        and weights.ndim == 2 and weights.shape[1] == len(classes) and bias.shape == (len(classes),)
        and weights.dtype.kind == "f" and bias.dtype.kind == "f"
        and bool(np.isfinite(weights).all() and np.isfinite(bias).all())
    )


def _not_a_taught_file() -> TeachingError:
    return TeachingError("This file is not a taught classifier this app can open (or it is damaged).")
