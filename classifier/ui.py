"""The web app's widgets: they show a :class:`~classifier.session.Session` and forward clicks to it.

The app has two tabs.  "Classify" is built here: what a visitor has and can do
lives in the session, and here each piece of it gets a widget: the photo
input, the example buttons, the model and guess controls, a status line, and
one :class:`Card` per file.  "Teach" is built by :mod:`classifier.teach_ui` the
first time it is opened, so a visitor who only classifies never pays for it.
Everything a visitor supplies (file names above all) is escaped before it
reaches the page, and only re-encoded pictures are shown.

Slow work runs on two background threads per tab, so the kernel's main thread
only forwards events: one for classifying and loading models, one for
redrawing (guesses, heatmaps), so neither a conversion nor a big upload
freezes the controls that do not depend on it.
"""

from __future__ import annotations

import base64
import html
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import ipywidgets as widgets
from ipywidgets.widgets.widget_bool import ToggleButtonStyle
from ipywidgets.widgets.widget_string import HTMLStyle
from matplotlib.figure import Figure

from classifier.architectures import ARCHITECTURES
from classifier.conversion import ModelUnavailableError
from classifier.examples import EXAMPLES, Example
from classifier.images import DEFAULT_MAX_BYTES
from classifier.model import Classifier
from classifier.photo_input import PhotoInput
from classifier.plotting import figure_to_png, plot_predictions
from classifier.session import (
    MAX_FILES,
    MAX_TOP_K,
    MAX_UPLOAD_BYTES,
    ClassifierLoader,
    Entry,
    Refusal,
    Result,
    Session,
    UploadError,
    upload_problem,
)

if TYPE_CHECKING:
    from classifier.teach_ui import TeachApp

__all__ = [
    "Card",
    "CardParts",
    "ClassifierApp",
    "Panel",
    "RefusalCard",
    "build_app",
    "display_data",
    "download_link",
    "example_button",
    "photo_count",
]

_MAX_NAME_CHARS: Final[int] = 60
_READY: Final[str] = "Ready: upload photos or try an example."
_LOG = logging.getLogger(__name__)

_STYLE: Final[str] = """
<style>
.mn-app { --jp-widgets-inline-height: 44px; max-width: 100%; }
.mn-app .jupyter-button { min-height: 44px; }
/* Text keeps its own line height; only the controls grow to the 44 px a finger needs. */
.mn-app .widget-html-content { line-height: 1.45; }
.mn-hint { color: #444; margin: 0 0 4px 0; }
/* Tabs as tall as the other controls, for fingers. */
.mn-app { --jp-widgets-horizontal-tab-height: 44px; }
.mn-app .lm-TabBar-tab { font-size: 16px; }
.mn-status { min-height: 1.5em; }
.mn-status .mn-problem { color: #b00020; font-weight: 600; }
.mn-cards { display: flex; flex-wrap: wrap; gap: 12px; }
.mn-card { width: 340px; max-width: 100%; box-sizing: border-box; border: 1px solid #d0d7de;
           border-radius: 8px; padding: 10px; background: #fff; overflow-wrap: anywhere; }
.mn-card img.mn-photo { display: block; max-width: 100%; max-height: 320px; margin: 0 auto 6px auto;
                        border-radius: 4px; }
.mn-card .jp-OutputArea-output img { width: 100%; max-width: 100%; height: auto; }
.mn-card .jp-OutputArea-prompt { display: none; }
.mn-card .mn-name { font-weight: 600; margin: 0 0 4px 0; }
.mn-card .mn-verdict { margin: 4px 0; }
.mn-card .mn-model { color: #555; font-size: 0.9em; margin: 2px 0; }
.mn-card ol { margin: 4px 0 6px 0; padding-left: 1.6em; }
.mn-card .mn-error { color: #b00020; }
.mn-download { color: #0b57d0; text-decoration: underline; font-weight: 600; display: inline-flex;
               align-items: center; min-height: 44px; padding: 0 4px; }
/* ipywidgets marks every view "jupyter-widgets-disconnected" once the kernel has died or restarted;
   the photo input marks the body "mn-offline" once the server has been unreachable for a while. */
body:not(.mn-offline) .mn-connection-lost:not(.jupyter-widgets-disconnected) { display: none; }
body.mn-offline .mn-status { display: none; }
body.mn-offline .mn-app :is(.jupyter-button, .widget-dropdown, .mn-input) { opacity: 0.5; pointer-events: none; }
.mn-connection-lost p { color: #b00020; font-weight: 600; margin: 4px 0; }
body[data-voila] .mn-connection-lost .mn-in-notebook,
body:not([data-voila]) .mn-connection-lost .mn-in-voila { display: none; }
.mn-app.jupyter-widgets-disconnected::before, .mn-app .jupyter-widgets-disconnected::before { display: none; }
.mn-status.jupyter-widgets-disconnected { display: none; }
.mn-app .jupyter-widgets-disconnected:is(.jupyter-button, .widget-dropdown, .mn-input) {
  opacity: 0.5; pointer-events: none;
}
</style>
"""


@dataclass(frozen=True)
class CardParts:
    """A layout and styles that every card shares: each widget of its own would cost messages.

    Every widget has a layout and (most) a style, widgets of their own by
    default; 100 cards would send 1300 messages to be made and 1300 to be
    closed (500 each, shared), past the 1000 messages a second Jupyter Server lets through, or the
    1000 the kernel's message queue holds while the server is busy.
    """

    layout: widgets.Layout = field(default_factory=widgets.Layout)
    text: HTMLStyle = field(default_factory=HTMLStyle)
    button: ToggleButtonStyle = field(default_factory=ToggleButtonStyle)


class Card(widgets.VBox):
    """One photo's result: its name, the photo or its heatmap, the guesses as text and as a chart.

    Each part is a widget of its own, so changing the number of guesses
    redraws only the text and the chart, and the heatmap toggle only the photo.

    Attributes
    ----------
    result
        What the card shows.
    photo, guesses
        HTML widgets with the photo (or heatmap) and the verdict, model and guesses.
    chart
        An :class:`ipywidgets.Output` showing the bar chart, a matplotlib figure.
    heatmap
        Toggle button: colour the places that made the model choose its first guess.
    """

    def __init__(self, result: Result, top_k: int, parts: CardParts | None = None) -> None:
        parts = parts or CardParts()
        self.result = result
        self._charts: dict[int, dict[str, Any]] = {}
        # Every part is created with its final state and the shared layout and styles: a card
        # costs five messages to make and five to close, and no updates.
        text = {"layout": parts.layout, "style": parts.text}
        self.photo = widgets.HTML(_name_html(result.name) + _photo_html(result, heatmap=False), **text)
        self.guesses = widgets.HTML(_guesses_html(result, top_k), **text)
        self.chart = widgets.Output(outputs=(self._chart(top_k),), layout=parts.layout)
        self.heatmap = widgets.ToggleButton(
            description="Show heatmap", tooltip="Colour the places that made the model choose its first guess",
            layout=parts.layout, style=parts.button,
        )
        super().__init__(
            [self.photo, self.guesses, self.chart, self.heatmap], _dom_classes=("mn-card",), layout=parts.layout
        )

    def show_top_k(self, top_k: int) -> None:
        """Show ``top_k`` guesses, as text and as a chart; the photo is left alone."""
        self.guesses.value = _guesses_html(self.result, top_k)
        self.chart.outputs = (self._chart(top_k),)

    def _chart(self, top_k: int) -> dict[str, Any]:
        if top_k not in self._charts:
            self._charts[top_k] = display_data(
                plot_predictions(self.result.predictions(top_k)), "Bar chart of the guesses listed above"
            )
        return self._charts[top_k]

    def show_heatmap(self, shown: bool) -> None:
        """Show the photo with its heatmap, or without; nothing else changes."""
        self.photo.value = _name_html(self.result.name) + _photo_html(self.result, heatmap=shown)
        self.heatmap.description = "Hide heatmap" if shown else "Show heatmap"


class RefusalCard(widgets.VBox):
    """A file that could not be used: its name and why, in plain words."""

    def __init__(self, refusal: Refusal, parts: CardParts | None = None) -> None:
        parts = parts or CardParts()
        self.refusal = refusal
        message = (
            f"<div class='mn-card-body mn-card-error' role='group' aria-label='Problem with {_attribute(refusal.name)}'>"
            f"{_name_html(refusal.name)}<p class='mn-error'>{html.escape(refusal.message)}</p></div>"
        )
        super().__init__(
            [widgets.HTML(message, layout=parts.layout, style=parts.text)], _dom_classes=("mn-card",),
            layout=parts.layout,
        )


class Panel:
    """What each tab has: a status line, a progress bar, and two background lanes for its work.

    Subclasses switch their controls off and on in :meth:`_set_busy`: off while
    any job submitted to the work lane is pending.

    Attributes
    ----------
    status, progress
        One line saying what the tab does or what went wrong, and a progress bar.
    """

    def __init__(self, name: str, card_parts: CardParts | None = None) -> None:
        self._card_parts = card_parts or CardParts()
        self.status = widgets.HTML(layout=widgets.Layout(width="100%")).add_class("mn-status")
        self.progress = widgets.FloatProgress(
            min=0.0, max=1.0, layout=widgets.Layout(width="100%", max_width="480px", visibility="hidden")
        )
        self._work = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-work")
        self._redraw = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-redraw")
        self._pending_work = 0  # jobs submitted to _work and not finished: the controls wait for them
        self._pending_lock = threading.Lock()

    def wait(self, timeout: float = 300) -> None:
        """Return once everything asked of the tab so far is done (for tests and scripts).

        Raises
        ------
        TimeoutError
            If that takes longer than ``timeout`` seconds.
        """
        pending = [lane.submit(lambda: None) for lane in (self._work, self._redraw)]
        if wait_for(pending, timeout=timeout).not_done:
            raise TimeoutError(f"the app is still busy after {timeout} s")

    def _set_busy(self, busy: bool) -> None:
        raise NotImplementedError

    def _submit(self, lane: ThreadPoolExecutor, work: Callable[[], None]) -> Future[None]:
        """Run ``work`` on ``lane``; while work is pending on the work lane, the controls are off."""
        counts = lane is self._work
        if counts:
            self._count_work(+1)

        def guarded() -> None:
            try:
                work()
            except Exception:  # never let a traceback reach the page
                _LOG.exception("a visitor's action failed")
                self._show_problem("Something went wrong. Please try again.")
            finally:
                if counts:
                    self._hide_progress()
                    self._count_work(-1)

        return lane.submit(guarded)

    def _count_work(self, change: int) -> None:
        with self._pending_lock:  # held while the controls change, so the last count always wins
            self._pending_work += change
            self._set_busy(self._pending_work > 0)

    def _show_cards(self, cards: widgets.Box, entries: Sequence[Entry], top_k: int) -> None:
        """Show one card per entry in ``cards``, closing the cards shown before."""
        old = cards.children
        cards.children = tuple(self._card(entry, top_k) for entry in entries)
        for card in old:
            _close_card(card)

    def _card(self, entry: Entry, top_k: int) -> Card | RefusalCard:
        if isinstance(entry, Refusal):
            return RefusalCard(entry, self._card_parts)
        card = Card(entry, top_k, self._card_parts)
        card.heatmap.observe(lambda change: self._submit(self._redraw, lambda: card.show_heatmap(change["new"])),
                             names="value")
        return card

    def _show_status(self, text: str, line: widgets.HTML | None = None) -> None:
        """Say what the tab does, in the status line (or another ``line`` nearer the control concerned)."""
        (line or self.status).value = f"<span role='status' aria-live='polite'>{html.escape(text)}</span>"

    def _show_problem(self, text: str, line: widgets.HTML | None = None) -> None:
        """Say what went wrong, in the status line (or another ``line`` nearer the control concerned)."""
        (line or self.status).value = f"<span class='mn-problem' role='alert'>{html.escape(text)}</span>"

    def _show_conversion(self, message: str, fraction: float) -> None:
        self._show_status(message)
        self._show_progress(fraction)

    def _show_steps(self, done: int, total: int) -> None:
        if total > 2:  # a bar for batches; one photo takes no time to watch
            self._show_progress(done / total)

    def _show_progress(self, fraction: float) -> None:
        if abs(fraction - self.progress.value) < 0.02 and fraction < 1:
            return  # steps a person cannot see would only add messages
        self.progress.value = fraction
        self.progress.layout.visibility = "visible"

    def _hide_progress(self) -> None:
        self.progress.layout.visibility = "hidden"
        self.progress.value = 0.0


class ClassifierApp(Panel):
    """The app: a "Classify" tab (photo input, examples, model and guess controls, cards) and a "Teach" tab.

    Parameters
    ----------
    session
        What the app shows and works on; a new :class:`Session` by default,
        which loads its model in the background while the page appears.

    Attributes
    ----------
    session
        The visitor's session.
    widget
        The root widget; displaying the app displays it.
    tabs
        The two tabs; the "Teach" tab is built the first time it is selected.
    teach
        The Teach tab (a :class:`classifier.teach_ui.TeachApp`), or ``None`` until opened.
    photo_input
        The upload button, drop area and paste target.
    example_buttons
        One button per bundled example photo.
    model_choice
        Drop-down of the MobileNets; choosing one re-classifies the photos (and
        is the network the Teach tab teaches on).
    guesses
        How many guesses each card shows (1-10); the model does not run again.
    download
        A link to the results as CSV, empty while there are none.
    status, progress
        One line saying what the tab does or what went wrong, and a progress bar.
    cards
        Holds one :class:`Card` or :class:`RefusalCard` per file.
    """

    def __init__(self, session: Session) -> None:
        super().__init__("classifier")
        self.session = session
        self.teach: TeachApp | None = None
        self.photo_input = PhotoInput(
            on_upload=self._on_upload, on_refused=self._on_refused, max_files=MAX_FILES,
            max_file_bytes=DEFAULT_MAX_BYTES, max_total_bytes=MAX_UPLOAD_BYTES,
        ).add_class("mn-input")
        self.example_buttons = [example_button(example, self._classify) for example in EXAMPLES]
        self.model_choice = widgets.Dropdown(
            options=list(ARCHITECTURES), value=session.model, description="Model:",
            layout=widgets.Layout(width="260px"),
        )
        # A drop-down rather than a slider: phones show their own picker, easy to tap.
        self.guesses = widgets.Dropdown(
            options=list(range(1, MAX_TOP_K + 1)), value=session.top_k, description="Guesses:",
            layout=widgets.Layout(width="180px"),
        )
        self.download = widgets.HTML()
        self.cards = widgets.Box(layout=widgets.Layout(width="100%")).add_class("mn-cards")
        classify = widgets.VBox([
            widgets.HTML(
                "<p class='mn-hint'>JPEG, PNG, GIF, WebP, BMP or TIFF photos, up to "
                f"{DEFAULT_MAX_BYTES // 2**20} MB each, {MAX_FILES} photos and "
                f"{MAX_UPLOAD_BYTES // 2**20} MB per upload. Photos are not stored.</p>"
            ),
            self.photo_input,
            widgets.HBox(
                [widgets.HTML("Or try an example:"), *self.example_buttons],
                layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
            ),
            widgets.HBox(
                [self.model_choice, self.guesses, self.download],
                layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
            ),
            self.status,
            self.progress,
            self.cards,
        ])
        self.tabs = widgets.Tab([classify, widgets.VBox()], titles=("Classify", "Teach"))
        self.widget = widgets.VBox([
            widgets.HTML(_STYLE),
            widgets.HTML(
                "<p role='alert' class='mn-in-voila'>The connection to the app was lost. Please reload the page.</p>"
                "<p role='alert' class='mn-in-notebook'>The kernel has restarted or stopped. "
                "Run the cell again to start the app.</p>"
            ).add_class("mn-connection-lost"),
            self.tabs,
        ]).add_class("mn-app")
        self.model_choice.observe(self._on_model_choice, names="value")
        self.guesses.observe(self._on_guesses, names="value")
        self.tabs.observe(self._on_tab, names="selected_index")
        self._submit(self._work, self._prepare_first_model)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return self.widget._repr_mimebundle_(**kwargs)

    def wait(self, timeout: float = 300) -> None:
        """Return once everything asked of the app so far, in both tabs, is done (for tests and scripts).

        Raises
        ------
        TimeoutError
            If that takes longer than ``timeout`` seconds.
        """
        super().wait(timeout)
        if self.teach is not None:
            self.teach.wait(timeout)

    # --- events (on the kernel's main thread: they only hand work over) ----------------------

    def _on_upload(self, files: list[tuple[str, bytes | int]]) -> None:
        self._classify(files)

    def _on_refused(self, count: int, total_bytes: int) -> None:
        self._show_problem(upload_problem(count, total_bytes) or "This upload could not be taken.")

    def _on_model_choice(self, change: dict[str, Any]) -> None:
        if change["new"] != self.session.model:
            self._submit(self._work, lambda: self._switch_model(change["new"]))

    def _on_guesses(self, change: dict[str, Any]) -> None:
        self.session.set_top_k(change["new"])
        self._submit(self._redraw, self._redraw_guesses)

    def _on_tab(self, change: dict[str, Any]) -> None:
        if change["new"] == 1 and self.teach is None:
            # Imported and built on first use: visitors who only classify never pay for it.
            from classifier.teach_ui import TeachApp, TeachSession

            self.teach = TeachApp(TeachSession(self.session), self._card_parts)
            self.tabs.children = (self.tabs.children[0], self.teach.widget)

    def _classify(self, files: list[tuple[str, bytes | int]]) -> None:
        self._submit(self._work, lambda: self._read_and_classify(files))

    # --- work (on the background threads) --------------------------------------------------

    def _prepare_first_model(self) -> None:
        self._show_status(f"Preparing {self.session.model}…")
        try:
            self.session.load_model(on_progress=self._show_conversion)
        except ModelUnavailableError as error:
            self._show_problem(str(error))
            return  # controls stay off: there is no model to use
        if self.session.entries:
            self._show_entries()
        else:
            self._show_status(_READY)

    def _read_and_classify(self, files: list[tuple[str, bytes | int]]) -> None:
        self._show_status(f"Working… reading and classifying {photo_count(len(files))}.")
        try:
            self.session.classify(files, on_progress=self._show_steps)
        except (UploadError, ModelUnavailableError) as error:
            self._show_problem(str(error))
            return
        self._show_entries()

    def _switch_model(self, name: str) -> None:
        self._show_status(f"Preparing {name}…")
        try:
            self.session.switch_model(name, on_load_progress=self._show_conversion, on_progress=self._show_steps)
        except ModelUnavailableError as error:
            self._show_problem(str(error))
            self.model_choice.unobserve(self._on_model_choice, names="value")
            self.model_choice.value = self.session.model  # the one that still answers
            self.model_choice.observe(self._on_model_choice, names="value")
            return
        if self.session.entries:
            self._show_entries()
        else:
            self._show_status(f"Ready: {name} will classify your photos.")

    def _redraw_guesses(self) -> None:
        self._update_download()  # first: it is ready at once, the charts take a moment each
        top_k = self.session.top_k
        for card in self.cards.children:
            if isinstance(card, Card):
                card.show_top_k(top_k)

    def _show_entries(self) -> None:
        entries = self.session.entries
        self._show_cards(self.cards, entries, self.session.top_k)
        self._update_download()
        refused = sum(isinstance(entry, Refusal) for entry in entries)
        summary = f"Done: {photo_count(len(entries) - refused)} classified"
        self._show_status(summary + (f", {refused} could not be read." if refused else "."))

    def _update_download(self) -> None:
        if not any(isinstance(entry, Result) for entry in self.session.entries):
            self.download.value = ""
            return
        # The byte-order mark makes spreadsheet programs read non-ASCII file names correctly.
        self.download.value = download_link(
            "photo-predictions.csv", "text/csv;charset=utf-8", self.session.csv().encode("utf-8-sig"),
            "Download results (CSV)",
        )

    # --- showing state ----------------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        busy = busy or not self.session.has_model(self.session.model)
        self.photo_input.disabled = busy
        self.model_choice.disabled = busy
        for button in self.example_buttons:
            button.disabled = busy


def example_button(example: Example, classify: Callable[[list[tuple[str, bytes]]], None]) -> widgets.Button:
    """A button that hands ``example``'s photo to ``classify``, as an upload of one file would."""
    button = widgets.Button(description=example.title, tooltip=f"Classify the example photo “{example.title}”")
    button.on_click(lambda _button: classify([(example.path.name, example.path.read_bytes())]))
    return button


def download_link(file_name: str, media_type: str, content: bytes, text: str) -> str:
    """A link that saves ``content`` as ``file_name``: the file travels in the page, nothing is stored."""
    data = base64.b64encode(content).decode("ascii")
    return (
        f"<a class='mn-download' download='{_attribute(file_name)}' "
        f"href='data:{media_type};base64,{data}'>{html.escape(text)}</a>"
    )


def build_app(
    classifier: Classifier | None = None, *, load_classifier: ClassifierLoader | None = None
) -> ClassifierApp:
    """Build the photo classification app; display the result to show it.

    Parameters
    ----------
    classifier
        Use this classifier instead of loading the default one in the background.
    load_classifier
        Builds the classifier for a model the visitor selects; by default
        ``Classifier(model=name, on_progress=...)``.

    Returns
    -------
    ClassifierApp
        The app; as the last expression of a notebook cell it displays itself.
    """
    options = {} if load_classifier is None else {"load_classifier": load_classifier}
    return ClassifierApp(Session(classifier, **options))


def _close_card(card: Card | RefusalCard) -> None:
    """Close a card and its parts (not the layout and styles all cards share).

    Only closed widgets leave the kernel's registry: without this every upload
    would keep its photos and charts alive for the rest of the session.
    """
    for part in card.children:
        part.close()
    card.close()


def display_data(figure: Figure, description: str) -> dict[str, Any]:
    """An output as a notebook cell would have it for ``figure``: its PNG, and ``description`` for screen readers."""
    png = base64.b64encode(figure_to_png(figure)).decode("ascii")
    return {
        "output_type": "display_data",
        "data": {"image/png": png, "text/plain": description},
        "metadata": {},
    }


def _photo_html(result: Result, *, heatmap: bool) -> str:
    best = result.predictions(1)[0]
    jpeg, alt = (result.heatmap_jpeg, f"{result.name}, coloured where the model saw {best.label}") if heatmap \
        else (result.photo.jpeg, result.name)
    source = base64.b64encode(jpeg).decode("ascii")
    return (
        f"<img class='mn-photo{' mn-heatmap' if heatmap else ''}' alt='{_attribute(alt, 200)}' "
        f"src='data:image/jpeg;base64,{source}'>"
    )


def _guesses_html(result: Result, top_k: int) -> str:
    predictions = result.predictions(top_k)
    best = predictions[0]
    if result.unsure:
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
    return (
        f"<div role='group' aria-label='Guesses for {_attribute(result.name)}'>"
        f"<p class='mn-verdict'>{verdict}</p>"
        f"<p class='mn-model'>Answered by {html.escape(result.model)}</p>"
        f"<ol class='mn-predictions'>{items}</ol></div>"
    )


def _name_html(name: str) -> str:
    shown = name if len(name) <= _MAX_NAME_CHARS else name[: _MAX_NAME_CHARS - 1] + "…"
    return f"<p class='mn-name' title='{_attribute(name, 300)}'>{html.escape(shown)}</p>"


def _attribute(text: str, limit: int = _MAX_NAME_CHARS) -> str:
    return html.escape(text[:limit], quote=True)


def photo_count(count: int) -> str:
    """"1 photo", "2 photos"."""
    return f"{count} photo" if count == 1 else f"{count} photos"
