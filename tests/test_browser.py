"""The app as a visitor meets it: Voilà serving the notebook, driven in headless Chromium.

Needs Debian's ``chromium`` (``apt-get install -y chromium``).  Without it the
tests are skipped on a developer's machine, loudly, and fail in CI.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from classifier.architectures import architecture
from classifier.conversion import WEIGHTS_FILE, converted_model, keras_home
from classifier.testing import CHROMIUM, CHROMIUM_FLAGS, ROOT, serve_voila
from tests.conftest import require_chromium

SCREENSHOT = ROOT / "docs" / "screenshot.png"

require_chromium()

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser_keras_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Keras cache of the server's own: the MobileNetV2 files, and an untrained MobileNet.

    Only MobileNetV2 has offline weights; saving an untrained MobileNet under the
    file name Keras looks for lets a visitor really switch models here.
    """
    import keras

    models = tmp_path_factory.mktemp("browser-keras-home") / "models"
    models.mkdir()
    converted = converted_model()
    for source in (converted.network, converted.head, keras_home() / "models" / WEIGHTS_FILE):
        shutil.copy(source, models / source.name)
    keras.applications.MobileNet(weights=None).save(models / architecture("MobileNet").weights_file)
    return models.parent


@pytest.fixture(scope="module")
def app_url(browser_keras_home: Path) -> Iterator[str]:
    with serve_voila(env={**os.environ, "KERAS_HOME": str(browser_keras_home)}) as (url, _server):
        yield url


@pytest.fixture
def page(app_url: str) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1500})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(app_url)
        expect(page.get_by_text("Ready: upload photos or try an example.")).to_be_visible(timeout=120_000)
        yield page
        assert dialogs == [], f"a script ran in the page: {dialogs}"
        browser.close()


def _upload(page: Page, files: list[Path] | list[dict]) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload photos").click()
    chooser.value.set_files(files)


def _assert_no_code_or_traceback(page: Page) -> None:
    text = page.locator("body").inner_text()
    for leak in ("Traceback", "build_app", "import ", "Error:"):
        assert leak not in text, f"{leak!r} is visible on the page"


def test_visitor_uploads_two_photos_and_reads_the_results(
    page: Page, photos: dict[str, Path], tmp_path: Path
) -> None:
    _upload(page, [photos["grace_hopper"], photos["chelsea"]])
    expect(page.get_by_text("Done: 2 photos classified.")).to_be_visible(timeout=60_000)

    cards = page.locator(".mn-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("grace_hopper.jpg")
    expect(cards.nth(0).locator(".mn-predictions li").first).to_contain_text("military uniform")
    expect(cards.nth(1)).to_contain_text("chelsea.png")
    expect(cards.nth(1).locator(".mn-predictions li").first).to_contain_text(
        re.compile("cat|Egyptian Mau")
    )
    for chart in cards.locator("img.mn-chart").all() + cards.locator("img.mn-photo").all():
        assert chart.evaluate("image => image.complete && image.naturalWidth > 0")
    _assert_no_code_or_traceback(page)

    page.screenshot(path=tmp_path / "app.png", full_page=True)
    if os.environ.get("UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "app.png", SCREENSHOT)


def test_broken_file_and_hostile_name_show_as_plain_text(page: Page, photos: dict[str, Path]) -> None:
    hostile_name = "<img src=x onerror=alert(1)>.jpg"
    _upload(page, [
        {"name": hostile_name, "mimeType": "image/jpeg", "buffer": photos["rocket"].read_bytes()},
        {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff not really a jpeg"},
    ])
    expect(page.get_by_text("Done: 1 photo classified, 1 could not be read.")).to_be_visible(timeout=60_000)
    cards = page.locator(".mn-card")
    expect(cards.nth(0).locator(".mn-name")).to_have_text(hostile_name)
    expect(cards.nth(0)).to_contain_text("missile")
    expect(cards.nth(1)).to_contain_text("not an image this app can read")
    _assert_no_code_or_traceback(page)


def test_example_button_works_after_a_failed_upload(page: Page) -> None:
    _upload(page, [{"name": "empty.png", "mimeType": "image/png", "buffer": b""}])
    expect(page.get_by_text("This file is empty.")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Espresso").click()
    expect(page.locator(".mn-card .mn-predictions li").first).to_contain_text("espresso", timeout=60_000)


def test_visitor_explores_heatmap_csv_and_another_model(page: Page, tmp_path: Path) -> None:
    page.get_by_role("button", name="Grace Hopper").click()
    card = page.locator(".mn-card").first
    expect(card.locator(".mn-predictions li").first).to_contain_text("military uniform", timeout=60_000)
    expect(card).to_contain_text("Answered by MobileNetV2")

    card.get_by_role("button", name="Show heatmap").click()
    heatmap = card.locator("img.mn-photo.mn-heatmap")
    expect(heatmap).to_be_visible(timeout=30_000)
    assert heatmap.evaluate("image => image.complete && image.naturalWidth > 0")
    expect(card.get_by_role("button", name="Hide heatmap")).to_be_visible()
    page.screenshot(path=tmp_path / "heatmap.png", full_page=True)
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(tmp_path / "heatmap.png", SCREENSHOT.with_name("screenshot-heatmap.png"))

    with page.expect_download() as download:
        page.get_by_role("link", name="Download results (CSV)").click()
    rows = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["file name", "rank", "label", "probability", "model"]
    assert rows[1][:3] == ["grace_hopper.jpg", "1", "military uniform"] and rows[1][4] == "MobileNetV2"
    assert len(rows) == 1 + 5

    page.locator("select").select_option("MobileNet")
    card = page.locator(".mn-card").first
    expect(card.locator(".mn-model")).to_have_text("Answered by MobileNet", timeout=180_000)
    expect(card.locator(".mn-name")).to_have_text("grace_hopper.jpg")
    expect(page.get_by_text("Done: 1 photo classified.")).to_be_visible()
    _assert_no_code_or_traceback(page)
