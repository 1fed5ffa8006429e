"""The app served by JupyterHub with ``deploy/jupyterhub_config.py``, as a crowd meets it.

A real hub on loopback, with the production settings but for the spawner (local
processes instead of containers; see ``classifier.testing.serve_hub``), visited
by anonymous visitors in Chromium: each gets a server of their own and only
their own results, cannot open another's server, and cannot change or run
anything in their own; past the cap the next visitor is asked to come back; a
visitor whose server died is told to reload and gets a fresh one; a departed
visitor's server is culled while a present one is kept.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from classifier.conversion import converted_model
from classifier.testing import process_tree, serve_hub
from tests.conftest import require_chromium

require_chromium()
if not os.environ.get("CI") and not shutil.which("configurable-http-proxy"):
    pytest.skip("HUB TESTS SKIPPED: configurable-http-proxy is not installed (npm install -g "
                "configurable-http-proxy)", allow_module_level=True)

from playwright.sync_api import BrowserContext, Page, expect

READY = "Ready: upload photos or try an example."
CONNECTION_LOST = "The connection to the app was lost. Please reload the page."
APP_PATH = re.compile(r"/user/([0-9a-f-]{36})/voila/render/notebooks/app\.ipynb$")
SPAWN_SECONDS = 180  # a server starting while two others do, on two cores


@pytest.fixture(scope="module")
def hub() -> Iterator[tuple[str, Any]]:
    """A hub that runs at most three visitors' servers."""
    converted_model()  # the servers share this session's converted model rather than each converting it
    with serve_hub(max_visitors=3) as served:
        yield served


class Visitor:
    """One anonymous visitor: a browser of their own (cookies included) and the app's page in it."""

    def __init__(self, chromium: Any, hub_url: str) -> None:
        self.context: BrowserContext = chromium.new_context(viewport={"width": 1000, "height": 1200})
        self.page: Page = self.context.new_page()
        self.page.goto(hub_url)  # the hub logs them in and shows its "starting" page

    def wait_for_app(self) -> str:
        """Wait until the app is usable, and return the visitor's user name."""
        expect(self.page.get_by_text(READY)).to_be_visible(timeout=SPAWN_SECONDS * 1000)
        match = APP_PATH.search(self.page.url.split("?")[0])
        assert match, f"the visitor is not in the app: {self.page.url}"
        return match.group(1)

    def classify(self, photo: Path) -> str:
        """Upload one photo and return the top guess of its card."""
        with self.page.expect_file_chooser() as chooser:
            self.page.get_by_role("button", name="Upload photos").click()
        chooser.value.set_files([photo])
        first_guess = self.page.locator(".mn-card").last.locator(".mn-predictions li").first
        expect(first_guess).to_be_visible(timeout=60_000)
        return first_guess.inner_text()

    def leave(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def visitors(chromium: Any, hub: tuple[str, Any]) -> Iterator[dict[str, Visitor]]:
    """Three visitors who arrive at once, by the names of their users."""
    hub_url, _hub = hub
    arriving = [Visitor(chromium, hub_url) for _ in range(3)]
    by_name = {visitor.wait_for_app(): visitor for visitor in arriving}
    yield by_name
    for visitor in by_name.values():
        visitor.leave()


def _server_pid(hub: Any, user: str) -> int | None:
    """The process of ``user``'s single-user server, if it runs."""
    for pid in process_tree(hub.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"jupyterhub-singleuser" in command and f"JUPYTERHUB_USER={user}".encode() in environment:
            return pid
    return None


def _wait_for(condition: Callable[[], bool], seconds: float, failure: str, every: Callable[[], Any] = lambda: None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        every()
        time.sleep(1)


def test_each_visitor_gets_a_server_of_their_own_and_their_own_results(
    hub: tuple[str, Any], visitors: dict[str, Visitor], photos: dict[str, Path]
) -> None:
    _url, hub_process = hub
    assert len(visitors) == 3  # three different anonymous users
    servers = {user: _server_pid(hub_process, user) for user in visitors}
    assert None not in servers.values() and len(set(servers.values())) == 3

    expected = {"grace_hopper": "military uniform", "chelsea": "cat|Egyptian Mau", "rocket": "missile"}
    for visitor, (photo, answer) in zip(visitors.values(), expected.items()):
        assert re.search(answer, visitor.classify(photos[photo])), photo
    for visitor in visitors.values():  # each sees their own card, and no one else's
        expect(visitor.page.locator(".mn-card")).to_have_count(1)


def test_no_visitor_can_open_another_visitors_server(hub: tuple[str, Any], visitors: dict[str, Visitor]) -> None:
    hub_url, _hub = hub
    (_alice, alice_visitor), (bob, _bob_visitor) = list(visitors.items())[:2]
    snooping = alice_visitor.context.new_page()
    response = snooping.goto(f"{hub_url}user/{bob}/voila/render/notebooks/app.ipynb")
    assert response is not None and response.status == 403  # the hub refuses to vouch for Alice there
    expect(snooping.get_by_text(READY)).to_have_count(0)
    snooping.close()
    assert alice_visitor.context.request.get(f"{hub_url}user/{bob}/api/contents/").status == 403


def test_a_visitor_can_change_or_run_nothing_in_their_own_server(
    hub: tuple[str, Any], visitors: dict[str, Visitor], tmp_path: Path
) -> None:
    hub_url, _hub = hub
    user, visitor = next(iter(visitors.items()))
    base = f"{hub_url}user/{user}/"
    request = visitor.context.request
    xsrf = next(cookie["value"] for cookie in visitor.context.cookies(base) if cookie["name"] == "_xsrf")
    headers = {"X-XSRFToken": xsrf}
    assert request.get(base + "api/contents/notebooks").status == 200  # reading is what the app does
    writes = {
        "upload a notebook": request.put(base + "api/contents/evil.ipynb", headers=headers,
                                         data={"type": "notebook", "content": {}}),
        "open a terminal": request.post(base + "api/terminals", headers=headers),
        "start a session": request.post(base + "api/sessions", headers=headers,
                                        data={"path": "x.ipynb", "type": "notebook", "kernel": {"name": "python3"}}),
        # JupyterLab's own handlers ask no authorizer (its extension manager runs pip): it is not there at all.
        "install a package": request.post(base + "lab/api/extensions", headers=headers,
                                          data={"cmd": "install", "extension_name": "anything"}),
        "change lab settings": request.put(base + "lab/api/settings/x:y", headers=headers, data={"raw": "{}"}),
    }
    statuses = {action: response.status for action, response in writes.items()}
    assert statuses == {
        "upload a notebook": 403, "open a terminal": 404, "start a session": 403,
        "install a package": 404, "change lab settings": 404,
    }

    marker = tmp_path / f"ran-{uuid.uuid4().hex}"
    kernel_id = visitor.page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
    replies = visitor.page.evaluate(
        """async ([url, code]) => {
            const socket = new WebSocket(url.replace(/^http/, "ws"));
            const replies = [];
            socket.onmessage = event => replies.push(JSON.parse(event.data).header.msg_type);
            await new Promise(resolve => { socket.onopen = resolve; });
            const send = (type, content) => socket.send(JSON.stringify({
                header: {msg_id: crypto.randomUUID(), msg_type: type, session: "snoop", username: "",
                         version: "5.3", date: new Date().toISOString()},
                parent_header: {}, metadata: {}, content, channel: "shell", buffers: []}));
            send("execute_request", {code, silent: false, store_history: false, user_expressions: {},
                                     allow_stdin: false, stop_on_error: true});
            send("kernel_info_request", {});
            await new Promise(resolve => setTimeout(resolve, 5000));
            socket.close();
            return replies;
        }""",
        [f"{base}api/kernels/{kernel_id}/channels", f"open({str(marker)!r}, 'w').write('ran')"],
    )
    assert "kernel_info_reply" in replies  # the kernel answers what the page may send...
    assert "execute_reply" not in replies and not marker.exists()  # ...and never runs code


def test_past_the_cap_the_next_visitor_is_asked_to_come_back_and_the_others_keep_working(
    chromium: Any, hub: tuple[str, Any], visitors: dict[str, Visitor]
) -> None:
    hub_url, _hub = hub
    late = Visitor(chromium, hub_url)
    try:
        expect(late.page.get_by_role("heading", name="The app is busy")).to_be_visible(timeout=30_000)
        expect(late.page.get_by_role("status")).to_contain_text("Please try again in a minute")
        assert late.page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "60"
        expect(late.page.get_by_text(READY)).to_have_count(0)
    finally:
        late.leave()  # before the next test frees a slot it would take
    first = next(iter(visitors.values()))
    first.page.get_by_role("button", name="Espresso").click()
    expect(first.page.locator(".mn-card").last).to_contain_text("espresso", timeout=60_000)


def test_a_visitor_whose_server_died_is_told_to_reload_and_gets_a_fresh_one(
    hub: tuple[str, Any], visitors: dict[str, Visitor], photos: dict[str, Path]
) -> None:
    _url, hub_process = hub
    user, visitor = list(visitors.items())[-1]
    dead = _server_pid(hub_process, user)
    assert dead is not None
    os.kill(dead, signal.SIGKILL)  # as the out-of-memory killer would

    # Said by the page itself within seconds (ipywidgets alone would keep retrying for minutes).
    expect(visitor.page.locator("body.mn-offline")).to_have_count(1, timeout=20_000)
    expect(visitor.page.get_by_role("alert")).to_have_text(CONNECTION_LOST)
    visitor.page.reload()  # the hub's page while it notices, then a fresh server
    assert visitor.wait_for_app() == user
    fresh = _server_pid(hub_process, user)
    assert fresh is not None and fresh != dead
    assert "missile" in visitor.classify(photos["rocket"])


def test_a_departed_visitors_server_is_culled_and_a_present_ones_is_kept(chromium: Any) -> None:
    converted_model()
    with serve_hub(max_visitors=2, idle_seconds=20) as (hub_url, hub_process):
        staying, leaving = Visitor(chromium, hub_url), Visitor(chromium, hub_url)
        stayer, leaver = staying.wait_for_app(), leaving.wait_for_app()
        assert _server_pid(hub_process, leaver) is not None
        leaving.leave()
        last_click = time.monotonic()

        def keep_using_the_app() -> None:
            nonlocal last_click
            if time.monotonic() - last_click >= 5:
                staying.page.get_by_role("button", name="Espresso").click()
                last_click = time.monotonic()

        _wait_for(lambda: _server_pid(hub_process, leaver) is None, 90,
                  "the departed visitor's server was not culled", every=keep_using_the_app)
        assert _server_pid(hub_process, stayer) is not None
        expect(staying.page.get_by_text(CONNECTION_LOST)).to_be_hidden()
        staying.page.get_by_role("button", name="Rocket").click()
        expect(staying.page.locator(".mn-card").last).to_contain_text("missile", timeout=60_000)
        staying.leave()
