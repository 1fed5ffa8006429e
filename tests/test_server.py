"""The Voilà server from outside the page: what links and a visitor's browser may ask of it.

* Links: Voilà reflects its ``theme`` and ``template`` query parameters into the
  page (``data-jp-theme-name="..."``, unescaped) unless ``voila.json`` forbids
  overriding them, so a crafted link could run script on the app's own site.
  Checked on the standalone server and on Binder's ``/voila/render`` route, in
  the HTML and in Chromium, with the page's Content-Security-Policy blocking
  every request to other sites (Voilà's page asks a CDN for Font Awesome).
* The kernel websocket: Voilà's standalone server forwards only the messages
  widgets need (``comm_*``, ``kernel_info_request``, ``shutdown_request``), so a
  visitor cannot run code of their own.  Checked with both wire protocols Jupyter
  Server speaks, against a plain Jupyter Server as a control that the very same
  ``execute_request`` does run code where nothing refuses it.
* A kernel killed mid-session (out of memory, a crash): reloading the page gives a
  working app, and the page itself should ask the visitor to reload.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import websocket
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)

from classifier.testing import CHROMIUM, CHROMIUM_FLAGS, JUPYTER_TOKEN, kernel_pids, serve_jupyter_server, serve_voila
from tests.conftest import page_kernel_id, require_chromium

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
READY = "Ready: upload photos or try an example."
CONNECTION_LOST = "The connection to the app was lost. Please reload the page."


@pytest.fixture(scope="module")
def voila_app() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with serve_voila() as (url, server):
        yield url, server


@pytest.fixture
def lone_visitor_app() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A server of its own, without the pool of preheated kernels: a visitor's kernel is its only one."""
    with serve_voila("--VoilaConfiguration.preheat_kernel=False") as (url, server):
        yield url, server


@pytest.fixture(scope="module")
def binder_app() -> Iterator[str]:
    """The app on Binder's route: Jupyter Server with the Voilà extension and Binder's settings."""
    with serve_jupyter_server() as (url, _server):
        yield url + "voila/render/notebooks/app.ipynb?token=" + JUPYTER_TOKEN


# --- hostile links ---------------------------------------------------------------------------

_SCRIPT = "alert(document.domain)"
HOSTILE_QUERIES = {
    "theme": {"theme": f'x" onload="{_SCRIPT}" y="'},
    "template": {"template": f'lab" onload="{_SCRIPT}" y="'},
    "template path": {"template": "../../../../../../../etc"},
    "any parameter": {"q": f"<script>{_SCRIPT}</script>", "theme": "dark", "voila": f"'><img src=x onerror={_SCRIPT}>"},
}


def _with_query(url: str, query: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(query)


def _fetch(url: str) -> tuple[str, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read().decode(), dict(response.headers)


@pytest.mark.parametrize("route", ["voila", "binder"])
@pytest.mark.parametrize("attack", sorted(HOSTILE_QUERIES))
def test_hostile_links_are_not_reflected_into_the_page(
    route: str, attack: str, request: pytest.FixtureRequest
) -> None:
    base = request.getfixturevalue("voila_app")[0] if route == "voila" else request.getfixturevalue("binder_app")
    page, headers = _fetch(_with_query(base, HOSTILE_QUERIES[attack]))
    assert 'data-jp-theme-name="JupyterLab Light"' in page  # the configured theme, whatever the link says
    for value in HOSTILE_QUERIES[attack].values():
        if value != "dark":  # a word the page holds anyway
            assert value not in page and urllib.parse.quote(value) not in page
    assert "onload=" not in page and "onerror=" not in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]


@pytest.mark.parametrize("route", ["voila", "binder"])
def test_hostile_links_run_no_script_and_reach_no_other_site(
    route: str, request: pytest.FixtureRequest, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    base = request.getfixturevalue("voila_app")[0] if route == "voila" else request.getfixturevalue("binder_app")
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    outside: dict[str, str] = {}
    page.on("request", lambda sent: outside.setdefault(sent.url, "sent") if not _local(sent.url) else None)
    page.on("requestfailed", lambda failed: outside.update({failed.url: failed.failure or ""}) if failed.url in outside else None)

    for query in HOSTILE_QUERIES.values():
        page.goto(_with_query(base, query))
        expect(page.get_by_text(READY)).to_be_visible(timeout=120_000)

    assert dialogs == [], f"a script from the link ran: {dialogs}"
    # Voilà's page asks CDNs for Font Awesome and MathJax: the browser must block each before it leaves.
    assert outside and all(reason in ("csp", "net::ERR_BLOCKED_BY_CSP") for reason in outside.values()), outside


def _local(url: str) -> bool:
    return urllib.parse.urlsplit(url).hostname in ("127.0.0.1", "localhost") or url.startswith(("data:", "blob:"))


# --- the kernel websocket ------------------------------------------------------------------


class KernelChannels:
    """A minimal Jupyter kernel websocket client, legacy JSON or v1 binary protocol."""

    def __init__(self, url: str, protocol: str) -> None:
        self.protocol = protocol
        subprotocols = [V1_PROTOCOL] if protocol == "v1" else None
        self.ws = websocket.create_connection(url, timeout=30, subprotocols=subprotocols)
        assert self.ws.getsubprotocol() == (V1_PROTOCOL if protocol == "v1" else None)
        self.received: list[dict[str, Any]] = []

    def send(self, msg_type: str, content: dict[str, Any]) -> str:
        """Send a shell-channel request; returns its ``msg_id``."""
        header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "visitor",
                  "session": uuid.uuid4().hex, "date": "", "version": "5.3"}
        msg = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        if self.protocol == "v1":
            self.ws.send_binary(serialize_msg_to_ws_v1(msg, "shell", pack=lambda part: json.dumps(part).encode()))
        else:
            self.ws.send(json.dumps({**msg, "channel": "shell", "buffers": []}))
        return header["msg_id"]

    def collect(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Read messages into ``received`` for ``seconds`` or until ``until()`` holds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                break
            self.received.append(self._decode(frame))

    def wait_for_reply(self, msg_id: str, reply_type: str, seconds: float = 60) -> None:
        self.collect(seconds, until=lambda: reply_type in self.replies_to(msg_id))

    def replies_to(self, msg_id: str) -> list[str]:
        """The types of all messages received so far in answer to ``msg_id``."""
        return [m["msg_type"] for m in self.received if m["parent_header"].get("msg_id") == msg_id]

    def _decode(self, frame: str | bytes) -> dict[str, Any]:
        if self.protocol == "v1":
            channel, (header, parent, _metadata, content, *_buffers) = deserialize_msg_from_ws_v1(frame)
            msg = {"header": json.loads(header), "parent_header": json.loads(parent),
                   "content": json.loads(content), "channel": channel}
        else:
            msg = json.loads(frame) if isinstance(frame, str) else deserialize_binary_message(frame)
        return {**msg, "msg_type": msg["header"]["msg_type"]}

    def close(self) -> None:
        self.ws.close()


@contextmanager
def kernel_channels(http_url: str, kernel_id: str, protocol: str) -> Iterator[KernelChannels]:
    ws_url = http_url.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    channels = KernelChannels(ws_url, protocol)
    try:
        yield channels
    finally:
        channels.close()


def _try_to_run_code(channels: KernelChannels, marker: Path) -> tuple[list[str], list[str]]:
    """Send a control request, an ``execute_request`` writing ``marker``, a second control.

    Returns the types of the messages answering the execute request and the second
    control.  The kernel handles shell requests in order, so once the second control
    is answered, an executed request would have been answered too; the first control
    shows the connection works, so silence is a refusal, not a broken client.
    """
    first = channels.send("kernel_info_request", {})
    channels.wait_for_reply(first, "kernel_info_reply")
    assert "kernel_info_reply" in channels.replies_to(first), "the kernel did not answer kernel_info_request"

    code = f"open({str(marker)!r}, 'w').write('x')"
    attack = channels.send("execute_request", {"code": code, "silent": False, "store_history": False,
                                               "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    second = channels.send("kernel_info_request", {})
    channels.wait_for_reply(second, "kernel_info_reply")
    channels.collect(3)  # and a few seconds more, for anything late
    return channels.replies_to(attack), channels.replies_to(second)


@pytest.mark.parametrize("protocol", ["legacy", "v1"])
def test_kernel_websocket_refuses_execute_request(
    voila_app: tuple[str, subprocess.Popen[bytes]], protocol: str, tmp_path: Path
) -> None:
    url, _server = voila_app
    marker = tmp_path / "pwned"
    with kernel_channels(url, page_kernel_id(url), protocol) as channels:
        attack_replies, control_replies = _try_to_run_code(channels, marker)
    assert "kernel_info_reply" in control_replies, "the kernel stopped answering after the execute_request"
    assert attack_replies == [], f"the kernel answered the execute_request: {attack_replies}"
    assert not marker.exists(), "code sent over the websocket ran in the kernel"


@contextmanager
def _plain_jupyter_server(root: Path) -> Iterator[str]:
    """Jupyter Server without authentication and without any message filter."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={root}", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for(lambda: _answers(url + "api/status"), 60, "Jupyter Server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False


def test_control_the_same_execute_request_runs_where_nothing_refuses_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with _plain_jupyter_server(tmp_path) as url:
        request = urllib.request.Request(url + "api/kernels", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            kernel_id = json.load(response)["id"]
        with kernel_channels(url, kernel_id, "legacy") as channels:
            attack_replies, _control_replies = _try_to_run_code(channels, marker)
    assert "execute_reply" in attack_replies
    assert marker.read_text() == "x"


# --- a kernel killed mid-session -----------------------------------------------------------


@pytest.fixture
def browser_page() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser.new_page(viewport={"width": 1100, "height": 900})
        browser.close()


def _open_app(page: Any, url: str) -> str:
    """Load the app, wait until it is usable and return the page's kernel id."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_text(READY)).to_be_visible(timeout=120_000)
    return json.loads(page.locator("#jupyter-config-data").text_content())["kernelId"]


def _kill_kernel(server: subprocess.Popen[bytes]) -> None:
    """SIGKILL the visitor's kernel, as the out-of-memory killer would, and wait until it is gone.

    Forked kernels all show the fork server's command line, so the kernel is
    found as the server's only one.
    """
    (pid,) = kernel_pids(server.pid)
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30, f"kernel {pid} did not go")


def _wait_for(condition: Callable[[], bool], seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.2)


def test_after_the_kernel_dies_a_reload_gives_a_working_app(
    lone_visitor_app: tuple[str, subprocess.Popen[bytes]], browser_page: Any
) -> None:
    from playwright.sync_api import expect

    url, server = lone_visitor_app
    page = browser_page
    dead_kernel = _open_app(page, url)
    _kill_kernel(server)

    page.reload()
    expect(page.get_by_text(READY)).to_be_visible(timeout=120_000)
    assert json.loads(page.locator("#jupyter-config-data").text_content())["kernelId"] != dead_kernel
    expect(page.get_by_text(CONNECTION_LOST)).to_be_hidden()
    page.get_by_role("button", name="Espresso").click()
    expect(page.locator(".mn-card").first).to_contain_text("espresso", timeout=60_000)


def test_when_the_kernel_dies_the_page_asks_the_visitor_to_reload(
    lone_visitor_app: tuple[str, subprocess.Popen[bytes]], browser_page: Any
) -> None:
    from playwright.sync_api import expect

    url, server = lone_visitor_app
    page = browser_page
    _open_app(page, url)
    _kill_kernel(server)

    expect(page.get_by_role("alert")).to_have_text(CONNECTION_LOST, timeout=15_000)
    expect(page.get_by_text(READY)).to_be_hidden()
