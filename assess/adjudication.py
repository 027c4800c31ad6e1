"""The adjudicator's side: the queue computed from the panel's ratings, and the adjudicated scores.

The rater folder's ``set.json`` carries the study's ``[consensus]`` and ``[adjudication]`` rules
(``"panel"``). From the panel's current ratings in the ratings database, :func:`queue` finds the
items the rules send to adjudication — the scores without the raters' names, in ascending order —
and :class:`Adjudicator` records the adjudicator's final score with its reason.

An adjudicated score is an ordinary rating event, hash-chained like every other, in a worklist
of its own: set ``<set-id>:adjudication`` (:func:`worklist_id`), rater = the adjudicator. The
panel's ratings are never touched, so the pre-adjudication scores stay in the database and in
``panel_scores.csv``; the scorer reads them (:func:`assess.score.panel.read_adjudicated`).

Pairs are compared on the answer "which looks better" (−2 much better left … +2 much better
right); the adjudicator answers the same question. Which side is the follow-up is in the key, so
the rater side never knows it. Responder-status disagreement needs the timepoints (the key):
the coordinator finds it on the key's side (``assess adjudication queue``,
:func:`assess.score.responders.send`) and records the codes — only codes — in the worklist
``<set-id>:adjudication-sent``; this queue adds them (:func:`sent_codes`).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import panel, store
from .errors import AssessError
from .rate import RaterSet, load_rater_set
from .rate import check_access as _check_rater_access

__all__ = ["AdjudicationError", "QueueItem", "worklist_id", "rules_of", "sent_codes", "queue",
           "Adjudicator",
           "check_access", "BETTER_VALUE"]

BETTER_VALUE = {b: i - 2 for i, b in enumerate(store.BETTER)}
"""A pair's answer as a number: much better left −2 … much better right +2."""
VALUE_BETTER = {v: b for b, v in BETTER_VALUE.items()}


class AdjudicationError(AssessError):
    """The adjudication cannot be done as asked; the message says why and what to do."""


def worklist_id(set_id: str) -> str:
    """The set id of the adjudicator's worklist (:func:`assess.panel.adjudication_worklist`)."""
    return panel.adjudication_worklist(set_id)


def rules_of(rs: RaterSet) -> panel.Rules:
    """The panel rules of the set (from ``set.json``)."""
    import json

    data = json.loads((rs.root / "set.json").read_text(encoding="utf-8"))
    try:
        return panel.rules_from_json(data.get("panel"))
    except ValueError as exc:
        raise AdjudicationError(f"{rs.root / 'set.json'}: panel.{exc}; copy the rater folder "
                                "again") from None


@dataclass(frozen=True)
class QueueItem:
    """One item waiting for (or given) the adjudicator's score."""

    item: str
    kind: str
    scale: str
    region: str
    photos: tuple[str, ...]
    scores: tuple[float, ...]  # what the adjudicator may see: ascending, no names
    reasons: tuple[str, ...]
    done: store.Event | None = None


def _panel_values(rs: RaterSet, db) -> dict[str, list[float]]:
    """Item → the panel raters' current usable answers (scores, or pair answers as numbers)."""
    if not store.exists(db):
        return {}
    import pandas as pd

    current = store.current_ratings(db, rs.set_id, ["score", "better", "cannot_assess"])
    values: dict[str, list[float]] = {}
    for row in current.itertuples(index=False):
        if row.rater not in rs.raters or row.cannot_assess is not None:
            continue
        if row.better is not None:
            values.setdefault(row.item, []).append(float(BETTER_VALUE[row.better]))
        elif not pd.isna(row.score):
            values.setdefault(row.item, []).append(float(row.score))
    return values


def sent_codes(db, set_id: str) -> dict[str, str]:
    """Code → reason of the items the coordinator sent to adjudication from the key's side."""
    if not store.exists(db):
        return {}
    with closing(store.connect(db)) as conn:
        sent = store.current(conn, panel.sent_worklist(set_id), panel.SENDER)
    return {item: e.comment or panel.RESPONDER_REASON for item, e in sent.items() if e.score == 1}


def queue(rater_dir: str | Path, db: str | Path | None = None) -> list[QueueItem]:
    """Items the panel's ratings send to adjudication, in worklist order, with the adjudicator's
    current answer (``done``) where there is one; empty without an ``[adjudication]`` rule.

    Only items every rater of the panel has rated are judged: a photo waits until the panel is
    complete on it. Items the coordinator sent from the key's side (responder status,
    :func:`sent_codes`) are in the queue with that reason.
    """
    rs = load_rater_set(rater_dir)
    db = store.location(db) if db is not None else _default_db(rs)
    rules = rules_of(rs)
    if rules.adjudication is None:
        return []
    rule = rules.consensus.rule if rules.consensus else "median"
    values = _panel_values(rs, db)
    first = rs.worklist(next(iter(rs.raters)))
    done: dict[str, store.Event] = {}
    if store.exists(db) and rules.adjudication.adjudicator:
        with closing(store.connect(db)) as conn:
            done = store.current(conn, worklist_id(rs.set_id), rules.adjudication.adjudicator)
    sent = sent_codes(db, rs.set_id)
    out = []
    for it in first.items:
        scores = values.get(it.item, [])
        if len(scores) < len(rs.raters) and it.item not in sent:
            continue
        reasons = (panel.adjudication_trigger(scores, rules.adjudication, rule).reasons
                   if len(scores) >= len(rs.raters) else ())
        if it.item in sent and sent[it.item] not in reasons:
            reasons += (sent[it.item],)
        if reasons:
            shown = panel.blinded_scores(dict(enumerate(scores)), rules.adjudication)
            out.append(QueueItem(it.item, it.kind, it.scale, it.region, it.photos, shown,
                                 reasons, done.get(it.item)))
    return out


def _default_db(rs: RaterSet) -> Path:
    from .rate import default_db

    return default_db(rs)


def check_access(rs: RaterSet, who: str, code: str) -> bool:
    """Whether ``code`` is the access code of the set's adjudicator ``who``."""
    import json
    from dataclasses import replace

    data = json.loads((rs.root / "set.json").read_text(encoding="utf-8"))
    adj = (data.get("panel") or {}).get("adjudication") or {}
    entry = adj.get("access") if adj.get("adjudicator") == who else None
    if not isinstance(entry, dict):
        entry = {"salt": "00", "hash": "0" * 64}  # the same work, and the answer False
        who_known = False
    else:
        who_known = True
    ok = _check_rater_access(replace(rs, raters={who: entry}), who, code)
    return ok and who_known


class Adjudicator:
    """The designated adjudicator of a set: their queue and their answers.

    Raises :class:`AdjudicationError` when ``who`` is not the set's adjudicator.
    """

    def __init__(self, rater_dir: str | Path, who: str, db: str | Path | None = None):
        self.set = load_rater_set(rater_dir)
        self.rules = rules_of(self.set)
        adj = self.rules.adjudication
        if adj is None or adj.adjudicator is None:
            raise AdjudicationError(f"{self.set.root / 'set.json'}: the study names no "
                                    "adjudicator ([adjudication] adjudicator = \"...\")")
        if who != adj.adjudicator:
            raise AdjudicationError(f"{who}: not the adjudicator of set {self.set.set_id}")
        self.who = who
        self.db = store.location(db) if db is not None else _default_db(self.set)

    def queue(self) -> list[QueueItem]:
        return queue(self.set.root, self.db)

    def save(self, item: str, *, score: int | None = None, better: str | None = None,
             reason: str, seconds: float | None = None, shown_at: str | None = None
             ) -> store.Event:
        """Record the final answer of ``item`` with the adjudicator's ``reason`` (required)."""
        waiting = {q.item: q for q in self.queue()}
        if item not in waiting:
            raise AdjudicationError(f"{item}: not in the adjudication queue of set "
                                    f"{self.set.set_id}")
        q = waiting[item]
        if not (reason or "").strip():
            raise AdjudicationError(f"{item}: give the reason for the final score")
        if q.kind == "single":
            if score is None or score not in self.set.scales[q.scale].values:
                raise AdjudicationError(f"{item}: give a level of "
                                        f"{self.set.scales[q.scale].name}")
            better = None
        elif better not in store.BETTER:
            raise AdjudicationError(f"{item}: a pair takes which side looks better")
        with closing(store.connect(self.db)) as conn:
            return store.record(conn, worklist_id(self.set.set_id), self.who, item, score=score,
                                better=better, first="cannot_tell" if better else None,
                                comment=reason.strip(), seconds=seconds, shown_at=shown_at)

    def check_access(self, code: str) -> bool:
        """Whether ``code`` is the adjudicator's access code (``key/adjudicator.csv``)."""
        return check_access(self.set, self.who, code)

    def sign_and_lock(self, code: str) -> store.Signature:
        """Submit the adjudications with the adjudicator's access code; nothing changes after."""
        if not self.check_access(code):
            raise AdjudicationError(f"{self.who}: the access code is not right; nothing is "
                                    "submitted")
        items: Iterable[str] = [q.item for q in self.queue() if q.done is not None]
        with closing(store.connect(self.db)) as conn:
            return store.sign(conn, worklist_id(self.set.set_id), self.who, list(items),
                              auth_method="access code")


def format_status(rater_dir: str | Path, db: str | Path | None = None) -> str:
    """The coordinator's view of adjudication (``assess status``): how many photos wait, which
    codes, and whether the adjudicator has submitted; never a score. Empty without a rule."""
    rs = load_rater_set(rater_dir)
    rules = rules_of(rs)
    if rules.adjudication is None:
        return ""
    db = store.location(db) if db is not None else _default_db(rs)
    items = queue(rater_dir, db)
    waiting = [q.item for q in items if q.done is None]
    who = rules.adjudication.adjudicator or "(no adjudicator named)"
    locked = None
    if store.exists(db) and rules.adjudication.adjudicator:
        locked = store.locks(db, worklist_id(rs.set_id)).get(rules.adjudication.adjudicator)
    lines = [f"Adjudication ({who}): {len(items)} photo(s) sent by the panel's scores, "
             f"{len(items) - len(waiting)} adjudicated, {len(waiting)} waiting"
             + (f"; submitted and locked {locked}" if locked else "")]
    if waiting:
        shown = ", ".join(waiting[:20]) + (f" … and {len(waiting) - 20} more"
                                           if len(waiting) > 20 else "")
        lines.append(f"  waiting: {shown}")
    return "\n".join(lines)
