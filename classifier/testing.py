"""Helpers for running the app for real, shared by the tests and the benchmarks.

Meant for a checkout of the repository (``ROOT`` is its root): the offline
Keras cache, the app served by Voilà or by Jupyter Server on a free loopback
port, and the settings of the Chromium that visits it.  Nothing here is used by
the app itself.
"""

from __future__ import annotations

import os
import shutil
import signal
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
    "cpu_seconds",
    "free_port",
    "kernel_pids",
    "offline_keras_home",
    "process_tree",
    "pss_bytes",
    "serve_hub",
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
    *extra_args: str, root: Path = ROOT, env: Mapping[str, str] | None = None, timeout: float = 120
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve ``notebooks/app.ipynb`` with Voilà from the repository root, so ``voila.json`` applies.

    Parameters
    ----------
    extra_args
        More command-line options for Voilà (they override ``voila.json``).
    root
        The checkout to serve, this one by default; another (an older version,
        say) is served with its own ``classifier`` package first on the path.
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
    if root != ROOT:
        env = {**(env or os.environ), "PYTHONPATH": str(root)}
    # A static file tells the server is up: asking for the page would start a kernel.
    with _serving(command, f"http://127.0.0.1:{port}/", "voila/static/favicon.ico", env, timeout, root) as served:
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
    with _serving(command, f"http://127.0.0.1:{port}/", "api/status", env, timeout, ROOT) as served:
        yield served


@contextmanager
def serve_hub(
    *extra_args: str, max_visitors: int, idle_seconds: int = 600, env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve the app with JupyterHub and ``deploy/jupyterhub_config.py`` on loopback, as in production
    but for the spawner: each visitor's server is a local process running this checkout.

    Needs ``configurable-http-proxy`` on the ``PATH``.  The hub's database and
    secrets live in a temporary folder, removed afterwards with every process the
    hub started (proxy, culler, visitors' servers and their kernels).

    Parameters
    ----------
    extra_args
        More command-line options for JupyterHub.
    max_visitors, idle_seconds
        ``APP_MAX_VISITORS`` and ``APP_IDLE_SECONDS`` (see the config file).
    env
        The environment of the hub and, through ``KERAS_HOME``, of the app; by default this one.

    Yields
    ------
    tuple
        The hub's public URL (visitors open it) and the hub process.
    """
    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    command = [
        sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "deploy" / "jupyterhub_config.py"),
        "--JupyterHub.spawner_class=simple", "--JupyterHub.ip=127.0.0.1", f"--port={port}",
        f"--JupyterHub.hub_port={hub_port}", f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{proxy_api_port}",
        *extra_args,
    ]
    settings = {"APP_DIR": str(ROOT), "APP_MAX_VISITORS": str(max_visitors), "APP_IDLE_SECONDS": str(idle_seconds)}
    with tempfile.TemporaryDirectory(prefix="hub-") as folder:
        url = f"http://127.0.0.1:{port}/"
        with _serving(command, url, "hub/health", {**(env or os.environ), **settings}, timeout, Path(folder)) as served:
            yield served


@contextmanager
def _serving(
    command: list[str], url: str, probe: str, env: Mapping[str, str] | None, timeout: float, cwd: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_serving(url + probe, server, timeout, log)
            yield url, server
        finally:
            started = process_tree(server.pid)[1:]
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
            for pid in started:  # what the server failed to stop: kernels, a proxy, visitors' servers
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


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


# --- what a server costs, from /proc (Linux) --------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def kernel_pids(server: int) -> list[int]:
    """The kernels under a server: started as ``ipykernel_launcher``, or forked and named ``ipykernel``."""
    kernels = []
    for pid in process_tree(server):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if name == "ipykernel" or b"ipykernel_launcher" in command:
            kernels.append(pid)
    return kernels


def cpu_seconds(pids: Iterator[int] | list[int]) -> float:
    """CPU time (user and system) the processes ``pids`` have used so far, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(stat[11]) + int(stat[12]) for pid in pids if (stat := _stat(pid))) / ticks


def pss_bytes(pid: int) -> int:
    """Proportional set size of ``pid``: its memory, with pages shared by N processes counted 1/N."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, ...), or ``None`` if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
