"""Load benchmark: a crowd of visitors uses the Voilà app at once, from one headless Chromium.

Run from the repository root (opt-in: it takes about 10 minutes, and no test runs it)::

    python -m benchmarks.load                        # crowds of 1, 5, 10 and 20
    python -m benchmarks.load --visitors 5 --photos 1
    python -m benchmarks.load --root ../before       # the same crowds against another checkout
    python -m benchmarks.load --voila-arg=--VoilaConfiguration.default_pool_size=4   # a lever
    python -m benchmarks.load --floor                # Voilà's own floor: a one-widget notebook
    python -m benchmarks.load --hub --visitors 1,5,10  # through JupyterHub (deploy/), a server each

For each crowd a fresh Voilà serves the app as ``voila.json`` says.  Once its
preheated kernels are ready and quiet, the visitors open the page at once (each
in a browser context of its own), wait for "Ready", upload real photos, wait
for "Done", and leave.  Measured on the server's whole process tree from
``/proc`` (Chromium shares the two cores but is not counted):

* page ready and results, p50 and p95, in seconds;
* CPU-seconds per visitor: the tree's CPU from before the crowd until the last
  result, divided by the visitors (pool refills included);
* PSS per visitor: the tree's proportional set size at the last result minus
  before the crowd, divided by the visitors; and the mean PSS of a kernel;
* kernels alive 60 s after the visitors left, and how soon the crowd's
  kernels were gone;
* the browser's CPU-seconds per visitor (all its processes), to show what of
  the waiting is Chromium's own work on these two cores: ``--floor`` serves a
  notebook of one widget instead of the app, to measure what any Voilà page
  costs.

With ``--hub`` the crowd goes through JupyterHub with ``deploy/jupyterhub_config.py``
(local processes, see ``classifier.testing.serve_hub``): every visitor is logged
in anonymously and waits for a Jupyter Server of their own, and "page ready" counts
from opening the hub's address; the tree measured is the hub's (proxy, culler,
every visitor's server and kernel).  In every mode the model is converted before
the first crowd, as a deployment's first start (or Binder's image) does.

It prints a table and writes JSON (``--output``, default ``benchmarks/results/load.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Final

import matplotlib.cbook
import skimage
from playwright.async_api import Browser, FilePayload, Page, async_playwright

from benchmarks.run import machine_info, progress
from classifier.conversion import converted_model
from classifier.testing import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    ROOT,
    cpu_seconds,
    kernel_pids,
    offline_keras_home,
    process_tree,
    pss_bytes,
    serve_hub,
    serve_voila,
)

DEFAULT_OUTPUT: Final[Path] = ROOT / "benchmarks" / "results" / "load.json"
READY_TEXT: Final[str] = "Ready: upload photos or try an example."
TIMEOUT_S: Final[float] = 180
LEFT_FOR_S: Final[float] = 60
"""How long after the visitors leave their kernels are counted."""
SERVERS_GONE_WITHIN_S: Final[float] = 300
"""Through a hub, how long to wait for the departed visitors' servers to stop."""
MB: Final[int] = 2**20
_PHOTOS: Final[tuple[Path, ...]] = (
    Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
    Path(skimage.__file__).parent / "data" / "chelsea.png",
    Path(skimage.__file__).parent / "data" / "coffee.png",
    Path(skimage.__file__).parent / "data" / "rocket.jpg",
)


@dataclass(frozen=True)
class Crowd:
    """What one crowd of visitors met, and what they cost the server."""

    visitors: int
    ready_s: list[float]
    results_s: list[float]
    failures: list[str]
    cpu_s_per_visitor: float
    pss_mb_per_visitor: float
    kernel_pss_mb: float
    kernels_before: int
    kernels_left_after_60_s: int
    crowd_gone_after_s: float | None
    browser_cpu_s_per_visitor: float
    servers_left_after_60_s: int | None = None
    """Through a hub: visitors' Jupyter Servers still running 60 s after they left..."""
    servers_gone_after_s: float | None = None
    """... and how soon all had stopped by themselves (``None``: not within ``SERVERS_GONE_WITHIN_S``)."""
    machine_load: list[float] = field(default_factory=lambda: list(os.getloadavg()))

    def row(self) -> list[str]:
        gone = "—" if self.crowd_gone_after_s is None else f"{self.crowd_gone_after_s:.0f} s"
        return [
            str(self.visitors), f"{len(self.ready_s) - len(self.failures)}/{self.visitors}",
            f"{_percentile(self.ready_s, 50)} / {_percentile(self.ready_s, 95)}",
            f"{_percentile(self.results_s, 50)} / {_percentile(self.results_s, 95)}",
            f"{self.cpu_s_per_visitor:.2f}", f"{self.pss_mb_per_visitor:.0f}", f"{self.kernel_pss_mb:.0f}",
            f"{self.kernels_left_after_60_s} (pool {self.kernels_before})"
            + ("" if self.servers_left_after_60_s is None else f", {self.servers_left_after_60_s} servers"),
            gone + ("" if self.servers_gone_after_s is None else f"; servers {self.servers_gone_after_s:.0f} s"),
            f"{self.browser_cpu_s_per_visitor:.1f}",
        ]


async def visit(browser: Browser, url: str, photos: list[FilePayload], *, hub: bool = False) -> tuple[float, float]:
    """One visitor: open the app, wait for Ready, upload ``photos``, wait for Done; return both times."""
    context = await browser.new_context(viewport={"width": 1100, "height": 1400})
    page = await context.new_page()
    started = time.perf_counter()
    await page.goto(url, wait_until="commit", timeout=TIMEOUT_S * 1e3)
    if hub:  # the hub's "starting" page first, until the visitor's server is up
        await page.wait_for_url("**/voila/render/**", wait_until="commit", timeout=TIMEOUT_S * 1e3)
    await _status(page, READY_TEXT)
    ready = time.perf_counter() - started
    if not photos:
        return ready, 0.0
    started = time.perf_counter()
    async with page.expect_file_chooser(timeout=TIMEOUT_S * 1e3) as chooser:
        await page.get_by_role("button", name="Upload photos").click(timeout=TIMEOUT_S * 1e3)
    await (await chooser.value).set_files(photos)
    await _status(page, f"Done: {len(photos)} photo" + ("s" if len(photos) > 1 else "") + " classified.")
    return ready, time.perf_counter() - started


async def _status(page: Page, wanted: str) -> None:
    """Wait until the status line says ``wanted``; fail at once if it shows a problem instead."""
    handle = await page.wait_for_function(
        """wanted => {
            const status = document.querySelector('.mn-status');
            if (!status) return null;
            const text = status.textContent.trim();
            return text === wanted || status.querySelector('.mn-problem') ? text : null;
        }""",
        arg=wanted, polling=100, timeout=TIMEOUT_S * 1e3,
    )
    text = await handle.json_value()
    if text != wanted:
        raise RuntimeError(f"the page said {text!r}")


async def run_crowd(
    browser: Browser, visitors: int, photos: int, root: Path, voila_args: Sequence[str], *, hub: bool = False
) -> Crowd:
    """Serve the app afresh, send ``visitors`` at once, and measure what they met and cost."""
    files: list[FilePayload] = [
        {"name": path.name, "mimeType": "image/jpeg" if path.suffix == ".jpg" else "image/png", "buffer": path.read_bytes()}
        for path in (_PHOTOS * photos)[:photos]
    ]
    serving = serve_hub(max_visitors=visitors) if hub else serve_voila(*voila_args, root=root)
    with serving as (url, server):
        pool = await _settle(server.pid, kernels_expected=not hub)
        cpu_before, pss_before = cpu_seconds(process_tree(server.pid)), _tree_pss(server.pid)
        browser_before = cpu_seconds(_browser_pids(server.pid))
        outcomes = await asyncio.gather(
            *(visit(browser, url, files, hub=hub) for _ in range(visitors)), return_exceptions=True
        )
        tree = process_tree(server.pid)
        cpu_spent, pss_added = cpu_seconds(tree) - cpu_before, _tree_pss(server.pid) - pss_before
        browser_spent = cpu_seconds(_browser_pids(server.pid)) - browser_before
        kernels = kernel_pids(server.pid)
        kernel_pss = statistics.fmean(pss_bytes(pid) for pid in kernels) / MB if kernels else 0.0
        for context in browser.contexts:
            await context.close()  # the visitors leave (Playwright sends no beforeunload)
        left = time.monotonic()
        gone_after = None
        while time.monotonic() - left < LEFT_FOR_S:
            await asyncio.sleep(1)
            if gone_after is None and len(kernel_pids(server.pid)) <= pool:
                gone_after = time.monotonic() - left
        servers_left = len(_hub_servers(server.pid)) if hub else None
        servers_gone_after = None
        while hub and time.monotonic() - left < SERVERS_GONE_WITHIN_S:
            if not _hub_servers(server.pid):
                servers_gone_after = time.monotonic() - left
                break
            await asyncio.sleep(1)
        finished = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        return Crowd(
            visitors=visitors,
            ready_s=[ready for ready, _ in finished],
            results_s=[results for _, results in finished],
            failures=[str(outcome).splitlines()[0] for outcome in outcomes if isinstance(outcome, BaseException)],
            cpu_s_per_visitor=cpu_spent / visitors,
            pss_mb_per_visitor=pss_added / visitors / MB,
            kernel_pss_mb=kernel_pss,
            kernels_before=pool,
            kernels_left_after_60_s=len(kernel_pids(server.pid)),
            crowd_gone_after_s=gone_after,
            browser_cpu_s_per_visitor=browser_spent / visitors,
            servers_left_after_60_s=servers_left,
            servers_gone_after_s=servers_gone_after,
        )


async def _settle(server: int, *, kernels_expected: bool = True) -> int:
    """Wait until the server's preheated kernels have started and the tree is quiet; return how many."""
    deadline = time.monotonic() + TIMEOUT_S
    previous = cpu_seconds(process_tree(server))
    while time.monotonic() < deadline:
        await asyncio.sleep(2)
        now = cpu_seconds(process_tree(server))
        if now - previous < 0.05 and (kernel_pids(server) or not kernels_expected):
            return len(kernel_pids(server))
        previous = now
    return len(kernel_pids(server))


def _hub_servers(hub: int) -> list[int]:
    """The visitors' Jupyter Servers a hub runs now."""
    servers = []
    for pid in process_tree(hub):
        try:
            if b"jupyterhub-singleuser" in Path(f"/proc/{pid}/cmdline").read_bytes():
                servers.append(pid)
        except OSError:
            continue
    return servers


def _browser_pids(server: int) -> list[int]:
    """Chromium and Playwright's driver: this process's other descendants."""
    servers = set(process_tree(server))
    return [pid for pid in process_tree(os.getpid()) if pid not in servers and pid != os.getpid()]


def _floor_root(folder: Path) -> Path:
    """A checkout-like folder whose notebook is one widget saying Ready: what any Voilà page costs."""
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "floor", "metadata": {}, "outputs": [],
                   "source": f"import ipywidgets\nipywidgets.HTML(\"<span class='mn-status'>{READY_TEXT}</span>\")"}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    (folder / "notebooks").mkdir(parents=True, exist_ok=True)
    (folder / "notebooks" / "app.ipynb").write_text(json.dumps(notebook))
    (folder / "voila.json").write_text((ROOT / "voila.json").read_text())
    return folder


def _tree_pss(server: int) -> int:
    return sum(pss_bytes(pid) for pid in process_tree(server))


def _percentile(values: Sequence[float], percentile: int) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(percentile / 100 * (len(ordered) - 1)))]:.1f}"


def format_table(crowds: Sequence[Crowd]) -> str:
    header = [
        "visitors", "served", "ready p50 / p95 (s)", "results p50 / p95 (s)", "CPU-s per visitor",
        "PSS per visitor (MB)", "kernel PSS (MB)", "kernels 60 s after", "crowd's kernels gone",
        "browser CPU-s per visitor",
    ]
    rows = [header] + [crowd.row() for crowd in crowds]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    failures = [f"  {crowd.visitors} visitors: {failure}" for crowd in crowds for failure in crowd.failures]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:], *(["failures:", *failures] if failures else [])])


async def run_all(
    crowds: Sequence[int], photos: int, root: Path, voila_args: Sequence[str], *, hub: bool = False
) -> list[Crowd]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        results = []
        for visitors in crowds:
            progress(f"{visitors} visitors" + (" through the hub" if hub else ""))
            results.append(await run_crowd(browser, visitors, photos, root, voila_args, hub=hub))
        await browser.close()
        return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", default="1,5,10,20", help="crowd sizes, comma-separated (default 1,5,10,20)")
    parser.add_argument("--photos", type=int, default=3, help="photos each visitor uploads (default 3)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve (default: this one)")
    parser.add_argument("--voila-arg", action="append", default=[], help="a Voilà option, e.g. to turn a lever off")
    parser.add_argument("--floor", action="store_true", help="serve a one-widget notebook: what any Voilà page costs")
    parser.add_argument("--hub", action="store_true", help="serve through JupyterHub (deploy/): a server per visitor")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON to write (default {DEFAULT_OUTPUT})")
    arguments = parser.parse_args(argv)
    crowds = [int(size) for size in arguments.visitors.split(",")]
    if arguments.hub and (arguments.floor or arguments.voila_arg or arguments.root != ROOT):
        parser.error("--hub serves this checkout as deploy/ says: it takes no --floor, --voila-arg or --root")
    with offline_keras_home(), tempfile.TemporaryDirectory(prefix="voila-floor-") as floor:
        root = _floor_root(Path(floor)) if arguments.floor else arguments.root.resolve()
        photos = 0 if arguments.floor else arguments.photos
        converted_model()  # once, as a deployment's first start (or Binder's image) does: no crowd waits for it
        results = asyncio.run(run_all(crowds, photos, root, arguments.voila_arg, hub=arguments.hub))
    print(format_table(results))
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps({
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "root": "Voilà's floor: a one-widget notebook" if arguments.floor else str(arguments.root.resolve()),
        "served_by": "JupyterHub (deploy/jupyterhub_config.py)" if arguments.hub else "Voilà (voila.json)",
        "voila_args": arguments.voila_arg,
        "machine": machine_info(),
        "crowds": [asdict(crowd) for crowd in results],
    }, indent=2) + "\n")
    print(f"\nWrote {arguments.output}")


if __name__ == "__main__":
    main()
