"""The ratings store on a PostgreSQL server: one central database for raters at several sites.

Given ``--db postgresql://user@host:5432/dbname``. Connections come from a pool (psycopg 3 and
psycopg_pool), one pool per URL and process. The password is never part of the URL (it would end
up in shell histories, process lists and logs): libpq takes it from ``PGPASSWORD``, a password file
(``~/.pgpass``, ``PGPASSFILE``) or a service file (``?service=NAME``), and the rating app also from
Streamlit secrets (``[assess] db_password``).

The schema is the one of :data:`assess.store.TABLES` (written once, in SQLite's words, translated
here), its version is the highest row of ``schema_version``, and the guard triggers are plpgsql
functions named as the SQLite triggers (plus refusing ``TRUNCATE``). Writers of one worklist are
serialized by ``pg_advisory_xact_lock`` on (set, rater), taken before the chain head is read, so
concurrent sessions keep one unbroken chain. :func:`init` creates the schema and, optionally, a
role that may only INSERT and SELECT.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import threading
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

from . import (ACCESS_SCHEMA, SCHEMA_VERSION, TABLES, TRIGGERS, TRIGGERS_V1, TRIGGERS_V2,
                StoreError, UnavailableError, migrations, utc_now)

NAME = "PostgreSQL"
SCHEMES = ("postgresql://", "postgres://")
SET_FILTER = " WHERE set_id = ?"
POOL_MAX = 8
CONNECT_TIMEOUT_S = 10
#: How long a call waits for a pooled connection before it reports the server unreachable.
POOL_WAIT_S = 3
_UPGRADE_LOCK = 0x61737365  # advisory lock key held while the schema is created or migrated


def _final(prefix: str, table: str, changed: str, deleted: str | None = None) -> tuple:
    """The guards that refuse UPDATE, DELETE and TRUNCATE on ``table`` (name, table, when, level,
    body), each raising ``changed`` or, for a row deleted or the table emptied, ``deleted``.

    >>> [g[0] for g in _final("locks_final", "locks", "a lock is final")]
    ['locks_final_update', 'locks_final_delete', 'locks_final_truncate']
    """
    deleted = deleted or changed
    return tuple((f"{prefix}_{what}", table, f"BEFORE {what.upper()}", level,
                  f"RAISE EXCEPTION '{message}';")
                 for what, level, message in (("update", "ROW", changed), ("delete", "ROW", deleted),
                                              ("truncate", "STATEMENT", deleted)))


#: Guard triggers: name (also its function's), table, when, level, body.
GUARDS = (
    *_final("events_append_only", "events", "ratings are append-only: add a revision instead",
            "ratings are append-only: they cannot be deleted"),
    ("events_refused_after_lock", "events", "BEFORE INSERT", "ROW",
     "IF EXISTS (SELECT 1 FROM locks WHERE set_id = NEW.set_id AND rater = NEW.rater) THEN "
     "RAISE EXCEPTION 'worklist locked: ratings are read-only'; END IF; RETURN NEW;"),
    ("events_chained", "events", "BEFORE INSERT", "ROW",
     "IF NEW.hash IS NULL OR NEW.parent IS NULL THEN "
     "RAISE EXCEPTION 'ratings are chained: save them through assess'; END IF; RETURN NEW;"),
    *_final("locks_final", "locks", "a lock is final"),
    *_final("store_info_final", "store_info", "store information is final"),
    *_final("audit_log_append_only", "audit_log", "the audit log is append-only"),
)
PG_TRIGGERS = TRIGGERS + ("events_append_only_truncate", "locks_final_truncate",
                          "store_info_final_truncate", "audit_log_append_only_truncate")
PG_TRIGGERS_V2 = TRIGGERS_V2 + ("events_append_only_truncate", "locks_final_truncate",
                                "store_info_final_truncate")
assert {g[0] for g in GUARDS} == set(PG_TRIGGERS)
#: The sign-in log's guards (as the SQLite ones, plus TRUNCATE).
ACCESS_GUARDS = _final("access_log_append_only", "access_log", "the access log is append-only")

try:  # psycopg is needed only for a PostgreSQL URL
    import psycopg
    from psycopg import sql as _sql
    from psycopg_pool import ConnectionPool, PoolTimeout
    Error = psycopg.Error
except ImportError:  # pragma: no cover - reported when a URL is given
    psycopg = None
    Error = ()


#: What a server that is shutting down or starting up answers.
_SHUTDOWN = (psycopg.errors.AdminShutdown, psycopg.errors.CrashShutdown,
             psycopg.errors.CannotConnectNow) if psycopg is not None else ()


def is_url(db: object) -> bool:
    return isinstance(db, str) and db.startswith(SCHEMES)


def check_url(url: str) -> str:
    """The URL as given, once it is known to carry no password.

    >>> check_url("postgresql://assess@db.example.org:5432/trial")
    'postgresql://assess@db.example.org:5432/trial'
    """
    try:
        parts = urlsplit(url)
        password = parts.password
        query = parse_qs(parts.query)
    except ValueError as exc:
        raise StoreError(f"--db {url}: not a PostgreSQL URL ({exc}); write "
                         "postgresql://user@host:5432/dbname") from None
    if password is not None or "password" in query:
        shown = url.replace(f":{password}@", ":***@") if password else url.split("?")[0] + "?…"
        raise StoreError(f"--db {shown}: a password must not be part of the URL (it would end up "
                         "in logs); remove it and set PGPASSWORD, a password file (~/.pgpass) or "
                         "a service file, or db_password under [assess] in Streamlit secrets")
    return url


def _password() -> dict:
    """``password=`` from Streamlit secrets when libpq has none from the environment."""
    if os.environ.get("PGPASSWORD") or "streamlit" not in sys.modules:
        return {}
    try:
        secret = sys.modules["streamlit"].secrets.get("assess", {}).get("db_password")
    except Exception:  # no secrets file: libpq's own sources stay
        return {}
    return {"password": str(secret)} if secret else {}


#: Version 2 to 3, scores (see :data:`assess.store.MIGRATE_2_TO_3_SCORES`): the integer score
#: column takes half steps and VAS values; whole scores keep their value.
SCORES_2_TO_3 = "ALTER TABLE events ALTER COLUMN score TYPE DOUBLE PRECISION"


def _pg(script: str) -> str:
    """The schema text of :data:`assess.store.TABLES`, in PostgreSQL's words."""
    script = re.sub(r"\bscore INTEGER\b", "score DOUBLE PRECISION", script)  # schema v3
    script = re.sub(r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                    script)
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", script)


def _guards_sql(guards=GUARDS) -> str:
    out = []
    for name, table, when, level, body in guards:
        out.append(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
                   f"SET search_path FROM CURRENT AS $$ BEGIN {body} END $$;\n"
                   f"CREATE OR REPLACE TRIGGER {name} {when} ON {table} FOR EACH {level} "
                   f"EXECUTE FUNCTION {name}();\n")
    return "".join(out)


SCHEMA = _pg(TABLES) + "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, " \
    "applied_at TEXT NOT NULL);\n" + _guards_sql()


#: The sign-in log: the tables and indexes of :data:`assess.store.ACCESS_SCHEMA`, its own guards.
ACCESS_SQL = "".join(_pg(sql) + ";\n" for sql in ACCESS_SCHEMA.split(";\n")
                     if sql.strip().startswith(("CREATE TABLE", "CREATE INDEX"))) + \
    _guards_sql(ACCESS_GUARDS)


class Connection:
    """A pooled connection that speaks as :mod:`sqlite3` does (``?`` parameters, ``execute``).

    ``close()`` gives it back to the pool. It runs in autocommit mode; the store's transactions
    are explicit (``BEGIN`` … ``COMMIT``).
    """

    backend = sys.modules[__name__]

    def __init__(self, pool, raw, url: str) -> None:
        self._pool, self.raw, self.url = pool, raw, url

    def execute(self, sql: str, params=()):
        try:
            return self.raw.execute(sql.replace("?", "%s"), tuple(params) or None)
        except psycopg.OperationalError as exc:
            if self.raw.broken or self.raw.closed or isinstance(exc, _SHUTDOWN):
                raise _unavailable(self.url, exc) from None  # the server went away
            raise

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        if self.raw is not None:
            raw, self.raw = self.raw, None
            if self._pool is None:
                raw.close()
            else:
                self._pool.putconn(raw)

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_POOLS: dict[tuple[str, bool], "ConnectionPool"] = {}
_POOLS_LOCK = threading.Lock()


def _need_psycopg() -> None:
    if psycopg is None:
        raise StoreError("a PostgreSQL --db needs psycopg: pip install 'psycopg[binary]' "
                         "psycopg_pool (see requirements.txt)")


def _direct(url: str, **kwargs):
    """One connection outside the pool, with the server's own words on failure."""
    _need_psycopg()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               **_password(), **kwargs)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"{url}: cannot connect to the ratings database ({reason}); check the "
                         "URL, that the server runs, and the password in PGPASSWORD, ~/.pgpass "
                         "or the service file") from None


def _pool(url: str, read_only: bool) -> "ConnectionPool":
    with _POOLS_LOCK:
        pool = _POOLS.get((url, read_only))
        if pool is None:
            kwargs = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S, **_password()}
            if read_only:
                kwargs["options"] = "-c default_transaction_read_only=on"
            pool = ConnectionPool(url, kwargs=kwargs, min_size=1, max_size=POOL_MAX, open=True,
                                  check=ConnectionPool.check_connection, timeout=CONNECT_TIMEOUT_S,
                                  name=f"assess-{'ro' if read_only else 'rw'}")
            _POOLS[(url, read_only)] = pool
        return pool


def _unavailable(url: str, exc: Exception) -> UnavailableError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UnavailableError(f"{url}: the ratings database cannot be reached ({reason}); check "
                            "that the server runs, then try again")


def _checkout(url: str, read_only: bool) -> Connection:
    """A connection from the pool, or :class:`UnavailableError` within :data:`POOL_WAIT_S`.

    A pool that found no server is dropped, so that the first call after the server is back
    connects at once instead of waiting out the pool's back-off between attempts.
    """
    pool = _pool(url, read_only)
    try:
        return Connection(pool, pool.getconn(timeout=POOL_WAIT_S), url)
    except (PoolTimeout, psycopg.Error) as exc:
        with _POOLS_LOCK:
            if _POOLS.get((url, read_only)) is pool:
                del _POOLS[(url, read_only)]
        threading.Thread(target=pool.close, daemon=True).start()
        raise _unavailable(url, exc) from None


def close_pools() -> None:
    """Close every pool of this process (at exit, and between tests)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


atexit.register(close_pools)


def _version(raw) -> tuple[int, set[str]]:
    """(schema version, columns of ``events``); version 0 for an empty database."""
    columns = {r[0] for r in raw.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('events') AND attnum > 0 "
        "AND NOT attisdropped")}
    if raw.execute("SELECT to_regclass('schema_version')").fetchone()[0] is not None:
        version = raw.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        return int(version), columns
    return (0 if not columns else 2 if "hash" in columns else 1), columns


def _upgrade(raw, url: str) -> None:
    """Create the schema or migrate it forward, once, under an advisory lock."""
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK,))
        found, _ = _version(raw)
        if found > SCHEMA_VERSION:
            raise StoreError(f"{url}: written by a newer version of assess (schema version "
                             f"{found}); upgrade assess to open it")
        if found < SCHEMA_VERSION:
            for script in migrations(found):
                if script.strip():
                    raw.execute(_pg(script))
            if 0 < found < 3:
                raw.execute(SCORES_2_TO_3)
            raw.execute(SCHEMA)
            raw.execute("INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)",
                        (SCHEMA_VERSION, utc_now()))
        if not _has_access_log(raw):
            raw.execute(ACCESS_SQL)


def _has_access_log(raw) -> bool:
    return raw.execute("SELECT to_regclass('access_log')").fetchone()[0] is not None


_READY: set[str] = set()


def connect(url: str) -> Connection:
    """A pooled connection for writing; the schema is created or migrated on first use."""
    check_url(url)
    if url not in _READY:
        raw = _direct(url)
        try:
            if _version(raw)[0] != SCHEMA_VERSION or not _has_access_log(raw):
                _upgrade(raw, url)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StoreError(f"{url}: the schema of the ratings database is missing or older, and "
                             f"this role may not create it ({exc}); ask the database owner to run "
                             "`assess db init URL`") from None
        except psycopg.Error as exc:
            raise StoreError(f"{url}: cannot prepare the ratings database ({exc})") from None
        finally:
            raw.close()
        _READY.add(url)
    return _checkout(url, read_only=False)


def exists(url: str) -> bool:
    return True


def read_only(url: str) -> Connection:
    """A pooled read-only connection; refused with a clear message when there is no schema."""
    check_url(url)
    _need_psycopg()
    if (url, True) not in _POOLS:
        _direct(url).close()  # the server's own words when it cannot be reached
    conn = _checkout(url, read_only=True)
    try:
        conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
    except psycopg.Error as exc:
        conn.close()
        raise StoreError(f"{url}: not a readable ratings database ({str(exc).strip()}); run "
                         "`assess db init URL` or `assess rate` first") from None
    return conn


@contextmanager
def write(conn: Connection, set_id: str, rater: str, durable: bool = True) -> Iterator[None]:
    """One write transaction holding the worklist's advisory lock until it ends.

    ``durable=False`` (a note that may be lost in a crash) commits without waiting for the
    write-ahead log to reach the disk (``synchronous_commit = off`` for this transaction only).
    """
    conn.execute("BEGIN")
    try:
        if not durable:
            conn.execute("SET LOCAL synchronous_commit TO OFF")
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
                     (json.dumps([set_id, rater]),))
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.raw is not None and conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except UnavailableError:  # the connection is gone, and its transaction with it
                pass
        raise


def is_locked_error(exc: Exception) -> bool:
    return isinstance(exc, psycopg.errors.RaiseException) and "locked" in str(exc)


def ensure_access_log(conn: Connection) -> None:
    """The sign-in log is created with the schema (:func:`connect`), by the owner."""


def is_missing_table(exc: Exception) -> bool:
    return isinstance(exc, psycopg.errors.UndefinedTable)


def describe(conn: Connection) -> tuple[int, set[str], set[str]]:
    """(schema version, columns of ``events``, tables) of an open database."""
    version, columns = _version(conn.raw)
    tables = {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND "
        "c.relnamespace = current_schema()::regnamespace")}
    return version, columns, tables


def _normal(text: str) -> str:
    return " ".join((text or "").split())


def check_triggers(conn: Connection, version: int) -> list[str]:
    """Each guard trigger that is missing, disabled or not the one of the schema, in words."""
    rows = conn.execute(
        "SELECT t.tgname, c.relname, t.tgenabled, p.proname, p.prosrc, pg_get_triggerdef(t.oid) "
        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE NOT t.tgisinternal AND c.oid IN (SELECT to_regclass(n) FROM "
        "unnest(ARRAY['events', 'locks', 'store_info', 'audit_log']) AS n)").fetchall()
    found = {r[0]: r for r in rows}
    expected = {g[0]: g for g in GUARDS}
    out = []
    for name in PG_TRIGGERS if version >= 3 else PG_TRIGGERS_V2 if version >= 2 else TRIGGERS_V1:
        _, table, when, level, body = expected[name]
        row = found.get(name)
        if row is None:
            out.append(f"guard trigger {name} is missing: it was dropped, so the events could be "
                       "changed or deleted unseen")
        elif row[2] not in ("O", "A"):
            out.append(f"guard trigger {name} is disabled, so the events could be changed or "
                       "deleted unseen")
        elif (row[1] != table or row[3] != name or _normal(row[4]) != _normal(f"BEGIN {body} END")
              or f" {when} ON " not in row[5] or f"FOR EACH {level}" not in row[5]):
            out.append(f"guard trigger {name} was replaced by another one")
    return out


def init(url: str, app_role: str | None = None) -> list[str]:
    """Create or migrate the schema; with ``app_role``, a role that may only INSERT and SELECT.

    Run as the database owner. The role is created (``LOGIN``, no password: set one with
    ``ALTER ROLE … PASSWORD`` or use the server's own authentication) when it does not exist, and
    is given ``CONNECT`` on the database, ``USAGE`` on the schema, ``INSERT, SELECT`` on the events,
    the locks, the sign-in log and the audit log and ``SELECT`` on the store information (and what sign-in
    sessions need: ``SELECT, INSERT`` on the session key, ``UPDATE`` too on the sessions and the
    raters' positions), nothing more: it cannot update, delete,
    truncate or drop a trigger. Returns what was done, one line each.
    """
    connect(url).close()
    done = [f"schema version {SCHEMA_VERSION} in place"]
    if app_role is None:
        return done
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", app_role):
        raise StoreError(f"--app-role {app_role!r}: use lower-case letters, digits and _ "
                         "(at most 63), starting with a letter")
    role = _sql.Identifier(app_role)
    raw = _direct(url)
    try:
        with raw.transaction():
            if raw.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_role,)).fetchone():
                done.append(f"role {app_role} exists; its rights are set again")
            else:
                raw.execute(_sql.SQL("CREATE ROLE {} LOGIN").format(role))
                done.append(f"role {app_role} created (LOGIN; give it a password or another "
                            "authentication on the server)")
            db = raw.execute("SELECT current_database(), current_schema()").fetchone()
            tables = _sql.SQL(", ").join(map(_sql.Identifier, (
                "events", "locks", "store_info", "schema_version", "access_log", "audit_log",
                "sessions", "session_keys", "rater_positions")))
            for statement in (
                    "REVOKE ALL ON {tables} FROM {role}",
                    "GRANT CONNECT ON DATABASE {db} TO {role}",
                    "GRANT USAGE ON SCHEMA {schema} TO {role}",
                    "GRANT SELECT, INSERT ON events, locks, access_log, audit_log TO {role}",
                    "GRANT SELECT ON store_info, schema_version TO {role}",
                    "GRANT SELECT, INSERT ON session_keys TO {role}",
                    "GRANT SELECT, INSERT, UPDATE ON sessions, rater_positions TO {role}"):
                raw.execute(_sql.SQL(statement).format(
                    tables=tables, role=role, db=_sql.Identifier(db[0]),
                    schema=_sql.Identifier(db[1])))
        done.append(f"role {app_role} may INSERT and SELECT events, locks, the sign-in log and "
                    "the audit log, SELECT the store information, keep sign-in sessions, and "
                    "nothing else")
    except psycopg.Error as exc:
        raise StoreError(f"{url}: cannot set up role {app_role} ({str(exc).strip()}); run this as "
                         "the database owner") from None
    finally:
        raw.close()
    return done
