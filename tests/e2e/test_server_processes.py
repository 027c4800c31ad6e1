"""Several ``assess rate`` processes on one set and one database, and a database that goes away.

Real servers, a real Chromium, a real SQLite file and a real PostgreSQL cluster
(tests/pg_cluster.py): the processes must behave as one server, and a rating the screen
acknowledged must be in the database whatever happens to the database server.
"""

from __future__ import annotations

import pytest

from assess import store
from conftest import RaterServer
from test_rating_browser import key_for, rate_items, scores, sign_in, wait_ready, worklist

pytestmark = pytest.mark.e2e

UNREACHABLE = "the ratings database cannot be reached"


def _servers(make_rater_set, db, tmp_path, n=2):
    rater_dir, key_dir, access = make_rater_set(raters=("derm1", "derm2"), participants=3,
                                                size=(640, 480))
    servers = []
    for _ in range(n):
        server = RaterServer(rater_dir, db, tmp_path)
        server.set = (rater_dir, key_dir, access)
        servers.append(server)
    for server in servers:
        server.start()
    return servers


def _lock(page, server, rater):
    page.get_by_text("I have finished and want to submit my ratings").click()
    page.get_by_label("Your access code, to sign").fill(server.set[2][rater])
    page.locator("button", has_text="Submit and lock").click()
    wait_ready(page, item="__locked__")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "central" / "ratings.sqlite"
    return request.getfixturevalue("pg_url")


def test_a_rater_who_moves_to_another_process_resumes_and_a_lock_is_seen_by_both(
        make_rater_set, db, tmp_path, new_page):
    one, two = _servers(make_rater_set, db, tmp_path)
    try:
        wl = worklist(one, "derm1")
        n = len(wl.items)
        first = new_page()
        sign_in(first, one, "derm1")
        given = rate_items(first, wl, 0, 3)
        # The same rater opens the other process: it resumes at the first unrated item.
        second = new_page()
        sign_in(second, two, "derm1")
        wait_ready(second, item=wl.items[3].item, rated=3, mode="rate")
        given.update(rate_items(second, wl, 3, n))
        assert scores(one, "derm1") == given
        # Back on the first process the rater's next answer finds the other's ratings.
        wait_ready(first, item=wl.items[3].item, rated=3, mode="rate")
        first.keyboard.press(str(key_for(3)))  # the same answer as given on the other process
        wait_ready(first, item="__summary__", rated=n)
        first.keyboard.press("ArrowLeft")
        last = wl.items[-1].item
        wait_ready(first, item=last, rated=n, mode="rate")
        _lock(second, two, "derm1")
        # A press on the first process after the lock is refused and the screen says locked.
        first.keyboard.press(str(1 + key_for(n - 1) % 4))
        wait_ready(first, item="__locked__")
        assert first.get_by_text("submitted and locked").first.is_visible()
        # A reload on the first process keeps the sign-in and shows the lock too.
        first.reload()
        wait_ready(first, item="__locked__")
    finally:
        for server in (one, two):
            server.stop()
    events = store.all_events(db)
    assert len(events) == n  # the same answer on the other process added no revision
    assert not events.duplicated(["rater", "item", "revision"]).any()
    assert scores(one, "derm1") == given
    store.verify(db).check()


def test_two_raters_on_two_processes_at_once_lose_nothing_and_never_cross(
        make_rater_set, db, tmp_path, new_page):
    one, two = _servers(make_rater_set, db, tmp_path)
    try:
        wls = {r: worklist(one, r) for r in ("derm1", "derm2")}
        pages = {"derm1": new_page(), "derm2": new_page()}
        sign_in(pages["derm1"], one, "derm1")
        sign_in(pages["derm2"], two, "derm2")
        given = {r: {} for r in wls}
        n = min(len(wl.items) for wl in wls.values())
        for i in range(n):  # interleaved: one press each, on the two processes
            for rater, page in pages.items():
                it = wls[rater].items[i].item
                wait_ready(page, item=it, rated=i, mode="rate")
                page.keyboard.press(str(key_for(i + (rater == "derm2"))))
                given[rater][it] = key_for(i + (rater == "derm2"))
        for rater, page in pages.items():
            nxt = wls[rater].items[n].item if n < len(wls[rater].items) else "__summary__"
            wait_ready(page, item=nxt, rated=n)
    finally:
        for server in (one, two):
            server.stop()
    for rater in wls:
        assert scores(one, rater) == given[rater]
    events = store.all_events(db)
    assert len(events) == 2 * n
    assert not events.duplicated(["rater", "item", "revision"]).any()
    store.verify(db).check()


def test_a_rating_while_postgresql_is_down_is_not_shown_as_saved_and_rating_resumes_after(
        make_rater_set, pg_url, pg_server, tmp_path, new_page):
    _, cluster = pg_server
    if cluster is None:
        pytest.skip("needs the throwaway cluster (ASSESS_TEST_PG_URL names a server not ours)")
    (server,) = _servers(make_rater_set, pg_url, tmp_path, n=1)
    try:
        wl = worklist(server, "derm1")
        page = new_page()
        sign_in(page, server, "derm1")
        given = rate_items(page, wl, 0, 2)
        it = wl.items[2].item
        wait_ready(page, item=it, rated=2, mode="rate")
        cluster.halt()
        try:
            page.keyboard.press(str(key_for(2)))
            page.get_by_text("Not saved — " + UNREACHABLE).wait_for()
            # Not acknowledged: the same item, still two rated.
            wait_ready(page, item=it, rated=2, mode="rate")
            assert page.locator(".assess-state").first.inner_text() == "not rated yet"
        finally:
            cluster.start()
        # Once the database is back the same answer is saved and rating goes on.
        page.keyboard.press(str(key_for(2)))
        given[it] = key_for(2)
        wait_ready(page, item=wl.items[3].item, rated=3)
        given.update(rate_items(page, wl, 3, 4))
    finally:
        server.stop()
    assert scores(server, "derm1") == given
    assert len(store.all_events(pg_url)) == len(given)
    store.verify(pg_url).check()
