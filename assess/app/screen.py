"""Pieces of the rating screen: zoom, the photonumeric guide, the pause, titles (layout only).

Used by ``rate_app.py``. The zoom and the key hints run in the page (:data:`ZOOM_JS`,
``zoom.js``); the guide and the pause are app runs like any other answer-free button.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

ZOOM_JS = (Path(__file__).parent / "zoom.js").read_text(encoding="utf-8")
#: The page's one way to show a short hint (``window.assessHint``), carried in front of each
#: script that shows one (:func:`page_script`) and installed by the first of them to run.
HINT_JS = (Path(__file__).parent / "hint.js").read_text(encoding="utf-8")

#: The screen's rules, added to the app's style sheet. Below 900 px wide (a tablet upright) the
#: photo is above and the controls below it, with buttons large enough for a finger.
CSS = """
.assess-photo {position: relative; overflow: hidden;}
.assess-photo img[data-code] {touch-action: none; -webkit-user-drag: none; user-select: none;}
.assess-zoom {position: absolute; overflow: hidden; background: #808080; touch-action: none;
  cursor: grab; z-index: 5;}
.assess-zoom img.assess-zoom-full {position: absolute; max-width: none; max-height: none;
  object-fit: fill; cursor: grab; background: none;}
[data-testid="InputInstructions"] {display: none;}
.assess-region {color: #444; font-size: 0.9rem;}
.st-key-assess-guide {gap: 0.3rem;}
.st-key-assess-guide [data-testid="stImage"] img {
  max-height: calc((100vh - 5rem) / var(--assess-levels, 5) - 1.9rem);
  object-fit: contain; width: auto; margin: 0 auto;}
.assess-progress {margin-bottom: 0.4rem;}
.st-key-assess-guide [data-testid="stImageCaption"] {margin-top: 0; font-size: 0.8rem;}
.assess-paused {display: flex; flex-direction: column; justify-content: center; align-items: center;
  height: 60vh; font-size: 1.3rem; color: #444;}
[data-testid="stColumn"]:has(.assess-code) [data-testid="stVerticalBlock"] {gap: 0.45rem;}
[data-testid="stColumn"]:has(.assess-code) button {min-height: 2.1rem; padding: 0.2rem 0.6rem;}
[data-testid="stColumn"]:has(.assess-code) button p {font-size: 0.875rem; line-height: 1.3;}
[data-testid="stColumn"]:has(.assess-code) [data-testid="stLinkButton"] a {min-height: 2.1rem;
  padding: 0.2rem 0.6rem;}
@media (max-width: 900px) and (orientation: portrait) {
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .assess-photo) {flex-direction: column;}
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .assess-photo) > [data-testid="stColumn"] {
    width: 100% !important; flex: 1 1 auto !important; min-width: 100%;}
  .assess-photo img[data-code] {height: 42vh;}
  .assess-pair img[data-code] {height: 30vh;}
  [data-testid="stColumn"]:has(.assess-code) button,
  [data-testid="stColumn"]:has(.assess-code) [data-testid="stLinkButton"] a {min-height: 2.75rem;}
}
"""


def region_label(region: str) -> str:
    """A region's name as a title: ``"face"`` → ``"Face"``, ``"upper-arm"`` → ``"Upper arm"``."""
    text = region.replace("-", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def view_label(view: str) -> str:
    """A view's name as written, in words: ``"left-oblique"`` → ``"left oblique"``."""
    return " ".join(view.replace("-", " ").replace("_", " ").split())


def title(region: str, scale_name: str, view: str = "") -> str:
    """What a photo asks: the region, its view (when the region has views) and the scale.

    >>> title("face", "Wrinkle Severity Rating Scale")
    'Face — Wrinkle Severity Rating Scale'
    >>> title("face", "Wrinkle Severity Rating Scale", "left-oblique")
    'Face · left oblique — Wrinkle Severity Rating Scale'
    """
    if not region:
        return scale_name
    where = region_label(region) + (f" · {view_label(view)}" if view_label(view) else "")
    return f"{where} — {scale_name}"


def pair_question(region: str, scale_name: str) -> str:
    """The pair screen's question, naming the region and the criterion.

    >>> pair_question("hands", "Merz hand grading scale")
    'Which hand looks better on the Merz hand grading scale?'
    >>> pair_question("face", "Wrinkle Severity Rating Scale")
    'Which face looks better on the Wrinkle Severity Rating Scale?'
    """
    noun = region.replace("-", " ").strip().lower()
    if noun.endswith("s") and not noun.endswith("ss") and len(noun) > 3:
        noun = noun[:-1]
    return f"Which {noun or 'photo'} looks better on the {scale_name}?"


def photo_html(code: str, display_url: str, full_url: str | None = None,
               css_class: str = "assess-photo") -> str:
    """The photo: the display copy, with the full copy's address for the zoom (none: no zoom).

    >>> photo_html("KX7-4MPA", "d.jpg")
    '<div class="assess-photo"><img src="d.jpg" data-code="KX7-4MPA" alt="photo KX7-4MPA" draggable="false"></div>'
    """
    full = f' data-full="{html.escape(full_url)}"' if full_url else ""
    return (f'<div class="{css_class}"{full}><img src="{display_url}" '
            f'data-code="{code}" alt="photo {code}" draggable="false"></div>')


def ready_html(item: str, mode: str, rated: int | None = None) -> str:
    """The empty element a screen writes last: once the browser shows it, the whole run is on
    screen (``rated``: how many items are answered, left out where it means nothing).

    ``data-run`` differs on every run: the page's key guard waits for it to change after a
    rating press, so that the next press is for the page the first one led to.

    >>> ready_html("KX7-4MPA", "rate", 3).split(" data-run")[0]
    '<span class="assess-ready" data-item="KX7-4MPA" data-rated="3" data-mode="rate"'
    >>> "data-rated" in ready_html("__summary__", "adjudication-summary")
    False
    """
    count = f' data-rated="{rated}"' if rated is not None else ""
    return (f'<span class="assess-ready" data-item="{html.escape(item)}"{count} '
            f'data-mode="{html.escape(mode)}" data-run="{time.monotonic_ns()}"></span>')


def scale_marker(scale_name: str) -> str:
    """An empty element naming the scale, for the page's hint on a digit that is not a level."""
    return f'<span data-assess-scale="{html.escape(scale_name)}"></span>'


def page_script(js: str) -> str:
    """A script of the rating page, with the hint it may show (:data:`HINT_JS`) in front."""
    return "<script>" + HINT_JS + js + "</script>"


def zoom_script() -> str:
    return page_script(ZOOM_JS)


def paused_html(item: str) -> str:
    return ('<div class="assess-paused"><b>Paused</b><span>The clock for this photo is stopped and '
            f'the photo hidden. Press P or Continue to go on with {html.escape(item)}.</span></div>')


def guide_css(levels: int) -> str:
    return f"<style>.st-key-assess-guide {{--assess-levels: {max(1, int(levels))};}}</style>"
