"""Load test: N visitors use the Voilà app at once, in one headless Chromium.

Run from the repository root::

    python -m benchmarks.load                      # 1, 5, 10 and 20 visitors, 3 photos each
    python -m benchmarks.load --visitors 2,4 --photos 1 --output /tmp/load.json
    python -m benchmarks.load --quick              # 2 visitors, 1 photo: a smoke run

For each number of visitors a fresh Voilà serves the app on loopback, with
kernels culled after 20 s idle (``--cull-idle-timeout``) so culling shows
within the run.  Every visitor opens the page in their own browser context,
waits for "Ready", uploads real photos and waits for "Done".  The run records, per visitor, the time from
navigation to "Ready" and from the upload click to "Done", and samples the
memory of the Voilà server and of its kernels (its child processes): before
the visitors come, when all are done, right after they close their pages, and
once the culler has removed their kernels.  It prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Final, Literal

import matplotlib.cbook
import numpy as np
import skimage
from playwright.async_api import Browser, BrowserContext, FilePayload, Page, Response, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from benchmarks.run import machine_info, progress
from classifier.conversion import converted_model
from classifier.testing import CHROMIUM, CHROMIUM_FLAGS, ROOT, offline_keras_home, serve_voila

DEFAULT_OUTPUT: Final[Path] = ROOT / "benchmarks" / "results" / "load.json"
DEFAULT_VISITORS: Final[tuple[int, ...]] = (1, 5, 10, 20)

DEFAULT_CULL_IDLE_TIMEOUT_S: Final[int] = 20
CULL_INTERVAL_S: Final[int] = 5

READY_TIMEOUT_S: Final[float] = 150
"""Twenty kernels starting at once on two cores take about a minute."""
DONE_TIMEOUT_S: Final[float] = 120
ACTION_TIMEOUT_S: Final[float] = 30
SETTLE_TIMEOUT_S: Final[float] = 60
LOOPBACK_ONLY: Final[str] = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""Chromium flag: every host name fails at once, so the page's icon font CDN is never contacted."""
POLL_MS: Final[int] = 100
"""How often a page checks its status line: the resolution of the timings."""

READY_TEXT: Final[str] = "Ready: upload photos or try an example."
POOL_SIZE: Final[int] = json.loads((ROOT / "voila.json").read_text())["VoilaConfiguration"]["default_pool_size"]
"""Preheated kernels Voilà keeps waiting; the culler never removes them."""

_SKIMAGE_DATA: Final[Path] = Path(skimage.__file__).parent / "data"
PHOTOS: Final[tuple[tuple[Path, str], ...]] = (
    (Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), "image/jpeg"),
    (_SKIMAGE_DATA / "chelsea.png", "image/png"),
    (_SKIMAGE_DATA / "coffee.png", "image/png"),
    (_SKIMAGE_DATA / "rocket.jpg", "image/jpeg"),
)
"""Real photos, used in turn; each visitor uploads the first ``--photos`` of them."""

# Returns the status line once it shows `wanted` or a problem, else null (keep polling).
# textContent, not innerText: it needs no layout, which matters with 20 pages polling.
_STATUS_SCRIPT: Final[str] = """wanted => {
    const status = document.querySelector('.mn-status');
    if (!status) return null;
    const text = status.textContent.trim();
    return text.startsWith(wanted) || status.querySelector('.mn-problem') ? text : null;
}"""
# What a visitor sees when the status line never reached the wanted text.
_DIAGNOSIS_SCRIPT: Final[str] = """() => {
    const status = document.querySelector('.mn-status');
    if (status) return `the status line read ${JSON.stringify(status.textContent.trim())}`;
    const fallback = [...document.querySelectorAll('.jp-RenderedText')].some(e => e.textContent.includes('VBox('));
    return fallback ? 'the widgets never rendered (Voilà showed their plain-text fallback)'
                    : "the app's output is missing from the page";
}"""


def voila_args(cull_idle_timeout_s: int) -> tuple[str, ...]:
    """Return the command-line options that make Voilà cull idle kernels quickly."""
    return (
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_timeout_s}",
        f"--MappingKernelManager.cull_interval={CULL_INTERVAL_S}",
    )


def cull_wait_s(cull_idle_timeout_s: int) -> float:
    """Return how long to wait for idle kernels to be culled before giving up.

    A kernel goes at the first check after it has been idle for the timeout;
    the margin covers the checks themselves running late on a loaded machine.
    """
    return cull_idle_timeout_s + 2 * CULL_INTERVAL_S + 15


# --- the visitors -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Visit:
    """What one visitor saw: times in seconds, or the reason they gave up."""

    ready_s: float | None = None
    done_s: float | None = None
    error: str | None = None


def photo_files(count: int) -> list[FilePayload]:
    """Return ``count`` photos as file-chooser payloads, cycling through :data:`PHOTOS`.

    Names get a running number so that more photos than :data:`PHOTOS` stay distinct.
    """
    files: list[FilePayload] = []
    for number in range(count):
        path, mime = PHOTOS[number % len(PHOTOS)]
        files.append({"name": f"{number}-{path.name}", "mimeType": mime, "buffer": path.read_bytes()})
    return files


def done_text(photos: int) -> str:
    """Return the status line the app shows once ``photos`` readable photos are classified."""
    return f"Done: {photos} photo classified." if photos == 1 else f"Done: {photos} photos classified."


async def wait_for_status(page: Page, wanted: str, timeout_s: float) -> None:
    """Wait until the page's status line reads ``wanted``.

    Raises
    ------
    RuntimeError
        If the app shows a problem or any other final status instead, or
        nothing final within ``timeout_s``.
    """
    try:
        handle = await page.wait_for_function(
            _STATUS_SCRIPT, arg=wanted, polling=POLL_MS, timeout=max(timeout_s, 1) * 1e3
        )
    except PlaywrightTimeoutError:
        seen = await page.evaluate(_DIAGNOSIS_SCRIPT)
        raise RuntimeError(f"no {wanted!r} within {timeout_s:.0f} s: {seen}") from None
    text = await handle.json_value()
    if text != wanted:
        raise RuntimeError(f"the page said {text!r}")


async def upload(page: Page, files: list[FilePayload]) -> None:
    """Upload ``files`` as a visitor does: click the button, pick them in the file chooser."""
    async with page.expect_file_chooser(timeout=ACTION_TIMEOUT_S * 1e3) as chooser:
        await page.get_by_role("button", name="Upload photos").click(timeout=ACTION_TIMEOUT_S * 1e3)
    await (await chooser.value).set_files(files, timeout=ACTION_TIMEOUT_S * 1e3)


async def visit(page: Page, url: str, files: list[FilePayload]) -> Visit:
    """Open the app, wait for Ready, upload ``files`` and wait for Done; never raises.

    Returns
    -------
    Visit
        The two durations, or those reached and the reason the visitor failed.
    """
    # A page whose kernel was shut down before it connected never shows its
    # widgets and just times out; the server's 404 for the kernel says why.
    missing_kernels: list[str] = []

    def note_missing_kernel(response: Response) -> None:
        if response.status == 404 and "/api/kernels/" in response.url:
            missing_kernels.append(response.url.split("?")[0])

    page.on("response", note_missing_kernel)
    ready_s: float | None = None
    start = time.perf_counter()
    try:
        # "commit": the Ready deadline below bounds the whole page load, streaming included.
        await page.goto(url, wait_until="commit", timeout=READY_TIMEOUT_S * 1e3)
        await wait_for_status(page, READY_TEXT, READY_TIMEOUT_S - (time.perf_counter() - start))
        ready_s = time.perf_counter() - start
        start = time.perf_counter()
        await upload(page, files)
        await wait_for_status(page, done_text(len(files)), DONE_TIMEOUT_S)
        return Visit(ready_s, time.perf_counter() - start)
    except (PlaywrightError, RuntimeError) as error:
        phase = "upload" if ready_s is not None else "load"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if missing_kernels:
            reason += f"; the server no longer had its kernel (404 for {missing_kernels[0]})"
        return Visit(ready_s, error=f"{phase}: {reason}")


async def open_pages(browser: Browser, count: int) -> list[tuple[BrowserContext, Page]]:
    """Open ``count`` pages, each in its own context (own cookies: separate visitors)."""
    pages = []
    for _ in range(count):
        context = await browser.new_context(viewport={"width": 1100, "height": 1500})
        pages.append((context, await context.new_page()))
    return pages


async def close_pages(pages: Sequence[tuple[BrowserContext, Page]]) -> None:
    """Close every page and its context, as visitors who leave.

    Playwright does not fire ``beforeunload`` here, so Voilà's shutdown beacon is
    not sent: the kernels stay until the culler removes them, as when a phone
    drops off the network or a browser crashes.
    """
    for context, page in pages:
        await page.close(run_before_unload=False)
        await context.close()


# --- memory of the server and its kernels ---------------------------------------


@dataclass(frozen=True, slots=True)
class KernelMemory:
    """Resident memory of one kernel process, in MB.

    PSS (proportional set size) splits pages shared between processes, such
    as Python's and NumPy's libraries, among them, so it adds up across
    kernels; RSS counts shared pages in every kernel.
    """

    pid: int
    rss_mb: float
    pss_mb: float


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of the Voilà server and of each of its kernels at one moment."""

    server_rss_mb: float
    kernels: tuple[KernelMemory, ...]

    @property
    def kernel_rss_mb(self) -> float:
        """The kernels' RSS added up (shared pages counted in each)."""
        return sum(kernel.rss_mb for kernel in self.kernels)

    @property
    def kernel_pss_mb(self) -> float:
        """The kernels' PSS added up: what they take from the machine together."""
        return sum(kernel.pss_mb for kernel in self.kernels)

    def to_json(self) -> dict[str, object]:
        """Return the sample with its sums, JSON-ready."""
        return {
            "server_rss_mb": self.server_rss_mb,
            "kernel_count": len(self.kernels),
            "kernel_rss_mb_sum": self.kernel_rss_mb,
            "kernel_pss_mb_sum": self.kernel_pss_mb,
            "kernels": [asdict(kernel) for kernel in self.kernels],
        }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _proc_field(path: Path, field: str) -> float:
    """Return the number after ``field:`` in a ``/proc`` file (sizes there are in kB)."""
    for line in path.read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    raise ValueError(f"{field} not in {path}")


def _stat(pid: int) -> list[str]:
    """Return the fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    # The command name is in parentheses and may itself hold spaces or parentheses.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def kernel_pids(server_pid: int, ignore: frozenset[int] = frozenset()) -> list[int]:
    """Return the PIDs of the kernels Voilà started (its children running ipykernel), bar ``ignore``.

    This kernel's ``/proc/<pid>/task/*/children`` is not available everywhere
    (it needs ``CONFIG_PROC_CHILDREN``), so ``/proc`` is scanned for the parent PID.
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in ignore:
            continue
        try:
            is_child = _proc_field(entry / "status", "PPid") == server_pid
            if is_child and b"ipykernel" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except (OSError, ValueError):  # the process ended while being read
            continue
    return sorted(pids)


def sample_memory(server_pid: int, ignore: frozenset[int]) -> Memory:
    """Read the RSS of the server and the RSS and PSS of each of its kernels bar ``ignore`` now."""
    kernels = []
    for pid in kernel_pids(server_pid, ignore):
        try:
            rss = _proc_field(Path(f"/proc/{pid}/status"), "VmRSS") / 1024
            pss = _proc_field(Path(f"/proc/{pid}/smaps_rollup"), "Pss") / 1024
        except (OSError, ValueError):  # culled between listing and reading
            continue
        kernels.append(KernelMemory(pid, rss, pss))
    server_rss = _proc_field(Path(f"/proc/{server_pid}/status"), "VmRSS") / 1024
    return Memory(server_rss, tuple(kernels))


async def wait_for_kernels(server_pid: int, at_most: int, ignore: frozenset[int], timeout_s: float) -> float | None:
    """Wait until the server runs at most ``at_most`` kernels, not counting ``ignore``.

    Returns
    -------
    float or None
        Seconds waited, or ``None`` if there were still more after ``timeout_s``.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if len(kernel_pids(server_pid, ignore)) <= at_most:
            return time.perf_counter() - start
        await asyncio.sleep(0.5)
    return None


def _is_preheated(pid: int) -> bool:
    # Voilà tells a kernel whether it was started for the pool in its environment.
    return b"VOILA_PREHEAT=True" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


async def settle(server_pid: int) -> frozenset[int]:
    """Wait until the fresh server's kernels have started and gone quiet; return the probe's kernels.

    ``serve_voila`` checks that the server answers by fetching the page, which
    starts a kernel no browser will ever connect to (left to the culler): the
    preheated one if it was ready, and Voilà preheats another, or else a kernel
    of its own.  Either way the kernel waiting for the next visitor is the
    newest one Voilà started as preheated; the other is left out of every
    count so that the numbers describe visitors only.

    Returns
    -------
    frozenset of int
        The PIDs of the probe's kernels (empty if the server never reached
        ``POOL_SIZE + 1`` quiet kernels within :data:`SETTLE_TIMEOUT_S`).
    """
    deadline = time.perf_counter() + SETTLE_TIMEOUT_S
    previous_ticks = -1
    while time.perf_counter() < deadline:
        try:
            pids = kernel_pids(server_pid)
            # utime + stime: unchanged over a second once the model is loaded.
            ticks = sum(int(_stat(pid)[11]) + int(_stat(pid)[12]) for pid in pids)
            if len(pids) == POOL_SIZE + 1 and ticks == previous_ticks:
                preheated = sorted(filter(_is_preheated, pids), key=lambda pid: int(_stat(pid)[19]))
                return frozenset(pids) - frozenset(preheated[-POOL_SIZE:])
        except OSError:  # a kernel ended while being read
            ticks = -1
        previous_ticks = ticks
        await asyncio.sleep(1)
    progress("the idle server did not settle; the numbers may include the probe's kernel")
    return frozenset()


# --- one load level -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadRun:
    """Everything measured with ``visitors`` visitors at once.

    Attributes
    ----------
    visitors, photos
        Visitors arriving together, and photos each of them uploads.
    visits
        What each visitor saw, in the order they were sent.
    idle, peak, after_close, after_cull
        Memory before the visitors came, when all were done, right after they
        closed their pages, and once the culler was done (or gave up).
    cull_s
        From the pages closing to the visitors' kernels being gone; ``None`` if they were not.
    wall_s
        The whole level, server start to stop.
    """

    visitors: int
    photos: int
    visits: tuple[Visit, ...]
    idle: Memory
    peak: Memory
    after_close: Memory
    after_cull: Memory
    cull_s: float | None
    wall_s: float

    def times(self, kind: Literal["ready_s", "done_s"]) -> list[float]:
        """Return the ``"ready_s"`` or ``"done_s"`` of the visitors who got that far."""
        return [value for visit in self.visits if (value := getattr(visit, kind)) is not None]

    @property
    def errors(self) -> list[str]:
        """The reasons of the visitors who failed, numbered from 0."""
        return [f"visitor {index}: {visit.error}" for index, visit in enumerate(self.visits) if visit.error]

    @property
    def visitor_kernels(self) -> list[KernelMemory]:
        """The visitors' kernels at the peak: those the culler removed afterwards.

        Comparing sums instead would be off by the preheated kernel Voilà starts
        when a visitor takes the waiting one: at the peak it is still loading.
        """
        survivors = {kernel.pid for kernel in self.after_cull.kernels}
        return [kernel for kernel in self.peak.kernels if kernel.pid not in survivors]

    @property
    def kernel_mb_per_visitor(self) -> tuple[float | None, float | None]:
        """Mean RSS and PSS of a visitor's kernel when all are done; ``None`` if none was culled."""
        kernels = self.visitor_kernels
        return _mean([kernel.rss_mb for kernel in kernels]), _mean([kernel.pss_mb for kernel in kernels])

    def to_json(self) -> dict[str, object]:
        """Return the run as JSON-ready data, raw times included."""
        rss, pss = self.kernel_mb_per_visitor
        return {
            "visitors": self.visitors,
            "photos_per_visitor": self.photos,
            "wall_s": self.wall_s,
            "ready_s": _summary(self.times("ready_s")),
            "done_s": _summary(self.times("done_s")),
            "errors": self.errors,
            "visits": [asdict(visit) for visit in self.visits],
            "kernel_mb_per_visitor": {"rss": rss, "pss": pss},
            "memory": {
                "idle": self.idle.to_json(),
                "peak": self.peak.to_json(),
                "after_close": self.after_close.to_json(),
                "after_cull": self.after_cull.to_json(),
            },
            "cull_s": self.cull_s,
        }


def _summary(values: Sequence[float]) -> dict[str, object]:
    if not values:
        return {"p50": None, "p95": None, "n": 0, "samples": []}
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "n": len(values),
        "samples": list(values),
    }


async def run_load(browser: Browser, visitors: int, photos: int, cull_idle_timeout_s: int) -> LoadRun:
    """Serve a fresh Voilà and send ``visitors`` visitors to it at once.

    Parameters
    ----------
    browser
        The Chromium the visitors use, each in a context of their own.
    visitors
        How many visitors arrive together.
    photos
        How many photos each visitor uploads.
    cull_idle_timeout_s
        Voilà culls kernels idle this long with no browser connected.

    Returns
    -------
    LoadRun
        Per-visitor times, failures, and memory at the four moments.
    """
    files = photo_files(photos)
    start = time.perf_counter()
    with serve_voila(*voila_args(cull_idle_timeout_s)) as (url, server):
        progress(f"{visitors} visitor(s): waiting for the idle server to settle")
        probe = await settle(server.pid)
        idle = sample_memory(server.pid, probe)
        progress(f"{visitors} visitor(s): visiting")
        pages = await open_pages(browser, visitors)
        visits = await asyncio.gather(*(visit(page, url, files) for _context, page in pages))
        peak = sample_memory(server.pid, probe)
        await close_pages(pages)
        after_close = sample_memory(server.pid, probe)
        progress(f"{visitors} visitor(s): waiting for the culler")
        cull_s = await wait_for_kernels(server.pid, POOL_SIZE, probe, cull_wait_s(cull_idle_timeout_s))
        after_cull = sample_memory(server.pid, probe)
    return LoadRun(
        visitors, photos, tuple(visits), idle, peak, after_close, after_cull, cull_s,
        time.perf_counter() - start,
    )


async def run_all(levels: Sequence[int], photos: int, cull_idle_timeout_s: int) -> tuple[list[LoadRun], str]:
    """Run every load level in turn with one Chromium; return the runs and its version."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, LOOPBACK_ONLY])
        try:
            runs = [await run_load(browser, visitors, photos, cull_idle_timeout_s) for visitors in levels]
            return runs, browser.version
        finally:
            await browser.close()


# --- output -------------------------------------------------------------------


def _seconds(values: Sequence[float], percentile: int) -> str:
    return f"{np.percentile(values, percentile):.2f}" if values else "-"


def format_table(runs: Sequence[LoadRun]) -> str:
    """Return one line per load level: times (s), failures, kernels and memory (MB)."""
    header = (
        "visitors", "ok", "ready p50", "ready p95", "done p50", "done p95",
        "kernels idle/peak/closed/culled", "server RSS idle/peak/culled", "kernels RSS/PSS peak",
        "visitor kernel RSS/PSS", "culled after",
    )
    lines = [header]
    for run in runs:
        rss, pss = run.kernel_mb_per_visitor
        counts = (run.idle, run.peak, run.after_close, run.after_cull)
        lines.append((
            str(run.visitors),
            f"{run.visitors - len(run.errors)}/{run.visitors}",
            _seconds(run.times("ready_s"), 50),
            _seconds(run.times("ready_s"), 95),
            _seconds(run.times("done_s"), 50),
            _seconds(run.times("done_s"), 95),
            "/".join(str(len(memory.kernels)) for memory in counts),
            "/".join(f"{memory.server_rss_mb:.0f}" for memory in (run.idle, run.peak, run.after_cull)),
            f"{run.peak.kernel_rss_mb:.0f}/{run.peak.kernel_pss_mb:.0f}",
            "-" if rss is None or pss is None else f"{rss:.0f}/{pss:.0f}",
            "not culled" if run.cull_s is None else f"{run.cull_s:.0f} s",
        ))
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    aligned = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    aligned.insert(1, "-" * len(aligned[0]))
    errors = [f"{run.visitors} at once, {error}" for run in runs for error in run.errors]
    return "\n".join(aligned + (["", "Failures:", *errors] if errors else []))


def write_report(
    path: Path, runs: Sequence[LoadRun], arguments: argparse.Namespace, chromium: str, load_before: float
) -> None:
    """Write the machine, the settings and every run to ``path`` as JSON (folder created)."""
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if arguments.quick else "full",
        "machine": {
            **machine_info(),
            "chromium": chromium,
            "voila": metadata.version("voila"),
            "playwright": metadata.version("playwright"),
            "ipykernel": metadata.version("ipykernel"),
            "memory_total_mb": _proc_field(Path("/proc/meminfo"), "MemTotal") / 1024,
        },
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "settings": {
            "voila_args": list(voila_args(arguments.cull_idle_timeout)),
            "pool_size": POOL_SIZE,
            "photos": [path.name for path, _mime in PHOTOS],
            "timeouts_s": {
                "ready": READY_TIMEOUT_S, "done": DONE_TIMEOUT_S, "settle": SETTLE_TIMEOUT_S,
                "cull_wait": cull_wait_s(arguments.cull_idle_timeout),
            },
            "poll_ms": POLL_MS,
        },
        "runs": [run.to_json() for run in runs],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _visitor_levels(text: str) -> tuple[int, ...]:
    levels = tuple(int(part) for part in text.split(",") if part.strip())
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers separated by commas, got {text!r}")
    return levels


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read ``--visitors``, ``--photos``, ``--output``, ``--cull-idle-timeout`` and ``--quick``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--visitors", type=_visitor_levels, default=DEFAULT_VISITORS,
        help="visitors arriving at once, one fresh server per number (default: 1,5,10,20)",
    )
    parser.add_argument("--photos", type=int, default=3, help="photos each visitor uploads (default: 3)")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file to write (default: {DEFAULT_OUTPUT})"
    )
    parser.add_argument(
        "--cull-idle-timeout", type=int, default=DEFAULT_CULL_IDLE_TIMEOUT_S,
        help="seconds before Voilà culls an idle kernel with no browser connected (default: 20)",
    )
    parser.add_argument("--quick", action="store_true", help="2 visitors, 1 photo: a smoke run")
    arguments = parser.parse_args(argv)
    if arguments.photos < 1 or arguments.cull_idle_timeout < 1:
        parser.error("--photos and --cull-idle-timeout must be at least 1")
    if arguments.quick:
        arguments.visitors, arguments.photos = (2,), 1
    return arguments


def main(argv: Sequence[str] | None = None) -> None:
    """Run every load level, print the table and write the JSON report."""
    arguments = parse_arguments(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"The load test needs Chromium at {CHROMIUM} (apt-get install -y chromium)")
    load_before = os.getloadavg()[0]
    with offline_keras_home():
        # Converting here, once, keeps the one-time conversion out of every kernel's start.
        progress("preparing the converted model")
        converted_model()
        runs, chromium = asyncio.run(run_all(arguments.visitors, arguments.photos, arguments.cull_idle_timeout))
    print(format_table(runs))
    write_report(arguments.output, runs, arguments, chromium, load_before)
    print(f"\nWrote {arguments.output}")


if __name__ == "__main__":
    main()
