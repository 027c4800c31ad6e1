"""A page of a Streamlit app without a browser: its websocket, speaking Streamlit's protocol.

Used by ``bench/raters.py`` to put many raters on one server without many browsers. A run is what
the browser's page does on a button press: it sends ``rerun_script`` with the pressed button's
trigger, and the server answers with the screen's elements, one message each, until
``script_finished``. :class:`Screen` keeps what a rater needs from them: the buttons by their
widget key, the photo on screen and every image it loads (prefetched ones too), the ready marker of ``assess rate``,
and when the element with a given photo arrived.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

PHOTO = re.compile(r'<img[^>]*\bdata-code="([^"]+)"')
IMAGE = re.compile(r'<img\b[^>]*?\ssrc="([^"]+)"')
READY = re.compile(r'class="assess-ready" data-item="([^"]*)" data-rated="(\d+)" '
                   r'data-mode="([^"]*)"')


@dataclass
class Screen:
    """What one run of the app put on the page."""

    buttons: dict[str, str] = field(default_factory=dict)  # widget key (or label) -> widget id
    photos: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # every image URL, as the browser loads them
    ready: tuple[str, int, str] | None = None
    seen_at: float | None = None  # perf_counter() when the watched photo's element arrived


class Page:
    """One session's websocket to the app (``async with Page(url, cookie) as page``)."""

    def __init__(self, url: str, cookie: str | None = None):
        self.url = url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.headers = {"Cookie": cookie} if cookie else {}
        self.ws = None

    async def __aenter__(self) -> "Page":
        self.ws = await websockets.connect(self.url, subprotocols=["streamlit"],
                                           additional_headers=self.headers, max_size=None)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def run(self, press: str | None = None, watch: str | None = None) -> Screen:
        """One run of the script: after pressing the button with widget id ``press`` (or none,
        as when the page opens); ``watch``: a photo code whose arrival is timed."""
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        if press is not None:
            widget = msg.rerun_script.widget_states.widgets.add()
            widget.id = press
            widget.trigger_value = True
        await self.ws.send(msg.SerializeToString())
        return await self.read(watch)

    async def read(self, watch: str | None = None) -> Screen:
        """The elements of the next run, up to its end (a run cut short for a rerun goes on)."""
        screen = Screen()
        while True:
            fm = ForwardMsg()
            fm.ParseFromString(await self.ws.recv())
            kind = fm.WhichOneof("type")
            if kind == "script_finished":
                if fm.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue
                return screen
            if kind != "delta" or fm.delta.WhichOneof("type") != "new_element":
                continue
            el = fm.delta.new_element
            what = el.WhichOneof("type")
            if what == "button":
                ident = el.button.id  # a user key follows the hash: "$$ID-<hash>-level-3"
                match = re.match(r"\$\$ID-[0-9a-f]+-(.+)$", ident)
                if match:
                    screen.buttons[match.group(1)] = ident
                if el.button.label:
                    screen.buttons.setdefault(el.button.label, ident)
            elif what == "markdown":
                body = el.markdown.body
                for code in PHOTO.findall(body):
                    screen.photos.append(code)
                    if code == watch and screen.seen_at is None:
                        screen.seen_at = time.perf_counter()
                screen.images += [html.unescape(u) for u in IMAGE.findall(body)]
                ready = READY.search(body)
                if ready:
                    screen.ready = (html.unescape(ready.group(1)), int(ready.group(2)),
                                    ready.group(3))
