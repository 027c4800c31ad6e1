"""Qualification on a real set: training attempts against the sealed reference, the gate on the
live worklist, the coordinator's status, chain verification and the scorer's results."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from assess import store, training
from assess.blind import read_key, read_reference_key
from assess.cli import cli
from assess.rate import load_rater_set
from assess.score import analyse, write_files

QUALIFICATION = '''
[qualification]
min_exact = 0.8
attempts = 2
feedback = "end"
'''
SCORES = (1, 2, 3, 4, 5)


@pytest.fixture
def qset(make_rater_set, tmp_path):
    rater_dir, key_dir, access = make_rater_set(raters=("derm1", "derm2", "derm3"), participants=2,
                                                regions={"face": "wsrs"}, training=SCORES,
                                                sections=QUALIFICATION)
    rs = load_rater_set(rater_dir)
    reference = training.load_reference(key_dir / "reference.csv", rs)
    return rs, key_dir, reference, tmp_path / "ratings.sqlite"


def _attempt(trainee: training.Trainee, attempt: int, right: bool) -> None:
    wl = trainee.worklist(attempt)
    for it in wl.items:
        ref = int(trainee.reference[it.item])
        wl.save(trainee.db, it.item, score=ref if right else ref % 5 + 1)


def test_a_rater_who_fails_once_and_then_passes_qualifies_and_both_results_are_chained(qset):
    rs, _, reference, db = qset
    me = training.Trainee(rs, "derm1", db, reference)
    assert me.attempt() == 1 and me.standing().state == "training"
    _attempt(me, 1, right=False)
    first = me.finish(1)
    assert not first.passed and first.exact == 0.0
    assert me.attempt() == 2
    assert {it.item for it in me.worklist(1).items}.isdisjoint(
        {it.item for it in me.worklist(2).items})
    _attempt(me, 2, right=True)
    second = me.finish(2)
    assert second.passed and second.exact == 1.0
    standing = me.standing()
    assert (standing.state, standing.attempts_used, standing.attempts_left) == ("qualified", 2, 0)
    # each attempt's answers and the results are chains that verify; the attempt is locked
    for set_id in (training.worklist_id(rs.set_id, 1), training.worklist_id(rs.set_id, 2),
                   training.results_id(rs.set_id)):
        assert store.verify(db, set_id).check().worklists
    with pytest.raises(store.LockedError):
        me.worklist(1).save(db, me.worklist(1).items[0].item, score=3)
    import contextlib
    with contextlib.closing(store.connect(db)) as conn:
        events = store.current(conn, training.results_id(rs.set_id), "derm1")
    assert events["attempt-1"].score == 0 and events["attempt-2"].score == 1
    recorded = json.loads(events["attempt-2"].comment)
    assert recorded["criterion"]["min_exact"] == 0.8 and recorded["result"]["passed"] is True
    # finishing again gives the recorded result, nothing new
    assert me.finish(2).passed and len(me.results()) == 2


def test_a_rater_who_fails_every_attempt_is_refused_and_gets_no_further_attempt(qset):
    rs, _, reference, db = qset
    me = training.Trainee(rs, "derm2", db, reference)
    for n in (1, 2):
        _attempt(me, n, right=False)
        assert not me.finish(n).passed
    assert me.standing().state == "refused" and me.attempt() is None
    with pytest.raises(training.TrainingError, match="attempt 3 is not open"):
        me.finish(3)


def test_an_attempt_with_photos_left_cannot_be_finished(qset):
    rs, _, reference, db = qset
    me = training.Trainee(rs, "derm3", db, reference)
    wl = me.worklist(1)
    wl.save(db, wl.items[0].item, score=2)
    with pytest.raises(training.TrainingError, match="4 photo\\(s\\) have no score"):
        me.finish(1)
    assert me.results() == []


def test_each_rater_sees_only_their_own_training_photos(qset):
    rs, key_dir, _, _ = qset
    rows = read_reference_key(key_dir / "reference.csv")
    for rater in ("derm1", "derm2"):
        assert training.codes_of(rs, rater) == {r.code for r in rows if r.rater == rater}


def test_a_changed_reference_file_is_refused_by_name(qset, tmp_path):
    rs, key_dir, _, _ = qset
    path = tmp_path / "reference.csv"
    text = (key_dir / "reference.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    cells = lines[1].split(",")
    cells[6] = "5" if cells[6] != "5" else "4"  # the score of the first code
    path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(training.TrainingError, match=f"{path}: the row of {cells[0]} does not "
                                                     "match the sealed set"):
        training.load_reference(path, rs)
    path.write_text("\n".join([lines[0], *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(training.TrainingError, match=f"has no row for training code {cells[0]}"):
        training.load_reference(path, rs)


def test_the_reference_is_refused_inside_the_rater_folder_and_required_to_serve(qset):
    rs, key_dir, _, _ = qset
    inside = rs.root / "reference.csv"
    shutil.copy(key_dir / "reference.csv", inside)
    try:
        with pytest.raises(training.TrainingError, match="is inside the rater folder"):
            training.load_reference(inside, rs)
    finally:
        inside.unlink()
    with pytest.raises(training.TrainingError, match="start it with --reference"):
        training.check_serve(rs, None)
    assert training.check_serve(rs, key_dir / "reference.csv") == (key_dir / "reference.csv"
                                                                   ).resolve()


def test_the_rate_command_refuses_a_qualification_set_without_its_reference(qset):
    rs, _, _, db = qset
    result = CliRunner().invoke(cli, ["rate", str(rs.root), "--db", str(db), "--port", "8599"])
    assert result.exit_code != 0
    assert "start it with --reference KEY_DIR/reference.csv" in result.output
    assert "Traceback" not in result.output


def test_a_set_without_training_takes_no_reference(make_rater_set, qset):
    _, key_dir, _, _ = qset
    rater_dir, _, _ = make_rater_set(participants=2, name="plain")
    with pytest.raises(training.TrainingError, match="has no training worklists"):
        training.check_serve(load_rater_set(rater_dir), key_dir / "reference.csv")


def test_status_shows_each_raters_state_and_attempts_never_a_score(qset):
    rs, _, reference, db = qset
    one = training.Trainee(rs, "derm1", db, reference)
    _attempt(one, 1, right=True)
    one.finish(1)
    two = training.Trainee(rs, "derm2", db, reference)
    for n in (1, 2):
        _attempt(two, n, right=False)
        two.finish(n)
    result = CliRunner().invoke(cli, ["status", str(rs.root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    lines = result.output.split("Qualification (training before live rating):\n")[1].splitlines()
    assert lines[:3] == ["  derm1  qualified  attempts 1/2", "  derm2  refused    attempts 2/2",
                         "  derm3  training   attempts 0/2"]
    assert "kappa" not in result.output.lower() and "κ" not in result.output


def test_verify_checks_the_training_chains(qset):
    rs, _, reference, db = qset
    one = training.Trainee(rs, "derm1", db, reference)
    _attempt(one, 1, right=True)
    one.finish(1)
    wl = rs.worklist("derm1")
    wl.save(db, wl.items[0].item, score=3)
    result = CliRunner().invoke(cli, ["verify", str(rs.root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    import sqlite3
    from contextlib import closing

    from assess.store.sqlite import SCHEMA

    with closing(sqlite3.connect(db)) as conn:  # a score changed outside assess, guard put back
        conn.executescript(
            "DROP TRIGGER events_append_only_update; "
            f"UPDATE events SET score = score % 5 + 1 WHERE set_id = "
            f"'{training.worklist_id(rs.set_id, 1)}'; "
            + next(sql for sql in SCHEMA.split(";\n") if "events_append_only_update" in sql)
            + ";")
    result = CliRunner().invoke(cli, ["verify", str(rs.root), "--db", str(db)])
    assert result.exit_code != 0
    assert training.worklist_id(rs.set_id, 1) in result.output


def test_the_scorer_reports_every_attempt_and_keeps_training_out_of_the_trial(qset, tmp_path):
    rs, key_dir, reference, db = qset
    for rater, right in (("derm1", (False, True)), ("derm2", (True,)), ("derm3", (True,))):
        me = training.Trainee(rs, rater, db, reference)
        for n, ok in enumerate(right, start=1):
            _attempt(me, n, right=ok)
            me.finish(n)
        wl = rs.worklist(rater)
        for it in wl.items:
            wl.save(db, it.item, score=3)
        wl.lock(db)
    analysis = analyse(rs.root, key_dir, db=db)
    table = analysis.qualification
    assert [(r.rater, r.attempt, r.passed, r.recorded) for r in table.itertuples()] == [
        ("derm1", 1, False, "failed"), ("derm2", 1, True, "passed"), ("derm3", 1, True, "passed"),
        ("derm1", 2, True, "passed")]
    assert table.loc[table["rater"] == "derm2", "kappa"].iloc[0] == pytest.approx(1.0)
    rated = set(analysis.unblinded.long["code"].astype(str))
    assert rated == {r.code for r in read_key(key_dir)} and not rated & set(reference)
    out = tmp_path / "results"
    write_files(analysis, out)
    written = pd.read_csv(out / "qualification.csv", encoding="utf-8-sig")
    assert list(written["rater"]) == ["derm1", "derm2", "derm3", "derm1"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Qualification</h2>" in report and "exact agreement ≥ 80%" in report
