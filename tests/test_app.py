"""The rating app's logic, driven through Streamlit's AppTest on a real rater folder and database."""

from __future__ import annotations

import csv
import html
import re
from contextlib import closing
import time
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from assess import rate, session, store

APP = str(rate.APP_SCRIPT)


# The tests of what an answer does take it at once (no minimum time on the photo); the minimum
# time is tested on its own below, on sets that ask for it.
@pytest.fixture
def env(make_rater_set, tmp_path, monkeypatch):
    return _env(make_rater_set, tmp_path, monkeypatch, "single", 0)


@pytest.fixture
def pairs_env(make_rater_set, tmp_path, monkeypatch):
    return _env(make_rater_set, tmp_path, monkeypatch, "pairs", 0)


#: Long enough that a click right after a run surely comes sooner, even on a busy machine.
TIMED_MS = 1500


@pytest.fixture
def timed_env(make_rater_set, tmp_path, monkeypatch):
    return _env(make_rater_set, tmp_path, monkeypatch, "single", TIMED_MS)


@pytest.fixture
def timed_pairs_env(make_rater_set, tmp_path, monkeypatch):
    return _env(make_rater_set, tmp_path, monkeypatch, "pairs", TIMED_MS)


def _env(make_rater_set, tmp_path, monkeypatch, presentation, min_view_ms):
    rater_dir, key_dir, access = make_rater_set(raters=("derm1", "derm2"), participants=2,
                                                presentation=presentation,
                                                min_view_ms=min_view_ms)
    db = tmp_path / "results" / "ratings.sqlite"
    monkeypatch.setenv(rate.ENV_RATER_DIR, str(rater_dir))
    monkeypatch.setenv(rate.ENV_DB, str(db))
    rs = rate.load_rater_set(rater_dir)
    return SimpleNamespace(rater_dir=rater_dir, key_dir=key_dir, access=access, db=db, rs=rs)


#: The cookies of the page being run: AppTest has no browser, so each page (AppTest) keeps its own
#: cookie jar and the app reads it as ``st.context.cookies`` while that page runs.
_RUNNING = {"cookies": {}}


@pytest.fixture(autouse=True)
def cookie_jars(monkeypatch):
    from streamlit.runtime import context

    monkeypatch.setattr(context, "_get_client_context", lambda: SimpleNamespace(
        cookies=dict(_RUNNING["cookies"]), headers=[], remote_ip=None))


def page(cookies: dict | None = None, user: dict | None = None) -> AppTest:
    """A page (not yet run) with its own cookie jar, as one browser tab."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.cookies = {} if cookies is None else cookies
    if user is not None:
        at.user = user
    run = at._run

    def run_with_cookies(*args, **kwargs):
        _RUNNING["cookies"] = at.cookies
        return run(*args, **kwargs)

    at._run = run_with_cookies
    return at


def open_app(cookies: dict | None = None, user: dict | None = None) -> AppTest:
    at = page(cookies, user)
    at.run()
    assert not at.exception
    return at


def settle(at: AppTest) -> AppTest:
    """After a sign-in the page trades its grant for the session cookie and reloads: so here.

    The grant is redeemed as the app's session route does (``session.redeem_grant``); the route
    itself, the cookie and the reload are tested in a real browser (tests/e2e/test_sessions_browser.py).
    """
    if "_grant" not in at.session_state:
        return at
    rs, db, _ = rate.app_config()
    made = session.redeem_grant(db, rs.set_id, rs.raters, rs.session_hours,
                                at.session_state["_grant"], time.time())
    assert made is not None
    at.cookies[session.cookie_name(rs.set_id)] = made[0]
    return open_app(at.cookies, getattr(at, "_assess_user", None))


def sign_in(at: AppTest, rater: str, code: str) -> AppTest:
    at.text_input(key="signin_id").input(rater)
    at.text_input(key="signin_code").input(code)
    at.button[0].click().run()
    assert not at.exception
    return settle(at)


def sso_page(user: dict) -> AppTest:
    """A page behind single sign-on, signed in with the provider as ``user``, settled."""
    at = open_app(user=user)
    at._assess_user = user
    return settle(at)


def signed_in(env, rater="derm1") -> AppTest:
    return sign_in(open_app(), rater, env.access[rater])


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> str | None:
    """The code of the item on screen."""
    for md in at.markdown:
        m = re.search(r'class="assess-code">([A-Z0-9-]+)<', md.value)
        if m:
            return m.group(1)
    return None


def progress_text(at: AppTest) -> str:
    for md in at.markdown:
        m = re.search(r'class="assess-progress">([^<]*)<', md.value)
        if m:
            return html.unescape(m.group(1))
    raise AssertionError("no progress on the page")


def level_key(env, rater: str, item: str, pick: int = 0) -> str:
    wl = env.rs.worklist(rater)
    return f"level-{env.rs.scales[wl.items[wl.index[item]].scale].values[pick]}"


def events(env):
    return store.all_events(env.db)


def hints(at: AppTest) -> list[str]:
    """The hints on the page (a press refused because it came too soon)."""
    return [html.unescape(m.group(1)) for md in at.markdown
            for m in re.finditer(r'class="assess-hint"[^>]*>([^<]*)<', md.value)]


def page_text(at: AppTest) -> str:
    out = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


# ----------------------------------------------------------------------------- sign in


def test_before_sign_in_the_page_shows_no_photo_and_no_code(env):
    at = open_app()
    assert shown(at) is None
    assert "assess/photo" not in page_text(at)
def test_the_right_access_code_opens_the_raters_worklist_at_its_first_item(env):
    at = signed_in(env)
    assert shown(at) == env.rs.worklist("derm1").items[0].item
    assert progress_text(at) == "0 of 8 rated"


@pytest.mark.parametrize("rater, code", [("derm1", "WRONG-CODE"), ("nobody", "WRONG-CODE"),
                                         ("derm1", None)])
def test_a_wrong_code_is_refused_without_saying_whether_the_rater_exists(env, rater, code):
    at = sign_in(open_app(), rater, code if code is not None else env.access["derm2"])
    assert shown(at) is None
    assert [e.value for e in at.error] == [
        "Rater id or access code not recognised. Check the details you were given and try again."]


def test_after_repeated_wrong_codes_the_page_says_to_wait_and_the_right_code_waits_too(env):
    at = open_app()
    for _ in range(3):
        sign_in(at, "derm1", "WRONG-CODE")
    assert "Wait 2 seconds first." in at.error[0].value
    sign_in(at, "derm1", env.access["derm1"])  # at once: refused unchecked
    assert shown(at) is None
    assert len(at.error) == 1 and re.fullmatch(
        r"Too many attempts that were not recognised\. Wait (2 seconds|1 second), then try again\.",
        at.error[0].value)
    time.sleep(2)
    at = sign_in(at, "derm1", env.access["derm1"])
    assert shown(at) == env.rs.worklist("derm1").items[0].item
    assert store.sign_in_failures(env.db, env.rs.set_id) == {"derm1": 4}


# ----------------------------------------------------------------------------- rating


def test_a_level_button_saves_the_rating_and_moves_on_to_the_next_item(env):
    at = signed_in(env)
    items = env.rs.worklist("derm1").items
    click(at, level_key(env, "derm1", items[0].item, 2))
    df = events(env)
    assert list(zip(df["rater"], df["item"], df["revision"])) == [("derm1", items[0].item, 1)]
    assert df["score"][0] == env.rs.scales[items[0].scale].values[2]
    assert df["seconds"][0] >= 0 and df["shown_at"][0] <= df["answered_at"][0]
    assert shown(at) == items[1].item
    assert progress_text(at) == "1 of 8 rated"


def test_a_comment_is_saved_with_the_rating(env):
    at = signed_in(env)
    item = shown(at)
    click(at, "comment-open")
    at.text_input(key="comment").input("scar at the chin")
    click(at, level_key(env, "derm1", item))
    assert list(events(env)["comment"]) == ["scar at the chin"]


def test_cannot_assess_saves_the_chosen_reason(env):
    at = signed_in(env)
    item = shown(at)
    click(at, "cannot")
    click(at, "reason-out_of_focus")
    df = events(env)
    assert list(zip(df["item"], df["cannot_assess"])) == [(item, "out_of_focus")]
    assert df["score"].isna().all()
    assert shown(at) != item


def test_cannot_assess_for_another_reason_asks_for_it_in_words_before_saving(env):
    at = signed_in(env)
    item = shown(at)
    click(at, "cannot")
    click(at, "reason-other")
    assert events(env).empty if env.db.exists() else True
    assert shown(at) == item and at.warning
    at.text_input(key="comment").input("tattoo on the hand")
    click(at, "reason-other")
    df = events(env)
    assert list(zip(df["cannot_assess"], df["comment"])) == [("other", "tattoo on the hand")]


def test_cancel_leaves_cannot_assess_without_saving(env):
    at = signed_in(env)
    item = shown(at)
    click(at, "cannot")
    click(at, "reason-cancel")
    assert shown(at) == item
    assert at.button(key=level_key(env, "derm1", item))
    assert not env.db.exists() or events(env).empty


def test_going_back_and_changing_a_rating_adds_a_revision_and_keeps_the_old_value(env):
    at = signed_in(env)
    first = shown(at)
    click(at, level_key(env, "derm1", first, 0))
    click(at, "nav-back")
    assert shown(at) == first
    at.text_input(key="why").input("misread the fold")
    click(at, level_key(env, "derm1", first, 3))
    df = events(env)
    values = env.rs.scales[env.rs.worklist("derm1").items[0].scale].values
    assert list(df["score"]) == [values[0], values[3]]
    assert list(df["revision"]) == [1, 2]
    assert list(df["change_reason"]) == [None, "misread the fold"]
    assert list(store.current_ratings(env.db)["score"]) == [values[3]]


def test_forward_back_and_first_unrated_move_through_the_worklist(env):
    at = signed_in(env)
    items = [it.item for it in env.rs.worklist("derm1").items]
    click(at, "nav-forward")
    click(at, "nav-forward")
    assert shown(at) == items[2]
    click(at, "nav-back")
    assert shown(at) == items[1]
    click(at, "nav-first")
    assert shown(at) == items[0]
    assert at.button(key="nav-back").disabled


def test_a_new_session_resumes_at_the_first_unrated_item_from_the_database(env):
    at = signed_in(env)
    items = [it.item for it in env.rs.worklist("derm1").items]
    for item in items[:3]:
        click(at, level_key(env, "derm1", item))
    again = signed_in(env)
    assert shown(again) == items[3]
    assert progress_text(again).startswith("3 of 8 rated")


def test_every_item_rated_then_submit_and_lock_makes_the_ratings_read_only(env):
    at = signed_in(env)
    wl = env.rs.worklist("derm1")
    for it in wl.items:
        click(at, level_key(env, "derm1", it.item))
    assert shown(at) is None and at.subheader[0].value == "Every item is rated"
    assert at.button(key="lock").disabled
    at.checkbox(key="lock-sure").check().run()
    at.text_input(key="lock_code").input(env.access["derm1"])
    click(at, "lock")
    assert "submitted and locked" in at.success[0].value
    assert store.locks(env.db) == {"derm1": store.locks(env.db)["derm1"]}
    again = signed_in(env)
    assert shown(again) is None and "submitted and locked" in again.success[0].value
    with pytest.raises(store.LockedError):
        wl.save(env.db, wl.items[0].item, score=env.rs.scales[wl.items[0].scale].values[-1])


def test_one_rater_sees_and_changes_only_their_own_ratings(env):
    one = signed_in(env, "derm1")
    for it in env.rs.worklist("derm1").items[:2]:
        click(one, level_key(env, "derm1", it.item, 1))
    two = signed_in(env, "derm2")
    two_items = [it.item for it in env.rs.worklist("derm2").items]
    assert progress_text(two) == "0 of 8 rated"
    assert shown(two) == two_items[0]
    assert "not rated yet" in page_text(two) and "rated 1" not in page_text(two)
    click(two, level_key(env, "derm2", two_items[0], 0))
    df = store.current_ratings(env.db)
    assert df.groupby("rater").size().to_dict() == {"derm1": 2, "derm2": 1}
    assert (df.loc[df["rater"] == "derm1", "revision"] == 1).all()


def test_a_pair_is_saved_once_both_questions_are_answered(pairs_env):
    env = pairs_env
    at = signed_in(env)
    items = env.rs.worklist("derm1").items
    assert items[0].kind == "pair"
    click(at, "better-better_right")
    assert shown(at) == items[0].item and not env.db.exists() or events(env).empty
    click(at, "first-cannot_tell")
    df = events(env)
    assert list(zip(df["item"], df["better"], df["first"])) == [
        (items[0].item, "better_right", "cannot_tell")]
    assert shown(at) == items[1].item


def test_both_photos_of_a_pair_are_shown_left_and_right(pairs_env):
    at = signed_in(pairs_env)
    left, right = pairs_env.rs.worklist("derm1").items[0].photos
    text = page_text(at)
    assert text.index(f"display/{left}.jpg") < text.index(f"display/{right}.jpg")


def test_the_page_carries_codes_but_no_participant_timepoint_or_file_name(env):
    at = signed_in(env)
    for it in env.rs.worklist("derm1").items[:3]:
        click(at, level_key(env, "derm1", it.item))
    text = page_text(at)
    with open(env.key_dir / "key.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    secrets = {r["participant"] for r in rows} | {r["timepoint"] for r in rows} | {
        r["source_file"] for r in rows} | {str(env.rater_dir), str(env.db), env.rs.set_id}
    assert [s for s in secrets if s in text] == []
    assert rows[0]["code"] in text or any(r["code"] in text for r in rows)


def test_the_next_photo_is_prefetched(env):
    at = signed_in(env)
    nxt = env.rs.worklist("derm1").items[1].photos[0]
    html = "".join(md.value for md in at.markdown)
    assert re.search(f'class="assess-prefetch" src="assess/photo/[0-9a-f]{{32}}\\.[0-9]+\\.[^/"]+'
                     f'/display/{nxt}\\.jpg"', html)


# ----------------------------------------------------------------------------- single sign-on


@pytest.fixture
def sso_env(env, tmp_path, monkeypatch):
    accounts = tmp_path / "raters.csv"
    accounts.write_text("account,rater\nDr.One@Clinic.example,derm1\ntwo@clinic.example,derm2\n")
    monkeypatch.setenv(rate.ENV_SSO, str(accounts))
    return env


def test_behind_single_sign_on_a_logged_out_visitor_sees_only_the_sign_in_button(sso_env):
    at = AppTest.from_file(APP, default_timeout=30)
    at.user = {"is_logged_in": False}
    at.run()
    assert shown(at) is None
    assert [b.key for b in at.button] == ["sso-signin"]
    assert not at.text_input


def test_behind_single_sign_on_the_account_decides_the_rater(sso_env):
    at = sso_page({"is_logged_in": True, "email": "dr.one@clinic.example"})
    assert shown(at) == sso_env.rs.worklist("derm1").items[0].item
    click(at, level_key(sso_env, "derm1", shown(at)))
    assert list(events(sso_env)["rater"]) == ["derm1"]


def test_behind_single_sign_on_an_account_not_on_the_list_is_turned_away(sso_env):
    at = AppTest.from_file(APP, default_timeout=30)
    at.user = {"is_logged_in": True, "email": "someone@elsewhere.example"}
    at.run()
    assert shown(at) is None
    assert "not on the list of raters" in at.error[0].value


def test_the_guide_shows_the_scales_reference_photos_with_their_levels(make_rater_set, tmp_path,
                                                                 monkeypatch):
    rater_dir, _, access = make_rater_set(name="refs", references=True)
    monkeypatch.setenv(rate.ENV_RATER_DIR, str(rater_dir))
    monkeypatch.setenv(rate.ENV_DB, str(tmp_path / "r.sqlite"))
    rs = rate.load_rater_set(rater_dir)
    assert sorted(rs.references["wsrs"]) == [1, 2, 3, 4, 5]
    at = sign_in(open_app(), "derm1", access["derm1"])
    wl = rs.worklist("derm1")
    while wl.items[wl.index[shown(at)]].scale != "wsrs":
        click(at, "nav-forward")
    assert not at.get("image")  # the guide opens on demand
    click(at, "guide")
    images = at.get("image")
    captions = [img.proto.imgs[0].caption for img in images]
    assert captions == [f"{lv.value} · {lv.label}" for lv in rs.scales["wsrs"].levels]
    assert all(img.proto.imgs[0].url.startswith("/mock/media/") for img in images)


def test_a_saved_comment_is_shown_again_with_its_item_and_not_with_the_next(env):
    at = signed_in(env)
    first = shown(at)
    assert not at.text_input  # the comment box opens on demand
    click(at, "comment-open")
    at.text_input(key="comment").input("freckles")
    click(at, level_key(env, "derm1", first))
    assert not at.text_input and at.button(key="comment-open")
    click(at, "nav-back")
    assert shown(at) == first
    assert at.text_input(key="comment").value == "freckles"

# ----------------------------------------------------------------------------- signing


def all_rated(env, at: AppTest) -> AppTest:
    for it in env.rs.worklist("derm1").items:
        click(at, level_key(env, "derm1", it.item))
    at.checkbox(key="lock-sure").check().run()
    return at


def test_submitting_shows_the_meaning_and_signs_with_the_access_code_entered_again(env):
    at = all_rated(env, signed_in(env))
    assert any("my own independent assessment" in m.value for m in at.markdown)
    at.text_input(key="lock_code").input(env.access["derm1"])
    click(at, "lock")
    with closing(store.connect(env.db)) as conn:
        sig = store.signature(conn, env.rs.set_id, "derm1")
    assert (sig.signer, sig.auth_method, sig.account) == ("derm1", "access code", None)
    assert sig.meaning == "I confirm these ratings are my own independent assessment"
    assert any(sig.hash[:12] in m.value for m in at.markdown)  # the receipt is shown
    assert store.verify(env.db).check().worklists[(env.rs.set_id, "derm1")].head == sig.hash


@pytest.mark.parametrize("code", ["", "WRONG-CODE-0000", "other rater's"])
def test_a_wrong_access_code_at_submitting_is_refused_and_nothing_is_locked(env, code):
    at = all_rated(env, signed_in(env))
    if code == "other rater's":
        code = env.access["derm2"]
    at.text_input(key="lock_code").input(code)
    click(at, "lock")
    assert "not your access code" in at.error[0].value
    assert store.locks(env.db) == {}
    assert at.subheader[0].value == "Every item is rated"  # still open, still signed in


def test_three_wrong_codes_at_submitting_sign_the_session_out(env):
    at = all_rated(env, signed_in(env))
    for _ in range(3):
        at.text_input(key="lock_code").input("WRONG-CODE-0000")
        click(at, "lock")
    assert at.text_input(key="signin_id") is not None and shown(at) is None
    assert store.locks(env.db) == {}


def test_behind_single_sign_on_signing_needs_a_fresh_sign_in(sso_env):
    import time

    at = sso_page({"is_logged_in": True, "email": "dr.one@clinic.example",
                   "iat": time.time() - 3600})
    all_rated(sso_env, at)
    assert at.button(key="lock").disabled and at.button(key="sso-resign")
    fresh = sso_page({"is_logged_in": True, "email": "dr.one@clinic.example",
                      "iat": time.time() - 5})
    fresh.checkbox(key="lock-sure").check().run()
    click(fresh, "lock")
    with closing(store.connect(sso_env.db)) as conn:
        sig = store.signature(conn, sso_env.rs.set_id, "derm1")
    assert (sig.auth_method, sig.account) == ("single sign-on", "dr.one@clinic.example")

# ----------------------------------------------------------------------------- only what was seen


def test_the_sets_minimum_time_on_the_photo_reaches_the_app(timed_env):
    assert timed_env.rs.min_view_ms == TIMED_MS


def test_a_rating_sooner_than_the_minimum_time_on_the_photo_is_refused_with_a_hint(timed_env):
    env = timed_env
    at = signed_in(env)
    item = shown(at)
    click(at, level_key(env, "derm1", item, 1))
    assert not env.db.exists() or events(env).empty
    assert shown(at) == item and progress_text(at) == "0 of 8 rated"
    assert hints(at) == [rate.TOO_SOON_HINT]
    time.sleep(TIMED_MS / 1000)
    click(at, level_key(env, "derm1", item, 1))
    df = events(env)
    assert list(df["item"]) == [item]
    assert df["seconds"][0] >= TIMED_MS / 1000  # the time on the photo is recorded as before
    assert shown(at) != item and hints(at) == []


def test_two_quick_ratings_rate_only_the_photo_that_was_on_screen_long_enough(timed_env):
    env = timed_env
    at = signed_in(env)
    first = shown(at)
    time.sleep(TIMED_MS / 1000)
    click(at, level_key(env, "derm1", first, 0))
    second = shown(at)
    assert second != first
    click(at, level_key(env, "derm1", second, 2))  # at once: the second photo was not seen
    assert list(events(env)["item"]) == [first]
    assert shown(at) == second and hints(at) == [rate.TOO_SOON_HINT]


def test_going_back_to_a_photo_starts_its_minimum_time_again(timed_env):
    env = timed_env
    at = signed_in(env)
    first = shown(at)
    time.sleep(TIMED_MS / 1000)
    click(at, level_key(env, "derm1", first, 0))
    click(at, "nav-back")
    assert shown(at) == first
    click(at, level_key(env, "derm1", first, 3))
    df = events(env)
    assert list(df["revision"]) == [1] and hints(at) == [rate.TOO_SOON_HINT]


def test_a_pair_question_answered_too_soon_is_not_kept(timed_pairs_env):
    env = timed_pairs_env
    at = signed_in(env)
    item = shown(at)
    click(at, "better-better_right")
    assert hints(at) == [rate.TOO_SOON_HINT]
    time.sleep(TIMED_MS / 1000)
    click(at, "first-cannot_tell")  # the first question was refused: nothing is saved yet
    assert (not env.db.exists() or events(env).empty) and shown(at) == item
    click(at, "better-better_right")
    df = events(env)
    assert list(zip(df["item"], df["better"], df["first"])) == [(item, "better_right", "cannot_tell")]


def test_signing_in_and_out_with_a_code_is_in_the_audit_log(env):
    at = signed_in(env)
    click(at, "signout")
    assert at.text_input(key="signin_id") is not None
    assert [(e.event, e.method, e.rater) for e in store.audit_log(env.db, env.rs.set_id)] == [
        ("sign-in", "access code", "derm1"), ("sign-out", "access code", "derm1")]
