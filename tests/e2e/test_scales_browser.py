"""Scales beyond one digit in a real Chromium: a 0–10 numeric rating scale typed as digits then
Enter, and a visual analogue scale moved by arrow keys and saved with Enter, through to
``ratings.sav``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from assess import rate, store
from assess.cli import cli
from conftest import RaterServer
from test_rating_browser import sign_in, wait_ready

pytestmark = pytest.mark.e2e

REGIONS = {"face": "nrs-wrinkles", "hands": "vas-wrinkles"}


@pytest.fixture
def scales_server(make_rater_set, tmp_path):
    rater_dir, key_dir, access = make_rater_set(raters=("derm1",), participants=2,
                                                size=(640, 480), regions=REGIONS)
    server = RaterServer(rater_dir, tmp_path / "results" / "ratings.sqlite", tmp_path).start()
    server.set = (rater_dir, key_dir, access)
    yield server
    server.stop()


def items(server):
    rater_set = rate.load_rater_set(server.set[0])
    wl = rater_set.worklist("derm1")
    return wl, rater_set.scales


def saved(server) -> dict:
    if not server.db.exists():
        return {}
    df = store.current_ratings(server.db)
    return {row.item: row.score for row in df.itertuples()}


SLIDER = "[class*='st-key-vas-'] input[type='range']"


def vas_value(page) -> int:
    return int(page.locator(SLIDER).input_value())


def move_vas(page, presses: list[str]) -> int:
    """Press arrow keys on the VAS (wherever the focus is); returns the value the slider shows."""
    def press(key: str) -> None:
        before = vas_value(page)
        page.keyboard.press(key)
        page.wait_for_function("([sel, b]) => Number(document.querySelector(sel).value) !== b",
                               arg=[SLIDER, before])

    for key in presses:
        press(key)
    # A press that lands while the page is still being drawn can be drawn over (the slider shows
    # its start again and stays unmoved, as a rater would see); press once more then, as they would.
    for attempt in range(3):
        try:
            page.locator(".st-key-vas-moved").wait_for(state="attached", timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            press("ArrowRight")
    page.locator(".st-key-level-vas button:not([disabled])").wait_for()
    return vas_value(page)


def type_level(page, value: int) -> None:
    for ch in str(value):
        page.keyboard.press(ch)
    page.keyboard.press("Enter")


def rate_all_by_keyboard(page, wl, scales) -> dict:
    given = {}
    for i, it in enumerate(wl.items):
        wait_ready(page, item=it.item, rated=i, mode="rate")
        if scales[it.scale].continuous:
            value = move_vas(page, ["ArrowRight"] * (i % 3 + 1) + ["ArrowLeft"] * (i % 2))
            page.keyboard.press("Enter")
        else:
            value = 10 if i % 3 == 0 else i % 10
            type_level(page, value)
        given[it.item] = value
    wait_ready(page, item="__summary__", rated=len(wl.items))
    return given


def test_a_0_to_10_scale_and_a_vas_rated_by_keyboard_reach_ratings_sav_with_their_labels(
        scales_server, new_page, tmp_path):
    import pyreadstat

    server = scales_server
    wl, scales = items(server)
    assert {scales[it.scale].entry for it in wl.items} == {"typed", "slider"}
    page = new_page()
    sign_in(page, server, "derm1")
    given = rate_all_by_keyboard(page, wl, scales)
    assert saved(server) == given
    page.get_by_text("I have finished and want to submit my ratings").click()
    page.get_by_label("Your access code, to sign").fill(server.set[2]["derm1"])
    page.locator("button", has_text="Submit and lock").click()
    wait_ready(page, item="__locked__")
    chains = store.verify(server.db).check().worklists
    assert [wl_.events for wl_ in chains.values()] == [len(given)]
    out = tmp_path / "scores"
    result = CliRunner().invoke(cli, ["score", "--rater-dir", str(server.set[0]), "--key",
                                      str(server.set[1]), "--db", str(server.db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame, meta = pyreadstat.read_sav(str(out / "ratings.sav"))
    nrs = [c for c in frame.columns if c.startswith("face_nrs_wrinkles_") and "_change_" not in c
           and "_improvement_" not in c]
    vas = [c for c in frame.columns if c.startswith("hands_vas_wrinkles_") and "_change_" not in c
           and "_improvement_" not in c]
    assert nrs and vas
    for name in nrs:
        labels = meta.variable_value_labels[name]
        assert labels[0.0] == "No wrinkles" and labels[10.0] == "Worst imaginable wrinkles"
        assert labels[5.0] == "5"
        assert meta.variable_measure[name] == "ordinal"
    for name in vas:
        labels = meta.variable_value_labels.get(name, {})
        assert all(code >= 900 for code in labels), labels  # no level labels, only missing codes
        assert meta.variable_measure[name] == "scale"
    # Every typed or slid value is in the file (the key tells which participant each item was).
    in_file = sorted(frame[nrs + vas].stack().dropna().tolist())
    assert in_file == sorted(float(v) for v in given.values())


def test_enter_on_a_vas_that_was_never_moved_saves_nothing_and_says_to_move_it(
        scales_server, new_page):
    server = scales_server
    wl, scales = items(server)
    first_vas = next(i for i, it in enumerate(wl.items) if scales[it.scale].continuous)
    page = new_page()
    sign_in(page, server, "derm1")
    for i, it in enumerate(wl.items[:first_vas]):
        wait_ready(page, item=it.item, rated=i, mode="rate")
        type_level(page, 3)
    it = wl.items[first_vas]
    wait_ready(page, item=it.item, rated=first_vas, mode="rate")
    page.locator(".st-key-vas-untouched").wait_for(state="attached")
    assert page.locator(".st-key-level-vas button").is_disabled()
    page.keyboard.press("Enter")
    page.locator("#assess-guard-hint", has_text="Move the slider").wait_for()
    assert it.item not in saved(server)
    value = move_vas(page, ["ArrowLeft", "ArrowLeft"])
    page.keyboard.press("Enter")
    wait_ready(page, rated=first_vas + 1)
    assert saved(server)[it.item] == value


def test_a_number_that_is_not_a_level_saves_nothing_and_a_click_still_rates(
        scales_server, new_page):
    server = scales_server
    wl, scales = items(server)
    first_nrs = next(i for i, it in enumerate(wl.items) if not scales[it.scale].continuous)
    page = new_page()
    sign_in(page, server, "derm1")
    for i, it in enumerate(wl.items[:first_nrs]):
        wait_ready(page, item=it.item, rated=i, mode="rate")
        move_vas(page, ["ArrowRight"])
        page.keyboard.press("Enter")
    it = wl.items[first_nrs]
    wait_ready(page, item=it.item, rated=first_nrs, mode="rate")
    type_level(page, 11)
    page.locator("#assess-guard-hint", has_text="11 is not a level").wait_for()
    assert it.item not in saved(server)
    page.locator(".st-key-level-7 button").click()
    wait_ready(page, rated=first_nrs + 1)
    assert saved(server)[it.item] == 7


def test_half_steps_are_typed_with_a_point_and_saved_as_typed(make_rater_set, tmp_path, new_page):
    rater_dir, key_dir, access = make_rater_set(
        raters=("derm1",), participants=2, size=(640, 480), regions={"face": "wsrs"},
        own_scales={"face": 'name = "WSRS in half steps"\nstep = 0.5\nmin = 1\nmax = 5\n'
                            'levels = [{value = 1, label = "Absent"}, {value = 5, label = "Extreme"}]'})
    server = RaterServer(rater_dir, tmp_path / "results" / "ratings.sqlite", tmp_path).start()
    server.set = (rater_dir, key_dir, access)
    try:
        wl, scales = items(server)
        assert scales["own-face"].values == (1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5)
        page = new_page()
        sign_in(page, server, "derm1")
        given = {}
        for i, it in enumerate(wl.items[:3]):
            wait_ready(page, item=it.item, rated=i, mode="rate")
            value = (2.5, 3, 4.5)[i]
            for ch in str(value):
                page.keyboard.press(ch)
            page.keyboard.press("Enter")
            given[it.item] = value
        it = wl.items[3]
        wait_ready(page, item=it.item, rated=3, mode="rate")
        page.locator(".st-key-level-1_5 button").click()
        given[it.item] = 1.5
        wait_ready(page, rated=4)
        assert saved(server) == given
        assert str(store.current_ratings(server.db)["score"].dtype) == "Float64"
        assert store.verify(server.db).check().ok
    finally:
        server.stop()
