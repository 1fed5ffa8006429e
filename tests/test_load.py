"""Three visitors at once: each gets their own results, and only their own.

Every visitor has a kernel of their own, so nothing should leak between them;
this checks it where it matters, in the browser, with uploads that overlap.
Needs Debian's ``chromium``, like ``tests/test_browser.py``: skipped loudly
without it on a developer's machine, a failure in CI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from classifier.testing import CHROMIUM, CHROMIUM_FLAGS, serve_voila
from tests.conftest import require_chromium

require_chromium()

from playwright.async_api import Browser, FilePayload, Page, async_playwright, expect  # noqa: E402

VISITORS = 3
READY_TEXT = "Ready: upload photos or try an example."
DONE_TEXT = "Done: 2 photos classified."
# Three kernels start together on two cores, so Ready can take a while.
READY_TIMEOUT_MS = 90_000
DONE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with serve_voila() as (url, _server):
        yield url


def _uploads(visitor: int, photos: dict[str, Path]) -> tuple[list[FilePayload], list[str]]:
    """Return a visitor's two files, named after them, and the top label expected on each card.

    Odd visitors upload the two photos in the other order, so a card showing
    another visitor's result would also carry the wrong label.
    """
    pair = [("grace_hopper", "military uniform"), ("rocket", "missile")]
    if visitor % 2:
        pair.reverse()
    files: list[FilePayload] = [
        {"name": f"visitor{visitor}-{number}.jpg", "mimeType": "image/jpeg", "buffer": photos[key].read_bytes()}
        for number, (key, _label) in enumerate(pair)
    ]
    return files, [label for _key, label in pair]


async def _visit(browser: Browser, url: str, visitor: int, photos: dict[str, Path]) -> Page:
    """Open the app in a context of its own, upload two photos, and check the cards."""
    context = await browser.new_context(viewport={"width": 1100, "height": 1500})
    page = await context.new_page()
    await page.goto(url, wait_until="commit")
    await expect(page.get_by_text(READY_TEXT)).to_be_visible(timeout=READY_TIMEOUT_MS)
    files, labels = _uploads(visitor, photos)
    async with page.expect_file_chooser() as chooser:
        await page.get_by_role("button", name="Upload photos").click()
    await (await chooser.value).set_files(files)
    await expect(page.get_by_text(DONE_TEXT)).to_be_visible(timeout=DONE_TIMEOUT_MS)
    cards = page.locator(".mn-card")
    for card, label in zip([cards.nth(0), cards.nth(1)], labels, strict=True):
        await expect(card.locator(".mn-predictions li").first).to_contain_text(label)
    return page


async def _own_cards_only(page: Page, visitor: int) -> None:
    await expect(page.locator(".mn-card .mn-name")).to_have_text([f"visitor{visitor}-0.jpg", f"visitor{visitor}-1.jpg"])


async def _three_visitors(url: str, photos: dict[str, Path]) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            pages = await asyncio.gather(*(_visit(browser, url, visitor, photos) for visitor in range(VISITORS)))
            # Checked once everyone is done, so a late result reaching the wrong page shows too.
            for visitor, page in enumerate(pages):
                await _own_cards_only(page, visitor)
        finally:
            await browser.close()


def test_concurrent_visitors_each_see_only_their_own_results(app_url: str, photos: dict[str, Path]) -> None:
    asyncio.run(_three_visitors(app_url, photos))
