"""The rater's side: read a rater folder, sign a rater in, keep their worklist, serve the app.

The Streamlit script in ``assess/app/rate_app.py`` only lays out widgets; everything it decides or
saves goes through this module, and every read and write names the signed-in rater. The app is
given the rater folder (``set.json``, ``worklists/``, ``images/``, ``references/``) and the ratings
database; it never sees the key.

Serving (:func:`serve`) runs Streamlit in this process on a small per-run folder that holds a link
to the app script. Photos are served only by the app's photo route (:mod:`assess.web`), to the
browser of the signed-in rater whose session signed the link (:mod:`assess.session`); nothing else
of the rater folder (set.json with the access-code hashes, the other raters' worklists) is
reachable.

Where a rater is in the worklist (the next unrated item, progress, time left) is
:mod:`assess.position`; its names are imported here.

>>> items = [Item("AAA-AAAA", "single", "wsrs", "face", ("AAA-AAAA",)),
...          Item("CCC-CCCC", "single", "wsrs", "face", ("CCC-CCCC",)),
...          Item("DDD-DDDD", "single", "wsrs", "face", ("DDD-DDDD",))]
>>> done = {"CCC-CCCC"}
>>> first_unrated(items, done), next_unrated(items, done, 0), next_unrated(items, done, 2)
(0, 2, 0)
>>> format_duration(3725)
'1 h 02 min'
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import sys
import tempfile
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from . import chain, panel, store
from .csvfile import parse_table, read_table
from .errors import AssessError
from .position import Progress, first_unrated, format_duration, next_unrated, progress
from .session import DEFAULT_SESSION_HOURS, MAX_SESSION_HOURS, PhotoAccess
from .study import NAME_RE, Scale

__all__ = [
    "APP_SCRIPT",
    "BETTER_CHOICES",
    "FIRST_CHOICES",
    "REASON_CHOICES",
    "RateError",
    "SignatureError",
    "recent_sign_in",
    "TooSoonError",
    "OnScreen",
    "DEFAULT_MIN_VIEW_MS",
    "TOO_SOON_HINT",
    "check_seen",
    "Item",
    "RaterSet",
    "Progress",
    "RaterStatus",
    "load_rater_set",
    "check_access",
    "SignIn",
    "sign_in",
    "backoff_seconds",
    "client_of",
    "default_db",
    "Worklist",
    "first_unrated",
    "next_unrated",
    "progress",
    "format_duration",
    "status",
    "format_status",
    "verify",
    "format_chains",
    "other_sign_in_failures",
    "serve",
    "neutral_script_path",
    "streamlit_flags",
    "load_sso_raters",
    "audit",
    "sso_sign_in",
    "load_sso_config",
]

APP_SCRIPT = Path(__file__).resolve().parent / "app" / "rate_app.py"
ENV_RATER_DIR = "ASSESS_RATER_DIR"
ENV_DB = "ASSESS_DB"
ENV_SSO = "ASSESS_SSO_RATERS"
#: The file with the ``[auth]`` settings of single sign-on (``assess rate --sso-config``).
ENV_SSO_CONFIG = "ASSESS_SSO_CONFIG"
PBKDF2_ITERATIONS = 200_000
#: Codes as written by ``assess randomize``; anything else in a worklist is refused (it ends up in
#: URLs and HTML).
CODE_RE = re.compile(r"^[A-Z0-9]{3}-[A-Z0-9]{4}$")

#: Pair question 1, in screen order: (stored value, button label, key).
BETTER_CHOICES = (
    ("much_better_left", "Left much better", "1"),
    ("better_left", "Left better", "2"),
    ("no_difference", "No difference", "3"),
    ("better_right", "Right better", "4"),
    ("much_better_right", "Right much better", "5"),
)
#: Pair question 2: which photo was taken first.
FIRST_CHOICES = (
    ("left", "Left first", "J"),
    ("cannot_tell", "Cannot tell", "K"),
    ("right", "Right first", "L"),
)
#: Why a photo cannot be assessed: (stored value, label, key).
REASON_CHOICES = (
    ("out_of_focus", "Out of focus", "1"),
    ("framing", "Wrong region or framing", "2"),
    ("lighting", "Lighting", "3"),
    ("identifying_feature", "Identifying feature visible", "4"),
    ("other", "Other (say what)", "5"),
)
assert tuple(v for v, _, _ in BETTER_CHOICES) == store.BETTER
assert {v for v, _, _ in FIRST_CHOICES} == set(store.FIRST)
assert tuple(v for v, _, _ in REASON_CHOICES) == store.REASONS


class RateError(AssessError):
    """The rater folder or a rating cannot be used; the message names the file or field."""


class SignatureError(RateError):
    """The signer could not be authenticated again (a wrong access code); nothing was locked."""


#: How recent a single sign-on must be to sign with it (seconds).
SSO_SIGNATURE_MAX_AGE = 300


def recent_sign_in(claims: Mapping[str, object], now: float,
                   max_age: float = SSO_SIGNATURE_MAX_AGE) -> bool:
    """Whether the identity provider signed the person in within ``max_age`` seconds of ``now``.

    ``claims`` are the ID token's (``st.user``): ``auth_time`` when the provider gives it, else
    ``iat`` (when the token was issued).

    >>> recent_sign_in({"auth_time": 1000}, 1200), recent_sign_in({"iat": 1000}, 1400), recent_sign_in({}, 1)
    (True, False, False)
    """
    when = claims.get("auth_time", claims.get("iat"))
    try:
        return 0 <= now - float(when) <= max_age  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False

class TooSoonError(RateError):
    """An answer for a photo that was not on screen, or not on screen long enough, to be seen."""


#: How long a photo must be on screen before it can be rated, for sets that do not say
#: (``set.json`` written before the study file had ``[rating] min_view_ms``).
DEFAULT_MIN_VIEW_MS = 400
#: What the rater reads when a press comes too soon (the app and the page's key guard).
TOO_SOON_HINT = "Too fast — look at the photo first"


@dataclass(frozen=True)
class OnScreen:
    """The item the rater's screen shows and since when (``time.monotonic()`` seconds).

    ``since`` is taken when the server starts drawing the item, before its photo is sent, so the
    time the photo has really been in front of the rater is never longer than ``now - since``.
    """

    item: str
    since: float


def check_seen(item: str, on_screen: OnScreen | None, min_view_ms: int,
               now: float | None = None) -> None:
    """Refuse an answer for ``item`` unless it is the item on screen, shown ``min_view_ms`` ago.

    An answer carrying another item than the one on screen (a press meant for the photo before,
    arriving after the screen moved on) and an answer that comes sooner than ``min_view_ms``
    after the item was put on screen raise :class:`TooSoonError`; nothing is saved.

    >>> check_seen("AAA-AAAA", OnScreen("AAA-AAAA", 10.0), 400, now=10.5)
    >>> check_seen("AAA-AAAA", OnScreen("AAA-AAAA", 10.0), 400, now=10.12)
    Traceback (most recent call last):
    ...
    assess.rate.TooSoonError: AAA-AAAA: answered 120 ms after it was shown (at least 400 ms)
    >>> check_seen("AAA-AAAA", OnScreen("CCC-CCCC", 1.0), 400, now=10.0)
    Traceback (most recent call last):
    ...
    assess.rate.TooSoonError: AAA-AAAA: not on screen (CCC-CCCC is)
    """
    if on_screen is None or on_screen.item != item:
        shown = on_screen.item if on_screen is not None else "nothing"
        raise TooSoonError(f"{item}: not on screen ({shown} is)")
    elapsed_ms = 1000 * ((time.monotonic() if now is None else now) - on_screen.since)
    if elapsed_ms < min_view_ms:
        raise TooSoonError(f"{item}: answered {elapsed_ms:.0f} ms after it was shown "
                           f"(at least {min_view_ms} ms)")


@dataclass(frozen=True)
class Item:
    """One entry of a worklist: a single photo or a pair (``photos`` = ``(left, right)``)."""

    item: str
    kind: str
    scale: str
    region: str
    photos: tuple[str, ...]
    view: str = ""  # e.g. "left", "oblique"; empty for a region photographed in one view


@dataclass(frozen=True)
class RaterSet:
    """What the app knows of a blinded set: the rater folder's ``set.json`` (no key)."""

    root: Path
    set_id: str
    presentation: str
    scales: Mapping[str, Scale]
    counts: Mapping[str, int]
    raters: Mapping[str, Mapping[str, object]]
    references: Mapping[str, Mapping[int, Path]] = field(default_factory=dict)
    #: How long a photo must have been on screen before it can be rated (``set.json`` ``rating``).
    min_view_ms: int = DEFAULT_MIN_VIEW_MS
    #: How long a sign-in holds, across reloads and restarts (``set.json`` ``rating``).
    session_hours: float = DEFAULT_SESSION_HOURS

    def worklist(self, rater: str) -> "Worklist":
        """The rater's worklist (``worklists/<rater>.json``), checked against the set."""
        if rater not in self.raters:
            raise RateError(f"{self.root / 'set.json'}: no rater {rater!r} in this set")
        return Worklist.load(self, rater)


def _fail(path: Path, message: str) -> RateError:
    return RateError(f"{path}: {message}")


def load_rater_set(rater_dir: str | Path) -> RaterSet:
    """Read and check ``<rater_dir>/set.json``.

    Raises :class:`RateError` naming the file and field when the folder is not a rater folder
    written by ``assess randomize``.
    """
    root = Path(rater_dir)
    path = root / "set.json"
    if not root.is_dir():
        raise _fail(root, "no such folder; give the rater folder of a set (assignments/<set-id>/rater)")
    if (root / "key.csv").exists() or (root / "key").is_dir():
        raise _fail(root, "this folder holds the unblinding key; give the rater folder only")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(path, "missing; give the rater folder written by `assess randomize` "
                    "(assignments/<set-id>/rater)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"cannot be read ({exc}); copy the rater folder again") from None
    if not isinstance(data, dict):
        raise _fail(path, "must be a JSON object")
    set_id = data.get("set_id")
    if not isinstance(set_id, str) or not NAME_RE.match(set_id):
        raise _fail(path, f"set_id: missing or not a plain name ({set_id!r})")
    presentation = data.get("presentation", "single")
    if presentation not in ("single", "pairs"):
        raise _fail(path, f"presentation: must be \"single\" or \"pairs\", not {presentation!r}")
    raw_scales = data.get("scales")
    if not isinstance(raw_scales, dict) or not raw_scales:
        raise _fail(path, "scales: missing")
    scales = {}
    for sid, sdata in raw_scales.items():
        if not isinstance(sdata, dict):
            raise _fail(path, f"scales.{sid}: must be an object")
        scales[sid] = Scale.from_dict({**sdata, "id": sid}, where=f"{path}: scales.{sid}")
    raters = data.get("raters")
    if not isinstance(raters, dict) or not raters:
        raise _fail(path, "raters: missing")
    for rid, rdata in raters.items():
        if not NAME_RE.match(str(rid)):
            raise _fail(path, f"raters: {rid!r} is not a plain rater id")
        if (not isinstance(rdata, dict) or not _is_hex(rdata.get("salt"))
                or not _is_hex(rdata.get("hash"))):
            raise _fail(path, f"raters.{rid}: needs salt and hash (hex)")
    references: dict[str, dict[int, Path]] = {}
    for sid, levels in (data.get("references") or {}).items():
        if sid not in scales or not isinstance(levels, dict):
            raise _fail(path, f"references.{sid}: not a scale of this set")
        for value, rel in levels.items():
            ref = (root / str(rel)).resolve()
            if root.resolve() not in ref.parents or not ref.is_file():
                raise _fail(path, f"references.{sid}.{value}: {rel!r} is not a file in the rater folder")
            try:
                references.setdefault(sid, {})[int(value)] = ref
            except ValueError:
                raise _fail(path, f"references.{sid}: {value!r} is not a level value") from None
    counts = {k: v for k, v in (data.get("counts") or {}).items() if isinstance(v, int)}
    return RaterSet(root=root.resolve(), set_id=set_id, presentation=presentation, scales=scales,
                    counts=counts, raters=raters, references=references,
                    min_view_ms=_min_view_ms(path, data.get("rating")),
                    session_hours=_session_hours(path, data.get("rating")))


def _session_hours(path: Path, rating: object) -> float:
    """``rating.session_hours`` of ``set.json``; sets written before it existed get the default."""
    value = rating.get("session_hours", DEFAULT_SESSION_HOURS) if isinstance(rating, dict) else \
        DEFAULT_SESSION_HOURS
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not 0 < value <= MAX_SESSION_HOURS:
        raise _fail(path, f"rating.session_hours: must be a number of hours above 0 and at most "
                    f"{MAX_SESSION_HOURS:g}, not {value!r}; copy the rater folder again")
    return float(value)


def _min_view_ms(path: Path, rating: object) -> int:
    """``rating.min_view_ms`` of ``set.json``; sets written before it existed get the default."""
    if rating is None:
        return DEFAULT_MIN_VIEW_MS
    value = rating.get("min_view_ms", DEFAULT_MIN_VIEW_MS) if isinstance(rating, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
        raise _fail(path, f"rating.min_view_ms: must be a whole number of milliseconds from 0 to "
                    f"10000, not {value!r}; copy the rater folder again")
    return value


def _is_hex(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


_DUMMY_SALT = bytes(16)


def check_access(rater_set: RaterSet, rater: str, code: str) -> bool:
    """Whether ``code`` is the rater's access code (salted PBKDF2, compared in constant time).

    An unknown rater id costs the same work as a known one and gives the same answer (``False``),
    so neither the answer nor its timing says whether the id exists.
    """
    entry = rater_set.raters.get(rater.strip()) if isinstance(rater, str) else None
    salt = bytes.fromhex(entry["salt"]) if entry else _DUMMY_SALT
    expected = entry["hash"] if entry else "0" * 64
    given = hashlib.pbkdf2_hmac("sha256", str(code).strip().encode(), salt, PBKDF2_ITERATIONS).hex()
    return hmac.compare_digest(given, str(expected)) and entry is not None


#: Wrong attempts (per rater id, and per client) that are checked without any wait.
FREE_ATTEMPTS = 3
#: The longest wait after wrong attempts: a rater is never kept out longer than this.
MAX_WAIT_SECONDS = 60
#: Wrong attempts older than this no longer count.
FAILURE_WINDOW = timedelta(minutes=15)
#: One access-code check at a time in a server: a flood of attempts costs at most one core.
_HASHING = threading.Lock()


def backoff_seconds(failures: int) -> float:
    """How long to wait after the latest of ``failures`` wrong attempts before the next check.

    >>> [backoff_seconds(n) for n in (0, 2, 3, 4, 5, 6, 7, 8, 20)]
    [0, 0, 2, 4, 8, 16, 32, 60, 60]
    """
    if failures < FREE_ATTEMPTS:
        return 0
    return min(MAX_WAIT_SECONDS, 2 ** (failures - FREE_ATTEMPTS + 1))


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt.

    ``ok``: signed in. ``checked``: the code was checked (``False`` when refused unchecked during
    a wait). ``wait_seconds``: how long until the next attempt will be checked.
    """

    ok: bool
    checked: bool = True
    wait_seconds: float = 0.0


def _wait_left(times: list[str], now: datetime) -> float:
    if not times:
        return 0.0
    last = datetime.fromisoformat(times[-1].replace("Z", "+00:00"))
    return max(0.0, backoff_seconds(len(times)) - (now - last).total_seconds())


def sign_in(rater_set: RaterSet, db_path: str | Path, rater: str, code: str, client: str,
            now: datetime | None = None) -> SignIn:
    """Check a sign-in attempt with the back-off of earlier wrong ones, and log it.

    After :data:`FREE_ATTEMPTS` wrong attempts for a rater id, or from a client, since its last
    successful sign-in, the next is refused unchecked (no hashing, so a flood costs little) until
    :func:`backoff_seconds` have passed since the latest wrong one: 2 s, 4 s, ... up to
    :data:`MAX_WAIT_SECONDS`. Refused attempts do not lengthen the wait. Every attempt goes to the
    ``access_log`` table (:func:`assess.store.log_access`), which the waits are counted from, and
    to the audit log (:func:`assess.store.log_audit`). An unknown rater id is treated as a known
    one, so the answers do not say whether an id exists.
    """
    now = now or datetime.now(timezone.utc)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as the log keeps times
    rater = (rater or "").strip() if isinstance(rater, str) else ""
    client = client or "unknown"
    set_id = rater_set.set_id
    with closing(store.connect(db_path)) as conn:

        def wait_left() -> float:
            since = _iso(now - FAILURE_WINDOW)
            return max(_wait_left(store.failed_access_times(conn, set_id, since, rater=rater), now),
                       _wait_left(store.failed_access_times(conn, set_id, since, client=client), now))

        wait = wait_left()
        if wait > 0:
            store.log_access(conn, set_id, rater, client, "throttled", at=_iso(now))
            store.log_audit(conn, set_id, "sign-in throttled", "access code", client, rater=rater,
                            detail=f"refused unchecked: wait {wait:.0f} s", at=_iso(now))
            return SignIn(False, checked=False, wait_seconds=wait)
        with _HASHING:
            ok = check_access(rater_set, rater, code)
        store.log_access(conn, set_id, rater, client, "ok" if ok else "wrong", at=_iso(now))
        store.log_audit(conn, set_id, "sign-in" if ok else "sign-in refused", "access code",
                        client, rater=rater, at=_iso(now),
                        detail=None if ok else "rater id or access code not recognised")
        return SignIn(True) if ok else SignIn(False, wait_seconds=wait_left())


def client_of(ip_address: str | None, forwarded_for: str | None) -> str:
    """Who a sign-in attempt comes from, for the per-client wait and the log.

    The address the server sees (``st.context.ip_address``). Streamlit gives none for the
    server's own machine: that is a browser on it, or a reverse proxy on it, whose
    ``X-Forwarded-For`` then names the client (the last address, the one the proxy added).

    >>> client_of("10.1.2.3", "6.6.6.6"), client_of(None, "6.6.6.6, 10.1.2.3"), client_of(None, None)
    ('10.1.2.3', '10.1.2.3', 'local')
    """
    if isinstance(ip_address, str) and ip_address:
        return ip_address[:64]
    last = (forwarded_for if isinstance(forwarded_for, str) else "").split(",")[-1].strip()
    return last[:64] if last else "local"


def _iso(when: datetime) -> str:
    """``when`` as :func:`assess.store.utc_now` writes times (ISO 8601 UTC, milliseconds)."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def default_db(rater_set: RaterSet, cwd: str | Path | None = None) -> Path:
    """``results/<set-id>/ratings.sqlite`` relative to ``cwd`` (default: the current folder)."""
    return Path(cwd or ".") / "results" / rater_set.set_id / "ratings.sqlite"


# ------------------------------------------------------------------------------------ worklist


@dataclass
class WorklistState:
    """The rater's ratings as the database has them now."""

    current: dict[str, store.Event]
    locked_at: str | None
    pace: list[float]
    signature: store.Signature | None = None


class Worklist:
    """One signed-in rater's worklist and every read and write of their ratings.

    Every method works for this rater only: the store is always called with this rater's id and
    an item must be on this worklist to be rated.
    """

    def __init__(self, rater_set: RaterSet, rater: str, items: tuple[Item, ...]):
        self.set = rater_set
        self.rater = rater
        self.items = items
        self.index = {it.item: i for i, it in enumerate(items)}

    @classmethod
    def load(cls, rater_set: RaterSet, rater: str) -> "Worklist":
        path = rater_set.root / "worklists" / f"{rater}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _fail(path, "missing; copy the whole rater folder again") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(path, f"cannot be read ({exc}); copy the rater folder again") from None
        if not isinstance(data, dict) or data.get("rater") != rater or data.get("set_id") != rater_set.set_id:
            raise _fail(path, "rater or set_id does not match set.json; copy the rater folder again")
        raw = data.get("items")
        if not isinstance(raw, list) or not raw:
            raise _fail(path, "items: missing or empty")
        items = []
        for i, entry in enumerate(raw):
            where = f"items[{i}]"
            if not isinstance(entry, dict):
                raise _fail(path, f"{where}: must be an object")
            code, kind, scale = entry.get("item"), entry.get("kind"), entry.get("scale")
            photos = entry.get("photos")
            if not isinstance(code, str) or not CODE_RE.match(code):
                raise _fail(path, f"{where}.item: {code!r} is not a code")
            if kind not in ("single", "pair"):
                raise _fail(path, f"{where}.kind: must be \"single\" or \"pair\", not {kind!r}")
            if scale not in rater_set.scales:
                raise _fail(path, f"{where}.scale: {scale!r} is not a scale of set.json")
            if (not isinstance(photos, list) or len(photos) != (1 if kind == "single" else 2)
                    or not all(isinstance(p, str) and CODE_RE.match(p) for p in photos)):
                raise _fail(path, f"{where}.photos: give {'one code' if kind == 'single' else 'two codes'}")
            for p in photos:
                if not (rater_set.root / "images" / "display" / f"{p}.jpg").is_file():
                    raise _fail(path, f"{where}.photos: images/display/{p}.jpg is missing; "
                                "copy the whole rater folder again")
            view = entry.get("view", "")
            if not isinstance(view, str):
                raise _fail(path, f"{where}.view: must be text, not {view!r}")
            items.append(Item(code, kind, scale, str(entry.get("region", "")), tuple(photos), view))
        if len({it.item for it in items}) != len(items):
            raise _fail(path, "items: an item code appears twice")
        return cls(rater_set, rater, tuple(items))

    # -- database

    @contextmanager
    def _conn(self, db_path: str | Path) -> Iterator:
        with closing(store.connect(db_path)) as conn:
            yield conn

    def state(self, db_path: str | Path) -> WorklistState:
        """This rater's current ratings, lock and pace, read fresh from the database."""
        with self._conn(db_path) as conn:
            current = {k: v for k, v in store.current(conn, self.set.set_id, self.rater).items()
                       if k in self.index}
            signature = store.signature(conn, self.set.set_id, self.rater)
            pace = store.first_answer_seconds(conn, self.set.set_id, self.rater)
        return WorklistState(current, signature.locked_at if signature else None, pace, signature)

    def history(self, db_path: str | Path, item: str) -> list[store.Event]:
        """Every revision of one of this rater's items, oldest first."""
        self._check_item(item)
        with self._conn(db_path) as conn:
            return store.history(conn, self.set.set_id, self.rater, item)

    def _check_item(self, item: str) -> Item:
        if item not in self.index:
            raise RateError(f"{item} is not on the worklist of {self.rater}")
        return self.items[self.index[item]]

    def save(self, db_path: str | Path, item: str, *, score: int | float | None = None,
             better: str | None = None, first: str | None = None, cannot_assess: str | None = None,
             comment: str | None = None, change_reason: str | None = None,
             shown_at: str | None = None, seconds: float | None = None,
             on_screen: OnScreen | None | object = ...) -> store.Event:
        """Save one answer of this rater for one of their items; committed when this returns.

        The app passes ``on_screen`` (what the rater's screen shows): the answer is then taken only
        for the item on screen, once it has been shown the set's ``min_view_ms``
        (:func:`check_seen`, :class:`TooSoonError`). Left out, the answer is not timed (answers
        entered by a program).
        """
        it = self._check_item(item)
        if on_screen is not ...:
            check_seen(item, on_screen, self.set.min_view_ms)
        if score is not None:
            if it.kind != "single":
                raise RateError(f"{item} is a pair: answer which looks better and which came first")
            scale = self.set.scales[it.scale]
            if not scale.accepts(score):
                what = (f"on the range {scale.minimum} to {scale.maximum} in steps of {scale.step}"
                        if scale.continuous else "a level")
                raise RateError(f"{item}: {score!r} is not {what} of {scale.name}")
        if (better is not None or first is not None) and it.kind != "pair":
            raise RateError(f"{item} is a single photo: give a level of its scale")
        if cannot_assess == "other" and not (comment or "").strip():
            raise RateError(f"{item}: say why the photo cannot be assessed")
        with self._conn(db_path) as conn:
            return store.record(conn, self.set.set_id, self.rater, item, score=score, better=better,
                                first=first, cannot_assess=cannot_assess, comment=comment,
                                change_reason=change_reason, shown_at=shown_at, seconds=seconds)

    def sign_and_lock(self, db_path: str | Path, *, code: str | None = None,
                      sso_account: str | None = None, client: str | None = None) -> store.Signature:
        """Submit and lock this rater's worklist with their electronic signature.

        The signer proves again who they are: ``code`` is their access code, re-entered (checked
        as at sign-in), or ``sso_account`` the account of a fresh single sign-on (the app checks
        with :func:`recent_sign_in` that it is fresh). The signature records the chain head, the
        signer, the time, the meaning (:data:`assess.chain.MEANING`) and the method. The lock,
        or a refused code, goes to the audit log with ``client`` (:func:`client_of`).

        Raises
        ------
        SignatureError
            When the access code is not the rater's; nothing is locked then.
        """
        if (code is None) == (sso_account is None):
            raise RateError("sign either with the access code or through single sign-on")
        client = client or "unknown"
        if code is not None:
            if not check_access(self.set, self.rater, code):
                audit(db_path, self.set, "lock refused", "access code", client, rater=self.rater,
                      detail="the access code re-entered to sign was not right")
                raise SignatureError(f"{self.rater}: the access code is not right; the ratings "
                                     "are not submitted")
            method, account = "access code", None
        else:
            method, account = "single sign-on", str(sso_account).strip().lower()
        with self._conn(db_path) as conn:
            sig = store.sign(conn, self.set.set_id, self.rater, [it.item for it in self.items],
                             auth_method=method, account=account)
            store.log_audit(conn, self.set.set_id, "lock", method, client, rater=self.rater,
                            account=account, detail=f"receipt {chain.short(sig.hash)}", once=True)
            return sig

    def lock(self, db_path: str | Path) -> str:
        """Submit and lock this rater's worklist (every item must be rated); returns the time."""
        with self._conn(db_path) as conn:
            return store.lock(conn, self.set.set_id, self.rater, [it.item for it in self.items])


# ------------------------------------------------------------------------------------ status


@dataclass(frozen=True)
class RaterStatus:
    """A coordinator's view of one rater: progress only, never a score."""

    rater: str
    rated: int
    items: int
    cannot_assess: int
    repeats_done: int | None
    repeats: int | None
    seconds: float
    locked_at: str | None
    #: Sign-in attempts under this rater's id that were refused (wrong code, or during a wait).
    failed_sign_ins: int = 0
    #: When the rater last saved an answer or signed (ISO 8601 UTC), ``None`` before that.
    last_activity: str | None = None
    #: Where the rater works (``blinding.sites`` of the study; read with the key folder).
    site: str | None = None


def status(rater_dir: str | Path, db: str | Path | None = None,
           key_dir: str | Path | None = None) -> list[RaterStatus]:
    """Progress per rater of a set from the rater folder and the ratings database (read-only).

    The rater folder does not say which items are disguised repeats, so ``repeats_done`` is
    ``None`` unless ``key_dir`` (the set's key folder) is given; ``repeats`` is then the number of
    repeats on each worklist. The key is read only when given, and its checksum must match the
    one sealed in ``set.json``. The raters' sites come from the key folder's ``study.toml``
    (``blinding.sites``); the rows are then ordered by site.
    """
    rs = load_rater_set(rater_dir)
    db = store.location(db) if db is not None else default_db(rs)
    repeat_codes = _repeat_codes(rs, key_dir) if key_dir is not None else None
    sites = _sites(key_dir)
    if store.exists(db):
        current = store.current_ratings(db)
        events = store.all_events(db)
        locked = store.locks(db, rs.set_id)
        failures = store.sign_in_failures(db, rs.set_id)
        current = current[current["set_id"] == rs.set_id]
        events = events[events["set_id"] == rs.set_id]
    else:
        current = events = None
        locked, failures = {}, {}
    out = []
    for rater in rs.raters:
        wl = rs.worklist(rater)
        codes = set(wl.index)
        if current is not None:
            mine = current[(current["rater"] == rater) & current["item"].isin(codes)]
            rated = set(mine["item"])
            cannot = int(mine["cannot_assess"].notna().sum())
            own = events.loc[events["rater"] == rater]
            seconds = float(own["seconds"].fillna(0).sum())
            last = max([*own["answered_at"], *([locked[rater]] if rater in locked else [])],
                       default=None)
        else:
            rated, cannot, seconds, last = set(), 0, 0.0, None
        if repeat_codes is None:
            repeats_done = repeats = None
        else:
            mine_repeats = codes & repeat_codes
            repeats, repeats_done = len(mine_repeats), len(mine_repeats & rated)
        out.append(RaterStatus(rater, len(rated), len(codes), cannot, repeats_done, repeats,
                               seconds, locked.get(rater), failures.get(rater, 0), last,
                               sites.get(rater)))
    if sites:
        out.sort(key=lambda r: (r.site is None, r.site or ""))
    return out


def _sites(key_dir: str | Path | None) -> dict[str, str]:
    """Rater → site from the key folder's copy of the study, ``{}`` without one."""
    if key_dir is None or not (Path(key_dir) / "study.toml").is_file():
        return {}
    from .study import StudyError, sites_of

    try:
        return sites_of(Path(key_dir) / "study.toml")
    except StudyError as exc:
        raise RateError(str(exc)) from None


def other_sign_in_failures(rater_dir: str | Path, db: str | Path | None = None) -> int:
    """Refused sign-in attempts under ids that are no rater of the set (read-only)."""
    rs = load_rater_set(rater_dir)
    db = store.location(db) if db is not None else default_db(rs)
    if not store.exists(db):
        return 0
    return sum(n for rater, n in store.sign_in_failures(db, rs.set_id).items()
               if rater not in rs.raters)


def _repeat_codes(rs: RaterSet, key_dir: str | Path) -> set[str]:
    key_csv = Path(key_dir) / "key.csv"
    try:
        raw = key_csv.read_bytes()
    except OSError:
        raise RateError(f"{key_csv}: cannot read the key; give the key folder of this set "
                        "(assignments/<set-id>/key)") from None
    sealed = json.loads((rs.root / "set.json").read_text(encoding="utf-8")).get("key_sha256")
    if sealed and hashlib.sha256(raw).hexdigest() != sealed:
        raise RateError(f"{key_csv}: does not match the checksum sealed in set.json; "
                        "is it the key of this set?")
    table = parse_table(raw, key_csv, ("code", "repeat_of", "pair"), error=RateError,
                        what="key", written_safe=True)
    return {row["pair"].strip() or row["code"] for _, row in table.records()
            if row["repeat_of"].strip()}


def format_status(rows: list[RaterStatus]) -> str:
    """A plain table for the terminal; with a site column first when the sites are known.

    >>> print(format_status([RaterStatus("derm1", 3, 10, 1, None, None, 95.0, None, 4,
    ...                                  "2026-01-05T09:12:40.120Z")]))
    rater  rated  cannot assess  repeats done  time spent  last activity         locked  failed sign-ins
    derm1  3/10   1              needs --key   1 min 35 s  2026-01-05 09:12 UTC  no      4
    """
    with_site = any(r.site is not None for r in rows)
    header = (("site",) if with_site else ()) + (
        "rater", "rated", "cannot assess", "repeats done", "time spent", "last activity",
        "locked", "failed sign-ins")
    lines = [header]
    for r in rows:
        repeats = "needs --key" if r.repeats is None else f"{r.repeats_done}/{r.repeats}"
        locked = f"yes, {r.locked_at[:16].replace('T', ' ')} UTC" if r.locked_at else "no"
        last = f"{r.last_activity[:16].replace('T', ' ')} UTC" if r.last_activity else "-"
        lines.append(((r.site or "-",) if with_site else ()) + (
            r.rater, f"{r.rated}/{r.items}", str(r.cannot_assess), repeats,
            format_duration(r.seconds), last, locked, str(r.failed_sign_ins)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                     for line in lines)


def verify(rater_dir: str | Path, db: str | Path | None = None,
           expect: Mapping[str, str] | None = None) -> store.ChainReport:
    """Verify the ratings of a set: every worklist's chain, its lock signature, the guard triggers.

    Reads the database read-only. ``expect`` maps raters to the chain heads noted when they
    signed (the receipt; 12 or more hex digits): a worklist that ends in another head was
    rewritten after signing. Raises :class:`store.IntegrityError` naming the rater, the item and
    the event of every break; returns the report (with its warnings) when all is whole.
    """
    rs = load_rater_set(rater_dir)
    db = store.location(db) if db is not None else default_db(rs)
    report = store.verify(db, rs.set_id).check()
    store.verify(db, panel.adjudication_worklist(rs.set_id)).check()  # the adjudicator's, if any
    store.verify(db, panel.sent_worklist(rs.set_id)).check()  # codes sent from the key's side
    for other in (store.set_ids(db) if store.exists(db) else []):  # training attempts, results
        if other.startswith(f"{rs.set_id}:training:") or other == f"{rs.set_id}:qualification":
            store.verify(db, other).check()
    heads = {rater: wl.head for (_, rater), wl in report.worklists.items()}
    wrong = []
    for rater, noted in (expect or {}).items():
        noted = noted.strip().lower()
        if rater not in rs.raters:
            raise RateError(f"--expect {rater}: not a rater of this set ({', '.join(rs.raters)})")
        if len(noted) < 12 or any(c not in "0123456789abcdef" for c in noted):
            raise RateError(f"--expect {rater}: give the chain head noted at signing, 12 or more "
                            "hex digits")
        if not (heads.get(rater) or "").startswith(noted):
            wrong.append(f"  {rater}: the ratings end in chain head {(heads.get(rater) or '-')[:12]}"
                         f", not {noted[:12]} as noted when the rater signed: they were rewritten "
                         "or are of another database")
    if wrong:
        raise store.IntegrityError(f"{db}: the chain heads do not match the ones noted:\n"
                                   + "\n".join(wrong))
    return report


def format_chains(report: store.ChainReport, raters: Iterable[str] = ()) -> str:
    """The verified chains as a plain table: events, unchained events, chain head, signature.

    >>> from assess import chain
    >>> wl = chain.WorklistChain("S1", "derm1", events=12, last="3f2a9c1e7b04d5e6" * 4)
    >>> print(format_chains(store.ChainReport(Path("x"), 2, {("S1", "derm1"): wl}, [], []),
    ...                     ["derm1", "derm2"]))
    rater  events  unchained  chain head    signed
    derm1  12      0          3f2a9c1e7b04  no
    derm2  0       0          -             no
    """
    from . import chain

    by_rater = {rater: wl for (_, rater), wl in report.worklists.items()}
    header = ("rater", "events", "unchained", "chain head", "signed")
    lines = [header]
    for rater in list(dict.fromkeys([*raters, *by_rater])):
        wl = by_rater.get(rater) or chain.WorklistChain("", rater)
        if wl.signed:
            lock = wl.lock
            signed = (f"{str(lock['locked_at'])[:16].replace('T', ' ')} UTC by {lock['signer']} "
                      f"({lock['auth_method']}{', ' + str(lock['account']) if lock.get('account') else ''})")
        else:
            signed = "locked, unsigned" if wl.lock is not None else "no"
        lines.append((rater, str(wl.events), str(wl.unchained), chain.short(wl.head), signed))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                     for line in lines)


# ------------------------------------------------------------------------------------ single sign-on


def load_sso_raters(path: str | Path, rater_set: RaterSet) -> dict[str, str]:
    """Read the accounts allowed to rate when the app runs behind single sign-on.

    A CSV with the columns ``account,rater``: ``account`` is the e-mail address the site's
    identity provider reports for the person (``st.user.email``), ``rater`` a rater id of the set.
    Returns account (lower case) → rater id. An account may rate as one rater only.
    """
    path = Path(path)
    table = read_table(path, ("account", "rater"), error=RateError, fold_case=True,
                       what="list of accounts")
    if not table.rows:
        raise RateError(f"{path}: needs the columns account,rater (one row per person)")
    out: dict[str, str] = {}
    for n, row in table.records():
        account = (row["account"] or "").strip().lower()
        rater = (row["rater"] or "").strip()
        if not account or rater not in rater_set.raters:
            raise RateError(f"{path}, line {n}: give an account and one of the set's raters "
                            f"({', '.join(rater_set.raters)})")
        if account in out and out[account] != rater:
            raise RateError(f"{path}, line {n}: {account} is listed for two raters")
        out[account] = rater
    return out


def audit(db_path: str | Path, rater_set: RaterSet, event: str, method: str, client: str, *,
          rater: str | None = None, account: str | None = None, detail: str | None = None,
          once: bool = False) -> None:
    """Record one entry of the set's audit log (:func:`assess.store.log_audit`)."""
    with closing(store.connect(db_path)) as conn:
        store.log_audit(conn, rater_set.set_id, event, method, client, rater=rater,
                        account=account, detail=detail, once=once)


def _signed_in_at(claims: Mapping[str, object]) -> str:
    """When the provider signed the person in, in words (``auth_time``, else ``iat``)."""
    when = claims.get("auth_time", claims.get("iat"))
    try:
        return "signed in at the provider " + _iso(datetime.fromtimestamp(float(when), timezone.utc))
    except (TypeError, ValueError, OverflowError, OSError):
        return "signed in at the provider (no time given)"


def sso_sign_in(rater_set: RaterSet, db_path: str | Path, accounts: Mapping[str, str],
                claims: Mapping[str, object], client: str) -> str | None:
    """The rater id of a person the identity provider signed in, or ``None`` when refused.

    ``claims`` are the ID token's (``st.user``); ``email`` is looked up, case-blind, in
    ``accounts`` (:func:`load_sso_raters`). The sign-in, or the refusal of an account that is
    no rater of the set, goes to the audit log once per sign-in at the provider (a reload of the
    page does not add another entry).
    """
    account = str(claims.get("email") or "").strip().lower()
    rater = accounts.get(account) if account else None
    when = _signed_in_at(claims)
    if rater is None:
        why = "no e-mail address from the provider" if not account else "account is no rater of this set"
        audit(db_path, rater_set, "sign-in refused", "single sign-on", client,
              account=account or str(claims.get("sub") or ""), detail=f"{why}; {when}", once=True)
        return None
    audit(db_path, rater_set, "sign-in", "single sign-on", client, rater=rater, account=account,
          detail=when, once=True)
    return rater


#: What the ``[auth]`` section of the single sign-on settings must give (Streamlit's ``st.login``).
SSO_CONFIG_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret",
                   "server_metadata_url")


def load_sso_config(path: str | Path, rater_set: RaterSet) -> Path:
    """Check the single sign-on settings file; returns its absolute path.

    A TOML file in the words of Streamlit's ``.streamlit/secrets.toml``: an ``[auth]`` section
    with :data:`SSO_CONFIG_KEYS` (``redirect_uri`` ending in ``/oauth2callback``). It holds the
    client secret and the cookie secret, so it is refused inside the rater folder (which is
    copied to raters) and when others than its owner may read it.
    """
    import tomllib

    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        mode = path.stat().st_mode
    except OSError as exc:
        raise RateError(f"{path}: cannot read the single sign-on settings ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RateError(f"{path}: not a TOML file ({exc}); see docs/deploy.md") from None
    if path.is_relative_to(rater_set.root.resolve()):
        raise RateError(f"{path}: the single sign-on settings hold secrets and must not be in the "
                        "rater folder, which is copied to raters; keep them with the server")
    if os.name == "posix" and mode & 0o077:
        raise RateError(f"{path}: others than its owner may read it, and it holds secrets; "
                        f"run `chmod 600 {path}`")
    auth = data.get("auth")
    missing = [k for k in SSO_CONFIG_KEYS if not isinstance(auth, dict) or not auth.get(k)]
    if missing:
        raise RateError(f"{path}: [auth] needs {', '.join(missing)} (see docs/deploy.md, "
                        "\"Single sign-on\")")
    if not str(auth["redirect_uri"]).endswith("/oauth2callback"):
        raise RateError(f"{path}: [auth] redirect_uri must be the app's address followed by "
                        "/oauth2callback")
    return path


def _secrets_flags(sso_config: Path | None) -> list[str]:
    """Streamlit's usual secrets files, then the single sign-on settings (which win)."""
    if sso_config is None:
        return []
    files = [Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml",
             sso_config]
    return [f"--secrets.files={f}" for f in files]


# ------------------------------------------------------------------------------------ serving


def streamlit_flags(host: str, port: int) -> list[str]:
    """The Streamlit options the rating app runs with (headless, private, no file watcher)."""
    return [
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        f"--browser.serverAddress={host}",
        f"--browser.serverPort={port}",
        "--client.toolbarMode=minimal",
        "--client.showErrorDetails=none",
        "--client.showSidebarNavigation=false",
        "--global.developmentMode=false",
        # A full garbage collection after every run holds the interpreter for tens of
        # milliseconds while the page is still being sent; the app allocates little per run.
        "--runner.postScriptGC=false",
        "--theme.base=light",
    ]


def prepare_run_dir(rater_set: RaterSet, run_dir: str | Path) -> Path:
    """Lay out a per-run app folder: ``app.py``, a link to the script, and nothing else.

    Streamlit's static serving stays off: photos are served by the app's photo route only
    (:mod:`assess.web`).
    """
    run_dir = Path(run_dir)
    script = run_dir / "app.py"
    script.symlink_to(APP_SCRIPT)
    return script


RUN_DIR_PREFIX = "assess-"


def sweep_run_dirs(parent: str | Path | None = None) -> list[Path]:
    """Remove the app folders (see :func:`prepare_run_dir`) of servers that have ended.

    A server removes its folder when it stops; one that was killed outright (``kill -9``, a power
    cut) cannot. Each folder is named after its server's process id; a folder is removed only when
    that process is gone and the folder holds nothing but the two links. Returns what was removed.
    """
    parent = Path(parent if parent is not None else tempfile.gettempdir())
    removed = []
    for folder in parent.glob(f"{RUN_DIR_PREFIX}*-*"):
        pid = folder.name[len(RUN_DIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):  # another user's live process, or not a pid
            continue
        try:
            entries = list(folder.iterdir())
            if not entries or any(not e.is_symlink() or e.name not in ("app.py", "static")
                                  for e in entries):
                continue
            for entry in entries:
                entry.unlink()
            folder.rmdir()
        except OSError:
            continue
        removed.append(folder)
    return removed


@contextmanager
def neutral_script_path(script: str | Path) -> Iterator[str]:
    """A path to the app script that says nothing about the server, for as long as it is open.

    Streamlit sends the main script's path to every browser (``new_session.main_script_path``).
    The per-run folder's own path names the temporary folder, the server's process id and, where
    the temporary folder is in a home folder, the user. Where the system offers ``/dev/fd`` (Linux),
    the script is reached through a handle on its folder instead: ``/dev/fd/<n>/app.py``, which
    names only a small handle number. Elsewhere the script's own path is given.
    """
    script = Path(script)
    try:
        fd = os.open(script.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield str(script)
        return
    try:
        neutral = f"/dev/fd/{fd}/{script.name}"
        try:
            usable = os.path.samefile(neutral, script)
        except OSError:
            usable = False
        yield neutral if usable else str(script)
    finally:
        os.close(fd)


def serve(rater_dir: str | Path, db: str | Path | None = None, host: str = "127.0.0.1",
          port: int = 8501, sso_raters: str | Path | None = None,
          sso_config: str | Path | None = None, reference: str | Path | None = None) -> None:
    """Serve the rating app for a rater folder until interrupted (blocks).

    ``reference``: the set's ``key/reference.csv`` when the set has training worklists
    (``[qualification]``): checked against the sealed set and kept in the server process
    (:func:`assess.training.load_reference`); such a set is refused without it.

    Checks the folder and opens (or creates) the database first, so a mistake is reported before
    the server starts. With ``sso_raters`` (see :func:`load_sso_raters`) raters sign in through
    the site's identity provider (``st.login``) instead of with access codes; ``sso_config``
    (see :func:`load_sso_config`) gives the provider's settings, else Streamlit's own secrets
    files do.
    """
    rs = load_rater_set(rater_dir)
    for rater in rs.raters:
        rs.worklist(rater)
    if sso_raters is not None:
        load_sso_raters(sso_raters, rs)
    if sso_config is not None:
        if sso_raters is None:
            raise RateError("--sso-config: give --sso-raters too (who may rate as whom)")
        sso_config = load_sso_config(sso_config, rs)
    from . import training

    reference = training.check_serve(rs, reference)
    db = store.location(db) if db is not None else default_db(rs)
    from streamlit.web import cli as stcli

    from . import web

    # The server holds one idle connection for its whole life (opening it also checks the file,
    # or the PostgreSQL server and its schema, before the server starts). It is never used for
    # ratings; it keeps SQLite from checkpointing the WAL each time a script run closes the last
    # connection, which would cost every save a few extra disk flushes.
    # The script runs in one thread and the server sends its output from another; switching
    # between them every millisecond (instead of every five) gets each piece of the page out as
    # soon as it is made.
    sys.setswitchinterval(0.001)
    sweep_run_dirs()
    with closing(store.connect(db)), \
            tempfile.TemporaryDirectory(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-") as run_dir, \
            neutral_script_path(prepare_run_dir(rs, run_dir)) as script:
        os.environ[ENV_RATER_DIR] = str(rs.root)
        os.environ[ENV_DB] = str(db if store.is_url(db) else db.resolve())
        if sso_raters is not None:
            os.environ[ENV_SSO] = str(Path(sso_raters).resolve())
        if reference is not None:
            os.environ[training.ENV_REFERENCE] = str(reference)
        try:
            with web.install(lambda base_url: web.routes(rs, db, base_url)):
                stcli.main.main(args=["run", script, *streamlit_flags(host, port),
                                      *_secrets_flags(sso_config)],
                                prog_name="streamlit", standalone_mode=False)
        finally:
            for name in (ENV_RATER_DIR, ENV_DB, ENV_SSO, training.ENV_REFERENCE):
                os.environ.pop(name, None)


def app_config() -> tuple[RaterSet, Path | str, dict[str, str] | None]:
    """What the app was started with (environment of :func:`serve`).

    The rater folder, the database, and the single sign-on accounts (``None`` when raters sign in
    with access codes). Read once per process and environment: the app asks on every script run.
    """
    return _app_config(*(os.environ.get(name) for name in (ENV_RATER_DIR, ENV_DB, ENV_SSO)))


def app_worklist(rater: str) -> Worklist:
    """The worklist of ``rater`` in the app's rater set (:func:`app_config`), read once per process."""
    return _app_worklist(*(os.environ.get(name) for name in (ENV_RATER_DIR, ENV_DB, ENV_SSO)),
                         rater)


@functools.lru_cache(maxsize=64)
def _app_worklist(rater_dir: str | None, db: str | None, sso: str | None, rater: str) -> Worklist:
    return _app_config(rater_dir, db, sso)[0].worklist(rater)


@functools.lru_cache(maxsize=16)
def _app_config(rater_dir: str | None, db: str | None, sso: str | None):
    if not rater_dir or not db:
        raise RateError(f"start the app with `assess rate RATER_DIR` ({ENV_RATER_DIR} and {ENV_DB} "
                        "are not set)")
    rater_set = load_rater_set(rater_dir)
    return rater_set, store.location(db), (load_sso_raters(sso, rater_set) if sso else None)


def display_url(code: str, access: PhotoAccess) -> str:
    """The display copy of a photo as the browser of the signed-in session ``access`` fetches it.

    The link works only with that session's cookie, while it is live, and for a while
    (:mod:`assess.session`).

    >>> display_url("KX7-4MPA", PhotoAccess(bytes(32), "h1")).startswith("assess/photo/h1.")
    True
    """
    from .web import photo_url

    if not CODE_RE.match(code):
        raise RateError(f"{code!r} is not a code")
    return photo_url(access, "display", code)


def full_url(code: str, access: PhotoAccess) -> str:
    """The full-resolution copy of a photo (zoom), for the signed-in session ``access``.

    >>> full_url("KX7-4MPA", PhotoAccess(bytes(32), "h1")).endswith("/full/KX7-4MPA.jpg")
    True
    """
    from .web import photo_url

    if not CODE_RE.match(code):
        raise RateError(f"{code!r} is not a code")
    return photo_url(access, "full", code)
