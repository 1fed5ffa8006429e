"""Tests for classifier/forked_kernels.py: kernels forked from a warm fork server behave as kernels.

The provisioner is chosen by a kernelspec of the test's own, so jupyter_client
uses it exactly as a Voilà or Jupyter server would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.manager import AsyncKernelManager

from classifier import forked_kernels
from classifier.forked_kernels import _forkable, _ForkedKernel


@pytest.fixture(scope="module")
def forking_kernelspec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kernelspec like python3's, that asks for the forking provisioner."""
    folder = tmp_path_factory.mktemp("jupyter-path")
    spec = folder / "kernels" / "forked-python"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (forked)", "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": "classifier-forking"}},
    }))
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(folder)
    yield "forked-python"
    if previous is None:
        del os.environ["JUPYTER_PATH"]
    else:
        os.environ["JUPYTER_PATH"] = previous


async def _run(manager: AsyncKernelManager, code: str, timeout: float = 60) -> tuple[str, list[str]]:
    """Execute ``code``; return the reply's status and everything printed."""
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=timeout)
        printed: list[str] = []
        reply = await client.execute_interactive(
            code, timeout=timeout,
            output_hook=lambda msg: printed.append(msg["content"]["text"]) if msg["msg_type"] == "stream" else None,
        )
        return reply["content"]["status"], printed
    finally:
        client.stop_channels()


def test_a_forked_kernel_runs_code_with_the_app_already_loaded(forking_kernelspec: str) -> None:
    async def scenario() -> list[str]:
        manager = AsyncKernelManager(kernel_name=forking_kernelspec)
        await manager.start_kernel()
        try:
            status, printed = await _run(manager, textwrap.dedent("""
                import os, sys
                from classifier.session import _SHARED
                print(os.getpid(), os.getppid(), open("/proc/self/comm").read().strip())
                print("classifier.ui" in sys.modules, sorted(_SHARED))
            """))
            assert status == "ok"
            return "".join(printed).split()
        finally:
            await manager.shutdown_kernel(now=True)

    pid, parent, name, ui_loaded, *models = asyncio.run(scenario())
    assert int(parent) != os.getpid()  # a child of the fork server, not of the process that asked
    assert name == "ipykernel" and ui_loaded == "True" and models == ["['MobileNetV2']"]


def test_a_forked_kernel_can_be_interrupted_restarted_and_shut_down(forking_kernelspec: str) -> None:
    async def scenario() -> None:
        manager = AsyncKernelManager(kernel_name=forking_kernelspec)
        await manager.start_kernel()
        first = manager.provisioner.pid
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=60)
        reply = asyncio.ensure_future(client.execute_interactive("import time; time.sleep(60)", timeout=60))
        await asyncio.sleep(2)
        await manager.interrupt_kernel()
        assert (await asyncio.wait_for(reply, 30))["content"]["ename"] == "KeyboardInterrupt"
        client.stop_channels()

        await manager.restart_kernel(now=True)
        second = manager.provisioner.pid
        assert second != first and not _exists(first)
        assert (await _run(manager, "print(6 * 7)"))[1] == ["42\n"]

        await manager.shutdown_kernel(now=False)
        assert not _exists(second) and not await manager.is_alive()

    asyncio.run(scenario())


def _exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_the_fork_server_stops_when_the_server_that_started_it_does(forking_kernelspec: str, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import asyncio
        from jupyter_client.manager import AsyncKernelManager
        from classifier.forked_kernels import _ForkServer

        async def main():
            manager = AsyncKernelManager(kernel_name={forking_kernelspec!r})
            await manager.start_kernel()
            print(_ForkServer._current.process.pid, flush=True)
            await manager.shutdown_kernel(now=True)

        asyncio.run(main())
        import os; os._exit(0)  # no clean-up: as if the server crashed
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=os.environ)
    fork_server = int(result.stdout.split()[0])
    deadline = time.monotonic() + 20
    while _exists(fork_server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _exists(fork_server), "the fork server outlived its server"


def test_only_ipykernels_of_this_python_are_forked() -> None:
    assert _forkable([sys.executable, "-m", "ipykernel_launcher", "-f", "kernel.json"])
    assert not _forkable(["/usr/bin/python3.9", "-m", "ipykernel_launcher", "-f", "kernel.json"])
    assert not _forkable([sys.executable, "-m", "other_kernel", "-f", "kernel.json"])
    assert not _forkable(["R", "--slave", "-e", "IRkernel::main()", "--args", "kernel.json"])


def test_the_fork_server_refuses_to_fork_with_a_second_thread() -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        with pytest.raises(RuntimeError, match="threads; a fork would keep only one"):
            forked_kernels._fork_kernel({"argv": [], "env": {}, "cwd": "/"}, ())
    finally:
        release.set()
        other.join()


def test_a_forked_kernel_is_watched_by_pid_and_start_time() -> None:
    process = subprocess.Popen(["sleep", "60"])
    kernel = _ForkedKernel(process.pid)
    assert kernel.poll() is None
    kernel.send_signal(signal.SIGTERM)
    process.wait(timeout=10)  # reaped, as the fork server's system does for its children
    assert kernel.wait(timeout=10) == 0 and kernel.poll() == 0
    kernel.kill()  # nothing to kill any more: no error
