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
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

import ipywidgets as widgets
from PIL import Image

from classifier.conversion import ModelUnavailableError
from classifier.examples import EXAMPLES, Example
from classifier.images import DEFAULT_MAX_BYTES, ImageError, encode_jpeg, load_image
from classifier.model import Classifier, Prediction
from classifier.plotting import figure_to_png, plot_predictions

__all__ = ["MAX_UPLOAD_BYTES", "ClassifierApp", "build_app"]

MAX_UPLOAD_BYTES: Final[int] = 50 * 2**20
"""All files of one upload travel in one websocket message; ``voila.json`` allows a bit more."""

TOP_K: Final[int] = 5
UNSURE_BELOW: Final[float] = 0.30
"""Below this top probability a card says the model is unsure instead of naming a winner."""

_MAX_NAME_CHARS: Final[int] = 60
_LOG = logging.getLogger(__name__)

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
.mn-card ol { margin: 4px 0 6px 0; padding-left: 1.6em; }
.mn-card .mn-error { color: #b00020; }
</style>
"""


@dataclass(frozen=True, slots=True)
class _Upload:
    """One file to classify: its name as the visitor sees it and its content."""

    name: str
    content: bytes


class ClassifierApp:
    """The app: an upload button, example photos, a status line and result cards.

    Parameters
    ----------
    classifier
        The classifier to use.  When omitted, a :class:`~classifier.Classifier`
        is built on a background thread so the page appears at once and shows
        progress if the model has to be converted first.

    Attributes
    ----------
    widget
        The root widget; displaying the app displays it.
    upload
        The :class:`ipywidgets.FileUpload`; setting its ``value`` classifies.
    example_buttons
        One button per bundled example photo.
    status
        One line that says what the app is doing or what went wrong.
    progress
        A progress bar, shown while a batch or the one-time conversion runs.
    results
        Holds one :class:`ipywidgets.HTML` card per classified file.
    """

    def __init__(self, classifier: Classifier | None = None) -> None:
        self.upload = widgets.FileUpload(
            accept="image/*", multiple=True, description="Upload photos", icon="upload",
            button_style="primary",
        )
        self.example_buttons = [self._example_button(example) for example in EXAMPLES]
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
        self.widget = widgets.VBox(
            [widgets.HTML(_STYLE), hint, self.upload, examples, self.status, self.progress, self.results]
        )
        self.upload.observe(self._on_upload, names="value")
        self._model: Future[Classifier] = Future()
        if classifier is not None:
            self._model.set_result(classifier)
        else:
            self._set_busy(True)
            threading.Thread(target=self._load_model, name="load-model", daemon=True).start()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return self.widget._repr_mimebundle_(**kwargs)

    def _example_button(self, example: Example) -> widgets.Button:
        button = widgets.Button(description=example.title, tooltip=f"Classify the example photo “{example.title}”")
        button.on_click(lambda _button: self._classify([_Upload(example.path.name, example.path.read_bytes())]))
        return button

    def _load_model(self) -> None:
        self._show_status("Preparing the model…")
        try:
            classifier = Classifier(on_progress=self._show_conversion_progress)
        except ModelUnavailableError as error:
            self._show_problem(str(error))
            self._model.set_exception(error)
            return
        except Exception as error:  # never let a traceback reach the page
            _LOG.exception("loading the model failed")
            self._show_problem("The model could not be loaded. Please reload the page in a minute.")
            self._model.set_exception(error)
            return
        self._model.set_result(classifier)
        self._hide_progress()
        self._show_status("Ready: upload photos or try an example.")
        self._set_busy(False)

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
        self._classify(uploads)

    def _classify(self, uploads: Sequence[_Upload]) -> None:
        self._set_busy(True)
        try:
            self._classify_and_show(uploads)
        except Exception:  # never let a traceback reach the page
            _LOG.exception("classifying %d file(s) failed", len(uploads))
            self._show_problem("Something went wrong while classifying. Please try again.")
        finally:
            self._hide_progress()
            self._set_busy(False)

    def _classify_and_show(self, uploads: Sequence[_Upload]) -> None:
        count = len(uploads)
        self._show_status(f"Working… reading {_photos(count)}.")
        self._show_cards()
        pictures: list[Image.Image | ImageError] = []
        for done, upload in enumerate(uploads, start=1):
            pictures.append(_load_or_error(upload.content))
            if count > 1:
                self._show_progress(done / (count + 1))
        readable = [picture for picture in pictures if isinstance(picture, Image.Image)]
        self._show_status(f"Working… classifying {_photos(len(readable))}.")
        classified = iter(self._model.result().classify_batch(readable, top_k=TOP_K))
        outcomes = [picture if isinstance(picture, ImageError) else next(classified) for picture in pictures]
        self._show_cards(*(
            widgets.HTML(
                _error_card(upload.name, str(outcome))
                if isinstance(outcome, ImageError)
                else _result_card(upload.name, picture, outcome)
            )
            for upload, picture, outcome in zip(uploads, pictures, outcomes)
        ))
        refused = sum(isinstance(outcome, ImageError) for outcome in outcomes)
        summary = f"Done: {_photos(count - refused)} classified"
        self._show_status(summary + (f", {refused} could not be read." if refused else "."))

    def _show_cards(self, *cards: widgets.HTML) -> None:
        old_cards = self.results.children
        self.results.children = cards
        for card in old_cards:
            _close_tree(card)

    def _set_busy(self, busy: bool) -> None:
        self.upload.disabled = busy
        for button in self.example_buttons:
            button.disabled = busy

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


def build_app(classifier: Classifier | None = None) -> ClassifierApp:
    """Build the photo classification app; display the result to show it.

    Parameters
    ----------
    classifier
        Use this classifier instead of building the default one in the background.

    Returns
    -------
    ClassifierApp
        The app; as the last expression of a notebook cell it displays itself.
    """
    return ClassifierApp(classifier)


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


def _load_or_error(content: bytes) -> Image.Image | ImageError:
    try:
        return load_image(content)
    except ImageError as error:
        return error


def _result_card(name: str, picture: Image.Image, predictions: Sequence[Prediction]) -> str:
    best = predictions[0]
    if best.probability < UNSURE_BELOW:
        verdict = (
            "The model is unsure about this one. Its best guess is "
            f"<b>{html.escape(best.label)}</b> ({best.probability:.1%})."
        )
    else:
        verdict = f"Most likely <b>{html.escape(best.label)}</b> ({best.probability:.1%})."
    items = "".join(
        f"<li><span class='mn-label'>{html.escape(p.label)}</span>: "
        f"<span class='mn-probability'>{p.probability:.1%}</span></li>"
        for p in predictions
    )
    chart = figure_to_png(plot_predictions(predictions))
    return (
        f"<div class='mn-card' role='group' aria-label='Results for {_attribute(name)}'>"
        f"{_name_line(name)}"
        f"<img class='mn-photo' alt='{_attribute(name)}' src='{_data_uri('image/jpeg', encode_jpeg(picture))}'>"
        f"<p class='mn-verdict'>{verdict}</p>"
        f"<ol class='mn-predictions'>{items}</ol>"
        f"<img class='mn-chart' alt='Bar chart of the predictions listed above' "
        f"src='{_data_uri('image/png', chart)}'>"
        "</div>"
    )


def _error_card(name: str, message: str) -> str:
    return (
        f"<div class='mn-card mn-card-error' role='group' aria-label='Problem with {_attribute(name)}'>"
        f"{_name_line(name)}<p class='mn-error'>{html.escape(message)}</p></div>"
    )


def _name_line(name: str) -> str:
    shown = name if len(name) <= _MAX_NAME_CHARS else name[: _MAX_NAME_CHARS - 1] + "…"
    return f"<p class='mn-name' title='{_attribute(name, 300)}'>{html.escape(shown)}</p>"


def _attribute(text: str, limit: int = _MAX_NAME_CHARS) -> str:
    return html.escape(text[:limit], quote=True)


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _photos(count: int) -> str:
    return f"{count} photo" if count == 1 else f"{count} photos"
