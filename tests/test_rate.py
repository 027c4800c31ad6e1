"""The rater-side library: reading a rater folder, sign-in, worklists, status, serving."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from assess import rate, store
from assess.cli import cli


@pytest.fixture
def rater_set(make_rater_set):
    rater_dir, key_dir, access = make_rater_set(raters=("derm1", "derm2"), participants=2)
    return rate.load_rater_set(rater_dir), key_dir, access


def test_a_rater_folder_is_read_with_its_scales_and_raters(rater_set):
    rs, _, _ = rater_set
    assert rs.set_id == "test-set"
    assert set(rs.scales) == {"wsrs", "merz-hand"}
    assert set(rs.raters) == {"derm1", "derm2"}


def test_a_folder_without_set_json_is_refused_naming_the_file(tmp_path):
    with pytest.raises(rate.RateError, match=r"set\.json: missing"):
        rate.load_rater_set(tmp_path)


def test_a_folder_that_holds_the_key_is_refused(rater_set):
    rs, key_dir, _ = rater_set
    (rs.root / "key.csv").write_bytes((key_dir / "key.csv").read_bytes())
    with pytest.raises(rate.RateError, match="holds the unblinding key"):
        rate.load_rater_set(rs.root)


def test_the_right_access_code_signs_the_rater_in(rater_set):
    rs, _, access = rater_set
    assert rate.check_access(rs, "derm1", access["derm1"])
    assert rate.check_access(rs, " derm1 ", f" {access['derm1']} ")


def test_a_wrong_code_an_unknown_rater_and_another_raters_code_are_all_refused(rater_set):
    rs, _, access = rater_set
    assert not rate.check_access(rs, "derm1", "WRONG-CODE")
    assert not rate.check_access(rs, "derm9", access["derm1"])
    assert not rate.check_access(rs, "derm1", access["derm2"])
    assert not rate.check_access(rs, "", "")


def test_a_worklist_item_that_is_not_a_code_is_refused(rater_set):
    rs, _, _ = rater_set
    path = rs.root / "worklists" / "derm1.json"
    data = json.loads(path.read_text())
    data["items"][0]["item"] = '<img src=x onerror=alert(1)>'
    path.write_text(json.dumps(data))
    with pytest.raises(rate.RateError, match=r"derm1\.json: items\[0\]\.item"):
        rs.worklist("derm1")


def test_a_region_photographed_in_views_gives_each_item_its_view_and_the_view_tells_no_visit(
        make_rater_set):
    from collections import Counter

    rater_dir, key_dir, _ = make_rater_set(participants=2, views={"hands": ("left", "right")})
    wl = rate.load_rater_set(rater_dir).worklist("derm1")
    with open(key_dir / "key.csv", newline="", encoding="utf-8") as fh:
        key = {row["code"]: row for row in csv.DictReader(fh)}
    assert all(it.view == key[it.photos[0]]["view"] for it in wl.items)
    assert {it.view for it in wl.items if it.region == "hands"} == {"left", "right"}
    raw = json.loads((rater_dir / "worklists" / "derm1.json").read_text())["items"]
    assert all("view" not in entry for entry in raw if entry["region"] == "face")
    # Every view comes as often at every visit: a view names no timepoint.
    seen = Counter((key[it.item]["view"], key[it.item]["timepoint"]) for it in wl.items)
    assert len({n for (view, _), n in seen.items() if view}) == 1


def test_a_worklist_view_that_is_not_text_is_refused(rater_set):
    rs, _, _ = rater_set
    path = rs.root / "worklists" / "derm1.json"
    data = json.loads(path.read_text())
    data["items"][1]["view"] = ["left"]
    path.write_text(json.dumps(data))
    with pytest.raises(rate.RateError, match=r"derm1\.json: items\[1\]\.view: must be text"):
        rs.worklist("derm1")


def test_a_worklist_naming_a_missing_photo_is_refused(rater_set):
    rs, _, _ = rater_set
    wl = rs.worklist("derm1")
    (rs.root / "images" / "display" / f"{wl.items[2].photos[0]}.jpg").unlink()
    with pytest.raises(rate.RateError, match=r"items\[2\]\.photos: images/display/"):
        rs.worklist("derm1")


def test_a_rater_can_save_only_items_of_their_own_worklist(rater_set, tmp_path, make_rater_set):
    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    wl = rs.worklist("derm1")
    other, _, _ = make_rater_set(name="other", seed=99)
    foreign = rate.load_rater_set(other).worklist("derm1").items[0].item
    with pytest.raises(rate.RateError, match="not on the worklist of derm1"):
        wl.save(db, foreign, score=1)


def test_a_score_that_is_not_a_level_of_the_items_scale_is_refused(rater_set, tmp_path):
    rs, _, _ = rater_set
    wl = rs.worklist("derm1")
    face = next(it for it in wl.items if it.scale == "wsrs")
    with pytest.raises(rate.RateError, match="0 is not a level of Wrinkle Severity"):
        wl.save(tmp_path / "r.sqlite", face.item, score=0)


def test_cannot_assess_for_another_reason_needs_the_reason_in_words(rater_set, tmp_path):
    rs, _, _ = rater_set
    wl = rs.worklist("derm1")
    with pytest.raises(rate.RateError, match="say why"):
        wl.save(tmp_path / "r.sqlite", wl.items[0].item, cannot_assess="other", comment="  ")
    event = wl.save(tmp_path / "r.sqlite", wl.items[0].item, cannot_assess="other",
                    comment="ring on finger")
    assert event.cannot_assess == "other" and event.comment == "ring on finger"


def test_the_state_of_one_rater_never_includes_another_raters_ratings(rater_set, tmp_path):
    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    one, two = rs.worklist("derm1"), rs.worklist("derm2")
    one.save(db, one.items[0].item, score=rs.scales[one.items[0].scale].values[0])
    assert two.state(db).current == {}
    assert list(one.state(db).current) == [one.items[0].item]


def test_progress_estimates_time_left_from_the_raters_median_pace():
    items = [rate.Item(f"AAA-{i:04d}", "single", "wsrs", "face", (f"AAA-{i:04d}",)) for i in range(10)]
    current = {f"AAA-{i:04d}": store.Event("S", "r", f"AAA-{i:04d}", 1, score=1) for i in range(4)}
    prog = rate.progress(items, current, [10.0, 12.0, 600.0, 11.0])
    assert (prog.rated, prog.total) == (4, 10)
    assert prog.seconds_left == pytest.approx(11.5 * 6)
    assert prog.text == "4 of 10 rated · about 1 min left"


def test_progress_gives_no_estimate_before_three_answers():
    items = [rate.Item("AAA-AAAA", "single", "wsrs", "face", ("AAA-AAAA",))]
    assert rate.progress(items, {}, [5.0, 6.0]).text == "0 of 1 rated"


def test_the_default_database_is_under_results_named_by_the_set(rater_set, tmp_path):
    rs, _, _ = rater_set
    assert rate.default_db(rs, tmp_path) == tmp_path / "results" / "test-set" / "ratings.sqlite"


def test_the_per_run_folder_holds_the_app_script_only_and_no_static_photos(rater_set, tmp_path):
    rs, _, _ = rater_set
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    script = rate.prepare_run_dir(rs, run_dir)
    assert script.resolve() == rate.APP_SCRIPT
    assert [p.name for p in run_dir.iterdir()] == ["app.py"]


def test_app_folders_of_servers_that_ended_are_swept_and_nothing_else(rater_set, tmp_path):
    rs, _, _ = rater_set
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    folders = {}
    for name, pid in [("killed", ended.pid), ("running", os.getpid())]:
        folders[name] = tmp_path / f"{rate.RUN_DIR_PREFIX}{pid}-x{name}"
        folders[name].mkdir()
        rate.prepare_run_dir(rs, folders[name])
    foreign = tmp_path / f"{rate.RUN_DIR_PREFIX}{ended.pid}-xother"  # ended, but holds a file
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ours")
    unnamed = tmp_path / f"{rate.RUN_DIR_PREFIX}abc-x"
    unnamed.mkdir()

    assert rate.sweep_run_dirs(tmp_path) == [folders["killed"]]
    assert not folders["killed"].exists()
    assert (folders["running"] / "app.py").is_symlink() and (foreign / "notes.txt").exists()
    assert unnamed.is_dir()
    assert (rs.root / "images" / "display").is_dir()  # the links went, not what they point to


def _status_output(rater_dir, *extra):
    result = CliRunner().invoke(cli, ["status", str(rater_dir), *extra])
    return result.exit_code, result.output


def test_status_prints_progress_per_rater_and_never_a_score(rater_set, tmp_path):
    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    wl = rs.worklist("derm1")
    wl.save(db, wl.items[0].item, cannot_assess="lighting", seconds=20.0)
    for it in wl.items[1:3]:
        wl.save(db, it.item, score=rs.scales[it.scale].values[-1], seconds=50.0)
    code, out = _status_output(rs.root, "--db", str(db))
    assert code == 0
    last = max(store.all_events(db)["answered_at"])[:16].replace("T", " ") + " UTC"
    assert out == (
        "rater  rated  cannot assess  repeats done  time spent  last activity         locked  "
        "failed sign-ins\n"
        f"derm1  3/8    1              needs --key   2 min 00 s  {last}  no      0\n"
        "derm2  0/8    0              needs --key   0 s         -                     no      0\n")


def test_status_shows_a_locked_worklist(rater_set, tmp_path):
    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    wl = rs.worklist("derm2")
    for it in wl.items:
        wl.save(db, it.item, score=rs.scales[it.scale].values[0])
    when = wl.lock(db)
    rows = {r.rater: r for r in rate.status(rs.root, db)}
    assert rows["derm2"].locked_at == when and rows["derm2"].rated == 8
    assert rows["derm1"].locked_at is None


def test_status_counts_disguised_repeats_only_with_the_key(make_rater_set, tmp_path):
    rater_dir, key_dir, _ = make_rater_set(name="repeats", raters=("derm1",), participants=4,
                                           repeat_fraction=0.5)
    rs = rate.load_rater_set(rater_dir)
    with open(key_dir / "key.csv", newline="") as fh:
        repeats = {row["code"] for row in csv.DictReader(fh) if row["repeat_of"]}
    assert repeats
    wl = rs.worklist("derm1")
    db = tmp_path / "r.sqlite"
    rated_repeat = next(it for it in wl.items if it.item in repeats)
    wl.save(db, rated_repeat.item, score=rs.scales[rated_repeat.scale].values[0])
    without = rate.status(rater_dir, db)[0]
    assert (without.repeats_done, without.repeats) == (None, None)
    row = rate.status(rater_dir, db, key_dir)[0]
    assert (row.repeats_done, row.repeats) == (1, len(repeats & set(wl.index)))
    code, out = _status_output(rater_dir, "--db", str(db), "--key", str(key_dir))
    assert code == 0 and f"1/{row.repeats}" in out


def test_status_refuses_a_key_that_is_not_the_one_sealed_in_the_set(rater_set, tmp_path):
    rs, key_dir, _ = rater_set
    with open(key_dir / "key.csv", "a") as fh:
        fh.write("ZZZ-ZZZZ,S9999,baseline,face,,S9999_baseline_face.jpg,,,,,\n")
    code, out = _status_output(rs.root, "--db", str(tmp_path / "r.sqlite"), "--key", str(key_dir))
    assert code == 1
    assert f"{key_dir / 'key.csv'}: changed since the set was sealed" in out


def test_status_before_any_rating_needs_no_database(rater_set, tmp_path):
    rs, _, _ = rater_set
    rows = rate.status(rs.root, tmp_path / "none.sqlite")
    assert [(r.rater, r.rated, r.items) for r in rows] == [("derm1", 0, 8), ("derm2", 0, 8)]
    assert not (tmp_path / "none.sqlite").exists()


def test_rate_on_a_folder_that_is_not_a_rater_folder_fails_before_serving(tmp_path):
    result = CliRunner().invoke(cli, ["rate", str(tmp_path)])
    assert result.exit_code == 1
    assert "set.json: missing" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, cookie: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with _DIRECT.open(request, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except urllib.error.URLError:
        return 0, b""


def _post(url: str, body: bytes) -> tuple[int, str | None]:
    """(status, Set-Cookie) of a POST."""
    try:
        with _DIRECT.open(urllib.request.Request(url, data=body, method="POST"), timeout=5) as resp:
            return resp.status, resp.headers.get("Set-Cookie")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_the_server_serves_photos_only_to_a_session_and_never_the_manifest_or_worklists(
        rater_set, tmp_path):
    from assess import session, web

    rs, _, _ = rater_set
    port = _free_port()
    db = tmp_path / "r.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", "from assess.cli import cli; cli()", "rate", str(rs.root), "--port",
                             str(port), "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while _get(base + "/_stcore/health")[0] != 200:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        code = rs.worklist("derm1").items[0].photos[0]
        grant = session.make_grant(session.key_of(db), rs.set_id, "derm1", time.time())
        status, set_cookie = _post(f"{base}/{web.SESSION_PATH}", grant.encode())
        assert status == 200 and "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
        cookie = set_cookie.split(";")[0]
        token = session.read_token(session.key_of(db), rs.set_id, cookie.split("=", 1)[1],
                                   time.time())
        access = session.PhotoAccess(session.key_of(db), token.handle)
        status, body = _get(f"{base}/{rate.display_url(code, access)}", cookie)
        assert status == 200
        assert body == (rs.root / "images" / "display" / f"{code}.jpg").read_bytes()
        assert _get(f"{base}/{rate.full_url(code, access)}", cookie)[0] == 200
        assert _get(f"{base}/{rate.display_url(code, access)}")[0] == 403  # no cookie
        assert _post(f"{base}/{web.SESSION_PATH}", grant.encode())[0] == 403  # used once only
        # Streamlit's static route is off: any other path gets the app's page (or an error).
        for path in ("set.json", "worklists/derm1.json", "../set.json", "%2e%2e/set.json",
                     "display/", f"display/{code}.jpg", f"full/{code}.jpg"):
            status, body = _get(f"{base}/app/static/{path}", cookie)
            assert status in (400, 403, 404) or (b"<html" in body.lower()
                                                 and not body.startswith(b"\xff\xd8")
                                                 and b'"raters"' not in body), path
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert db.is_file()


def test_the_single_sign_on_account_list_maps_accounts_to_raters(rater_set, tmp_path):
    rs, _, _ = rater_set
    path = tmp_path / "raters.csv"
    path.write_text("account,rater\nA@Clinic.example,derm1\nb@clinic.example,derm2\n")
    assert rate.load_sso_raters(path, rs) == {"a@clinic.example": "derm1",
                                              "b@clinic.example": "derm2"}


@pytest.mark.parametrize("text, message", [
    ("email,rater\na@x,derm1\n", "needs the columns account,rater"),
    ("account,rater\na@x,derm9\n", "line 2: give an account and one of the set's raters"),
    ("account,rater\na@x,derm1\nA@x,derm2\n", "line 3: a@x is listed for two raters"),
])
def test_a_faulty_single_sign_on_account_list_is_refused_with_the_line(rater_set, tmp_path, text,
                                                                        message):
    rs, _, _ = rater_set
    path = tmp_path / "raters.csv"
    path.write_text(text)
    with pytest.raises(rate.RateError, match=message):
        rate.load_sso_raters(path, rs)


def test_signing_checks_the_access_code_again_and_a_wrong_one_locks_nothing(make_rater_set,
                                                                             tmp_path):
    rater_dir, _, access = make_rater_set(raters=("derm1", "derm2"), participants=2)
    rs = rate.load_rater_set(rater_dir)
    wl, db = rs.worklist("derm1"), tmp_path / "ratings.sqlite"
    for it in wl.items:
        wl.save(db, it.item, score=rs.scales[it.scale].values[0])
    for wrong in ("", access["derm2"], access["derm1"] + "X"):
        with pytest.raises(rate.SignatureError, match="access code is not right"):
            wl.sign_and_lock(db, code=wrong)
    assert wl.state(db).locked_at is None
    sig = wl.sign_and_lock(db, code=access["derm1"])
    assert (sig.signer, sig.auth_method) == ("derm1", "access code")
    assert wl.state(db).signature == sig

# ------------------------------------------------------------------------------------ seen only


def test_a_set_takes_ratings_after_400_ms_on_the_photo_unless_its_study_says_otherwise(
        rater_set, make_rater_set):
    rs, _, _ = rater_set
    assert rs.min_view_ms == 400
    assert json.loads((rs.root / "set.json").read_text())["rating"] == {"min_view_ms": 400,
                                                                     "session_hours": 12.0}
    own, _, _ = make_rater_set(name="slow", min_view_ms=900)
    assert rate.load_rater_set(own).min_view_ms == 900


def test_a_set_written_before_the_minimum_time_existed_gets_the_default(rater_set):
    rs, _, _ = rater_set
    data = json.loads((rs.root / "set.json").read_text())
    del data["rating"]
    (rs.root / "set.json").write_text(json.dumps(data))
    assert rate.load_rater_set(rs.root).min_view_ms == rate.DEFAULT_MIN_VIEW_MS
    assert rate.load_rater_set(rs.root).session_hours == 12


def test_a_broken_minimum_time_in_set_json_is_refused_naming_the_field(rater_set):
    rs, _, _ = rater_set
    data = json.loads((rs.root / "set.json").read_text())
    data["rating"] = {"min_view_ms": "fast"}
    (rs.root / "set.json").write_text(json.dumps(data))
    with pytest.raises(rate.RateError, match=r"set\.json: rating\.min_view_ms"):
        rate.load_rater_set(rs.root)
    data["rating"] = {"min_view_ms": 400, "session_hours": 0}
    (rs.root / "set.json").write_text(json.dumps(data))
    with pytest.raises(rate.RateError, match=r"set\.json: rating\.session_hours"):
        rate.load_rater_set(rs.root)


def test_an_answer_for_an_item_not_on_screen_is_refused_and_saves_nothing(rater_set, tmp_path):
    rs, _, _ = rater_set
    wl = rs.worklist("derm1")
    db = tmp_path / "r.sqlite"
    first, second = wl.items[0].item, wl.items[1].item
    score = rs.scales[wl.items[0].scale].values[0]
    long_ago = time.monotonic() - 10
    for screen in (rate.OnScreen(second, long_ago), None):  # the screen moved on, or shows nothing
        with pytest.raises(rate.TooSoonError, match=f"{first}: not on screen"):
            wl.save(db, first, score=score, on_screen=screen)
    with pytest.raises(rate.TooSoonError, match="ms after it was shown"):
        wl.save(db, first, score=score, on_screen=rate.OnScreen(first, time.monotonic()))
    assert not db.exists() or store.all_events(db).empty
    wl.save(db, first, score=score, on_screen=rate.OnScreen(first, long_ago))
    assert list(store.all_events(db)["item"]) == [first]


# ------------------------------------------------------------------------------------ sign-in throttle


def _log(db):
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT rater, client, outcome FROM access_log ORDER BY id").fetchall()


def test_every_sign_in_attempt_is_logged_with_its_client_and_outcome(rater_set, tmp_path):
    rs, _, access = rater_set
    db = tmp_path / "r.sqlite"
    assert rate.sign_in(rs, db, "derm1", "WRONG-CODE", "10.0.0.7") == rate.SignIn(False)
    assert rate.sign_in(rs, db, "nobody", access["derm1"], "10.0.0.7") == rate.SignIn(False)
    assert rate.sign_in(rs, db, "derm1", access["derm1"], "10.0.0.7") == rate.SignIn(True)
    assert _log(db) == [("derm1", "10.0.0.7", "wrong"), ("nobody", "10.0.0.7", "wrong"),
                        ("derm1", "10.0.0.7", "ok")]


def test_the_sign_in_log_is_append_only(rater_set, tmp_path):
    import sqlite3

    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    rate.sign_in(rs, db, "derm1", "WRONG-CODE", "10.0.0.7")
    with sqlite3.connect(db) as conn:
        for sql in ("UPDATE access_log SET outcome = 'ok'", "DELETE FROM access_log"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)


def test_after_three_wrong_codes_a_rater_waits_longer_each_time_but_never_over_a_minute(
        rater_set, tmp_path):
    from datetime import datetime, timedelta, timezone

    rs, _, access = rater_set
    db = tmp_path / "r.sqlite"
    t0 = datetime.now(timezone.utc)
    for n in range(3):  # three tries without a wait, from three places
        assert rate.sign_in(rs, db, "derm1", "WRONG", f"10.0.0.{n}", now=t0).checked
    # the right code now waits too: the wait holds for the rater id, whatever the code
    refused = rate.sign_in(rs, db, "derm1", access["derm1"], "10.0.0.9", now=t0 + timedelta(seconds=1))
    assert refused == rate.SignIn(False, checked=False, wait_seconds=1.0)
    t = t0 + timedelta(seconds=2)
    out = rate.sign_in(rs, db, "derm1", "WRONG", "10.0.0.9", now=t)
    waits = [out.wait_seconds]
    for _ in range(7):  # always wrong, each time as soon as allowed
        t += timedelta(seconds=out.wait_seconds)
        out = rate.sign_in(rs, db, "derm1", "WRONG", "10.0.0.9", now=t)
        assert out.checked
        waits.append(out.wait_seconds)
    assert waits == [4, 8, 16, 32, 60, 60, 60, 60]
    t += timedelta(seconds=out.wait_seconds)
    # refused tries in between do not make the wait longer
    for k in range(5):
        rate.sign_in(rs, db, "derm1", "WRONG", "10.0.0.9", now=t - timedelta(seconds=50 - k))
    assert rate.sign_in(rs, db, "derm1", access["derm1"], "10.0.0.9", now=t).ok
    assert rate.sign_in(rs, db, "derm1", "WRONG", "10.0.0.9", now=t).checked  # the count starts again
    outcomes = [o for _, _, o in _log(db)]
    assert outcomes.count("throttled") == 6 and outcomes.count("ok") == 1


def test_one_client_trying_many_rater_ids_is_slowed_down_as_well(rater_set, tmp_path):
    from datetime import datetime, timezone

    rs, _, access = rater_set
    db = tmp_path / "r.sqlite"
    t0 = datetime.now(timezone.utc)
    for n in range(3):
        rate.sign_in(rs, db, f"guess{n}", "WRONG", "10.6.6.6", now=t0)
    assert not rate.sign_in(rs, db, "guess9", "WRONG", "10.6.6.6", now=t0).checked
    assert rate.sign_in(rs, db, "derm2", access["derm2"], "10.0.0.1", now=t0).ok  # others are not


def test_a_throttled_attempt_is_refused_without_the_cost_of_checking_the_code(rater_set, tmp_path):
    from datetime import datetime, timezone

    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    t0 = datetime.now(timezone.utc)
    start = time.process_time()
    for _ in range(3):
        rate.sign_in(rs, db, "derm1", "WRONG", "10.0.0.1", now=t0)
    checked = (time.process_time() - start) / 3
    start = time.process_time()
    for _ in range(20):
        assert not rate.sign_in(rs, db, "derm1", "WRONG", "10.0.0.1", now=t0).checked
    refused = (time.process_time() - start) / 20
    assert refused < checked / 10, (refused, checked)


def test_status_shows_failed_sign_ins_per_rater_and_under_unknown_ids(rater_set, tmp_path):
    rs, _, access = rater_set
    db = tmp_path / "r.sqlite"
    for rater, code in (("derm1", "WRONG"), ("derm1", "WRONG"), ("derm1", access["derm1"]),
                        ("derm2", "WRONG"), ("mallory", "WRONG")):
        rate.sign_in(rs, db, rater, code, "10.0.0.1")
    assert {r.rater: r.failed_sign_ins for r in rate.status(rs.root, db)} == {"derm1": 2, "derm2": 1}
    code, out = _status_output(rs.root, "--db", str(db))
    assert code == 0
    assert out.splitlines()[0].endswith("failed sign-ins")
    assert out.splitlines()[1].endswith("  2") and out.splitlines()[2].endswith("  1")
    assert out.splitlines()[3] == ("Refused sign-in attempts under ids that are no rater of this "
                                   "set: 1")


def test_status_reads_a_database_from_before_the_sign_in_log(rater_set, tmp_path):
    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    wl = rs.worklist("derm1")
    wl.save(db, wl.items[0].item, score=rs.scales[wl.items[0].scale].values[0])
    assert [r.failed_sign_ins for r in rate.status(rs.root, db)] == [0, 0]
