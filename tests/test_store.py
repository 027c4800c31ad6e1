"""The ratings database: append-only events, revisions, locks, read-only readers, durability."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from contextlib import closing

import pytest

from assess import chain, store

SET = "S1"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "results" / SET / "ratings.sqlite"


def rate(conn, item="KX7-4MPA", rater="derm1", **answer):
    answer.setdefault("score", 3)
    if "better" in answer or "cannot_assess" in answer:
        answer.pop("score")
    return store.record(conn, SET, rater, item, shown_at="2026-01-01T10:00:00.000Z",
                        answered_at="2026-01-01T10:00:04.000Z", seconds=4.0, **answer)


def test_connect_creates_the_folder_and_the_schema_in_wal_mode_with_full_sync(db):
    with closing(store.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert tables == {"events", "locks", "store_info", "audit_log", "sessions", "session_keys",
                      "rater_positions"}
    assert version == store.SCHEMA_VERSION == 3


def test_a_first_rating_is_revision_one_and_is_read_back_with_every_column(db):
    with closing(store.connect(db)) as conn:
        event = rate(conn, score=4, comment=" deep fold ")
    assert event.revision == 1
    df = store.current_ratings(db)
    assert list(df.columns) == list(store.COLUMNS)
    row = df.iloc[0].to_dict()
    assert row == {"set_id": SET, "rater": "derm1", "item": "KX7-4MPA", "revision": 1, "score": 4,
                   "better": None, "first": None, "cannot_assess": None, "comment": "deep fold",
                   "change_reason": None, "shown_at": "2026-01-01T10:00:00.000Z",
                   "answered_at": "2026-01-01T10:00:04.000Z", "seconds": 4.0}
    assert str(df["score"].dtype) == "Int64"


def test_changing_a_rating_appends_a_revision_and_keeps_the_old_value(db):
    with closing(store.connect(db)) as conn:
        rate(conn, score=2)
        changed = rate(conn, score=4, change_reason="looked again at full size")
    assert changed.revision == 2
    events = store.all_events(db)
    assert list(events["score"]) == [2, 4]
    assert list(events["change_reason"]) == [None, "looked again at full size"]
    current = store.current_ratings(db)
    assert list(current["score"]) == [4] and list(current["revision"]) == [2]


def test_giving_the_same_answer_again_adds_no_revision(db):
    with closing(store.connect(db)) as conn:
        first = rate(conn, score=3)
        again = rate(conn, score=3)
    assert again == first
    assert len(store.all_events(db)) == 1


def test_a_change_of_comment_alone_is_a_new_revision(db):
    with closing(store.connect(db)) as conn:
        rate(conn, score=3)
        rate(conn, score=3, comment="scar near the fold")
    assert list(store.all_events(db)["revision"]) == [1, 2]


def test_the_change_reason_of_a_first_rating_is_not_kept(db):
    with closing(store.connect(db)) as conn:
        event = rate(conn, score=3, change_reason="nothing to change yet")
    assert event.change_reason is None


def test_events_cannot_be_updated_or_deleted_through_sql(db):
    with closing(store.connect(db)) as conn:
        rate(conn)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET score = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events")
    assert list(store.all_events(db)["score"]) == [3]


@pytest.mark.parametrize("answer, message", [
    ({"score": 3, "cannot_assess": "lighting"}, "not both"),
    ({"cannot_assess": "too_dark"}, "out_of_focus"),
    ({"better": "better_left"}, "both better and first"),
    ({"better": "a_bit_left", "first": "left"}, "much_better_left"),
    ({"better": "better_left", "first": "earlier"}, "cannot_tell"),
    ({"score": True}, "must be a number"),
])
def test_an_invalid_answer_is_refused_and_nothing_is_saved(db, answer, message):
    with closing(store.connect(db)) as conn:
        with pytest.raises(store.StoreError, match=message):
            store.record(conn, SET, "derm1", "KX7-4MPA", **answer)
    assert store.all_events(db).empty


def test_pair_answers_and_cannot_assess_are_stored_in_their_columns(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="PAR-3TKE", better="much_better_right", first="cannot_tell")
        rate(conn, item="KX7-4MPA", cannot_assess="out_of_focus")
    df = store.current_ratings(db).set_index("item")
    assert df.loc["PAR-3TKE", "better"] == "much_better_right"
    assert df.loc["PAR-3TKE", "first"] == "cannot_tell"
    assert df.loc["KX7-4MPA", "cannot_assess"] == "out_of_focus"
    assert df["score"].isna().all()


def test_locking_is_refused_while_an_item_of_the_worklist_is_unrated(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="AAA-AAAA")
        with pytest.raises(store.StoreError, match="1 of 2 items are not rated yet"):
            store.lock(conn, SET, "derm1", ["AAA-AAAA", "CCC-CCCC"])
        assert store.is_locked(conn, SET, "derm1") is None


def test_after_locking_the_store_refuses_every_new_rating_of_that_rater(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="AAA-AAAA")
        when = store.lock(conn, SET, "derm1", ["AAA-AAAA"])
        with pytest.raises(store.LockedError):
            rate(conn, item="AAA-AAAA", score=1)
        with pytest.raises(sqlite3.IntegrityError, match="locked"):
            conn.execute("INSERT INTO events (set_id, rater, item, revision, score, shown_at, "
                         "answered_at, parent, hash) VALUES (?, 'derm1', 'AAA-AAAA', 9, 1, 'x', 'x', "
                         "'p', 'h')", (SET,))
        with pytest.raises(sqlite3.IntegrityError, match="final"):
            conn.execute("DELETE FROM locks")
        rate(conn, item="AAA-AAAA", rater="derm2", score=1)  # another rater is not locked
    assert store.locks(db) == {"derm1": when}
    assert list(store.all_events(db)["rater"]) == ["derm1", "derm2"]


def test_locking_twice_keeps_the_first_lock_time(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="AAA-AAAA")
        first = store.lock(conn, SET, "derm1", ["AAA-AAAA"])
        assert store.lock(conn, SET, "derm1", ["AAA-AAAA"]) == first


def test_current_reads_only_the_given_raters_ratings(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="AAA-AAAA", rater="derm1", score=1)
        rate(conn, item="AAA-AAAA", rater="derm2", score=5)
        mine = store.current(conn, SET, "derm1")
    assert {k: v.score for k, v in mine.items()} == {"AAA-AAAA": 1}


def test_the_readers_open_the_database_read_only(db):
    with closing(store.connect(db)) as conn:
        rate(conn)
    reader = store._read_only(db)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("INSERT INTO locks (set_id, rater, locked_at) VALUES ('S1', 'derm1', 'x')")
    reader.close()


def test_a_reader_given_a_missing_file_says_so_and_creates_nothing(tmp_path):
    missing = tmp_path / "nowhere.sqlite"
    with pytest.raises(store.StoreError, match="no ratings database here"):
        store.current_ratings(missing)
    assert not missing.exists()


def test_a_file_that_is_not_a_database_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "ratings.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(store.StoreError, match="ratings.sqlite"):
        store.connect(bad)


def test_many_writers_at_once_lose_no_rating(db):
    store.connect(db).close()
    errors = []

    def rater_session(rater):
        try:
            for i in range(25):
                with closing(store.connect(db)) as conn:
                    rate(conn, item=f"AAA-{i:04d}", rater=rater, score=1 + i % 5)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rater_session, args=(f"derm{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    df = store.current_ratings(db)
    assert len(df) == 100
    assert df.groupby("rater").size().to_dict() == {f"derm{n}": 25 for n in range(4)}


def test_a_rating_saved_before_the_process_is_killed_is_on_disk(db):
    script = (
        "import os, signal, sys\n"
        "from assess import store\n"
        "conn = store.connect(sys.argv[1])\n"
        "store.record(conn, 'S1', 'derm1', 'KX7-4MPA', score=5)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(db)])
    assert proc.returncode == -9
    assert list(store.current_ratings(db)["score"]) == [5]


def test_first_answer_seconds_is_the_raters_pace_without_revisions(db):
    with closing(store.connect(db)) as conn:
        store.record(conn, SET, "derm1", "AAA-AAAA", score=1, seconds=3.0)
        store.record(conn, SET, "derm1", "AAA-AAAA", score=2, seconds=30.0)
        store.record(conn, SET, "derm1", "CCC-CCCC", score=2, seconds=5.0)
        store.record(conn, SET, "derm2", "CCC-CCCC", score=2, seconds=99.0)
        assert store.first_answer_seconds(conn, SET, "derm1") == [3.0, 5.0]


def test_current_ratings_of_one_set_and_some_columns_keep_the_latest_revision_in_saved_order(db):
    with closing(store.connect(db)) as conn:
        rate(conn, item="B", score=2)
        rate(conn, item="A", score=1)
        store.record(conn, "OTHER", "derm1", "A", score=5)
        rate(conn, item="B", score=4, change_reason="second look")
    df = store.current_ratings(db, SET, columns=["score", "revision"], sort=False)
    assert list(df.columns) == ["rater", "item", "revision", "score"]
    assert df.to_dict("list") == {"rater": ["derm1", "derm1"], "item": ["A", "B"],
                                  "revision": [1, 2], "score": [1, 4]}
    assert store.set_ids(db) == ["OTHER", SET]
    with pytest.raises(ValueError, match="colour"):
        store.current_ratings(db, columns=["colour"])


# ------------------------------------------------------------------------------- hash chain


def three_rated_and_locked(db):
    """derm1 rates A, B, C and signs; derm2 rates A (open)."""
    with closing(store.connect(db)) as conn:
        for item, score in (("AAA-AAAA", 1), ("BBB-BBBB", 2), ("CCC-CCCC", 3)):
            rate(conn, item=item, score=score)
        signature = store.sign(conn, SET, "derm1", ["AAA-AAAA", "BBB-BBBB", "CCC-CCCC"],
                               auth_method="access code")
        rate(conn, item="AAA-AAAA", rater="derm2", score=4)
    return signature


def tamper(db, *sql, drop=("events_append_only_update", "events_append_only_delete")):
    """What someone with write access to the file can do: drop the guards, change, restore them.

    The triggers are put back as they were, so only the chain can tell.
    """
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        saved = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
        for name in drop:
            conn.execute(f"DROP TRIGGER {name}")
        for statement in sql:
            conn.execute(statement)
        for name in drop:
            conn.execute(saved[name])


def broken(db) -> str:
    with pytest.raises(store.IntegrityError) as caught:
        store.verify(db, SET).check()
    return str(caught.value)


def test_every_event_is_chained_to_the_previous_one_of_its_worklist(db):
    three_rated_and_locked(db)
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT id, rater, parent, hash FROM events ORDER BY id").fetchall()
    derm1 = [r for r in rows if r[1] == "derm1"]
    assert derm1[0][2] == chain.GENESIS
    assert [r[2] for r in derm1[1:]] == [r[3] for r in derm1[:-1]]
    assert rows[3][1] == "derm2" and rows[3][2] == chain.GENESIS  # its own worklist, its own chain


def test_an_untouched_database_verifies_with_every_chain_whole_and_the_lock_signed(db):
    signature = three_rated_and_locked(db)
    report = store.verify(db, SET).check()
    derm1, derm2 = report.worklists[(SET, "derm1")], report.worklists[(SET, "derm2")]
    assert (derm1.events, derm1.signed, derm1.head) == (3, True, signature.hash)
    assert (derm2.events, derm2.signed) == (1, False)
    assert report.warnings == [] and report.triggers == []


def test_the_lock_is_a_signature_over_the_chain_head_who_when_meaning_and_how(db):
    signature = three_rated_and_locked(db)
    with closing(store.connect(db)) as conn:
        last = conn.execute("SELECT hash FROM events WHERE rater = 'derm1' ORDER BY id DESC"
                            ).fetchone()[0]
        assert store.signature(conn, SET, "derm1") == signature
    assert signature.head == last
    assert (signature.signer, signature.meaning, signature.auth_method) == (
        "derm1", "I confirm these ratings are my own independent assessment", "access code")
    assert signature.locked_at.endswith("Z")
    assert signature.hash == chain.lock_hash(vars(signature))


def test_a_score_changed_after_dropping_the_trigger_is_named_by_rater_item_and_event(db):
    three_rated_and_locked(db)
    tamper(db, "UPDATE events SET score = 6 - score WHERE id = 2")
    message = broken(db)
    assert "derm1, item BBB-BBBB, event 2: its content no longer matches its hash" in message
    assert "event 1:" not in message and "event 3:" not in message


def test_a_deleted_event_is_named_by_the_event_after_it(db):
    three_rated_and_locked(db)
    tamper(db, "DELETE FROM events WHERE id = 2")
    assert "derm1, item CCC-CCCC, event 3: the event it follows" in broken(db)


def test_renumbered_events_are_named_as_reordered(db):
    three_rated_and_locked(db)
    tamper(db, "UPDATE events SET id = 100 WHERE id = 1", "UPDATE events SET id = 1 WHERE id = 2",
           "UPDATE events SET id = 2 WHERE id = 100")
    message = broken(db)
    assert "derm1, item BBB-BBBB, event 1: it follows an event saved after it" in message
    assert "derm1, item AAA-AAAA, event 2: it follows the start, not the event before it" in message


def test_a_forged_row_inserted_without_assess_is_named(db):
    three_rated_and_locked(db)
    tamper(db, "INSERT INTO events (set_id, rater, item, revision, score, shown_at, answered_at) "
               "VALUES ('S1', 'derm2', 'BBB-BBBB', 1, 5, 'x', 'x')", drop=("events_chained",))
    assert "derm2, item BBB-BBBB, event 5: has no hash" in broken(db)


def test_a_rating_added_after_the_lock_is_named_even_with_a_valid_hash(db):
    three_rated_and_locked(db)
    late = {"set_id": SET, "rater": "derm1", "item": "AAA-AAAA", "revision": 2, "score": 5,
            "shown_at": "x", "answered_at": "y"}
    with closing(sqlite3.connect(db)) as conn:
        parent = conn.execute("SELECT hash FROM events WHERE rater = 'derm1' ORDER BY id DESC"
                              ).fetchone()[0]
    digest = chain.event_hash(late, parent)  # chained exactly as assess would
    tamper(db, "INSERT INTO events (set_id, rater, item, revision, score, shown_at, answered_at, "
               f"parent, hash) VALUES ('S1', 'derm1', 'AAA-AAAA', 2, 5, 'x', 'y', '{parent}', "
               f"'{digest}')", drop=("events_refused_after_lock",))
    assert "derm1, item AAA-AAAA, event 5: was added after the worklist was locked" in broken(db)


def test_a_changed_lock_signature_is_named(db):
    three_rated_and_locked(db)
    tamper(db, "UPDATE locks SET auth_method = 'single sign-on'", drop=("locks_final_update",))
    assert "derm1, lock: the lock signature no longer matches its hash" in broken(db)


def test_a_dropped_or_replaced_guard_trigger_is_named(db):
    three_rated_and_locked(db)
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TRIGGER events_append_only_delete")
        conn.execute("DROP TRIGGER locks_final_update")
        conn.execute("CREATE TRIGGER locks_final_update BEFORE UPDATE ON locks BEGIN SELECT 1; END")
    message = broken(db)
    assert "guard trigger events_append_only_delete is missing" in message
    assert "guard trigger locks_final_update was replaced" in message


#: The schema of version 1, as databases written before the chain have it.
SCHEMA_V1 = """
CREATE TABLE events (id INTEGER PRIMARY KEY, set_id TEXT NOT NULL, rater TEXT NOT NULL,
  item TEXT NOT NULL, revision INTEGER NOT NULL, score INTEGER, better TEXT, first TEXT,
  cannot_assess TEXT, comment TEXT, change_reason TEXT, shown_at TEXT NOT NULL,
  answered_at TEXT NOT NULL, seconds REAL, UNIQUE (set_id, rater, item, revision));
CREATE TABLE locks (set_id TEXT, rater TEXT, locked_at TEXT, PRIMARY KEY (set_id, rater));
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'ratings are append-only: add a revision instead'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'ratings are append-only: they cannot be deleted'); END;
CREATE TRIGGER events_refused_after_lock BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM locks WHERE set_id = NEW.set_id AND rater = NEW.rater)
BEGIN SELECT RAISE(ABORT, 'worklist locked: ratings are read-only'); END;
CREATE TRIGGER locks_final_update BEFORE UPDATE ON locks
BEGIN SELECT RAISE(ABORT, 'a lock is final'); END;
CREATE TRIGGER locks_final_delete BEFORE DELETE ON locks
BEGIN SELECT RAISE(ABORT, 'a lock is final'); END;
INSERT INTO events (set_id, rater, item, revision, score, shown_at, answered_at, seconds) VALUES
  ('S1', 'derm1', 'AAA-AAAA', 1, 2, 't0', 't1', 3.0), ('S1', 'derm2', 'AAA-AAAA', 1, 4, 't0', 't1', 2.0);
INSERT INTO locks VALUES ('S1', 'derm1', '2026-01-01T12:00:00.000Z');
PRAGMA user_version = 1;
"""


@pytest.fixture
def v1_db(db):
    db.parent.mkdir(parents=True)
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript(SCHEMA_V1)
    return db


def test_a_version_1_database_is_read_as_it_is_with_a_warning_that_it_is_unchained(v1_db):
    report = store.verify(v1_db, SET).check()
    assert report.schema_version == 1
    assert report.worklists[(SET, "derm1")].unchained == 1
    assert any("did not chain ratings" in w for w in report.warnings)
    assert list(store.current_ratings(v1_db)["score"]) == [2, 4]


def test_a_version_1_database_opened_for_writing_migrates_and_chains_what_comes_next(v1_db):
    with closing(store.connect(v1_db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
        rate(conn, item="BBB-BBBB", rater="derm2", score=1)
        with pytest.raises(store.LockedError):
            rate(conn, item="BBB-BBBB", rater="derm1")
    report = store.verify(v1_db, SET).check()
    derm2 = report.worklists[(SET, "derm2")]
    assert (derm2.unchained, derm2.events) == (1, 1)
    assert any(w.startswith("derm2: 1 event(s) were saved before ratings were chained")
               for w in report.warnings)
    assert any("derm1: the worklist was locked before locks were signed" in w
               for w in report.warnings)
    current = store.current_ratings(v1_db)
    assert sorted(zip(current["rater"], current["item"], current["score"])) == [
        ("derm1", "AAA-AAAA", 2), ("derm2", "AAA-AAAA", 4), ("derm2", "BBB-BBBB", 1)]


def test_an_unchained_row_added_after_the_migration_is_refused(v1_db):
    store.connect(v1_db).close()
    tamper(v1_db, "INSERT INTO events (set_id, rater, item, revision, score, shown_at, answered_at)"
                  " VALUES ('S1', 'derm2', 'CCC-CCCC', 1, 5, 'x', 'x')", drop=("events_chained",))
    assert "derm2, item CCC-CCCC, event 3: has no hash" in broken(v1_db)


def test_a_database_of_a_newer_version_is_refused_naming_it(db):
    store.connect(db).close()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA user_version = 9")
    with pytest.raises(store.StoreError, match=r"ratings.sqlite: written by a newer version"):
        store.connect(db)


def test_two_writers_of_one_worklist_at_once_keep_one_unbroken_chain(db):
    store.connect(db).close()

    def session(start):
        for i in range(start, start + 20):
            with closing(store.connect(db)) as conn:
                rate(conn, item=f"AAA-{i:04d}")

    threads = [threading.Thread(target=session, args=(n * 100,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.verify(db, SET).check().worklists[(SET, "derm1")].events == 60


# ------------------------------------------------------------------------------- assess verify


@pytest.fixture
def rated_set(make_rater_set, tmp_path):
    """A real rater folder whose derm1 rated every item and signed; its database."""
    from assess import rate as rating

    rater_dir, _, access = make_rater_set(raters=("derm1", "derm2"), participants=2)
    rs = rating.load_rater_set(rater_dir)
    wl = rs.worklist("derm1")
    db = tmp_path / "ratings.sqlite"
    for it in wl.items:
        wl.save(db, it.item, score=rs.scales[it.scale].values[0])
    signature = wl.sign_and_lock(db, code=access["derm1"])
    return rater_dir, db, wl, signature


def verify_cli(rater_dir, db, *more):
    from click.testing import CliRunner

    from assess.cli import cli

    return CliRunner().invoke(cli, ["verify", str(rater_dir), "--db", str(db), *more])


def test_assess_verify_prints_each_raters_chain_head_and_signature(rated_set):
    rater_dir, db, wl, signature = rated_set
    result = verify_cli(rater_dir, db)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("derm1"))
    assert f"{len(wl.items)}" in line and chain.short(signature.hash) in line
    assert "UTC by derm1 (access code)" in line
    assert next(x for x in result.output.splitlines() if x.startswith("derm2")).split()[1:4] == [
        "0", "0", "-"]
    assert "are whole and every guard trigger is in place" in result.output


def test_assess_verify_refuses_a_changed_score_naming_rater_item_and_event(rated_set):
    rater_dir, db, wl, _ = rated_set
    tamper(db, "UPDATE events SET score = score + 1 WHERE id = 3", "DROP TRIGGER events_chained")
    result = verify_cli(rater_dir, db)
    assert result.exit_code == 1
    assert f"derm1, item {wl.items[2].item}, event 3: its content no longer matches" in result.output
    assert "guard trigger events_chained is missing" in result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit


def test_assess_verify_help_ends_with_an_example():
    from click.testing import CliRunner

    from assess.cli import cli

    text = CliRunner().invoke(cli, ["verify", "-h"]).output
    example = text.split("Options:")[0].rstrip().split("Example:")[1].strip()
    assert example.startswith("assess verify ") and "--expect derm1=" in example


def rewrite_consistently(db, item, score):
    """What the chain alone cannot catch: one score changed and every later hash recomputed."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT id, " + ", ".join(store.COLUMNS) + " FROM events WHERE rater = "
                            "'derm1' ORDER BY id").fetchall()
        lock = dict(zip(store._LOCK_COLUMNS, conn.execute(
            "SELECT " + ", ".join(store._LOCK_COLUMNS) + " FROM locks WHERE rater = 'derm1'"
        ).fetchone()))
    statements, parent = [], chain.GENESIS
    for row in rows:
        event = dict(zip(("id",) + store.COLUMNS, row))
        if event["item"] == item:
            event["score"] = score
        digest = chain.event_hash(event, parent)
        statements.append(f"UPDATE events SET score = {event['score']}, parent = '{parent}', "
                          f"hash = '{digest}' WHERE id = {event['id']}")
        parent = digest
    lock["head"] = parent
    statements.append(f"UPDATE locks SET head = '{parent}', hash = '{chain.lock_hash(lock)}' "
                      "WHERE rater = 'derm1'")
    tamper(db, *statements, drop=("events_append_only_update", "locks_final_update"))


def test_a_consistently_rewritten_chain_is_caught_by_the_head_noted_at_signing(rated_set):
    rater_dir, db, wl, signature = rated_set
    receipt = chain.short(signature.hash)
    assert verify_cli(rater_dir, db).exit_code == 0
    rewrite_consistently(db, wl.items[1].item, 3)
    assert verify_cli(rater_dir, db).exit_code == 0  # the chain alone cannot tell
    result = verify_cli(rater_dir, db, "--expect", f"derm1={receipt}")
    assert result.exit_code == 1
    assert "derm1: the ratings end in chain head" in result.output
    assert f"not {receipt} as noted when the rater signed" in result.output


def test_the_head_noted_at_signing_verifies_an_untouched_database(rated_set):
    rater_dir, db, _, signature = rated_set
    result = verify_cli(rater_dir, db, "--expect", f"derm1={chain.short(signature.hash)}")
    assert result.exit_code == 0, result.output
    bad = verify_cli(rater_dir, db, "--expect", "derm1=xyz")
    assert bad.exit_code == 1 and "12 or more hex digits" in bad.output
