"""Tests for classifier/photo_input.py: the upload protocol, and what a hostile script may send."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from classifier.photo_input import CHUNK_BYTES, PhotoInput
from tests.conftest import BrowserSide

MB = 2**20


class Received:
    """What the widget handed on: uploads and refusals."""

    def __init__(self) -> None:
        self.uploads: list[list[tuple[str, bytes | int]]] = []
        self.refusals: list[tuple[int, int]] = []


@pytest.fixture
def received() -> Received:
    return Received()


@pytest.fixture
def widget(received: Received) -> PhotoInput:
    return PhotoInput(
        on_upload=received.uploads.append, on_refused=lambda files, size: received.refusals.append((files, size)),
        max_files=5, max_file_bytes=9 * MB, max_total_bytes=12 * MB,
    )


def test_files_arrive_intact_in_chunks_of_at_most_4_mib(widget: PhotoInput, received: Received) -> None:
    big = bytes(range(256)) * (9 * MB // 256)  # 9 MiB: three chunks
    browser = BrowserSide(widget)
    chunks: list[int] = []
    original = widget._handle_msg
    widget._handle_msg = lambda msg: (chunks.extend(len(b) for b in msg["buffers"]), original(msg))  # type: ignore[method-assign]

    browser.upload([("big.jpg", big), ("small.jpg", b"small"), ("empty.jpg", b"")])

    (files,) = received.uploads
    assert [name for name, _content in files] == ["big.jpg", "small.jpg", "empty.jpg"]
    assert hashlib.sha256(files[0][1]).digest() == hashlib.sha256(big).digest()
    assert files[1:] == [("small.jpg", b"small"), ("empty.jpg", b"")]
    assert max(chunks) == CHUNK_BYTES == 4 * MB and len(chunks) == 4
    assert browser.replies[0] == {"type": "ready", "upload": "upload-1"}
    assert [reply["type"] for reply in browser.replies[1:]] == ["ack"] * 4


def test_a_photo_over_the_limit_is_held_back_and_handed_on_as_its_size(widget: PhotoInput, received: Received) -> None:
    BrowserSide(widget).upload([("huge.jpg", bytes(10 * MB)), ("ok.jpg", b"ok")])
    assert received.uploads == [[("huge.jpg", 10 * MB), ("ok.jpg", b"ok")]]


@pytest.mark.parametrize(
    ("announced", "refusal"),
    [([1] * 6, (6, 0)), ([6 * MB, 7 * MB], (2, 13 * MB))],
    ids=["too many files", "too many bytes"],
)
def test_an_announced_upload_over_the_limits_is_refused_whole(
    widget: PhotoInput, received: Received, announced: list[int], refusal: tuple[int, int]
) -> None:
    browser = BrowserSide(widget)
    browser.message({"type": "begin", "upload": "u", "files": [{"name": f"{i}.jpg", "size": s} for i, s in enumerate(announced)]})
    assert browser.replies == [{"type": "abort", "upload": "u"}]
    assert received.refusals == [refusal] and received.uploads == []


def test_the_browsers_own_refusal_is_shown_only_when_the_limits_agree(widget: PhotoInput, received: Received) -> None:
    browser = BrowserSide(widget)
    browser.message({"type": "refused", "files": 6, "bytes": 10})
    browser.message({"type": "refused", "files": 2, "bytes": 13 * MB})
    browser.message({"type": "refused", "files": 1, "bytes": 10})  # within the limits: a lie, ignored
    browser.message({"type": "refused", "files": True, "bytes": 1e99})
    assert received.refusals == [(6, 10), (2, 13 * MB)]


@pytest.mark.parametrize(
    "messages",
    [
        [None], ["begin"], [[1, 2]], [{"type": "begin"}], [{"type": "begin", "upload": "x" * 65, "files": [{"size": 1}]}],
        [{"type": "begin", "upload": "u", "files": "a.jpg"}],
        [{"type": "begin", "upload": "u", "files": [{"name": "a", "size": -1}]}],
        [{"type": "begin", "upload": "u", "files": [{"name": "a", "size": 1.5}]}],
        [{"type": "begin", "upload": "u", "files": [{"name": "a", "size": True}]}],
        [{"type": "begin", "upload": "u", "files": [{"name": "a", "size": 2**60}]}],
        [{"type": "begin", "upload": "u", "files": []}],
        [{"type": "chunk", "upload": "u", "file": 0, "offset": 0}],
        [{"type": "end", "upload": "u"}],
    ],
    ids=["null", "string", "list", "no id", "long id", "files not a list", "negative size", "float size",
         "bool size", "huge size", "no files", "chunk first", "end first"],
)
def test_malformed_messages_are_ignored_without_an_error(
    widget: PhotoInput, received: Received, messages: list[object]
) -> None:
    browser = BrowserSide(widget)
    for message in messages:
        browser.message(message)
    assert received.uploads == [] and received.refusals == []
    assert all(reply["type"] == "abort" for reply in browser.replies)


def _begun(widget: PhotoInput, sizes: list[int]) -> BrowserSide:
    browser = BrowserSide(widget)
    browser.message({"type": "begin", "upload": "u", "files": [{"name": f"{i}.jpg", "size": s} for i, s in enumerate(sizes)]})
    assert browser.replies[-1]["type"] == "ready"
    return browser


@pytest.mark.parametrize(
    ("chunk", "buffers"),
    [
        ({"file": 0, "offset": 1}, [b"abc"]),  # not where the file stands
        ({"file": 1, "offset": 0}, [b"abc"]),  # a file that is not there
        ({"file": 0, "offset": 0}, [b"abcdefghijk"]),  # more than announced
        ({"file": 0, "offset": 0}, [bytes(CHUNK_BYTES + 1)]),  # a chunk over 4 MiB
        ({"file": 0, "offset": 0}, [b"abc", b"def"]),  # two buffers
        ({"file": 0, "offset": 0}, []),  # no buffer
        ({"file": "0", "offset": 0}, [b"abc"]),
    ],
    ids=["offset", "file index", "too long", "chunk too big", "two buffers", "no buffer", "index as text"],
)
def test_a_malformed_chunk_discards_the_upload(
    widget: PhotoInput, received: Received, chunk: dict[str, object], buffers: list[bytes]
) -> None:
    browser = _begun(widget, [10])
    browser.message({"type": "chunk", "upload": "u", **chunk}, buffers)
    browser.message({"type": "end", "upload": "u"})
    assert browser.replies[-1] == {"type": "abort", "upload": "u"} and received.uploads == []


def test_an_upload_that_ends_early_is_discarded(widget: PhotoInput, received: Received) -> None:
    browser = _begun(widget, [10])
    browser.message({"type": "chunk", "upload": "u", "file": 0, "offset": 0}, [b"abcde"])
    browser.message({"type": "end", "upload": "u"})
    assert browser.replies[-1] == {"type": "abort", "upload": "u"} and received.uploads == []


def test_a_chunk_for_a_held_back_file_discards_the_upload(widget: PhotoInput, received: Received) -> None:
    browser = _begun(widget, [10 * MB])
    browser.message({"type": "chunk", "upload": "u", "file": 0, "offset": 0}, [b"abc"])
    assert browser.replies[-1]["type"] == "abort" and received.uploads == []


def test_messages_of_another_upload_do_not_disturb_this_one(widget: PhotoInput, received: Received) -> None:
    browser = _begun(widget, [3])
    browser.message({"type": "chunk", "upload": "someone-else", "file": 0, "offset": 0}, [b"xyz"])
    browser.message({"type": "end", "upload": "someone-else"})
    browser.message({"type": "chunk", "upload": "u", "file": 0, "offset": 0}, [b"abc"])
    browser.message({"type": "end", "upload": "u"})
    assert received.uploads == [[("0.jpg", b"abc")]]


def test_a_new_upload_replaces_an_unfinished_one(widget: PhotoInput, received: Received) -> None:
    browser = _begun(widget, [3])
    browser.upload([("second.jpg", b"2nd")], upload_id="v")
    browser.message({"type": "chunk", "upload": "u", "file": 0, "offset": 0}, [b"abc"])
    browser.message({"type": "end", "upload": "u"})
    assert received.uploads == [[("second.jpg", b"2nd")]]


def test_while_disabled_uploads_are_refused_as_busy(widget: PhotoInput, received: Received) -> None:
    widget.disabled = True
    browser = BrowserSide(widget)
    browser.upload([("a.jpg", b"abc")])
    # "busy" tells the page to keep the files and send them again once the input is on.
    assert browser.replies[0] == {"type": "abort", "upload": "upload-1", "reason": "busy"} and received.uploads == []


def test_the_browser_cannot_change_the_widgets_state(widget: PhotoInput) -> None:
    widget.disabled = True
    widget._handle_msg({"content": {"data": {"method": "update", "state": {
        "disabled": False, "limits": {"max_files": 10**9, "max_file_bytes": 10**12, "max_total_bytes": 10**12},
    }}}, "buffers": []})
    assert widget.disabled is True and widget.limits["max_files"] == 5


def test_the_page_side_is_an_anywidget_module() -> None:
    module = Path(PhotoInput._esm).read_text() if isinstance(PhotoInput._esm, Path) else str(PhotoInput._esm)
    assert "export default { render }" in module
    for promise in ('model.get("accept")', '"paste"', '"drop"', "max_total_bytes", "max_files"):
        assert promise in module


def test_photos_by_default_and_other_files_when_asked() -> None:
    photos = PhotoInput(on_upload=print, on_refused=print, max_files=5, max_file_bytes=10, max_total_bytes=20)
    assert (photos.accept, photos.label, photos.paste) == ("image/*", "Upload photos", True)
    saved = PhotoInput(on_upload=print, on_refused=print, max_files=1, max_file_bytes=10, max_total_bytes=10,
                       accept=".npz", label="Open a saved classifier", paste=False)
    assert (saved.accept, saved.label, saved.paste) == (".npz", "Open a saved classifier", False)
    saved._handle_msg({"content": {"data": {"method": "update", "state": {"accept": "*", "paste": True}}},
                       "buffers": []})
    assert (saved.accept, saved.paste) == (".npz", False)
