"""The web app's widgets: upload photos, see each one classified on a card.

This is the only module that knows about ipywidgets; it turns visitor actions
into calls to :mod:`classifier` and results into HTML.  Everything a visitor
supplies (file names above all) is escaped before it reaches the page, and
only re-encoded pictures are shown, never uploaded bytes.
"""

from __future__ import annotations

import base64
import html
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import ipywidgets as widgets
from PIL import Image

from classifier.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
from classifier.conversion import ModelUnavailableError, ProgressCallback
from classifier.examples import EXAMPLES, Example
from classifier.explain import overlay_heatmap
from classifier.export import ClassifiedFile, results_csv
from classifier.images import DEFAULT_MAX_BYTES, ImageError, encode_jpeg, load_image, resize_square
from classifier.model import INPUT_SIZE, Classifier, Explanation, decode_for_model
from classifier.plotting import figure_to_png, plot_predictions

__all__ = ["MAX_UPLOAD_BYTES", "ClassifierApp", "build_app"]

MAX_UPLOAD_BYTES: Final[int] = 50 * 2**20
"""All files of one upload travel in one websocket message; ``voila.json`` allows a bit more."""

TOP_K: Final[int] = 5
"""Predictions shown per photo until the visitor asks for more or fewer."""
MAX_TOP_K: Final[int] = 10
UNSURE_BELOW: Final[float] = 0.30
"""Below this top probability a card says the model is unsure instead of naming a winner."""

_MAX_NAME_CHARS: Final[int] = 60
_SHOWN_SIZE: Final[int] = 480  # longest side of a card's photo: sharp at ~320 CSS pixels on phones
_LOG = logging.getLogger(__name__)

ClassifierLoader = Callable[[str, ProgressCallback], Classifier]
"""Builds the classifier for a model name, reporting conversion progress."""

_STYLE: Final[str] = """
<style>
.mn-hint { color: #444; margin: 0 0 4px 0; }
.mn-status { min-height: 1.5em; }
.mn-status .mn-problem { color: #b00020; font-weight: 600; }
.mn-results { display: flex; flex-wrap: wrap; gap: 12px; }
.mn-card { width: 340px; max-width: 100%; box-sizing: border-box; border: 1px solid #d0d7de;
           border-radius: 8px; padding: 10px; background: #fff; overflow-wrap: anywhere; }
.mn-card img.mn-photo { display: block; max-width: 100%; max-height: 320px; margin: 0 auto 6px auto;
                        border-radius: 4px; }
.mn-card img.mn-chart { display: block; width: 100%; height: auto; }
.mn-card .mn-name { font-weight: 600; margin: 0 0 4px 0; }
.mn-card .mn-verdict { margin: 4px 0; }
.mn-card .mn-model { color: #555; font-size: 0.9em; margin: 2px 0; }
.mn-card ol { margin: 4px 0 6px 0; padding-left: 1.6em; }
.mn-card .mn-error { color: #b00020; }
.mn-download { color: #0b57d0; text-decoration: underline; font-weight: 600; }
/* ipywidgets marks every view "jupyter-widgets-disconnected" once the kernel has died or restarted. */
.mn-connection-lost:not(.jupyter-widgets-disconnected) { display: none; }
.mn-connection-lost p { color: #b00020; font-weight: 600; margin: 4px 0; }
.mn-app.jupyter-widgets-disconnected::before, .mn-app .jupyter-widgets-disconnected::before { display: none; }
.mn-status.jupyter-widgets-disconnected { display: none; }
.mn-app .jupyter-widgets-disconnected:is(.jupyter-button, .widget-dropdown, .widget-slider) {
  opacity: 0.5; pointer-events: none;
}
</style>
"""


@dataclass(frozen=True, slots=True)
class _Upload:
    """One file to classify: its name as the visitor sees it and its content."""

    name: str
    content: bytes


@dataclass(frozen=True)
class _Photo:
    """A readable upload: its picture for the page and its input for the models.

    The model input is decoded exactly as :meth:`Classifier.classify` decodes
    bytes, so the app and the API give the same answers.
    """

    name: str
    shown: Image.Image
    model_input: Image.Image

    @cached_property
    def jpeg(self) -> bytes:
        return encode_jpeg(self.shown)


@dataclass(frozen=True, slots=True)
class _Refused:
    """A file that could not be read, and why."""

    name: str
    error: ImageError


@dataclass(frozen=True)
class _Classified:
    """A photo, what a model said about it, and the images drawn from that."""

    photo: _Photo
    explanation: Explanation
    model: str
    _charts: dict[int, bytes] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.photo.name

    @cached_property
    def heatmap_jpeg(self) -> bytes:
        return encode_jpeg(overlay_heatmap(self.photo.shown, self.explanation.heatmap))

    def chart_png(self, top_k: int) -> bytes:
        if top_k not in self._charts:
            self._charts[top_k] = figure_to_png(plot_predictions(self.explanation.predictions[:top_k]))
        return self._charts[top_k]


def _load_classifier(model: str, on_progress: ProgressCallback) -> Classifier:
    return Classifier(model=model, on_progress=on_progress)


class ClassifierApp:
    """The app: upload, examples, model and top-k controls, status, result cards.

    Parameters
    ----------
    classifier
        The classifier to start with.  When omitted, the default
        :class:`~classifier.Classifier` is built on a background thread so the
        page appears at once and shows progress if the model has to be
        converted first.
    load_classifier
        Builds the classifier for a model the visitor selects.

    Attributes
    ----------
    widget
        The root widget; displaying the app displays it.
    upload
        The :class:`ipywidgets.FileUpload`; setting its ``value`` classifies.
    example_buttons
        One button per bundled example photo.
    model
        Drop-down of the architectures; changing it re-classifies the photos.
    top_k
        How many predictions each card shows (1-10), without re-running the model.
    download
        A link to the current results as CSV, empty while there are none.
    status
        One line that says what the app is doing or what went wrong.
    progress
        A progress bar, shown while a batch or a one-time conversion runs.
    results
        Holds one card (a :class:`ipywidgets.VBox`) per file.
    ready
        A future that completes when the first model is loaded, with its
        exception if that failed.
    """

    def __init__(
        self, classifier: Classifier | None = None, *, load_classifier: ClassifierLoader = _load_classifier
    ) -> None:
        self.upload = widgets.FileUpload(
            accept="image/*", multiple=True, description="Upload photos", icon="upload",
            button_style="primary",
        )
        self.example_buttons = [self._example_button(example) for example in EXAMPLES]
        self.model = widgets.Dropdown(
            options=list(ARCHITECTURES), value=DEFAULT_ARCHITECTURE, description="Model:",
            layout=widgets.Layout(width="260px"),
        )
        self.top_k = widgets.IntSlider(
            value=TOP_K, min=1, max=MAX_TOP_K, description="Guesses:", continuous_update=False,
            layout=widgets.Layout(width="260px"),
        )
        self.download = widgets.HTML()
        self.status = widgets.HTML(layout=widgets.Layout(width="100%")).add_class("mn-status")
        self.progress = widgets.FloatProgress(
            min=0.0, max=1.0, layout=widgets.Layout(width="100%", max_width="480px", visibility="hidden")
        )
        self.results = widgets.Box(layout=widgets.Layout(width="100%")).add_class("mn-results")
        hint = widgets.HTML(
            "<p class='mn-hint'>JPEG, PNG, GIF, WebP, BMP or TIFF photos, up to "
            f"{DEFAULT_MAX_BYTES // 2**20} MB each and {MAX_UPLOAD_BYTES // 2**20} MB per upload. "
            "Photos are not stored.</p>"
        )
        examples = widgets.HBox(
            [widgets.HTML("Or try an example:"), *self.example_buttons],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        controls = widgets.HBox(
            [self.model, self.top_k, self.download],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        connection_lost = widgets.HTML(
            "<p role='alert'>The connection to the app was lost. Please reload the page.</p>"
        ).add_class("mn-connection-lost")
        self.widget = widgets.VBox([
            widgets.HTML(_STYLE), hint, self.upload, examples, controls, connection_lost, self.status,
            self.progress, self.results,
        ]).add_class("mn-app")
        self._load_classifier = load_classifier
        self._classifiers: dict[str, Classifier] = {}
        self._photos: list[_Photo | _Refused] = []
        self._results: list[_Classified | _Refused] = []
        self.ready: Future[None] = Future()
        self._loading = threading.Lock()  # one conversion at a time, whoever asks
        if classifier is not None:
            self._classifiers[classifier.model_name] = classifier
            self.model.value = classifier.model_name
            self.ready.set_result(None)
        self.upload.observe(self._on_upload, names="value")
        self.model.observe(self._on_model_change, names="value")
        self.top_k.observe(lambda _change: self._run_safely(self._redraw_cards), names="value")
        if classifier is None:
            self._set_busy(True)
            threading.Thread(target=self._load_first_model, name="load-model", daemon=True).start()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return self.widget._repr_mimebundle_(**kwargs)

    def _example_button(self, example: Example) -> widgets.Button:
        button = widgets.Button(description=example.title, tooltip=f"Classify the example photo “{example.title}”")
        button.on_click(lambda _button: self._classify([_Upload(example.path.name, example.path.read_bytes())]))
        return button

    def _load_first_model(self) -> None:
        self._show_status("Preparing the model…")
        try:
            self._classifier()
        except Exception as error:  # _classifier has shown the reason
            self.ready.set_exception(error)
            return
        self._show_status("Ready: upload photos or try an example.")
        self._set_busy(False)  # a callback in the gap before the next line waits for it
        self.ready.set_result(None)

    def _classifier(self) -> Classifier:
        """The classifier for the selected model, built (and converted) on first use."""
        name = self.model.value
        with self._loading:
            return self._classifiers.get(name) or self._load(name)

    def _load(self, name: str) -> Classifier:
        try:
            self._classifiers[name] = self._load_classifier(name, self._show_conversion_progress)
        except ModelUnavailableError as error:
            self._show_problem(str(error))
            raise
        except Exception:
            _LOG.exception("loading %s failed", name)
            self._show_problem(f"The {name} model could not be loaded. Please try again later.")
            raise
        finally:
            self._hide_progress()
        return self._classifiers[name]

    def _show_conversion_progress(self, message: str, fraction: float) -> None:
        self._show_status(message)
        self._show_progress(fraction)

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return  # our own reset below
        uploads = [_Upload(str(file["name"]), bytes(file["content"])) for file in files]
        # Clearing the value lets the same file be uploaded again and frees the bytes.
        self.upload.value = ()
        total = sum(len(upload.content) for upload in uploads)
        if total > MAX_UPLOAD_BYTES:
            self._show_problem(
                f"These files add up to {total / 2**20:.1f} MB; one upload can carry "
                f"{MAX_UPLOAD_BYTES // 2**20} MB. Please upload fewer photos at a time."
            )
            return
        self._classify(uploads)

    def _on_model_change(self, change: dict[str, Any]) -> None:
        self._run_safely(lambda: self._reclassify(previous_model=change["old"]))

    def _classify(self, uploads: Sequence[_Upload]) -> None:
        self._run_safely(lambda: self._read_and_classify(uploads))

    def _run_safely(self, work: Callable[[], None]) -> None:
        # Controls stay disabled until the first model is ready, so only a scripted
        # client gets here early: it waits, and gives up if the model failed.
        if self.ready.exception() is not None:
            return
        self._set_busy(True)
        try:
            work()
        except Exception:  # never let a traceback reach the page
            _LOG.exception("a visitor's action failed")
            self._show_problem("Something went wrong. Please try again.")
        finally:
            self._hide_progress()
            self._set_busy(False)

    def _read_and_classify(self, uploads: Sequence[_Upload]) -> None:
        count = len(uploads)
        self._show_status(f"Working… reading {_photo_count(count)}.")
        photos = []
        for done, upload in enumerate(uploads, start=1):
            photos.append(_read(upload))
            if count > 1:
                self._show_progress(done / (count + 1))
        self._photos = photos
        self._classify_photos()

    def _reclassify(self, previous_model: str) -> None:
        try:
            self._classifier()
        except Exception:
            # The reason is on the status line; keep the model that works.
            self.model.unobserve(self._on_model_change, names="value")
            self.model.value = previous_model
            self.model.observe(self._on_model_change, names="value")
            return
        if self._photos:
            self._classify_photos()
        else:
            self._show_status(f"Ready: {self.model.value} will classify your photos.")

    def _classify_photos(self) -> None:
        classifier = self._classifier()
        readable = [photo for photo in self._photos if isinstance(photo, _Photo)]
        self._show_status(f"Working… classifying {_photo_count(len(readable))} with {classifier.model_name}.")
        explained = iter(classifier.explain_batch([photo.model_input for photo in readable], top_k=MAX_TOP_K))
        self._results = [
            photo if isinstance(photo, _Refused) else _outcome(photo, next(explained), classifier.model_name)
            for photo in self._photos
        ]
        self._show_results()
        refused = sum(isinstance(result, _Refused) for result in self._results)
        summary = f"Done: {_photo_count(len(self._results) - refused)} classified"
        self._show_status(summary + (f", {refused} could not be read." if refused else "."))

    def _show_results(self) -> None:
        """Make a card for every stored result, and the CSV link."""
        old_cards = self.results.children
        self.results.children = tuple(self._card(result) for result in self._results)
        for card in old_cards:
            _close_tree(card)
        self.download.value = _download_link(self._results, self.top_k.value)

    def _redraw_cards(self) -> None:
        """Redraw the cards for the current top-k, heatmaps left as they are (no model runs)."""
        for card, result in zip(self.results.children, self._results):
            if isinstance(result, _Classified):
                body, heatmap_toggle = card.children
                body.value = _result_card(result, self.top_k.value, heatmap=heatmap_toggle.value)
        self.download.value = _download_link(self._results, self.top_k.value)

    def _card(self, result: _Classified | _Refused) -> widgets.VBox:
        if isinstance(result, _Refused):
            return widgets.VBox([widgets.HTML(_error_card(result.name, str(result.error)))]).add_class("mn-card")
        body = widgets.HTML(_result_card(result, self.top_k.value, heatmap=False))
        toggle = widgets.ToggleButton(
            description="Show heatmap", icon="eye",
            tooltip="Colour the places that made the model choose its first guess",
        )

        def show(heatmap: bool) -> None:
            toggle.description = "Hide heatmap" if heatmap else "Show heatmap"
            body.value = _result_card(result, self.top_k.value, heatmap=heatmap)

        toggle.observe(lambda change: self._run_safely(lambda: show(change["new"])), names="value")
        return widgets.VBox([body, toggle]).add_class("mn-card")

    def _set_busy(self, busy: bool) -> None:
        for control in (self.upload, self.model, self.top_k, *self.example_buttons):
            control.disabled = busy

    def _show_status(self, text: str) -> None:
        self.status.value = f"<span role='status' aria-live='polite'>{html.escape(text)}</span>"

    def _show_problem(self, text: str) -> None:
        self.status.value = f"<span class='mn-problem' role='alert'>{html.escape(text)}</span>"

    def _show_progress(self, fraction: float) -> None:
        self.progress.value = fraction
        self.progress.layout.visibility = "visible"

    def _hide_progress(self) -> None:
        self.progress.layout.visibility = "hidden"
        self.progress.value = 0.0


def build_app(
    classifier: Classifier | None = None, *, load_classifier: ClassifierLoader = _load_classifier
) -> ClassifierApp:
    """Build the photo classification app; display the result to show it.

    Parameters
    ----------
    classifier
        Use this classifier instead of building the default one in the background.
    load_classifier
        Builds the classifier for a model the visitor selects; by default
        ``Classifier(model=name, on_progress=...)``.

    Returns
    -------
    ClassifierApp
        The app; as the last expression of a notebook cell it displays itself.
    """
    return ClassifierApp(classifier, load_classifier=load_classifier)


def _close_tree(widget: widgets.Widget) -> None:
    """Close a widget with its children, layout and style.

    Only closed widgets leave the kernel's registry: without this every upload
    would keep its photos and charts alive for the rest of the session.
    """
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if part is not None:
            part.close()
    widget.close()


def _outcome(photo: _Photo, explained: Explanation | ImageError, model: str) -> _Classified | _Refused:
    if isinstance(explained, ImageError):
        return _Refused(photo.name, explained)
    return _Classified(photo, explained, model)


def _read(upload: _Upload) -> _Photo | _Refused:
    try:
        decoded = decode_for_model(upload.content)
    except ImageError as error:
        return _Refused(upload.name, error)
    return _Photo(upload.name, load_image(decoded, size=_SHOWN_SIZE), resize_square(decoded, INPUT_SIZE))


def _result_card(result: _Classified, top_k: int, *, heatmap: bool) -> str:
    predictions = result.explanation.predictions[:top_k]
    best = predictions[0]
    if best.probability < UNSURE_BELOW:
        verdict = (
            "The model is unsure about this one. Its best guess is "
            f"<b>{html.escape(best.label)}</b> ({best.probability:.1%})."
        )
    else:
        verdict = f"Most likely <b>{html.escape(best.label)}</b> ({best.probability:.1%})."
    if heatmap:
        photo = _data_uri("image/jpeg", result.heatmap_jpeg)
        alt = f"{result.name}, coloured where the model saw {best.label}"
    else:
        photo = _data_uri("image/jpeg", result.photo.jpeg)
        alt = result.name
    items = "".join(
        f"<li><span class='mn-label'>{html.escape(p.label)}</span>: "
        f"<span class='mn-probability'>{p.probability:.1%}</span></li>"
        for p in predictions
    )
    return (
        f"<div class='mn-card-body' role='group' aria-label='Results for {_attribute(result.name)}'>"
        f"{_name_line(result.name)}"
        f"<img class='mn-photo{' mn-heatmap' if heatmap else ''}' alt='{_attribute(alt, 200)}' src='{photo}'>"
        f"<p class='mn-verdict'>{verdict}</p>"
        f"<p class='mn-model'>Answered by {html.escape(result.model)}</p>"
        f"<ol class='mn-predictions'>{items}</ol>"
        f"<img class='mn-chart' alt='Bar chart of the predictions listed above' "
        f"src='{_data_uri('image/png', result.chart_png(top_k))}'>"
        "</div>"
    )


def _error_card(name: str, message: str) -> str:
    return (
        f"<div class='mn-card-body mn-card-error' role='group' aria-label='Problem with {_attribute(name)}'>"
        f"{_name_line(name)}<p class='mn-error'>{html.escape(message)}</p></div>"
    )


def _download_link(results: Sequence[_Classified | _Refused], top_k: int) -> str:
    classified = [
        ClassifiedFile(result.name, result.explanation.predictions[:top_k], result.model)
        for result in results
        if isinstance(result, _Classified)
    ]
    if not classified:
        return ""
    # The byte-order mark makes spreadsheet programs read non-ASCII file names correctly.
    csv_uri = _data_uri("text/csv;charset=utf-8", results_csv(classified).encode("utf-8-sig"))
    return f"<a class='mn-download' download='photo-predictions.csv' href='{csv_uri}'>Download results (CSV)</a>"


def _name_line(name: str) -> str:
    shown = name if len(name) <= _MAX_NAME_CHARS else name[: _MAX_NAME_CHARS - 1] + "…"
    return f"<p class='mn-name' title='{_attribute(name, 300)}'>{html.escape(shown)}</p>"


def _attribute(text: str, limit: int = _MAX_NAME_CHARS) -> str:
    return html.escape(text[:limit], quote=True)


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _photo_count(count: int) -> str:
    return f"{count} photo" if count == 1 else f"{count} photos"
