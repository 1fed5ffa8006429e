"""The app's Teach tab: it shows a :class:`~classifier.teach_session.TeachSession` and forwards clicks to it.

Class boxes (a name, an upload, the photos), then Train with the evaluation,
then Try it (cards as in the Classify tab), then Keep it (download the taught
classifier, or open one).  Messages appear next to what they are about, so a
visitor on a phone sees them without scrolling.  Built by
:class:`classifier.ui.ClassifierApp` the first time its Teach tab is opened.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, Final

import ipywidgets as widgets

from classifier.conversion import ModelUnavailableError
from classifier.examples import EXAMPLES
from classifier.images import DEFAULT_MAX_BYTES
from classifier.photo_input import PhotoInput
from classifier.photo_strip import PhotoStrip
from classifier.plotting import plot_confusion
from classifier.session import MAX_FILES, MAX_TOP_K, MAX_UPLOAD_BYTES, Refusal, UploadError, upload_problem
from classifier.teach import TeachingError, preload_learning
from classifier.teach_session import MAX_APP_CLASSES, MAX_SAVED_BYTES, PhotoClass, TeachSession, Training
from classifier.ui import CardParts, Panel, display_data, download_link, example_button, photo_count

__all__ = ["ClassBox", "TeachApp", "TeachSession"]

_SAVED_NAME: Final[str] = "taught-classifier.npz"
_MAX_REFUSALS_LISTED: Final[int] = 3
_PROBLEMS: Final = (TeachingError, UploadError, ModelUnavailableError)
"""What a visitor's action can run into; each says what went wrong in words for a person."""

_STYLE: Final[str] = """
<style>
.mn-classes { display: flex; flex-wrap: wrap; gap: 12px; }
.mn-class { width: 340px; max-width: 100%; box-sizing: border-box; border: 1px solid #d0d7de;
            border-radius: 8px; padding: 10px; background: #fff; }
.mn-class .widget-text input { font-weight: 600; font-size: 16px; }
.mn-teach h3 { margin: 18px 0 6px 0; font-size: 1.15em; }
.mn-teach .mn-evaluation p { margin: 4px 0; }
.mn-teach .jp-OutputArea-prompt { display: none; }
.mn-teach .mn-confusion img { max-width: 100%; height: auto; }
</style>
"""


class ClassBox(widgets.VBox):
    """One class of the Teach tab: its name, a "remove class" button, an upload, and its photos.

    Attributes
    ----------
    class_id
        The class it shows (see :class:`~classifier.teach_session.PhotoClass`).
    name
        The class's name; editing it renames the class.
    remove
        Removes the class and its photos.
    photo_input
        Adds photos to the class (button or drop; paste goes to Try it).
    strip
        The class's photos, each with a button that takes it out.
    """

    def __init__(
        self,
        photo_class: PhotoClass,
        *,
        on_rename: Callable[[int, str], None],
        on_remove: Callable[[int], None],
        on_upload: Callable[[int, list[tuple[str, bytes | int]]], None],
        on_refused: Callable[[int, int], None],
        on_remove_photo: Callable[[int, int], None],
    ) -> None:
        self.class_id = photo_class.id
        self.name = widgets.Text(
            value=photo_class.name, placeholder="Name of the class", continuous_update=False,
            layout=widgets.Layout(flex="1 1 160px", width="auto"),
        )
        self.name.observe(lambda change: on_rename(self.class_id, change["new"]), names="value")
        self.remove = widgets.Button(description="Remove class", tooltip="Remove this class and its photos")
        self.remove.on_click(lambda _button: on_remove(self.class_id))
        self.photo_input = PhotoInput(
            on_upload=lambda files: on_upload(self.class_id, files), on_refused=on_refused,
            max_files=MAX_FILES, max_file_bytes=DEFAULT_MAX_BYTES, max_total_bytes=MAX_UPLOAD_BYTES,
            label="Add photos", prompt="or drop photos here", paste=False,
        ).add_class("mn-input")
        self.strip = PhotoStrip(on_remove=lambda photo_id: on_remove_photo(self.class_id, photo_id))
        self._shown: PhotoClass | None = None
        super().__init__(
            [widgets.HBox([self.name, self.remove], layout=widgets.Layout(flex_flow="row wrap")),
             self.photo_input, self.strip],
            _dom_classes=("mn-class",),
        )
        self.show(photo_class)

    def show(self, photo_class: PhotoClass) -> None:
        """Show the class as it is now; only what changed is sent to the page."""
        if self._shown is photo_class:
            return
        if self.name.value != photo_class.name:
            self.name.value = photo_class.name
        if self._shown is None or self._shown.photos is not photo_class.photos:
            self.strip.show([(photo.id, photo.photo.name, photo.photo.jpeg) for photo in photo_class.photos])
        self._shown = photo_class

    def set_busy(self, busy: bool, *, removable: bool) -> None:
        self.name.disabled = busy
        self.remove.disabled = busy or not removable
        self.photo_input.disabled = busy
        self.strip.disabled = busy

    def close(self) -> None:
        """Close the box, its parts and their layouts and styles: only closed widgets leave the kernel's registry."""
        for part in (self.name, self.remove, *self.children, self):
            for own in (part.layout, getattr(part, "style", None)):
                if own is not None:
                    own.close()
            if part is not self:
                part.close()
        super().close()


class TeachApp(Panel):
    """The Teach tab: class boxes, Train and its evaluation, Try it, and Keep it.

    Parameters
    ----------
    session
        What the tab shows and works on.
    card_parts
        Layout and styles shared with the Classify tab's cards.

    Attributes
    ----------
    session
        The visitor's teach session.
    widget
        The tab's root widget.
    class_boxes
        Holds one :class:`ClassBox` per class.
    add_class, train
        Buttons: add an empty class (up to 10); teach the classes and evaluate.
    evaluation, confusion
        The cross-validated accuracy in words, and the confusion matrix chart.
    try_input, example_buttons, try_note, cards
        Photos to try on the classifier, a line for problems with them, and their cards.
    download, open_input, keep_note
        A link to the classifier as a file, an input to open one, and a line for
        problems with them.
    """

    def __init__(self, session: TeachSession, card_parts: CardParts | None = None) -> None:
        super().__init__("teach", card_parts)
        self.session = session
        self.class_boxes = widgets.Box(layout=widgets.Layout(width="100%")).add_class("mn-classes")
        self.add_class = widgets.Button(description="Add a class", tooltip=f"Up to {MAX_APP_CLASSES} classes")
        self.train = widgets.Button(
            description="Train", button_style="primary", tooltip="Teach the classes, then measure how well it does"
        )
        self.evaluation = widgets.HTML().add_class("mn-evaluation")
        self.confusion = widgets.Output().add_class("mn-confusion")
        self.try_input = PhotoInput(
            on_upload=self._on_try, on_refused=self._on_try_refused, max_files=MAX_FILES,
            max_file_bytes=DEFAULT_MAX_BYTES, max_total_bytes=MAX_UPLOAD_BYTES, label="Try photos",
        ).add_class("mn-input")
        self.example_buttons = [example_button(example, self._on_try) for example in EXAMPLES]
        self.try_note = widgets.HTML().add_class("mn-status")
        self.cards = widgets.Box(layout=widgets.Layout(width="100%")).add_class("mn-cards")
        self.download = widgets.HTML()
        self.open_input = PhotoInput(
            on_upload=self._on_open, on_refused=self._on_open_refused, max_files=1,
            max_file_bytes=MAX_SAVED_BYTES, max_total_bytes=MAX_SAVED_BYTES,
            label="Open a saved classifier", prompt="or drop its .npz file here", accept=".npz", paste=False,
        ).add_class("mn-input")
        self.keep_note = widgets.HTML().add_class("mn-status")
        self.widget = widgets.VBox([
            widgets.HTML(_STYLE),
            widgets.HTML(
                "<p class='mn-hint'>Teach the app classes of your own: name each class and add photos of it "
                "(one each is enough to start; five or more teach better), then press Train. It learns on the "
                "model chosen in the Classify tab. Your photos stay in this session and are not stored.</p>"
            ),
            self.class_boxes,
            widgets.HBox([self.add_class, self.train], layout=widgets.Layout(flex_flow="row wrap")),
            self.status,
            self.progress,
            self.evaluation,
            self.confusion,
            widgets.HTML("<h3>Try it</h3>"),
            self.try_input,
            widgets.HBox(
                [widgets.HTML("Or try an example:"), *self.example_buttons],
                layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
            ),
            self.try_note,
            self.cards,
            widgets.HTML(
                "<h3>Keep it</h3><p class='mn-hint'>Download the classifier (a small file, without your "
                "photos) to open it here another day.</p>"
            ),
            widgets.HBox([self.download, self.open_input], layout=widgets.Layout(flex_flow="row wrap")),
            self.keep_note,
        ]).add_class("mn-teach")
        self.add_class.on_click(lambda _button: self._submit(self._work, self._add_class))
        self.train.on_click(lambda _button: self._submit(self._work, self._train))
        self._show_classes()
        self._show_status("Name your classes, add photos to each, then press Train.")
        self._submit(self._redraw, preload_learning)  # while the visitor names classes and picks photos

    # --- events (on the kernel's main thread: they only hand work over) ----------------------

    def _on_rename(self, class_id: int, name: str) -> None:
        self._submit(self._work, lambda: self._rename(class_id, name))

    def _on_remove_class(self, class_id: int) -> None:
        self._submit(self._work, lambda: self._remove_class(class_id))

    def _on_class_upload(self, class_id: int, files: list[tuple[str, bytes | int]]) -> None:
        self._submit(self._work, lambda: self._add_photos(class_id, files))

    def _on_class_refused(self, count: int, total_bytes: int) -> None:
        self._show_problem(upload_problem(count, total_bytes) or "This upload could not be taken.")

    def _on_remove_photo(self, class_id: int, photo_id: int) -> None:
        self._submit(self._work, lambda: self._remove_photo(class_id, photo_id))

    def _on_try(self, files: list[tuple[str, bytes | int]]) -> None:
        self._submit(self._work, lambda: self._try(files))

    def _on_try_refused(self, count: int, total_bytes: int) -> None:
        self._show_problem(upload_problem(count, total_bytes) or "This upload could not be taken.", self.try_note)

    def _on_open(self, files: list[tuple[str, bytes | int]]) -> None:
        self._submit(self._work, lambda: self._open(*files[0]))

    def _on_open_refused(self, count: int, _total_bytes: int) -> None:
        self._show_problem("Please open one saved classifier (.npz file) at a time.", self.keep_note)

    # --- work (on the background threads) --------------------------------------------------

    def _add_class(self) -> None:
        try:
            added = self.session.add_class()
        except TeachingError as error:
            self._show_problem(str(error))
            return
        self._show_classes()
        self._show_status(f"Added “{added.name}”: give it a name and photos.")

    def _rename(self, class_id: int, name: str) -> None:
        self.session.rename_class(class_id, name)
        self._show_classes()
        self._show_status(f"Renamed the class “{name.strip()}”." + self._retrain_hint())

    def _remove_class(self, class_id: int) -> None:
        try:
            self.session.remove_class(class_id)
        except TeachingError as error:
            self._show_problem(str(error))
            return
        self._show_classes()
        self._show_status("Removed the class and its photos." + self._retrain_hint())

    def _add_photos(self, class_id: int, files: list[tuple[str, bytes | int]]) -> None:
        self._show_status(f"Reading {photo_count(len(files))}…")
        try:
            refused = self.session.add_photos(class_id, files, on_progress=self._show_steps)
        except _PROBLEMS as error:
            self._show_problem(str(error))
            return
        self._show_classes()
        name = next((c.name for c in self.session.classes if c.id == class_id), "the class")
        summary = f"Added {photo_count(len(files) - len(refused))} to “{name}”."
        if refused:
            self._show_problem(f"{summary} {_refusals(refused)}")
        else:
            self._show_status(summary + self._retrain_hint())

    def _remove_photo(self, class_id: int, photo_id: int) -> None:
        self.session.remove_photo(class_id, photo_id)
        self._show_classes()
        self._show_status("Removed the photo." + self._retrain_hint())

    def _train(self) -> None:
        self._show_status(f"Teaching on {self.session.model}…")
        try:
            training = self.session.train(on_progress=self._show_steps)
        except _PROBLEMS as error:
            self._show_problem(str(error))
            return
        self._show_training(training)
        method = training.taught.method
        self._show_status(
            f"Trained on {training.taught.base.model_name} in {training.seconds:.1f} s ({method}). Try it below."
        )

    def _try(self, files: list[tuple[str, bytes | int]]) -> None:
        self._show_status(f"Working… classifying {photo_count(len(files))}.", self.try_note)
        try:
            entries = self.session.try_photos(files, on_progress=self._show_steps)
        except _PROBLEMS as error:
            self._show_problem(str(error), self.try_note)
            return
        self._show_tried()
        refused = sum(isinstance(entry, Refusal) for entry in entries)
        summary = f"Done: {photo_count(len(entries) - refused)} classified"
        self._show_status(summary + (f", {refused} could not be read." if refused else "."), self.try_note)

    def _open(self, name: str, content: bytes | int) -> None:
        self._show_status(f"Opening {name}…", self.keep_note)
        try:
            training = self.session.open(name, content)
        except _PROBLEMS as error:
            self._show_problem(str(error), self.keep_note)
            return
        self._show_training(training)
        classes = ", ".join(training.taught.classes)
        self._show_status(
            f"Opened {name}: {classes} (taught on {training.taught.base.model_name}). Try it above.", self.keep_note
        )

    # --- showing state ----------------------------------------------------------------------

    def _show_classes(self) -> None:
        """Bring the class boxes in line with the session's classes: new ones made, removed ones closed."""
        boxes = {box.class_id: box for box in self.class_boxes.children}
        shown = []
        for photo_class in self.session.classes:
            box = boxes.pop(photo_class.id, None)
            if box is None:
                box = ClassBox(
                    photo_class, on_rename=self._on_rename, on_remove=self._on_remove_class,
                    on_upload=self._on_class_upload, on_refused=self._on_class_refused,
                    on_remove_photo=self._on_remove_photo,
                )
            box.show(photo_class)
            shown.append(box)
        self.class_boxes.children = tuple(shown)
        for gone in boxes.values():
            gone.close()
        self._set_busy(self._pending_work > 0)

    def _retrain_hint(self) -> str:
        return " Press Train to teach the classes as they are now." if self.session.changed_since_training else ""

    def _show_training(self, training: Training) -> None:
        evaluation = training.evaluation
        if evaluation is None:
            self.evaluation.value = f"<p>{html.escape(training.note)}</p>"
            self.confusion.outputs = ()
        else:
            recall = ", ".join(f"{html.escape(name)} {share:.0%}" for name, share in evaluation.recall.items())
            self.evaluation.value = (
                f"<p><b>Accuracy: {evaluation.accuracy:.0%}</b> of {evaluation.photos} photos, each classified "
                f"by a classifier taught without it ({evaluation.method} cross-validation).</p>"
                f"<p>Recognised per class: {recall}.</p>"
            )
            chart = display_data(plot_confusion(evaluation), "Chart of the same: which class each photo was taken for")
            self.confusion.outputs = (chart,)
        self.download.value = download_link(
            _SAVED_NAME, "application/octet-stream", self.session.saved(), "Download the classifier (.npz)"
        )
        self._show_tried()

    def _show_tried(self) -> None:
        training = self.session.training
        top_k = min(len(training.taught.classes), MAX_TOP_K) if training else 1
        self._show_cards(self.cards, self.session.entries, top_k)

    def _set_busy(self, busy: bool) -> None:
        removable = len(self.session.classes) > 2
        for box in self.class_boxes.children:
            box.set_busy(busy, removable=removable)
        self.add_class.disabled = busy or len(self.session.classes) >= MAX_APP_CLASSES
        self.train.disabled = busy
        self.try_input.disabled = busy
        self.open_input.disabled = busy
        for button in self.example_buttons:
            button.disabled = busy

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return self.widget._repr_mimebundle_(**kwargs)


def _refusals(refused: tuple[Refusal, ...]) -> str:
    listed = "; ".join(f"{refusal.name}: {refusal.message}" for refusal in refused[:_MAX_REFUSALS_LISTED])
    more = len(refused) - _MAX_REFUSALS_LISTED
    count = "1 file" if len(refused) == 1 else f"{len(refused)} files"
    return f"{count} could not be read ({listed}{f'; and {more} more' if more > 0 else ''})."
