"""The rating app: layout and widgets only.

Started by ``assess rate`` (see ``assess.rate.serve``). Every decision and every read or write of a
rating goes through ``assess.rate.Worklist`` for the signed-in rater; the state shown comes from the
database on every run, ``st.session_state`` only keeps the sign-in, the position the rater moved to
and the time on screen. Each answer is saved in its button's callback, before the page moves on.
When the database cannot be reached (a PostgreSQL server restarting), an answer is not shown as
saved: the page says so and shows the state last read in the session until the database is back.

The photo is the first element of every run (the browser starts loading it before the controls
arrive), and the next item's photos are prefetched so that paging shows a cached image.

Only a photo that was seen can be rated. The server takes an answer only for the item on screen,
once it has been shown the set's ``min_view_ms`` (``assess.rate.check_seen``). In the page, a small
key guard (:data:`GUARD_JS`) drops auto-repeated key presses, holds rating presses and clicks until
the photo has finished loading and been on screen ``min_view_ms``, and after a rating press holds
the next until the page the press caused is on screen. Either refusal shows a hint.
"""

from __future__ import annotations

import html
import json
import math
import sys
import time

import streamlit as st

from assess import chain, rate, session, store
from assess.app import adjudication as adj_screen
from assess.app import training as train_screen
from assess.app import entry, screen

st.set_page_config(page_title="Rating", layout="wide", initial_sidebar_state="collapsed")

ss = st.session_state

CSS = """<style>
.block-container {padding: 0.75rem 1rem 0.5rem 1rem; max-width: 100%;}
header[data-testid="stHeader"] {display: none;}
.assess-photo {display: flex; justify-content: center; align-items: center; width: 100%;}
.assess-photo a {display: block; width: 100%;}
.assess-photo img {display: block; width: 100%; height: calc(100vh - 1.5rem); object-fit: contain;
  background: #808080; cursor: zoom-in;}
.assess-pair img {height: calc(100vh - 17rem);}
.assess-prefetch {position: absolute; left: -9999px; top: 0; width: 8px; height: 8px; opacity: 0;
  pointer-events: none;}
.assess-code {font-family: monospace; font-size: 1.05rem; font-weight: 600;}
.assess-state {color: #666; font-size: 0.9rem; margin-left: 0.5rem;}
.assess-progress {font-size: 0.875rem;}
.assess-bar {height: 0.3rem; margin-top: 0.3rem; background: #eee; border-radius: 0.15rem;}
.assess-bar div {height: 100%; background: #ff4b4b; border-radius: 0.15rem;}
.assess-hint {position: fixed; left: 50%; bottom: 1.5rem; transform: translateX(-50%); z-index: 1000;
  background: #31333f; color: #fff; padding: 0.45rem 0.9rem; border-radius: 0.4rem;
  font-size: 0.95rem; pointer-events: none; animation: assess-hint 2.5s forwards;}
@keyframes assess-hint {0%, 70% {opacity: 1;} 100% {opacity: 0;}}
.st-key-assess-guard, .st-key-assess-session {display: none;}
</style>"""
CSS = CSS.replace("</style>", screen.CSS + "</style>")

#: The page's key guard (``key_guard.js``, see the module docstring); ``__MIN_VIEW_MS__`` and
#: ``__HINT__`` are filled in. It listens in the capture phase on ``window``, before Streamlit's
#: own shortcut handler (on ``document``) and React's click handler (on the app's root).
GUARD_JS = (rate.APP_SCRIPT.parent / "key_guard.js").read_text(encoding="utf-8")
#: After a sign-in: the page trades the one-time grant for the session cookie, then reloads.
SESSION_JS = (rate.APP_SCRIPT.parent / "session_cookie.js").read_text(encoding="utf-8")


def _config_now():
    """(rater set, database, single sign-on accounts or None), read once per process."""
    return rate.app_config()


def _my_worklist() -> tuple[rate.Worklist, object]:
    """The signed-in rater's worklist and the database (callbacks and runs use only this)."""
    return rate.app_worklist(ss["_rater"]), _config_now()[1]


def _session_ended() -> bool:
    """Whether this page's session ended meanwhile (sign-out elsewhere, revocation): then nothing
    is saved and the run shows the sign-in."""
    rater_set, db, _ = _config_now()
    rater = ss.get("_rater")
    ended = not rater or signed_in_session(rater_set, db) != rater
    if not ended:
        ss["_session_checked"] = rater  # the rest of this run need not ask the database again
    return ended


# ----------------------------------------------------------------------------- callbacks


def _client() -> str:
    return rate.client_of(st.context.ip_address, st.context.headers.get("X-Forwarded-For"))


def _on_sign_in() -> None:
    rater_set, db, _ = _config_now()
    rater = (ss.get("signin_id") or "").strip()
    grant = None
    try:
        check = adj_screen.sign_in if adj_screen.is_adjudicator(rater_set, rater) else rate.sign_in
        result = check(rater_set, db, rater, ss.get("signin_code") or "", _client())
        if result.ok:
            grant = session.make_grant(session.key_of(db), rater_set.set_id, rater, time.time())
    except store.StoreError as exc:
        print(f"assess rate: sign-in not checked: {exc}", file=sys.stderr, flush=True)
        result = None
    ss["signin_code"] = ""
    if grant is not None:
        ss.clear()
        ss["_grant"] = grant
    else:
        ss["_signin_failed"] = result or rate.SignIn(False, checked=False)


def _end_session() -> None:
    """Sign-out: the session ends in the database (every process, every photo link)."""
    rater_set, db, _ = _config_now()
    if ss.get("_access") is not None:
        try:
            session.end(db, rater_set.set_id, ss["_access"].handle)
        except store.StoreError as exc:
            print(f"assess rate: session not ended: {exc}", file=sys.stderr, flush=True)


def _on_sign_out() -> None:
    rater_set, db, sso = _config_now()
    try:
        rate.audit(db, rater_set, "sign-out", "single sign-on" if sso is not None else "access code",
                   _client(), rater=ss.get("_rater"),
                   account=str(st.user.get("email") or "") if sso is not None else None)
    except store.StoreError as exc:
        print(f"assess rate: sign-out not recorded: {exc}", file=sys.stderr, flush=True)
    _end_session()
    ss.clear()
    if sso is not None:
        st.logout()


def _leave_screen() -> None:
    """Add the time the current item was on screen to its running total."""
    on = ss.get("_onscreen")
    if on:
        item, since = on
        ss.setdefault("_time", {})[item] = ss.get("_time", {}).get(item, 0.0) + time.monotonic() - since
        ss["_onscreen"] = None


def _timing(item: str) -> tuple[str | None, float | None]:
    """(shown_at, seconds on screen) of an item being answered now."""
    seconds = ss.get("_time", {}).get(item, 0.0)
    on = ss.get("_onscreen")
    if on and on[0] == item:
        seconds += time.monotonic() - on[1]
    return ss.get("_shown", {}).get(item), seconds


def _typed(item: str, box: str) -> str | None:
    """What the rater typed into a text box ("comment" or "why") while ``item`` was shown."""
    return ss.get(box) if ss.get("_boxes_for") == item else None


def _on_screen() -> rate.OnScreen | None:
    on = ss.get("_onscreen")
    return rate.OnScreen(*on) if on else None


def _too_soon(exc: rate.TooSoonError) -> None:
    """A press that came before its photo was seen: nothing saved, the rater sees a hint."""
    print(f"assess rate: not taken: {exc}", file=sys.stderr, flush=True)
    ss["_hint"] = rate.TOO_SOON_HINT


def _save(item: str, **answer) -> None:
    """Save an answer for the signed-in rater; on success the run moves on to the next item."""
    if _session_ended():
        return
    wl, db = _my_worklist()
    shown_at, seconds = _timing(item)
    try:
        wl.save(db, item, comment=_typed(item, "comment"), change_reason=_typed(item, "why"),
                shown_at=shown_at, seconds=seconds, on_screen=_on_screen(), **answer)
    except rate.TooSoonError as exc:
        _too_soon(exc)
        return
    except store.LockedError:
        ss["_error"] = "Your ratings are submitted and locked; they can no longer be changed."
        return
    except store.UnavailableError as exc:
        print(f"assess rate: not saved: {exc}", file=sys.stderr, flush=True)
        ss["_error"], ss["_db_down"] = NOT_SAVED_UNREACHABLE, True
        return
    except (store.StoreError, rate.RateError) as exc:
        # The details (they may name the database file) go to the server's log, not the page.
        print(f"assess rate: not saved: {exc}", file=sys.stderr, flush=True)
        ss["_error"] = ("Not saved: the rating could not be written. Try again; if it keeps "
                        "failing tell the study coordinator. Ratings given before are safe.")
        return
    for key in ("_time", "_shown", "_pending"):
        ss.get(key, {}).pop(item, None)
    ss["_onscreen"] = None
    ss["_mode"] = "rate"
    ss["_after"] = item  # the run shows the next unrated item after this one


#: The page's words when the ratings database cannot be reached (a PostgreSQL server restarting).
NOT_SAVED_UNREACHABLE = ("Not saved — the ratings database cannot be reached just now. Your "
                         "earlier ratings are safe. Wait a moment, then give this answer again.")
UNREACHABLE = ("The ratings database cannot be reached just now. Your earlier ratings are safe. "
               "Wait a moment, then try again; if it keeps failing tell the study coordinator.")


def _state(wl: rate.Worklist, db):
    """The worklist's state from the database, or ``None`` when it cannot be reached.

    A save that just failed to reach the database (``_db_down``) is not followed by a read that
    would wait as long again: the run shows the state last read in this session, with the save's
    message, so the rater can give the answer again on the same screen.
    """
    if not ss.pop("_db_down", False):
        try:
            ss["_state"] = wl.state(db)
            return ss["_state"]
        except store.UnavailableError as exc:
            print(f"assess rate: not read: {exc}", file=sys.stderr, flush=True)
            ss.setdefault("_error", UNREACHABLE)
    return ss.get("_state")


def _on_score(item: str, value: int | float) -> None:
    _save(item, score=value)


def _on_pair(item: str, question: str, value: str) -> None:
    try:
        rate.check_seen(item, _on_screen(), _config_now()[0].min_view_ms)
    except rate.TooSoonError as exc:
        _too_soon(exc)
        return
    pending = ss.setdefault("_pending", {}).setdefault(item, {})
    pending[question] = value
    if "better" in pending and "first" in pending:
        _save(item, better=pending["better"], first=pending["first"])


def _on_cannot(item: str, reason: str) -> None:
    if reason == "other" and not (_typed(item, "comment") or "").strip():
        ss["_mode"] = "other"
        return
    _save(item, cannot_assess=reason)


def _on_mode(mode: str) -> None:
    ss["_mode"] = mode


def _on_comment_save(item: str) -> None:
    """Enter in the comment box of an answered item: the same answer again, with the comment."""
    wl, db = _my_worklist()
    cur = wl.state(db).current.get(item)
    if cur is not None:
        _save(item, score=cur.score, better=cur.better, first=cur.first,
              cannot_assess=cur.cannot_assess)


def _on_pause(paused: bool) -> None:
    """Pause: the clock of the photo on screen stops (and the photo is hidden) until continued."""
    _leave_screen()
    ss["_paused"] = paused


def _on_guide() -> None:
    ss["_guide"] = not ss.get("_guide")


def _on_goto(target: str | None) -> None:
    _leave_screen()
    ss["_pos"] = target
    ss["_mode"] = "rate"


#: Wrong access codes at signing before the session is signed out.
SIGN_ATTEMPTS = 3


def _on_lock() -> None:
    """Sign and lock: the access code re-entered, or the account of a fresh single sign-on."""
    if _session_ended():
        return
    wl, db = _my_worklist()
    sso = _config_now()[2] is not None
    code = ss.get("lock_code") or ""
    ss["lock_code"] = ""
    try:
        if sso:
            if not rate.recent_sign_in(st.user, time.time()):
                rate.audit(db, wl.set, "lock refused", "single sign-on", _client(), rater=wl.rater,
                           account=str(st.user.get("email") or ""),
                           detail="the single sign-on was not within the last 5 minutes")
                ss["_error"] = "Not submitted: sign in again to sign, then submit within 5 minutes."
                return
            wl.sign_and_lock(db, sso_account=str(st.user.get("email") or ""), client=_client())
        else:
            wl.sign_and_lock(db, code=code, client=_client())
    except rate.SignatureError:
        ss["_sign_failures"] = ss.get("_sign_failures", 0) + 1
        if ss["_sign_failures"] >= SIGN_ATTEMPTS:
            _end_session()
            ss.clear()
            ss["_signin_failed"] = rate.SignIn(False)
            return
        ss["_error"] = ("Not submitted: that is not your access code. Enter the access code you "
                        "signed in with to sign your ratings.")
    except (store.StoreError, rate.RateError) as exc:
        print(f"assess rate: not locked: {exc}", file=sys.stderr, flush=True)
        ss["_error"] = "Not submitted: check that every item is rated, then try again."


# ----------------------------------------------------------------------------- pieces


def _img(code: str, css_class: str = "assess-photo") -> str:
    access = ss["_access"]
    return screen.photo_html(code, rate.display_url(code, access), rate.full_url(code, access),
                             css_class=css_class)


def _prefetch(codes: list[str]) -> str:
    return "".join(f'<img class="assess-prefetch" src="{rate.display_url(c, ss["_access"])}" '
                   f'alt="" aria-hidden="true">' for c in codes)


def photo_first() -> None:
    """Pause a few milliseconds after the photo, before the controls.

    The photo then reaches the browser alone and is drawn at once, instead of waiting for the
    browser to lay out the twenty-odd controls that would otherwise arrive with it (the controls
    follow within the same few milliseconds, long before the next key press).
    """
    time.sleep(0.008)


def ready_marker(item: str, rated: int, mode: str) -> None:
    """The run's last element (:func:`assess.app.screen.ready_html`)."""
    st.markdown(screen.ready_html(item, mode, rated), unsafe_allow_html=True)


def key_guard(min_view_ms: int) -> None:
    """The page's key guard (:data:`GUARD_JS`), in a hidden container; it installs itself once."""
    script = screen.page_script(GUARD_JS.replace("__MIN_VIEW_MS__", str(int(min_view_ms)))
                                .replace("__HINT__", json.dumps(rate.TOO_SOON_HINT)))
    with st.container(key="assess-guard"):
        st.html(script, unsafe_allow_javascript=True)
        st.html(screen.zoom_script(), unsafe_allow_javascript=True)


def too_soon_hint() -> None:
    """The hint of a press the server refused (see :func:`_too_soon`), shown once."""
    text = ss.pop("_hint", None)
    if text:
        st.markdown(f'<div class="assess-hint" role="status">{html.escape(text)}</div>',
                    unsafe_allow_html=True)


def progress_and_nav(wl: rate.Worklist, state, pos: int | None, arrows: bool = True) -> None:
    """Progress and Back/Next; ``arrows=False`` leaves the arrow keys to a VAS slider."""
    prog = rate.progress(wl.items, state.current, state.pace)
    first = rate.first_unrated(wl.items, state.current)
    # Plain HTML rather than st.progress: the rating page is redrawn on every answer.
    st.markdown(f'<div class="assess-progress">{html.escape(prog.text)}<div class="assess-bar">'
                f'<div style="width: {100 * prog.fraction:.1f}%"></div></div></div>',
                unsafe_allow_html=True)
    if pos is None:
        back, fwd = wl.items[-1].item, None
    else:
        back = wl.items[pos - 1].item if pos > 0 else None
        fwd = wl.items[pos + 1].item if pos + 1 < len(wl.items) else "__summary__"
    with st.container(horizontal=True, gap="small"):
        st.button("Back", icon=":material/arrow_back:", shortcut="Left" if arrows else None,
                  disabled=back is None,
                  on_click=_on_goto, args=(back,), key="nav-back")
        st.button("Next", icon=":material/arrow_forward:", shortcut="Right" if arrows else None,
                  disabled=fwd is None,
                  on_click=_on_goto, args=(fwd,), key="nav-forward")
        st.button("First unrated", shortcut="Home", disabled=first is None or first == pos,
                  on_click=_on_goto, args=(None,), key="nav-first")


def _state_text(rater_set, it: rate.Item, current: store.Event | None) -> str:
    if current is None:
        text = "not rated yet"
    elif current.cannot_assess:
        text = "cannot assess: " + dict((v, lab) for v, lab, _ in rate.REASON_CHOICES)[current.cannot_assess]
    elif current.score is not None:
        text = entry.state_text(rater_set.scales[it.scale], current.score)
    else:
        better = dict((v, lab) for v, lab, _ in rate.BETTER_CHOICES)[current.better]
        first = dict((v, lab) for v, lab, _ in rate.FIRST_CHOICES)[current.first]
        text = f"rated {better}; {first}"
    if current is not None and current.revision > 1:
        text += f" (changed {current.revision - 1}×)"
    return text


def heading(rater_set, it: rate.Item, current: store.Event | None, title: str) -> None:
    """One block: the item's code, its current rating (if any) and what is asked."""
    st.markdown(f'<span class="assess-code">{html.escape(it.item)}</span>'
                f'<span class="assess-state">{html.escape(_state_text(rater_set, it, current))}'
                f'</span><br><b class="assess-title">{html.escape(title)}</b>', unsafe_allow_html=True)


def _on_open_comment() -> None:
    ss["_comment_open"] = True


def comment_inputs(item: str, current: store.Event | None, mode: str) -> None:
    """The optional comment (a button opens it) and, for a rated item, the reason for a change."""
    if ss.get("_boxes_for") != item:  # another item: the boxes start from its saved comment
        ss["comment"] = current.comment or "" if current is not None else ""
        ss["why"] = ""
        ss["_boxes_for"] = item
        ss["_comment_open"] = False
    if mode == "other":
        st.text_input("Why can it not be assessed?", key="comment", max_chars=500,
                      placeholder="Enter saves it as the reason")
    elif ss.get("_comment_open") or ss.get("comment"):
        st.text_input("Comment (optional)", key="comment", max_chars=500,
                      placeholder="Enter saves it with the rating" if current is not None
                      else "Saved with the level you choose")
        if current is not None:
            st.button("Save comment", key="comment-save", on_click=_on_comment_save, args=(item,),
                      type="tertiary")
    else:
        st.button("Add a comment", key="comment-open", shortcut="M", icon=":material/edit_note:",
                  width="stretch", on_click=_on_open_comment)
    if current is not None:
        st.text_input("Reason for the change (optional)", key="why", max_chars=500)


def cannot_assess_panel(it: rate.Item, current: store.Event | None, mode: str) -> None:
    for value, label, key in rate.REASON_CHOICES:
        st.button(label, key=f"reason-{value}", shortcut=key, width="stretch",
                  type="primary" if current is not None and current.cannot_assess == value else "secondary",
                  on_click=_on_cannot, args=(it.item, value))
    if mode == "other":
        st.warning("Say in the box below what is wrong with the photo, then press Enter (or "
                   "Other again).")
    st.button("Cancel", key="reason-cancel", shortcut="Esc", on_click=_on_mode, args=("rate",))


def references(rater_set, it: rate.Item) -> None:
    """The photonumeric guide beside the photo (``G`` opens and closes it, ``Esc`` closes it)."""
    refs = rater_set.references.get(it.scale)
    if not refs:
        return
    scale = rater_set.scales[it.scale]
    st.html(screen.guide_css(len(refs)))
    with st.container(key="assess-guide", gap="small"):
        for value, path in sorted(refs.items()):
            st.image(str(path), caption=f"{value} · {scale.level(value).label}", width="stretch")
        st.button("Close the guide", key="guide-close", shortcut="Esc", type="tertiary",
                  on_click=_on_guide)


def tools(rater_set, it: rate.Item) -> None:
    """Full resolution, the guide, the pause and signing out, in one row."""
    with st.container(horizontal=True, gap="small"):
        st.link_button("Full size", rate.full_url(it.photos[0], ss["_access"]), shortcut="F",
                       icon=":material/open_in_new:")
        if rater_set.references.get(it.scale):
            st.button("Guide", key="guide", shortcut="G", icon=":material/photo_library:",
                      type="primary" if ss.get("_guide") else "secondary", on_click=_on_guide)
        st.button("Pause", key="pause", shortcut="P", icon=":material/pause:", on_click=_on_pause,
                  args=(True,))
        footer()


def pause_screen(wl: rate.Worklist, state, it: rate.Item) -> None:
    """The paused screen: no photo, the clock stopped, one button to go on."""
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        progress_and_nav(wl, state, wl.index[it.item])
        st.markdown(screen.paused_html(it.item), unsafe_allow_html=True)
        st.button("Continue", key="resume", shortcut="P", type="primary", icon=":material/play_arrow:",
                  width="stretch", on_click=_on_pause, args=(False,))


def footer() -> None:
    st.button("Sign out", key="signout", on_click=_on_sign_out, type="tertiary")


# ----------------------------------------------------------------------------- screens


def sign_in_screen() -> None:
    st.html(CSS)
    _, mid, _ = st.columns([1, 1.2, 1])
    with mid:
        st.header("Photo rating")
        with st.form("signin", enter_to_submit=True):
            st.text_input("Rater id", key="signin_id")
            st.text_input("Access code", type="password", key="signin_code")
            st.form_submit_button("Sign in", type="primary", on_click=_on_sign_in)
        failed = ss.get("_signin_failed")
        if failed:
            n = math.ceil(failed.wait_seconds)
            wait = f"{n} second{'s' if n != 1 else ''}"
            if failed.checked:
                st.error("Rater id or access code not recognised. Check the details you were given "
                         "and try again." + (f" Wait {wait} first." if failed.wait_seconds else ""))
            elif failed.wait_seconds:
                st.error(f"Too many attempts that were not recognised. Wait {wait}, then try again.")
            else:
                st.error("Sign-in is not possible just now. Try again; if it keeps failing tell "
                         "the study coordinator.")


def session_screen(grant: str) -> None:
    """Right after a sign-in: the page trades the grant for the session cookie and reloads."""
    st.html(CSS)
    _, mid, _ = st.columns([1, 1.2, 1])
    with mid:
        st.header("Photo rating")
        st.write("Signing in…")
        st.markdown('<div class="assess-session-problem" role="alert" style="display: none; '
                    'color: #b00020;"></div>', unsafe_allow_html=True)
        st.button("Back to sign-in", key="session-back", on_click=ss.clear, type="tertiary")
    script = SESSION_JS
    for name, value in (("__URL__", session_route()), ("__GRANT__", grant),
                        ("__FAILED__", "Sign-in is not possible just now. Try again; if it keeps "
                                       "failing tell the study coordinator."),
                        ("__REFUSED__", "This browser does not keep the sign-in. Allow cookies "
                                        "for this site, then sign in again.")):
        script = script.replace(name, json.dumps(value))
    with st.container(key="assess-session"):
        st.html("<script>" + script + "</script>", unsafe_allow_javascript=True)


def session_route() -> str:
    from assess import web

    return web.SESSION_PATH


def sso_screen(problem: str | None) -> None:
    """Sign-in through the site's identity provider (``assess rate --sso-raters``)."""
    st.html(CSS)
    _, mid, _ = st.columns([1, 1.2, 1])
    with mid:
        st.header("Photo rating")
        if problem:
            st.error(problem)
            st.button("Sign out", key="sso-signout", on_click=_on_sign_out)
        else:
            st.button("Sign in with your organisation's account", key="sso-signin", type="primary",
                      on_click=st.login)


def single_screen(rater_set, wl, state, pos: int, mode: str, prefetch: list[str]) -> None:
    it = wl.items[pos]
    current = state.current.get(it.item)
    scale = rater_set.scales[it.scale]
    guide = bool(ss.get("_guide") and rater_set.references.get(it.scale) and mode == "rate")
    if guide:
        photo, ref, side = st.columns([2.1, 0.75, 1.15], gap="small")
    else:
        photo, side = st.columns([2.7, 1.15], gap="medium")
    with photo:
        st.markdown(_img(it.photos[0]) + _prefetch(prefetch), unsafe_allow_html=True)
    photo_first()
    if guide:
        with ref:
            references(rater_set, it)
    with side:
        progress_and_nav(wl, state, pos, arrows=scale.entry != "slider")
        heading(rater_set, it, current, screen.title(it.region, scale.name, it.view) if mode == "rate"
                else "Cannot assess: why?")
        st.markdown(screen.scale_marker(scale.name), unsafe_allow_html=True)
        if mode in ("cannot", "other"):
            cannot_assess_panel(it, current, mode)
        elif not entry.scale_entry(scale, it.item, current, _on_score):
            for lv in scale.levels:
                label = f"**{lv.value} · {lv.label}**"
                if lv.description:
                    label += f" — {lv.description}"
                st.button(label, key=f"level-{lv.value}", shortcut=str(lv.value), wrap=True,
                          width="stretch",
                          type="primary" if current is not None and current.score == lv.value else "secondary",
                          on_click=_on_score, args=(it.item, lv.value))
        if mode not in ("cannot", "other"):
            st.button("Cannot assess", key="cannot", shortcut="X", icon=":material/block:",
                      width="stretch", on_click=_on_mode, args=("cannot",))
        comment_inputs(it.item, current, mode)
        tools(rater_set, it)


def pair_screen(rater_set, wl, state, pos: int, mode: str, prefetch: list[str]) -> None:
    it = wl.items[pos]
    current = state.current.get(it.item)
    left, right = st.columns(2, gap="small")
    with left:
        st.markdown(_img(it.photos[0], "assess-photo assess-pair"), unsafe_allow_html=True)
    with right:
        st.markdown(_img(it.photos[1], "assess-photo assess-pair") + _prefetch(prefetch),
                    unsafe_allow_html=True)
    photo_first()
    info, answers = st.columns([1, 2.6], gap="medium")
    with info:
        progress_and_nav(wl, state, pos)
        heading(rater_set, it, current, screen.title(it.region, "left and right photo", it.view)
                if mode == "rate" else "Cannot assess: why?")
        comment_inputs(it.item, current, mode)
    with answers:
        if mode in ("cannot", "other"):
            cannot_assess_panel(it, current, mode)
        else:
            pending = ss.get("_pending", {}).get(it.item, {})
            shown_better = pending.get("better", current.better if current else None)
            shown_first = pending.get("first", current.first if current else None)
            question = screen.pair_question(it.region, rater_set.scales[it.scale].name)
            st.markdown(f"**{html.escape(question)}**")
            with st.container(horizontal=True, gap="small"):
                for value, label, key in rate.BETTER_CHOICES:
                    st.button(label, key=f"better-{value}", shortcut=key, width="stretch",
                              type="primary" if shown_better == value else "secondary",
                              on_click=_on_pair, args=(it.item, "better", value))
            st.markdown("**Which was taken first?**")
            with st.container(horizontal=True, gap="small"):
                for value, label, key in rate.FIRST_CHOICES:
                    st.button(label, key=f"first-{value}", shortcut=key, width="stretch",
                              type="primary" if shown_first == value else "secondary",
                              on_click=_on_pair, args=(it.item, "first", value))
                st.button("Cannot assess", key="cannot", shortcut="X", icon=":material/block:",
                          width="stretch", on_click=_on_mode, args=("cannot",))
        with st.container(horizontal=True, gap="small"):
            st.link_button("Left, full size", rate.full_url(it.photos[0], ss["_access"]))
            st.link_button("Right, full size", rate.full_url(it.photos[1], ss["_access"]))
            st.button("Pause", key="pause", shortcut="P", icon=":material/pause:",
                      on_click=_on_pause, args=(True,))
            footer()


def summary_screen(wl: rate.Worklist, state) -> None:
    st.html(CSS)
    first = rate.first_unrated(wl.items, state.current)
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        progress_and_nav(wl, state, None)
        if first is not None:
            st.subheader("Not finished yet")
            left = len(wl.items) - len(state.current)
            st.write(f"{left} of {len(wl.items)} items are not rated yet.")
            st.button("Go to the first unrated item", type="primary", key="goto-first",
                      shortcut="Enter", on_click=_on_goto, args=(None,))
        else:
            st.subheader("Every item is rated")
            st.write("You can still go back and change any rating. When you are done, submit: "
                     "after that your ratings can no longer be changed.")
            sure = st.checkbox("I have finished and want to submit my ratings", key="lock-sure")
            ready = signature_inputs()
            st.button("Submit and lock", type="primary", key="lock", disabled=not (sure and ready),
                      on_click=_on_lock)
            st.button("Review from the start", key="review", on_click=_on_goto,
                      args=(wl.items[0].item,))
        footer()


def signature_inputs() -> bool:
    """What signing asks: the meaning, and the access code again (or a fresh single sign-on).

    Returns whether the rater can sign now.
    """
    st.markdown(f"**Submitting is your electronic signature.** By signing you state: "
                f"*{html.escape(chain.MEANING)}.*")
    if _config_now()[2] is None:
        st.text_input("Your access code, to sign", type="password", key="lock_code")
        return True
    if rate.recent_sign_in(st.user, time.time()):
        st.caption(f"You sign as {html.escape(str(st.user.get('email') or ''))}.")
        return True
    st.info("To sign, sign in again with your organisation's account; then submit within "
            "5 minutes.")
    st.button("Sign in again to sign", key="sso-resign", on_click=_on_sign_out)
    return False


def locked_screen(wl: rate.Worklist, state) -> None:
    st.html(CSS)
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        st.subheader("Submitted")
        st.success(f"All {len(wl.items)} ratings are submitted and locked. Thank you.")
        sig = state.signature
        if sig is not None and sig.hash:
            st.markdown(f"Signed {html.escape(sig.locked_at[:16].replace('T', ' '))} UTC by "
                        f"{html.escape(str(sig.signer))}: *{html.escape(str(sig.meaning))}.* "
                        f"Receipt <code>{chain.short(sig.hash)}</code> (the study coordinator may "
                        "ask you for it).", unsafe_allow_html=True)
        footer()


# ----------------------------------------------------------------------------- main


def signed_in_session(rater_set, db) -> str | None:
    """The rater of this browser's live session (its cookie), or ``None``; resumes the position.

    Checked on every run, so a session ended elsewhere (sign-out in another tab, ``assess sessions
    revoke``) signs this page out at its next run.
    """
    cookie = st.context.cookies.get(session.cookie_name(rater_set.set_id))
    try:
        token = session.signed_in(db, rater_set.set_id, cookie, time.time())
    except store.StoreError as exc:
        print(f"assess rate: session not checked: {exc}", file=sys.stderr, flush=True)
        # The database cannot answer just now (a server restarting): this page keeps the rater it
        # had, so a save can say it was not saved; nothing can be written until the database is
        # back, and the next run checks the session again.
        return ss.get("_rater") or None
    if token is None or (token.rater not in rater_set.raters
                         and not adj_screen.is_adjudicator(rater_set, token.rater)):
        if ss.get("_rater"):
            ss.clear()
        return None
    if ss.get("_rater") != token.rater:  # a new page of this session: resume where the rater was
        ss.clear()
        ss["_rater"] = token.rater
        ss["_access"] = session.PhotoAccess(session.key_of(db), token.handle)
        try:
            ss["_pos"] = session.last_position(db, rater_set.set_id, token.rater)
        except store.StoreError as exc:
            print(f"assess rate: position not read: {exc}", file=sys.stderr, flush=True)
    return token.rater


def note_position(rater_set, db, rater: str, item: str) -> None:
    """Keep the item on screen in the database (once per item), for a later page to resume on."""
    if ss.get("_noted") == item:
        return
    try:
        session.note_position(db, rater_set.set_id, rater, item)
        ss["_noted"] = item
    except store.StoreError as exc:
        print(f"assess rate: position not noted: {exc}", file=sys.stderr, flush=True)


def main() -> None:
    rater_set, db, sso = _config_now()
    if ss.get("_grant"):
        session_screen(ss["_grant"])
        ready_marker("__session__", 0, "session")
        return
    checked = ss.pop("_session_checked", None)  # by this run's callback, a moment ago
    rater = checked if checked and checked == ss.get("_rater") else signed_in_session(rater_set, db)
    if sso is not None:
        if not st.user.is_logged_in:
            sso_screen(None)
            ready_marker("__signin__", 0, "signin")
            return
        token = (st.user.get("email"), st.user.get("sub"), st.user.get("auth_time"),
                 st.user.get("iat"))
        if ss.get("_sso_token") != token:  # a new sign-in at the provider: map and audit it once
            try:
                ss["_sso_rater"] = rate.sso_sign_in(rater_set, db, sso, st.user.to_dict(),
                                                    _client())
            except store.StoreError as exc:
                print(f"assess rate: sign-in not recorded: {exc}", file=sys.stderr, flush=True)
                sso_screen("Sign-in is not possible just now. Try again; if it keeps failing "
                           "tell the study coordinator.")
                return
            ss["_sso_token"] = token
        account_rater = ss.get("_sso_rater")
        if account_rater is None:
            sso_screen("Your account is not on the list of raters of this set. Ask the study "
                       "coordinator to add it.")
            ready_marker("__signin__", 0, "signin")
            return
        if rater != account_rater:  # signed in with the provider: now a session of our own
            ss.clear()
            ss["_grant"] = session.make_grant(session.key_of(db), rater_set.set_id, account_rater,
                                              time.time())
            session_screen(ss["_grant"])
            ready_marker("__session__", 0, "session")
            return
    if sso is None and adj_screen.is_adjudicator(rater_set, rater):
        adj_screen.main(rater_set, db, CSS, sign_out=_on_sign_out)
        return
    if not rater:
        sign_in_screen()
        ready_marker("__signin__", 0, "signin")
        return
    if train_screen.gate(rater_set, db, rater, CSS, key_guard, _on_sign_out):
        return  # a rater of a set with [qualification] who has not qualified yet
    wl = rate.app_worklist(rater)
    state = _state(wl, db)
    if ss.get("_error"):
        st.error(ss.pop("_error"))
    if state is None:
        st.button("Try again", key="retry", type="primary")
        ready_marker("__unavailable__", 0, "unavailable")
        return
    if state.locked_at:
        locked_screen(wl, state)
        ready_marker("__locked__", len(state.current), "locked")
        return

    after = ss.pop("_after", None)
    if after in wl.index:
        nxt = rate.next_unrated(wl.items, state.current, wl.index[after])
        ss["_pos"] = wl.items[nxt].item if nxt is not None else "__summary__"
    target = ss.get("_pos")
    if target == "__summary__":
        pos = None
    elif target in wl.index:
        pos = wl.index[target]
    else:
        pos = rate.first_unrated(wl.items, state.current)
    if pos is None:
        _leave_screen()
        summary_screen(wl, state)
        ready_marker("__summary__", len(state.current), "summary")
        note_position(rater_set, db, rater, "__summary__")
        return

    it = wl.items[pos]
    if ss.get("_paused"):
        _leave_screen()
        pause_screen(wl, state, it)
        st.html(CSS)
        ready_marker(it.item, len(state.current), "paused")
        return
    on = ss.get("_onscreen")
    if not on or on[0] != it.item:
        _leave_screen()
        ss["_onscreen"] = (it.item, time.monotonic())
    ss.setdefault("_shown", {}).setdefault(it.item, store.utc_now())
    mode = ss.get("_mode", "rate")
    # Prefetch what the rater most likely sees next: the next item and the next unrated one.
    ahead = [pos + 1] if pos + 1 < len(wl.items) else []
    nu = rate.next_unrated(wl.items, state.current, pos)
    if nu is not None and nu not in ahead and nu != pos:
        ahead.append(nu)
    prefetch = [code for i in ahead for code in wl.items[i].photos]
    if it.kind == "pair":
        pair_screen(rater_set, wl, state, pos, mode, prefetch)
    else:
        single_screen(rater_set, wl, state, pos, mode, prefetch)
    # The style sheet is the same element with the same text on every run, so the browser keeps
    # it instead of recomputing the page's styles; it comes after the photo so as not to delay it.
    st.html(CSS)
    key_guard(rater_set.min_view_ms)
    too_soon_hint()
    ready_marker(it.item, len(state.current), mode)
    note_position(rater_set, db, rater, it.item)


# Streamlit runs the script as __main__; a worker process started by "spawn" (the pixel pipeline
# in the same interpreter, as in the test suite) imports it as __mp_main__ and must not run it.
if __name__ == "__main__":
    main()
