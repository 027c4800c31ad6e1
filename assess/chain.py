"""The hash chain of rating events and the lock signature: canonical form, hashes, verification.

Pure functions, no SQL, so that every ratings store (the SQLite file, a PostgreSQL server) computes
and checks the same chain. As each git commit names its parent's hash, each rating event of a
worklist (one set, one rater) stores ``parent``, the hash of the worklist's previous event (or
:data:`GENESIS` for its first), and ``hash``, the sha256 of the canonical form of its content and
its parent. The lock that submits the worklist is an electronic signature chained last: it holds
the chain head it signs (the last event's hash), who signed, when, what the signature means and how
the signer was authenticated, and its own hash over all of that.

An event changed after it was saved no longer matches its hash; an event deleted, moved or inserted
breaks the parent links; an event added after the lock is not under the head the lock signed.

>>> first = {"set_id": "S1", "rater": "derm1", "item": "KX7-4MPA", "revision": 1, "score": 3,
...          "shown_at": "2026-01-01T10:00:00Z", "answered_at": "2026-01-01T10:00:04Z"}
>>> first["parent"] = GENESIS
>>> first["hash"] = event_hash(first, GENESIS)
>>> second = {**first, "item": "RT9-UVWX", "parent": first["hash"]}
>>> second["hash"] = event_hash(second, first["hash"])
>>> chain = verify_worklist("S1", "derm1", [{**first, "id": 1}, {**second, "id": 2}])
>>> chain.problems, chain.head == second["hash"]
([], True)
>>> edited = {**second, "id": 2, "score": 5}
>>> [p.kind for p in verify_worklist("S1", "derm1", [{**first, "id": 1}, edited]).problems]
['altered']
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

__all__ = [
    "GENESIS",
    "MEANING",
    "AUTH_METHODS",
    "EVENT_FIELDS",
    "LOCK_FIELDS",
    "Problem",
    "WorklistChain",
    "canonical",
    "event_hash",
    "lock_hash",
    "short",
    "verify_worklist",
    "AUDIT_FIELDS",
    "audit_hash",
    "verify_audit",
]

#: The parent of a worklist's first event.
GENESIS = "0" * 64
#: What a lock signature means (21 CFR 11.50(a)(3)); shown to the rater and stored with the lock.
MEANING = "I confirm these ratings are my own independent assessment"
#: How the signer was authenticated when signing.
AUTH_METHODS = ("access code", "single sign-on", "none")
#: The content of a rating event that its hash covers (every column but ``id``, ``parent``, ``hash``).
EVENT_FIELDS = ("set_id", "rater", "item", "revision", "score", "better", "first", "cannot_assess",
                "comment", "change_reason", "shown_at", "answered_at", "seconds")
#: The content of a lock signature that its hash covers; ``head`` plays the part of the parent.
LOCK_FIELDS = ("set_id", "rater", "locked_at", "head", "signer", "account", "meaning", "auth_method")


def canonical(record: Mapping[str, object]) -> bytes:
    """The canonical bytes of a record: UTF-8 JSON with sorted keys and no spaces.

    Values keep their type (``3`` and ``"3"`` differ); floats are written in Python's shortest
    round-trip form, so a value read back from any store as the same double gives the same bytes.

    >>> canonical({"b": 1, "a": "é", "c": None, "d": 4.5})
    b'{"a":"\\xc3\\xa9","b":1,"c":null,"d":4.5}'
    """
    return _ENCODER.encode(dict(record)).encode("utf-8")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            allow_nan=False)


def _sha256(record: Mapping[str, object]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def event_hash(event: Mapping[str, object], parent: str) -> str:
    """The hash of a rating event: sha256 over its :data:`EVENT_FIELDS`, its type and ``parent``."""
    content = dict(zip(EVENT_FIELDS, map(event.get, EVENT_FIELDS)))
    content["type"], content["parent"] = "rating", parent
    return hashlib.sha256(_ENCODER.encode(content).encode("utf-8")).hexdigest()


def lock_hash(lock: Mapping[str, object]) -> str:
    """The hash of a lock signature: sha256 over its :data:`LOCK_FIELDS` and its type."""
    content = {name: lock.get(name) for name in LOCK_FIELDS}
    content["type"] = "lock"
    return _sha256(content)


#: The content of an audit-log entry that its hash covers (every column but ``id`` and ``hash``).
AUDIT_FIELDS = ("set_id", "at", "event", "method", "rater", "account", "client", "detail", "parent")


def audit_hash(entry: Mapping[str, object]) -> str:
    """The hash of an audit-log entry: sha256 over its :data:`AUDIT_FIELDS` and its type.

    Entries of one set are chained like a worklist's ratings: ``parent`` is the hash of the set's
    previous entry (:data:`GENESIS` for the first).
    """
    content = {name: entry.get(name) for name in AUDIT_FIELDS}
    content["type"] = "audit"
    return _sha256(content)


def verify_audit(entries: Sequence[Mapping[str, object]]) -> list[str]:
    """What is wrong with a set's audit log (entries in the order saved), in words; ``[]`` if whole.

    Each entry must match its hash and name the previous entry's hash as its parent, so an entry
    changed, removed or slipped in past the guard triggers is named.

    >>> e = {"set_id": "S1", "at": "t", "event": "sign-in", "method": "access code",
    ...      "rater": "derm1", "account": None, "client": "local", "detail": None, "parent": GENESIS}
    >>> e["hash"] = audit_hash(e)
    >>> verify_audit([e]), verify_audit([dict(e, rater="derm2")])
    ([], ['audit entry 1 (t, sign-in): does not match its hash; it was changed'])
    """
    out, prev = [], GENESIS
    for n, entry in enumerate(entries, 1):
        what = f"audit entry {n} ({entry.get('at')}, {entry.get('event')})"
        if entry.get("hash") != audit_hash(entry):
            out.append(f"{what}: does not match its hash; it was changed")
        if entry.get("parent") != prev:
            out.append(f"{what}: does not follow the entry before it; an entry was removed or "
                       "inserted before it")
        prev = entry.get("hash")
    return out


def short(digest: str | None) -> str:
    """The first 12 hex digits of a hash, as shown to people (``"-"`` for none).

    >>> short("3f2a9c1e7b04d5e6f708"), short(None)
    ('3f2a9c1e7b04', '-')
    """
    return digest[:12] if digest else "-"


@dataclass(frozen=True)
class Problem:
    """One break of a chain: which worklist, which item and event, what kind, in words."""

    set_id: str
    rater: str
    item: str | None
    event: int | None  # the event's id; None for the lock
    kind: str  # altered | deleted | reordered | inserted | after_lock | lock_altered | lock_head
    message: str

    def __str__(self) -> str:
        where = [self.rater]
        if self.item is not None:
            where.append(f"item {self.item}")
        where.append(f"event {self.event}" if self.event is not None else "lock")
        return f"{', '.join(where)}: {self.message}"


@dataclass
class WorklistChain:
    """The outcome of verifying one worklist's chain."""

    set_id: str
    rater: str
    events: int = 0  # chained events
    unchained: int = 0  # events saved before the store chained them
    last: str | None = None  # hash of the last chained event
    lock: Mapping[str, object] | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def head(self) -> str | None:
        """What the worklist ends in: the lock's hash when signed, else the last event's hash."""
        if self.lock is not None and self.lock.get("hash"):
            return str(self.lock["hash"])
        return self.last

    @property
    def signed(self) -> bool:
        return self.lock is not None and bool(self.lock.get("hash"))


def verify_worklist(set_id: str, rater: str, events: Sequence[Mapping[str, object]],
                    lock: Mapping[str, object] | None = None, unchained_through: int = 0
                    ) -> WorklistChain:
    """Recompute one worklist's chain and name every break.

    Parameters
    ----------
    set_id, rater
        The worklist.
    events
        Its events in the order they were saved (by ``id``), each a mapping with ``id``, the
        :data:`EVENT_FIELDS`, ``parent`` and ``hash``.
    lock
        Its lock, with ``locked_at`` and (when signed) the :data:`LOCK_FIELDS` and ``hash``; or
        ``None`` while the worklist is open.
    unchained_through
        The highest event id saved before the store chained events (a database migrated from an
        older version): events up to it without a hash are counted as unchained, not refused.

    Returns
    -------
    WorklistChain
        With ``problems`` empty when the chain is whole.
    """
    out = WorklistChain(set_id, rater, lock=lock)

    def problem(event: Mapping | None, kind: str, message: str) -> None:
        out.problems.append(Problem(set_id, rater, None if event is None else str(event["item"]),
                                    None if event is None else int(event["id"]), kind, message))

    position = {e["hash"]: i for i, e in enumerate(events) if e.get("hash")}
    followers: dict[object, list[int]] = defaultdict(list)
    for e in events:
        if e.get("hash"):
            followers[e.get("parent")].append(int(e["id"]))
    prev, chained = GENESIS, False
    for i, e in enumerate(events):
        if not e.get("hash"):
            if not chained and int(e["id"]) <= unchained_through:
                out.unchained += 1
            else:
                problem(e, "inserted", "has no hash: it was written outside assess (inserted)")
            continue
        chained = True
        out.events += 1
        parent = e.get("parent")
        if event_hash(e, str(parent)) != e["hash"]:
            problem(e, "altered", "its content no longer matches its hash: it was changed after "
                                  "it was saved")
        elif parent != prev:
            problem(e, *_link_break(e, parent, prev, position, followers, i))
        prev = str(e["hash"])
    out.last = prev if out.events else None
    if out.unchained:
        out.warnings.append(f"{rater}: {out.unchained} event(s) were saved before ratings were "
                            "chained; they cannot be checked for changes")
    if lock is not None:
        _verify_lock(out, events, lock, prev, position, problem)
    return out


def _link_break(e, parent, prev, position, followers, i) -> tuple[str, str]:
    """Why an event with a valid hash does not follow the event before it."""
    if parent != GENESIS and parent not in position:
        return "deleted", (f"the event it follows ({short(str(parent))}) is missing: an event was "
                           "deleted")
    others = [other for other in followers.get(parent, []) if other != int(e["id"])]
    named = "the start" if parent == GENESIS else short(str(parent))
    if others:
        return "inserted", f"it and event {others[0]} both follow {named}: one of them was inserted"
    if parent in position and position[parent] > i:
        return "reordered", (f"it follows an event saved after it ({named}): the events were "
                             "reordered")
    return "reordered", (f"it follows {named}, not the event before it ({short(prev)}): the "
                         "events were reordered")


def _verify_lock(out: WorklistChain, events, lock, prev, position, problem) -> None:
    """Check the lock's signature and that nothing was added after it."""
    chained = [e for e in events if e.get("hash")]
    if not lock.get("hash"):
        out.warnings.append(f"{out.rater}: the worklist was locked before locks were signed; the "
                            "lock carries no signature")
        # Such a lock was made before the store chained events: a chained event came after it.
        for e in chained:
            problem(e, "after_lock", "was added after the worklist was locked")
        return
    if lock_hash(lock) != lock["hash"]:
        problem(None, "lock_altered", "the lock signature no longer matches its hash: it was "
                                      "changed after it was made")
    head = lock.get("head")
    if head == prev:
        return
    if head in position or head == GENESIS:
        after = events[position[head] + 1:] if head in position else chained
        for e in after:
            if e.get("hash"):
                problem(e, "after_lock", "was added after the worklist was locked")
    else:
        problem(None, "lock_head", f"the lock signs chain head {short(str(head))}, which no event "
                                   "has: a signed event was changed or deleted")
