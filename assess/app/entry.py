"""Entry widgets of the scales that one digit key cannot rate: layout and widgets only.

A scale whose levels are all single digits keeps the rating app's one-key buttons (see
``rate_app.single_screen``). Here are the others:

- ``typed`` (levels of 10 or more, or half steps): one button per level to click, and typed entry
  by keyboard: digits (and ``.`` for a half step), then Enter (``entry.js``);
- ``slider`` (a visual analogue scale): a slider between the two anchors that shows no position
  until the rater moves it (by click, drag or arrow keys), so no value can be saved unmoved;
  Enter or the save button saves the value the slider shows.

Every save goes through the callback the app passes (``on_score(item, value)``), as a level
button's does; the key guard holds presses and clicks until the photo has been seen.
"""

from __future__ import annotations

import html
from pathlib import Path

import streamlit as st

from assess import levels
from assess.app import screen

ss = st.session_state

ENTRY_JS = (Path(__file__).parent / "entry.js").read_text(encoding="utf-8")
#: What Enter on an unmoved slider says.
UNMOVED_HINT = "Move the slider to your rating first (arrow keys or click), then press Enter."

CSS = """<style>
.st-key-assess-entry-js {display: none;}
.st-key-vas-untouched div:has(> div > div > input[type="range"]) > * {opacity: 0;}
.st-key-vas-untouched div:has(> div > div > input[type="range"]) {
  background: linear-gradient(#c8c8c8, #c8c8c8) center / 100% 4px no-repeat;}
.st-key-vas-untouched [data-testid="stSliderThumbValue"] {visibility: hidden;}
.assess-anchors {display: flex; justify-content: space-between; gap: 1rem; font-size: 0.9rem;
  margin-top: -0.6rem;}
.assess-anchors span:last-child {text-align: right;}
.assess-legend {font-size: 0.85rem; color: #444; margin: 0.1rem 0 0.4rem 0;}
.assess-typed {position: fixed; right: 1.5rem; bottom: 1.5rem; z-index: 1000; background: #31333f;
  color: #fff; padding: 0.45rem 0.9rem; border-radius: 0.4rem; font-size: 1.1rem;
  font-family: monospace; pointer-events: none;}
</style>"""


def key_of(value) -> str:
    """The widget key of a level button: ``level-10``, ``level-1_5`` (``st-key-level-1_5``)."""
    return "level-" + levels.text(value).replace(".", "_")


def state_text(scale, score) -> str:
    """A saved score in words: ``rated 7 · 7``, ``rated 2.5 · Mild``, ``rated 37 (VAS)``."""
    if scale.continuous:
        return f"rated {levels.text(score)} on {scale.minimum}–{scale.maximum}"
    lv = scale.level(score)
    return f"rated {levels.text(lv.value)} · {lv.label}"


def scale_entry(scale, item: str, current, on_score) -> bool:
    """Draw the entry of ``scale`` for ``item``; ``False`` for a one-digit scale (the app's own)."""
    if scale.entry == "digit":
        return False
    st.html(CSS)
    if scale.entry == "slider":
        _vas(scale, item, current, on_score)
    else:
        _typed(scale, item, current, on_score)
    with st.container(key="assess-entry-js"):
        hint = html.escape(UNMOVED_HINT)
        st.html(screen.page_script(ENTRY_JS.replace("__UNMOVED__", repr(hint))),
                unsafe_allow_javascript=True)
    return True


def _marker(kind: str, values: str, hint: str) -> str:
    return (f'<span class="assess-entry" data-entry="{kind}" data-values="{html.escape(values)}" '
            f'data-hint="{html.escape(hint)}"></span>')


def _typed(scale, item: str, current, on_score) -> None:
    saved = current.score if current is not None else None
    values = " ".join(levels.text(v) for v in scale.values)
    how = "type the number, then press Enter" + (" (a half step: 2.5)" if scale.step != 1 else "")
    st.markdown(_marker("typed", values, f"{levels.text(scale.low)} to {levels.text(scale.high)}, "
                        f"{how}") + f'<div class="assess-legend">{html.escape(how[0].upper() + how[1:])}'
                '</div>', unsafe_allow_html=True)
    with st.container(horizontal=True, gap="small"):
        for lv in scale.levels:
            st.button(levels.text(lv.value), key=key_of(lv.value), help=lv.description or None,
                      type="primary" if saved == lv.value else "secondary",
                      on_click=on_score, args=(item, lv.value))
    named = [lv for lv in scale.levels if lv.label != levels.text(lv.value)]
    if named:
        legend = "<br>".join(f"<b>{html.escape(levels.text(lv.value))}</b> · {html.escape(lv.label)}"
                             + (f" — {html.escape(lv.description)}" if lv.description else "")
                             for lv in named)
        st.markdown(f'<div class="assess-legend">{legend}</div>', unsafe_allow_html=True)


def _on_move(item: str) -> None:
    ss["_vas_moved"] = item


def _on_vas(item: str, key: str, on_score) -> None:
    if ss.get("_vas_moved") != item or key not in ss:
        return  # not moved: nothing to save (the button is disabled then)
    on_score(item, levels.canonical(ss[key]))


def _vas(scale, item: str, current, on_score) -> None:
    key = f"vas-{item}"
    saved = current.score if current is not None else None
    if ss.get("_vas_for") != item:  # a new item: the slider starts at the saved value, or unmoved
        ss["_vas_for"] = item
        mid = levels.canonical(round((scale.minimum + scale.maximum) / 2 / scale.step) * scale.step)
        ss[key] = _typed_number(saved if saved is not None else mid, scale)
        ss["_vas_moved"] = item if saved is not None else None
    moved = ss.get("_vas_moved") == item
    values = f"{levels.text(scale.minimum)} {levels.text(scale.maximum)}"
    st.markdown(_marker("slider", values, UNMOVED_HINT), unsafe_allow_html=True)
    with st.container(key="vas-moved" if moved else "vas-untouched"):
        st.slider(f"{scale.name}: move the slider to your rating", min_value=_typed_number(
                  scale.minimum, scale), max_value=_typed_number(scale.maximum, scale),
                  step=_typed_number(scale.step, scale), key=key, on_change=_on_move, args=(item,),
                  label_visibility="collapsed")
    low, high = scale.anchors
    st.markdown(f'<div class="assess-anchors"><span>{html.escape(levels.text(scale.minimum))} · '
                f'{html.escape(low)}</span><span>{html.escape(levels.text(scale.maximum))} · '
                f'{html.escape(high)}</span></div>', unsafe_allow_html=True)
    st.button("Save this rating (Enter)" if moved else "Move the slider to rate",
              key="level-vas", type="primary", width="stretch", disabled=not moved,
              on_click=_on_vas, args=(item, key, on_score))


def _typed_number(value, scale):
    """A value in the one number type the slider is given (all int, or all float)."""
    return int(value) if float(scale.step).is_integer() and float(scale.minimum).is_integer() \
        else float(value)
