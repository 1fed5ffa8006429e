"""What one visitor teaches in the app, without any widget: classes of photos, training, trying, keeping.

A :class:`TeachSession` holds the visitor's classes (a name and photos each),
the classifier taught from them and its cross-validated evaluation, and the
photos tried on it; it does everything the app's Teach tab offers.  The base
network is the one the visitor chose in the Classify tab: the teach session
asks the visitor's :class:`~classifier.session.Session` for it.

Each photo's features are computed when it is added (about 60 ms for a photo and
its mirror image), so pressing Train only fits a linear model and
cross-validates it.  Everything stays in the kernel's memory: nothing is
written to disk but the download the visitor asks for.

As in :class:`~classifier.session.Session`, state is replaced as a whole under a
lock, so every method may be called from any thread; slow ones are meant for a
background thread.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np

from classifier.model import Classifier
from classifier.session import (
    Entry,
    Photo,
    Refusal,
    Result,
    Session,
    UploadError,
    read_photo,
    upload_problem,
)
from classifier.teach import (
    MAX_PHOTOS,
    Evaluation,
    TaughtClassifier,
    TeachingError,
    check_class_names,
    load_taught,
    photo_features,
    teach_features,
)

__all__ = [
    "MAX_APP_CLASSES",
    "MAX_SAVED_BYTES",
    "START_CLASSES",
    "THUMBNAIL_SIZE",
    "ClassPhoto",
    "PhotoClass",
    "TeachSession",
    "Training",
]

START_CLASSES: Final[int] = 2
MAX_APP_CLASSES: Final[int] = 10
"""Classes the app offers (the Python API takes up to :data:`classifier.teach.MAX_CLASSES`)."""
THUMBNAIL_SIZE: Final[int] = 128
"""Longest side of a class photo's thumbnail: sharp at the 64 CSS pixels it is shown at."""
MAX_SAVED_BYTES: Final[int] = 2**20
"""Largest file :meth:`TeachSession.open` reads: a saved classifier of 20 classes takes about 110 kB."""
_MAX_NAME_CHARS: Final[int] = 60

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, eq=False)
class ClassPhoto:
    """A photo teaching a class: an id that stays while other photos come and go, and the photo."""

    id: int
    photo: Photo


@dataclass(frozen=True, eq=False)
class PhotoClass:
    """A class the visitor teaches: its id, its name as typed, and its photos in the order added."""

    id: int
    name: str
    photos: tuple[ClassPhoto, ...] = ()


@dataclass(frozen=True)
class Training:
    """The classifier in use and what is known of it.

    Attributes
    ----------
    taught
        The classifier the Try-it photos are answered by.
    evaluation
        Its cross-validated accuracy, or ``None`` (opened from a file, or a
        class with a single photo).
    note
        Why there is no evaluation, in words for a person; empty if there is one.
    seconds
        How long teaching took (zero for a classifier opened from a file).
    source
        ``"taught"``, or the name of the file it was opened from.
    """

    taught: TaughtClassifier
    evaluation: Evaluation | None
    note: str
    seconds: float
    source: str = "taught"


@dataclass(frozen=True)
class _State:
    classes: tuple[PhotoClass, ...]
    features: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)  # (photo id, model) -> (2, channels)
    training: Training | None = None
    changed: bool = False  # the classes changed since the classifier in use was taught
    tried: tuple[Photo | Refusal, ...] = ()
    entries: tuple[Entry, ...] = ()


class TeachSession:
    """One visitor's own classes, the classifier taught from them, and the photos tried on it.

    Parameters
    ----------
    session
        The visitor's session: its current model is the base network, and it
        loads (and shares) the classifiers.

    Examples
    --------
    >>> teaching = TeachSession(Session())
    >>> first, second = teaching.classes
    >>> teaching.rename_class(first.id, "cat")
    >>> teaching.rename_class(second.id, "dog")
    >>> teaching.add_photos(first.id, [("tom.jpg", tom)])
    >>> teaching.add_photos(second.id, [("rex.jpg", rex)])
    >>> teaching.train().taught.classes
    ('cat', 'dog')
    >>> teaching.try_photos([("pet.jpg", pet)])
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._ids = iter(range(1, 2**62))
        self._lock = threading.Lock()  # guards _state and _ids
        self._state = _State(tuple(self._new_class() for _ in range(START_CLASSES)))

    # --- what the visitor has --------------------------------------------------------------

    @property
    def model(self) -> str:
        """The network that teaches: the one chosen in the visitor's session."""
        return self.session.model

    @property
    def classes(self) -> tuple[PhotoClass, ...]:
        return self._state.classes

    @property
    def training(self) -> Training | None:
        """The classifier in use and its evaluation; ``None`` until trained or opened."""
        return self._state.training

    @property
    def changed_since_training(self) -> bool:
        """Whether classes or photos changed after the classifier in use was taught."""
        return self._state.changed and self._state.training is not None

    @property
    def entries(self) -> tuple[Entry, ...]:
        """One entry per photo of the last Try-it upload, answered by the classifier in use."""
        return self._state.entries

    @property
    def photo_count(self) -> int:
        return sum(len(photo_class.photos) for photo_class in self._state.classes)

    # --- classes -----------------------------------------------------------------------------

    def add_class(self) -> PhotoClass:
        """Add an empty class, named "Class N".

        Raises
        ------
        TeachingError
            If there are :data:`MAX_APP_CLASSES` already.
        """
        with self._lock:
            if len(self._state.classes) >= MAX_APP_CLASSES:
                raise TeachingError(f"The app can teach at most {MAX_APP_CLASSES} classes.")
            added = self._new_class()
            self._state = replace(self._state, classes=(*self._state.classes, added), changed=True)
        return added

    def rename_class(self, class_id: int, name: str) -> str:
        """Rename a class; returns the name kept (printable characters, at most 60).

        Empty and repeated names are allowed while the visitor types; :meth:`train` refuses them.
        """
        kept = "".join(character for character in str(name) if character.isprintable())[:_MAX_NAME_CHARS]
        self._change_class(class_id, lambda photo_class: replace(photo_class, name=kept))
        return kept

    def remove_class(self, class_id: int) -> None:
        """Remove a class and its photos.

        Raises
        ------
        TeachingError
            If only two classes would be left.
        """
        with self._lock:
            if len(self._state.classes) <= START_CLASSES:
                raise TeachingError(f"A classifier needs at least {START_CLASSES} classes to tell apart.")
            kept = tuple(photo_class for photo_class in self._state.classes if photo_class.id != class_id)
            self._state = replace(self._state, classes=kept, changed=True)

    # --- photos ------------------------------------------------------------------------------

    def add_photos(
        self, class_id: int, files: Sequence[tuple[str, bytes | int]], *, on_progress: Progress | None = None
    ) -> tuple[Refusal, ...]:
        """Add ``files`` (``(name, content)`` pairs) to a class; returns those that could not be read.

        Each readable photo's features are computed now, with the current
        model, so training is quick.

        Raises
        ------
        UploadError
            If the upload as a whole is over the limits of one upload, or would
            take the classes past :data:`classifier.teach.MAX_PHOTOS` photos.
        ModelUnavailableError
            If the model cannot be loaded.
        """
        problem = upload_problem(len(files), sum(len(content) for _, content in files if isinstance(content, bytes)))
        if problem:
            raise UploadError(problem)
        if self.photo_count + len(files) > MAX_PHOTOS:
            raise UploadError(
                f"The classes can hold {MAX_PHOTOS} photos in all; they have {self.photo_count}. "
                "Please add fewer photos."
            )
        base = self.session.load_model()
        report = on_progress or (lambda done, total: None)
        read = []
        for done, (name, content) in enumerate(files, start=1):
            read.append(read_photo(base, name, content, display_size=THUMBNAIL_SIZE))
            report(done, 2 * len(files))  # reading is the first half of the work
        photos = [photo for photo in read if isinstance(photo, Photo)]
        features = photo_features(
            base, [photo.model_input for photo in photos], on_progress=lambda done, _: report(len(files) + done, 2 * len(files))
        )
        with self._lock:
            added = [ClassPhoto(next(self._ids), photo) for photo in photos]
            computed = {(taught.id, base.model_name): pair for taught, pair in zip(added, features)}
            self._state = replace(self._state, features={**self._state.features, **computed})
        self._change_class(class_id, lambda photo_class: replace(photo_class, photos=(*photo_class.photos, *added)))
        return tuple(photo for photo in read if isinstance(photo, Refusal))

    def remove_photo(self, class_id: int, photo_id: int) -> None:
        """Take a photo out of a class (an unknown id changes nothing)."""
        self._change_class(class_id, lambda photo_class: replace(
            photo_class, photos=tuple(photo for photo in photo_class.photos if photo.id != photo_id)
        ))

    # --- teaching, trying, keeping -------------------------------------------------------------

    def train(self, *, on_progress: Progress | None = None) -> Training:
        """Teach a classifier of the classes on the current model, and cross-validate it.

        Photos added while another model was chosen are read again by this
        one (with progress).  The Try-it photos are answered again by the new
        classifier.

        Raises
        ------
        TeachingError
            For names that cannot name classes, or a class without photos; the
            message says which.
        ModelUnavailableError
            If the model cannot be loaded.
        """
        state = self._state
        names = check_class_names(photo_class.name for photo_class in state.classes)
        for name, photo_class in zip(names, state.classes):
            if not photo_class.photos:
                raise TeachingError(f"“{name}” has no photos yet. Please add at least one.")
        base = self.session.load_model()
        started = time.perf_counter()
        features = self._features(state, base, on_progress)
        taught = teach_features(base, {
            name: [features[photo.id] for photo in photo_class.photos] for name, photo_class in zip(names, state.classes)
        })
        try:
            evaluation, note = taught.evaluate(), ""
        except TeachingError as why:
            evaluation, note = None, str(why)
        training = Training(taught, evaluation, note, time.perf_counter() - started)
        with self._lock:
            self._state = replace(self._state, training=training, changed=self._state.classes is not state.classes)
        self._answer(self._state.tried, training.taught)
        return training

    def try_photos(
        self, files: Sequence[tuple[str, bytes | int]], *, on_progress: Progress | None = None
    ) -> tuple[Entry, ...]:
        """Classify ``files`` with the classifier in use; they replace the photos tried so far.

        Raises
        ------
        TeachingError
            If there is no classifier yet.
        UploadError
            If the upload as a whole is over the limits.
        """
        training = self._require_training()
        problem = upload_problem(len(files), sum(len(content) for _, content in files if isinstance(content, bytes)))
        if problem:
            raise UploadError(problem)
        base = training.taught.base
        report = on_progress or (lambda done, total: None)
        photos = []
        for done, (name, content) in enumerate(files, start=1):
            photos.append(read_photo(base, name, content))
            report(done, 2 * len(files))
        return self._answer(tuple(photos), training.taught, lambda done, _: report(len(files) + done, 2 * len(files)))

    def saved(self) -> bytes:
        """The classifier in use as a ``.npz`` file (see :meth:`TaughtClassifier.save`), in memory.

        Raises
        ------
        TeachingError
            If there is no classifier yet.
        """
        buffer = io.BytesIO()
        self._require_training().taught.save(buffer)
        return buffer.getvalue()

    def open(self, name: str, content: bytes | int) -> Training:
        """Use the classifier saved in ``content`` (a file named ``name``) from now on; the classes stay.

        ``content`` may be the size of a file the browser held back.  The
        Try-it photos are answered again by the opened classifier.

        Raises
        ------
        TeachingError
            If the file is too big, damaged, not a saved classifier, or taught
            on weights this app does not have.
        ModelUnavailableError
            If its base model cannot be loaded.
        """
        size = content if isinstance(content, int) else len(content)
        if size > MAX_SAVED_BYTES:
            raise TeachingError(
                f"This file is {size / 2**20:.1f} MB, too big for a classifier this app saved (they take about "
                "100 kB). Please open the .npz file its Download link gave you."
            )
        if isinstance(content, int):
            raise TeachingError("This file did not arrive. Please open it again.")
        taught = load_taught(content, classifier=lambda model: self.session.load_model(model))
        training = Training(taught, None, "Its photos are not in the file, so its accuracy cannot be measured.",
                            0.0, source=name)
        with self._lock:
            self._state = replace(self._state, training=training, changed=False)
        self._answer(self._state.tried, taught)
        return training

    # --- helpers ------------------------------------------------------------------------------

    def _new_class(self) -> PhotoClass:
        class_id = next(self._ids)
        return PhotoClass(class_id, f"Class {class_id}")

    def _change_class(self, class_id: int, change: Callable[[PhotoClass], PhotoClass]) -> None:
        with self._lock:
            classes = tuple(
                change(photo_class) if photo_class.id == class_id else photo_class
                for photo_class in self._state.classes
            )
            self._state = replace(self._state, classes=classes, changed=True)

    def _features(self, state: _State, base: Classifier, on_progress: Progress | None) -> dict[int, np.ndarray]:
        """Every photo's features with ``base``, computing those it has not seen (photos added on another model)."""
        photos = [photo for photo_class in state.classes for photo in photo_class.photos]
        missing = [photo for photo in photos if (photo.id, base.model_name) not in state.features]
        computed = photo_features(base, [photo.photo.model_input for photo in missing], on_progress=on_progress)
        new = {(photo.id, base.model_name): pair for photo, pair in zip(missing, computed)}
        with self._lock:
            self._state = replace(self._state, features={**self._state.features, **new})
        known = {**state.features, **new}
        return {photo.id: known[photo.id, base.model_name] for photo in photos}

    def _require_training(self) -> Training:
        training = self._state.training
        if training is None:
            raise TeachingError("There is no classifier to use yet: press Train first (or open a saved one).")
        return training

    def _answer(
        self, photos: tuple[Photo | Refusal, ...], taught: TaughtClassifier, on_progress: Progress | None = None
    ) -> tuple[Entry, ...]:
        entries: list[Entry] = []
        readable = sum(isinstance(photo, Photo) for photo in photos)
        for photo in photos:
            if isinstance(photo, Refusal):
                entries.append(photo)
                continue
            explanation = taught.explain(photo.model_input, top_k=len(taught.classes))
            entries.append(Result(photo, explanation, f"your classifier (on {taught.base.model_name})"))
            if on_progress is not None:
                on_progress(sum(isinstance(entry, Result) for entry in entries), readable)
        with self._lock:
            self._state = replace(self._state, tried=photos, entries=tuple(entries))
        return self._state.entries
