"""Single sign-on end to end: Chromium, ``assess rate`` and a real OpenID Connect provider.

The provider (tests/oidc_provider.py) runs on 127.0.0.1 as a subprocess and signs ID tokens with
RS256; the app signs in through Streamlit's ``st.login`` (Authlib, code flow with PKCE and a
nonce), maps the account to a rater id, and records every sign-in, refusal, lock and sign-out in
the audit log.

The SQLite tests share one provider and one server; each signs in with an account (and rater) of
its own and looks only at what happened during the test (:class:`Since`).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from assess import rate, store

# One worker runs the whole module (pytest-xdist --dist loadgroup): its module-scoped set and
# server are made once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sso_browser")]

PROVIDER = Path(__file__).resolve().parent.parent / "oidc_provider.py"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ACCOUNTS = {"dr.one@clinic.example": "derm1", "two@clinic.example": "derm2",
            "three@clinic.example": "derm3", "four@clinic.example": "derm4"}
#: These provider sessions are an hour old at first, as when the browser had signed in before.
EARLIER = {"two@clinic.example": 3600, "four@clinic.example": 3600}
PASSWORD = "correct horse"


class OIDCProvider:
    def __init__(self, tmp: Path, redirect_uri: str, port: int):
        from conftest import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id, self.client_secret = "assess-rating", secrets.token_urlsafe(24)
        config = {"clients": [{"client_id": self.client_id, "client_secret": self.client_secret,
                               "redirect_uris": [redirect_uri]}],
                  "accounts": {a: {"password": PASSWORD, "sub": f"sub-{i}",
                                   "previous_sign_in_ago": EARLIER.get(a, 0)} for i, a in
                               enumerate([*ACCOUNTS, "stranger@elsewhere.example"])}}
        (tmp / "provider.json").write_text(json.dumps(config))
        self.log = tmp / "provider.log"
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(PROVIDER), "--port", str(self.port),
                                          "--config", str(tmp / "provider.json")],
                                         stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                with _DIRECT.open(self.url + "/.well-known/openid-configuration", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the provider did not start:\n{self.log.read_text()}")
                time.sleep(0.1)

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()
                if line.startswith("{") and "path" in line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def sso(tmp_path_factory):
    """A rater set served behind single sign-on against the test provider: (server, provider),
    shared by the module's SQLite tests."""
    tmp_path = tmp_path_factory.mktemp("sso")
    yield from _serve_sso(tmp_path, tmp_path / "results" / "ratings.sqlite")


@pytest.fixture
def sso_pg(tmp_path, pg_url):
    """The same, the ratings and the audit log on a PostgreSQL server."""
    yield from _serve_sso(tmp_path, pg_url)


class Since:
    """What the shared server and provider recorded from now on: audit entries, ratings, locks
    and requests to the provider."""

    def __init__(self, server, provider):
        self.server, self.provider = server, provider
        self.audit_from = len(audit(server))
        self.ratings_from = len(store.all_events(server.db)) if _has_db(server) else 0
        self.requests_from = len(provider.requests())
        self.locks_from = set(store.locks(server.db)) if _has_db(server) else set()

    def audit(self) -> list[tuple]:
        return audit(self.server)[self.audit_from:]

    def events(self):
        return store.all_events(self.server.db).iloc[self.ratings_from:]

    def requests(self) -> list[dict]:
        return self.provider.requests()[self.requests_from:]

    def locks(self) -> set[str]:
        return set(store.locks(self.server.db)) - self.locks_from


def _has_db(server) -> bool:
    return not isinstance(server.db, Path) or server.db.exists()


def _serve_sso(tmp_path, db):
    from conftest import RaterServer
    from rater_sets import build_rater_set

    rater_dir, key_dir, access = build_rater_set(tmp_path / "set", raters=tuple(ACCOUNTS.values()),
                                                 participants=2, size=(640, 480))
    server = RaterServer(rater_dir, db, tmp_path)
    redirect = f"{server.url}/oauth2callback"
    provider = OIDCProvider(tmp_path, redirect, server.port)
    outside = tmp_path / "server-only"
    outside.mkdir()
    (outside / "raters.csv").write_text("account,rater\n" + "".join(
        f"{a},{r}\n" for a, r in ACCOUNTS.items()))
    settings = outside / "sso.toml"
    settings.write_text(
        "[auth]\n"
        f'redirect_uri = "{redirect}"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        f'client_id = "{provider.client_id}"\n'
        f'client_secret = "{provider.client_secret}"\n'
        f'server_metadata_url = "{provider.url}/.well-known/openid-configuration"\n')
    settings.chmod(0o600)
    server.extra = ["--sso-raters", str(outside / "raters.csv"), "--sso-config", str(settings)]
    server.set = (rater_dir, key_dir, access)
    try:
        server.start()
        yield server, provider
    finally:
        server.stop()
        provider.stop()


def wait_ready(page, item: str | None = None, rated: int | None = None, mode: str | None = None):
    sel = ".assess-ready"
    for name, value in (("item", item), ("rated", rated), ("mode", mode)):
        if value is not None:
            sel += f'[data-{name}="{value}"]'
    page.wait_for_selector(sel, state="attached")
    if mode == "rate" and item is not None and not item.startswith("__"):
        page.wait_for_selector(f'html[data-assess-seen="{item}"]', state="attached")


def sign_in_at_provider(page, server, account: str, password: str = PASSWORD) -> None:
    """From the app's sign-in screen through the provider's form and back to the app."""
    page.goto(server.url + "/")
    wait_ready(page, item="__signin__")
    page.locator(".st-key-sso-signin button").click()
    page.wait_for_selector("#account")
    page.fill("#account", account)
    page.fill("#password", password)
    page.click("#submit")
    page.wait_for_url(f"{server.url}/**")


def audit(server) -> list[tuple]:
    rs = rate.load_rater_set(server.set[0])
    return [(e.event, e.method, e.rater, e.account) for e in store.audit_log(server.db, rs.set_id)]


def test_a_rater_signs_in_through_the_provider_rates_as_their_rater_id_and_signs_out(sso, new_page):
    server, provider = sso
    since = Since(server, provider)
    page = new_page()
    sign_in_at_provider(page, server, "Dr.One@clinic.example")
    wl = rate.load_rater_set(server.set[0]).worklist("derm1")
    first = wl.items[0].item
    wait_ready(page, item=first, rated=0, mode="rate")
    page.keyboard.press("2")
    wait_ready(page, item=wl.items[1].item, rated=1)
    ratings = since.events()
    assert list(zip(ratings["rater"], ratings["item"], ratings["score"])) == [("derm1", first, 2)]
    page.locator(".st-key-signout button").click()
    wait_ready(page, item="__signin__")
    assert page.locator(".st-key-sso-signin button").is_visible()
    assert since.audit() == [("sign-in", "single sign-on", "derm1", "dr.one@clinic.example"),
                             ("sign-out", "single sign-on", "derm1", "dr.one@clinic.example")]
    asked = since.requests()
    authorize = next(r for r in asked if r["path"] == "/authorize" and r["method"] == "GET")
    assert authorize["query"]["code_challenge_method"] == "S256" and authorize["query"]["nonce"]
    assert [r["status"] for r in asked if r["path"] == "/token"] == [200]
    assert any(r["path"] == "/logout" for r in asked)  # the provider's session is ended too


def test_on_postgresql_the_sign_in_and_the_rating_of_a_provider_account_are_saved(sso_pg,
                                                                                  new_page):
    server, _ = sso_pg
    page = new_page()
    sign_in_at_provider(page, server, "dr.one@clinic.example")
    wl = rate.load_rater_set(server.set[0]).worklist("derm1")
    wait_ready(page, item=wl.items[0].item, rated=0, mode="rate")
    page.keyboard.press("3")
    wait_ready(page, item=wl.items[1].item, rated=1)
    assert list(store.current_ratings(server.db)["rater"]) == ["derm1"]
    assert audit(server) == [("sign-in", "single sign-on", "derm1", "dr.one@clinic.example")]


def test_a_reload_keeps_the_rater_signed_in_and_records_the_sign_in_once(sso, new_page):
    server, provider = sso
    since = Since(server, provider)
    page = new_page()
    sign_in_at_provider(page, server, "two@clinic.example")
    first = rate.load_rater_set(server.set[0]).worklist("derm2").items[0].item
    wait_ready(page, item=first, rated=0, mode="rate")
    page.reload()
    wait_ready(page, item=first, rated=0, mode="rate")
    assert since.audit() == [("sign-in", "single sign-on", "derm2", "two@clinic.example")]


def test_an_account_that_is_no_rater_of_the_set_is_refused_and_the_refusal_is_audited(sso, new_page):
    server, provider = sso
    since = Since(server, provider)
    page = new_page()
    sign_in_at_provider(page, server, "stranger@elsewhere.example")
    wait_ready(page, item="__signin__")
    assert "not on the list of raters of this set" in page.locator(
        '[data-testid="stAlertContentError"]').inner_text()
    assert page.locator(".assess-photo").count() == 0
    entries = store.audit_log(server.db, rate.load_rater_set(server.set[0]).set_id)
    entries = entries[since.audit_from:]
    assert [(e.event, e.method, e.rater, e.account) for e in entries] == [
        ("sign-in refused", "single sign-on", None, "stranger@elsewhere.example")]
    assert entries[0].detail.startswith("account is no rater of this set")
    assert since.events().empty


def test_a_wrong_password_at_the_provider_never_reaches_the_app(sso, new_page):
    server, provider = sso
    since = Since(server, provider)
    page = new_page()
    page.goto(server.url + "/")
    wait_ready(page, item="__signin__")
    page.locator(".st-key-sso-signin button").click()
    page.fill("#account", "dr.one@clinic.example")
    page.fill("#password", "wrong")
    page.click("#submit")
    assert page.locator("#error").inner_text() == "Account or password not recognised."
    assert [r for r in since.requests() if r["path"] == "/token"] == []
    assert since.audit() == []


def rate_all(page, wl) -> None:
    for i, it in enumerate(wl.items):
        wait_ready(page, item=it.item, rated=i, mode="rate")
        page.keyboard.press("1")
    wait_ready(page, item="__summary__", rated=len(wl.items))


def test_a_fresh_sign_in_at_the_provider_signs_and_locks_the_worklist(sso, new_page):
    server, provider = sso
    since = Since(server, provider)
    page = new_page()
    sign_in_at_provider(page, server, "three@clinic.example")
    wl = rate.load_rater_set(server.set[0]).worklist("derm3")
    rate_all(page, wl)
    page.get_by_text("I have finished and want to submit my ratings").click()
    page.locator(".st-key-lock button:not([disabled])").click()
    wait_ready(page, item="__locked__")
    with closing(store.connect(server.db)) as conn:
        sig = store.signature(conn, wl.set.set_id, "derm3")
    assert (sig.auth_method, sig.account) == ("single sign-on", "three@clinic.example")
    assert since.audit()[-1] == ("lock", "single sign-on", "derm3", "three@clinic.example")
    assert since.locks() == {"derm3"}


def test_an_old_sign_in_cannot_sign_until_the_rater_signs_in_again_at_the_provider(sso, new_page):
    server, provider = sso
    since = Since(server, provider)
    page = new_page()
    sign_in_at_provider(page, server, "four@clinic.example")  # auth_time an hour ago
    wl = rate.load_rater_set(server.set[0]).worklist("derm4")
    rate_all(page, wl)
    assert "To sign, sign in again with your organisation's account" in page.locator(
        '[data-testid="stAlertContentInfo"]').inner_text()
    assert page.locator(".st-key-lock button").is_disabled()
    page.locator(".st-key-sso-resign button").click()
    wait_ready(page, item="__signin__")
    sign_in_at_provider(page, server, "four@clinic.example")  # a fresh sign-in
    wait_ready(page, item="__summary__", rated=len(wl.items))
    page.get_by_text("I have finished and want to submit my ratings").click()
    page.locator(".st-key-lock button:not([disabled])").click()
    wait_ready(page, item="__locked__")
    assert since.locks() == {"derm4"}
    assert [e[0] for e in since.audit()] == ["sign-in", "sign-out", "sign-in", "lock"]
