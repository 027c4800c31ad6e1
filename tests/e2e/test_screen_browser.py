"""The rating screen in a real Chromium: zoom at true resolution, the guide, hints, focus, the pause
and the layout at the window sizes raters use.

Set ``ASSESS_SCREENSHOTS=<folder>`` to keep the screenshots of the three window sizes and of the
zoomed view (the ones in docs/ are made so).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assess import blind, rate, store, synth

from conftest import RaterServer
from test_rating_browser import sign_in, wait_ready, worklist

pytestmark = pytest.mark.e2e

SIZES = [(1280, 720), (1024, 768), (768, 1024)]
SHOTS = os.environ.get("ASSESS_SCREENSHOTS")


@pytest.fixture(scope="module")
def big_set(tmp_path_factory):
    """Photos of 1600 x 1200 with a guide (so the full copy is larger than the screen), 1 rater."""
    work = tmp_path_factory.mktemp("screen")
    made = synth.make_study(work / "images", participants=2, size=(1600, 1200), seed=3,
                            regions={"face": "wsrs", "hands": "merz-hand"}, repeat_fraction=0,
                            normalize={"long_edge": 3000, "display_long_edge": 1024,
                                       "quality": 90, "aspect": "4:3", "fit": "crop"},
                            guide=True)
    return blind.randomize(made.study_path, made.root, work / "sets", set_id="screen", seed=4,
                           workers=1)


@pytest.fixture
def server(big_set, tmp_path):
    srv = RaterServer(big_set.rater_dir, tmp_path / "ratings.sqlite", tmp_path).start()
    srv.set = (big_set.rater_dir, big_set.key_dir, blind.read_access(big_set.key_dir))
    yield srv
    srv.stop()


@pytest.fixture
def page_at(new_page):
    def open_page(width=1280, height=720, touch=False):
        return new_page(viewport={"width": width, "height": height}, has_touch=touch,
                        is_mobile=False)

    return open_page


def _first(server, page, region):
    """Sign in and go to the first item of ``region``; returns it."""
    wl = worklist(server, "derm1")
    sign_in(page, server, "derm1")
    k = next(i for i, it in enumerate(wl.items) if it.region == region)
    for i in range(k):
        wait_ready(page, item=wl.items[i].item, mode="rate")
        page.keyboard.press("ArrowRight")
    wait_ready(page, item=wl.items[k].item, mode="rate")
    return wl.items[k]


def _hint(page) -> str:
    return page.locator("#assess-guard-hint").inner_text()


def _shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name))


# ----------------------------------------------------------------------------- zoom


def test_a_double_click_shows_the_full_copy_one_pixel_per_screen_pixel(server, page_at):
    page = page_at(1280, 720)
    it = _first(server, page, "hands")
    photo = page.locator(f'img[data-code="{it.photos[0]}"]')
    box = photo.bounding_box()
    photo.dblclick(position={"x": box["width"] * 0.4, "y": box["height"] * 0.55})
    page.wait_for_selector('.assess-zoom[data-full="1"]', state="attached")
    page.wait_for_selector('html[data-assess-zoom="zoomed"]', state="attached")
    page.wait_for_function("document.querySelector('.assess-zoom-full').complete")
    full = Image.open(server.set[0] / "images" / "full" / f"{it.photos[0]}.jpg").convert("RGB")
    pic = page.locator(".assess-zoom-full").bounding_box()
    assert (round(pic["width"]), round(pic["height"])) == full.size  # 1:1 at device pixel ratio 1
    layer = page.locator(".assess-zoom").bounding_box()
    clip = {"x": round(layer["x"] + layer["width"] / 2 - 100), "y": round(layer["y"] + layer["height"] / 2 - 100),
            "width": 200, "height": 200}
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB"), dtype=float)
    x0, y0 = round(clip["x"] - pic["x"]), round(clip["y"] - pic["y"])
    same = np.asarray(full.crop((x0, y0, x0 + 200, y0 + 200)), dtype=float)
    assert np.abs(shot - same).mean() < 2.0  # the same pixels (JPEG decoders may differ by one)
    # ... and not the display copy blown up to that size
    display = Image.open(server.set[0] / "images" / "display" / f"{it.photos[0]}.jpg").convert("RGB")
    blown = np.asarray(display.resize(full.size, Image.Resampling.BICUBIC)
                       .crop((x0, y0, x0 + 200, y0 + 200)), dtype=float)
    assert np.abs(shot - blown).mean() > np.abs(shot - same).mean() + 1.0
    _shot(page, "zoom.png")


def test_keys_zoom_in_and_out_and_z_fits_the_photo_again(server, page_at):
    page = page_at(1280, 720)
    _first(server, page, "face")
    page.keyboard.press("+")
    page.wait_for_selector('html[data-assess-zoom="zoomed"]', state="attached")
    width = page.locator(".assess-zoom-full").bounding_box()["width"]
    page.keyboard.press("+")
    page.wait_for_function(f"document.querySelector('.assess-zoom-full').getBoundingClientRect().width > {width + 1}")
    page.keyboard.press("-")
    page.wait_for_function(f"Math.abs(document.querySelector('.assess-zoom-full').getBoundingClientRect().width - {width}) < 1")
    page.keyboard.press("z")
    page.wait_for_selector(".assess-zoom", state="detached")
    assert page.evaluate("document.documentElement.getAttribute('data-assess-zoom')") is None


def test_dragging_a_zoomed_photo_pans_it(server, page_at):
    page = page_at(1280, 720)
    it = _first(server, page, "hands")
    photo = page.locator(f'img[data-code="{it.photos[0]}"]')
    box = photo.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    for _ in range(6):
        page.mouse.wheel(0, -100)
    page.wait_for_selector('html[data-assess-zoom="zoomed"]', state="attached")
    before = page.locator(".assess-zoom-full").bounding_box()
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 60, steps=5)
    page.mouse.up()
    after = page.locator(".assess-zoom-full").bounding_box()
    assert round(after["x"] - before["x"]) == 120 and round(after["y"] - before["y"]) == 60


def test_a_zoomed_photo_is_rated_as_any_other_and_the_next_one_is_shown_fitted(server, page_at):
    page = page_at(1280, 720)
    wl = worklist(server, "derm1")
    sign_in(page, server, "derm1")
    wait_ready(page, item=wl.items[0].item, mode="rate")
    page.keyboard.press("+")
    page.wait_for_selector('html[data-assess-zoom="zoomed"]', state="attached")
    value = rate.load_rater_set(server.set[0]).scales[wl.items[0].scale].values[1]
    page.keyboard.press(str(value))
    wait_ready(page, item=wl.items[1].item, rated=1, mode="rate")
    page.wait_for_selector(".assess-zoom", state="detached")
    assert list(store.all_events(server.db)["score"]) == [value]


# ----------------------------------------------------------------------------- guide and hints


def test_g_opens_the_guide_beside_the_photo_and_esc_closes_it(server, page_at):
    page = page_at(1280, 720)
    it = _first(server, page, "face")
    levels = rate.load_rater_set(server.set[0]).scales[it.scale].levels
    page.keyboard.press("g")
    page.wait_for_selector(".st-key-assess-guide [data-testid='stImage'] img >> nth=4")
    captions = page.locator(".st-key-assess-guide [data-testid='stImageCaption']").all_inner_texts()
    assert captions == [f"{lv.value} · {lv.label}" for lv in levels]
    guide = page.locator(".st-key-assess-guide").bounding_box()
    photo = page.locator(f'img[data-code="{it.photos[0]}"]').bounding_box()
    assert guide["x"] >= photo["x"] + photo["width"] - 1  # beside the photo, not over it
    assert guide["y"] + guide["height"] <= 720  # every level in view
    page.wait_for_selector(f'html[data-assess-seen="{it.item}"]', state="attached")
    _shot(page, "guide.png")
    page.keyboard.press("Escape")
    page.wait_for_selector(".st-key-assess-guide", state="detached")


def test_a_digit_that_is_no_level_of_the_scale_shows_a_hint(server, page_at):
    page = page_at(1280, 720)
    _first(server, page, "hands")  # Merz hand grading scale, 0-4
    page.keyboard.press("7")
    page.wait_for_selector("#assess-guard-hint")
    assert _hint(page) == "7 is not a level of the Merz hand grading scale — press 0–4"
    assert len(store.all_events(server.db)) == 0


# ----------------------------------------------------------------------------- text boxes


def test_x_then_5_puts_the_cursor_in_the_reason_box_and_enter_saves_it(server, page_at):
    page = page_at(1280, 720)
    wl = worklist(server, "derm1")
    sign_in(page, server, "derm1")
    wait_ready(page, item=wl.items[0].item, mode="rate")
    page.keyboard.press("x")
    wait_ready(page, item=wl.items[0].item, mode="cannot")
    page.wait_for_selector(f'html[data-assess-seen="{wl.items[0].item}"]', state="attached")
    page.keyboard.press("5")
    wait_ready(page, item=wl.items[0].item, mode="other")
    page.wait_for_function("document.activeElement && document.activeElement.closest('.st-key-comment')")
    page.keyboard.type("tattoo on the wrist")
    page.keyboard.press("Enter")
    wait_ready(page, item=wl.items[1].item, rated=1)
    df = store.all_events(server.db)
    assert list(zip(df["cannot_assess"], df["comment"])) == [("other", "tattoo on the wrist")]


def test_m_puts_the_cursor_in_the_comment_box_and_enter_gives_the_keys_back(server, page_at):
    page = page_at(1280, 720)
    wl = worklist(server, "derm1")
    sign_in(page, server, "derm1")
    wait_ready(page, item=wl.items[0].item, mode="rate")
    page.keyboard.press("m")
    page.wait_for_function("document.activeElement && document.activeElement.closest('.st-key-comment')")
    assert page.locator(".st-key-comment input").get_attribute("placeholder") == \
        "Saved with the level you choose"
    assert page.locator("[data-testid='InputInstructions']").count() == 0 or \
        not page.locator("[data-testid='InputInstructions']").first.is_visible()
    page.keyboard.type("scar 3")  # a digit typed in the box rates nothing
    page.keyboard.press("Enter")
    page.wait_for_function("!document.activeElement || !document.activeElement.closest('.st-key-comment')")
    value = rate.load_rater_set(server.set[0]).scales[wl.items[0].scale].values[0]
    page.wait_for_selector(f'html[data-assess-seen="{wl.items[0].item}"]', state="attached")
    page.keyboard.press(str(value))
    wait_ready(page, item=wl.items[1].item, rated=1)
    df = store.all_events(server.db)
    assert list(zip(df["score"], df["comment"])) == [(value, "scar 3")]


# ----------------------------------------------------------------------------- pause


def test_p_pauses_the_clock_and_hides_the_photo_until_p_again(server, page_at):
    page = page_at(1280, 720)
    wl = worklist(server, "derm1")
    sign_in(page, server, "derm1")
    wait_ready(page, item=wl.items[0].item, mode="rate")
    started = time.monotonic()
    page.keyboard.press("p")
    wait_ready(page, item=wl.items[0].item, mode="paused")
    assert page.locator(".assess-photo").count() == 0
    time.sleep(4)
    page.keyboard.press("p")
    wait_ready(page, item=wl.items[0].item, mode="rate")
    value = rate.load_rater_set(server.set[0]).scales[wl.items[0].scale].values[0]
    page.keyboard.press(str(value))
    wait_ready(page, item=wl.items[1].item, rated=1)
    seconds = store.all_events(server.db)["seconds"][0]
    assert time.monotonic() - started > 4 > seconds


# ----------------------------------------------------------------------------- window sizes


def _controls(page):
    return page.locator("[class*='st-key-'] button:visible, [data-testid='stLinkButton'] a:visible")


@pytest.mark.parametrize("width, height", SIZES)
def test_every_control_is_on_screen_without_scrolling(server, page_at, width, height):
    page = page_at(width, height, touch=width < height)
    it = _first(server, page, "face")
    page.wait_for_selector(f'html[data-assess-seen="{it.item}"]', state="attached")
    controls = _controls(page)
    assert controls.count() >= 10
    outside = []
    for i in range(controls.count()):
        b = controls.nth(i).bounding_box()
        if b is None or b["x"] < 0 or b["y"] < 0 or b["x"] + b["width"] > width + 0.5 \
                or b["y"] + b["height"] > height + 0.5:
            outside.append((controls.nth(i).inner_text(), b))
    assert outside == []
    assert page.evaluate("document.scrollingElement.scrollTop") == 0
    photo = page.locator(f'img[data-code="{it.photos[0]}"]').bounding_box()
    assert photo["height"] >= 0.4 * height
    if width < height:  # a tablet upright: the photo above, the controls below, finger-sized
        levels = page.locator("[class*='st-key-level-'] button")
        assert photo["y"] + photo["height"] <= levels.first.bounding_box()["y"] + 1
        assert all(levels.nth(i).bounding_box()["height"] >= 40 for i in range(levels.count()))
    _shot(page, f"screen-{width}x{height}.png")
