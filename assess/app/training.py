"""The training screens of the rating app (qualification before live rating): layout and widgets.

The rating app (``rate_app.py``) calls :func:`gate` once a rater of a set with ``[qualification]``
is signed in: until the rater qualifies, the run shows the training worklist of their current
attempt, the feedback the study declares (``each``: the reference after every answer; ``end``: a
table at the end of the attempt; ``none``), and the attempt's result; only on a pass does
:func:`gate` let the live worklist through. Every decision and write goes through
:class:`assess.training.Trainee`; the standing is read from the database on every run.

Widget keys start with ``train-``; the ready marker's modes are ``training`` (a photo to rate),
``training-feedback``, ``training-result`` and ``training-refused``.
"""

from __future__ import annotations

import html
import os
import sys
import time

import streamlit as st

from assess import rate, store, training
from assess.app import screen

ss = st.session_state

__all__ = ["gate"]


@st.cache_resource(show_spinner=False)
def _reference(root: str, path: str | None):
    """Code → reference score, checked against the sealed set once per server process."""
    if not path:
        return None
    return training.load_reference(path, rate.load_rater_set(root))


def _trainee(rater_set, db, rater: str) -> training.Trainee:
    ref = _reference(str(rater_set.root), os.environ.get(training.ENV_REFERENCE))
    return training.Trainee(rater_set, rater, db, ref)


def _marker(item: str, mode: str, rated: int = 0) -> None:
    st.markdown(screen.ready_html(item, mode, rated), unsafe_allow_html=True)


def _on_answer(attempt: int, item: str, value) -> None:
    rater_set, db = ss["_train_config"]
    me = _trainee(rater_set, db, ss["_rater"])
    on = ss.get("_train_on")
    seconds = time.monotonic() - on[1] if on and on[0] == item else None
    try:
        me.worklist(attempt).save(db, item, score=value, seconds=seconds,
                                  shown_at=ss.get("_train_shown", {}).get(item),
                                  on_screen=rate.OnScreen(*on) if on else None)
    except rate.TooSoonError as exc:
        print(f"assess rate: not taken: {exc}", file=sys.stderr, flush=True)
        ss["_train_hint"] = rate.TOO_SOON_HINT
        return
    except store.LockedError:
        ss["_train_error"] = "This attempt is finished; its answers can no longer be changed."
        return
    except (store.StoreError, rate.RateError) as exc:
        print(f"assess rate: training answer not saved: {exc}", file=sys.stderr, flush=True)
        ss["_train_error"] = ("Not saved. Try again; if it keeps failing tell the study "
                              "coordinator.")
        return
    ss["_train_on"] = None
    if me.rule.feedback == "each":
        ss["_train_feedback"] = item


def _on_next_photo() -> None:
    ss["_train_feedback"] = None


def _on_new_attempt() -> None:
    ss["_train_result"] = None


def _on_live() -> None:
    ss["_train_result"] = None


def _level_label(scale, value) -> str:
    try:
        return f"{value:g} · {scale.level(value).label}"
    except (KeyError, ValueError, StopIteration, AttributeError):
        return f"{value:g}"


def _photo(code: str) -> str:
    return screen.photo_html(code, rate.display_url(code, ss["_access"]))


def _result_screen(me: training.Trainee, attempt: int, result, sign_out) -> None:
    standing = me.standing()
    _, mid, _ = st.columns([1, 1.8, 1])
    with mid:
        st.header(f"Training · attempt {attempt} of {me.rule.attempts}")
        if result.passed:
            st.success("You qualified: the live worklist is open.")
        else:
            st.error("Not qualified on this attempt: " + "; ".join(result.failures) + ".")
        st.markdown(f"Weighted κ **{result.kappa:.2f}** (95% CI {result.kappa_lower:.2f} to "
                    f"{result.kappa_upper:.2f}) · exact agreement **{result.exact:.0%}** · within "
                    f"one grade **{result.within_one:.0%}** · {result.n} photos")
        if me.rule.feedback == "end":
            wl = me.worklist(attempt)
            current = wl.state(me.db).current
            rows = [{"photo": it.item,
                     "your score": _level_label(me.set.scales[it.scale], current[it.item].score),
                     "reference": _level_label(me.set.scales[it.scale],
                                               me.reference[it.item])}
                    for it in wl.items if it.item in current and it.item in me.reference]
            st.dataframe(rows, hide_index=True)
        if result.passed:
            st.button("Go to the live worklist", key="train-live", type="primary",
                      on_click=_on_live)
        elif standing.state == "training":
            st.button(f"Start attempt {attempt + 1} (new order)", key="train-again",
                      type="primary", on_click=_on_new_attempt)
        else:
            st.warning("No attempt is left: please contact the study coordinator. Live rating "
                       "is not open for you.")
        st.button("Sign out", key="signout", on_click=sign_out, type="tertiary")
    _marker(f"__attempt-{attempt}__", "training-result")


def _refused_screen(me: training.Trainee, sign_out) -> None:
    _, mid, _ = st.columns([1, 1.8, 1])
    with mid:
        st.header("Training")
        st.warning(f"You did not qualify in the {me.rule.attempts} attempt(s) the study allows: "
                   "please contact the study coordinator. Live rating is not open for you.")
        st.button("Sign out", key="signout", on_click=sign_out, type="tertiary")
    _marker("__refused__", "training-refused")


def _photo_screen(me: training.Trainee, attempt: int, wl, current, pos: int, css: str,
                  key_guard, sign_out) -> None:
    it = wl.items[pos]
    feedback_for = ss.get("_train_feedback")
    if feedback_for in wl.index:
        it = wl.items[wl.index[feedback_for]]
    scale = me.set.scales[it.scale]
    answered = current.get(it.item)
    showing_feedback = feedback_for == it.item and answered is not None
    if not showing_feedback:
        on = ss.get("_train_on")
        if not on or on[0] != it.item:
            ss["_train_on"] = (it.item, time.monotonic())
        ss.setdefault("_train_shown", {}).setdefault(it.item, store.utc_now())
    photo, side = st.columns([2.7, 1.15], gap="medium")
    with photo:
        st.markdown(_photo(it.photos[0]), unsafe_allow_html=True)
    with side:
        done = sum(1 for x in wl.items if x.item in current)
        st.markdown(f'<div class="assess-progress">Training · attempt {attempt} of '
                    f"{me.rule.attempts} · {done} of {len(wl.items)} rated</div>",
                    unsafe_allow_html=True)
        st.markdown(f'<span class="assess-code">{html.escape(it.item)}</span>',
                    unsafe_allow_html=True)
        st.markdown(f"**{scale.name}**")
        if showing_feedback:
            ref = me.feedback(it.item, answered=True)
            st.markdown(f"Your score: **{_level_label(scale, answered.score)}**")
            if ref is not None:
                agree = "agrees with" if ref == answered.score else "differs from"
                st.info(f"Reference: **{_level_label(scale, ref)}** — your score {agree} the "
                        "expert consensus.")
            st.button("Next photo", key="train-next", type="primary", on_click=_on_next_photo)
        else:
            for lv in scale.levels:
                st.button(f"**{lv.value} · {lv.label}**", key=f"train-level-{lv.value}",
                          shortcut=str(lv.value), width="stretch",
                          on_click=_on_answer, args=(attempt, it.item, lv.value))
        st.button("Sign out", key="signout", on_click=sign_out, type="tertiary")
    st.html(css)
    key_guard(me.set.min_view_ms)
    hint = ss.pop("_train_hint", None)
    if hint:
        st.markdown(f'<div class="assess-hint" role="status">{html.escape(hint)}</div>',
                    unsafe_allow_html=True)
    _marker(it.item, "training-feedback" if showing_feedback else "training", len(current))


def gate(rater_set, db, rater: str, css: str, key_guard, sign_out) -> bool:
    """Show the training screen when ``rater`` has not qualified yet; ``False`` lets the live
    worklist through (no qualification in the set, or the rater qualified)."""
    if training.plan_of(rater_set) is None or rater not in rater_set.raters:
        return False
    ss["_train_config"] = (rater_set, db)
    try:
        me = _trainee(rater_set, db, rater)
    except training.TrainingError as exc:
        print(f"assess rate: training: {exc}", file=sys.stderr, flush=True)
        st.error("Training cannot start: the server has no reference scores for this set. Tell "
                 "the study coordinator.")
        _marker("__unavailable__", "unavailable")
        return True
    if ss.get("_train_error"):
        st.error(ss.pop("_train_error"))
    results = me.results()
    shown = ss.get("_train_result")
    if shown is not None and shown <= len(results):
        st.html(css)
        _result_screen(me, shown, results[shown - 1], sign_out)
        return True
    standing = me.standing()
    if standing.state == "qualified":
        return False
    if standing.state == "refused":
        st.html(css)
        _refused_screen(me, sign_out)
        return True
    attempt = standing.attempts_used + 1
    wl = me.worklist(attempt)
    current = {k: v for k, v in wl.state(db).current.items() if v.score is not None}
    pos = next((i for i, it in enumerate(wl.items) if it.item not in current), None)
    if pos is None and ss.get("_train_feedback") not in wl.index:
        try:
            result = me.finish(attempt)
        except training.TrainingError as exc:
            print(f"assess rate: training: {exc}", file=sys.stderr, flush=True)
            st.error("This attempt cannot be scored: the server has no reference scores for "
                     "this set. Tell the study coordinator.")
            _marker("__unavailable__", "unavailable")
            return True
        ss["_train_result"] = attempt
        st.html(css)
        _result_screen(me, attempt, result, sign_out)
        return True
    _photo_screen(me, attempt, wl, current, pos if pos is not None else 0, css, key_guard,
                  sign_out)
    return True
