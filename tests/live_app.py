"""The app served live: Voilà on a free loopback port, and the Chromium that visits it.

Shared by the browser tests, the concurrent-visitor test and the load benchmark.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "ROOT", "require_chromium", "serve_voila"]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
"""Debian's Chromium, without the background connections this closed network refuses."""


def require_chromium() -> None:
    """Fail in CI without Chromium; elsewhere skip the calling tests, loudly."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI needs Chromium for the browser tests, but {CHROMIUM} is missing")
    pytest.skip(
        "BROWSER TESTS SKIPPED: Chromium is not installed (apt-get install -y chromium)",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"Voilà exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"Voilà did not answer at {url} within {timeout} s")


@contextmanager
def serve_voila(
    *extra_args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve ``notebooks/app.ipynb`` from the repo root, so ``voila.json`` applies.

    ``env`` replaces the environment of the server and its kernels.

    Yields
    ------
    tuple
        The app's URL and the server process (for its PID, e.g. to find kernels).
    """
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", "notebooks/app.ipynb", "--no-browser",
         f"--port={port}", "--Voila.ip=127.0.0.1", *extra_args],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        # A static file: asking for the page itself would start a kernel no one uses.
        _wait_until_serving(url + "voila/static/favicon.ico", server, timeout)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)
