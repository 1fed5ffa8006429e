"""A photo input for people: a button, a drop area and paste, with limits checked in the browser.

Built on `anywidget <https://anywidget.dev>`_, so it needs no build step and runs
in Voilà and JupyterLab alike.  The browser checks the limits before sending
anything: an upload with too many files or bytes is refused there, with the
kernel's own words, and a photo over the per-photo limit is held back (only its
name and size are sent).  The rest travels in chunks of at most 4 MiB, so it
fits within Jupyter Server's default websocket limit (10 MiB) and one upload
never has to travel as one huge message.  Everything that arrives is checked
again here: a script can send any message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anywidget
import traitlets

__all__ = ["CHUNK_BYTES", "PhotoInput"]

CHUNK_BYTES: Final[int] = 4 * 2**20
"""Bytes per message: well under Jupyter Server's default 10 MiB websocket limit."""

_LOG = logging.getLogger(__name__)
_MAX_ID_CHARS: Final[int] = 64
_MAX_NAME_CHARS: Final[int] = 1000

UploadCallback = Callable[[list[tuple[str, "bytes | int"]]], None]
"""Receives ``(name, content)`` per file, in order; ``content`` is the size of a file held back."""
RefusalCallback = Callable[[int, int], None]
"""Receives ``(files, bytes)`` of an upload the browser refused as a whole."""


@dataclass
class _Upload:
    """An upload arriving: what the browser announced, and the bytes so far."""

    id: str
    names: list[str]
    sizes: list[int]
    sent: list[bool]
    received: list[bytearray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.received = [bytearray() for _ in self.names]

    def complete(self) -> bool:
        return all(len(data) == size for data, size, sent in zip(self.received, self.sizes, self.sent) if sent)

    def files(self) -> list[tuple[str, bytes | int]]:
        return [
            (name, bytes(data) if sent else size)
            for name, size, sent, data in zip(self.names, self.sizes, self.sent, self.received)
        ]


class PhotoInput(anywidget.AnyWidget):
    """An "Upload photos" button, an area to drop photos on, and paste; phones offer the camera.

    Parameters
    ----------
    on_upload
        Called (on the kernel's thread that handles widget messages) with the
        files of each upload, ``(name, content)`` in order; ``content`` is the
        size in bytes of a file held back for being over ``max_file_bytes``.
    on_refused
        Called with the number of files and of bytes of an upload refused as a
        whole for being over ``max_files`` or ``max_total_bytes``.
    max_files, max_file_bytes, max_total_bytes
        The limits: files per upload, bytes per photo, bytes per upload.
    label, prompt
        The button's words, and the drop area's.
    accept
        What the file chooser offers (an ``accept`` attribute): photos by
        default.  A drop or paste can bring any file: the kernel reads what
        arrives.
    paste
        Whether pasting an image on the page uploads it here.  Give it to one
        input per tab: a paste goes to the first visible input that takes it.

    Attributes
    ----------
    disabled
        While true the button, the drop area and paste do nothing.
    """

    _esm = Path(__file__).with_name("photo_input.js")
    _css = Path(__file__).with_name("photo_input.css")

    disabled = traitlets.Bool(False).tag(sync=True)
    limits = traitlets.Dict().tag(sync=True)
    """The limits, for the browser's own checks (this side checks again; the browser cannot change them)."""
    label = traitlets.Unicode("Upload photos").tag(sync=True)
    prompt = traitlets.Unicode("or drop photos here, or paste an image").tag(sync=True)
    accept = traitlets.Unicode("image/*").tag(sync=True)
    paste = traitlets.Bool(True).tag(sync=True)

    def __init__(
        self,
        *,
        on_upload: UploadCallback,
        on_refused: RefusalCallback,
        max_files: int,
        max_file_bytes: int,
        max_total_bytes: int,
        **kwargs: Any,
    ) -> None:
        limits = {
            "max_files": max_files, "max_file_bytes": max_file_bytes,
            "max_total_bytes": max_total_bytes, "chunk_bytes": CHUNK_BYTES,
        }
        super().__init__(limits=limits, **kwargs)
        self._on_upload = on_upload
        self._on_refused = on_refused
        self._upload: _Upload | None = None
        self.on_msg(self._receive)

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Ignore state sent by the browser: nothing here is the browser's to change.

        A hostile page could otherwise lift the limits or re-enable the input.
        """

    # --- messages from the browser ---------------------------------------------------------

    def _receive(self, _widget: PhotoInput, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "refused":
            self._refused(content)
        elif kind == "begin":
            self._begin(content)
        elif kind in ("chunk", "end") and self._upload is not None and content.get("upload") == self._upload.id:
            (self._chunk if kind == "chunk" else self._end)(self._upload, content, buffers)

    def _refused(self, content: dict[str, Any]) -> None:
        files, total = content.get("files"), content.get("bytes")
        if _whole(files) and _whole(total) and (
            files > self.limits["max_files"] or total > self.limits["max_total_bytes"]
        ):
            self._on_refused(files, total)

    def _begin(self, content: dict[str, Any]) -> None:
        upload_id, files = content.get("upload"), content.get("files")
        if not isinstance(upload_id, str) or not 0 < len(upload_id) <= _MAX_ID_CHARS:
            return
        self._upload = None  # a new upload replaces an unfinished one
        if self.disabled:  # busy: the page keeps the files and sends them again once it is not
            self._reply("abort", upload_id, reason="busy")
            return
        if not isinstance(files, list) or not files:
            self._reply("abort", upload_id)
            return
        if len(files) > self.limits["max_files"]:
            self._reply("abort", upload_id)
            self._on_refused(len(files), 0)
            return
        if not all(isinstance(file, dict) and _whole(file.get("size")) for file in files):
            self._reply("abort", upload_id)
            return
        sizes = [file["size"] for file in files]
        sent = [size <= self.limits["max_file_bytes"] for size in sizes]
        total = sum(size for size, kept in zip(sizes, sent) if kept)
        if total > self.limits["max_total_bytes"]:
            self._reply("abort", upload_id)
            self._on_refused(len(files), total)
            return
        names = [str(file.get("name", ""))[:_MAX_NAME_CHARS] for file in files]
        self._upload = _Upload(upload_id, names, sizes, sent)
        self._reply("ready", upload_id)

    def _chunk(self, upload: _Upload, content: dict[str, Any], buffers: list[Any]) -> None:
        index, offset = content.get("file"), content.get("offset")
        if not (_whole(index) and index < len(upload.names) and upload.sent[index] and len(buffers) == 1):
            self._discard(upload)
            return
        data = memoryview(buffers[0]).cast("B")
        received = upload.received[index]
        if offset != len(received) or not 0 < data.nbytes <= CHUNK_BYTES or offset + data.nbytes > upload.sizes[index]:
            self._discard(upload)
            return
        received += data
        self._reply("ack", upload.id)

    def _end(self, upload: _Upload, content: dict[str, Any], buffers: list[Any]) -> None:
        self._upload = None
        if buffers or not upload.complete():
            self._discard(upload)
            return
        self._on_upload(upload.files())

    def _discard(self, upload: _Upload) -> None:
        _LOG.info("discarded a malformed upload")
        self._upload = None
        self._reply("abort", upload.id)

    def _reply(self, kind: str, upload_id: str, **details: str) -> None:
        self.send({"type": kind, "upload": upload_id, **details})


def _whole(value: object) -> bool:
    """A non-negative integer as JSON gives it (no bool, no float, no huge number)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53
