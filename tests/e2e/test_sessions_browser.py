"""Photos only for the signed-in rater, and sessions that end, in a real Chromium and server.

A reload and a server restart keeping the sign-in and the position are tested with the rating
itself, in test_rating_browser.py. The tests share one server, each with a rater of its own; ending
every session takes a server of its own.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from assess import session, store
from assess.cli import cli
from test_rating_browser import sign_in, wait_ready, worklist

# One worker runs the whole module (pytest-xdist --dist loadgroup): its module-scoped set and
# server are made once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sessions_browser")]

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def photo_url(page, server) -> str:
    """The absolute link of the photo on screen, as the page has it."""
    return f"{server.url}/{page.locator('.assess-photo img').first.get_attribute('src')}"


def status_without_cookie(url: str) -> int:
    try:
        with _DIRECT.open(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def photo_shown(page) -> None:
    page.wait_for_function("() => { const img = document.querySelector('.assess-photo img');"
                           " return img && img.complete && img.naturalWidth > 0; }")


def test_a_photo_link_fetched_without_the_cookie_is_refused(shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    page = new_page()
    sign_in(page, server, rater)
    photo_shown(page)
    url = photo_url(page, server)
    assert page.context.request.get(url).status == 200  # the rater's own browser
    assert status_without_cookie(url) == 403


def test_a_photo_link_from_a_second_browser_context_is_refused(shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    page = new_page()
    sign_in(page, server, rater)
    url = photo_url(page, server)
    other = new_page()
    assert other.context.request.get(url).status == 403
    sign_in(other, server, rater)  # even the same rater signed in there has another session
    assert other.context.request.get(url).status == 403
    assert page.context.request.get(url).status == 200


def test_a_photo_link_after_sign_out_is_refused(shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    page = new_page()
    sign_in(page, server, rater)
    photo_shown(page)
    url = photo_url(page, server)
    page.locator("button", has_text="Sign out").click()
    wait_ready(page, item="__signin__")
    assert page.context.request.get(url).status == 403
    page.reload()  # the cookie is still in the browser, but its session has ended
    wait_ready(page, item="__signin__")


def test_an_expired_photo_link_is_refused(shared_server, new_page):
    server, rater = shared_server, shared_server.fresh_rater()
    page = new_page()
    sign_in(page, server, rater)
    url = photo_url(page, server)
    ticket, copy, name = url.split("/")[-3:]
    handle = session.read_ticket(ticket)[0]
    access = session.PhotoAccess(session.key_of(server.db), handle)
    old = access.ticket(copy, name[:-4], now=time.time() - 2 * session.LINK_SECONDS)
    assert page.context.request.get(url).status == 200
    assert page.context.request.get(url.replace(ticket, old)).status == 403


def test_revoking_every_session_signs_every_rater_out(rater_server, new_page):
    server = rater_server()
    pages = {r: new_page() for r in ("derm1", "derm2")}
    urls = {}
    for rater, page in pages.items():
        sign_in(page, server, rater)
        wait_ready(page, item=worklist(server, rater).items[0].item, rated=0, mode="rate")
        urls[rater] = photo_url(page, server)
    result = CliRunner().invoke(cli, ["sessions", "revoke", str(server.set[0]),
                                      "--db", str(server.db)])
    assert result.exit_code == 0 and "Ended 2 sessions" in result.output
    pages["derm1"].keyboard.press("2")  # a press after revocation: not saved, signed out
    wait_ready(pages["derm1"], item="__signin__")
    pages["derm2"].reload()
    wait_ready(pages["derm2"], item="__signin__")
    for rater, page in pages.items():
        assert page.context.request.get(urls[rater]).status == 403
    assert store.all_events(server.db).empty
