"""The hash chain of rating events and the lock signature, as pure functions (no database)."""

from __future__ import annotations

import hashlib
import json

import pytest

from assess import chain

SET, RATER = "S1", "derm1"


def event(n: int, item: str | None = None, **changes) -> dict:
    base = {"id": n, "set_id": SET, "rater": RATER, "item": item or f"AAA-{n:04d}", "revision": 1,
            "score": 1 + n % 4, "better": None, "first": None, "cannot_assess": None,
            "comment": None, "change_reason": None, "shown_at": f"2026-01-01T10:{n:02d}:00.000Z",
            "answered_at": f"2026-01-01T10:{n:02d}:04.000Z", "seconds": 4.25}
    base.update(changes)
    return base


def chained(n: int) -> list[dict]:
    """``n`` events, each linked to the one before it as the store links them."""
    out, parent = [], chain.GENESIS
    for i in range(1, n + 1):
        e = event(i)
        e["parent"], e["hash"] = parent, chain.event_hash(e, parent)
        parent = e["hash"]
        out.append(e)
    return out


def signed(events: list[dict], **changes) -> dict:
    lock = {"set_id": SET, "rater": RATER, "locked_at": "2026-01-02T09:00:00.000Z",
            "head": events[-1]["hash"] if events else chain.GENESIS, "signer": RATER,
            "account": None, "meaning": chain.MEANING, "auth_method": "access code"}
    lock["hash"] = chain.lock_hash(lock)
    lock.update(changes)
    return lock


def kinds(result: chain.WorklistChain) -> list[tuple[str, int | None]]:
    return [(p.kind, p.event) for p in result.problems]


def test_the_canonical_form_is_sorted_compact_utf8_json_and_keeps_types():
    assert chain.canonical({"b": 1, "a": "3"}) == b'{"a":"3","b":1}'
    assert chain.canonical({"a": 3}) != chain.canonical({"a": "3"})
    assert chain.canonical({"x": "é"}) == '{"x":"é"}'.encode("utf-8")


def test_an_event_hash_is_sha256_of_its_content_type_and_parent():
    e = event(1)
    content = {k: e[k] for k in chain.EVENT_FIELDS} | {"type": "rating", "parent": chain.GENESIS}
    expected = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"))
                              .encode()).hexdigest()
    assert chain.event_hash(e, chain.GENESIS) == expected


def test_the_hash_covers_every_content_field_and_the_parent():
    e = event(1, comment="fold", change_reason="second look", cannot_assess=None)
    digest = chain.event_hash(e, chain.GENESIS)
    for name in chain.EVENT_FIELDS:
        other = dict(e, **{name: "changed" if e[name] != "changed" else "again"})
        assert chain.event_hash(other, chain.GENESIS) != digest, name
    assert chain.event_hash(e, "1" * 64) != digest
    assert chain.event_hash(dict(e, id=99), chain.GENESIS) == digest  # the row id is not content


def test_a_whole_chain_verifies_and_its_head_is_the_last_hash():
    events = chained(5)
    result = chain.verify_worklist(SET, RATER, events)
    assert result.problems == [] and result.events == 5 and result.head == events[-1]["hash"]


def test_an_edited_event_is_named_as_altered_and_only_it():
    events = chained(4)
    events[1]["score"] = 5  # was 3
    assert kinds(chain.verify_worklist(SET, RATER, events)) == [("altered", 2)]


def test_a_deleted_event_is_named_by_the_event_after_it():
    events = chained(4)
    del events[1]
    result = chain.verify_worklist(SET, RATER, events)
    assert kinds(result) == [("deleted", 3)]
    assert result.problems[0].item == "AAA-0003"


def test_two_swapped_events_are_named_as_reordered():
    events = chained(4)
    events[1], events[2] = events[2], events[1]
    assert ("reordered", 3) in kinds(chain.verify_worklist(SET, RATER, events))


def test_an_inserted_event_without_a_hash_is_named():
    events = chained(3) + [dict(event(4), parent=None, hash=None)]
    assert kinds(chain.verify_worklist(SET, RATER, events)) == [("inserted", 4)]


def test_a_forged_event_with_a_correct_hash_inserted_in_the_middle_is_found_by_its_fork():
    events = chained(3)
    forged = event(9, score=1)
    forged["parent"] = events[0]["hash"]
    forged["hash"] = chain.event_hash(forged, forged["parent"])
    events.insert(1, forged)
    problems = chain.verify_worklist(SET, RATER, events).problems
    assert [(p.kind, p.event) for p in problems] == [("inserted", 2)]
    assert "event 9" in problems[0].message


def test_a_signed_lock_over_the_last_event_verifies_and_becomes_the_head():
    events = chained(3)
    lock = signed(events)
    result = chain.verify_worklist(SET, RATER, events, lock)
    assert result.problems == [] and result.signed and result.head == lock["hash"]


def test_an_event_after_the_lock_is_named():
    events = chained(4)
    lock = signed(events[:3])
    assert kinds(chain.verify_worklist(SET, RATER, events, lock)) == [("after_lock", 4)]


def test_a_changed_lock_and_a_lock_whose_head_is_gone_are_named():
    events = chained(3)
    assert kinds(chain.verify_worklist(SET, RATER, events, signed(events, auth_method="none"))) == [
        ("lock_altered", None)]
    assert kinds(chain.verify_worklist(SET, RATER, events[:2], signed(events))) == [
        ("lock_head", None)]


def test_unchained_events_before_the_migration_are_counted_and_warned_not_refused():
    legacy = [dict(event(i), parent=None, hash=None) for i in (1, 2)]
    later = chained(1)[0] | {"id": 3}
    result = chain.verify_worklist(SET, RATER, legacy + [later], None, unchained_through=2)
    assert result.problems == [] and result.unchained == 2 and result.events == 1
    assert "2 event(s) were saved before ratings were chained" in result.warnings[0]


def test_an_unsigned_lock_from_before_the_migration_refuses_a_chained_event_after_it():
    legacy = [dict(event(1), parent=None, hash=None)]
    later = chained(1)[0] | {"id": 2}
    old_lock = {"set_id": SET, "rater": RATER, "locked_at": "2026-01-01T12:00:00Z"}
    result = chain.verify_worklist(SET, RATER, legacy + [later], old_lock, unchained_through=1)
    assert kinds(result) == [("after_lock", 2)]
    assert any("locked before locks were signed" in w for w in result.warnings)


@pytest.mark.parametrize("digest, shown", [("ab" * 32, "abababababab"), (None, "-")])
def test_short_hashes_are_twelve_hex_digits(digest, shown):
    assert chain.short(digest) == shown
