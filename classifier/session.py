"""What one visitor of the app has, and what they can do with it, without any widget.

A :class:`Session` holds the visitor's photos and their results, the chosen
model and how many guesses to show, and does everything the app offers: read
and classify uploaded files, switch to another MobileNet (re-classifying the
same photos), change the number of guesses, draw a heatmap, export a CSV.
:mod:`classifier.ui` only shows a session and forwards clicks to it, so all of
this is tested, and usable, without a browser.

Every method is safe to call from any thread; slow ones (classifying, loading a
model) are meant for a background thread, and nothing here waits without a
time limit.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

from PIL import Image

from classifier.architectures import DEFAULT_ARCHITECTURE, architecture
from classifier.conversion import ModelUnavailableError, ProgressCallback
from classifier.explain import overlay_heatmap
from classifier.export import ClassifiedFile, results_csv
from classifier.images import ImageError, check_size, encode_jpeg, load_image
from classifier.model import Classifier, Explanation, Prediction

__all__ = [
    "DISPLAY_SIZE",
    "LOAD_TIMEOUT_S",
    "Entry",
    "MAX_FILES",
    "MAX_TOP_K",
    "MAX_UPLOAD_BYTES",
    "TOP_K",
    "UNSURE_BELOW",
    "ClassifierLoader",
    "Photo",
    "Refusal",
    "Result",
    "Session",
    "UploadError",
    "read_photo",
    "shared_classifier",
    "upload_problem",
]

MAX_FILES: Final[int] = 100
"""Files one upload may hold: more is refused as a whole, with a message."""
MAX_UPLOAD_BYTES: Final[int] = 50 * 2**20
"""Bytes one upload may carry in all (each photo also has :data:`classifier.images.DEFAULT_MAX_BYTES`)."""
TOP_K: Final[int] = 5
"""Guesses shown per photo until the visitor asks for more or fewer."""
MAX_TOP_K: Final[int] = 10
UNSURE_BELOW: Final[float] = 0.30
"""Below this top probability the model is called unsure rather than naming a winner."""
DISPLAY_SIZE: Final[int] = 480
"""Longest side of the copy of a photo shown to people: sharp at about 320 CSS pixels on phones."""
LOAD_TIMEOUT_S: Final[float] = 600
"""Longest wait for a model another thread is loading (a first download and conversion take 10-60 s)."""

_LOG = logging.getLogger(__name__)
_MAX_NAME_CHARS: Final[int] = 300

ClassifierLoader = Callable[[str, ProgressCallback], Classifier]
"""Builds the classifier for a model name, reporting conversion progress."""


class UploadError(ValueError):
    """An upload refused as a whole (too many files, too many bytes); the message is for a person."""


@dataclass(frozen=True, slots=True)
class Photo:
    """A readable upload: its name, what the models read, and a copy to show.

    Attributes
    ----------
    name
        The file's name as the visitor's device gave it (display it as text only).
    model_input
        The picture as the models read it (see :meth:`Classifier.prepare`).
    jpeg
        A re-encoded copy, at most :data:`DISPLAY_SIZE` pixels (or a thumbnail's
        size), without the upload's metadata (camera, GPS): the only form of the
        photo ever shown.
    """

    name: str
    model_input: Image.Image
    jpeg: bytes


@dataclass(frozen=True)
class Result:
    """A photo and what a model said about it.

    Attributes
    ----------
    photo
        The photo.
    explanation
        The :data:`MAX_TOP_K` most probable classes, and the heatmap of the first.
    model
        The architecture that answered, e.g. ``"MobileNetV2"``.
    """

    photo: Photo
    explanation: Explanation
    model: str

    @property
    def name(self) -> str:
        return self.photo.name

    def predictions(self, top_k: int) -> list[Prediction]:
        """The ``top_k`` most probable classes, highest first."""
        return self.explanation.predictions[:top_k]

    @property
    def unsure(self) -> bool:
        """Whether even the best guess is below :data:`UNSURE_BELOW`."""
        return self.explanation.predictions[0].probability < UNSURE_BELOW

    @cached_property
    def heatmap_jpeg(self) -> bytes:
        """The shown photo with the evidence for the first guess coloured over it."""
        with Image.open(io.BytesIO(self.photo.jpeg)) as shown:
            return encode_jpeg(overlay_heatmap(shown.convert("RGB"), self.explanation.heatmap))


@dataclass(frozen=True, slots=True)
class Refusal:
    """A file that could not be used, and why, in words for a person."""

    name: str
    message: str


Entry = Result | Refusal
"""One uploaded file as the app shows it: a result, or why it was refused."""


def upload_problem(count: int, total_bytes: int) -> str | None:
    """Why an upload of ``count`` files and ``total_bytes`` bytes is refused as a whole, or ``None``.

    The browser checks the same rules before sending anything, and shows this
    same message; the kernel checks again, since a script can send anything.
    """
    if count > MAX_FILES:
        return f"That is {count} files; one upload can hold {MAX_FILES}. Please upload fewer photos at a time."
    if total_bytes > MAX_UPLOAD_BYTES:
        return (
            f"These files add up to {total_bytes / 2**20:.1f} MB; one upload can carry "
            f"{MAX_UPLOAD_BYTES // 2**20} MB. Please upload fewer photos at a time."
        )
    return None


_SHARED: dict[str, Classifier] = {}
_SHARED_LOCK = threading.Lock()


def shared_classifier(
    model: str = DEFAULT_ARCHITECTURE, *, on_progress: ProgressCallback | None = None, num_threads: int = 2
) -> Classifier:
    """The process's classifier for ``model``, built on first use and then shared by all its sessions.

    Every visitor's session in a kernel, and every kernel forked from a process
    that loaded it first (see :mod:`classifier.forked_kernels`), then uses one
    copy of the model.  A ``Classifier`` is safe to share between threads.
    """
    # Held while one is built, so a second caller waits for it rather than building it twice.
    if not _SHARED_LOCK.acquire(timeout=LOAD_TIMEOUT_S):
        raise ModelUnavailableError(f"{model} is still being prepared. Please try again in a minute.")
    try:
        if model not in _SHARED:
            _SHARED[model] = Classifier(model=model, on_progress=on_progress, num_threads=num_threads)
        return _SHARED[model]
    finally:
        _SHARED_LOCK.release()


def _default_loader(model: str, on_progress: ProgressCallback) -> Classifier:
    return shared_classifier(model, on_progress=on_progress)


@dataclass
class _State:
    """Everything a session shows, replaced as a whole so readers never see half an update."""

    photos: tuple[Photo | Refusal, ...] = ()
    entries: tuple[Entry, ...] = ()
    model: str = DEFAULT_ARCHITECTURE
    top_k: int = TOP_K
    classifiers: dict[str, Classifier] = field(default_factory=dict)


class Session:
    """One visitor's photos, results and choices, and the operations on them.

    Parameters
    ----------
    classifier
        The classifier to start with; by default the session loads
        ``DEFAULT_ARCHITECTURE`` on first use (see :meth:`load_model`).
    load_classifier
        Builds the classifier for a model name; by default
        ``Classifier(model=name, on_progress=...)``.

    Examples
    --------
    >>> session = Session()
    >>> session.classify([("cup.jpg", open("cup.jpg", "rb").read())])
    (Result(photo=Photo(name='cup.jpg', ...), ...),)
    >>> session.switch_model("MobileNet")  # the same photos, answered by MobileNet
    >>> session.set_top_k(3)
    >>> print(session.csv())
    """

    def __init__(
        self, classifier: Classifier | None = None, *, load_classifier: ClassifierLoader = _default_loader
    ) -> None:
        self._load_classifier = load_classifier
        self._state = _State()
        self._lock = threading.Lock()  # guards _state and _loading
        self._loading: dict[str, Future[Classifier]] = {}
        if classifier is not None:
            self._state.classifiers[classifier.model_name] = classifier
            self._state.model = classifier.model_name

    # --- what the visitor has --------------------------------------------------------------

    @property
    def model(self) -> str:
        """The architecture that answers now."""
        return self._state.model

    @property
    def top_k(self) -> int:
        """How many guesses to show per photo."""
        return self._state.top_k

    @property
    def entries(self) -> tuple[Entry, ...]:
        """One entry per file of the last upload, in order."""
        return self._state.entries

    def has_model(self, name: str) -> bool:
        """Whether the classifier for ``name`` is loaded already."""
        return name in self._state.classifiers

    # --- what the visitor can do -----------------------------------------------------------

    def load_model(
        self, name: str | None = None, on_progress: ProgressCallback | None = None, *, timeout: float = LOAD_TIMEOUT_S
    ) -> Classifier:
        """Return the classifier for ``name`` (the current model by default), building it once.

        Building may convert the model first (10-60 s, with progress); call this
        from a background thread.  If another thread is building the same
        model, this waits for it, at most ``timeout`` seconds.

        Raises
        ------
        ModelUnavailableError
            If the model cannot be loaded (or is not ready in time); the
            message says why, for a person.
        ValueError
            For an unknown model name.
        """
        name = architecture(name or self.model).name
        with self._lock:
            if name in self._state.classifiers:
                return self._state.classifiers[name]
            building = self._loading.get(name)
            builds_it = building is None
            if builds_it:
                building = self._loading[name] = Future()
        if not builds_it:
            try:
                return building.result(timeout=timeout)
            except FutureTimeout:
                raise ModelUnavailableError(f"{name} is still being prepared. Please try again in a minute.") from None
        try:
            built = self._load_classifier(name, on_progress or (lambda message, fraction: None))
        except Exception as error:
            if not isinstance(error, ModelUnavailableError):
                _LOG.exception("loading %s failed", name)
                error = ModelUnavailableError(f"The {name} model could not be loaded. Please try again later.")
            with self._lock:
                del self._loading[name]
            building.set_exception(error)
            raise error from None
        with self._lock:
            self._state = _replace(self._state, classifiers={**self._state.classifiers, name: built})
            del self._loading[name]
        building.set_result(built)
        return built

    def classify(
        self, files: Sequence[tuple[str, bytes | int]], *, on_progress: Callable[[int, int], None] | None = None
    ) -> tuple[Entry, ...]:
        """Read and classify ``files``, ``(name, content)`` pairs; they replace the photos so far.

        A file that cannot be read becomes a :class:`Refusal` and the others
        are classified all the same.  ``content`` may also be the size of a file
        the browser held back for being over the per-photo limit: it becomes a
        refusal that says so.

        Raises
        ------
        UploadError
            If the upload as a whole is over :data:`MAX_FILES` or :data:`MAX_UPLOAD_BYTES`.
        ModelUnavailableError
            If the model cannot be loaded.
        """
        problem = upload_problem(len(files), sum(len(content) for _name, content in files if isinstance(content, bytes)))
        if problem:
            raise UploadError(problem)
        classifier = self.load_model()
        report = on_progress or (lambda done, total: None)
        photos = []
        for done, (name, content) in enumerate(files, start=1):
            photos.append(read_photo(classifier, name, content))
            report(done, 2 * len(files))  # reading is the first half of the work
        return self._answer(tuple(photos), classifier, lambda done, _total: report(len(files) + done, 2 * len(files)))

    def switch_model(
        self, name: str, *, on_load_progress: ProgressCallback | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> tuple[Entry, ...]:
        """Answer with the model ``name`` from now on, re-classifying the photos already there.

        ``on_load_progress`` hears about a one-time conversion, ``on_progress``
        gets ``(done, total)`` while the photos are classified again.

        Raises
        ------
        ModelUnavailableError
            If the model cannot be loaded; the session keeps the model it had.
        """
        classifier = self.load_model(name, on_load_progress)
        return self._answer(self._state.photos, classifier, on_progress)

    def set_top_k(self, top_k: int) -> None:
        """Show ``top_k`` guesses per photo (1 to :data:`MAX_TOP_K`); the model does not run again."""
        if not 1 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k!r}")
        with self._lock:
            self._state = _replace(self._state, top_k=top_k)

    def csv(self) -> str:
        """The current results as CSV: one row per guess shown (see :func:`classifier.export.results_csv`)."""
        state = self._state
        return results_csv(
            ClassifiedFile(entry.name, entry.predictions(state.top_k), entry.model)
            for entry in state.entries if isinstance(entry, Result)
        )

    # --- helpers ------------------------------------------------------------------------------

    def _answer(
        self, photos: tuple[Photo | Refusal, ...], classifier: Classifier,
        on_progress: Callable[[int, int], None] | None,
    ) -> tuple[Entry, ...]:
        readable = [photo for photo in photos if isinstance(photo, Photo)]
        explained = iter(classifier.explain_batch(
            [photo.model_input for photo in readable], top_k=MAX_TOP_K, on_progress=on_progress
        ))
        entries = tuple(
            photo if isinstance(photo, Refusal) else _entry(photo, next(explained), classifier.model_name)
            for photo in photos
        )
        with self._lock:
            self._state = _replace(self._state, photos=photos, entries=entries, model=classifier.model_name)
        return entries


def read_photo(
    classifier: Classifier, name: str, content: bytes | int, *, display_size: int = DISPLAY_SIZE
) -> Photo | Refusal:
    """Read one uploaded file: a :class:`Photo` for ``classifier``, or a :class:`Refusal` that says why not.

    ``content`` may be the size of a file the browser held back for being over
    the per-photo limit.  The file is decoded twice: as the model reads it, and
    at most ``display_size`` pixels to show.  One decode would do for both, but
    a big JPEG is then drafted either to the model's scale (1/8 of a
    12-megapixel photo leaves 500 pixels: a blurred card) or to the card's (and
    the answer moves by up to 2.6 points from what ``Classifier.classify``
    gives for the same file).
    """
    name = _shown_name(name)
    try:
        if not isinstance(content, bytes):
            check_size(content)
            raise ImageError("This file did not arrive. Please upload it again.")
        shown = encode_jpeg(load_image(content, size=display_size))
        return Photo(name, classifier.prepare(content), shown)
    except ImageError as error:
        return Refusal(name, str(error))


def _entry(photo: Photo, explained: Explanation | ImageError, model: str) -> Entry:
    if isinstance(explained, ImageError):
        return Refusal(photo.name, str(explained))
    return Result(photo, explained, model)


def _replace(state: _State, **changes: object) -> _State:
    return _State(**{**state.__dict__, **changes})


def _shown_name(name: str) -> str:
    """A file name fit to show (as text only): no control characters, bounded length."""
    cleaned = "".join(character for character in str(name) if character.isprintable()).strip() or "photo"
    return cleaned if len(cleaned) <= _MAX_NAME_CHARS else cleaned[: _MAX_NAME_CHARS - 1] + "…"
