"""The documented nginx configuration for real: TLS on 127.0.0.1, two app processes behind it.

A real nginx (docs/nginx/assess.conf, rendered by tests/e2e/nginx_proxy.py), two real
``assess rate`` processes on one PostgreSQL database, a real Chromium. One process is killed
outright mid-session: its rater goes on on the other.
"""

from __future__ import annotations

import os
import signal
import ssl
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from assess import store
from conftest import RaterServer
from test_rating_browser import rate_items, scores, sign_in, wait_ready, worklist

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxied(make_rater_set, pg_url, tmp_path):
    """Two app processes on PostgreSQL behind nginx: ``(proxy, servers)``."""
    from nginx_proxy import NGINX, Nginx

    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx not installed (apt-get install nginx)")

    rater_dir, key_dir, access = make_rater_set(raters=("derm1", "derm2"), participants=3,
                                                size=(640, 480))
    servers = [RaterServer(rater_dir, pg_url, tmp_path) for _ in range(2)]
    proxy = None
    try:
        for server in servers:
            server.set = (rater_dir, key_dir, access)
            server.start()
        proxy = Nginx(tmp_path / "nginx", [s.port for s in servers]).start()
        yield SimpleNamespace(url=proxy.https_url, set=servers[0].set, db=pg_url,
                              nginx=proxy), servers
    finally:
        if proxy is not None:
            proxy.stop()
        for server in servers:
            server.stop()


@pytest.fixture
def tls_page(new_page):
    """A page in a fresh browser context that accepts the test's self-signed certificate."""
    return lambda: new_page(ignore_https_errors=True)


def _get(url: str):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    context = ssl._create_unverified_context()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect(),
                                         urllib.request.HTTPSHandler(context=context))
    try:
        return opener.open(url, timeout=10)
    except urllib.error.HTTPError as exc:
        return exc


def test_the_proxy_redirects_plain_http_and_sends_the_security_headers_and_the_route_cookie(
        proxied):
    proxy, _ = proxied
    plain = _get(proxy.nginx.http_url + "/")
    assert plain.status == 301
    assert plain.headers["Location"].startswith("https://127.0.0.1")
    page = _get(proxy.url + "/")
    assert page.status == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "nginx/" not in (page.headers["Server"] or "")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("assess_node=") and "Secure" in cookie and "HttpOnly" in cookie


def test_a_worklist_is_rated_through_nginx_and_survives_its_process_being_killed(
        proxied, tls_page):
    proxy, servers = proxied
    wl = worklist(proxy, "derm1")
    n = len(wl.items)
    page = tls_page()
    sign_in(page, proxy, "derm1")
    given = rate_items(page, wl, 0, 3)
    assert scores(proxy, "derm1") == given  # acknowledged, so in the database
    # The page, its websocket and its photos all went to one process (sticky sessions).
    used = set(proxy.nginx.upstreams("/_stcore/stream")) | set(proxy.nginx.upstreams("/assess/photo"))
    assert len(used) == 1
    (address,) = used
    victim = next(s for s in servers if address.endswith(f":{s.port}"))
    victim.kill(signal.SIGKILL)
    # The page reaches the other process through nginx; the sign-in (a session kept in the
    # database) holds there, and the rater resumes on the photo they were on.
    page.reload()
    wait_ready(page, item=wl.items[3].item, rated=3, mode="rate")
    given.update(rate_items(page, wl, 3, n))
    assert scores(proxy, "derm1") == given
    assert victim.proc.poll() is not None  # rated on the other process alone
    page.get_by_text("I have finished and want to submit my ratings").click()
    page.get_by_label("Your access code, to sign").fill(proxy.set[2]["derm1"])
    page.locator("button", has_text="Submit and lock").click()
    wait_ready(page, item="__locked__")
    report = store.verify(proxy.db).check()
    chain = next(c for (_, rater), c in report.worklists.items() if rater == "derm1")
    assert chain.events == n and chain.signed
