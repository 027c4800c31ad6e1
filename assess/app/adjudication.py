"""The adjudicator's screens of the rating app: layout and widgets only.

The rating app (``rate_app.py``) hands over to :func:`main` when the signed-in id is the set's
adjudicator (``[adjudication] adjudicator``). Every decision and write goes through
:class:`assess.adjudication.Adjudicator`: the queue is computed from the panel's ratings on every
run, the photo is shown with the panel's scores in ascending order (never whose), and the final
score is saved with the reason typed beside it.
"""

from __future__ import annotations

import html
import sys
import time
from dataclasses import replace

import streamlit as st

from assess import adjudication, rate, store
from assess.app import screen

ss = st.session_state

__all__ = ["is_adjudicator", "sign_in", "main"]


def is_adjudicator(rater_set: rate.RaterSet, rater: str | None) -> bool:
    """Whether ``rater`` is the set's adjudicator (not one of its raters)."""
    if not rater or rater in rater_set.raters:
        return False
    adj = adjudication.rules_of(rater_set).adjudication
    return adj is not None and adj.adjudicator == rater


def sign_in(rater_set: rate.RaterSet, db, rater: str, code: str, client: str) -> rate.SignIn:
    """The adjudicator's sign-in: the same checks, waits and access log as a rater's."""
    import json

    data = json.loads((rater_set.root / "set.json").read_text(encoding="utf-8"))
    entry = ((data.get("panel") or {}).get("adjudication") or {}).get("access")
    if not isinstance(entry, dict):
        return rate.SignIn(False, checked=False)
    return rate.sign_in(replace(rater_set, raters={rater: entry}), db, rater, code, client)


def _me() -> adjudication.Adjudicator:
    root, db = ss["_adj_config"]
    return adjudication.Adjudicator(root, ss["_rater"], db)


def _on_final(item: str, score: int | None = None, better: str | None = None) -> None:
    reason = (ss.get("adj-reason") or "").strip()
    if not reason:
        ss["_adj_error"] = "Give the reason for the final score first, then choose it."
        return
    shown = ss.get("_adj_shown", {}).get(item)
    seconds = time.monotonic() - ss["_adj_on"][1] if ss.get("_adj_on") else None
    try:
        _me().save(item, score=score, better=better, reason=reason, seconds=seconds,
                   shown_at=shown)
    except store.LockedError:
        ss["_adj_error"] = "Your adjudications are submitted and locked."
        return
    except (store.StoreError, adjudication.AdjudicationError) as exc:
        print(f"assess rate: adjudication not saved: {exc}", file=sys.stderr, flush=True)
        ss["_adj_error"] = "Not saved. Try again; if it keeps failing tell the study coordinator."
        return
    ss["adj-reason"] = ""
    ss["_adj_pos"] = None


def _on_goto(item: str | None) -> None:
    ss["_adj_pos"] = item


def _on_submit() -> None:
    code = ss.get("adj-lock-code") or ""
    ss["adj-lock-code"] = ""
    try:
        _me().sign_and_lock(code)
    except adjudication.AdjudicationError:
        ss["_adj_error"] = "Not submitted: that is not your access code."
    except store.StoreError as exc:
        print(f"assess rate: adjudication not locked: {exc}", file=sys.stderr, flush=True)
        ss["_adj_error"] = "Not submitted: adjudicate every photo first, then try again."


def _photo(code: str, css: str = "assess-photo") -> str:
    access = ss["_access"]
    return (f'<div class="{css}"><a href="{rate.full_url(code, access)}" target="_blank" '
            f'rel="noopener noreferrer"><img src="{rate.display_url(code, access)}" data-code="{code}" '
            f'alt="photo {code}"></a></div>')


def _marker(item: str, mode: str) -> None:
    st.markdown(screen.ready_html(item, mode), unsafe_allow_html=True)


def _summary(me: adjudication.Adjudicator, items, locked: str | None, sign_out) -> None:
    _, mid, _ = st.columns([1, 1.6, 1])
    with mid:
        st.header("Adjudication")
        if not items:
            st.info("No photo waits for adjudication: the panel agreed within the study's rule "
                    "on every photo rated so far.")
        for q in items:
            st.button(f"{q.item} · {'adjudicated' if q.done else 'waiting'}", key=f"adj-go-{q.item}",
                      on_click=_on_goto, args=(q.item,), type="tertiary")
        if locked:
            st.success(f"Submitted and locked {locked}.")
        elif items and all(q.done for q in items):
            with st.form("adj-submit"):
                st.text_input("Access code (to sign your adjudications)", type="password",
                              key="adj-lock-code")
                st.form_submit_button("Submit and lock", type="primary", on_click=_on_submit)
        st.button("Sign out", key="signout", on_click=sign_out, type="tertiary")
    _marker("__summary__", "adjudication-summary")


def main(rater_set: rate.RaterSet, db, css: str, sign_out=ss.clear) -> None:
    """The adjudicator's run: the next photo waiting (or the one chosen), or the summary.

    ``sign_out`` is the rating app's sign-out (it ends the session in the database)."""
    me = adjudication.Adjudicator(rater_set.root, ss["_rater"], db)
    ss["_adj_config"] = (str(rater_set.root), str(db))
    items = me.queue()
    locked = (store.locks(db, adjudication.worklist_id(rater_set.set_id)).get(me.who)
              if store.exists(db) else None)
    st.html(css)
    if ss.get("_adj_error"):
        st.error(ss.pop("_adj_error"))
    by_item = {q.item: q for q in items}
    target = ss.get("_adj_pos")
    q = by_item.get(target) if target else next((q for q in items if q.done is None), None)
    if q is None or locked:
        _summary(me, items, locked, sign_out)
        return
    if not ss.get("_adj_on") or ss["_adj_on"][0] != q.item:
        ss["_adj_on"] = (q.item, time.monotonic())
    ss.setdefault("_adj_shown", {}).setdefault(q.item, store.utc_now())
    photo, side = st.columns([3.3, 1], gap="medium")
    with photo:
        if q.kind == "pair":
            left, right = st.columns(2, gap="small")
            left.markdown(_photo(q.photos[0], "assess-photo assess-pair"), unsafe_allow_html=True)
            right.markdown(_photo(q.photos[1], "assess-photo assess-pair"), unsafe_allow_html=True)
        else:
            st.markdown(_photo(q.photos[0]), unsafe_allow_html=True)
    with side:
        waiting = sum(1 for x in items if x.done is None)
        st.markdown(f'<div class="assess-progress">Adjudication · {waiting} of {len(items)} '
                    "waiting</div>", unsafe_allow_html=True)
        st.markdown(f'<span class="assess-code">{html.escape(q.item)}</span>',
                    unsafe_allow_html=True)
        if q.scores:
            shown = " · ".join(f"{s:+g}" if q.kind == "pair" else f"{s:g}" for s in q.scores)
            st.markdown(f"**Panel scores:** {shown}", help="The panel's scores in ascending "
                        "order; who gave which is not shown.")
        st.caption("Sent because " + "; ".join(q.reasons))
        st.text_input("Reason for the final score", key="adj-reason")
        if q.kind == "pair":
            for value, label, _key in rate.BETTER_CHOICES:
                st.button(label, key=f"adj-better-{value}", width="stretch",
                          type="primary" if q.done and q.done.better == value else "secondary",
                          on_click=_on_final, args=(q.item,), kwargs={"better": value})
        else:
            scale = rater_set.scales[q.scale]
            for lv in scale.levels:
                st.button(f"**{lv.value} · {lv.label}**", key=f"adj-level-{lv.value}",
                          width="stretch",
                          type="primary" if q.done and q.done.score == lv.value else "secondary",
                          on_click=_on_final, args=(q.item,), kwargs={"score": lv.value})
        if q.done is not None:
            st.caption(f"Adjudicated: {q.done.score if q.kind == 'single' else q.done.better} — "
                       f"{q.done.comment}")
        st.button("All adjudications", key="adj-summary", on_click=_on_goto,
                  args=("__summary__",), type="tertiary")
    _marker(q.item, "adjudicate")
