"""The app as a visitor meets it: Voilà serving the notebook, driven in headless Chromium.

Every way in is used for real: the upload button (the file chooser), dropping
photos on the drop area, pasting an image, the example buttons, the heatmap,
the number of guesses, another model and the CSV.  Uploads over the limits must
be refused in the browser, before a byte is sent, and the page must work on a
phone-sized screen.

Needs Debian's ``chromium`` (``apt-get install -y chromium``).  Without it the
tests are skipped on a developer's machine, loudly, and fail in CI.
"""

from __future__ import annotations

import base64
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
from classifier.testing import ROOT, serve_voila
from tests.conftest import require_chromium

SCREENSHOT = ROOT / "docs" / "screenshot.png"
READY = "Ready: upload photos or try an example."

require_chromium()

from playwright.sync_api import Page, expect  # noqa: E402


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
    for source in (converted.network, converted.head, converted.manifest, keras_home() / "models" / WEIGHTS_FILE):
        shutil.copy(source, models / source.name)
    keras.applications.MobileNet(weights=None).save(models / architecture("MobileNet").weights_file)
    return models.parent


@pytest.fixture(scope="module")
def app_url(browser_keras_home: Path) -> Iterator[str]:
    with serve_voila(env={**os.environ, "KERAS_HOME": str(browser_keras_home)}) as (url, _server):
        yield url


def _open(chromium: object, url: str, **context: object) -> Iterator[Page]:
    browser_context = chromium.new_context(**context)  # type: ignore[attr-defined]
    page = browser_context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    expect(page.get_by_text(READY)).to_be_visible(timeout=120_000)
    yield page
    assert dialogs == [], f"a script ran in the page: {dialogs}"
    browser_context.close()


@pytest.fixture
def page(chromium: object, app_url: str) -> Iterator[Page]:
    yield from _open(chromium, app_url, viewport={"width": 1100, "height": 1500})


@pytest.fixture
def phone(chromium: object, app_url: str) -> Iterator[Page]:
    yield from _open(chromium, app_url, viewport={"width": 390, "height": 844}, is_mobile=True,
                     has_touch=True, device_scale_factor=3)


def _upload(page: Page, files: list[Path] | list[dict]) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload photos").click()
    chooser.value.set_files(files)


def _hand_over(page: Page, event: str, name: str, data: bytes, mime: str) -> None:
    """Drop a file on the drop area, or paste it into the page, as the browser would deliver it."""
    page.evaluate(
        """([event, name, data, mime]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: mime}));
            if (event === "drop") {
                document.querySelector(".mn-drop").dispatchEvent(
                    new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
            } else {
                document.body.dispatchEvent(
                    new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true, cancelable: true}));
            }
        }""",
        [event, name, base64.b64encode(data).decode("ascii"), mime],
    )


def _assert_no_code_or_traceback(page: Page) -> None:
    text = page.locator("body").inner_text()
    for leak in ("Traceback", "build_app", "import ", "Error:"):
        assert leak not in text, f"{leak!r} is visible on the page"


def _first_guess(page: Page) -> object:
    return page.locator(".mn-card .mn-predictions li").first


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
    expect(cards.nth(1).locator(".mn-predictions li").first).to_contain_text(re.compile("cat|Egyptian Mau"))
    # Each card: its photo, and the chart shown by an Output widget, as a notebook shows a figure.
    for card in (cards.nth(0), cards.nth(1)):
        images = card.locator("img.mn-photo, .jp-OutputArea-output img")
        expect(images).to_have_count(2)
        for image in images.all():
            assert image.evaluate("image => image.complete && image.naturalWidth > 0")
    _assert_no_code_or_traceback(page)

    page.screenshot(path=tmp_path / "app.png", full_page=True)
    if os.environ.get("UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "app.png", SCREENSHOT)


def test_photos_can_be_dropped_on_the_app_or_pasted(page: Page, photos: dict[str, Path]) -> None:
    _hand_over(page, "drop", "dropped.jpg", photos["rocket"].read_bytes(), "image/jpeg")
    expect(page.locator(".mn-card .mn-name")).to_have_text("dropped.jpg", timeout=60_000)
    expect(_first_guess(page)).to_contain_text("missile")

    _hand_over(page, "paste", "image.png", photos["coffee"].read_bytes(), "image/png")
    expect(page.locator(".mn-card .mn-name")).to_have_text("image.png", timeout=60_000)
    expect(_first_guess(page)).to_contain_text("espresso")


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
    expect(_first_guess(page)).to_contain_text("espresso", timeout=60_000)


def _sent_bytes(page: Page) -> list[int]:
    """A running total of what the page sends over its websockets (the kernel connection)."""
    sent = [0]

    def watch(socket: object) -> None:
        socket.on("framesent", lambda payload: sent.__setitem__(0, sent[0] + len(payload)))  # type: ignore[attr-defined]

    page.on("websocket", watch)
    page.reload()  # so the kernel's websocket opens under watch
    expect(page.get_by_text(READY)).to_be_visible(timeout=120_000)
    return sent


@pytest.mark.parametrize(
    ("files", "message"),
    [(3, "These files add up to 54.0 MB; one upload can carry 50 MB."), (101, "That is 101 files; one upload can hold 100.")],
    ids=["54 MB", "101 files"],
)
def test_uploads_over_the_limits_are_refused_before_sending_and_the_button_keeps_working(
    page: Page, photos: dict[str, Path], tmp_path: Path, files: int, message: str
) -> None:
    sent = _sent_bytes(page)
    size = 18 * 2**20 if files == 3 else 1
    chosen = []
    for number in range(files):
        path = tmp_path / f"photo{number}.jpg"
        path.write_bytes(bytes(size))
        chosen.append(path)
    before = sent[0]
    _upload(page, chosen)
    expect(page.get_by_role("alert").filter(has_text=message)).to_be_visible(timeout=30_000)
    assert sent[0] - before < 10_000, f"{sent[0] - before} bytes were sent for a refused upload"

    _upload(page, [photos["coffee"]])
    expect(_first_guess(page)).to_contain_text("espresso", timeout=60_000)


def test_a_photo_over_the_per_photo_limit_is_held_back_and_explained(
    page: Page, photos: dict[str, Path], tmp_path: Path
) -> None:
    sent = _sent_bytes(page)
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(b"\xff\xd8" + bytes(21 * 2**20))
    before = sent[0]
    _upload(page, [huge, photos["coffee"]])
    expect(page.get_by_text("Done: 1 photo classified, 1 could not be read.")).to_be_visible(timeout=60_000)
    expect(page.locator(".mn-card").nth(0)).to_contain_text("This file is 21 MB; the limit is 20 MB per photo.")
    expect(page.locator(".mn-card").nth(1)).to_contain_text("espresso")
    assert sent[0] - before < 2 * photos["coffee"].stat().st_size  # the 21 MB never left the browser


def test_visitor_explores_heatmap_guesses_csv_and_another_model(page: Page, tmp_path: Path) -> None:
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

    page.locator(".widget-dropdown", has_text="Guesses:").locator("select").select_option("2")
    expect(card.locator(".mn-predictions li")).to_have_count(2, timeout=30_000)
    expect(heatmap).to_be_visible()  # the heatmap stays on

    with page.expect_download() as download:
        page.get_by_role("link", name="Download results (CSV)").click()
    rows = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["file name", "rank", "label", "probability", "model"]
    assert rows[1][:3] == ["grace_hopper.jpg", "1", "military uniform"] and rows[1][4] == "MobileNetV2"
    assert len(rows) == 1 + 2

    page.locator(".widget-dropdown", has_text="Model:").locator("select").select_option("MobileNet")
    card = page.locator(".mn-card").first
    expect(card.locator(".mn-model")).to_have_text("Answered by MobileNet", timeout=180_000)
    expect(card.locator(".mn-name")).to_have_text("grace_hopper.jpg")
    expect(page.get_by_text("Done: 1 photo classified.")).to_be_visible()
    _assert_no_code_or_traceback(page)


def test_on_a_phone_everything_is_tappable_and_nothing_is_wider_than_the_screen(phone: Page) -> None:
    phone.get_by_role("button", name="Rocket").click()
    expect(_first_guess(phone)).to_contain_text("missile", timeout=60_000)

    controls = phone.locator("[role=tab], .mn-app button, .mn-app select, .mn-drop, .mn-download")
    assert controls.count() >= 13  # two tabs, upload, drop area, five examples, two drop-downs, CSV, heatmap
    for control in controls.all():
        if control.is_visible():
            box = control.bounding_box()
            assert box and box["height"] >= 44, f"{control.inner_text()!r} is {box and box['height']} px high"
    width = phone.evaluate("() => window.innerWidth")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= width
    card = phone.locator(".mn-card").first.bounding_box()
    assert card and card["x"] >= 0 and card["x"] + card["width"] <= width


def test_a_full_upload_of_broken_files_leaves_the_app_responsive(page: Page, photos: dict[str, Path]) -> None:
    # 600 such files once froze the page for minutes; an upload now holds at most 100.
    _upload(page, [{"name": f"broken{n}.jpg", "mimeType": "image/jpeg", "buffer": b"x"} for n in range(100)])
    expect(page.get_by_text("Done: 0 photos classified, 100 could not be read.")).to_be_visible(timeout=60_000)
    expect(page.locator(".mn-card")).to_have_count(100)

    _upload(page, [photos["coffee"]])
    expect(page.locator(".mn-card")).to_have_count(1, timeout=30_000)
    expect(_first_guess(page)).to_contain_text("espresso", timeout=30_000)


def _screenshot_whole_app(page: Page, path: Path) -> None:
    """Voilà scrolls inside the page, so a full-page screenshot is one window: grow the window to the app."""
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('.mn-app').getBoundingClientRect().height")
    page.set_viewport_size({"width": size["width"], "height": int(height) + 60})
    page.evaluate("() => document.querySelector('.mn-app').scrollIntoView()")
    page.screenshot(path=path)
    page.set_viewport_size(size)


def _halves(photo: Path, folder: Path) -> tuple[Path, Path]:
    """The left and right halves of a photo, as two files: two different photos of one thing."""
    from PIL import Image

    picture = Image.open(photo).convert("RGB")
    left, right = folder / f"{photo.stem}-left.jpg", folder / f"{photo.stem}-right.jpg"
    picture.crop((0, 0, picture.width // 2 + 40, picture.height)).save(left, quality=92)
    picture.crop((picture.width // 2 - 40, 0, picture.width, picture.height)).save(right, quality=92)
    return left, right


def _name_class_and_add(page: Page, index: int, name: str, files: list[Path]) -> None:
    box = page.locator(".mn-class").nth(index)
    box.locator("input[type=text]").fill(name)
    box.locator("input[type=text]").press("Enter")
    # The app turns its buttons off while it renames; a click on one turned off opens nothing.
    expect(page.get_by_text(f"Renamed the class “{name}”.")).to_be_visible(timeout=30_000)
    with page.expect_file_chooser() as chooser:
        box.get_by_role("button", name="Add photos").click()
    chooser.value.set_files(files)
    expect(box.locator(".mn-strip-count")).to_have_text(f"{len(files)} photos", timeout=60_000)


def test_visitor_teaches_two_classes_trains_tries_a_photo_and_keeps_the_classifier(
    page: Page, photos: dict[str, Path], tmp_path: Path
) -> None:
    from PIL import Image, ImageOps

    from classifier import Classifier, load_taught

    cat_left, cat_right = _halves(photos["chelsea"], tmp_path)
    cup_left, _ = _halves(photos["coffee"], tmp_path)
    cat_mirror, cup_mirror = tmp_path / "cat-mirror.png", tmp_path / "cup-mirror.png"
    ImageOps.mirror(Image.open(photos["chelsea"])).save(cat_mirror)
    ImageOps.mirror(Image.open(photos["coffee"])).save(cup_mirror)

    page.get_by_role("tab", name="Teach").click()
    expect(page.locator(".mn-class")).to_have_count(2, timeout=30_000)
    _name_class_and_add(page, 0, "cat", [cat_left, cat_mirror])
    _name_class_and_add(page, 1, "espresso", [cup_left, cup_mirror])
    page.get_by_role("button", name="Train").click()
    expect(page.get_by_text(re.compile("Trained on MobileNetV2 in"))).to_be_visible(timeout=60_000)
    expect(page.locator(".mn-evaluation")).to_contain_text("Accuracy: 100% of 4 photos")
    chart = page.locator(".mn-confusion img")
    expect(chart).to_be_visible()
    assert chart.evaluate("image => image.complete && image.naturalWidth > 0")

    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Try photos").click()
    chooser.value.set_files([cat_right])
    card = page.locator(".mn-teach .mn-card").first
    expect(card.locator(".mn-predictions li").first).to_contain_text("cat", timeout=60_000)
    expect(card).to_contain_text("Answered by your classifier (on MobileNetV2)")
    card.get_by_role("button", name="Show heatmap").click()
    expect(card.locator("img.mn-photo.mn-heatmap")).to_be_visible(timeout=30_000)
    _screenshot_whole_app(page, tmp_path / "teach.png")
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(tmp_path / "teach.png", SCREENSHOT.with_name("screenshot-teach.png"))

    # A paste on the Teach tab goes to Try it, not to the Classify tab hidden behind it.
    _hand_over(page, "paste", "pasted.png", photos["coffee"].read_bytes(), "image/png")
    expect(card.locator(".mn-name")).to_have_text("pasted.png", timeout=60_000)
    expect(card.locator(".mn-predictions li").first).to_contain_text("espresso")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the classifier (.npz)").click()
    saved = download.value.path()
    assert load_taught(saved, classifier=Classifier()).classes == ("cat", "espresso")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Open a saved classifier").click()
    chooser.value.set_files([{"name": "mine.npz", "mimeType": "application/octet-stream", "buffer": saved.read_bytes()}])
    expect(page.get_by_text("Opened mine.npz: cat, espresso (taught on MobileNetV2).")).to_be_visible(timeout=60_000)
    _assert_no_code_or_traceback(page)

    page.get_by_role("tab", name="Classify").click()
    expect(page.locator(".mn-card:visible")).to_have_count(0)  # the Classify tab kept its own (no) results


def test_the_teach_tab_fits_a_phone(phone: Page, photos: dict[str, Path]) -> None:
    phone.get_by_role("tab", name="Teach").click()
    expect(phone.locator(".mn-class")).to_have_count(2, timeout=30_000)
    with phone.expect_file_chooser() as chooser:
        phone.locator(".mn-class").first.get_by_role("button", name="Add photos").click()
    chooser.value.set_files([photos["chelsea"], photos["coffee"]])
    expect(phone.locator(".mn-strip-photos li")).to_have_count(2, timeout=60_000)
    controls = phone.locator("[role=tab], .mn-teach button, .mn-teach input[type=text], .mn-teach .mn-drop")
    for control in controls.all():
        if control.is_visible():
            box = control.bounding_box()
            # A thumbnail's remove button is a corner badge: 32 px, above WCAG's 24 px minimum for targets.
            least = 32 if control.get_attribute("aria-label", timeout=1000) and "Remove" in (
                control.get_attribute("aria-label") or "") else 44
            assert box and box["height"] >= least, f"{control.inner_text()!r} is {box and box['height']} px high"
    width = phone.evaluate("() => window.innerWidth")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= width
