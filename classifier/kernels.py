"""Kernels for a public app: free each departed visitor's kernel, and cap how many run at once.

Every visitor of the Voilà app has a kernel of their own (about 100 MB).  When
they close the tab, reload or leave, the page asks the server to shut it down,
but that request is refused (Voilà issue #1458: the page never receives the
``_xsrf`` cookie it must send back), so the kernel would live until the idle
culler finds it, ten minutes later.  :class:`VisitorKernelManager` frees it
instead ``departed_grace`` seconds after its last connection closed, without
touching XSRF protection: a reload or a phone that reconnects within that time
keeps its kernel, and one that comes back later is told by the page to reload.

A kernel whose page never connected (a script fetching the URL, a crawler) is
culled ``cull_idle_timeout`` seconds after it was handed out, and no more than
``max_kernels`` kernels run at once: past that, visitors get a short "busy,
please try again in a minute" page instead of a server that runs out of memory.

Use it as Voilà's ``VoilaConfiguration.multi_kernel_manager_class`` (see
``voila.json``) or as Jupyter Server's ``ServerApp.kernel_manager_class``.

Where each visitor gets a Jupyter Server of their own (JupyterHub, see
``deploy/``), :class:`AppOnlyAuthorizer` lets them use the app in it and
nothing else: no file changes, no terminals, no sessions of their own.

Being the one piece of this project that runs inside the server, it also makes
the server compile its page templates once rather than for every visitor (see
:func:`share_compiled_templates`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Final

import jinja2
from jupyter_server.auth import Authorizer
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from nbconvert.exporters.templateexporter import TemplateExporter
from tornado import web
from traitlets import Bool, Float, Integer

__all__ = ["BUSY_MESSAGE", "AppOnlyAuthorizer", "VisitorKernelManager", "machine_memory", "share_compiled_templates"]

BUSY_MESSAGE: Final[str] = "The app is busy: too many visitors at once. Please try again in a minute."

_CGROUP_LIMITS: Final[tuple[Path, ...]] = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2: containers, Binder, Kubernetes pods
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def machine_memory() -> int:
    """Bytes of memory this server may use: the machine's, or its container's limit if lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in _CGROUP_LIMITS:
        try:
            value = limit.read_text().strip()
        except OSError:
            continue
        if value.isdigit():
            total = min(total, int(value))
    return total


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled Jinja templates, kept in memory for the life of the server, keyed by their source."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.key in self._compiled:
            bucket.bytecode_from_string(self._compiled[bucket.key])

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


def share_compiled_templates() -> None:
    """Make every nbconvert exporter in this process reuse compiled Jinja templates.

    Voilà renders each page with a new exporter, and so a new Jinja environment
    that parses and compiles every page template again: a third of the
    server's CPU per visitor.  Neither Voilà nor nbconvert has a setting for a
    template cache, so this wraps the method that creates the environment to
    give it a shared one.  A template whose source changes gets a new key.
    """
    create = TemplateExporter._create_environment
    if getattr(create, "shares_compiled_templates", False):
        return
    cache = _CompiledTemplates()

    def create_sharing(exporter: TemplateExporter) -> jinja2.Environment:
        environment = create(exporter)
        environment.bytecode_cache = cache
        return environment

    create_sharing.shares_compiled_templates = True  # type: ignore[attr-defined]
    TemplateExporter._create_environment = create_sharing  # type: ignore[method-assign]


class VisitorKernelManager(AsyncMappingKernelManager):
    """The kernel manager of a public app: departed visitors' kernels go, and kernels are capped."""

    departed_grace = Float(
        40.0, config=True,
        help="Seconds a kernel is kept after its last connection closed: a reload, or a phone back "
             "from sleep, reconnects within it. With cull_interval, the most a departed kernel lives.",
    )
    max_kernels = Integer(
        0, config=True,
        help="Most kernels at once (0: as many as fit in 75% of the memory, at memory_per_kernel each).",
    )
    memory_per_kernel = Integer(
        150 * 2**20, config=True,
        help="Bytes one visitor's kernel takes at its peak, to size max_kernels from the memory.",
    )
    compile_templates_once = Bool(
        True, config=True,
        help="Reuse compiled page templates across visitors (see share_compiled_templates).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.compile_templates_once:
            share_compiled_templates()
        self._connected_once: set[str] = set()
        self._departed_at: dict[str, float] = {}
        self._unclaimed_since: dict[str, float] = {}

    @property
    def kernel_limit(self) -> int:
        """The cap in force: ``max_kernels``, or derived from the memory."""
        if self.max_kernels > 0:
            return self.max_kernels
        return max(2, int(0.75 * machine_memory() / self.memory_per_kernel))

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:
        """Start a kernel, or refuse with a polite 503 page once ``kernel_limit`` kernels run."""
        if len(self) >= self.kernel_limit:
            self.log.warning("Refusing a new kernel: %d kernels run, the limit is %d", len(self), self.kernel_limit)
            raise web.HTTPError(503, reason=BUSY_MESSAGE)
        return await super().start_kernel(*args, **kwargs)

    def notify_connect(self, kernel_id: str) -> None:
        super().notify_connect(kernel_id)
        self._connected_once.add(kernel_id)
        self._departed_at.pop(kernel_id, None)

    def notify_disconnect(self, kernel_id: str) -> None:
        super().notify_disconnect(kernel_id)
        if self._kernel_connections.get(kernel_id, 0) <= 0:
            self._departed_at[kernel_id] = time.monotonic()

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        """Shut down a departed visitor's kernel; give a new page time to connect; else cull as usual.

        Voilà's pool of preheated kernels overrides this and never calls it for
        a kernel in the pool, so "first seen here" is when the kernel was
        handed out (or started, without a pool).
        """
        now = time.monotonic()
        kernel = self._kernels[kernel_id]
        busy = getattr(kernel, "execution_state", None) == "busy"
        departed = self._departed_at.get(kernel_id)
        if departed is not None and not self._kernel_connections.get(kernel_id, 0) and not busy:
            if now - departed > self.departed_grace:
                self.log.info("Shutting down kernel %s: its visitor left %.0f s ago", kernel_id, now - departed)
                await self.shutdown_kernel(kernel_id)
            return
        if kernel_id not in self._connected_once:
            claimed = self._unclaimed_since.setdefault(kernel_id, now)
            if now - claimed < self.cull_idle_timeout:
                return  # its page may still be on its way to the browser
        await super().cull_kernel_if_idle(kernel_id)

    def remove_kernel(self, kernel_id: str) -> Any:
        for record in (self._departed_at, self._unclaimed_since):
            record.pop(kernel_id, None)
        self._connected_once.discard(kernel_id)
        return super().remove_kernel(kernel_id)


class AppOnlyAuthorizer(Authorizer):
    """Lets a visitor read anything in their server and act only on kernels, as the Voilà page does.

    Anonymous visitors of a hub get a whole Jupyter Server each.  The app needs
    its pages, static files and kernel websockets; everything that changes the
    server (writing or uploading files, which Voilà would then run; terminals;
    sessions; its settings) is refused with 403.  What a kernel may be asked over
    its websocket is limited separately, by ``MappingKernelManager.allowed_message_types``.
    Only handlers that ask an authorizer are covered: JupyterLab's own do not (its
    extension manager would run ``pip``), so a visitor's server runs without it.  All
    three settings are in ``deploy/visitor-server/``.  Use it as ``ServerApp.authorizer_class``.
    """

    def is_authorized(self, handler: web.RequestHandler, user: Any, action: str, resource: str) -> bool:
        """Allow ``read`` on every resource, and ``write`` and ``execute`` on kernels only."""
        return action == "read" or resource == "kernels"
