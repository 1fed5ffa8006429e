"""Kernels forked from a warm process: each starts in a fraction of a second and shares memory.

Every visitor of the app gets a kernel of their own.  Started the usual way, each
is a new Python that imports IPython, numpy, matplotlib, LiteRT, ipywidgets and
the app (about one CPU-second) and loads the model into memory of its own.  Here
one *fork server* does all that once, and each kernel is a fork of it that only
runs the kernel's own start-up: the imported code, the fonts and the model's
weights are shared by all kernels, copy-on-write.

:class:`ForkingProvisioner` is a jupyter_client kernel provisioner, registered as
``classifier-forking`` (see ``pyproject.toml``); a server uses it for every kernel
with ``KernelProvisionerFactory.default_provisioner_name`` (see ``voila.json``).
A kernel of another Python, or not an ipykernel, is started the usual way.

A fork keeps only the thread that called it, so the fork server stays
single-threaded: it creates no zmq context, event loop or kernel of its own,
OpenBLAS starts no thread pool, the model runs one inference thread, and it
refuses to fork while another thread exists.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Final

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner

__all__ = ["ForkingProvisioner", "serve"]

_LOG = logging.getLogger(__name__)
_START_TIMEOUT_S: Final[float] = 120.0
"""Longest wait for a fork server to be ready (it imports everything and loads the model)."""
_IPYKERNEL: Final[list[str]] = ["-m", "ipykernel_launcher"]


class ForkingProvisioner(LocalProvisioner):
    """Start ipykernels of this Python by forking the fork server; anything else as usual."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        if not _forkable(cmd):
            return await super().launch_kernel(cmd, **kwargs)
        server = await _ForkServer.running()
        pid = await server.fork(argv=cmd[3:], env=kwargs.get("env") or dict(os.environ), cwd=str(kwargs.get("cwd") or os.getcwd()))
        self.process = _ForkedKernel(pid)
        self.pid = self.pgid = pid  # each kernel leads a session and process group of its own
        self.cwd = kwargs.get("cwd", Path.cwd())
        return self.connection_info


def _forkable(cmd: list[str]) -> bool:
    """Whether ``cmd`` starts an ipykernel with this very Python (the fork server's)."""
    return (
        len(cmd) >= 3 and cmd[1:3] == _IPYKERNEL
        and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)
    )


class _ForkedKernel:
    """The parts of :class:`subprocess.Popen` the provisioner uses, for a kernel the fork server forked.

    The kernel is the fork server's child, not ours: it is watched by its pid and
    its start time (so a recycled pid is not mistaken for it), and the fork
    server's system reaps it.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._started = _start_time(pid)

    def poll(self) -> int | None:
        if self.returncode is None and (self._started is None or _start_time(self.pid) != self._started):
            self.returncode = 0  # gone; its exit status went to its parent
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
            time.sleep(0.05)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (field 22 of /proc/PID/stat), or ``None`` if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


class _ForkServer:
    """The fork server of this (Voilà or Jupyter) server process, started on first use."""

    _current: _ForkServer | None = None
    _starting = asyncio.Lock()

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="classifier-forks-"))  # private: mode 0700
        self.address = str(self.folder / "fork-server")
        # Its stdin is a pipe from here: when this process ends, the fork server sees the end and stops.
        # OpenBLAS must not start its thread pool, which importing the package (numpy) would do;
        # the debugger (preloaded for kernels that offer debugging) need not warn about frozen modules.
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, self.address], stdin=subprocess.PIPE,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
        )
        atexit.register(self.stop)

    @classmethod
    async def running(cls) -> _ForkServer:
        async with cls._starting:
            if cls._current is None or cls._current.process.poll() is not None:
                cls._current = cls()
                await cls._current._until_ready()
            return cls._current

    async def _until_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not os.path.exists(self.address):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the kernel fork server did not start (exit code {self.process.returncode})")
            await asyncio.sleep(0.05)

    async def fork(self, *, argv: list[str], env: dict[str, str], cwd: str) -> int:
        reader, writer = await asyncio.open_unix_connection(self.address)
        try:
            writer.write(json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode() + b"\n")
            await writer.drain()
            answer = json.loads(await asyncio.wait_for(reader.readline(), timeout=30))
        finally:
            writer.close()
        if "pid" not in answer:
            raise RuntimeError(f"the kernel fork server could not start a kernel: {answer.get('error')}")
        return int(answer["pid"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()


# --- the fork server process: python -m classifier.forked_kernels ADDRESS ------------------


def serve(address: str) -> None:
    """Load everything a kernel of the app needs, then fork a kernel for each request at ``address``.

    Stops when its standard input ends (the server that started it is gone).
    """
    _preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the system reaps the kernels: no zombies
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address + ".starting")
    listener.listen(64)
    os.rename(address + ".starting", address)  # the address appears once it answers
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in readable and not sys.stdin.buffer.read1(1):
            return
        if listener in readable:
            connection, _ = listener.accept()
            with connection:
                _answer(connection, listener)


def _answer(connection: socket.socket, listener: socket.socket) -> None:
    try:
        request = json.loads(connection.makefile("rb").readline())
        answer: dict[str, Any] = {"pid": _fork_kernel(request, (listener, connection))}
    except Exception as error:  # a bad request, or the rule below: tell the provisioner
        _LOG.exception("could not fork a kernel")
        answer = {"error": str(error)}
    connection.sendall(json.dumps(answer).encode() + b"\n")


def _fork_kernel(request: dict[str, Any], sockets: tuple[socket.socket, ...]) -> int:
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise RuntimeError(f"the fork server has {threads} threads; a fork would keep only one")
    pid = os.fork()
    if pid:
        return pid
    # The kernel: from here on, never return to the fork server's loop.
    code = 1
    try:
        for server_socket in sockets:
            server_socket.close()
        _name_process(b"ipykernel")  # as `ps` and `top` show it: a kernel, not another fork server
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        from ipykernel.kernelapp import IPKernelApp

        # An app's kernel keeps no input history: no history database, and one thread less.
        IPKernelApp.launch_instance(argv=[*request["argv"], "--HistoryManager.enabled=False"])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _name_process(name: bytes) -> None:
    """Set this process's name (``/proc/self/comm``), Linux only."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # 15: PR_SET_NAME


def _preload() -> None:
    """Import and warm up what the app's kernels use, so every fork starts with it."""
    import ipykernel.debugger  # noqa: F401  (debugpy: a tenth of a second in every kernel otherwise)
    import ipykernel.ipkernel  # noqa: F401  (IPython, zmq bindings, comm, traitlets)
    import ipykernel.kernelapp  # noqa: F401

    import classifier.ui  # noqa: F401  (numpy, Pillow, matplotlib, LiteRT, ipywidgets, anywidget)
    from classifier.conversion import cached_converted_model
    from classifier.model import Prediction
    from classifier.plotting import figure_to_png, plot_predictions
    from classifier.session import shared_classifier

    # Fonts, and every character a label or a percentage can use, rendered once for all kernels.
    characters = "".join(chr(code) for code in range(32, 127))
    figure_to_png(plot_predictions([Prediction(characters[:40], 0.5, 0), Prediction(characters[40:], 0.25, 1)]))
    if cached_converted_model() is not None:  # never convert here: that would import TensorFlow
        from PIL import Image

        # One inference thread: a thread pool made before the fork would not exist in the kernels.
        warm = shared_classifier(num_threads=1)
        warm.classify(Image.new("RGB", (warm.input_size, warm.input_size)))  # packs the weights once
    if threading.active_count() != 1:
        _LOG.warning("the kernel fork server started threads: %s", threading.enumerate())


if __name__ == "__main__":
    serve(sys.argv[1])
