"""The audit log from the coordinator's side: sign-ins per rater for ``assess status``, and export.

The rating app writes the audit log (:mod:`assess.store.auditlog`); this module only reads it:
:func:`summarize` counts per rater, :func:`export` writes it whole to a CSV that a spreadsheet
opens safely (cells that would run as formulas are prefixed, :func:`assess.csvfile.spreadsheet_safe`).

>>> from assess.store import AuditEntry
>>> log = [AuditEntry("S1", "2026-01-01T10:00:00.000Z", "sign-in refused", "access code", "derm1",
...                   None, "local", None, "", ""),
...        AuditEntry("S1", "2026-01-01T10:00:05.000Z", "sign-in", "access code", "derm1", None,
...                   "local", None, "", "")]
>>> print(format_summary(summarize(log, ["derm1", "derm2"])))
rater  sign-ins  failed  last sign-in
derm1  1         1       2026-01-01 10:00 UTC
derm2  0         0       -
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from . import chain, store
from .csvfile import spreadsheet_safe
from .rate import RateError, default_db, load_rater_set

__all__ = ["SignInSummary", "summarize", "format_summary", "read", "export", "EXPORT_COLUMNS"]

#: The columns of ``assess audit-log --out``, in order.
EXPORT_COLUMNS = ("at", "set_id", "event", "method", "rater", "account", "client", "detail", "hash")


@dataclass(frozen=True)
class SignInSummary:
    """One rater's sign-ins in the audit log: successful, refused or throttled, the latest."""

    rater: str
    sign_ins: int
    failed: int
    last_sign_in: str | None


def summarize(entries: Iterable[store.AuditEntry], raters: Sequence[str]) -> list[SignInSummary]:
    """Per rater of ``raters``: sign-ins, failed sign-ins under their id, the latest sign-in."""
    counts = {r: [0, 0, None] for r in raters}
    for e in entries:
        row = counts.get(e.rater or "")
        if row is None:
            continue
        if e.event == "sign-in":
            row[0] += 1
            row[2] = max(row[2] or "", e.at)
        elif e.failed:
            row[1] += 1
    return [SignInSummary(r, *counts[r]) for r in raters]


def format_summary(rows: Sequence[SignInSummary]) -> str:
    """A plain table for the terminal, times in UTC to the minute."""
    lines = [("rater", "sign-ins", "failed", "last sign-in")] + [
        (r.rater, str(r.sign_ins), str(r.failed),
         r.last_sign_in[:16].replace("T", " ") + " UTC" if r.last_sign_in else "-") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def read(rater_dir: str | Path, db: str | Path | None = None
         ) -> tuple[list[str], list[store.AuditEntry], list[str]]:
    """(the set's raters, its audit log, what is wrong with the log's chain), read-only."""
    rs = load_rater_set(rater_dir)
    db = store.location(db) if db is not None else default_db(rs)
    entries = store.audit_log(db, rs.set_id) if store.exists(db) else []
    problems = chain.verify_audit([vars(e) for e in entries])
    return list(rs.raters), entries, problems


def export(entries: Sequence[store.AuditEntry], out: str | Path) -> int:
    """Write the audit log to the CSV ``out`` (replaced whole, never left half-written).

    Returns the number of entries written.
    """
    out = Path(out)
    if out.is_dir():
        raise RateError(f"--out {out}: is a folder; give a file name such as audit.csv")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as exc:
        raise RateError(f"--out {out}: cannot write there ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(EXPORT_COLUMNS)
            for e in entries:
                w.writerow([spreadsheet_safe(str(getattr(e, c) or "")) for c in EXPORT_COLUMNS])
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RateError(f"--out {out}: cannot write it ({exc.strerror}); nothing was written") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(entries)
