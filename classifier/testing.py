"""Helpers for running the app for real, shared by the tests and the benchmarks.

Meant for a checkout of the repository (``ROOT`` is its root): the offline
Keras cache, the app served by Voilà or by Jupyter Server on a free loopback
port, and the settings of the Chromium that visits it.  Nothing here is used by
the app itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "OFFLINE_WEIGHTS",
    "ROOT",
    "free_port",
    "offline_keras_home",
    "serve_jupyter_server",
    "serve_voila",
]

ROOT: Final[Path] = Path(__file__).resolve().parent.parent
"""The repository's root: ``voila.json`` there applies to servers started from it."""

OFFLINE_WEIGHTS: Final[Path] = ROOT.parent / "shared" / "keras-cache" / "models"
"""Where CI and development machines keep the MobileNetV2 weights (read-only)."""

CHROMIUM: Final[str] = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS: Final[list[str]] = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
"""Debian's Chromium, without the background connections a closed network refuses."""

JUPYTER_TOKEN: Final[str] = "test-token"
"""The token of Jupyter Servers started by :func:`serve_jupyter_server`, as Binder gives one."""


@contextmanager
def offline_keras_home() -> Iterator[Path]:
    """Point ``KERAS_HOME`` at a Keras cache holding the MobileNetV2 weights.

    An existing ``$KERAS_HOME`` is used as it is.  Otherwise the offline weights
    in :data:`OFFLINE_WEIGHTS` are copied into a temporary cache (their folder
    stays read-only), removed afterwards.  Keras reads ``KERAS_HOME`` once, at
    import, so call this before anything imports Keras.

    Yields
    ------
    pathlib.Path
        The Keras cache folder, holding ``models/*.h5``.

    Raises
    ------
    FileNotFoundError
        If ``KERAS_HOME`` is unset and there are no offline weights.
    """
    if "KERAS_HOME" in os.environ:
        yield Path(os.environ["KERAS_HOME"])
        return
    if not OFFLINE_WEIGHTS.is_dir():
        raise FileNotFoundError(f"Set KERAS_HOME to a Keras cache with the weights; {OFFLINE_WEIGHTS} is missing")
    with tempfile.TemporaryDirectory(prefix="keras-home-") as folder:
        models = Path(folder) / "models"
        shutil.copytree(OFFLINE_WEIGHTS, models)
        for copied in models.iterdir():
            copied.chmod(0o644)  # the originals are read-only; the copies must not be
        os.environ["KERAS_HOME"] = folder
        try:
            yield Path(folder)
        finally:
            del os.environ["KERAS_HOME"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve_voila(
    *extra_args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve ``notebooks/app.ipynb`` with Voilà from the repository root, so ``voila.json`` applies.

    Parameters
    ----------
    extra_args
        More command-line options for Voilà (they override ``voila.json``).
    env
        The environment of the server and its kernels; by default this one.
    timeout
        Seconds to wait for the server to answer.

    Yields
    ------
    tuple
        The app's URL and the server process.
    """
    port = free_port()
    command = [
        sys.executable, "-m", "voila", "notebooks/app.ipynb", "--no-browser",
        f"--port={port}", "--Voila.ip=127.0.0.1", *extra_args,
    ]
    # A static file tells the server is up: asking for the page would start a kernel.
    with _serving(command, f"http://127.0.0.1:{port}/", "voila/static/favicon.ico", env, timeout) as served:
        yield served


@contextmanager
def serve_jupyter_server(
    *extra_args: str, root_dir: Path = ROOT, env: Mapping[str, str] | None = None, timeout: float = 120
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve ``root_dir`` with Jupyter Server as Binder does, with ``binder/jupyter_server_config.json``.

    Run from the repository's root, so the Voilà extension reads ``voila.json``;
    with the default ``root_dir`` the app is at
    ``<url>voila/render/notebooks/app.ipynb?token=<JUPYTER_TOKEN>``.

    Yields
    ------
    tuple
        The server's base URL and the server process.
    """
    port = free_port()
    command = [
        sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
        f"--config={ROOT / 'binder' / 'jupyter_server_config.json'}", f"--IdentityProvider.token={JUPYTER_TOKEN}",
        f"--ServerApp.root_dir={root_dir}", "--allow-root", *extra_args,
    ]
    with _serving(command, f"http://127.0.0.1:{port}/", "api/status", env, timeout) as served:
        yield served


@contextmanager
def _serving(
    command: list[str], url: str, probe: str, env: Mapping[str, str] | None, timeout: float
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_serving(url + probe, server, timeout, log)
            yield url, server
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)


def _wait_until_serving(url: str, server: subprocess.Popen[bytes], timeout: float, log: object) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            raise RuntimeError(f"{server.args[2]} exited with code {server.returncode}:\n{log.read().decode()[-3000:]}")  # type: ignore[attr-defined]
        try:
            request = urllib.request.Request(url, headers={"Authorization": f"token {JUPYTER_TOKEN}"})
            with urllib.request.urlopen(request, timeout=5):
                return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"no answer at {url} within {timeout} s")
