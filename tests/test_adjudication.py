"""Blinded adjudication on a real set: the queue from the panel's ratings, the adjudicator's
chained answers in a worklist of their own, and the scorer's final scores."""

from __future__ import annotations

import csv
import json

import pytest

from assess import adjudication, panel, store
from assess.audit import audit_set
from assess.blind import randomize
from assess.rate import load_rater_set
from assess.score import analyse
from assess.synth import make_study

RULES = '''
[consensus]
rule = "median"

[adjudication]
adjudicator = "derm9"
min_difference = 2
'''


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    synth = make_study(tmp_path_factory.mktemp("raw") / "images", participants=4, size=(64, 48),
                       regions={"face": "wsrs"}, repeat_fraction=0,
                       raters=("derm1", "derm2", "derm3"))
    with open(synth.study_path, "a", encoding="utf-8") as fh:
        fh.write(RULES)
    return randomize(synth.study_path, synth.root, tmp_path_factory.mktemp("sets"), set_id="adj1",
                     seed=7, workers=1)


@pytest.fixture
def rated(built, tmp_path):
    """Three raters rate every photo; derm3 is two grades up on the first item only."""
    db = tmp_path / "ratings.sqlite"
    rs = load_rater_set(built.rater_dir)
    first = rs.worklist("derm1").items[0].item
    for rater in ("derm1", "derm2", "derm3"):
        wl = rs.worklist(rater)
        for it in wl.items:
            score = 4 if (rater == "derm3" and it.item == first) else 2
            wl.save(db, it.item, score=score)
    return built, db, first


def adjudicator_code(built) -> str:
    with open(built.key_dir / "adjudicator.csv", encoding="utf-8-sig") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["adjudicator"] == "derm9"
    return row["access_code"]


def test_randomize_gives_the_adjudicator_an_access_code_kept_in_the_key(built):
    meta = json.loads((built.rater_dir / "set.json").read_text())
    code = adjudicator_code(built)
    assert meta["panel"]["adjudication"]["adjudicator"] == "derm9"
    assert code not in (built.rater_dir / "set.json").read_text()
    assert "derm9" not in meta["raters"]
    rs = load_rater_set(built.rater_dir)
    assert adjudication.check_access(rs, "derm9", code)
    assert not adjudication.check_access(rs, "derm9", "WRONG-CODE-0000")
    assert not adjudication.check_access(rs, "derm1", code)


def test_the_set_with_panel_rules_still_passes_the_leak_audit(built):
    assert audit_set(built.rater_dir, built.key_dir) == []


def test_the_queue_holds_only_the_photo_whose_panel_differs_by_two_grades(rated):
    built, db, first = rated
    (q,) = adjudication.queue(built.rater_dir, db)
    assert q.item == first and q.scores == (2.0, 2.0, 4.0)
    assert q.reasons == ("scores differ by 2 grades (2 to 4)",) and q.done is None


def test_a_photo_is_not_queued_before_the_whole_panel_has_rated_it(built, tmp_path):
    db = tmp_path / "ratings.sqlite"
    rs = load_rater_set(built.rater_dir)
    first = rs.worklist("derm1").items[0].item
    rs.worklist("derm1").save(db, first, score=1)
    rs.worklist("derm2").save(db, first, score=4)
    assert adjudication.queue(built.rater_dir, db) == []
    rs.worklist("derm3").save(db, first, score=4)
    assert [q.item for q in adjudication.queue(built.rater_dir, db)] == [first]


def test_only_the_designated_adjudicator_may_adjudicate(rated):
    built, db, _ = rated
    with pytest.raises(adjudication.AdjudicationError, match="derm1: not the adjudicator"):
        adjudication.Adjudicator(built.rater_dir, "derm1", db)


def test_the_adjudicator_needs_a_reason_and_a_queued_item(rated):
    built, db, first = rated
    adj = adjudication.Adjudicator(built.rater_dir, "derm9", db)
    with pytest.raises(adjudication.AdjudicationError, match="give the reason"):
        adj.save(first, score=3, reason="  ")
    other = load_rater_set(built.rater_dir).worklist("derm1").items[1].item
    with pytest.raises(adjudication.AdjudicationError, match="not in the adjudication queue"):
        adj.save(other, score=3, reason="x")
    with pytest.raises(adjudication.AdjudicationError, match="give a level"):
        adj.save(first, score=9, reason="x")


def test_the_adjudicated_score_is_a_chained_event_and_the_panel_scores_are_kept(rated):
    built, db, first = rated
    adj = adjudication.Adjudicator(built.rater_dir, "derm9", db)
    event = adj.save(first, score=3, reason="deep fold at rest")
    assert event.set_id == "adj1:adjudication" and event.rater == "derm9"
    assert adj.queue()[0].done.score == 3
    report = store.verify(db)
    assert report.ok and ("adj1:adjudication", "derm9") in report.worklists
    panel_now = store.current_ratings(db, "adj1")
    assert sorted(panel_now.loc[panel_now["item"] == first, "score"].tolist()) == [2, 2, 4]
    sig = adj.sign_and_lock(adjudicator_code(built))
    assert sig.signer == "derm9"
    with pytest.raises(store.LockedError):
        adj.save(first, score=2, reason="second thoughts")


def test_the_scorer_takes_the_adjudicated_score_as_final(rated):
    built, db, first = rated
    adjudication.Adjudicator(built.rater_dir, "derm9", db).save(first, score=3, reason="fold")
    a = analyse(built.rater_dir, built.key_dir, db=db, allow_unlocked=True)
    row = a.panel_scores.set_index("item").loc[first]
    assert (row["scores"], row["final"], row["source"], row["adjudication_reason"]) == (
        "2; 2; 4", 3.0, "adjudicated", "fold")
    assert a.panel_scores["final"].notna().all()
    assert panel.adjudication_worklist("adj1") not in set(a.unblinded.long["rater"])


def test_status_shows_the_adjudication_queue_by_code_and_never_a_score(rated):
    from click.testing import CliRunner

    from assess.cli import cli

    built, db, first = rated
    result = CliRunner().invoke(cli, ["status", str(built.rater_dir), "--db", str(db)])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("Adjudication"))
    assert line == ("Adjudication (derm9): 1 photo(s) sent by the panel's scores, 0 adjudicated, "
                    "1 waiting")
    assert f"  waiting: {first}" in result.output
    assert "(2 to 4)" not in result.output
    adjudication.Adjudicator(built.rater_dir, "derm9", db).save(first, score=3, reason="fold")
    result = CliRunner().invoke(cli, ["status", str(built.rater_dir), "--db", str(db)])
    assert "1 adjudicated, 0 waiting" in result.output and "waiting:" not in result.output


@pytest.fixture(scope="module")
def built_pairs(tmp_path_factory):
    synth = make_study(tmp_path_factory.mktemp("raw") / "images", participants=3, size=(64, 48),
                       regions={"face": "wsrs"}, repeat_fraction=0, presentation="pairs",
                       raters=("derm1", "derm2", "derm3"))
    with open(synth.study_path, "a", encoding="utf-8") as fh:
        fh.write(RULES)
    return randomize(synth.study_path, synth.root, tmp_path_factory.mktemp("sets"), set_id="adj2",
                     seed=9, workers=1)


def test_pairs_are_adjudicated_the_same_way_on_which_side_looks_better(built_pairs, tmp_path):
    db = tmp_path / "ratings.sqlite"
    rs = load_rater_set(built_pairs.rater_dir)
    first = rs.worklist("derm1").items[0].item
    for rater in ("derm1", "derm2", "derm3"):
        wl = rs.worklist(rater)
        for it in wl.items:
            better = ("much_better_right" if (rater == "derm3" and it.item == first)
                      else "no_difference")
            wl.save(db, it.item, better=better, first="cannot_tell")
    (q,) = adjudication.queue(built_pairs.rater_dir, db)
    assert (q.item, q.kind, q.scores) == (first, "pair", (0.0, 0.0, 2.0))
    adj = adjudication.Adjudicator(built_pairs.rater_dir, "derm9", db)
    with pytest.raises(adjudication.AdjudicationError, match="a pair takes which side"):
        adj.save(first, score=3, reason="x")
    adj.save(first, better="better_right", reason="fewer lines on the right")
    a = analyse(built_pairs.rater_dir, built_pairs.key_dir, db=db, allow_unlocked=True)
    row = a.panel_scores.set_index("item").loc[first]
    # The key says which side is the follow-up: "better right" is +1 or -1 improvement.
    right_is_followup = bool(a.unblinded.long.set_index("item").loc[first, "improvement"]
                             .dropna().max() > 0)
    assert row["source"] == "adjudicated"
    assert row["final"] == (1.0 if right_is_followup else -1.0)


@pytest.mark.parametrize("section, says", [
    ("[qualification]\nmin_kappa = 0.7\n", r"\[qualification\] needs training photos"),
    ("[calibration]\nrate = 0.1\n", r"\[calibration\] needs calibration photos")])
def test_randomize_refuses_panel_sections_without_their_reference_photos(tmp_path, section, says):
    from assess.blind import BlindError

    synth = make_study(tmp_path / "images", participants=2, size=(64, 48),
                       regions={"face": "wsrs"}, repeat_fraction=0)
    with open(synth.study_path, "a", encoding="utf-8") as fh:
        fh.write("\n" + section)
    with pytest.raises(BlindError, match=says):
        randomize(synth.study_path, synth.root, tmp_path / "sets", set_id="no", workers=1)
    assert not (tmp_path / "sets" / "no").exists()


RESPONDER_RULES = '''
[consensus]
rule = "median"

[adjudication]
adjudicator = "derm9"
min_difference = {min_difference}
responder_change = 1
'''


def responder_set(tmp_path_factory, presentation: str, set_id: str, min_difference: int):
    synth = make_study(tmp_path_factory.mktemp("raw") / "images", participants=3, size=(64, 48),
                       regions={"face": "wsrs"}, repeat_fraction=0, presentation=presentation,
                       raters=("derm1", "derm2"))
    with open(synth.study_path, "a", encoding="utf-8") as fh:
        fh.write(RESPONDER_RULES.format(min_difference=min_difference))
    return randomize(synth.study_path, synth.root, tmp_path_factory.mktemp("sets"), set_id=set_id,
                     seed=11, workers=1)


@pytest.fixture(scope="module")
def built_responder(tmp_path_factory):
    return responder_set(tmp_path_factory, "single", "resp1", min_difference=3)


def key_rows(built) -> list[dict]:
    with open(built.key_dir / "key.csv", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def responder_rated(built_responder, tmp_path):
    """derm1 calls the first participant a responder (4 -> 3), derm2 does not (4 -> 4); the
    others agree (3 -> 3). No grade difference reaches min_difference."""
    db = tmp_path / "responder.sqlite"
    rows = key_rows(built_responder)
    split = sorted({r["participant"] for r in rows})[0]
    scores = {}
    for r in rows:
        if r["participant"] != split:
            scores[r["code"]] = (3, 3)
        else:
            scores[r["code"]] = (4, 4) if r["timepoint"] == "baseline" else (3, 4)
    rs = load_rater_set(built_responder.rater_dir)
    for i, rater in enumerate(("derm1", "derm2")):
        wl = rs.worklist(rater)
        for it in wl.items:
            wl.save(db, it.item, score=scores[it.item][i])
    both = sorted(r["code"] for r in rows if r["participant"] == split)
    return built_responder, db, both, rows


def test_the_queue_on_the_rater_side_alone_does_not_know_responder_status(responder_rated):
    built, db, _, _ = responder_rated
    assert adjudication.queue(built.rater_dir, db) == []


def test_the_coordinator_sends_both_photos_of_a_participant_the_panel_disagrees_on(responder_rated):
    from assess.score import responders

    built, db, both, _ = responder_rated
    sent = responders.send(built.rater_dir, built.key_dir, db)
    assert sent.codes == tuple(both) and sent.new == tuple(both)
    q = adjudication.queue(built.rater_dir, db)
    assert sorted(x.item for x in q) == both
    assert {x.reasons for x in q} == {("raters disagree on responder status",)}
    assert responders.send(built.rater_dir, built.key_dir, db).new == ()
    report = store.verify(db)
    assert report.ok and report.worklists[("resp1:adjudication-sent", "coordinator")].events == 2


def test_the_adjudicator_is_told_no_timepoint_or_participant_of_a_responder_photo(responder_rated):
    from assess.score import responders

    built, db, both, rows = responder_rated
    responders.send(built.rater_dir, built.key_dir, db)
    hidden = {r["timepoint"] for r in rows} | {r["participant"] for r in rows}
    for x in adjudication.queue(built.rater_dir, db):
        shown = " ".join(str(v) for k, v in vars(x).items() if k not in ("scores", "done"))
        assert not [h for h in hidden if h in shown], shown
    events = store.all_events(db)
    sent = events[events["set_id"] == "resp1:adjudication-sent"]
    assert sorted(sent["item"]) == both and set(sent["score"]) == {1}
    recorded = " ".join(str(v) for v in sent.drop(columns=["shown_at", "answered_at"])
                        .to_numpy().ravel())
    assert not [h for h in hidden if h in recorded], recorded


def test_a_responder_photo_waits_for_the_adjudicator_and_then_takes_the_adjudicated_score(
        responder_rated):
    from assess.score import responders

    built, db, both, _ = responder_rated
    responders.send(built.rater_dir, built.key_dir, db)
    a = analyse(built.rater_dir, built.key_dir, db=db, allow_unlocked=True)
    rows = a.panel_scores.set_index("item")
    assert set(rows.index[rows["adjudicate"]]) == set(both)
    assert set(rows.loc[both, "source"]) == {"pending adjudication"}
    adj = adjudication.Adjudicator(built.rater_dir, "derm9", db)
    for code, score in zip(both, (4, 3)):
        adj.save(code, score=score, reason="compared with the reference photos")
    rows = analyse(built.rater_dir, built.key_dir, db=db,
                   allow_unlocked=True).panel_scores.set_index("item")
    assert set(rows.loc[both, "source"]) == {"adjudicated"}
    assert rows.loc[both, "final"].tolist() == [4.0, 3.0]
    assert set(rows.loc[~rows.index.isin(both), "source"]) == {"consensus"}


def test_the_queue_command_sends_the_codes_and_refuses_a_study_without_responder_change(
        responder_rated, rated):
    from click.testing import CliRunner

    from assess.cli import cli

    built, db, both, _ = responder_rated
    args = ["adjudication", "queue", str(built.rater_dir), "--key", str(built.key_dir),
            "--db", str(db)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "2 photo(s) on which the panel disagrees on responder status" in result.output
    assert f"new: {', '.join(both)}" in result.output
    assert "(0 new)" in CliRunner().invoke(cli, args).output
    status = CliRunner().invoke(cli, ["status", str(built.rater_dir), "--db", str(db)])
    assert "Adjudication (derm9): 2 photo(s)" in status.output
    other, other_db, _ = rated
    result = CliRunner().invoke(cli, ["adjudication", "queue", str(other.rater_dir), "--key",
                                      str(other.key_dir), "--db", str(other_db)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "declares no [adjudication] responder_change" in result.output


def test_pairs_whose_raters_disagree_on_responder_status_go_to_the_adjudicator(tmp_path_factory,
                                                                               tmp_path):
    from assess.score import responders

    built = responder_set(tmp_path_factory, "pairs", "resp2", min_difference=5)
    db = tmp_path / "ratings.sqlite"
    rs = load_rater_set(built.rater_dir)
    first = rs.worklist("derm1").items[0].item
    for rater, split in (("derm1", "much_better_right"), ("derm2", "much_better_left")):
        wl = rs.worklist(rater)
        for it in wl.items:  # +2 against -2 whichever side the follow-up is on
            wl.save(db, it.item, better=split if it.item == first else "no_difference",
                    first="cannot_tell")
    assert adjudication.queue(built.rater_dir, db) == []
    assert responders.send(built.rater_dir, built.key_dir, db).codes == (first,)
    (q,) = adjudication.queue(built.rater_dir, db)
    assert (q.item, q.kind, q.reasons) == (first, "pair", ("raters disagree on responder status",))


def test_verify_refuses_a_changed_adjudication(rated):
    import sqlite3

    from assess import rate

    built, db, first = rated
    adjudication.Adjudicator(built.rater_dir, "derm9", db).save(first, score=3, reason="fold")
    rate.verify(built.rater_dir, db)
    with sqlite3.connect(db) as conn:  # a forged revision, appended by hand with a made-up hash
        conn.execute("INSERT INTO events (set_id, rater, item, revision, score, comment, shown_at, "
                     "answered_at, parent, hash) SELECT set_id, rater, item, 2, 5, comment, "
                     "shown_at, answered_at, hash, ? FROM events WHERE set_id = 'adj1:adjudication'",
                     ("f" * 64,))
    assert store.verify(db, "adj1").ok  # the panel's own chains are whole
    with pytest.raises(store.IntegrityError, match="adj1:adjudication|derm9"):
        rate.verify(built.rater_dir, db)
