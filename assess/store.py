"""The ratings database: append-only rating events, revisions and locks.

This is the only module that speaks SQL. The database (``results/<set-id>/ratings.sqlite``) is
SQLite in WAL mode with ``synchronous=FULL``: a rating is on disk when :func:`record` returns, and
survives a closed tab, a killed server or a power cut. Nothing is ever updated or deleted: changing a
rating appends a new revision, the old one stays; triggers in the schema refuse ``UPDATE`` and
``DELETE`` and refuse any new rating from a rater whose worklist is locked, so the rules hold for
every client of the file, not only for the app.

Every event is also chained to the previous event of its worklist (set, rater) by its hash, and a
lock is the rater's signature over the worklist's chain head (:mod:`assess.chain` holds the pure
functions; this module computes them in the transaction of each insert). :func:`verify` recomputes
every chain and checks the guard triggers, so that a change made past the triggers is named.
The schema has a version (``PRAGMA user_version``, :data:`SCHEMA_VERSION`); an older database is
migrated forward when opened for writing and read as it is otherwise.

Writers (the rating app) open a connection per script run with :func:`connect` and pass the signed-in
rater to every call. Readers (the scorer, ``assess status``) use :func:`current_ratings`,
:func:`all_events` and :func:`locks`, which open the file read-only.

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

import sqlite3
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from . import chain
from .errors import AssessError

__all__ = [
    "BETTER",
    "FIRST",
    "REASONS",
    "Event",
    "StoreError",
    "LockedError",
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
    "ACCESS_OUTCOMES",
    "log_access",
    "failed_access_times",
    "sign_in_failures",
]

#: Pair items, question 1: which photo looks better and by how much.
BETTER = ("much_better_left", "better_left", "no_difference", "better_right", "much_better_right")
#: Pair items, question 2: which photo was taken first.
FIRST = ("left", "right", "cannot_tell")
#: Why a photo cannot be assessed.
REASONS = ("out_of_focus", "framing", "lighting", "identifying_feature", "other")

COLUMNS = ("set_id", "rater", "item", "revision", "score", "better", "first", "cannot_assess",
           "comment", "change_reason", "shown_at", "answered_at", "seconds")

# Version 2: events and locks are hash-chained (see assess.chain); version 1 had no chain.
SCHEMA = """
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
""" + "".join(f"{sql};\n" for sql in (
    "CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events\n"
    "BEGIN SELECT RAISE(ABORT, 'ratings are append-only: add a revision instead'); END",
    "CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events\n"
    "BEGIN SELECT RAISE(ABORT, 'ratings are append-only: they cannot be deleted'); END",
    "CREATE TRIGGER IF NOT EXISTS events_refused_after_lock BEFORE INSERT ON events\n"
    "WHEN EXISTS (SELECT 1 FROM locks WHERE set_id = NEW.set_id AND rater = NEW.rater)\n"
    "BEGIN SELECT RAISE(ABORT, 'worklist locked: ratings are read-only'); END",
    "CREATE TRIGGER IF NOT EXISTS events_chained BEFORE INSERT ON events\n"
    "WHEN NEW.hash IS NULL OR NEW.parent IS NULL\n"
    "BEGIN SELECT RAISE(ABORT, 'ratings are chained: save them through assess'); END",
    "CREATE TRIGGER IF NOT EXISTS locks_final_update BEFORE UPDATE ON locks\n"
    "BEGIN SELECT RAISE(ABORT, 'a lock is final'); END",
    "CREATE TRIGGER IF NOT EXISTS locks_final_delete BEFORE DELETE ON locks\n"
    "BEGIN SELECT RAISE(ABORT, 'a lock is final'); END",
    "CREATE TRIGGER IF NOT EXISTS store_info_final_update BEFORE UPDATE ON store_info\n"
    "BEGIN SELECT RAISE(ABORT, 'store information is final'); END",
    "CREATE TRIGGER IF NOT EXISTS store_info_final_delete BEFORE DELETE ON store_info\n"
    "BEGIN SELECT RAISE(ABORT, 'store information is final'); END",
))

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

#: The guard triggers each schema version must have, by name.
TRIGGERS_V1 = ("events_append_only_update", "events_append_only_delete",
               "events_refused_after_lock", "locks_final_update", "locks_final_delete")
TRIGGERS = TRIGGERS_V1 + ("events_chained", "store_info_final_update", "store_info_final_delete")

BUSY_TIMEOUT_MS = 10_000
SCHEMA_VERSION = 2  # PRAGMA user_version once the schema above is in place


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


def connect(db_path: str | Path) -> sqlite3.Connection:
    """Open (and create if needed) the ratings database for writing.

    WAL mode, ``synchronous=FULL`` (a committed rating survives a power cut), a busy timeout so that
    several raters' sessions can write at once, and the schema of ``docs/formats.md``. Open one
    connection per script run and close it at the end; never share one across sessions.
    """
    path = Path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot open the ratings database ({exc}); check that the folder "
                         "is writable") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"{path}: cannot switch the ratings database to WAL mode (got {mode}); "
                             "keep it on a local disk, not a network share")
        conn.execute("PRAGMA synchronous = FULL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            _upgrade(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: not a ratings database ({exc}); give another --db file") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a script, one by one (trigger bodies kept whole)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        yield pending.strip()


def _upgrade(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema, or migrate an older one forward, under one write lock.

    A database of version 1 (no chain) gets the chain columns and the lock signature; its events
    stay unchained and :func:`verify` reports them as such.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another writer may be first
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: written by a newer version of assess (schema version "
                             f"{version}); upgrade assess to open it")
        if version < SCHEMA_VERSION:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
            if columns and "hash" not in columns:  # version 1
                for sql in _statements(MIGRATE_1_TO_2):
                    conn.execute(sql)
            for sql in _statements(SCHEMA):
                conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _validate(score, better, first, cannot_assess) -> None:
    if cannot_assess is not None:
        if cannot_assess not in REASONS:
            raise StoreError(f"cannot_assess: {cannot_assess!r} is not one of {', '.join(REASONS)}")
        if score is not None or better is not None or first is not None:
            raise StoreError("cannot_assess: give either a rating or a reason, not both")
        return
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int):
            raise StoreError(f"score: must be a whole number, not {score!r}")
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


def _event(row: sqlite3.Row | tuple) -> Event:
    return Event(*row)


_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM events"
_INSERT = ("INSERT INTO events (" + ", ".join(COLUMNS) + ", parent, hash) VALUES ("
           + ", ".join("?" * (len(COLUMNS) + 2)) + ")")


def _chain_head(conn: sqlite3.Connection, set_id: str, rater: str) -> str:
    """The hash of the worklist's last event (the parent of the next), or the genesis.

    Called inside the write transaction of the insert, so no other writer comes between.
    """
    row = conn.execute("SELECT hash FROM events WHERE set_id = ? AND rater = ? ORDER BY id DESC "
                       "LIMIT 1", (set_id, rater)).fetchone()
    return row[0] if row and row[0] else chain.GENESIS


def record(
    conn: sqlite3.Connection,
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
    comment, change_reason = _text(comment), _text(change_reason)
    answered_at = answered_at or utc_now()
    shown_at = shown_at or answered_at
    if seconds is not None:
        seconds = round(max(0.0, float(seconds)), 3)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _locked(conn, set_id, rater):
                raise LockedError(f"{rater}: the worklist is submitted and locked; ratings are read-only")
            latest = conn.execute(
                _SELECT + " WHERE set_id = ? AND rater = ? AND item = ? ORDER BY revision DESC LIMIT 1",
                (set_id, rater, item)).fetchone()
            new = Event(set_id, rater, item, 1 if latest is None else latest[3] + 1, score, better,
                        first, cannot_assess, comment, change_reason if latest else None, shown_at,
                        answered_at, seconds)
            if latest is not None and _event(latest).answer == new.answer:
                conn.execute("ROLLBACK")
                return _event(latest)
            values = tuple(getattr(new, f.name) for f in fields(Event))
            parent = _chain_head(conn, set_id, rater)
            digest = chain.event_hash(dict(zip(COLUMNS, values)), parent)
            conn.execute(_INSERT, values + (parent, digest))
            conn.execute("COMMIT")
            return new
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.IntegrityError as exc:
        if "locked" in str(exc):
            raise LockedError(f"{rater}: the worklist is submitted and locked; ratings are read-only") from None
        raise StoreError(f"could not save the rating of {item} ({exc}); try again") from None
    except sqlite3.OperationalError as exc:
        raise StoreError(f"could not save the rating of {item} ({exc}); try again") from None


def current(conn: sqlite3.Connection, set_id: str, rater: str) -> dict[str, Event]:
    """The rater's current rating of every item they rated: item → latest revision."""
    rows = conn.execute(
        _SELECT + " e WHERE set_id = ? AND rater = ? AND revision = "
        "(SELECT MAX(revision) FROM events WHERE set_id = e.set_id AND rater = e.rater AND item = e.item)",
        (set_id, rater)).fetchall()
    return {row[2]: _event(row) for row in rows}


def history(conn: sqlite3.Connection, set_id: str, rater: str, item: str) -> list[Event]:
    """Every revision of one item by one rater, oldest first."""
    rows = conn.execute(_SELECT + " WHERE set_id = ? AND rater = ? AND item = ? ORDER BY revision",
                        (set_id, rater, item)).fetchall()
    return [_event(row) for row in rows]


def _locked(conn: sqlite3.Connection, set_id: str, rater: str) -> str | None:
    row = conn.execute("SELECT locked_at FROM locks WHERE set_id = ? AND rater = ?",
                       (set_id, rater)).fetchone()
    return row[0] if row else None


def is_locked(conn: sqlite3.Connection, set_id: str, rater: str) -> str | None:
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


def signature(conn: sqlite3.Connection, set_id: str, rater: str) -> Signature | None:
    """The rater's lock signature, or ``None`` while the worklist is open."""
    row = conn.execute("SELECT " + ", ".join(_LOCK_COLUMNS) + " FROM locks WHERE set_id = ? AND "
                       "rater = ?", (set_id, rater)).fetchone()
    return Signature(*row) if row else None


def sign(conn: sqlite3.Connection, set_id: str, rater: str, items: Iterable[str], *,
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
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = signature(conn, set_id, rater)
        if done is None:
            rated = set(current(conn, set_id, rater))
            missing = [item for item in items if item not in rated]
            if missing:
                raise StoreError(f"{rater}: {len(missing)} of {len(items)} items are not rated yet "
                                 f"(first: {missing[0]}); rate them before submitting")
            content = {"set_id": set_id, "rater": rater, "locked_at": utc_now(),
                       "head": _chain_head(conn, set_id, rater), "signer": rater,
                       "account": account, "meaning": chain.MEANING, "auth_method": auth_method}
            done = Signature(**content, hash=chain.lock_hash(content))
            conn.execute("INSERT INTO locks (" + ", ".join(_LOCK_COLUMNS) + ") VALUES ("
                         + ", ".join("?" * len(_LOCK_COLUMNS)) + ")",
                         tuple(getattr(done, name) for name in _LOCK_COLUMNS))
        conn.execute("COMMIT")
        return done
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def lock(conn: sqlite3.Connection, set_id: str, rater: str, items: Iterable[str]) -> str:
    """Submit and lock the rater's worklist; returns the lock time.

    ``items`` is the rater's whole worklist: locking is refused while any of them has no rating.
    Locking twice returns the first lock time. The lock is signed as by :func:`sign` with
    ``auth_method="none"``; the rating app signs with the re-entered access code instead.
    """
    return sign(conn, set_id, rater, items).locked_at


# ------------------------------------------------------------------------------------ readers


def _read_only(db_path: str | Path) -> sqlite3.Connection:
    path = Path(db_path)
    if not path.is_file():
        raise StoreError(f"{path}: no ratings database here; give the file written by `assess rate` "
                         "(results/<set-id>/ratings.sqlite)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: not a readable ratings database ({exc})") from None
    return conn


def _frame(rows: list[tuple], names: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    """Events as a frame, built column by column: text as ``object`` (``None`` when empty)."""
    columns = list(zip(*rows)) if rows else [()] * len(names)
    data = {}
    for name, values in zip(names, columns):
        if name == "revision":
            data[name] = pd.Series(np.fromiter(values, dtype="int64", count=len(values)))
        elif name == "score":
            data[name] = pd.Series(pd.array(values, dtype="Int64"))
        elif name == "seconds":
            data[name] = pd.Series(np.array(values, dtype="float64"))
        else:
            data[name] = pd.Series(np.array(values, dtype=object), dtype=object)
    return pd.DataFrame(data, copy=False)


def current_ratings(db_path: str | Path, set_id: str | None = None,
                    columns: Iterable[str] | None = None, *, sort: bool = True) -> pd.DataFrame:
    """The current rating (latest revision) of every (set_id, rater, item), read-only.

    Columns: set_id, rater, item, revision, score (nullable integer), better, first,
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
    # "+set_id": scan in id order rather than search the index and sort again.
    where, args = ("", ()) if set_id is None else (" WHERE +set_id = ?", (set_id,))
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


def first_answer_seconds(conn: sqlite3.Connection, set_id: str, rater: str) -> list[float]:
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

    path: Path
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
                "have been changed outside assess. Do not use them; keep the file as it is and "
                "tell the study's quality assurance:\n" + self.describe())
        return self


def _normal_sql(sql: str) -> str:
    return " ".join(sql.replace("IF NOT EXISTS ", "").split()).rstrip(";").strip()


_EXPECTED_TRIGGERS = {
    sql.split()[5 if "IF NOT EXISTS" in sql else 2]: _normal_sql(sql)
    for sql in _statements(SCHEMA) if sql.upper().startswith("CREATE TRIGGER")}


def _check_triggers(conn: sqlite3.Connection, version: int) -> list[str]:
    found = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    out = []
    for name in TRIGGERS if version >= 2 else TRIGGERS_V1:
        if name not in found:
            out.append(f"guard trigger {name} is missing: it was dropped, so the events could be "
                       "changed or deleted unseen")
        elif _normal_sql(found[name] or "") != _EXPECTED_TRIGGERS[name]:
            out.append(f"guard trigger {name} was replaced by another one")
    return out


def verify(db_path: str | Path, set_id: str | None = None) -> ChainReport:
    """Recompute every worklist's chain and check the guard triggers (read-only).

    Every event must match its hash and follow the previous event of its worklist; a lock must
    match its hash and sign the worklist's last event; every guard trigger of the schema must be
    in place. Events of a database written before ratings were chained are counted and warned
    about, not refused. Call :meth:`ChainReport.check` to raise on a problem.
    """
    path = Path(db_path)
    conn = _read_only(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        chained = "hash" in columns
        lock_columns = _LOCK_COLUMNS if chained else ("set_id", "rater", "locked_at")
        where, args = ("", ()) if set_id is None else (" WHERE set_id = ?", (set_id,))
        rows = conn.execute("SELECT id, " + ", ".join(COLUMNS)
                            + (", parent, hash" if chained else "") + " FROM events" + where
                            + " ORDER BY id", args).fetchall()
        lock_rows = conn.execute("SELECT " + ", ".join(lock_columns) + " FROM locks" + where,
                                 args).fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        info = dict(conn.execute("SELECT key, value FROM store_info")) if "store_info" in tables else {}
        triggers = _check_triggers(conn, 2 if chained else 1)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: not a readable ratings database ({exc})") from None
    finally:
        conn.close()
    names = ("id",) + COLUMNS + ("parent", "hash")
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        event = dict(zip(names, row))
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


def log_access(conn: sqlite3.Connection, set_id: str, rater: str, client: str, outcome: str,
               at: str | None = None) -> str:
    """Append one sign-in attempt to ``access_log`` (created on first use); returns its time.

    ``rater`` is kept as typed, cut to 64 characters, control characters dropped.
    """
    if outcome not in ACCESS_OUTCOMES:
        raise StoreError(f"outcome: {outcome!r} is not one of {', '.join(ACCESS_OUTCOMES)}")
    at = at or utc_now()
    rater = "".join(ch for ch in str(rater) if ch.isprintable())[:64]
    try:
        conn.executescript("BEGIN IMMEDIATE;" + ACCESS_SCHEMA)
        conn.execute("INSERT INTO access_log (set_id, rater, client, at, outcome) "
                     "VALUES (?, ?, ?, ?, ?)", (set_id, rater, str(client)[:128], at, outcome))
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreError(f"could not log the sign-in attempt ({exc})") from None
    return at


def failed_access_times(conn: sqlite3.Connection, set_id: str, since: str, *,
                        rater: str | None = None, client: str | None = None) -> list[str]:
    """Times of the wrong attempts for one rater id (or from one client) after ``since``.

    Only the attempts after the latest successful sign-in of that rater (from that client)
    count; oldest first. Empty while no attempt was ever logged.
    """
    if (rater is None) == (client is None):
        raise ValueError("give rater or client")
    column, value = ("rater", rater) if rater is not None else ("client", client)
    try:
        rows = conn.execute(
            f"SELECT at FROM access_log WHERE set_id = ? AND {column} = ? AND outcome = 'wrong' "
            f"AND at > ? AND id > COALESCE((SELECT MAX(id) FROM access_log WHERE set_id = ? "
            f"AND {column} = ? AND outcome = 'ok'), 0) ORDER BY id",
            (set_id, value, since, set_id, value)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise StoreError(f"could not read the sign-in log ({exc})") from None
    return [row[0] for row in rows]


def sign_in_failures(db_path: str | Path, set_id: str) -> dict[str, int]:
    """Wrong and throttled sign-in attempts of a set per rater id as typed (read-only).

    A database written before the sign-in log existed has none: ``{}``.
    """
    conn = _read_only(db_path)
    try:
        rows = conn.execute("SELECT rater, COUNT(*) FROM access_log WHERE set_id = ? "
                            "AND outcome != 'ok' GROUP BY rater ORDER BY rater", (set_id,)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise StoreError(f"{db_path}: could not read the sign-in log ({exc})") from None
    finally:
        conn.close()
    return dict(rows)
