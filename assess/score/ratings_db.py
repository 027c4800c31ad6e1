"""The ratings database as the scorer reads it: current ratings and locks (:mod:`assess.store`),
and the check of every chain, lock signature and guard trigger, run in a second process while the
set and the key are read (:class:`ChainCheck`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from .errors import ScoreError

__all__ = ["RATING_COLUMNS", "read_ratings_db", "verify_ratings_db", "ChainCheck", "chain_counts",
           "heads_digest"]


#: What the scorer reads of each rating in the ratings database.
RATING_COLUMNS = ("rater", "item", "revision", "score", "better", "first", "cannot_assess",
                  "comment", "answered_at", "seconds")


def read_ratings_db(db_path: str | Path, set_id: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Current ratings and locks from the ratings database (through :mod:`assess.store`)."""
    try:
        # "<set-id>:adjudication" (and other worklists of the set's panel) belong to the set
        other = sorted(s for s in set(store.set_ids(db_path)) - {set_id}
                       if not s.startswith(set_id + ":"))
        if other:
            raise ScoreError(f"{db_path}: holds ratings of set(s) {', '.join(other)}, but the rater "
                             f"folder is set {set_id!r}; give the database and rater folder of the "
                             "same set")
        ratings = store.current_ratings(db_path, set_id, columns=RATING_COLUMNS, sort=False)
        locks = store.locks(db_path, set_id)
    except store.StoreError as exc:
        raise ScoreError(str(exc)) from None
    ratings["line"] = np.nan
    return ratings, locks


def verify_ratings_db(db_path: str | Path, set_id: str) -> store.ChainReport:
    """Recompute the set's chains, lock signatures and guard triggers (:func:`store.verify`).

    Raises :class:`ScoreError` naming the rater, item and event of every break.
    """
    try:
        return store.verify(db_path, set_id).check()
    except store.StoreError as exc:
        raise ScoreError(str(exc)) from None


class ChainCheck:
    """:func:`verify_ratings_db` in a second process while this one reads the set and the key.

    Recomputing every hash of a large database takes about as long as reading its ratings; the
    second process does it meanwhile. When that process cannot run or fails, :meth:`result`
    verifies here, so the outcome is the same either way.
    """

    CODE = ("import json, pickle, sys\n"
            "m = json.loads(sys.stdin.readline())\n"
            "sys.path[:0] = m['path']\n"
            "from assess import store\n"
            "try:\n"
            "    r = store.verify(m['db'], m['set_id'])\n"
            "except store.StoreError as e:\n"
            "    r = str(e)\n"
            "with open(m['out'], 'wb') as fh:\n"
            "    pickle.dump(r, fh)\n")

    def __init__(self, db_path: str | Path, set_id: str) -> None:
        import sys

        from ..child import Child

        self.db, self.set_id = store.location(db_path), set_id
        self.child = Child(self.CODE, prefix="assess-verify-")
        self.out = self.child.dir / "report.pickle"
        db = self.db if store.is_url(self.db) else self.db.resolve()
        self.child.send({"path": sys.path, "db": str(db), "set_id": set_id, "out": str(self.out)})

    def result(self) -> store.ChainReport:
        """The verified report; raises :class:`ScoreError` naming every break."""
        import pickle

        report = None
        try:
            if self.child.wait():
                with open(self.out, "rb") as fh:
                    report = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, AttributeError, EOFError):
            report = None
        finally:
            self.child.close()
        if isinstance(report, str):
            raise ScoreError(report)
        if not isinstance(report, store.ChainReport):
            return verify_ratings_db(self.db, self.set_id)
        try:
            return report.check()
        except store.StoreError as exc:
            raise ScoreError(str(exc)) from None


def chain_counts(report: store.ChainReport) -> dict[str, dict]:
    """Per rater: events, unchained events, chain head and signature, for the report."""
    out = {}
    for (_, rater), wl in report.worklists.items():
        lock = wl.lock or {}
        out[rater] = {"events": wl.events, "unchained": wl.unchained, "head": wl.head,
                      "signed_at": lock.get("locked_at") if wl.signed else None,
                      "signer": lock.get("signer"), "auth_method": lock.get("auth_method")}
    return out


def heads_digest(report: store.ChainReport) -> str:
    """A database on a server has no file to hash: the sha256 of its verified chain heads."""
    heads = sorted([list(key), wl.head] for key, wl in report.worklists.items())
    return hashlib.sha256(json.dumps(heads, separators=(",", ":")).encode()).hexdigest()
