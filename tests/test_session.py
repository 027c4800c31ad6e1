"""Staying signed in and photos only for the signed-in rater: tokens, links, the two routes, revoking.

The routes are driven through Starlette's test client on a real rater folder, real photo files and a
real SQLite database; the same routes in the real server and a real browser are tested in
tests/test_rate.py and tests/e2e/test_sessions_browser.py.
"""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from assess import rate, session, store, web
from assess.cli import cli

KEY = bytes(range(32))


# ----------------------------------------------------------------------------- tokens (pure)


def test_a_token_names_its_rater_and_session_and_holds_until_it_expires():
    token = session.make_token(KEY, "S1", "derm1", "sid", expires=5000)
    read = session.read_token(KEY, "S1", token, now=4999)
    assert (read.rater, read.session_id, read.expires) == ("derm1", "sid", 5000)
    assert read.handle == session.session_handle("sid") != "sid"
    assert session.read_token(KEY, "S1", token, now=5000) is None


@pytest.mark.parametrize("change", [
    lambda t: t.replace("derm1", "derm2", 1),           # another rater
    lambda t: t.replace(".5000.", ".9999."),            # a later expiry
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),   # another signature
    lambda t: t + ".x", lambda t: "", lambda t: None,
])
def test_a_changed_or_malformed_token_is_refused(change):
    token = session.make_token(KEY, "S1", "derm1", "sid", expires=5000)
    assert session.read_token(KEY, "S1", change(token), now=10) is None


def test_a_token_of_another_key_or_set_is_refused():
    token = session.make_token(KEY, "S1", "derm1", "sid", expires=5000)
    assert session.read_token(bytes(32), "S1", token, now=10) is None
    assert session.read_token(KEY, "S2", token, now=10) is None


def test_a_photo_link_is_bound_to_its_session_copy_and_code_and_expires():
    access = session.PhotoAccess(KEY, "handle1")
    handle, expires, mac = session.read_ticket(access.ticket("display", "AAA-AAAA", now=1000))
    assert handle == "handle1" and int(expires) >= 1000 + session.LINK_SECONDS
    assert session.check_photo(KEY, "handle1", "display", "AAA-AAAA", expires, mac, now=1001)
    assert not session.check_photo(KEY, "handle2", "display", "AAA-AAAA", expires, mac, now=1001)
    assert not session.check_photo(KEY, "handle1", "full", "AAA-AAAA", expires, mac, now=1001)
    assert not session.check_photo(KEY, "handle1", "display", "CCC-CCCC", expires, mac, now=1001)
    assert not session.check_photo(KEY, "handle1", "display", "AAA-AAAA", str(int(expires) + 600),
                                   mac, now=1001)
    assert not session.check_photo(KEY, "handle1", "display", "AAA-AAAA", expires, mac,
                                   now=int(expires))


def test_a_photo_keeps_one_link_for_a_while_so_the_browser_cache_serves_it():
    access = session.PhotoAccess(KEY, "handle1")
    links = {access.ticket("display", "AAA-AAAA", now=t) for t in range(1201, 1801, 7)}
    assert len(links) == 1


def test_an_ended_or_expired_session_or_one_of_another_rater_is_not_live():
    row = store.Session("h", "S1", "derm1", session.iso(0), session.iso(100), None)
    assert session.is_live(row, "derm1", "S1", now=50)
    assert not session.is_live(row, "derm1", "S1", now=100)
    assert not session.is_live(row, "derm2", "S1", now=50)
    assert not session.is_live(row, "derm1", "S2", now=50)
    assert not session.is_live(None, "derm1", "S1", now=50)
    ended = store.Session("h", "S1", "derm1", session.iso(0), session.iso(100), session.iso(10))
    assert not session.is_live(ended, "derm1", "S1", now=50)


# ----------------------------------------------------------------------------- with the store


@pytest.fixture
def served(make_rater_set, tmp_path):
    """(rater set, database, Starlette test client on the two routes)."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    rater_dir, _, _ = make_rater_set(raters=("derm1", "derm2"), participants=2)
    rs = rate.load_rater_set(rater_dir)
    db = tmp_path / "results" / "ratings.sqlite"
    client = TestClient(Starlette(routes=web.routes(rs, db)), base_url="http://127.0.0.1")
    return rs, db, client


def _signed_in_client(served, rater="derm1"):
    """A fresh browser (client) that posted a grant for ``rater``: (client, photo access)."""
    from starlette.testclient import TestClient

    rs, db, base = served
    client = TestClient(base.app, base_url="http://127.0.0.1")
    grant = session.make_grant(session.key_of(db), rs.set_id, rater, time.time())
    answer = client.post(f"/{web.SESSION_PATH}", content=grant)
    assert answer.status_code == 200
    token = session.read_token(session.key_of(db), rs.set_id,
                               client.cookies[session.cookie_name(rs.set_id)], time.time())
    return client, session.PhotoAccess(session.key_of(db), token.handle)


def test_the_session_route_sets_an_http_only_strict_cookie_that_holds_the_sets_hours(served):
    rs, db, client = served
    grant = session.make_grant(session.key_of(db), rs.set_id, "derm1", time.time())
    answer = client.post(f"/{web.SESSION_PATH}", content=grant)
    cookie = answer.headers["set-cookie"]
    assert answer.status_code == 200 and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert f"Max-Age={int(rs.session_hours * 3600)}" in cookie and "Path=/" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert session.signed_in(db, rs.set_id, value, time.time()).rater == "derm1"
    assert grant not in cookie and value.split(".")[1] not in grant


def test_a_grant_works_once_and_a_forged_or_expired_one_never(served):
    rs, db, client = served
    key = session.key_of(db)
    grant = session.make_grant(key, rs.set_id, "derm1", time.time())
    assert client.post(f"/{web.SESSION_PATH}", content=grant).status_code == 200
    assert client.post(f"/{web.SESSION_PATH}", content=grant).status_code == 403
    forged = session.make_grant(bytes(32), rs.set_id, "derm1", time.time())
    old = session.make_grant(key, rs.set_id, "derm1", time.time() - session.GRANT_SECONDS - 1)
    stranger = session.make_grant(key, rs.set_id, "nobody", time.time())
    for bad in (forged, old, stranger, ""):
        answer = client.post(f"/{web.SESSION_PATH}", content=bad)
        assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_a_photo_link_answers_its_sessions_browser_with_the_photo(served):
    rs, _, _ = served
    client, access = _signed_in_client(served)
    code = rs.worklist("derm1").items[0].photos[0]
    for copy, url in (("display", rate.display_url(code, access)),
                      ("full", rate.full_url(code, access))):
        answer = client.get("/" + url)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
        assert answer.content == (rs.root / "images" / copy / f"{code}.jpg").read_bytes()
        assert answer.headers["cache-control"].startswith("private, max-age=")


def test_a_photo_link_without_the_cookie_or_in_another_browser_is_refused(served):
    from starlette.testclient import TestClient

    rs, _, base = served
    client, access = _signed_in_client(served)
    url = "/" + rate.display_url(rs.worklist("derm1").items[0].photos[0], access)
    nobody = TestClient(base.app, base_url="http://127.0.0.1")
    other, _ = _signed_in_client(served, "derm1")  # the same rater, signed in elsewhere
    for browser in (nobody, other):
        answer = browser.get(url)
        assert answer.status_code == 403 and answer.content[:2] != b"\xff\xd8"


def test_a_photo_link_after_sign_out_or_revocation_is_refused(served):
    rs, db, _ = served
    code = rs.worklist("derm1").items[0].photos[0]
    client, access = _signed_in_client(served)
    url = "/" + rate.display_url(code, access)
    session.end(db, rs.set_id, access.handle)
    assert client.get(url).status_code == 403
    client, access = _signed_in_client(served)
    url = "/" + rate.display_url(code, access)
    assert client.get(url).status_code == 200
    assert session.revoke_all(db, rs.set_id) == 1
    assert client.get(url).status_code == 403


def test_an_expired_photo_link_is_refused(served):
    rs, db, _ = served
    client, access = _signed_in_client(served)
    code = rs.worklist("derm1").items[0].photos[0]
    old = access.ticket("display", code, now=time.time() - 2 * session.LINK_SECONDS)
    assert client.get(f"/{web.PHOTO_PATH}/{old}/display/{code}.jpg").status_code == 403


def test_a_photo_not_on_the_raters_worklist_is_refused_even_with_a_valid_link(served):
    import shutil

    rs, _, _ = served
    client, access = _signed_in_client(served, "derm1")
    code = rs.worklist("derm1").items[0].photos[0]
    shutil.copy(rs.root / "images" / "display" / f"{code}.jpg",
                rs.root / "images" / "display" / "ZZZ-ZZZZ.jpg")  # a photo on no worklist
    assert client.get("/" + rate.display_url(code, access)).status_code == 200
    assert client.get("/" + rate.display_url("ZZZ-ZZZZ", access)).status_code == 403


def test_the_session_key_is_made_once_and_shared_by_every_process(served, tmp_path):
    import subprocess
    import sys

    _, db, _ = served
    here = session.key_of(db)
    there = subprocess.run([sys.executable, "-c", "import sys; from assess import session; "
                            "print(session.key_of(sys.argv[1]).hex())", str(db)],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert bytes.fromhex(there) == here and len(here) == 32


def test_the_routes_come_before_streamlits_own_and_static_serving_stays_off(monkeypatch):
    from streamlit.web.server.starlette import starlette_app

    # Streamlit builds its application from this function, looked up when the server starts.
    assert "create_streamlit_routes" in starlette_app.create_starlette_app.__code__.co_names
    monkeypatch.setattr(starlette_app, "create_streamlit_routes", lambda runtime: ["streamlit's"])
    with web.install(lambda base: [f"ours under {base!r}"]):
        assert starlette_app.create_streamlit_routes(None) == ["ours under ''", "streamlit's"]
    assert starlette_app.create_streamlit_routes(None) == ["streamlit's"]
    assert not any("StaticServing" in f for f in rate.streamlit_flags("127.0.0.1", 8501))


def test_installing_the_routes_fails_loudly_when_streamlit_builds_its_server_otherwise(
        monkeypatch):
    from streamlit.web.server.starlette import starlette_app

    monkeypatch.delattr(starlette_app, "create_streamlit_routes")
    with pytest.raises(web.WebError, match="create_streamlit_routes"):
        with web.install(lambda base: []):
            pass


# ----------------------------------------------------------------------------- revoking


def test_sessions_revoke_signs_every_rater_out_and_says_how_many(served):
    rs, db, _ = served
    one, a = _signed_in_client(served, "derm1")
    two, b = _signed_in_client(served, "derm2")
    result = CliRunner().invoke(cli, ["sessions", "revoke", str(rs.root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"Ended 2 sessions of set {rs.set_id}" in result.output
    for client, access, rater in ((one, a, "derm1"), (two, b, "derm2")):
        code = rs.worklist(rater).items[0].photos[0]
        assert client.get("/" + rate.display_url(code, access)).status_code == 403
        cookie = client.cookies[session.cookie_name(rs.set_id)]
        assert session.signed_in(db, rs.set_id, cookie, time.time()) is None


def test_sessions_revoke_on_a_missing_database_creates_none(served, tmp_path):
    rs, _, _ = served
    missing = tmp_path / "nowhere.sqlite"
    result = CliRunner().invoke(cli, ["sessions", "revoke", str(rs.root), "--db", str(missing)])
    assert result.exit_code == 1 and "no ratings database here" in result.output
    assert "Traceback" not in result.output and not missing.exists()


def test_sessions_revoke_help_ends_with_an_example():
    result = CliRunner().invoke(cli, ["sessions", "revoke", "--help"])
    assert "Example:" in result.output and "assess sessions revoke " in result.output


# ----------------------------------------------------------------------------- the set's hours


def test_the_studys_session_hours_reach_the_rater_folder(make_rater_set):
    rater_dir, _, _ = make_rater_set(raters=("derm1",), participants=2)
    assert rate.load_rater_set(rater_dir).session_hours == session.DEFAULT_SESSION_HOURS == 12
    rater_dir, _, _ = make_rater_set(raters=("derm1",), participants=2, session_hours=1.5,
                                     name="short")
    assert rate.load_rater_set(rater_dir).session_hours == 1.5


@pytest.mark.parametrize("value", [0, -1, 169, "12", True])
def test_session_hours_out_of_range_are_refused_naming_the_key(value):
    from assess import study

    with pytest.raises(study.StudyError, match=r"rating\.session_hours"):
        study._parse_rating({"session_hours": value}, "study.toml")
