"""The ratings store's contract, run against both backends: a SQLite file and a PostgreSQL server.

The PostgreSQL half starts a throwaway cluster on 127.0.0.1 (tests/pg_cluster.py) or uses
``ASSESS_TEST_PG_URL``; it skips, saying how to run it, when neither is possible.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing, contextmanager

import pytest

from assess import chain, store

SET = "S1"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    """A database that does not exist yet (SQLite) or is empty (PostgreSQL)."""
    if request.param == "sqlite":
        return tmp_path / "results" / SET / "ratings.sqlite"
    return request.getfixturevalue("pg_url")


@contextmanager
def owner(db):
    """A raw connection as the database's owner, past the store (``?`` parameters on both)."""
    if store.is_url(db):
        import psycopg

        from assess.store import postgres

        conn = postgres.Connection(None, psycopg.connect(db, autocommit=True), db)
    else:
        conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def past_the_triggers(conn, db) -> None:
    """What someone with the owner's rights does first: put the guard triggers out of the way."""
    if store.is_url(db):
        conn.execute("SET session_replication_role = replica")  # triggers do not fire, unseen
    else:
        for name in store.TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def rate(conn, item="KX7-4MPA", rater="derm1", **answer):
    answer.setdefault("score", 3)
    if "better" in answer or "cannot_assess" in answer:
        answer.pop("score")
    return store.record(conn, SET, rater, item, shown_at="2026-01-01T10:00:00.000Z",
                        answered_at="2026-01-01T10:00:04.000Z", seconds=4.25, **answer)


def rated(db, n=3, lock=False):
    with closing(store.connect(db)) as conn:
        for i in range(n):
            rate(conn, item=f"AAA-{i:04d}", score=i)
        if lock:
            store.sign(conn, SET, "derm1", [f"AAA-{i:04d}" for i in range(n)],
                       auth_method="access code")
    return db


def kinds(db):
    return [p.kind for p in store.verify(db, SET).problems]


def test_an_empty_database_is_given_the_schema_of_the_current_version_with_every_guard(db):
    store.connect(db).close()
    with owner(db) as conn:
        version, columns, tables = store._backend(db).describe(conn)
        assert store._backend(db).check_triggers(conn, version) == []
    assert version == store.SCHEMA_VERSION == 3
    assert {"events", "locks", "store_info", "audit_log", "sessions", "session_keys",
            "rater_positions"} <= tables
    assert set(store.COLUMNS) | {"id", "parent", "hash"} == columns
    report = store.verify(db).check()
    assert report.worklists == {} and report.schema_version == 3


def test_a_rating_is_read_back_with_every_column_and_its_type(db):
    with closing(store.connect(db)) as conn:
        event = rate(conn, score=4, comment=" deep fold ")
        rate(conn, item="PAIR-0001", better="better_left", first="right")
        rate(conn, item="BAD-0001", cannot_assess="framing")
    assert event.revision == 1
    df = store.current_ratings(db)
    assert list(df.columns) == list(store.COLUMNS)
    assert df.iloc[0].to_dict() == {
        "set_id": SET, "rater": "derm1", "item": "KX7-4MPA", "revision": 1, "score": 4,
        "better": None, "first": None, "cannot_assess": None, "comment": "deep fold",
        "change_reason": None, "shown_at": "2026-01-01T10:00:00.000Z",
        "answered_at": "2026-01-01T10:00:04.000Z", "seconds": 4.25}
    assert str(df["score"].dtype) == "Int64"
    by_item = df.set_index("item")
    assert (by_item.loc["PAIR-0001", "better"], by_item.loc["PAIR-0001", "first"]) == (
        "better_left", "right")
    assert by_item.loc["BAD-0001", "cannot_assess"] == "framing"
    assert store.set_ids(db) == [SET]


def test_a_changed_rating_is_a_new_revision_and_the_same_answer_adds_none(db):
    with closing(store.connect(db)) as conn:
        rate(conn, score=2)
        assert rate(conn, score=2).revision == 1
        changed = rate(conn, score=4, change_reason="looked again at full size")
        assert [e.score for e in store.history(conn, SET, "derm1", "KX7-4MPA")] == [2, 4]
        assert store.current(conn, SET, "derm1")["KX7-4MPA"].revision == 2
        assert store.first_answer_seconds(conn, SET, "derm1") == [4.25]
    assert changed.revision == 2 and changed.change_reason == "looked again at full size"
    events = store.all_events(db)
    assert list(events["score"]) == [2, 4] and list(events["revision"]) == [1, 2]


def test_current_ratings_keep_the_latest_revision_of_each_item_of_the_set_asked(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="AAA-0001", score=1)
        rate(conn, item="AAA-0002", score=2)
        rate(conn, item="AAA-0001", score=5, change_reason="misclick")
        store.record(conn, "S2", "derm1", "AAA-0001", score=0)
    df = store.current_ratings(db, SET, columns=["score"], sort=False)
    assert df[["item", "score"]].values.tolist() == [["AAA-0002", 2], ["AAA-0001", 5]]
    assert sorted(store.set_ids(db)) == [SET, "S2"]


def test_an_invalid_answer_is_refused_and_nothing_is_saved(db):
    with closing(store.connect(db)) as conn:
        with pytest.raises(store.StoreError, match="better: 'sideways' is not one of"):
            rate(conn, better="sideways", first="left")
    assert len(store.all_events(db)) == 0


def test_a_lock_is_refused_while_an_item_is_unrated_then_refuses_every_new_rating(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="AAA-0001")
        with pytest.raises(store.StoreError, match="1 of 2 items are not rated yet"):
            store.lock(conn, SET, "derm1", ["AAA-0001", "AAA-0002"])
        assert store.is_locked(conn, SET, "derm1") is None
        rate(conn, item="AAA-0002")
        locked_at = store.lock(conn, SET, "derm1", ["AAA-0001", "AAA-0002"])
        assert store.lock(conn, SET, "derm1", ["AAA-0001", "AAA-0002"]) == locked_at
        with pytest.raises(store.LockedError, match="derm1: the worklist is submitted and locked"):
            rate(conn, item="AAA-0001", score=5)
        rate(conn, item="AAA-0001", rater="derm2")  # another rater's worklist stays open
    assert store.locks(db, SET) == {"derm1": locked_at}
    assert len(store.all_events(db)) == 3


def test_the_after_lock_guard_refuses_a_chained_row_written_past_the_store(db):
    rated(db, n=1, lock=True)
    row = {**store.all_events(db).iloc[0].to_dict(), "item": "AAA-0009", "revision": 1}
    row["score"] = int(row["score"])
    with owner(db) as conn, pytest.raises(Exception, match="worklist locked"):
        parent = conn.execute("SELECT hash FROM events").fetchone()[0]
        conn.execute("INSERT INTO events (" + ", ".join(store.COLUMNS) + ", parent, hash) VALUES ("
                     + ", ".join("?" * (len(store.COLUMNS) + 2)) + ")",
                     tuple(row[c] for c in store.COLUMNS) + (parent, chain.event_hash(row, parent)))


def test_the_lock_signs_the_chain_head_with_who_when_meaning_and_how(db):
    rated(db, n=2)
    with closing(store.connect(db)) as conn:
        signed = store.sign(conn, SET, "derm1", ["AAA-0000", "AAA-0001"],
                            auth_method="single sign-on", account="derm1@site.example")
        assert store.signature(conn, SET, "derm1") == signed
    report = store.verify(db, SET).check()
    wl = report.worklists[(SET, "derm1")]
    assert signed.head == wl.last and wl.head == signed.hash and wl.signed
    assert (signed.signer, signed.account, signed.meaning, signed.auth_method) == (
        "derm1", "derm1@site.example", chain.MEANING, "single sign-on")
    assert chain.lock_hash(signed.__dict__) == signed.hash


def test_events_and_locks_cannot_be_updated_or_deleted_through_sql(db):
    rated(db, n=2, lock=True)
    with owner(db) as conn:
        conn.execute("INSERT INTO store_info (key, value) VALUES ('note', 'kept')")
        for sql, words in (("UPDATE events SET score = 6 - score", "append-only"),
                           ("DELETE FROM events WHERE item = 'AAA-0001'", "cannot be deleted"),
                           ("UPDATE locks SET locked_at = 'x'", "a lock is final"),
                           ("DELETE FROM locks", "a lock is final"),
                           ("DELETE FROM store_info", "store information is final")):
            with pytest.raises(Exception, match=words):
                conn.execute(sql)
    assert list(store.all_events(db)["score"]) == [0, 1]
    store.verify(db, SET).check()


def _swap(conn, a: int, b: int) -> None:
    """Exchange the content of two events: the same as moving them (ids cannot be rewritten)."""
    names = store.COLUMNS + ("parent", "hash")
    rows = {i: conn.execute("SELECT " + ", ".join(names) + " FROM events WHERE id = ?",
                            (i,)).fetchone() for i in (a, b)}
    conn.execute("UPDATE events SET item = 'moving' WHERE id = ?", (a,))  # one (item, revision)
    for target, source in ((b, a), (a, b)):
        conn.execute("UPDATE events SET " + ", ".join(f"{n} = ?" for n in names) + " WHERE id = ?",
                     tuple(rows[source]) + (target,))


def _forge_after_lock(conn, db) -> None:
    last = conn.execute("SELECT " + ", ".join(store.COLUMNS) + ", hash FROM events ORDER BY id "
                        "DESC LIMIT 1").fetchone()
    row = dict(zip(store.COLUMNS, last[:-1]), item="AAA-0099")
    conn.execute("INSERT INTO events (" + ", ".join(store.COLUMNS) + ", parent, hash) VALUES ("
                 + ", ".join("?" * (len(store.COLUMNS) + 2)) + ")",
                 tuple(row[c] for c in store.COLUMNS) + (last[-1], chain.event_hash(row, last[-1])))


TAMPERING = {
    "altered": lambda conn, db, ids: conn.execute(
        "UPDATE events SET score = 6 - score WHERE id = ?", (ids[1],)),
    "deleted": lambda conn, db, ids: conn.execute("DELETE FROM events WHERE id = ?", (ids[1],)),
    "reordered": lambda conn, db, ids: _swap(conn, ids[0], ids[1]),
    "inserted": lambda conn, db, ids: conn.execute(
        "INSERT INTO events (" + ", ".join(store.COLUMNS) + ") SELECT " + ", ".join(
            "'AAA-0077'" if c == "item" else c for c in store.COLUMNS) + " FROM events WHERE id = ?",
        (ids[0],)),
    "after_lock": lambda conn, db, ids: _forge_after_lock(conn, db),
    "lock_altered": lambda conn, db, ids: conn.execute(
        "UPDATE locks SET locked_at = '2026-01-01T00:00:00.000Z'"),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_verify_names_each_kind_of_change_made_past_the_triggers(db, kind):
    rated(db, n=3, lock=True)
    assert kinds(db) == []
    with owner(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id").fetchall()]
        past_the_triggers(conn, db)
        TAMPERING[kind](conn, db, ids)
    assert kind in kinds(db)
    with pytest.raises(store.IntegrityError, match="fail their integrity check") as caught:
        store.verify(db, SET).check()
    assert "derm1" in str(caught.value)


def test_verify_names_a_dropped_guard_trigger(db):
    rated(db, n=1)
    with owner(db) as conn:
        conn.execute("DROP TRIGGER events_append_only_delete"
                     + (" ON events" if store.is_url(db) else ""))
    report = store.verify(db, SET)
    assert report.triggers == ["guard trigger events_append_only_delete is missing: it was "
                               "dropped, so the events could be changed or deleted unseen"]
    with pytest.raises(store.IntegrityError, match="events_append_only_delete is missing"):
        report.check()


def test_concurrent_writers_of_one_worklist_keep_one_unbroken_chain(db):
    store.connect(db).close()
    errors = []

    def session(start):
        try:
            for i in range(start, start + 15):
                with closing(store.connect(db)) as conn:
                    rate(conn, item=f"AAA-{i:04d}")
                    if i % 5 == 0:
                        rate(conn, item=f"AAA-{i:04d}", score=4, change_reason="again")
        except Exception as exc:  # reported below, with the thread's own words
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(n * 100,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    wl = store.verify(db, SET).check().worklists[(SET, "derm1")]
    assert wl.events == 4 * 15 + 4 * 3 and not wl.problems
    assert len(store.current_ratings(db, SET)) == 60


def test_a_database_of_a_newer_schema_version_is_refused_naming_it(db):
    store.connect(db).close()
    if store.is_url(db):
        from assess.store import postgres

        postgres._READY.clear()
        with owner(db) as conn:
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (9, 'later')")
    else:
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA user_version = 9")
    with pytest.raises(store.StoreError, match=r"written by a newer version of assess \(schema "
                                               r"version 9\)"):
        store.connect(db)


def test_the_readers_open_the_database_read_only(db):
    rated(db, n=1)
    reader = store._read_only(db)
    try:
        with pytest.raises(Exception, match="read-only|readonly"):
            reader.execute("INSERT INTO store_info (key, value) VALUES ('x', 'y')")
    finally:
        reader.close()
    assert len(store.all_events(db)) == 1


#: The tables of schema version 1 (before the chain), with two ratings and one lock.
TABLES_V1 = """
CREATE TABLE events (id INTEGER PRIMARY KEY, set_id TEXT NOT NULL, rater TEXT NOT NULL,
  item TEXT NOT NULL, revision INTEGER NOT NULL, score INTEGER, better TEXT, first TEXT,
  cannot_assess TEXT, comment TEXT, change_reason TEXT, shown_at TEXT NOT NULL,
  answered_at TEXT NOT NULL, seconds REAL, UNIQUE (set_id, rater, item, revision));
CREATE TABLE locks (set_id TEXT, rater TEXT, locked_at TEXT, PRIMARY KEY (set_id, rater));
INSERT INTO events (set_id, rater, item, revision, score, shown_at, answered_at, seconds) VALUES
  ('S1', 'derm1', 'AAA-AAAA', 1, 2, 't0', 't1', 3.0), ('S1', 'derm2', 'AAA-AAAA', 1, 4, 't0', 't1', 2.0);
INSERT INTO locks VALUES ('S1', 'derm1', '2026-01-01T12:00:00.000Z');
"""


def test_a_version_1_database_is_migrated_forward_by_the_same_migrations(db):
    if store.is_url(db):
        import psycopg

        from assess.store import postgres

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(postgres._pg(TABLES_V1))
    else:
        db.parent.mkdir(parents=True)
        with closing(sqlite3.connect(db)) as conn:
            conn.executescript(TABLES_V1 + "PRAGMA user_version = 1;")
    with closing(store.connect(db)) as conn:
        rate(conn, item="BBB-BBBB", rater="derm2", score=1)
        with pytest.raises(store.LockedError):
            rate(conn, item="BBB-BBBB", rater="derm1")
    with owner(db) as conn:
        version, columns, _ = store._backend(db).describe(conn)
        assert store._backend(db).check_triggers(conn, version) == []
    assert version == store.SCHEMA_VERSION and {"parent", "hash"} <= columns
    report = store.verify(db, SET).check()
    derm2 = report.worklists[(SET, "derm2")]
    assert (derm2.unchained, derm2.events) == (1, 1)
    assert any("derm1: the worklist was locked before locks were signed" in w
               for w in report.warnings)


def test_sign_in_attempts_are_logged_append_only_and_counted_per_rater(db):
    store.connect(db).close()
    with closing(store.connect(db)) as conn:
        assert store.failed_access_times(conn, SET, "2026", rater="derm1") == []
        for at, rater, outcome in (("2026-01-01T10:00:00.000Z", "derm1", "wrong"),
                                   ("2026-01-01T10:00:01.000Z", "derm1", "wrong"),
                                   ("2026-01-01T10:00:02.000Z", "nobody", "throttled"),
                                   ("2026-01-01T10:00:03.000Z", "derm2", "ok")):
            store.log_access(conn, SET, rater, "10.0.0.7", outcome, at=at)
        assert store.failed_access_times(conn, SET, "2026", rater="derm1") == [
            "2026-01-01T10:00:00.000Z", "2026-01-01T10:00:01.000Z"]
        assert store.failed_access_times(conn, SET, "2026", client="10.0.0.7") == []  # ok since
    assert store.sign_in_failures(db, SET) == {"derm1": 2, "nobody": 1}
    with owner(db) as conn:
        for sql in ("UPDATE access_log SET outcome = 'ok'", "DELETE FROM access_log"):
            with pytest.raises(Exception, match="the access log is append-only"):
                conn.execute(sql)
    assert store.sign_in_failures(db, SET) == {"derm1": 2, "nobody": 1}


def test_the_audit_log_is_append_only_and_chained_per_set(db):
    with closing(store.connect(db)) as conn:
        first = store.log_audit(conn, SET, "sign-in", "access code", "10.0.0.7", rater="derm1",
                                at="2026-01-01T10:00:00.000Z")
        store.log_audit(conn, "S2", "sign-in", "access code", "10.0.0.9", rater="derm1")
        second = store.log_audit(conn, SET, "sign-in refused", "single sign-on", "10.0.0.8",
                                 account="x@elsewhere.example", detail="no rater of the set")
    entries = store.audit_log(db, SET)
    assert [(e.event, e.rater, e.account) for e in entries] == [
        ("sign-in", "derm1", None), ("sign-in refused", None, "x@elsewhere.example")]
    assert (first.parent, second.parent) == (chain.GENESIS, first.hash)
    assert chain.verify_audit([vars(e) for e in entries]) == []
    with owner(db) as conn:
        for sql in ("UPDATE audit_log SET rater = 'derm2'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match="the audit log is append-only"):
                conn.execute(sql)
        if store.is_url(db):
            with pytest.raises(Exception, match="the audit log is append-only"):
                conn.execute("TRUNCATE audit_log")
    assert len(store.audit_log(db)) == 3


def test_an_audit_entry_changed_past_the_triggers_is_named_and_a_dropped_trigger_too(db):
    with closing(store.connect(db)) as conn:
        for rater in ("derm1", "derm2", "derm3"):
            store.log_audit(conn, SET, "sign-in", "access code", "local", rater=rater)
    with owner(db) as conn:
        past_the_triggers(conn, db)
        conn.execute("UPDATE audit_log SET client = '10.9.9.9' WHERE rater = 'derm2'")
        conn.execute("DELETE FROM audit_log WHERE rater = 'derm1'")
    problems = chain.verify_audit([vars(e) for e in store.audit_log(db, SET)])
    assert problems == [
        f"audit entry 1 ({e.at}, sign-in): {why}" for e in store.audit_log(db, SET)[:1]
        for why in ("does not match its hash; it was changed", "does not follow the entry before "
                    "it; an entry was removed or inserted before it")]
    if not store.is_url(db):  # the dropped triggers are named by verify
        assert any("audit_log_append_only_update is missing" in t
                   for t in store.verify(db, SET).triggers)


def test_a_sign_on_recorded_once_is_not_recorded_again_on_reload(db):
    with closing(store.connect(db)) as conn:
        args = (SET, "sign-in", "single sign-on", "local")
        kw = {"rater": "derm1", "account": "a@clinic.example", "detail": "signed in at 1700000000"}
        assert store.log_audit(conn, *args, **kw, once=True) is not None
        assert store.log_audit(conn, *args, **kw, once=True) is None
        assert store.log_audit(conn, *args, **dict(kw, detail="signed in at 1700000900"),
                               once=True) is not None
    assert len(store.audit_log(db, SET)) == 2


def test_a_version_2_database_is_given_the_audit_log_and_keeps_its_ratings(db):
    rated(db, n=2)
    with owner(db) as conn:  # take it back to version 2: no audit log, version 2 recorded
        past_the_triggers(conn, db)
        conn.execute("DROP TABLE audit_log")
        if store.is_url(db):
            conn.execute("SET session_replication_role = DEFAULT")
            conn.execute("DROP FUNCTION IF EXISTS audit_log_append_only_update, "
                         "audit_log_append_only_delete, audit_log_append_only_truncate")
            conn.execute("DELETE FROM schema_version WHERE version = 3")
        else:
            conn.execute("PRAGMA user_version = 2")
    if not store.is_url(db):
        with owner(db) as conn:  # put the version 2 guards back as they were
            for sql in store._sqlite._statements(store._sqlite.SCHEMA):
                if "TRIGGER" in sql and "audit_log" not in sql:
                    conn.execute(sql)
    assert store.audit_log(db, SET) == [] and store.verify(db, SET).ok  # read as it is
    if store.is_url(db):
        from assess.store import postgres

        postgres._READY.discard(db)  # as a server started anew finds it
    with closing(store.connect(db)) as conn:
        store.log_audit(conn, SET, "sign-in", "access code", "local", rater="derm1")
    with owner(db) as conn:
        version, _, tables = store._backend(db).describe(conn)
        assert store._backend(db).check_triggers(conn, version) == []
    assert version == 3 and "audit_log" in tables
    assert len(store.audit_log(db, SET)) == 1 and len(store.current_ratings(db, SET)) == 2


# ----------------------------------------------------------------------------- sign-in sessions


def _session(conn, sid="h1", rater="derm1", grant="g1", expires="2026-01-02T10:00:00.000Z"):
    return store.open_session(conn, sid, SET, rater, grant, "2026-01-01T10:00:00.000Z", expires)


def test_a_session_is_made_once_per_grant_and_read_back(db):
    with closing(store.connect(db)) as conn:
        assert _session(conn) is True
        assert _session(conn, sid="h2") is False  # the same grant again: nothing written
        assert store.session(conn, "h1") == store.Session(
            "h1", SET, "derm1", "2026-01-01T10:00:00.000Z", "2026-01-02T10:00:00.000Z", None)
        assert store.session(conn, "h2") is None


def test_sign_out_ends_one_session_and_revoking_ends_every_live_one_of_the_set(db):
    with closing(store.connect(db)) as conn:
        _session(conn, "h1", "derm1", "g1")
        _session(conn, "h2", "derm2", "g2")
        _session(conn, "h3", "derm3", "g3")
        store.open_session(conn, "other", "S2", "derm1", "g4", "2026-01-01T10:00:00.000Z",
                           "2026-01-02T10:00:00.000Z")
        assert store.end_sessions(conn, SET, "h1", at="2026-01-01T11:00:00.000Z") == 1
        assert store.session(conn, "h1").ended_at == "2026-01-01T11:00:00.000Z"
        assert store.session(conn, "h2").ended_at is None
        assert store.end_sessions(conn, SET, at="2026-01-01T12:00:00.000Z") == 2
        assert store.session(conn, "h1").ended_at == "2026-01-01T11:00:00.000Z"  # kept
        assert {store.session(conn, h).ended_at for h in ("h2", "h3")} == {
            "2026-01-01T12:00:00.000Z"}
        assert store.session(conn, "other").ended_at is None  # another set's
        assert store.end_sessions(conn, SET) == 0


def test_the_session_key_is_made_once_and_the_same_for_every_connection(db):
    with closing(store.connect(db)) as one, closing(store.connect(db)) as two:
        first = store.session_secret(one)
        assert store.session_secret(two) == first and len(bytes.fromhex(first)) == 32
    with closing(store.connect(db)) as conn:
        assert store.session_secret(conn) == first


def test_a_raters_position_is_kept_per_rater_and_replaced(db):
    with closing(store.connect(db)) as conn:
        assert store.position(conn, SET, "derm1") is None
        store.save_position(conn, SET, "derm1", "AAA-AAAA")
        store.save_position(conn, SET, "derm2", "CCC-CCCC")
        store.save_position(conn, SET, "derm1", "DDD-DDDD")
        assert (store.position(conn, SET, "derm1"), store.position(conn, SET, "derm2")) == (
            "DDD-DDDD", "CCC-CCCC")


def test_a_position_note_leaves_the_connection_flushing_every_rating_to_disk(db):
    """The note skips the disk flush for itself only: a rating saved after it is durable again."""
    with closing(store.connect(db)) as conn:
        store.save_position(conn, SET, "derm1", "AAA-AAAA")
        if store.is_url(db):
            setting = conn.execute("SHOW synchronous_commit").fetchone()[0]
            assert setting == "on"
        else:
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        rate(conn)
        assert len(store.current(conn, SET, "derm1")) == 1


def test_a_version_2_database_is_migrated_to_version_3_keeping_its_ratings(db):
    rated(db, n=2, lock=True)
    with owner(db) as conn:
        for table in ("sessions", "session_keys", "rater_positions"):
            conn.execute(f"DROP TABLE {table}")
        if store.is_url(db):
            from assess.store import postgres

            conn.execute("DELETE FROM schema_version WHERE version = 3")
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (2, 'before') "
                         "ON CONFLICT DO NOTHING")
            postgres._READY.clear()
        else:
            conn.execute("PRAGMA user_version = 2")
    with closing(store.connect(db)) as conn:
        assert _session(conn) is True
        store.save_position(conn, SET, "derm1", "AAA-0001")
    with owner(db) as conn:
        version, _, tables = store._backend(db).describe(conn)
        assert store._backend(db).check_triggers(conn, version) == []
    assert version == 3 and {"sessions", "session_keys", "rater_positions"} <= tables
    report = store.verify(db, SET).check()
    assert report.worklists[(SET, "derm1")].events == 2 and report.worklists[(SET, "derm1")].signed


def test_half_steps_and_vas_values_are_kept_exactly_and_chained(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="HALF-0001", score=2.5)
        rate(conn, item="VAS-0001", score=37.3)
        whole = rate(conn, item="WHOLE-0001", score=4.0)
        with pytest.raises(store.StoreError, match="score: must be a number"):
            rate(conn, item="BAD-0002", score=float("nan"))
    assert whole.score == 4 and isinstance(whole.score, int)
    df = store.current_ratings(db).set_index("item")
    assert str(df["score"].dtype) == "Float64"
    assert (df.loc["HALF-0001", "score"], df.loc["VAS-0001", "score"]) == (2.5, 37.3)
    assert store.verify(db, SET).check().worklists[(SET, "derm1")].events == 3


def test_a_whole_score_is_hashed_as_the_whole_number_it_was_before_scores_took_halves(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="AAA-0001", score=3.0)
        rate(conn, item="AAA-0002", score=3)
    with owner(db) as conn:
        rows = conn.execute("SELECT " + ", ".join(store.COLUMNS) + ", parent, hash FROM events "
                            "ORDER BY id").fetchall()
    for row in rows:
        content = dict(zip(store.COLUMNS, row))
        content["score"] = 3  # the form every event of schema version 2 was hashed in
        assert chain.event_hash(content, row[-2]) == row[-1]
    assert str(store.current_ratings(db)["score"].dtype) == "Int64"


def test_a_version_2_database_with_an_integer_score_column_migrates_and_still_verifies(db):
    rated(db, n=3, lock=False)
    with owner(db) as conn:
        if store.is_url(db):
            conn.execute("ALTER TABLE events ALTER COLUMN score TYPE INTEGER")
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (2, 'before')")
        else:
            conn.execute("PRAGMA user_version = 2")
    if store.is_url(db):
        from assess.store import postgres

        postgres._READY.discard(db)
    before = store.verify(db, SET).check().worklists[(SET, "derm1")].head
    with closing(store.connect(db)) as conn:
        rate(conn, item="HALF-0001", score=1.5)
    with owner(db) as conn:
        version, _, _ = store._backend(db).describe(conn)
        assert store._backend(db).check_triggers(conn, version) == []
    assert version == store.SCHEMA_VERSION
    report = store.verify(db, SET).check()
    assert report.worklists[(SET, "derm1")].events == 4
    assert list(store.current_ratings(db)["score"]) == [0, 1, 2, 1.5]
    events = store.verify(db, SET).worklists[(SET, "derm1")]
    assert events.head != before
