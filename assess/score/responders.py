"""Responder-status disagreements, found on the key's side and sent to the adjudicator by code.

Whether a rater calls a participant a responder needs the participant's baseline and follow-up
photos side by side (singles) or which side of a pair is the follow-up: only the key knows that.
The adjudicator's queue is built on the rater side (:func:`assess.adjudication.queue`), which
never sees the key. So the coordinator runs :func:`send` (``assess adjudication queue``) with
the key: it unblinds the panel's current ratings, finds the photos on which the panel's responder
calls differ (:func:`assess.score.panel.responder_items`, the rule
:func:`assess.panel.responder`), and records their codes as chained events in the worklist
``<set-id>:adjudication-sent`` (rater ``coordinator``, score 1 = sent, comment = the reason).

Only codes go there: never a participant, a timepoint or a score; and for single photos both the
baseline and the follow-up photo of such a participant are sent, so the queue does not say which
is which. A code once sent stays sent (nothing recorded is withdrawn); running :func:`send`
again adds only what is new.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from .. import panel as rules_
from .. import store
from .panel import responder_items, rules_of
from .unblind import ScoreError, unblind

__all__ = ["Sent", "send"]


@dataclass(frozen=True)
class Sent:
    """What :func:`send` found and recorded."""

    set_id: str
    codes: tuple[str, ...]  # every code on which the panel disagrees now
    new: tuple[str, ...]  # of those, the ones recorded by this call


def send(rater_dir: str | Path, key_dir: str | Path, db: str | Path,
         fingerprint: str | None = None) -> Sent:
    """Record the codes on which the panel disagrees on responder status as sent to adjudication.

    Raises :class:`ScoreError` when the set declares no ``[adjudication] responder_change`` or
    the database holds no ratings, and what :func:`assess.score.unblind.unblind` raises when the
    folders, key and ratings do not belong together (nothing is recorded then).
    """
    db = store.location(db)
    if not store.exists(db):
        raise ScoreError(f"{store.describe(db)}: no ratings database there; give the --db that "
                         "`assess rate` writes")
    u = unblind(rater_dir, key_dir, db=db, allow_unlocked=True, fingerprint=fingerprint)
    rules = rules_of(u)
    if rules.adjudication is None or rules.adjudication.responder_change is None:
        raise ScoreError(f"{Path(rater_dir) / 'set.json'}: the study declares no [adjudication] "
                         "responder_change, so no photo is sent on responder status")
    codes = responder_items(u, rules)
    worklist = rules_.sent_worklist(u.set.set_id)
    with closing(store.connect(db)) as conn:
        before = store.current(conn, worklist, rules_.SENDER)
        new = [c for c in codes if c not in before]
        for code in new:
            store.record(conn, worklist, rules_.SENDER, code, score=1,
                         comment=rules_.RESPONDER_REASON)
    return Sent(u.set.set_id, tuple(codes), tuple(new))
