"""A class's photos as a strip of thumbnails, each with a button that takes it out.

One widget for all of a class's photos, rather than a button widget per photo:
a class of 100 photos costs one message to show, not 200.  Like
:class:`~classifier.photo_input.PhotoInput` it is an anywidget and ignores the
state a browser sends; a removal is a message naming a photo, checked here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

__all__ = ["PhotoStrip"]


class PhotoStrip(anywidget.AnyWidget):
    """Thumbnails of photos, a count, and a "remove" button on each.

    Parameters
    ----------
    on_remove
        Called with the id of a photo the visitor removes (one of those shown).

    Attributes
    ----------
    photos
        What is shown: ``{"id", "name", "src"}`` per photo; set it with :meth:`show`.
    disabled
        While true the remove buttons do nothing.
    """

    _esm = Path(__file__).with_name("photo_strip.js")
    _css = Path(__file__).with_name("photo_strip.css")

    photos = traitlets.List().tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, *, on_remove: Callable[[int], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_remove = on_remove
        self.on_msg(self._receive)

    def show(self, photos: Sequence[tuple[int, str, bytes]]) -> None:
        """Show ``(id, name, jpeg)`` per photo, in order."""
        self.photos = [
            {"id": photo_id, "name": name, "src": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")}
            for photo_id, name, jpeg in photos
        ]

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Ignore state sent by the browser: what is shown is the kernel's to say."""

    def _receive(self, _widget: PhotoStrip, content: Any, buffers: list[Any]) -> None:
        if self.disabled or not isinstance(content, dict) or content.get("type") != "remove":
            return
        photo_id = content.get("photo")
        if type(photo_id) is int and any(photo["id"] == photo_id for photo in self.photos):
            self._on_remove(photo_id)
