"""The ratings store: append-only rating events, revisions and locks, on SQLite or PostgreSQL.

This package is the only place that speaks SQL. It holds one contract, kept by both backends:

- ``db`` is a SQLite file (the default, ``results/<set-id>/ratings.sqlite``;
  :mod:`assess.store.sqlite`) or a PostgreSQL URL ``postgresql://user@host:5432/dbname`` for a
  central server (:mod:`assess.store.postgres`; never with a password in it).
- A rating is committed when :func:`record` returns. Nothing is ever updated or deleted: changing a
  rating appends a new revision, the old one stays; guard triggers in the schema refuse ``UPDATE``
  and ``DELETE`` and refuse any new rating from a rater whose worklist is locked, so the rules hold
  for every client of the database, not only for the app.
- Every event is chained to the previous event of its worklist (set, rater) by its hash, and a
  lock is the rater's signature over the worklist's chain head (:mod:`assess.chain` holds the pure
  functions; this module computes them in the write transaction of each insert, which each backend
  serializes per worklist). :func:`verify` recomputes every chain and checks the guard triggers,
  so that a change made past the triggers is named.
- One schema, :data:`TABLES` (in SQLite's words; the PostgreSQL backend translates the types), with
  a version (:data:`SCHEMA_VERSION`) and forward :data:`MIGRATIONS`; an older database is migrated
  forward when opened for writing and read as it is otherwise.

Writers (the rating app) open a connection per script run with :func:`connect` and pass the signed-in
rater to every call. Readers (the scorer, ``assess status``) use :func:`current_ratings`,
:func:`all_events` and :func:`locks`, which open the database read-only.

>>> import tempfile, pathlib
>>> db = pathlib.Path(tempfile.mkdtemp()) / "ratings.sqlite"
>>> with connect(db) as conn:
...     first = record(conn, "S1", "derm1", "KX7-4MPA", score=3, shown_at="2026-01-01T10:00:00Z",
...                    answered_at="2026-01-01T10:00:04Z", seconds=4.0)
...     second = record(conn, "S1", "derm1", "KX7-4MPA", score=2, change_reason="misclick",
...                     shown_at="2026-01-01T10:01:00Z", answered_at="2026-01-01T10:01:02Z")
>>> first.revision, second.revision
(1, 2)
>>> current_ratings(db)[["item", "revision", "score"]].to_dict("records")
[{'item': 'KX7-4MPA', 'revision': 2, 'score': 2}]
>>> len(all_events(db))
2
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .. import chain, levels
from ..errors import AssessError

if TYPE_CHECKING:  # pandas is imported where frames are made: the chain check needs none
    import pandas as pd

__all__ = [
    "BETTER",
    "FIRST",
    "REASONS",
    "Event",
    "StoreError",
    "LockedError",
    "UnavailableError",
    "connect",
    "record",
    "current",
    "history",
    "is_locked",
    "lock",
    "sign",
    "signature",
    "Signature",
    "verify",
    "ChainReport",
    "IntegrityError",
    "first_answer_seconds",
    "current_ratings",
    "set_ids",
    "all_events",
    "locks",
    "utc_now",
    "is_url",
    "location",
    "exists",
    "describe",
    "SCHEMA_VERSION",
    "ACCESS_OUTCOMES",
    "log_access",
    "failed_access_times",
    "sign_in_failures",
    "AUDIT_EVENTS",
    "AUDIT_METHODS",
    "AuditEntry",
    "log_audit",
    "audit_log",
    "Session",
    "session_secret",
    "open_session",
    "session",
    "end_sessions",
    "save_position",
    "position",
]

#: Pair items, question 1: which photo looks better and by how much.
BETTER = ("much_better_left", "better_left", "no_difference", "better_right", "much_better_right")
#: Pair items, question 2: which photo was taken first.
FIRST = ("left", "right", "cannot_tell")
#: Why a photo cannot be assessed.
REASONS = ("out_of_focus", "framing", "lighting", "identifying_feature", "other")

COLUMNS = ("set_id", "rater", "item", "revision", "score", "better", "first", "cannot_assess",
           "comment", "change_reason", "shown_at", "answered_at", "seconds")

#: Version 3: the raters' sign-in sessions. ``sessions``: one row per session, ``id`` the hash of
#: the secret session id that only the rater's cookie holds; ``ended_at`` is set at sign-out or when
#: the coordinator revokes the sessions. ``session_keys``: the key that signs the session cookies
#: and photo links, made once per database and shared by every app process on it.
#: ``rater_positions``: the item each rater was last on, to resume there.
#: Version 3 also: the audit log (sign-ins, refused sign-ins, locks, sign-outs), chained per set.
AUDIT_TABLES = """\
CREATE TABLE IF NOT EXISTS audit_log (
  id INTEGER PRIMARY KEY,
  set_id TEXT NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL, method TEXT NOT NULL,
  rater TEXT, account TEXT, client TEXT NOT NULL, detail TEXT,
  parent TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_set ON audit_log (set_id, id);
"""

SESSION_TABLES = """\
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, set_id TEXT NOT NULL,
  rater TEXT NOT NULL, grant_id TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL, ended_at TEXT);
CREATE INDEX IF NOT EXISTS sessions_rater ON sessions (set_id, rater);
CREATE TABLE IF NOT EXISTS session_keys (name TEXT PRIMARY KEY, secret TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rater_positions (set_id TEXT, rater TEXT, item TEXT NOT NULL,
  at TEXT NOT NULL, PRIMARY KEY (set_id, rater));
"""

# Version 2: events and locks are hash-chained (see assess.chain); version 1 had no chain.
# The one definition of the tables, in SQLite's words; assess.store.postgres translates it.
TABLES = """
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  set_id TEXT NOT NULL, rater TEXT NOT NULL, item TEXT NOT NULL,
  revision INTEGER NOT NULL,
  score INTEGER,
  better TEXT,
  first TEXT,
  cannot_assess TEXT,
  comment TEXT,
  change_reason TEXT,
  shown_at TEXT NOT NULL, answered_at TEXT NOT NULL,
  seconds REAL,
  parent TEXT, hash TEXT,
  UNIQUE (set_id, rater, item, revision)
);
CREATE INDEX IF NOT EXISTS events_worklist ON events (set_id, rater);
CREATE TABLE IF NOT EXISTS locks (set_id TEXT, rater TEXT, locked_at TEXT, head TEXT, signer TEXT,
  account TEXT, meaning TEXT, auth_method TEXT, hash TEXT, PRIMARY KEY (set_id, rater));
CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
""" + AUDIT_TABLES + SESSION_TABLES

#: Version 1 to 2: add the chain columns, the lock signature and the store information; events
#: saved before stay unchained (``store_info.unchained_through`` is the last of them).
MIGRATE_1_TO_2 = """
ALTER TABLE events ADD COLUMN parent TEXT;
ALTER TABLE events ADD COLUMN hash TEXT;
ALTER TABLE locks ADD COLUMN head TEXT;
ALTER TABLE locks ADD COLUMN signer TEXT;
ALTER TABLE locks ADD COLUMN account TEXT;
ALTER TABLE locks ADD COLUMN meaning TEXT;
ALTER TABLE locks ADD COLUMN auth_method TEXT;
ALTER TABLE locks ADD COLUMN hash TEXT;
CREATE TABLE store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO store_info (key, value) VALUES
  ('unchained_through', (SELECT CAST(COALESCE(MAX(id), 0) AS TEXT) FROM events)),
  ('migrated_from', '1');
"""

#: Version 2 to 3: the audit log and the raters' sign-in sessions (see :mod:`assess.session`).
MIGRATE_2_TO_3 = AUDIT_TABLES + SESSION_TABLES

#: The guard triggers each schema version must have, by name.
TRIGGERS_V1 = ("events_append_only_update", "events_append_only_delete",
               "events_refused_after_lock", "locks_final_update", "locks_final_delete")
TRIGGERS_V2 = TRIGGERS_V1 + ("events_chained", "store_info_final_update", "store_info_final_delete")
TRIGGERS = TRIGGERS_V2 + ("audit_log_append_only_update", "audit_log_append_only_delete")

#: Version 2 to 3, scores (any scale): a score may be a half step (1.5) or a VAS value, not only a
#: whole number. SQLite needs no statement (its INTEGER column keeps 1.5 as a REAL and 2 as an
#: INTEGER); PostgreSQL's integer column becomes double precision
#: (:data:`assess.store.postgres.SCORES_2_TO_3`). Whole scores are read back as ``int``
#: (:func:`assess.levels.canonical`), so events saved before keep their hashes.
MIGRATE_2_TO_3_SCORES: tuple[str, ...] = ()

SCHEMA_VERSION = 3  # SQLite: PRAGMA user_version; PostgreSQL: the highest row of schema_version
#: Forward migrations: the script that takes a database from the version before to the key.
MIGRATIONS = {2: MIGRATE_1_TO_2, 3: "\n".join((MIGRATE_2_TO_3, *MIGRATE_2_TO_3_SCORES))}


#: The sign-in log, in its own block (the events schema and its version are not touched by it):
#: every sign-in attempt with an access code, append-only like the ratings. ``rater`` is the id as
#: typed (it may be no rater of the set), ``client`` the address the attempt came from.
ACCESS_SCHEMA = """
CREATE TABLE IF NOT EXISTS access_log (
  id INTEGER PRIMARY KEY,
  set_id TEXT NOT NULL, rater TEXT NOT NULL, client TEXT NOT NULL, at TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'wrong', 'throttled'))
);
CREATE INDEX IF NOT EXISTS access_log_rater ON access_log (set_id, rater, outcome);
CREATE INDEX IF NOT EXISTS access_log_client ON access_log (set_id, client, outcome);
CREATE TRIGGER IF NOT EXISTS access_log_append_only_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_log_append_only_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
"""
#: ``ok``: signed in; ``wrong``: id or code not recognised; ``throttled``: refused unchecked
#: because of earlier wrong attempts.
ACCESS_OUTCOMES = ("ok", "wrong", "throttled")


class StoreError(AssessError):
    """The ratings database cannot be opened or a rating is not valid; the message says why."""


class LockedError(StoreError):
    """The rater has submitted and locked the worklist; ratings are read-only."""


class UnavailableError(StoreError):
    """The database server cannot be reached just now (stopped, restarting, network).

    A rating whose save raised it is not acknowledged; saving the same answer again once the
    server is back is safe (an equal answer adds no revision, see :func:`record`)."""


@dataclass(frozen=True)
class Event:
    """One row of ``events``: one answer (or revision of an answer) of one rater for one item."""

    set_id: str
    rater: str
    item: str
    revision: int
    score: int | None = None
    better: str | None = None
    first: str | None = None
    cannot_assess: str | None = None
    comment: str | None = None
    change_reason: str | None = None
    shown_at: str = ""
    answered_at: str = ""
    seconds: float | None = None

    @property
    def answer(self) -> tuple:
        """What was answered, without the when: equal answers mean no change."""
        return (self.score, self.better, self.first, self.cannot_assess, self.comment or None)


def utc_now() -> str:
    """The current time as ISO 8601 UTC with milliseconds, e.g. ``2026-01-01T10:00:04.123Z``.

    >>> len(utc_now()), utc_now().endswith("Z")
    (24, True)
    """
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def migrations(found: int) -> list[str]:
    """The scripts that take a database of schema version ``found`` to :data:`SCHEMA_VERSION`.

    Version 0 is an empty database: it gets the tables of :data:`TABLES` at once. Each backend
    runs the scripts (in its own words) and then puts its guard triggers in place.

    >>> len(migrations(0)), len(migrations(1)), len(migrations(2)), migrations(3)
    (1, 2, 1, [])
    """
    if found == 0:
        return [TABLES]
    return [MIGRATIONS[v] for v in range(found + 1, SCHEMA_VERSION + 1)]


#: A connection from :func:`connect`: a :class:`sqlite3.Connection` or a pooled PostgreSQL one
#: (:class:`assess.store.postgres.Connection`); both take ``execute(sql, params)`` with ``?``.
Connection = Any

from . import sqlite as _sqlite  # noqa: E402  (the backends use the names above)
from .sqlite import BUSY_TIMEOUT_MS, SCHEMA  # noqa: E402,F401  (as before the backends)


def is_url(db: object) -> bool:
    """Whether ``db`` names a PostgreSQL database (``postgresql://…``) rather than a SQLite file.

    >>> is_url("postgresql://assess@db.example.org/trial"), is_url("results/S1/ratings.sqlite")
    (True, False)
    """
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def location(db: str | Path) -> str | Path:
    """Where the ratings are: a PostgreSQL URL (refused when it carries a password) or a path.

    >>> location("results/S1/ratings.sqlite")
    PosixPath('results/S1/ratings.sqlite')
    """
    if is_url(db):
        from . import postgres

        return postgres.check_url(str(db))
    return Path(db)


def _backend(db: object):
    """The backend module of a database (path or URL) or of an open connection."""
    if is_url(db):
        from . import postgres

        return postgres
    return getattr(db, "backend", _sqlite)


def connect(db: str | Path) -> Connection:
    """Open the ratings database for writing: a SQLite file (created if needed) or a URL.

    SQLite: WAL mode, ``synchronous=FULL``, a busy timeout (:func:`assess.store.sqlite.connect`).
    PostgreSQL: a connection from the process's pool for that URL
    (:func:`assess.store.postgres.connect`). Either way the schema of ``docs/formats.md`` is created
    or migrated forward first. Open one connection per script run and close it at the end; never
    share one across sessions.
    """
    return _backend(db).connect(location(db))


def exists(db: str | Path) -> bool:
    """Whether there are ratings to read: the SQLite file exists (a server is always asked)."""
    return _backend(db).exists(location(db))


def describe(db: str | Path) -> str:
    """The database in words for messages: the path or the URL (which holds no password)."""
    return str(location(db))

def _validate(score, better, first, cannot_assess) -> None:
    if cannot_assess is not None:
        if cannot_assess not in REASONS:
            raise StoreError(f"cannot_assess: {cannot_assess!r} is not one of {', '.join(REASONS)}")
        if score is not None or better is not None or first is not None:
            raise StoreError("cannot_assess: give either a rating or a reason, not both")
        return
    if score is not None:
        if (isinstance(score, bool) or not isinstance(score, (int, float))
                or not math.isfinite(score)):
            raise StoreError(f"score: must be a number, not {score!r}")
        if better is not None or first is not None:
            raise StoreError("score: a single photo has a score, a pair has better and first")
        return
    if better is None or first is None:
        raise StoreError("give a score, both better and first (pairs), or a cannot_assess reason")
    if better not in BETTER:
        raise StoreError(f"better: {better!r} is not one of {', '.join(BETTER)}")
    if first not in FIRST:
        raise StoreError(f"first: {first!r} is not one of {', '.join(FIRST)}")


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _reason(exc: Exception) -> str:
    """The first line of a database error (PostgreSQL adds context lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _event(row: tuple) -> Event:
    return Event(*row[:4], levels.canonical(row[4]), *row[5:])


_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM events"
_INSERT = ("INSERT INTO events (" + ", ".join(COLUMNS) + ", parent, hash) VALUES ("
           + ", ".join("?" * (len(COLUMNS) + 2)) + ")")


def _chain_head(conn: Connection, set_id: str, rater: str) -> str:
    """The hash of the worklist's last event (the parent of the next), or the genesis.

    Called inside the write transaction of the insert, so no other writer comes between.
    """
    row = conn.execute("SELECT hash FROM events WHERE set_id = ? AND rater = ? ORDER BY id DESC "
                       "LIMIT 1", (set_id, rater)).fetchone()
    return row[0] if row and row[0] else chain.GENESIS


def record(
    conn: Connection,
    set_id: str,
    rater: str,
    item: str,
    *,
    score: int | None = None,
    better: str | None = None,
    first: str | None = None,
    cannot_assess: str | None = None,
    comment: str | None = None,
    change_reason: str | None = None,
    shown_at: str | None = None,
    answered_at: str | None = None,
    seconds: float | None = None,
) -> Event:
    """Append one rating of ``item`` by ``rater`` and commit it before returning.

    The revision is one more than the item's latest. Giving the same answer (and comment) as the
    current one adds nothing and returns the current event, so a double click or a second visit
    that confirms a rating does not make a revision. Raises :class:`LockedError` when the rater's
    worklist is locked and :class:`StoreError` for an invalid answer.
    """
    _validate(score, better, first, cannot_assess)
    score = levels.canonical(score)
    comment, change_reason = _text(comment), _text(change_reason)
    answered_at = answered_at or utc_now()
    shown_at = shown_at or answered_at
    if seconds is not None:
        seconds = round(max(0.0, float(seconds)), 3)
    backend = _backend(conn)
    try:
        with backend.write(conn, set_id, rater):
            if _locked(conn, set_id, rater):
                raise LockedError(f"{rater}: the worklist is submitted and locked; ratings are read-only")
            latest = conn.execute(
                _SELECT + " WHERE set_id = ? AND rater = ? AND item = ? ORDER BY revision DESC LIMIT 1",
                (set_id, rater, item)).fetchone()
            new = Event(set_id, rater, item, 1 if latest is None else latest[3] + 1, score, better,
                        first, cannot_assess, comment, change_reason if latest else None, shown_at,
                        answered_at, seconds)
            if latest is not None and _event(latest).answer == new.answer:
                return _event(latest)
            values = tuple(getattr(new, f.name) for f in fields(Event))
            parent = _chain_head(conn, set_id, rater)
            digest = chain.event_hash(dict(zip(COLUMNS, values)), parent)
            conn.execute(_INSERT, values + (parent, digest))
            return new
    except backend.Error as exc:
        if backend.is_locked_error(exc):
            raise LockedError(f"{rater}: the worklist is submitted and locked; ratings are read-only") from None
        raise StoreError(f"could not save the rating of {item} ({_reason(exc)}); try again") from None


def current(conn: Connection, set_id: str, rater: str) -> dict[str, Event]:
    """The rater's current rating of every item they rated: item → latest revision."""
    rows = conn.execute(
        _SELECT + " e WHERE set_id = ? AND rater = ? AND revision = "
        "(SELECT MAX(revision) FROM events WHERE set_id = e.set_id AND rater = e.rater AND item = e.item)",
        (set_id, rater)).fetchall()
    return {row[2]: _event(row) for row in rows}


def history(conn: Connection, set_id: str, rater: str, item: str) -> list[Event]:
    """Every revision of one item by one rater, oldest first."""
    rows = conn.execute(_SELECT + " WHERE set_id = ? AND rater = ? AND item = ? ORDER BY revision",
                        (set_id, rater, item)).fetchall()
    return [_event(row) for row in rows]


def _locked(conn: Connection, set_id: str, rater: str) -> str | None:
    row = conn.execute("SELECT locked_at FROM locks WHERE set_id = ? AND rater = ?",
                       (set_id, rater)).fetchone()
    return row[0] if row else None


def is_locked(conn: Connection, set_id: str, rater: str) -> str | None:
    """When the rater locked the worklist (ISO 8601 UTC), or ``None`` while it is open."""
    return _locked(conn, set_id, rater)


@dataclass(frozen=True)
class Signature:
    """A lock: the rater's electronic signature over their worklist's chain head.

    ``head`` is the hash of the worklist's last event when it was signed, ``signer`` the rater id,
    ``account`` the single sign-on account (``None`` with an access code), ``locked_at`` when (UTC),
    ``meaning`` what the signature means, ``auth_method`` how the signer was authenticated (one of
    :data:`assess.chain.AUTH_METHODS`) and ``hash`` the lock's own hash; the last four are ``None``
    for a lock made before locks were signed.
    """

    set_id: str
    rater: str
    locked_at: str
    head: str | None = None
    signer: str | None = None
    account: str | None = None
    meaning: str | None = None
    auth_method: str | None = None
    hash: str | None = None


_LOCK_COLUMNS = ("set_id", "rater", "locked_at", "head", "signer", "account", "meaning",
                 "auth_method", "hash")


def signature(conn: Connection, set_id: str, rater: str) -> Signature | None:
    """The rater's lock signature, or ``None`` while the worklist is open."""
    row = conn.execute("SELECT " + ", ".join(_LOCK_COLUMNS) + " FROM locks WHERE set_id = ? AND "
                       "rater = ?", (set_id, rater)).fetchone()
    return Signature(*row) if row else None


def sign(conn: Connection, set_id: str, rater: str, items: Iterable[str], *,
         auth_method: str = "none", account: str | None = None) -> Signature:
    """Submit, lock and sign the rater's worklist; returns the signature.

    The lock records the chain head (the hash of the worklist's last event), the signer (the
    rater), the time, the meaning (:data:`assess.chain.MEANING`) and how the signer was
    authenticated (``auth_method``: ``"access code"`` re-entered, ``"single sign-on"`` with
    ``account``, or ``"none"``); its hash covers all of that. ``items`` is the whole worklist:
    signing is refused while any of them has no rating. Signing twice returns the first signature.
    """
    if auth_method not in chain.AUTH_METHODS:
        raise StoreError(f"auth_method: {auth_method!r} is not one of {', '.join(chain.AUTH_METHODS)}")
    items = list(items)
    backend = _backend(conn)
    try:
        with backend.write(conn, set_id, rater):
            done = signature(conn, set_id, rater)
            if done is None:
                rated = set(current(conn, set_id, rater))
                missing = [item for item in items if item not in rated]
                if missing:
                    raise StoreError(f"{rater}: {len(missing)} of {len(items)} items are not rated "
                                     f"yet (first: {missing[0]}); rate them before submitting")
                content = {"set_id": set_id, "rater": rater, "locked_at": utc_now(),
                           "head": _chain_head(conn, set_id, rater), "signer": rater,
                           "account": account, "meaning": chain.MEANING, "auth_method": auth_method}
                done = Signature(**content, hash=chain.lock_hash(content))
                conn.execute("INSERT INTO locks (" + ", ".join(_LOCK_COLUMNS) + ") VALUES ("
                             + ", ".join("?" * len(_LOCK_COLUMNS)) + ")",
                             tuple(getattr(done, name) for name in _LOCK_COLUMNS))
            return done
    except backend.Error as exc:
        raise StoreError(f"{rater}: could not lock the worklist ({_reason(exc)}); try "
                         "again") from None


def lock(conn: Connection, set_id: str, rater: str, items: Iterable[str]) -> str:
    """Submit and lock the rater's worklist; returns the lock time.

    ``items`` is the rater's whole worklist: locking is refused while any of them has no rating.
    Locking twice returns the first lock time. The lock is signed as by :func:`sign` with
    ``auth_method="none"``; the rating app signs with the re-entered access code instead.
    """
    return sign(conn, set_id, rater, items).locked_at


# ------------------------------------------------------------------------------------ readers


def _read_only(db: str | Path) -> Connection:
    return _backend(db).read_only(location(db))


def _frame(rows: list[tuple], names: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    """Events as a frame, built column by column: text as ``object`` (``None`` when empty)."""
    import numpy as np  # here, not at the top: the chain check's process needs no pandas
    import pandas as pd

    columns = list(zip(*rows)) if rows else [()] * len(names)
    data = {}
    for name, values in zip(names, columns):
        if name == "revision":
            data[name] = pd.Series(np.fromiter(values, dtype="int64", count=len(values)))
        elif name == "score":
            values = [levels.canonical(v) for v in values]
            whole = all(v is None or isinstance(v, int) for v in values)
            data[name] = pd.Series(pd.array(values, dtype="Int64" if whole else "Float64"))
        elif name == "seconds":
            data[name] = pd.Series(np.array(values, dtype="float64"))
        else:
            data[name] = pd.Series(np.array(values, dtype=object), dtype=object)
    return pd.DataFrame(data, copy=False)


def current_ratings(db_path: str | Path, set_id: str | None = None,
                    columns: Iterable[str] | None = None, *, sort: bool = True) -> pd.DataFrame:
    """The current rating (latest revision) of every (set_id, rater, item), read-only.

    Columns: set_id, rater, item, revision, score (nullable integer; nullable float once any
    score is a half step or a VAS value), better, first,
    cannot_assess, comment, change_reason, shown_at, answered_at, seconds; sorted by set_id, rater,
    answered_at (in the order they were saved with ``sort=False``). ``set_id`` keeps the ratings
    of one set; ``columns`` keeps only those columns (rater and item are always kept), which is
    faster for a large database.
    """
    wanted = set(COLUMNS if columns is None else columns)
    unknown = sorted(wanted - set(COLUMNS))
    if unknown:
        raise ValueError(f"columns: {', '.join(unknown)} are not columns of the events table")
    wanted |= {"rater", "item"} | ({"set_id"} if set_id is None else set())
    names = tuple(c for c in COLUMNS if c in wanted)
    # SQLite: "+set_id", to scan in id order rather than search the index and sort again.
    where, args = ("", ()) if set_id is None else (_backend(db_path).SET_FILTER, (set_id,))
    conn = _read_only(db_path)
    try:
        # Revisions are appended, so the latest revision of an item is its last event by id.
        rows = conn.execute("SELECT " + ", ".join(names) + " FROM events" + where + " ORDER BY id",
                            args).fetchall()
    finally:
        conn.close()
    df = _frame(rows, names)
    unit = [c for c in ("set_id", "rater", "item") if c in names]
    df = df[~df.duplicated(unit, keep="last")]
    if sort:
        df = df.sort_values([c for c in ("set_id", "rater", "answered_at") if c in names],
                            kind="stable")
    return df.reset_index(drop=True)


def set_ids(db_path: str | Path) -> list[str]:
    """The sets that have ratings in the database, read-only."""
    conn = _read_only(db_path)
    try:
        return [row[0] for row in conn.execute("SELECT DISTINCT set_id FROM events ORDER BY set_id")]
    finally:
        conn.close()


def all_events(db_path: str | Path) -> pd.DataFrame:
    """Every rating event, revisions included, in the order they were saved (read-only).

    Same columns as :func:`current_ratings`.
    """
    conn = _read_only(db_path)
    try:
        rows = conn.execute(_SELECT + " ORDER BY id").fetchall()
    finally:
        conn.close()
    return _frame(rows)


def locks(db_path: str | Path, set_id: str | None = None) -> dict[str, str]:
    """Locked worklists: rater → locked_at (ISO 8601 UTC), read-only; optionally for one set."""
    conn = _read_only(db_path)
    try:
        if set_id is None:
            rows = conn.execute("SELECT rater, locked_at FROM locks ORDER BY rater").fetchall()
        else:
            rows = conn.execute("SELECT rater, locked_at FROM locks WHERE set_id = ? ORDER BY rater",
                                (set_id,)).fetchall()
    finally:
        conn.close()
    return dict(rows)


def first_answer_seconds(conn: Connection, set_id: str, rater: str) -> list[float]:
    """Seconds the rater spent on each first answer (revision 1), oldest first: their pace."""
    rows = conn.execute("SELECT seconds FROM events WHERE set_id = ? AND rater = ? AND revision = 1 "
                        "AND seconds IS NOT NULL ORDER BY id", (set_id, rater)).fetchall()
    return [row[0] for row in rows]


# ------------------------------------------------------------------------------------ integrity


class IntegrityError(StoreError):
    """The ratings fail their integrity check: a chain is broken or a guard trigger is missing."""


@dataclass
class ChainReport:
    """What :func:`verify` found: every worklist's chain, the guard triggers, the warnings."""

    path: Path | str  # the SQLite file or the PostgreSQL URL
    schema_version: int
    worklists: dict[tuple[str, str], chain.WorklistChain]
    triggers: list[str]  # problems with the guard triggers, in words
    warnings: list[str]

    @property
    def problems(self) -> list[chain.Problem]:
        return [p for wl in self.worklists.values() for p in wl.problems]

    @property
    def ok(self) -> bool:
        return not self.triggers and not self.problems

    def describe(self, limit: int = 20) -> str:
        """Every problem in words, one a line (the first ``limit`` chain breaks)."""
        lines = list(self.triggers) + [str(p) for p in self.problems[:limit]]
        more = len(self.problems) - limit
        if more > 0:
            lines.append(f"… and {more} more")
        return "\n".join(f"  {line}" for line in lines)

    def check(self) -> "ChainReport":
        """Raise :class:`IntegrityError` naming every problem; return the report when whole."""
        if not self.ok:
            n = len(self.triggers) + len(self.problems)
            raise IntegrityError(
                f"{self.path}: the ratings fail their integrity check ({n} problem(s)); they may "
                "have been changed outside assess. Do not use them; keep the database as it is and "
                "tell the study's quality assurance:\n" + self.describe())
        return self


def verify(db_path: str | Path, set_id: str | None = None) -> ChainReport:
    """Recompute every worklist's chain and check the guard triggers (read-only).

    Every event must match its hash and follow the previous event of its worklist; a lock must
    match its hash and sign the worklist's last event; every guard trigger of the schema must be
    in place. Events of a database written before ratings were chained are counted and warned
    about, not refused. Call :meth:`ChainReport.check` to raise on a problem.
    """
    path, backend = location(db_path), _backend(db_path)
    conn = _read_only(path)
    try:
        version, columns, tables = backend.describe(conn)
        chained = "hash" in columns
        lock_columns = _LOCK_COLUMNS if chained else ("set_id", "rater", "locked_at")
        where, args = ("", ()) if set_id is None else (" WHERE set_id = ?", (set_id,))
        rows = conn.execute("SELECT id, " + ", ".join(COLUMNS)
                            + (", parent, hash" if chained else "") + " FROM events" + where
                            + " ORDER BY id", args).fetchall()
        lock_rows = conn.execute("SELECT " + ", ".join(lock_columns) + " FROM locks" + where,
                                 args).fetchall()
        info = dict(conn.execute("SELECT key, value FROM store_info").fetchall()) \
            if "store_info" in tables else {}
        triggers = backend.check_triggers(conn, min(max(version, 2), SCHEMA_VERSION)
                                          if chained else 1)
    except backend.Error as exc:
        raise StoreError(f"{path}: not a readable ratings database ({_reason(exc)})") from None
    finally:
        conn.close()
    names = ("id",) + COLUMNS + ("parent", "hash")
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        event = dict(zip(names, row))
        event["score"] = levels.canonical(event["score"])
        grouped.setdefault((event["set_id"], event["rater"]), []).append(event)
    locked = {(r[0], r[1]): dict(zip(lock_columns, r)) for r in lock_rows}
    if chained:
        unchained_through = int(info.get("unchained_through", "0") or 0)
    else:
        unchained_through = max((r[0] for r in rows), default=0)
    warnings = []
    if not chained:
        warnings.append(f"{path}: written by an earlier version of assess (schema version "
                        f"{version}) that did not chain ratings: its events and locks cannot be "
                        "checked for changes")
    worklists = {}
    for key in sorted(set(grouped) | set(locked)):
        wl = chain.verify_worklist(key[0], key[1], grouped.get(key, []), locked.get(key),
                                   unchained_through)
        worklists[key] = wl
        warnings.extend(wl.warnings)
    return ChainReport(path, version, worklists, triggers, warnings)

# ------------------------------------------------------------------------------------ sign-in log


def log_access(conn: Connection, set_id: str, rater: str, client: str, outcome: str,
               at: str | None = None) -> str:
    """Append one sign-in attempt to ``access_log`` (created on first use); returns its time.

    ``rater`` is kept as typed, cut to 64 characters, control characters dropped.
    """
    if outcome not in ACCESS_OUTCOMES:
        raise StoreError(f"outcome: {outcome!r} is not one of {', '.join(ACCESS_OUTCOMES)}")
    at = at or utc_now()
    rater = "".join(ch for ch in str(rater) if ch.isprintable())[:64]
    backend = _backend(conn)
    try:
        with backend.write(conn, set_id, f"access log: {rater}"):
            backend.ensure_access_log(conn)
            conn.execute("INSERT INTO access_log (set_id, rater, client, at, outcome) "
                         "VALUES (?, ?, ?, ?, ?)", (set_id, rater, str(client)[:128], at, outcome))
    except backend.Error as exc:
        raise StoreError(f"could not log the sign-in attempt ({_reason(exc)})") from None
    return at


def failed_access_times(conn: Connection, set_id: str, since: str, *,
                        rater: str | None = None, client: str | None = None) -> list[str]:
    """Times of the wrong attempts for one rater id (or from one client) after ``since``.

    Only the attempts after the latest successful sign-in of that rater (from that client)
    count; oldest first. Empty while no attempt was ever logged.
    """
    if (rater is None) == (client is None):
        raise ValueError("give rater or client")
    column, value = ("rater", rater) if rater is not None else ("client", client)
    backend = _backend(conn)
    try:
        rows = conn.execute(
            f"SELECT at FROM access_log WHERE set_id = ? AND {column} = ? AND outcome = 'wrong' "
            f"AND at > ? AND id > COALESCE((SELECT MAX(id) FROM access_log WHERE set_id = ? "
            f"AND {column} = ? AND outcome = 'ok'), 0) ORDER BY id",
            (set_id, value, since, set_id, value)).fetchall()
    except backend.Error as exc:
        if backend.is_missing_table(exc):
            return []
        raise StoreError(f"could not read the sign-in log ({_reason(exc)})") from None
    return [row[0] for row in rows]


def sign_in_failures(db_path: str | Path, set_id: str) -> dict[str, int]:
    """Wrong and throttled sign-in attempts of a set per rater id as typed (read-only).

    A database written before the sign-in log existed has none: ``{}``.
    """
    backend = _backend(db_path)
    conn = _read_only(db_path)
    try:
        rows = conn.execute("SELECT rater, COUNT(*) FROM access_log WHERE set_id = ? "
                            "AND outcome != 'ok' GROUP BY rater ORDER BY rater", (set_id,)).fetchall()
    except backend.Error as exc:
        if backend.is_missing_table(exc):
            return {}
        raise StoreError(f"{db_path}: could not read the sign-in log ({_reason(exc)})") from None
    finally:
        conn.close()
    return dict(rows)

# ------------------------------------------------------------------------------------ sessions


@dataclass(frozen=True)
class Session:
    """One row of ``sessions``: whose session it is and until when it holds."""

    id: str
    set_id: str
    rater: str
    created_at: str
    expires_at: str
    ended_at: str | None


def session_secret(conn: Connection, name: str = "sessions") -> str:
    """The database's session key (hex), made on first use and the same for every process after."""
    import secrets as _secrets

    backend = _backend(conn)
    try:
        with backend.write(conn, "", "session key"):
            conn.execute("INSERT INTO session_keys (name, secret, created_at) VALUES (?, ?, ?) "
                         "ON CONFLICT (name) DO NOTHING", (name, _secrets.token_hex(32), utc_now()))
            row = conn.execute("SELECT secret FROM session_keys WHERE name = ?", (name,)).fetchone()
    except backend.Error as exc:
        raise StoreError(f"could not read the session key ({_reason(exc)})") from None
    return row[0]


def open_session(conn: Connection, session_id: str, set_id: str, rater: str, grant_id: str,
                 created_at: str, expires_at: str) -> bool:
    """Record a new session; ``False`` when its sign-in grant was used before (nothing written)."""
    backend = _backend(conn)
    try:
        with backend.write(conn, set_id, f"session: {rater}"):
            if conn.execute("SELECT 1 FROM sessions WHERE grant_id = ?", (grant_id,)).fetchone():
                return False
            conn.execute("INSERT INTO sessions (id, set_id, rater, grant_id, created_at, "
                         "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (session_id, set_id, rater, grant_id, created_at, expires_at))
    except backend.Error as exc:
        raise StoreError(f"could not record the session ({_reason(exc)})") from None
    return True


def session(conn: Connection, session_id: str) -> Session | None:
    """The session of that id, ended or not, or ``None``."""
    backend = _backend(conn)
    try:
        row = conn.execute("SELECT id, set_id, rater, created_at, expires_at, ended_at "
                           "FROM sessions WHERE id = ?", (session_id,)).fetchone()
    except backend.Error as exc:
        raise StoreError(f"could not read the session ({_reason(exc)})") from None
    return Session(*row) if row else None


def end_sessions(conn: Connection, set_id: str, session_id: str | None = None,
                 at: str | None = None) -> int:
    """End one session (sign-out) or, without ``session_id``, every live one of the set.

    Returns how many were ended.
    """
    backend = _backend(conn)
    at = at or utc_now()
    where, params = ("set_id = ? AND ended_at IS NULL", [set_id])
    if session_id is not None:
        where += " AND id = ?"
        params.append(session_id)
    try:
        with backend.write(conn, set_id, "sessions"):
            n = conn.execute(f"SELECT COUNT(*) FROM sessions WHERE {where}", params).fetchone()[0]
            conn.execute(f"UPDATE sessions SET ended_at = ? WHERE {where}", [at, *params])
    except backend.Error as exc:
        raise StoreError(f"could not end the sessions ({_reason(exc)})") from None
    return int(n)


def save_position(conn: Connection, set_id: str, rater: str, item: str) -> None:
    """Note the item the rater is on (one row per rater, replaced).

    A convenience for resuming, not a rating: committed without waiting for the disk, so a power
    cut may lose the last note (a later page then resumes at the first unrated item).
    """
    backend = _backend(conn)
    try:
        with backend.write(conn, set_id, f"position: {rater}", durable=False):
            conn.execute("INSERT INTO rater_positions (set_id, rater, item, at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (set_id, rater) DO UPDATE SET item = excluded.item, "
                         "at = excluded.at", (set_id, rater, item, utc_now()))
    except backend.Error as exc:
        raise StoreError(f"could not note the position ({_reason(exc)})") from None


def position(conn: Connection, set_id: str, rater: str) -> str | None:
    """The item the rater was last on, or ``None``."""
    backend = _backend(conn)
    try:
        row = conn.execute("SELECT item FROM rater_positions WHERE set_id = ? AND rater = ?",
                           (set_id, rater)).fetchone()
    except backend.Error as exc:
        raise StoreError(f"could not read the position ({_reason(exc)})") from None
    return row[0] if row else None


from .auditlog import AUDIT_EVENTS, AUDIT_METHODS, AuditEntry, audit_log, log_audit  # noqa: E402
