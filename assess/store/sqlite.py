"""The ratings store in a SQLite file: the embedded default (``results/<set-id>/ratings.sqlite``).

WAL mode with ``synchronous=FULL``: a rating is on disk when :func:`assess.store.record` returns.
``BEGIN IMMEDIATE`` takes the file's write lock before the chain head is read, so writers of one
worklist (and of every other) are serialized. The schema version is ``PRAGMA user_version``; the
guard triggers are SQLite triggers named as in :data:`assess.store.TRIGGERS`.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import (ACCESS_SCHEMA, SCHEMA_VERSION, TABLES, TRIGGERS, TRIGGERS_V1, TRIGGERS_V2,
                StoreError, migrations)

NAME = "SQLite"
Error = sqlite3.Error
#: The filter on one set that makes SQLite scan in id order rather than search the index and sort.
SET_FILTER = " WHERE +set_id = ?"

SCHEMA = TABLES + "".join(f"{sql};\n" for sql in (
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
    "CREATE TRIGGER IF NOT EXISTS audit_log_append_only_update BEFORE UPDATE ON audit_log\n"
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_append_only_delete BEFORE DELETE ON audit_log\n"
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
))

BUSY_TIMEOUT_MS = 10_000


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
    stay unchained and :func:`assess.store.verify` reports them as such.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another writer may be first
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: written by a newer version of assess (schema version "
                             f"{version}); upgrade assess to open it")
        if version < SCHEMA_VERSION:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            found = (0 if not columns else 1 if "hash" not in columns
                     else 3 if {"audit_log", "sessions"} <= tables else 2)
            for script in migrations(found) + [SCHEMA]:
                for sql in _statements(script):
                    conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def write(conn: sqlite3.Connection, set_id: str, rater: str, durable: bool = True
          ) -> Iterator[None]:
    """One write transaction; ``BEGIN IMMEDIATE`` holds the file's write lock from its start.

    ``durable=False`` is for notes that may be lost in a power cut (the item a rater is on): the
    commit then skips the disk flush (``synchronous=NORMAL``; still atomic, never corrupt).
    """
    if not durable:
        conn.execute("PRAGMA synchronous = NORMAL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        if not durable:
            conn.execute("PRAGMA synchronous = FULL")


def is_locked_error(exc: Exception) -> bool:
    """Whether a refused insert was refused by the after-lock trigger."""
    return isinstance(exc, sqlite3.IntegrityError) and "locked" in str(exc)


def ensure_access_log(conn: sqlite3.Connection) -> None:
    """Create the sign-in log on first use (inside the caller's write transaction)."""
    for sql in _statements(ACCESS_SCHEMA):
        conn.execute(sql)


def is_missing_table(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)


def exists(path: Path) -> bool:
    return Path(path).is_file()


def read_only(db_path: str | Path) -> sqlite3.Connection:
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


def describe(conn: sqlite3.Connection) -> tuple[int, set[str], set[str]]:
    """(schema version, columns of ``events``, tables) of an open database."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return version, columns, tables


def _normal_sql(sql: str) -> str:
    return " ".join(sql.replace("IF NOT EXISTS ", "").split()).rstrip(";").strip()


_EXPECTED_TRIGGERS = {
    sql.split()[5 if "IF NOT EXISTS" in sql else 2]: _normal_sql(sql)
    for sql in _statements(SCHEMA) if sql.upper().startswith("CREATE TRIGGER")}


def check_triggers(conn: sqlite3.Connection, version: int) -> list[str]:
    """Each guard trigger that is missing or not the one of the schema, in words."""
    found = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    out = []
    for name in TRIGGERS if version >= 3 else TRIGGERS_V2 if version >= 2 else TRIGGERS_V1:
        if name not in found:
            out.append(f"guard trigger {name} is missing: it was dropped, so the events could be "
                       "changed or deleted unseen")
        elif _normal_sql(found[name] or "") != _EXPECTED_TRIGGERS[name]:
            out.append(f"guard trigger {name} was replaced by another one")
    return out
