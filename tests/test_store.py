"""The ratings database: append-only events, revisions, locks, read-only readers, durability."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from contextlib import closing

import pytest

from assess import store

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
    assert tables == {"events", "locks", "store_info"}
    assert version == store.SCHEMA_VERSION == 2


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
    ({"score": True}, "whole number"),
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
