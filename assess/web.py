"""The two HTTP routes ``assess rate`` adds to Streamlit's server: the session cookie and the photos.

- ``POST <base>/assess/session`` takes a sign-in grant (:func:`assess.session.make_grant`) in its
  body, records a new session and answers with the session cookie (``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` behind HTTPS). The page posts it right after a sign-in.
- ``GET <base>/assess/photo/<handle>.<expiry>.<signature>/<copy>/<code>.jpg`` answers with the display or full copy
  of a photo only to the browser of the signed-in rater whose session signed the link, while that
  session is live and the link has not expired, and only for a photo on that rater's worklist.
  Anything else gets ``403`` and no photo.

Streamlit's own static route is not used: nothing of the rater folder is served but through here.

The routes are given to Streamlit's server in one place, :func:`install` (Streamlit 1.67 builds its
Starlette application from ``create_streamlit_routes``; ``st.App(routes=...)`` does the same for
apps started through it). It fails loudly when a Streamlit release no longer has that function.
"""

from __future__ import annotations

import re
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from . import session
from .errors import AssessError

PHOTO_PATH = "assess/photo"
SESSION_PATH = "assess/session"
_CODE_RE = re.compile(r"^[A-Z0-9]{3}-[A-Z0-9]{4}$")
_DENIED = "Sign in to the rating app to see this photo; a link copied from it works nowhere else.\n"


class WebError(AssessError):
    """The rating server cannot be set up as ``assess`` needs (a Streamlit it does not know)."""


def _base(base_url: str | None) -> str:
    base = (base_url or "").strip("/")
    return f"/{base}" if base else ""


def routes(rater_set, db, base_url: str | None = None) -> list:
    """The Starlette routes for one rater folder and database."""
    from starlette.routing import Route

    worklists: dict[str, frozenset[str]] = {}
    adjudicator = _adjudicator(rater_set)
    signers = set(rater_set.raters) | ({adjudicator} if adjudicator else set())

    def photos_of(rater: str) -> frozenset[str]:
        if rater not in worklists:
            if rater == adjudicator:  # the panel's photos, whichever the queue holds
                worklists[rater] = frozenset().union(*(photos_of(r) for r in rater_set.raters))
            else:
                from . import training

                wl = rater_set.worklist(rater)
                worklists[rater] = (frozenset(code for it in wl.items for code in it.photos)
                                    | training.codes_of(rater_set, rater))
        return worklists[rater]

    def photo(request):
        from starlette.responses import FileResponse, PlainTextResponse

        copy, name = request.path_params["copy"], request.path_params["name"]
        code = name[:-4] if name.endswith(".jpg") else ""
        ticket = session.read_ticket(request.path_params["ticket"])
        if copy not in session.COPIES or not _CODE_RE.match(code):
            return PlainTextResponse("Not found.\n", status_code=404)
        now = time.time()
        handle, expires, mac = ticket or ("", "", "")
        try:
            token = session.signed_in(db, rater_set.set_id,
                                      request.cookies.get(session.cookie_name(rater_set.set_id)),
                                      now)
        except AssessError as exc:
            print(f"assess rate: photo refused: {exc}", file=sys.stderr, flush=True)
            token = None
        if (token is None or token.handle != handle or code not in photos_of(token.rater)
                or not session.check_photo(session.key_of(db), handle, copy, code, expires, mac,
                                           now)):
            return PlainTextResponse(_DENIED, status_code=403,
                                     headers={"Cache-Control": "no-store"})
        path = rater_set.root / "images" / copy / f"{code}.jpg"
        if not path.is_file():
            return PlainTextResponse("Not found.\n", status_code=404)
        age = max(0, int(expires) - int(now))
        return FileResponse(path, media_type="image/jpeg", headers={
            "Cache-Control": f"private, max-age={age}, immutable",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})

    async def start_session(request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import PlainTextResponse

        grant = (await request.body())[:1024].decode("ascii", "replace").strip()

        try:
            made = await run_in_threadpool(session.redeem_grant, db, rater_set.set_id,
                                           signers, rater_set.session_hours, grant,
                                           time.time())
        except AssessError as exc:
            print(f"assess rate: session not made: {exc}", file=sys.stderr, flush=True)
            made = None
        if made is None:
            return PlainTextResponse("Sign in again.\n", status_code=403,
                                     headers={"Cache-Control": "no-store"})
        value, seconds = made
        response = PlainTextResponse("Signed in.\n", headers={"Cache-Control": "no-store"})
        https = (request.url.scheme == "https"
                 or request.headers.get("x-forwarded-proto", "").lower() == "https")
        response.set_cookie(session.cookie_name(rater_set.set_id), value, max_age=seconds,
                            path=_base(base_url) + "/", httponly=True, samesite="strict",
                            secure=https)
        return response

    base = _base(base_url)
    return [Route(f"{base}/{PHOTO_PATH}/{{ticket}}/{{copy}}/{{name}}", photo, methods=["GET", "HEAD"]),
            Route(f"{base}/{SESSION_PATH}", start_session, methods=["POST"])]


def _adjudicator(rater_set) -> str | None:
    """The set's adjudicator (``[adjudication] adjudicator``), who signs in beside the raters."""
    from . import adjudication  # the rater side's panel rules; imported here, not at the top

    try:
        rules = adjudication.rules_of(rater_set).adjudication
    except AssessError:
        return None
    return rules.adjudicator if rules is not None else None


def photo_url(access: session.PhotoAccess, copy: str, code: str) -> str:
    """A photo link (relative to the app's page) for one session.

    >>> photo_url(session.PhotoAccess(bytes(32), "h1"), "display", "KX7-4MPA").split("/")[::3]
    ['assess', 'display']
    """
    return f"{PHOTO_PATH}/{access.ticket(copy, code)}/{copy}/{code}.jpg"


@contextmanager
def install(make_routes) -> Iterator[None]:
    """Put the routes ``make_routes(base_url)`` gives before Streamlit's own, in the server started
    meanwhile in this process (``base_url``: Streamlit's ``server.baseUrlPath``)."""
    try:
        from streamlit.web.server.starlette import starlette_app
    except ImportError as exc:
        raise WebError(f"this Streamlit has no Starlette server ({exc}); install the Streamlit "
                       "version of requirements.txt") from None
    original = getattr(starlette_app, "create_streamlit_routes", None)
    if not callable(original):
        raise WebError("this Streamlit builds its server differently (no create_streamlit_routes); "
                       "install the Streamlit version of requirements.txt")

    def with_assess(runtime, *args, **kwargs):
        from streamlit import config

        return (list(make_routes(config.get_option("server.baseUrlPath")))
                + list(original(runtime, *args, **kwargs)))

    starlette_app.create_streamlit_routes = with_assess
    try:
        yield
    finally:
        starlette_app.create_streamlit_routes = original
