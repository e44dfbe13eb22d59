"""The studio in a real browser (Playwright driving Debian's chromium): the counter and the loss
advance, a drawn target replaces the old one and training goes on, a bad upload is reported on the
page, a saved model grows with `nca grow`, the bundled lizard loaded through the page grows in the
live view and a click wounds it. The last step takes the README's screenshot."""

import io
import math
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from nca_cli.cli import app
from nca_cli.formats.model_file import bundled_models
from nca_cli.studio.serve import StudioServer

from .test_studio_session import tiny_session, wait_for

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
# Where to keep the screenshot as well (the README's is made with
# NCA_STUDIO_SCREENSHOT=examples/gallery/studio.png pytest tests/test_studio_browser.py).
SCREENSHOT = os.environ.get("NCA_STUDIO_SCREENSHOT")
TIMEOUT = 120  # seconds for anything to show: generous, for a shared machine; a quiet one takes a few

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="Playwright for Python is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def studio(tmp_path_factory, disc_png):
    session = tiny_session(tmp_path_factory.mktemp("studio"), disc_png)
    session.start()
    server = StudioServer(session)
    server.start()
    yield session, server
    server.stop()
    session.stop()
    assert session.failure is None


@pytest.fixture(scope="module")
def page(studio):
    _, server = studio
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1060, "height": 780})  # tabs of one browser
        context.set_default_timeout(TIMEOUT * 1000)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        yield page
        browser.close()
    assert not errors, errors


def number(page, selector: str) -> float:
    return float(page.inner_text(selector))


def pixels(page, canvas: str) -> list[list[list[int]]]:
    """The canvas's pixels (H, W, 4) as the page drew them."""
    flat = page.evaluate("""(id) => { const c = document.getElementById(id);
        return [c.height, c.width, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }""",
                         canvas)
    h, w, data = flat
    return [[data[(r * w + c) * 4:(r * w + c) * 4 + 4] for c in range(w)] for r in range(h)]


def draw_heart(page) -> None:
    """Fill a heart on the drawing canvas with the mouse, row by row."""
    box = page.locator("#draw").bounding_box()
    page.fill("#brush", "6")

    def inside(u, v):  # the heart curve, u, v in [-1.3, 1.3], v up
        return (u * u + v * v - 1) ** 3 - u * u * v ** 3 <= 0

    for i in range(40):
        v = 1.25 - i * 2.5 / 39
        y = box["y"] + box["height"] * (0.5 - v / 2.8)
        row = [inside(u / 50, v) for u in range(-65, 66)]
        start = None
        for i, on in enumerate(row + [False]):  # each stretch of the row inside the heart: one stroke
            if on and start is None:
                start = i
            elif not on and start is not None:
                page.mouse.move(box["x"] + box["width"] * (0.5 + (start - 65) / 50 / 2.8), y)
                page.mouse.down()
                page.mouse.move(box["x"] + box["width"] * (0.5 + (i - 66) / 50 / 2.8), y, steps=4)
                page.mouse.up()
                start = None


def test_the_page_shows_training_and_a_drawn_target_takes_over(studio, page):
    session, _ = studio
    page.wait_for_function("() => Number(document.getElementById('iteration').textContent) >= 3")
    first, losses = number(page, "#iteration"), number(page, "#loss-count")
    assert math.isfinite(number(page, "#loss-value")) and page.inner_text("#status") == "training"
    page.wait_for_function(f"() => Number(document.getElementById('iteration').textContent) > {first + 2}")
    # losses arrive in their own messages, a moment after the frame that counts the iteration
    page.wait_for_function(f"() => Number(document.getElementById('loss-count').textContent) > {losses}")
    assert number(page, "#rate") > 0
    blue = [p for row in pixels(page, "loss") for p in row if p[3] > 0 and p[2] > p[0] + 60]
    assert blue, "the loss curve is drawn"
    before = pixels(page, "target")
    draw_heart(page)
    page.click("#draw-use")
    page.wait_for_function("() => document.getElementById('target-name').textContent === 'drawing'")
    page.wait_for_function("""() => Array.from(document.querySelectorAll('#messages li')).some(
        (li) => li.textContent === 'training towards drawing from the next iteration')""")
    after = pixels(page, "target")
    assert after != before
    opaque = [p for row in after for p in row if p[3] > 200]
    assert len(opaque) > 40 and all(p[0] > 200 and p[1] < 120 for p in opaque)  # a red heart
    at = number(page, "#iteration")
    page.wait_for_function(f"() => Number(document.getElementById('iteration').textContent) > {at + 2}")
    assert session.trainer.target.name == "drawing"
    other = page.context.new_page()  # a second tab watches the same run
    other.goto(studio[1].url)
    other.wait_for_function("() => document.getElementById('target-name').textContent === 'drawing'")
    other.wait_for_function(f"() => Number(document.getElementById('iteration').textContent) > {at + 2}")
    assert pixels(other, "target") == pixels(page, "target")
    other.close()


def test_a_bad_upload_is_reported_on_the_page_and_a_save_grows(studio, page, tmp_path):
    session, _ = studio
    junk = tmp_path / "notes.png"
    junk.write_text("not a picture at all")
    page.set_input_files("#picture-file", str(junk))
    page.wait_for_selector("#messages li.error")
    assert page.inner_text("#messages li.error") == \
        "the upload is not a picture the studio reads (PNG, JPEG, WebP, GIF or BMP)"
    at = number(page, "#iteration")
    page.wait_for_function(f"() => Number(document.getElementById('iteration').textContent) > {at + 1}")
    page.fill("#save-name", "my heart")
    page.click("#save")
    link = page.wait_for_selector("#saved a")
    assert link.inner_text() == "my-heart.safetensors"
    saved = session.folder / "my-heart.safetensors"
    result = CliRunner().invoke(app, ["grow", str(saved), "--steps", "20", "-o", str(tmp_path / "grown.png")])
    assert result.exit_code == 0, result.output
    assert "Ran 20 steps on a 20x20 grid" in result.output and Image.open(tmp_path / "grown.png").size[0] >= 20
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_bytes() == saved.read_bytes()


def live_alpha(page, row: int, col: int, radius: float) -> float:
    """Mean alpha (0..255) of the live view in a disc."""
    cells = [p[3] for r, line in enumerate(pixels(page, "live")) for c, p in enumerate(line)
             if (r - row) ** 2 + (c - col) ** 2 < radius ** 2]
    return sum(cells) / len(cells)


def thickest(picture) -> tuple[int, int]:
    """The cell whose disc of radius 3 is most opaque: somewhere on the body."""
    h, w = len(picture), len(picture[0])

    def disc(r, c):
        return sum(picture[y][x][3] for y in range(max(r - 3, 0), min(r + 4, h))
                   for x in range(max(c - 3, 0), min(c + 4, w)) if (y - r) ** 2 + (x - c) ** 2 < 9)
    return max(((r, c) for r in range(h) for c in range(w) if picture[r][c][3] > 200), key=lambda rc: disc(*rc))


def set_knob(page, knob: str, value) -> None:
    page.fill(f'[data-knob="{knob}"]', str(value))
    page.dispatch_event(f'[data-knob="{knob}"]', "change")


def test_the_bundled_lizard_grows_in_the_live_view_and_a_click_wounds_it(studio, page):
    session, _ = studio
    page.set_input_files("#model-file", str(bundled_models()["lizard"]))
    page.wait_for_function("() => document.getElementById('target-name').textContent === '🦎'")
    page.click("#pause")
    page.wait_for_function("() => document.getElementById('status').textContent === 'paused'")
    set_knob(page, "regrow", 0)
    set_knob(page, "live_speed", 120)
    page.wait_for_function("() => Number(document.getElementById('live-steps').textContent) >= 200")
    grown = pixels(page, "live")
    assert sum(p[3] > 128 for row in grown for p in row) > 400  # the lizard's body, grown from one cell
    set_knob(page, "live_speed", 2)
    page.wait_for_function("() => studio.figures.knobs.live_speed === 2")
    row, col = thickest(grown)
    assert live_alpha(page, row, col, 4) > 150
    box = page.locator("#live").bounding_box()
    page.fill("#wound-radius", "6")
    page.mouse.click(box["x"] + (col + 0.5) / 72 * box["width"], box["y"] + (row + 0.5) / 72 * box["height"])
    wait_for(lambda: live_alpha(page, row, col, 4) < 30, "the wound in the live view", timeout=TIMEOUT)
    set_knob(page, "live_speed", 60)
    wait_for(lambda: live_alpha(page, row, col, 4) > 100, "the wound healing", timeout=TIMEOUT)
    page.click("#pause")  # training again, on the lizard
    page.wait_for_function("() => document.getElementById('status').textContent === 'training'")
    page.wait_for_function("() => Number(document.getElementById('loss-count').textContent) >= 3")
    shot = Image.open(io.BytesIO(page.screenshot()))
    small = shot.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    small.save(buffer, "PNG", optimize=True)
    assert 5_000 < len(buffer.getvalue()) < 150_000
    if SCREENSHOT:
        Path(SCREENSHOT).write_bytes(buffer.getvalue())
