"""The app inside JupyterLab, as someone who opens the project there (or Binder's JupyterLab link) meets it.

Jupyter Server runs with Binder's settings (``binder/jupyter_server_config.json``,
its Content-Security-Policy included), so this also shows JupyterLab works under
that policy.  Needs Debian's ``chromium``, like ``tests/test_browser.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from classifier.testing import CHROMIUM, CHROMIUM_FLAGS, JUPYTER_TOKEN, ROOT, serve_jupyter_server
from tests.conftest import require_chromium

require_chromium()

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

READY = "Ready: upload photos or try an example."
RUN_AGAIN = "The kernel has restarted or stopped. Run the cell again to start the app."


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # A copy of the notebook, and a workspace of its own: JupyterLab saves both as it goes.
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "app.ipynb", root / "app.ipynb")
    with serve_jupyter_server(f"--LabApp.workspaces_dir={root / 'workspaces'}", root_dir=root) as (url, _server):
        yield url


@pytest.fixture
def notebook(lab_url: str) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.goto(f"{lab_url}lab/tree/app.ipynb?token={JUPYTER_TOKEN}")
        yield page
        browser.close()


def _menu(page: Page, menu: str, item: str) -> None:
    page.get_by_role("menuitem", name=menu, exact=True).click()
    page.get_by_role("menuitem", name=item).first.click()  # its name also holds the shortcut


def _run_all(page: Page) -> None:
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=120_000)
    _menu(page, "Run", "Run All Cells")


def _restart_kernel(page: Page) -> None:
    _menu(page, "Kernel", "Restart Kernel…")
    page.locator(".jp-Dialog .jp-mod-accept").click()  # "Restart"


def test_the_app_runs_in_jupyterlab_quietly_and_asks_to_run_again_after_a_restart(
    notebook: Page, photos: dict[str, Path]
) -> None:
    page = notebook
    _run_all(page)
    expect(page.get_by_text(READY)).to_be_visible(timeout=120_000)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload photos").click()
    chooser.value.set_files([photos["rocket"]])
    expect(page.locator(".mn-card .mn-predictions li").first).to_contain_text("missile", timeout=60_000)
    # Nothing on stderr (LiteRT's "Created TensorFlow Lite XNNPACK delegate" would show as a pink box).
    expect(page.locator("[data-mime-type='application/vnd.jupyter.stderr']")).to_have_count(0)

    _restart_kernel(page)
    expect(page.get_by_role("alert").filter(has_text=RUN_AGAIN)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("The connection to the app was lost. Please reload the page.")).to_be_hidden()

    _run_all(page)
    expect(page.get_by_text(READY)).to_be_visible(timeout=120_000)
