"""The rating app: layout and widgets only.

Started by ``assess rate`` (see ``assess.rate.serve``). Every decision and every read or write of a
rating goes through ``assess.rate.Worklist`` for the signed-in rater; the state shown comes from the
database on every run, ``st.session_state`` only keeps the sign-in, the position the rater moved to
and the time on screen. Each answer is saved in its button's callback, before the page moves on.
"""

from __future__ import annotations

import html
import time

import streamlit as st

from assess import rate, store

st.set_page_config(page_title="Rating", layout="wide", initial_sidebar_state="collapsed")

ss = st.session_state

CSS = """
<style>
.block-container {padding-top: 0.6rem; padding-bottom: 0.5rem; max-width: 100%;}
header[data-testid="stHeader"] {display: none;}
.assess-photo {display: flex; justify-content: center; align-items: center; width: 100%;}
.assess-photo img {max-width: 100%; max-height: calc(100vh - 7.5rem); object-fit: contain;
  background: #222; cursor: zoom-in;}
.assess-pair img {max-height: calc(100vh - 16rem);}
.assess-prefetch {position: absolute; left: -9999px; top: 0; width: 8px; height: 8px; opacity: 0;
  pointer-events: none;}
.assess-code {font-family: monospace; font-size: 1.05rem; font-weight: 600;}
</style>
"""


@st.cache_resource(show_spinner=False)
def _config(rater_dir: str | None, db: str | None):
    return rate.app_config()


@st.cache_resource(show_spinner=False)
def _worklist(root: str, rater: str) -> rate.Worklist:
    rater_set, _ = _config_now()
    return rater_set.worklist(rater)


def _config_now():
    import os

    return _config(os.environ.get(rate.ENV_RATER_DIR), os.environ.get(rate.ENV_DB))


# ----------------------------------------------------------------------------- callbacks


def _on_sign_in() -> None:
    rater_set, _ = _config_now()
    rater = (ss.get("signin_id") or "").strip()
    ok = rate.check_access(rater_set, rater, ss.get("signin_code") or "")
    ss["signin_code"] = ""
    if ok:
        ss.clear()
        ss["_rater"] = rater
    else:
        ss["_signin_failed"] = True


def _on_sign_out() -> None:
    ss.clear()


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


def _answered(item: str) -> None:
    ss.get("_time", {}).pop(item, None)
    ss.get("_shown", {}).pop(item, None)
    ss.get("_pending", {}).pop(item, None)
    ss["_onscreen"] = None
    ss["_mode"] = "rate"


def _save(wl: rate.Worklist, db, item: str, **answer) -> bool:
    shown_at, seconds = _timing(item)
    try:
        wl.save(db, item, comment=ss.get(f"comment-{item}"), change_reason=ss.get(f"why-{item}"),
                shown_at=shown_at, seconds=seconds, **answer)
    except store.LockedError:
        ss["_error"] = "Your ratings are submitted and locked; they can no longer be changed."
        return False
    except rate.RateError as exc:
        ss["_error"] = str(exc)
        return False
    except store.StoreError as exc:
        ss["_error"] = f"Not saved: {exc}"
        return False
    _answered(item)
    return True


def _move_on(wl: rate.Worklist, db, item: str) -> None:
    """After an answer: the next unrated item after this one, else the summary."""
    state = wl.state(db)
    nxt = rate.next_unrated(wl.items, state.current, wl.index[item])
    ss["_pos"] = wl.items[nxt].item if nxt is not None else "__summary__"


def _on_score(item: str, value: int) -> None:
    rater_set, db = _config_now()
    wl = _worklist(str(rater_set.root), ss["_rater"])
    if _save(wl, db, item, score=value):
        _move_on(wl, db, item)


def _on_pair(item: str, question: str, value: str) -> None:
    rater_set, db = _config_now()
    wl = _worklist(str(rater_set.root), ss["_rater"])
    pending = ss.setdefault("_pending", {}).setdefault(item, {})
    pending[question] = value
    if "better" in pending and "first" in pending:
        answer = dict(pending)
        if _save(wl, db, item, better=answer["better"], first=answer["first"]):
            _move_on(wl, db, item)


def _on_cannot(item: str, reason: str) -> None:
    rater_set, db = _config_now()
    wl = _worklist(str(rater_set.root), ss["_rater"])
    if reason == "other" and not (ss.get(f"comment-{item}") or "").strip():
        ss["_mode"] = "other"
        return
    if _save(wl, db, item, cannot_assess=reason):
        _move_on(wl, db, item)


def _on_mode(mode: str) -> None:
    ss["_mode"] = mode


def _on_goto(target: str | None) -> None:
    _leave_screen()
    ss["_pos"] = target
    ss["_mode"] = "rate"


def _on_lock() -> None:
    rater_set, db = _config_now()
    wl = _worklist(str(rater_set.root), ss["_rater"])
    try:
        wl.lock(db)
    except store.StoreError as exc:
        ss["_error"] = str(exc)


# ----------------------------------------------------------------------------- screens


def sign_in_screen() -> None:
    _, mid, _ = st.columns([1, 1.2, 1])
    with mid:
        st.header("Photo rating")
        with st.form("signin", enter_to_submit=True):
            st.text_input("Rater id", key="signin_id")
            st.text_input("Access code", type="password", key="signin_code")
            st.form_submit_button("Sign in", type="primary", on_click=_on_sign_in)
        if ss.get("_signin_failed"):
            st.error("Rater id or access code not recognised. Check the details you were given "
                     "and try again.")


def _img(code: str, css_class: str = "assess-photo") -> str:
    code = html.escape(code)
    return (f'<div class="{css_class}"><a href="{rate.full_url(code)}" target="_blank" '
            f'rel="noopener noreferrer"><img src="{rate.display_url(code)}" data-code="{code}" '
            f'alt="photo {code}"></a></div>')


def _prefetch(codes: list[str]) -> str:
    return "".join(f'<img class="assess-prefetch" src="{rate.display_url(c)}" alt="" '
                   f'aria-hidden="true">' for c in codes)


def top_bar(wl: rate.Worklist, state, pos: int | None) -> None:
    prog = rate.progress(wl.items, state.current, state.pace)
    first = rate.first_unrated(wl.items, state.current)
    cols = st.columns([5, 1.1, 1.1, 1.3, 0.9], vertical_alignment="center")
    with cols[0]:
        st.progress(prog.fraction, text=prog.text)
    at_start = pos is not None and pos == 0
    back = (wl.items[pos - 1].item if pos not in (None, 0) else None)
    if pos is None:
        back = wl.items[-1].item
    with cols[1]:
        st.button("Back", icon=":material/arrow_back:", shortcut="Left", disabled=at_start,
                  on_click=_on_goto, args=(back,), width="stretch", key="nav-back")
    fwd = (wl.items[pos + 1].item if pos is not None and pos + 1 < len(wl.items) else "__summary__")
    with cols[2]:
        st.button("Forward", icon=":material/arrow_forward:", shortcut="Right", disabled=pos is None,
                  on_click=_on_goto, args=(fwd,), width="stretch", key="nav-forward")
    with cols[3]:
        st.button("First unrated", icon=":material/first_page:", shortcut="Home",
                  disabled=first is None or first == pos, on_click=_on_goto, args=(None,),
                  width="stretch", key="nav-first")
    with cols[4]:
        st.button("Sign out", on_click=_on_sign_out, width="stretch", key="signout")


def _note_on_screen(item: str) -> None:
    on = ss.get("_onscreen")
    if not on or on[0] != item:
        _leave_screen()
        ss["_onscreen"] = (item, time.monotonic())
    ss.setdefault("_shown", {}).setdefault(item, store.utc_now())


def _comment_inputs(item: str, current: store.Event | None, mode: str) -> None:
    label = "Why can it not be assessed?" if mode == "other" else "Comment (optional)"
    if f"comment-{item}" not in ss and current is not None and current.comment:
        ss[f"comment-{item}"] = current.comment
    st.text_input(label, key=f"comment-{item}", max_chars=500)
    if current is not None:
        st.text_input("Reason for the change (optional)", key=f"why-{item}", max_chars=500)


def _rated_caption(rater_set, it: rate.Item, current: store.Event | None) -> None:
    if current is None:
        st.caption("Not rated yet")
        return
    if current.cannot_assess:
        label = dict((v, lab) for v, lab, _ in rate.REASON_CHOICES)[current.cannot_assess]
        text = f"Cannot assess: {label}"
    elif current.score is not None:
        lv = rater_set.scales[it.scale].level(current.score)
        text = f"{lv.value} · {lv.label}"
    else:
        better = dict((v, lab) for v, lab, _ in rate.BETTER_CHOICES)[current.better]
        first = dict((v, lab) for v, lab, _ in rate.FIRST_CHOICES)[current.first]
        text = f"{better}; {first}"
    st.caption(f"Your rating: **{text}**" + (f" (changed {current.revision - 1}×)"
                                               if current.revision > 1 else ""))


def cannot_assess_panel(it: rate.Item, current: store.Event | None, mode: str) -> None:
    st.markdown("**Cannot assess: why?**")
    for value, label, key in rate.REASON_CHOICES:
        st.button(f"{label}", key=f"reason-{value}", shortcut=key, width="stretch",
                  type="primary" if current is not None and current.cannot_assess == value else "secondary",
                  on_click=_on_cannot, args=(it.item, value))
    if mode == "other":
        st.warning("Say in the box below what is wrong with the photo, then press Other again.")
    st.button("Cancel", key="reason-cancel", shortcut="Esc", on_click=_on_mode, args=("rate",))


def single_screen(rater_set, wl, it: rate.Item, current, mode: str, prefetch: list[str]) -> None:
    scale = rater_set.scales[it.scale]
    photo, side = st.columns([3.2, 1], gap="medium")
    with photo:
        st.markdown(_img(it.photos[0]) + _prefetch(prefetch), unsafe_allow_html=True)
    with side:
        st.markdown(f'<span class="assess-code">{html.escape(it.item)}</span>', unsafe_allow_html=True)
        _rated_caption(rater_set, it, current)
        if mode in ("cannot", "other"):
            cannot_assess_panel(it, current, mode)
        else:
            st.markdown(f"**{html.escape(scale.name)}**")
            for lv in scale.levels:
                chosen = current is not None and current.score == lv.value
                st.button(f"**{lv.value}** · {lv.label}", key=f"level-{lv.value}",
                          shortcut=str(lv.value), help=lv.description or None, width="stretch",
                          type="primary" if chosen else "secondary",
                          on_click=_on_score, args=(it.item, lv.value))
                if lv.description:
                    st.caption(lv.description)
            st.button("Cannot assess", key="cannot", shortcut="X", icon=":material/block:",
                      width="stretch", on_click=_on_mode, args=("cannot",))
        _comment_inputs(it.item, current, mode)
        st.link_button("Full resolution", rate.full_url(it.photos[0]), shortcut="F",
                       icon=":material/zoom_in:", width="stretch")
        references(rater_set, it)


def references(rater_set, it: rate.Item) -> None:
    refs = rater_set.references.get(it.scale)
    if not refs:
        return
    with st.expander("Reference photos"):
        scale = rater_set.scales[it.scale]
        for value, path in sorted(refs.items()):
            st.image(str(path), caption=f"{value} · {scale.level(value).label}", width="stretch")


def pair_screen(rater_set, wl, it: rate.Item, current, mode: str, prefetch: list[str]) -> None:
    left, right = st.columns(2, gap="small")
    with left:
        st.markdown("**Left**" + _img(it.photos[0], "assess-photo assess-pair"), unsafe_allow_html=True)
    with right:
        st.markdown("**Right**" + _img(it.photos[1], "assess-photo assess-pair") + _prefetch(prefetch),
                    unsafe_allow_html=True)
    info, answers = st.columns([1, 3.2], gap="medium")
    with info:
        st.markdown(f'<span class="assess-code">{html.escape(it.item)}</span>', unsafe_allow_html=True)
        _rated_caption(rater_set, it, current)
        _comment_inputs(it.item, current, mode)
    with answers:
        if mode in ("cannot", "other"):
            cannot_assess_panel(it, current, mode)
            return
        pending = ss.get("_pending", {}).get(it.item, {})
        shown_better = pending.get("better", current.better if current else None)
        shown_first = pending.get("first", current.first if current else None)
        st.markdown("**Which looks better?**")
        cols = st.columns(len(rate.BETTER_CHOICES))
        for col, (value, label, key) in zip(cols, rate.BETTER_CHOICES):
            col.button(f"{label}", key=f"better-{value}", shortcut=key, width="stretch",
                       type="primary" if shown_better == value else "secondary",
                       on_click=_on_pair, args=(it.item, "better", value))
        st.markdown("**Which was taken first?**")
        cols = st.columns(len(rate.FIRST_CHOICES) + 1)
        for col, (value, label, key) in zip(cols, rate.FIRST_CHOICES):
            col.button(label, key=f"first-{value}", shortcut=key, width="stretch",
                       type="primary" if shown_first == value else "secondary",
                       on_click=_on_pair, args=(it.item, "first", value))
        cols[-1].button("Cannot assess", key="cannot", shortcut="X", icon=":material/block:",
                        width="stretch", on_click=_on_mode, args=("cannot",))
        c1, c2 = st.columns(2)
        c1.link_button("Left full resolution", rate.full_url(it.photos[0]), width="stretch")
        c2.link_button("Right full resolution", rate.full_url(it.photos[1]), width="stretch")


def summary_screen(wl: rate.Worklist, state) -> None:
    first = rate.first_unrated(wl.items, state.current)
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        if first is not None:
            st.subheader("Not finished yet")
            left = len(wl.items) - len(state.current)
            st.write(f"{left} of {len(wl.items)} items are not rated yet.")
            st.button("Go to the first unrated item", type="primary", key="goto-first",
                      shortcut="Enter", on_click=_on_goto, args=(None,))
            return
        st.subheader("Every item is rated")
        st.write("You can still go back and change any rating. When you are done, submit: after "
                 "that your ratings can no longer be changed.")
        sure = st.checkbox("I have finished and want to submit my ratings", key="lock-sure")
        st.button("Submit and lock", type="primary", key="lock", disabled=not sure, on_click=_on_lock)
        st.button("Review from the start", key="review", on_click=_on_goto, args=(wl.items[0].item,))


def locked_screen(wl: rate.Worklist, state) -> None:
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        st.subheader("Submitted")
        st.success(f"All {len(wl.items)} ratings are submitted and locked. Thank you.")
        st.button("Sign out", on_click=_on_sign_out, key="signout-locked")


# ----------------------------------------------------------------------------- main


def ready_marker(item: str, rated: int, mode: str) -> None:
    """An empty element written last: once the browser shows it, the whole run is on screen."""
    st.markdown(f'<span class="assess-ready" data-item="{html.escape(item)}" data-rated="{rated}" '
                f'data-mode="{html.escape(mode)}"></span>', unsafe_allow_html=True)


def main() -> None:
    st.html(CSS)
    rater_set, db = _config_now()
    rater = ss.get("_rater")
    if not rater or rater not in rater_set.raters:
        sign_in_screen()
        ready_marker("__signin__", 0, "signin")
        return
    wl = _worklist(str(rater_set.root), rater)
    state = wl.state(db)
    if ss.get("_error"):
        st.error(ss.pop("_error"))
    if state.locked_at:
        locked_screen(wl, state)
        ready_marker("__locked__", len(state.current), "locked")
        return

    target = ss.get("_pos")
    if target == "__summary__":
        pos = None
    elif target in wl.index:
        pos = wl.index[target]
    else:
        pos = rate.first_unrated(wl.items, state.current)
    top_bar(wl, state, pos)
    if pos is None:
        _leave_screen()
        summary_screen(wl, state)
        ready_marker("__summary__", len(state.current), "summary")
        return

    it = wl.items[pos]
    _note_on_screen(it.item)
    current = state.current.get(it.item)
    mode = ss.get("_mode", "rate")
    # Prefetch the photos the rater will most likely see next: the next item, and the next unrated.
    nxt = [pos + 1] if pos + 1 < len(wl.items) else []
    nu = rate.next_unrated(wl.items, state.current, pos)
    if nu is not None and nu not in nxt and nu != pos:
        nxt.append(nu)
    prefetch = [code for i in nxt for code in wl.items[i].photos]
    if it.kind == "pair":
        pair_screen(rater_set, wl, it, current, mode, prefetch)
    else:
        single_screen(rater_set, wl, it, current, mode, prefetch)
    ready_marker(it.item, len(state.current), mode)


main()
