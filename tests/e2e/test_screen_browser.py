"""The rating screen in a real Chromium: zoom at true resolution (wheel, keys, pinch), the region
and view with the scale, the guide, hints, focus, the pause and the layout at the window sizes
raters use.

One server per set serves the whole module; each test signs in as a rater of its own, so none sees
another's ratings, sign-in or position.

Set ``ASSESS_SCREENSHOTS=<folder>`` to keep the screenshots of the three window sizes, of the
zoomed view, of the guide and of the pairs screen (the ones in docs/ are made so).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assess import blind, rate, synth

from conftest import RaterServer
from test_rating_browser import events, sign_in, wait_ready, worklist

# One worker runs the whole module (pytest-xdist --dist loadgroup): its module-scoped set and
# server are made once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("screen_browser")]

SIZES = [(1280, 720), (1024, 768), (768, 1024)]
SHOTS = os.environ.get("ASSESS_SCREENSHOTS")
RATERS = tuple(f"derm{i}" for i in range(1, 25))  # more than the module's tests
VIEWS = {"face": ["frontal", "left-oblique"]}


def _serve(made, work, **randomize):
    built = blind.randomize(made.study_path, made.root, work / "sets", workers=1, **randomize)
    srv = RaterServer(built.rater_dir, work / "ratings.sqlite", work).start()
    srv.set = (built.rater_dir, built.key_dir, blind.read_access(built.key_dir))
    return srv


@pytest.fixture(scope="module")
def screen_server(tmp_path_factory):
    """Photos of 1600 x 1200 (so the full copy is larger than the screen), the face in two views,
    a guide; one server for the module."""
    work = tmp_path_factory.mktemp("screen")
    made = synth.make_study(work / "images", participants=2, size=(1600, 1200), seed=3,
                            regions={"face": "wsrs", "hands": "merz-hand"}, repeat_fraction=0,
                            normalize={"long_edge": 3000, "display_long_edge": 1024,
                                       "quality": 90, "aspect": "4:3", "fit": "crop"},
                            guide=True, raters=RATERS, views=VIEWS)
    srv = _serve(made, work, set_id="screen", seed=4)
    yield srv
    srv.stop()


@pytest.fixture
def server(screen_server):
    return screen_server


@pytest.fixture
def rater(screen_server):
    """A rater of the shared server's set that no other test of the module signs in as."""
    return screen_server.fresh_rater()


@pytest.fixture
def page_at(new_page):
    def open_page(width=1280, height=720, touch=False):
        return new_page(viewport={"width": width, "height": height}, has_touch=touch,
                        is_mobile=False)

    return open_page


def _first(server, page, rater, region, view=None):
    """Sign in and go to the first item of ``region`` (and ``view``); returns it."""
    wl = worklist(server, rater)
    sign_in(page, server, rater)
    k = next(i for i, it in enumerate(wl.items)
             if it.region == region and (view is None or it.view == view))
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


def test_a_double_click_shows_the_full_copy_one_pixel_per_screen_pixel(server, rater, page_at):
    page = page_at(1280, 720)
    it = _first(server, page, rater, "hands")
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


def test_keys_zoom_in_and_out_and_z_fits_the_photo_again(server, rater, page_at):
    page = page_at(1280, 720)
    _first(server, page, rater, "face")
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


def test_dragging_a_zoomed_photo_pans_it(server, rater, page_at):
    page = page_at(1280, 720)
    it = _first(server, page, rater, "hands")
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


def _fitted(page, img) -> dict:
    """Where the fitted photo is drawn inside its ``img`` box (object-fit: contain)."""
    return img.evaluate("i => { const r = i.getBoundingClientRect(), "
                        "s = Math.min(r.width / i.naturalWidth, r.height / i.naturalHeight); "
                        "return {x: r.left + (r.width - i.naturalWidth * s) / 2, "
                        "y: r.top + (r.height - i.naturalHeight * s) / 2, "
                        "width: i.naturalWidth * s, height: i.naturalHeight * s}; }")


def test_a_pinch_zooms_around_the_point_between_the_fingers_and_z_fits_the_photo_again(
        server, rater, page_at):
    page = page_at(1280, 720, touch=True)
    it = _first(server, page, rater, "face")
    fit = _fitted(page, page.locator(f'img[data-code="{it.photos[0]}"]'))
    u, v = 0.3, 0.4  # the fingers go down around this point of the photo, off its centre
    x, y = fit["x"] + u * fit["width"], fit["y"] + v * fit["height"]
    cdp = page.context.new_cdp_session(page)

    def fingers(kind: str, apart: float) -> None:
        points = [{"x": x - apart / 2, "y": y, "id": 0}, {"x": x + apart / 2, "y": y, "id": 1}]
        cdp.send("Input.dispatchTouchEvent",
                 {"type": kind, "touchPoints": [] if kind == "touchEnd" else points})

    fingers("touchStart", 60)
    for apart in range(70, 190, 10):  # the fingers spread to three times their distance
        fingers("touchMove", apart)
    fingers("touchEnd", 180)
    page.wait_for_selector('html[data-assess-zoom="zoomed"]', state="attached")
    pic = page.locator(".assess-zoom-full").bounding_box()
    assert pic["width"] / fit["width"] == pytest.approx(3, rel=0.01)
    assert pic["height"] / fit["height"] == pytest.approx(3, rel=0.01)
    # The point of the photo that was between the fingers is still between them.
    assert (x - pic["x"]) / pic["width"] == pytest.approx(u, abs=0.003)
    assert (y - pic["y"]) / pic["height"] == pytest.approx(v, abs=0.003)
    page.keyboard.press("z")
    page.wait_for_selector(".assess-zoom", state="detached")
    assert page.evaluate("document.documentElement.getAttribute('data-assess-zoom')") is None
    cdp.detach()


def test_a_zoomed_photo_is_rated_as_any_other_and_the_next_one_is_shown_fitted(server, rater, page_at):
    page = page_at(1280, 720)
    wl = worklist(server, rater)
    sign_in(page, server, rater)
    wait_ready(page, item=wl.items[0].item, mode="rate")
    page.keyboard.press("+")
    page.wait_for_selector('html[data-assess-zoom="zoomed"]', state="attached")
    value = rate.load_rater_set(server.set[0]).scales[wl.items[0].scale].values[1]
    page.keyboard.press(str(value))
    wait_ready(page, item=wl.items[1].item, rated=1, mode="rate")
    page.wait_for_selector(".assess-zoom", state="detached")
    assert list(events(server, rater)["score"]) == [value]


# ----------------------------------------------------------------------------- what is asked


def test_a_photo_of_a_region_with_views_names_the_region_its_view_and_the_scale(server, rater,
                                                                             page_at):
    page = page_at(1280, 720)
    wl = worklist(server, rater)
    it = _first(server, page, rater, "face", view="left-oblique")
    assert page.locator(".assess-title").inner_text() == \
        "Face · left oblique — Wrinkle Severity Rating Scale"
    # Paging on: every item says its own region and view (the hands have none).
    said = {"": "", "frontal": " · frontal", "left-oblique": " · left oblique"}
    names = {"face": "Face", "hands": "Hands"}
    for nxt in wl.items[wl.index[it.item] + 1:][:3]:
        page.keyboard.press("ArrowRight")
        wait_ready(page, item=nxt.item, mode="rate")
        scale = rate.load_rater_set(server.set[0]).scales[nxt.scale].name
        assert page.locator(".assess-title").inner_text() == \
            f"{names[nxt.region]}{said[nxt.view]} — {scale}"


@pytest.fixture(scope="module")
def pairs_server(tmp_path_factory):
    """The pairs presentation: two photos of the back of a hand in two views, side by side."""
    work = tmp_path_factory.mktemp("pairs")
    made = synth.make_study(work / "images", participants=2, size=(1200, 900), seed=5,
                            regions={"hands": "merz-hand"}, views={"hands": ["left", "right"]},
                            repeat_fraction=0, presentation="pairs", raters=("derm1",),
                            normalize={"long_edge": 1600, "display_long_edge": 1024,
                                       "quality": 90, "aspect": "4:3", "fit": "crop"})
    srv = _serve(made, work, set_id="pairs", seed=6)
    yield srv
    srv.stop()


def test_the_pairs_screen_names_the_region_its_view_and_asks_on_the_scale(pairs_server, page_at):
    server = pairs_server
    page = page_at(1280, 720)
    wl = worklist(server, "derm1")
    sign_in(page, server, "derm1")
    it = wl.items[0]
    wait_ready(page, item=it.item, mode="rate")
    assert it.kind == "pair" and it.view in ("left", "right")
    assert page.locator(".assess-title").inner_text() == f"Hands · {it.view} — left and right photo"
    assert page.get_by_text("Which hand looks better on the Merz hand grading scale?").count() == 1
    page.wait_for_function("[...document.querySelectorAll('.assess-photo img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    _shot(page, "pair-screen.png")


# ----------------------------------------------------------------------------- guide and hints


def test_g_opens_the_guide_beside_the_photo_and_esc_closes_it(server, rater, page_at):
    page = page_at(1280, 720)
    it = _first(server, page, rater, "face")
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


def test_a_digit_that_is_no_level_of_the_scale_shows_a_hint(server, rater, page_at):
    page = page_at(1280, 720)
    _first(server, page, rater, "hands")  # Merz hand grading scale, 0-4
    page.keyboard.press("7")
    page.wait_for_selector("#assess-guard-hint")
    assert _hint(page) == "7 is not a level of the Merz hand grading scale — press 0–4"
    assert len(events(server, rater)) == 0


# ----------------------------------------------------------------------------- text boxes


def test_x_then_5_puts_the_cursor_in_the_reason_box_and_enter_saves_it(server, rater, page_at):
    page = page_at(1280, 720)
    wl = worklist(server, rater)
    sign_in(page, server, rater)
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
    df = events(server, rater)
    assert list(zip(df["cannot_assess"], df["comment"])) == [("other", "tattoo on the wrist")]


def test_m_puts_the_cursor_in_the_comment_box_and_enter_gives_the_keys_back(server, rater, page_at):
    page = page_at(1280, 720)
    wl = worklist(server, rater)
    sign_in(page, server, rater)
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
    df = events(server, rater)
    assert list(zip(df["score"], df["comment"])) == [(value, "scar 3")]


# ----------------------------------------------------------------------------- pause


def test_p_pauses_the_clock_and_hides_the_photo_until_p_again(server, rater, page_at):
    page = page_at(1280, 720)
    wl = worklist(server, rater)
    sign_in(page, server, rater)
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
    seconds = events(server, rater)["seconds"][0]
    assert time.monotonic() - started > 4 > seconds


# ----------------------------------------------------------------------------- window sizes


def _controls(page):
    return page.locator("[class*='st-key-'] button:visible, [data-testid='stLinkButton'] a:visible")


@pytest.mark.parametrize("width, height", SIZES)
def test_every_control_is_on_screen_without_scrolling(server, rater, page_at, width, height):
    page = page_at(width, height, touch=width < height)
    it = _first(server, page, rater, "face")
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
