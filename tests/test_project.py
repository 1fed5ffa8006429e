"""Tests that the project's configuration files agree with each other and the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from classifier.photo_input import CHUNK_BYTES

ROOT = Path(__file__).resolve().parent.parent
JUPYTER_DEFAULT_WEBSOCKET_LIMIT = 10 * 2**20
"""Tornado's default ``websocket_max_message_size``, which Voilà and Jupyter Server keep."""


def _pip_pins(environment_file: Path) -> dict[str, str]:
    dependencies = yaml.safe_load(environment_file.read_text())["dependencies"]
    pip_section = next(entry["pip"] for entry in dependencies if isinstance(entry, dict))
    pins = {}
    for line in pip_section:
        name, version = line.split("==")
        pins[name.lower()] = version
    return pins


def _pyproject_dependencies() -> list[Requirement]:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M)
    assert block, "pyproject.toml has no [project] dependencies list"
    return [Requirement(item) for item in re.findall(r'"([^"]+)"', block.group(1))]


def test_binder_environment_matches_the_root_one() -> None:
    root = yaml.safe_load((ROOT / "environment.yml").read_text())
    binder = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())
    assert binder == root


def test_environment_pins_every_runtime_dependency_within_its_range() -> None:
    pins = _pip_pins(ROOT / "environment.yml")
    for requirement in _pyproject_dependencies():
        assert requirement.name.lower() in pins, f"{requirement.name} missing from environment.yml"
        assert requirement.specifier.contains(pins[requirement.name.lower()]), requirement


def _voila_settings() -> dict:
    return json.loads((ROOT / "voila.json").read_text())


def _binder_settings() -> dict:
    return json.loads((ROOT / "binder" / "jupyter_server_config.json").read_text())


def test_voila_hides_code_and_tracebacks() -> None:
    configuration = _voila_settings()["VoilaConfiguration"]
    assert configuration["strip_sources"] is True
    assert configuration["show_tracebacks"] is False


def test_links_cannot_choose_theme_or_template_and_both_servers_send_one_policy() -> None:
    configuration = _voila_settings()["VoilaConfiguration"]
    assert configuration["allow_theme_override"] == configuration["allow_template_override"] == "NO"
    voila_policy = _voila_settings()["Voila"]["tornado_settings"]["headers"]["Content-Security-Policy"]
    binder_policy = _binder_settings()["ServerApp"]["tornado_settings"]["headers"]["Content-Security-Policy"]
    # JupyterLab, which Binder also serves, compiles its settings schemas at run time.
    scripts = "script-src 'self' 'unsafe-inline'"
    assert binder_policy == voila_policy.replace(scripts, scripts + " 'unsafe-eval'")
    assert "default-src 'self'" in voila_policy and "connect-src 'self'" in voila_policy


@pytest.mark.parametrize("settings", [_voila_settings()["Voila"], _binder_settings()["ServerApp"]], ids=["voila", "binder"])
def test_uploads_fit_the_servers_default_websocket_limit(settings: dict) -> None:
    # Photos travel in chunks of CHUNK_BYTES, one message each, so no server needs a larger limit.
    assert "websocket_max_message_size" not in settings["tornado_settings"]
    assert CHUNK_BYTES + 2**20 <= JUPYTER_DEFAULT_WEBSOCKET_LIMIT


@pytest.mark.parametrize("settings", [_voila_settings(), _binder_settings()], ids=["voila", "binder and hub"])
def test_the_servers_never_drop_the_apps_widget_messages(settings: dict) -> None:
    # Jupyter Server silently drops kernel messages past 1000 a second; visitors run no code of
    # their own, so every message is the app's, and a dropped one left the page stuck on "Working…".
    assert settings["ZMQChannelsWebsocketConnection"]["limit_rate"] is False


def test_idle_kernels_are_culled() -> None:
    for settings in (_voila_settings(), _binder_settings()):
        assert 0 < settings["MappingKernelManager"]["cull_idle_timeout"] <= 3600


def test_readme_badges_open_the_voila_app_and_jupyterlab() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "urlpath=voila%2Frender%2Fnotebooks%2Fapp.ipynb" in readme or "urlpath=voila/render/notebooks/app.ipynb" in readme
    assert "urlpath=lab" in readme


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S)
    assert command, "README.md must mark its test command with <!-- test-command -->"
    runner = command.group(1).strip().splitlines()[-1].split("&&")[-1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert runner in ci_lines


def test_binder_post_build_converts_every_model_with_a_command_that_works() -> None:
    lines = (ROOT / "binder" / "postBuild").read_text().splitlines()
    (command,) = [line for line in lines if line.startswith("python -m classifier.conversion")]
    assert command.split()[3:] == ["--all"]  # tests/test_conversion.py checks what --all converts
    # Only MobileNetV2's weights are here offline; its cache is warm, so this takes a second.
    result = subprocess.run([sys.executable, "-m", "classifier.conversion", "MobileNetV2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith(".tflite")


def _hub_config(**environment: str) -> Any:
    """deploy/jupyterhub_config.py as JupyterHub loads it, with ``environment`` set."""
    from traitlets.config import Config

    config = Config()
    path = ROOT / "deploy" / "jupyterhub_config.py"
    with pytest.MonkeyPatch.context() as patch:
        for name in ("APP_DIR", "APP_MAX_VISITORS", "APP_IDLE_SECONDS", "APP_MEM_GUARANTEE", "APP_MEM_LIMIT"):
            patch.delenv(name, raising=False)
        for name, value in environment.items():
            patch.setenv(name, value)
        exec(compile(path.read_text(), str(path), "exec"), {"get_config": lambda: config, "__file__": str(path)})
    return config


def test_kubernetes_values_match_the_hub_config() -> None:
    hub = _hub_config()
    values = yaml.safe_load((ROOT / "deploy" / "values.yaml").read_text())
    single_user = values["singleuser"]
    assert single_user["defaultUrl"] == hub.Spawner.default_url == "/voila/render/notebooks/app.ipynb"
    assert single_user["extraEnv"]["JUPYTER_CONFIG_PATH"] in hub.Spawner.environment["JUPYTER_CONFIG_PATH"].split(os.pathsep)
    assert single_user["extraEnv"]["JUPYTERHUB_ACTIVITY_INTERVAL"] == hub.Spawner.environment["JUPYTERHUB_ACTIVITY_INTERVAL"]
    assert [f"--timeout={values['cull']['timeout']}", f"--cull-every={values['cull']['every']}"] == [
        argument for argument in hub.JupyterHub.services[0]["command"] if argument.startswith(("--timeout", "--cull-every"))]
    assert (single_user["memory"]["guarantee"], single_user["memory"]["limit"]) == (
        hub.Spawner.mem_guarantee, hub.Spawner.mem_limit)
    assert (single_user["cpu"]["guarantee"], single_user["cpu"]["limit"]) == (
        hub.Spawner.cpu_guarantee, hub.Spawner.cpu_limit)
    assert values["cull"]["users"] and "--cull-users=True" in hub.JupyterHub.services[0]["command"]
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"] == hub.JupyterHub.authenticator_class
    pages = {Path(page["mountPath"]).name for page in values["hub"]["extraFiles"].values()}
    assert pages == {page.name for page in (ROOT / "deploy" / "templates").glob("*.html")}
    # The image has the repository as its home folder: the visitor settings are where the path says.
    assert (ROOT / Path(single_user["extraEnv"]["JUPYTER_CONFIG_PATH"]).relative_to("/home/jovyan")).is_dir()


def test_the_hub_cap_defaults_to_what_fits_in_memory_and_follows_the_setting() -> None:
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert _hub_config().JupyterHub.active_server_limit == int(0.8 * machine / (400 * 2**20))
    assert _hub_config(APP_MAX_VISITORS="7").JupyterHub.active_server_limit == 7
    culler = _hub_config(APP_IDLE_SECONDS="30").JupyterHub.services[0]["command"]
    assert "--timeout=30" in culler and "--cull-every=5" in culler
