"""Tests for classifier/kernels.py: departed visitors' kernels freed, new pages given time, kernels capped.

A kernel's page connects to it over a websocket, as the app's page does; here a
websocket client plays the page, so the timings are exact.  The last test sends
real visitors from Chromium against the settings of ``voila.json``.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator

import pytest
import websocket

from classifier.kernels import BUSY_MESSAGE, VisitorKernelManager, machine_memory
from classifier.testing import CHROMIUM, CHROMIUM_FLAGS, kernel_pids, serve_voila
from tests.conftest import page_kernel_id, require_chromium

GRACE_S = 3
IDLE_S = 15  # far from the grace: a kernel that goes within it went for having been left
QUICK = (
    f"--VisitorKernelManager.departed_grace={GRACE_S}", f"--MappingKernelManager.cull_idle_timeout={IDLE_S}",
    "--MappingKernelManager.cull_interval=1", "--VoilaConfiguration.preheat_kernel=False",
)


@pytest.fixture(scope="module")
def quick_server() -> Iterator[str]:
    """Voilà with short grace and idle times, and no pool, so every kernel is a visitor's."""
    with serve_voila(*QUICK) as (url, _server):
        yield url


def _alive(url: str, kernel_id: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}api/kernels/{kernel_id}", timeout=30):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def _connect(url: str, kernel_id: str) -> websocket.WebSocket:
    """Connect to a kernel as its page does."""
    address = url.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    return websocket.create_connection(address, timeout=30)


def _until(condition: Callable[[], bool], seconds: float) -> float | None:
    """Seconds until ``condition`` held, or ``None`` if it did not within ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.25)
    return None


def test_a_departed_visitors_kernel_goes_after_the_grace(quick_server: str) -> None:
    kernel = page_kernel_id(quick_server)
    _connect(quick_server, kernel).close()  # the visitor closes the tab
    time.sleep(GRACE_S - 1.5)
    assert _alive(quick_server, kernel), "freed before the grace was over"
    gone = _until(lambda: not _alive(quick_server, kernel), 3)  # the grace, then the next check (every second)
    assert gone is not None, "the departed visitor's kernel is still there"


def test_a_visitor_who_reconnects_within_the_grace_keeps_their_kernel(quick_server: str) -> None:
    kernel = page_kernel_id(quick_server)
    _connect(quick_server, kernel).close()  # a reload of the same page, a phone's network blip
    time.sleep(1)
    connection = _connect(quick_server, kernel)
    try:
        time.sleep(GRACE_S + 3)
        assert _alive(quick_server, kernel)
    finally:
        connection.close()


def test_a_visitor_who_stays_keeps_their_kernel_however_idle(quick_server: str) -> None:
    kernel = page_kernel_id(quick_server)
    connection = _connect(quick_server, kernel)
    try:
        time.sleep(IDLE_S + GRACE_S + 3)
        assert _alive(quick_server, kernel)
    finally:
        connection.close()


def test_a_page_fetched_without_a_browser_gets_time_to_connect_then_goes(quick_server: str) -> None:
    kernel = page_kernel_id(quick_server)  # a script or a crawler: nothing ever connects
    time.sleep(IDLE_S - 3)
    assert _alive(quick_server, kernel)
    assert _until(lambda: not _alive(quick_server, kernel), IDLE_S + 6) is not None


def test_past_the_cap_visitors_get_a_polite_busy_page_and_it_lifts_when_kernels_go() -> None:
    with serve_voila(*QUICK, "--VisitorKernelManager.max_kernels=2") as (url, server):
        first, second = page_kernel_id(url), page_kernel_id(url)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=60)
        assert refused.value.code == 503
        assert BUSY_MESSAGE in refused.value.read().decode()
        assert _alive(url, first) and _alive(url, second)  # the visitors already there keep working
        assert len(kernel_pids(server.pid)) == 2

        _connect(url, first).close()  # one of them leaves
        assert _until(lambda: not _alive(url, first), GRACE_S + 6) is not None
        assert page_kernel_id(url)  # and a newcomer gets in


def test_the_cap_is_sized_from_the_memory_when_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = VisitorKernelManager(memory_per_kernel=100 * 2**20)
    monkeypatch.setattr("classifier.kernels.machine_memory", lambda: 2 * 2**30)  # a Binder pod
    assert manager.kernel_limit == 15  # three quarters of 2 GiB at 100 MiB each
    manager.max_kernels = 4
    assert manager.kernel_limit == 4
    assert 0 < machine_memory() <= 2**50


def test_visitors_leaving_one_after_another_leave_only_the_pool_within_a_minute() -> None:
    """Real visitors, real settings (voila.json): 4 in a row open the app, use it and leave."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    with serve_voila() as (url, server), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for _ in range(4):
            context = browser.new_context()
            page = context.new_page()
            page.goto(url)
            expect(page.get_by_text("Ready: upload photos or try an example.")).to_be_visible(timeout=120_000)
            page.get_by_role("button", name="Espresso").click()
            expect(page.locator(".mn-card .mn-predictions li").first).to_contain_text("espresso", timeout=60_000)
            context.close()  # Playwright sends no beforeunload: only the kernel manager frees the kernel
        browser.close()
        pool = 1  # voila.json: default_pool_size
        settled = _until(lambda: len(kernel_pids(server.pid)) <= pool, 60)
        assert settled is not None, f"{len(kernel_pids(server.pid))} kernels a minute after the visitors left"
