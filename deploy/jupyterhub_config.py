"""JupyterHub serving the photo app to anonymous visitors, each with a server of their own.

    jupyterhub -f deploy/jupyterhub_config.py

Every visitor who opens the hub's address is logged in as a new anonymous user
(``jupyterhub-tmpauthenticator``), gets a Jupyter Server of their own, and lands
straight in the Voilà app.  Servers whose visitor left (or went idle) stop by
themselves or are culled (``jupyterhub-idle-culler``); at most ``APP_MAX_VISITORS``
run at once, and the next visitor gets a "busy, try again in a minute" page
(``templates/429.html``) that retries by itself.

Production spawns each visitor's server in a container of the image Binder
builds from ``binder/`` (repo2docker), with memory and CPU limits: DockerSpawner
on one machine, KubeSpawner on Kubernetes (``values.yaml`` holds the same
settings for Zero to JupyterHub).  The tests run this very file with
``--JupyterHub.spawner_class=simple`` and ``APP_DIR`` set: local processes,
without containers, so without the limits (see ``deploy/README.md``).

Settings, from the environment:

``APP_IMAGE``          the image repo2docker built (DockerSpawner).
``APP_MEM_GUARANTEE``  memory a visitor's server holds (default ``400M``; measured: about 340 MB).
``APP_MEM_LIMIT``      and the most it may take (default ``1G``: room for decoding a large photo).
``APP_CPU_GUARANTEE``  CPUs reserved for one visitor's server (default ``0.1``) ...
``APP_CPU_LIMIT``      ... and the most it may use (default ``1``).
``APP_MAX_VISITORS``   servers at once (default: as many guarantees as fit in 80% of this machine's memory).
``APP_IDLE_SECONDS``   a visitor's server is culled after this long without activity (default 600).
``APP_DIR``            run the app from this checkout, as local processes (default: the image's ``/home/jovyan``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jupyterhub.traitlets import ByteSpecification

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (JupyterHub provides it)

HERE = Path(__file__).resolve().parent
APP_URL = "/voila/render/notebooks/app.ipynb"
MEM_LIMIT = os.environ.get("APP_MEM_LIMIT", "1G")
MEM_GUARANTEE = os.environ.get("APP_MEM_GUARANTEE", "400M")
IDLE_SECONDS = int(os.environ.get("APP_IDLE_SECONDS", "600"))


ACTIVITY_SECONDS = max(5, min(300, IDLE_SECONDS // 10))
"""How often servers and the proxy report activity: often enough for the culler to tell who is there."""


def _default_max_visitors() -> int:
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, int(0.8 * machine / ByteSpecification().validate(None, MEM_GUARANTEE)))


# --- anonymous visitors -------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "tmp"  # every new visitor is a new user named by a UUID
c.Authenticator.allow_all = True  # anyone who opens the address is a visitor
c.JupyterHub.template_paths = [str(HERE / "templates")]

# --- each visitor's server opens the app, and only the app -------------------------------------
# The repository is the image's home folder: binder/jupyter_server_config.json is in ~/.jupyter,
# voila.json in the working folder, and visitor-server/ adds what a public hub needs (see there).
APP_DIR = os.environ.get("APP_DIR", "/home/jovyan")
c.Spawner.default_url = APP_URL
c.Spawner.environment = {
    "JUPYTER_CONFIG_PATH": os.pathsep.join([f"{APP_DIR}/deploy/visitor-server", f"{APP_DIR}/binder", APP_DIR]),
    "JUPYTERHUB_ACTIVITY_INTERVAL": str(ACTIVITY_SECONDS),
}
c.Spawner.mem_limit = MEM_LIMIT
c.Spawner.mem_guarantee = MEM_GUARANTEE
c.Spawner.cpu_limit = float(os.environ.get("APP_CPU_LIMIT", "1"))
c.Spawner.cpu_guarantee = float(os.environ.get("APP_CPU_GUARANTEE", "0.1"))
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
c.Spawner.poll_interval = 10  # notice a server that died (out of memory) within seconds

if "APP_DIR" in os.environ:  # local processes (tests, a trial run) rather than the image
    if not (Path(APP_DIR) / "deploy" / "visitor-server").is_dir():  # Jupyter would skip it silently
        raise SystemExit(f"APP_DIR={APP_DIR} is not a checkout of the app: deploy/visitor-server is missing")
    c.Spawner.notebook_dir = APP_DIR
    c.Spawner.env_keep.append("KERAS_HOME")  # the converted models, where this machine keeps them
    if os.geteuid() == 0:  # CI machines run as root; the image runs as jovyan
        c.Spawner.args = ["--allow-root"]

# --- a crowd: a cap, a busy page, culling -------------------------------------------------------
c.JupyterHub.active_server_limit = int(os.environ.get("APP_MAX_VISITORS") or _default_max_visitors())
c.JupyterHub.concurrent_spawn_limit = 20
c.JupyterHub.implicit_spawn_seconds = 1  # a visitor whose server stopped gets a new one, unasked
c.JupyterHub.last_activity_interval = ACTIVITY_SECONDS
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [
            sys.executable, "-m", "jupyterhub_idle_culler",
            f"--timeout={IDLE_SECONDS}",
            f"--cull-every={max(5, min(60, IDLE_SECONDS // 6))}",
            "--cull-users=True",  # anonymous users never come back: forget them too
        ],
    },
]
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers", "admin:users"],
        "services": ["idle-culler"],
    },
]

# --- production spawners: containers of the image repo2docker builds from binder/ --------------
c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = os.environ.get("APP_IMAGE", "mobilenet-photo-app")
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]  # the image's own command is a plain Jupyter Server
c.DockerSpawner.remove = True  # a visitor's container goes with their server
c.DockerSpawner.network_name = os.environ.get("DOCKER_NETWORK_NAME", "jupyterhub")
