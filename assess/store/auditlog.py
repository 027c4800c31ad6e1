"""The audit log: who signed in, was refused, locked or signed out, when, how and from where.

One append-only table, ``audit_log`` (schema version 3, :data:`assess.store.TABLES`), kept by the
same guard triggers as the ratings (no ``UPDATE``, ``DELETE`` or ``TRUNCATE``) and chained per set
like a worklist's ratings (:func:`assess.chain.audit_hash`), so an entry changed or removed past
the triggers is named by :func:`assess.chain.verify_audit`. Entries are written by the rating app
through :mod:`assess.rate`; the coordinator reads them with ``assess status`` and
``assess audit-log``.

>>> import tempfile, pathlib
>>> from contextlib import closing
>>> from assess import store
>>> db = pathlib.Path(tempfile.mkdtemp()) / "ratings.sqlite"
>>> with closing(store.connect(db)) as conn:
...     _ = log_audit(conn, "S1", "sign-in", "access code", "10.0.0.7", rater="derm1")
...     _ = log_audit(conn, "S1", "sign-in refused", "single sign-on", "10.0.0.8",
...                   account="x@elsewhere.example", detail="account is no rater of the set")
>>> [(e.event, e.rater or e.account) for e in audit_log(db, "S1")]
[('sign-in', 'derm1'), ('sign-in refused', 'x@elsewhere.example')]
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from pathlib import Path

from .. import chain
from . import Connection, StoreError, _backend, _read_only, _reason, utc_now

#: What an entry records. ``sign-in``: signed in; ``sign-in refused``: wrong id or code, or an
#: account of the identity provider that is no rater of the set; ``sign-in throttled``: refused
#: unchecked during the wait after wrong attempts; ``lock``: the worklist signed and locked;
#: ``lock refused``: signing refused (wrong code, or single sign-on not fresh); ``sign-out``.
AUDIT_EVENTS = ("sign-in", "sign-in refused", "sign-in throttled", "lock", "lock refused",
                "sign-out")
#: How the person was (or was to be) authenticated.
AUDIT_METHODS = ("access code", "single sign-on")
_FAILED = ("sign-in refused", "sign-in throttled")


@dataclass(frozen=True)
class AuditEntry:
    """One row of ``audit_log``; ``rater`` is the rater id (as typed for a refused code),
    ``account`` the identity provider's account (single sign-on), ``client`` the address."""

    set_id: str
    at: str
    event: str
    method: str
    rater: str | None
    account: str | None
    client: str
    detail: str | None
    parent: str
    hash: str

    @property
    def failed(self) -> bool:
        """Whether this is a refused or throttled sign-in."""
        return self.event in _FAILED


_COLUMNS = tuple(AuditEntry.__dataclass_fields__)


def _clean(value: object, limit: int) -> str | None:
    """Text as kept: printable characters only, cut to ``limit``; ``None`` when empty."""
    if value is None:
        return None
    text = "".join(ch for ch in str(value) if ch.isprintable()).strip()[:limit]
    return text or None


def log_audit(conn: Connection, set_id: str, event: str, method: str, client: str, *,
              rater: str | None = None, account: str | None = None, detail: str | None = None,
              at: str | None = None, once: bool = False) -> AuditEntry | None:
    """Append one entry to the set's audit log and commit it; returns it.

    With ``once``, nothing is written (``None`` is returned) when the set's log already holds an
    entry with the same event, method, rater, account and detail: a single sign-on is recorded
    once per sign-in at the provider, however often the browser reloads the page.
    """
    if event not in AUDIT_EVENTS:
        raise StoreError(f"event: {event!r} is not one of {', '.join(AUDIT_EVENTS)}")
    if method not in AUDIT_METHODS:
        raise StoreError(f"method: {method!r} is not one of {', '.join(AUDIT_METHODS)}")
    values = {"set_id": set_id, "at": at or utc_now(), "event": event, "method": method,
              "rater": _clean(rater, 64), "account": _clean(account, 254),
              "client": _clean(client, 128) or "unknown", "detail": _clean(detail, 500)}
    backend = _backend(conn)
    try:
        with backend.write(conn, set_id, "audit log"):
            if once:
                seen = conn.execute(
                    "SELECT 1 FROM audit_log WHERE set_id = ? AND event = ? AND method = ? AND "
                    "COALESCE(rater, '') = ? AND COALESCE(account, '') = ? AND "
                    "COALESCE(detail, '') = ? LIMIT 1",
                    (set_id, event, method, values["rater"] or "", values["account"] or "",
                     values["detail"] or "")).fetchone()
                if seen:
                    return None
            row = conn.execute("SELECT hash FROM audit_log WHERE set_id = ? ORDER BY id DESC "
                               "LIMIT 1", (set_id,)).fetchone()
            values["parent"] = row[0] if row else chain.GENESIS
            entry = AuditEntry(**values, hash=chain.audit_hash(values))
            conn.execute("INSERT INTO audit_log (" + ", ".join(_COLUMNS) + ") VALUES ("
                         + ", ".join("?" * len(_COLUMNS)) + ")", astuple(entry))
    except backend.Error as exc:
        raise StoreError(f"could not write the audit log ({_reason(exc)}); try again") from None
    return entry


def audit_log(db_path: str | Path, set_id: str | None = None) -> list[AuditEntry]:
    """The audit log in the order it was written, read-only; optionally of one set.

    A database written before the audit log existed (schema version 2) has none: ``[]``.
    """
    backend = _backend(db_path)
    conn = _read_only(db_path)
    try:
        where, args = ("", ()) if set_id is None else (" WHERE set_id = ?", (set_id,))
        rows = conn.execute("SELECT " + ", ".join(_COLUMNS) + " FROM audit_log" + where
                            + " ORDER BY id", args).fetchall()
    except backend.Error as exc:
        if backend.is_missing_table(exc):
            return []
        raise StoreError(f"{db_path}: could not read the audit log ({_reason(exc)})") from None
    finally:
        conn.close()
    return [AuditEntry(*row) for row in rows]
