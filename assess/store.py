"""The ratings database: append-only rating events, revisions and locks.

This is the only module that speaks SQL. The database (``results/<set-id>/ratings.sqlite``) is
SQLite in WAL mode with ``synchronous=FULL``: a rating is on disk when :func:`record` returns, and
survives a closed tab, a killed server or a power cut. Nothing is ever updated or deleted: changing a
rating appends a new revision, the old one stays; triggers in the schema refuse ``UPDATE`` and
``DELETE`` and refuse any new rating from a rater whose worklist is locked, so the rules hold for
every client of the file, not only for the app.

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
from typing import Iterable

import numpy as np
import pandas as pd

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
  UNIQUE (set_id, rater, item, revision)
);
CREATE TABLE IF NOT EXISTS locks (set_id TEXT, rater TEXT, locked_at TEXT, PRIMARY KEY (set_id, rater));
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'ratings are append-only: add a revision instead'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'ratings are append-only: they cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS events_refused_after_lock BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM locks WHERE set_id = NEW.set_id AND rater = NEW.rater)
BEGIN SELECT RAISE(ABORT, 'worklist locked: ratings are read-only'); END;
CREATE TRIGGER IF NOT EXISTS locks_final_update BEFORE UPDATE ON locks
BEGIN SELECT RAISE(ABORT, 'a lock is final'); END;
CREATE TRIGGER IF NOT EXISTS locks_final_delete BEFORE DELETE ON locks
BEGIN SELECT RAISE(ABORT, 'a lock is final'); END;
"""

BUSY_TIMEOUT_MS = 10_000
SCHEMA_VERSION = 1  # PRAGMA user_version once the schema above is in place


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
            conn.executescript("BEGIN IMMEDIATE;" + SCHEMA
                               + f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: not a ratings database ({exc}); give another --db file") from None
    except BaseException:
        conn.close()
        raise
    return conn


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
            conn.execute(
                "INSERT INTO events (" + ", ".join(COLUMNS) + ") VALUES (" + ", ".join("?" * len(COLUMNS)) + ")",
                tuple(getattr(new, f.name) for f in fields(Event)))
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


def lock(conn: sqlite3.Connection, set_id: str, rater: str, items: Iterable[str]) -> str:
    """Submit and lock the rater's worklist; returns the lock time.

    ``items`` is the rater's whole worklist: locking is refused while any of them has no rating.
    Locking twice returns the first lock time.
    """
    items = list(items)
    conn.execute("BEGIN IMMEDIATE")
    try:
        when = _locked(conn, set_id, rater)
        if when is None:
            rated = set(current(conn, set_id, rater))
            missing = [item for item in items if item not in rated]
            if missing:
                raise StoreError(f"{rater}: {len(missing)} of {len(items)} items are not rated yet "
                                 f"(first: {missing[0]}); rate them before submitting")
            when = utc_now()
            conn.execute("INSERT INTO locks (set_id, rater, locked_at) VALUES (?, ?, ?)",
                         (set_id, rater, when))
        conn.execute("COMMIT")
        return when
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


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
