"""The rating app in a real Chromium against a real ``assess rate`` server on PostgreSQL."""

from __future__ import annotations

import pytest

from assess import store
from conftest import RaterServer
from test_rating_browser import rate_items, scores, sign_in, wait_ready, worklist

pytestmark = pytest.mark.e2e


def test_a_worklist_rated_and_signed_in_the_browser_is_chained_on_postgresql(
        make_rater_set, pg_url, tmp_path, new_page):
    rater_dir, key_dir, access = make_rater_set(raters=("derm1", "derm2"), participants=2,
                                                size=(640, 480))
    server = RaterServer(rater_dir, pg_url, tmp_path).start()
    server.set = (rater_dir, key_dir, access)
    try:
        wl = worklist(server, "derm1")
        page = new_page()
        sign_in(page, server, "derm1")
        given = rate_items(page, wl, 0, len(wl.items))
        assert scores(server, "derm1") == given
        page.get_by_text("I have finished and want to submit my ratings").click()
        page.get_by_label("Your access code, to sign").fill(access["derm1"])
        page.locator("button", has_text="Submit and lock").click()
        wait_ready(page, item="__locked__")
    finally:
        server.stop()
    report = store.verify(pg_url, store.set_ids(pg_url)[0]).check()
    chain = next(wl for (_, rater), wl in report.worklists.items() if rater == "derm1")
    assert chain.events == len(wl.items) and chain.signed
    assert list(store.locks(pg_url)) == ["derm1"]
    assert not (tmp_path / "results").exists()  # no SQLite file beside the app
