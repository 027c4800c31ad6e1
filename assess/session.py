"""Staying signed in, and photos only for the signed-in rater: session tokens and signed photo links.

A rater who signs in (access code or single sign-on) gets a *session*: a random secret session id
that only their browser holds, in an ``HttpOnly``, ``SameSite=Strict`` cookie (never in a URL, never
readable by the page's scripts), signed with the database's session key and expiring after the
set's ``session_hours``. The database keeps the session under the hash of that id
(:func:`session_handle`), so neither a reader of the database nor a copied photo link learns it.
The session holds across reloads and server restarts, and for every app process on the database,
until it expires, the rater signs out, or the coordinator revokes every session
(``assess sessions revoke``).

Photos are served only through the app's own photo route (:mod:`assess.web`). Each link names the
session's handle, an expiry and a signature over (handle, copy, code, expiry); the route answers
only a request that carries the cookie of that same live session. A copied link therefore fails in
another browser, after sign-out and once it expires. Expiries are rounded to
:data:`LINK_STEP_SECONDS`, so a photo keeps one link for a while and the browser's cache (prefetch)
keeps working.

>>> key = bytes(32)
>>> t = make_token(key, "S1", "derm1", "sid-1", expires=2000)
>>> read_token(key, "S1", t, now=1000).rater, read_token(key, "S1", t, now=2001)
('derm1', None)
>>> read_token(bytes(31) + b"x", "S1", t, now=1000) is None, read_token(key, "S2", t, now=1000) is None
(True, True)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from contextlib import closing, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone

from . import store

#: How long a sign-in holds when the set does not say (``[rating] session_hours``).
DEFAULT_SESSION_HOURS = 12.0
#: The longest a set may let a sign-in hold (hours): a week.
MAX_SESSION_HOURS = 168.0
#: How long a sign-in grant (page → cookie, see :func:`make_grant`) may take to be used (seconds).
GRANT_SECONDS = 60
#: A photo link holds at least this long after it was made (seconds) ...
LINK_SECONDS = 1800
#: ... and its expiry is rounded up to a multiple of this, so one photo keeps one link meanwhile.
LINK_STEP_SECONDS = 600
#: The photo copies the route serves.
COPIES = ("display", "full")


def cookie_name(set_id: str) -> str:
    """The session cookie of a set (sets served from one host keep apart).

    >>> cookie_name("S1")
    'assess-session-S1'
    """
    return f"assess-session-{set_id}"


def note_position(db, set_id: str, rater: str, item: str) -> None:
    """Note the item the rater is on, so that a new session resumes there (any process)."""
    with closing(store.connect(db)) as conn:
        store.save_position(conn, set_id, rater, item)


def last_position(db, set_id: str, rater: str) -> str | None:
    """The item the rater was last on (:func:`note_position`), or ``None``."""
    with closing(store.connect(db)) as conn:
        return store.position(conn, set_id, rater)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(key: bytes, *parts: object) -> str:
    message = "\x1f".join(str(p) for p in parts).encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def new_session_id() -> str:
    """A fresh secret session id (192 random bits)."""
    return secrets.token_urlsafe(24)


def session_handle(session_id: str) -> str:
    """The name a session is kept under in the database and in photo links: a hash of its id.

    >>> session_handle("sid-1")
    '07c3c2de31a0bc1038a6298478bd4cf0'
    """
    return hashlib.sha256(b"assess session\x1f" + session_id.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Token:
    """What a valid session cookie says."""

    rater: str
    session_id: str
    expires: int

    @property
    def handle(self) -> str:
        return session_handle(self.session_id)


def make_token(key: bytes, set_id: str, rater: str, session_id: str, expires: int) -> str:
    """The session cookie's value: rater, session id and expiry (Unix seconds), signed."""
    return ".".join((rater, session_id, str(int(expires)),
                     _mac(key, "session", set_id, rater, session_id, int(expires))))


def read_token(key: bytes, set_id: str, token: object, now: float) -> Token | None:
    """The token's content when it is signed with ``key`` for ``set_id`` and not expired, else None.

    Says nothing of whether the session was ended since: the database does (:func:`is_live`).
    """
    if not isinstance(token, str) or len(token) > 512:
        return None
    parts = token.split(".")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    rater, session_id, expires, mac = parts
    if not hmac.compare_digest(mac, _mac(key, "session", set_id, rater, session_id, int(expires))):
        return None
    if int(expires) <= now:
        return None
    return Token(rater, session_id, int(expires))


def make_grant(key: bytes, set_id: str, rater: str, now: float) -> str:
    """A one-time, short-lived permission for the page to turn a sign-in into a session cookie.

    The app makes it when the rater has signed in and hands it to the page, which posts it to the
    session route (:mod:`assess.web`); that route makes the session and sets the cookie, so the
    session id itself never passes through the page. A grant is used once (its id is recorded with
    the session) and holds :data:`GRANT_SECONDS`.
    """
    grant_id, expires = secrets.token_urlsafe(12), int(now) + GRANT_SECONDS
    return ".".join((rater, grant_id, str(expires), _mac(key, "grant", set_id, rater, grant_id,
                                                          expires)))


def read_grant(key: bytes, set_id: str, grant: object, now: float) -> tuple[str, str] | None:
    """``(rater, grant id)`` of a valid, unexpired grant, else ``None``.

    >>> g = make_grant(bytes(32), "S1", "derm1", now=1000)
    >>> read_grant(bytes(32), "S1", g, now=1030)[0], read_grant(bytes(32), "S1", g, now=1061)
    ('derm1', None)
    """
    if not isinstance(grant, str) or len(grant) > 512:
        return None
    parts = grant.split(".")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    rater, grant_id, expires, mac = parts
    if not hmac.compare_digest(mac, _mac(key, "grant", set_id, rater, grant_id, int(expires))):
        return None
    return (rater, grant_id) if int(expires) > now else None


def link_expiry(now: float) -> int:
    """When a photo link made at ``now`` expires: at least :data:`LINK_SECONDS` later, rounded up.

    >>> link_expiry(0), link_expiry(1), link_expiry(599), link_expiry(600)
    (1800, 2400, 2400, 2400)
    """
    least = int(now) + LINK_SECONDS
    return -(-least // LINK_STEP_SECONDS) * LINK_STEP_SECONDS


@dataclass(frozen=True)
class PhotoAccess:
    """What signs the photo links of one signed-in session: the database's key and the handle."""

    key: bytes
    handle: str

    def ticket(self, copy: str, code: str, now: float | None = None) -> str:
        """The path segment of a photo link: ``<handle>.<expiry>.<signature>``."""
        expires = link_expiry(time.time() if now is None else now)
        return f"{self.handle}.{expires}.{_mac(self.key, 'photo', self.handle, copy, code, expires)}"


def read_ticket(ticket: str) -> tuple[str, str, str] | None:
    """``(handle, expiry, signature)`` of a link's ticket, or ``None``.

    >>> read_ticket("h1.2400.abc"), read_ticket("h1/2400")
    (('h1', '2400', 'abc'), None)
    """
    parts = ticket.split(".") if isinstance(ticket, str) and len(ticket) < 256 else []
    return tuple(parts) if len(parts) == 3 else None  # type: ignore[return-value]


def check_photo(key: bytes, handle: str, copy: str, code: str, expires: object, mac: object,
                now: float) -> bool:
    """Whether a photo link's signature is of this session, copy and code, and it has not expired.

    >>> _, e, t = read_ticket(PhotoAccess(bytes(32), "h1").ticket("display", "AAA-AAAA", now=0))
    >>> check_photo(bytes(32), "h1", "display", "AAA-AAAA", e, t, now=100)
    True
    >>> check_photo(bytes(32), "h2", "display", "AAA-AAAA", e, t, now=100)
    False
    >>> check_photo(bytes(32), "h1", "full", "AAA-AAAA", e, t, now=100)
    False
    >>> check_photo(bytes(32), "h1", "display", "AAA-AAAA", e, t, now=1800)
    False
    """
    if not isinstance(expires, str) or not expires.isdigit() or not isinstance(mac, str):
        return False
    if not hmac.compare_digest(mac, _mac(key, "photo", handle, copy, code, int(expires))):
        return False
    return int(expires) > now


def iso(seconds: float) -> str:
    """Unix seconds as the store writes times (ISO 8601 UTC, milliseconds).

    >>> iso(0)
    '1970-01-01T00:00:00.000Z'
    """
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def is_live(row, rater: str, set_id: str, now: float) -> bool:
    """Whether a session row (:class:`assess.store.Session`) still holds for that rater and set.

    It holds when it exists, is the rater's in this set, has not ended (sign-out, revocation) and
    has not expired.

    >>> from assess.store import Session
    >>> row = Session("h", "S1", "derm1", iso(0), iso(3600), None)
    >>> is_live(row, "derm1", "S1", 10), is_live(row, "derm2", "S1", 10), is_live(row, "derm1", "S1", 3600)
    (True, False, False)
    >>> is_live(Session("h", "S1", "derm1", iso(0), iso(3600), iso(5)), "derm1", "S1", 10)
    False
    """
    return (row is not None and row.rater == rater and row.set_id == set_id
            and row.ended_at is None and row.expires_at > iso(now))


# ------------------------------------------------------------------------------------ with the store

_KEYS: dict[str, bytes] = {}


def key_of(db) -> bytes:
    """The database's session key (made once in the database, then kept for this process)."""
    name = str(db)
    if name not in _KEYS:
        with closing(store.connect(db)) as conn:
            _KEYS[name] = bytes.fromhex(store.session_secret(conn))
    return _KEYS[name]


def redeem_grant(db, set_id: str, raters, hours: float, grant: object,
                 now: float) -> tuple[str, int] | None:
    """Turn a valid, unused grant into a new session: ``(cookie value, seconds it holds)``.

    ``None`` (nothing recorded) for a grant that is forged, expired, used before, or of no rater
    of ``raters``.
    """
    key = key_of(db)
    found = read_grant(key, set_id, grant, now)
    if found is None or found[0] not in raters:
        return None
    rater, grant_id = found
    session_id = new_session_id()
    seconds = int(hours * 3600)
    with closing(store.connect(db)) as conn:
        if not store.open_session(conn, session_handle(session_id), set_id, rater, grant_id,
                                  iso(now), iso(now + seconds)):
            return None
    return make_token(key, set_id, rater, session_id, int(now) + seconds), seconds


def signed_in(db, set_id: str, cookie: object, now: float, conn=None) -> Token | None:
    """The session a cookie value stands for, if it is signed, unexpired and not ended."""
    if not cookie:
        return None
    token = read_token(key_of(db), set_id, cookie, now)
    if token is None:
        return None
    with (nullcontext(conn) if conn is not None else closing(store.connect(db))) as c:
        row = store.session(c, token.handle)
    return token if is_live(row, token.rater, set_id, now) else None


def end(db, set_id: str, handle: str) -> None:
    """Sign-out: the session ends in the database, for every process and every photo link."""
    with closing(store.connect(db)) as conn:
        store.end_sessions(conn, set_id, handle)


def revoke_all(db, set_id: str) -> int:
    """End every live session of the set (every rater must sign in again); how many there were."""
    with closing(store.connect(db)) as conn:
        return store.end_sessions(conn, set_id)
