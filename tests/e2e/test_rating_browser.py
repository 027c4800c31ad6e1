"""The rating app in a real Chromium against a real ``assess rate`` server.

Each action waits for the app run it causes to be on screen: the app writes an empty
``.assess-ready`` element last in every run, carrying the item shown and the number rated.

The tests share one server (``shared_server``) and each signs in as a rater of its own; a test that
stops its server starts one of its own (``rater_server``).
"""

from __future__ import annotations

import csv
import signal
from pathlib import Path

import pytest
import streamlit

from assess import rate, store

# One worker runs the whole module (pytest-xdist --dist loadgroup): its module-scoped set and
# server are made once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("rating_browser")]

STREAMLIT_FILES = Path(streamlit.__file__).parent / "static"


def wait_ready(page, item: str | None = None, rated: int | None = None, mode: str | None = None):
    """Wait for the run showing ``item`` (and ``rated``, ``mode``) to be on screen.

    On the rating screen of an item (``mode="rate"``) also wait until its photos have been seen:
    loaded and on screen for the set's minimum time, as a rater looking at them would.
    """
    sel = ".assess-ready"
    if item is not None:
        sel += f'[data-item="{item}"]'
    if rated is not None:
        sel += f'[data-rated="{rated}"]'
    if mode is not None:
        sel += f'[data-mode="{mode}"]'
    page.wait_for_selector(sel, state="attached")
    if mode == "rate" and item is not None and not item.startswith("__"):
        wait_seen(page, item)


def wait_seen(page, item: str) -> None:
    """Wait until the page's key guard takes a rating for ``item`` (its photos were seen)."""
    page.wait_for_selector(f'html[data-assess-seen="{item}"]', state="attached")


def sign_in(page, server, rater: str, reload: bool = False) -> None:
    if reload:
        page.reload()
    else:
        page.goto(server.url + "/")
    wait_ready(page, item="__signin__")
    page.get_by_label("Rater id").fill(rater)
    page.get_by_label("Access code").fill(server.set[2][rater])
    page.get_by_label("Access code").press("Enter")
    # The page trades the sign-in for its session cookie and reloads (the "__session__" run).
    page.wait_for_selector('.assess-ready:not([data-item="__signin__"]):not([data-item="__session__"])',
                           state="attached")
    # Widgets' code loads on first use: wait for the buttons themselves the first time.
    page.locator("button", has_text="Sign out").wait_for()
    page.locator("button kbd").first.wait_for()


def worklist(server, rater: str) -> rate.Worklist:
    return rate.load_rater_set(server.set[0]).worklist(rater)


def key_for(i: int) -> int:
    """A level valid on every scale of the test set (WSRS 1-5, Merz hand 0-4)."""
    return 1 + i % 4


def rate_items(page, wl, start: int, stop: int) -> dict[str, int]:
    """Rate items ``start`` to ``stop`` (exclusive) in order by keyboard; returns item → score."""
    given = {}
    for i in range(start, stop):
        wait_ready(page, item=wl.items[i].item, rated=i, mode="rate")
        page.keyboard.press(str(key_for(i)))
        given[wl.items[i].item] = key_for(i)
    nxt = wl.items[stop].item if stop < len(wl.items) else "__summary__"
    wait_ready(page, item=nxt, rated=stop)
    return given


def events(server, rater: str):
    """Every saved event of ``rater``, revisions included (the server's database may hold other
    raters' too)."""
    df = store.all_events(server.db)
    return df[df["rater"] == rater].reset_index(drop=True)


def scores(server, rater: str) -> dict[str, int]:
    df = store.current_ratings(server.db)
    df = df[df["rater"] == rater]
    return {row.item: (row.cannot_assess if row.cannot_assess else int(row.score))
            for row in df.itertuples()}


def test_a_whole_worklist_is_rated_by_keyboard_then_submitted_and_locked(shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    wl = worklist(server, rater)
    n = len(wl.items)
    page = new_page()
    sign_in(page, server, rater)
    expected = rate_items(page, wl, 0, 3)
    # Cannot assess by keyboard: X, then the reason's number.
    wait_ready(page, item=wl.items[3].item, rated=3, mode="rate")
    page.keyboard.press("x")
    wait_ready(page, item=wl.items[3].item, mode="cannot")
    page.keyboard.press("3")
    expected[wl.items[3].item] = "lighting"
    wait_ready(page, item=wl.items[4].item, rated=4)
    expected.update(rate_items(page, wl, 4, n))
    # Back (left arrow) from the summary to the last item and change its rating.
    page.keyboard.press("ArrowLeft")
    last = wl.items[-1].item
    wait_ready(page, item=last, rated=n, mode="rate")
    new_score = 1 + key_for(n - 1) % 4
    page.keyboard.press(str(new_score))
    expected[last] = new_score
    wait_ready(page, item="__summary__", rated=n)
    assert scores(server, rater) == expected
    revisions = events(server, rater).query("item == @last")
    assert list(revisions["score"]) == [key_for(n - 1), new_score]
    # Submit and lock.
    locked_before = set(store.locks(server.db))
    page.get_by_text("I have finished and want to submit my ratings").click()
    page.get_by_label("Your access code, to sign").fill(server.set[2][rater])
    page.locator("button", has_text="Submit and lock").click()
    wait_ready(page, item="__locked__")
    assert set(store.locks(server.db)) - locked_before == {rater}


def test_a_page_reload_mid_way_keeps_the_sign_in_and_resumes_on_the_photo_it_was_on(
        shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    wl = worklist(server, rater)
    page = new_page()
    sign_in(page, server, rater)
    given = rate_items(page, wl, 0, 4)
    page.keyboard.press("ArrowRight")  # on to an item after the first unrated one
    wait_ready(page, item=wl.items[5].item, rated=4, mode="rate")
    page.reload()
    wait_ready(page, item=wl.items[5].item, rated=4, mode="rate")  # no sign-in on the way
    assert page.get_by_label("Access code").count() == 0
    page.keyboard.press("ArrowLeft")
    wait_ready(page, item=wl.items[4].item, rated=4)
    assert page.get_by_text("4 of 12 rated").count() == 1
    given.update(rate_items(page, wl, 4, 6))
    assert scores(server, rater) == given


def test_a_server_killed_mid_way_and_restarted_loses_no_rating_and_keeps_the_sign_in(
        rater_server, new_page):
    server = rater_server()
    wl = worklist(server, "derm1")
    page = new_page()
    sign_in(page, server, "derm1")
    given = rate_items(page, wl, 0, 5)
    server.kill(signal.SIGKILL)
    assert server.proc.returncode == -signal.SIGKILL
    assert scores(server, "derm1") == given
    server.start()
    page.reload()  # the same browser: still signed in, on the photo it was on
    wait_ready(page, item=wl.items[5].item, rated=5, mode="rate")
    given.update(rate_items(page, wl, 5, len(wl.items)))
    assert scores(server, "derm1") == given
    assert len(store.all_events(server.db)) == len(wl.items)


def test_three_raters_at_once_lose_nothing_and_never_cross(shared_server, new_page):
    server = shared_server
    raters = tuple(server.fresh_rater() for _ in range(3))
    pages = {r: new_page() for r in raters}
    lists = {r: worklist(server, r) for r in raters}
    for r in raters:
        sign_in(pages[r], server, r)
    n = len(lists[raters[0]].items)
    expected = {r: {} for r in raters}
    for i in range(n):
        for k, r in enumerate(raters):
            wait_ready(pages[r], item=lists[r].items[i].item, rated=i, mode="rate")
        for k, r in enumerate(raters):  # all three keys go out before any answer is awaited
            score = key_for(i + k)
            pages[r].keyboard.press(str(score))
            expected[r][lists[r].items[i].item] = score
    for r in raters:
        wait_ready(pages[r], item="__summary__", rated=n)
    for r in raters:
        assert scores(server, r) == expected[r]
        assert len(events(server, r)) == n


def _key_terms(server) -> set[str]:
    rater_dir, key_dir, _ = server.set
    with open(key_dir / "key.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    terms = {r["participant"] for r in rows} | {r["timepoint"] for r in rows}
    terms |= {r["source_file"] for r in rows} | {Path(r["source_file"]).stem for r in rows}
    terms |= {str(rater_dir), str(key_dir), str(server.db), str(server.cwd)}
    return {t for t in terms if t}


def _is_streamlit_file(url_path: str, body: bytes) -> bool:
    """Whether a response is byte for byte a file of the installed Streamlit frontend."""
    rel = url_path.lstrip("/") or "index.html"
    path = STREAMLIT_FILES / rel
    return path.is_file() and path.read_bytes() == body


def test_the_page_requests_nothing_outside_the_server_and_no_response_names_a_participant(
        shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    wl = worklist(server, rater)
    page = new_page()
    requests, responses, frames = [], [], []
    page.context.on("request", lambda req: requests.append(req.url))
    page.context.on("response", lambda resp: responses.append(resp))

    def on_socket(ws):
        requests.append(ws.url)
        ws.on("framereceived", lambda payload: frames.append(payload))
        ws.on("framesent", lambda payload: frames.append(payload))

    page.on("websocket", on_socket)
    sign_in(page, server, rater)
    rate_items(page, wl, 0, 3)
    wait_ready(page, item=wl.items[3].item, rated=3, mode="rate")
    with page.context.expect_page() as full:
        page.keyboard.press("f")  # full resolution opens in a new tab
    full.value.wait_for_load_state()
    assert full.value.url.startswith(f"{server.url}/assess/photo/")
    assert full.value.url.endswith(f"/full/{wl.items[3].photos[0]}.jpg")

    local = (f"http://127.0.0.1:{server.port}/", f"ws://127.0.0.1:{server.port}/")
    assert requests and [u for u in requests if not u.startswith(local)] == []

    terms = _key_terms(server)
    checked = 0
    for resp in responses:
        assert resp.url.startswith(local[0])
        assert [t for t in terms if t in resp.url] == [], resp.url
        try:
            body = resp.body()
        except Exception:  # noqa: BLE001 - a redirect or an aborted request has no body
            continue
        path = resp.url[len(local[0]) - 1:].split("?")[0]
        if _is_streamlit_file(path, body):
            continue
        text = body.decode("latin-1")
        assert [t for t in terms if t in text] == [], resp.url
        for header in resp.headers.values():
            assert [t for t in terms if t in header] == [], resp.url
        checked += 1
    assert checked >= 5  # the photos and the app's own answers were looked at, not only skipped
    assert any(wl.items[1].item in (f if isinstance(f, str) else f.decode("latin-1")) for f in frames)
    for payload in frames:
        text = payload if isinstance(payload, str) else payload.decode("latin-1")
        assert [t for t in terms if t in text] == []


# ----------------------------------------------------------------------------- only what was seen

#: Records every keydown the page receives, before anything else sees it: proves that a test
#: really sent auto-repeated events (``repeat`` true), as a held-down key does.
RECORD_KEYS = """window.assessKeys = [];
window.addEventListener("keydown", e => window.assessKeys.push([e.key, e.repeat]), true);"""


def hint_shown(page) -> None:
    page.get_by_text(rate.TOO_SOON_HINT).first.wait_for(state="visible", timeout=5_000)


def test_a_held_down_digit_rates_one_photo(shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    wl = worklist(server, rater)
    page = new_page()
    page.add_init_script(RECORD_KEYS)
    sign_in(page, server, rater)
    wait_ready(page, item=wl.items[0].item, rated=0, mode="rate")
    page.keyboard.down("3")
    for _ in range(12):  # 2.4 s of auto-repeat: six times the minimum time on a photo
        page.wait_for_timeout(200)
        page.keyboard.down("3")
    page.keyboard.up("3")
    wait_ready(page, item=wl.items[1].item, rated=1, mode="rate")
    page.wait_for_timeout(800)
    keys = [k for k in page.evaluate("window.assessKeys") if k[0] == "3"]
    assert keys == [["3", False]] + [["3", True]] * 12
    assert scores(server, rater) == {wl.items[0].item: 3}
    assert len(events(server, rater)) == 1


def test_two_presses_120_ms_apart_rate_one_photo_and_show_the_hint(shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    wl = worklist(server, rater)
    page = new_page()
    sign_in(page, server, rater)
    wait_ready(page, item=wl.items[0].item, rated=0, mode="rate")
    page.keyboard.press("2")
    page.wait_for_timeout(120)
    page.keyboard.press("4")
    hint_shown(page)
    wait_ready(page, item=wl.items[1].item, rated=1, mode="rate")
    page.wait_for_timeout(500)
    assert scores(server, rater) == {wl.items[0].item: 2}
    assert len(events(server, rater)) == 1


def test_a_photo_still_loading_cannot_be_rated_by_key_or_click(shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    wl = worklist(server, rater)
    first = wl.items[0]
    page = new_page()
    held = []
    page.route(f"**/display/{first.photos[0]}.jpg", lambda route: held.append(route))
    sign_in(page, server, rater)
    page.wait_for_selector(f'.assess-ready[data-item="{first.item}"][data-mode="rate"]',
                           state="attached")
    page.wait_for_timeout(1_000)  # the server has shown it long enough; the browser has not
    assert held
    page.keyboard.press("3")
    hint_shown(page)
    page.locator(".st-key-level-2 button").click()
    page.wait_for_timeout(500)
    assert events(server, rater).empty
    for route in held:
        route.continue_()
    wait_ready(page, item=first.item, rated=0, mode="rate")  # loaded, then seen
    page.keyboard.press("3")
    wait_ready(page, item=wl.items[1].item, rated=1)
    assert scores(server, rater) == {first.item: 3}


def test_at_a_normal_pace_every_photo_is_rated_and_its_time_on_screen_kept(shared_server,
                                                                          new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    wl = worklist(server, rater)
    page = new_page()
    sign_in(page, server, rater)
    given = {}
    for i, it in enumerate(wl.items):
        wait_ready(page, item=it.item, rated=i, mode="rate")
        page.wait_for_timeout(100)  # a quick rater: half a second on each photo
        page.keyboard.press(str(key_for(i)))
        given[it.item] = key_for(i)
    wait_ready(page, item="__summary__", rated=len(wl.items))
    assert scores(server, rater) == given
    seconds = events(server, rater)["seconds"]
    assert (seconds >= 0.4).all() and (seconds < 5).all()
    assert page.get_by_text(rate.TOO_SOON_HINT).count() == 0


# ----------------------------------------------------------------------------- what the server says


def test_no_websocket_message_names_a_server_path_or_the_servers_process_id(shared_server,
                                                                          new_page):
    import re
    import sys
    import tempfile

    server, rater = shared_server, shared_server.fresh_rater()
    wl = worklist(server, rater)
    page = new_page()
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    sign_in(page, server, rater)
    rate_items(page, wl, 0, 2)
    texts = [run for f in frames
             for run in re.findall(r"[\x20-\x7e]{4,}", f if isinstance(f, str) else f.decode("latin-1"))]
    assert any(wl.items[1].item in t for t in texts)  # the frames were read
    pid = str(server.proc.pid)
    places = {tempfile.gettempdir(), str(Path.home()), str(server.cwd), str(server.set[0]),
              str(Path(rate.__file__).parent), sys.prefix, f"{rate.RUN_DIR_PREFIX}{pid}"}
    assert [t for t in texts if any(p in t for p in places)] == []
    assert [t for t in texts if re.search(rf"(?<![0-9A-Za-z]){pid}(?![0-9A-Za-z])", t)] == []
    # The images are still served from the app's folder.
    assert page.evaluate("[...document.querySelectorAll('.assess-photo img')]"
                         ".every(img => img.complete && img.naturalWidth > 0)")
