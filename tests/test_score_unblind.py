"""Integrity before anything is computed: every refusal and every warning of the scorer."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from assess.score import OUTPUTS, analyse, score
from assess.score.unblind import ScoreError, read_ratings_csv, timepoints_from_key, unblind
from score_fixtures import make_set, rate_all, slot_of, write_db, write_ratings

COLS = ("rater", "code", "score", "cannot_assess", "reason", "comment")


@pytest.fixture
def fx(tmp_path):
    return make_set(tmp_path / "sets", participants=("P01", "P02", "P03", "P04"),
                    raters=("derm1", "derm2"), repeat=[("P01", "baseline", "face")])


def csv_of(tmp_path, rows, name="ratings.csv"):
    return write_ratings(tmp_path / name, rows, COLS)


def all_rated(fx):
    return rate_all(fx, "derm1") + rate_all(fx, "derm2")


# ------------------------------------------------------------------------------ refusals


def test_a_key_whose_sha256_differs_from_the_seal_is_refused(fx, tmp_path):
    key = fx.key_dir / "key.csv"
    key.write_text(key.read_text().replace("P02", "P09"))
    with pytest.raises(ScoreError, match=r"sha256 .* differs from the key_sha256 .* Restore the "
                                         r"original key.csv"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, all_rated(fx)))


def test_the_key_of_another_set_is_refused_as_belonging_to_another_set(fx, tmp_path):
    other = make_set(tmp_path / "other", seed=99, set_id="OTHER-20260101")
    with pytest.raises(ScoreError, match="belongs to another set .* give the key/ folder written "
                                         "together with this rater folder"):
        unblind(fx.rater_dir, other.key_dir, ratings=csv_of(tmp_path, all_rated(fx)))


def test_a_sealed_key_with_codes_no_worklist_shows_is_refused_as_another_set(fx, tmp_path):
    key = fx.key_dir / "key.csv"
    key.write_text(key.read_text() + "AAA-AAAA,P09,baseline,face,,x.jpg,0,1,,,\n")
    fx.reseal()
    with pytest.raises(ScoreError, match="belong to different sets: the key has codes that no "
                                         "worklist shows: AAA-AAAA"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, all_rated(fx)))


def test_a_worklist_of_another_set_is_refused(fx, tmp_path):
    path = fx.rater_dir / "worklists" / "derm2.json"
    wl = json.loads(path.read_text())
    wl["set_id"] = "OTHER-20260101"
    path.write_text(json.dumps(wl))
    with pytest.raises(ScoreError, match="belongs to set 'OTHER-20260101'.*mixes two sets"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, all_rated(fx)))


def test_a_worklist_shorter_than_set_json_declares_is_refused(fx, tmp_path):
    path = fx.rater_dir / "worklists" / "derm1.json"
    wl = json.loads(path.read_text())
    wl["items"] = wl["items"][:-1]
    path.write_text(json.dumps(wl))
    with pytest.raises(ScoreError, match="derm1.json: has 8 items but set.json declares 9"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, all_rated(fx)))


def test_ratings_database_of_another_set_is_refused(fx, tmp_path):
    other = make_set(tmp_path / "other", seed=5, set_id="OTHER-20260101")
    db = write_db(tmp_path / "ratings.sqlite", other, rate_all(other, "derm1"))
    with pytest.raises(ScoreError, match="holds ratings of set\\(s\\) OTHER-20260101, but the rater "
                                         "folder is set 'TEST-20260101'"):
        unblind(fx.rater_dir, fx.key_dir, db=db, allow_unlocked=True)


def test_a_rated_code_not_in_the_key_is_refused_with_its_line(fx, tmp_path):
    rows = all_rated(fx) + [{"rater": "derm1", "code": "XXX-XXXX", "score": 3}]
    with pytest.raises(ScoreError, match=r"ratings.csv: line 20: code\(s\) XXX-XXXX are not in the "
                                         "key; .* correct the ratings file, never the key"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, rows))


def test_a_code_outside_the_raters_own_worklist_is_refused(fx, tmp_path):
    # derm2's worklist loses one item (set.json follows): derm2 rating it is refused.
    path = fx.rater_dir / "worklists" / "derm2.json"
    wl = json.loads(path.read_text())
    dropped = wl["items"].pop()["item"]
    path.write_text(json.dumps(wl))
    meta = json.loads((fx.rater_dir / "set.json").read_text())
    meta["raters"]["derm2"]["items"] -= 1
    (fx.rater_dir / "set.json").write_text(json.dumps(meta))
    with pytest.raises(ScoreError, match=f"not in the rater's own worklist: derm2:{dropped}"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, all_rated(fx)))


def test_a_rater_without_a_worklist_is_refused(fx, tmp_path):
    rows = all_rated(fx) + [{"rater": "derm9", "code": fx.items["derm1"][0], "score": 3}]
    with pytest.raises(ScoreError, match=r"rater\(s\) derm9 have no worklist in this set"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, rows))


def test_a_score_that_is_not_a_level_of_the_scale_is_refused(fx, tmp_path):
    rows = all_rated(fx)
    rows[0]["score"] = 7
    with pytest.raises(ScoreError, match=r"score\(s\) 7 are not levels of Wrinkle Severity Rating "
                                         r"Scale \(1, 2, 3, 4, 5\)"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, rows))


def test_an_unlocked_worklist_is_refused_without_allow_unlocked(fx, tmp_path):
    db = write_db(tmp_path / "ratings.sqlite", fx, all_rated(fx), lock=["derm1"])
    with pytest.raises(ScoreError, match=r"worklist\(s\) of derm2 are not locked .* or pass "
                                         "--allow-unlocked"):
        unblind(fx.rater_dir, fx.key_dir, db=db)


def _tampered(fx, tmp_path):
    """Both worklists locked, then one score changed with the guard trigger dropped."""
    import sqlite3
    from contextlib import closing

    db = write_db(tmp_path / "ratings.sqlite", fx, all_rated(fx), lock=["derm1", "derm2"])
    with closing(sqlite3.connect(db)) as conn:
        item = conn.execute("SELECT item FROM events WHERE id = 2").fetchone()[0]
        conn.executescript("DROP TRIGGER events_append_only_update; "
                           "UPDATE events SET score = score % 5 + 1 WHERE id = 2;")
    return db, item


@pytest.mark.parametrize("second_process", [True, False])
def test_a_database_changed_outside_assess_is_refused_naming_rater_item_and_event(
        fx, tmp_path, monkeypatch, second_process):
    import sys

    db, item = _tampered(fx, tmp_path)
    if not second_process:  # the check is then made in this process, with the same outcome
        monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(ScoreError) as caught:
        analyse(fx.rater_dir, fx.key_dir, db=db)
    message = str(caught.value)
    assert "the ratings fail their integrity check" in message
    assert f"derm1, item {item}, event 2: its content no longer matches its hash" in message
    assert "guard trigger events_append_only_update is missing" in message


def test_the_verified_chain_heads_are_in_the_counts_and_the_report(fx, tmp_path):
    from assess import store
    from assess.chain import short

    db = write_db(tmp_path / "ratings.sqlite", fx, all_rated(fx), lock=["derm1", "derm2"])
    result = score(fx.rater_dir, fx.key_dir, tmp_path / "out", db=db)
    heads = {rater: wl.head for (_, rater), wl in store.verify(db).worklists.items()}
    chains = result.analysis.unblinded.counts["chains"]
    assert {rater: c["head"] for rater, c in chains.items()} == heads
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert all(f"<code>{short(h)}</code>" in html for h in heads.values())


def test_a_participant_without_an_arm_is_refused(fx, tmp_path):
    parts = tmp_path / "participants.csv"
    parts.write_text("participant,arm\nP01,A\nP02,B\nP03,A\n")
    with pytest.raises(ScoreError, match=r"participant\(s\) P04 of the key have no arm"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, all_rated(fx)),
                participants=parts)


def test_a_participant_listed_twice_is_refused(fx, tmp_path):
    parts = tmp_path / "participants.csv"
    parts.write_text("participant,arm\nP01,A\nP01,B\nP02,A\nP03,A\nP04,B\n")
    with pytest.raises(ScoreError, match=r"participant\(s\) P01 listed more than once"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, all_rated(fx)),
                participants=parts)


def test_the_same_rating_twice_in_a_ratings_file_is_refused(fx, tmp_path):
    rows = all_rated(fx)
    rows.append(dict(rows[0]))
    with pytest.raises(ScoreError, match="line 2, 20: the same rater rated the same code more "
                                         "than once"):
        unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, rows))


def test_a_ratings_file_with_an_unknown_column_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("rater,code,scroe\nderm1,ABC-DEFG,3\n")
    with pytest.raises(ScoreError, match=r"unknown column\(s\) scroe"):
        read_ratings_csv(path)


def test_a_ratings_file_without_rater_and_code_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("code,score\nABC-DEFG,3\n")
    with pytest.raises(ScoreError, match=r"column rater missing"):
        read_ratings_csv(path)


def test_a_rating_and_cannot_assess_together_are_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("rater,code,score,cannot_assess\nderm1,ABC-DEFG,3,framing\n")
    with pytest.raises(ScoreError, match="line 2: a photo that cannot be assessed has no score"):
        read_ratings_csv(path)


def test_a_row_without_any_answer_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("rater,code,score\nderm1,ABC-DEFG,\n")
    with pytest.raises(ScoreError, match="line 2: no rating"):
        read_ratings_csv(path)


def test_a_non_numeric_score_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("rater,code,score\nderm1,ABC-DEFG,moderate\n")
    with pytest.raises(ScoreError, match="line 2: score must be a number"):
        read_ratings_csv(path)


def test_ratings_from_both_a_database_and_a_file_are_refused(fx, tmp_path):
    with pytest.raises(ScoreError, match="both --db and --ratings were given: give the ratings "
                                         "once, as --db FILE .* or as --ratings FILE.csv"):
        unblind(fx.rater_dir, fx.key_dir, db=tmp_path / "a.sqlite", ratings=tmp_path / "b.csv")


def test_scoring_without_a_database_or_a_file_says_neither_was_given(fx):
    with pytest.raises(ScoreError, match="^neither --db nor --ratings was given"):
        unblind(fx.rater_dir, fx.key_dir)


def test_a_missing_key_folder_is_refused_naming_the_file(fx, tmp_path):
    with pytest.raises(ScoreError, match=r"key.csv: not found; --key must be the key/ folder"):
        unblind(fx.rater_dir, tmp_path / "nowhere", ratings=csv_of(tmp_path, all_rated(fx)))


def test_nothing_is_written_when_the_inputs_are_refused(fx, tmp_path):
    rows = all_rated(fx) + [{"rater": "derm1", "code": "XXX-XXXX", "score": 3}]
    out = tmp_path / "out"
    with pytest.raises(ScoreError):
        score(fx.rater_dir, fx.key_dir, out, ratings=csv_of(tmp_path, rows))
    assert not out.exists()


def test_existing_results_are_never_overwritten(fx, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("earlier results\n")
    with pytest.raises(ScoreError, match="already holds summary.csv .* give a new --out folder"):
        score(fx.rater_dir, fx.key_dir, out, ratings=csv_of(tmp_path, all_rated(fx)))
    assert (out / "summary.csv").read_text() == "earlier results\n"
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv"]


def test_a_complete_run_writes_every_file_and_leaves_no_temporary_folder(fx, tmp_path):
    out = tmp_path / "out"
    score(fx.rater_dir, fx.key_dir, out, ratings=csv_of(tmp_path, all_rated(fx)))
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)


# ------------------------------------------------------------------------------ warnings


def finding(u, kind):
    found = [f for f in u.findings if f.kind == kind]
    assert len(found) == 1, [f.kind for f in u.findings]
    return found[0]


def test_unrated_items_are_warned_and_listed_per_rater(fx, tmp_path):
    skip = fx.items["derm2"][:2]
    rows = rate_all(fx, "derm1") + rate_all(fx, "derm2", skip=skip)
    u = unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, rows))
    f = finding(u, "unrated")
    assert f.message == "2 item(s) not rated (derm2 2)"
    assert f.items == tuple(f"derm2:{c}" for c in skip)


def test_unlocked_worklists_are_warned_when_allowed(fx, tmp_path):
    db = write_db(tmp_path / "ratings.sqlite", fx, all_rated(fx), lock=["derm1"])
    u = unblind(fx.rater_dir, fx.key_dir, db=db, allow_unlocked=True)
    f = finding(u, "unlocked")
    assert f.items == ("derm2",)
    assert "interim" in f.message


def test_locked_worklists_from_the_database_give_no_warning(fx, tmp_path):
    db = write_db(tmp_path / "ratings.sqlite", fx, all_rated(fx), lock=["derm1", "derm2"])
    u = unblind(fx.rater_dir, fx.key_dir, db=db)
    assert u.findings == []
    assert set(u.counts["locks"]) == {"derm1", "derm2"}


def test_a_participant_with_a_missing_timepoint_is_excluded_and_counted(tmp_path):
    fx = make_set(tmp_path / "sets", participants=("P01", "P02", "P03"),
                  missing=[("P02", "month12", "face")])
    rows = rate_all(fx, "derm1", score=lambda slot: 4 if slot[1] == "baseline" else 2)
    out = score(fx.rater_dir, fx.key_dir, tmp_path / "out", ratings=csv_of(tmp_path, rows))
    f = finding(out.analysis.unblinded, "missing_timepoint")
    assert f.items == ("P02 face derm1: no usable month12 rating",)
    row = out.analysis.summary.iloc[0]
    assert (row["n_pairs"], row["n_excluded"]) == (2, 1)
    assert "P02 face derm1: no usable month12 rating" in (tmp_path / "out" / "report.html").read_text()


def test_cannot_assess_ratings_are_excluded_with_their_reasons_counted(fx, tmp_path):
    rows = all_rated(fx)
    targets = [r for r in rows if r["rater"] == "derm1"][:3]
    for r, reason in zip(targets, ("out_of_focus", "framing", "framing")):
        r["score"], r["cannot_assess"] = "", reason
    u = unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, rows))
    f = finding(u, "cannot_assess")
    assert f.message == "3 rating(s) 'cannot assess' excluded (framing 2, out_of_focus 1)"
    assert u.long["cannot_assess"].sum() == 3


def test_cannot_assess_yes_takes_its_reason_from_the_reason_column(fx, tmp_path):
    rows = all_rated(fx)
    rows[0].update(score="", cannot_assess="yes", reason="glare on the skin")
    u = unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, rows))
    assert u.long.loc[u.long["cannot_assess"], "reason"].tolist() == ["glare on the skin"]


def test_revised_ratings_in_the_database_are_reported_and_the_latest_is_used(fx, tmp_path):
    rows = all_rated(fx)
    first = rows[0]
    db = write_db(tmp_path / "ratings.sqlite", fx, rows + [{**first, "score": 5}],
                  lock=["derm1", "derm2"])
    u = unblind(fx.rater_dir, fx.key_dir, db=db)
    f = finding(u, "revised")
    assert f.items == (f"{first['rater']}:{first['code']}",)
    got = u.long.loc[(u.long["rater"] == first["rater"]) & (u.long["code"] == first["code"]), "score"]
    assert got.tolist() == [5]


def test_participants_without_photos_are_listed(fx, tmp_path):
    parts = tmp_path / "participants.csv"
    parts.write_text("participant,arm\nP01,A\nP02,B\nP03,A\nP04,B\nP99,A\n")
    u = unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, all_rated(fx)),
                participants=parts)
    assert finding(u, "participants").items == ("P99",)


# ------------------------------------------------------------------------------ the join


def test_disguised_repeats_are_flagged_and_left_out_of_the_primary_analysis(fx, tmp_path):
    repeat = next(iter(fx.repeats))
    rows = [dict(r, score=1) if r["code"] == repeat else r for r in all_rated(fx)]
    for r in rows:
        if r["code"] != repeat:
            r["score"] = 4 if slot_of(fx, r["code"])[1] == "baseline" else 3
    u = unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, rows))
    reps = u.long[u.long["repeat"]]
    assert sorted(reps["code"]) == [repeat, repeat]
    assert set(reps["first_showing"]) == {fx.repeats[repeat]}
    summary = analyse(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, rows, "r2.csv")).summary
    within = summary[summary["analysis"] == "within arm"]
    assert within["baseline_median"].tolist() == [4.0, 4.0]  # the repeat's 1 is not counted


def test_the_long_table_names_participant_timepoint_region_and_rater_of_each_rating(fx, tmp_path):
    u = unblind(fx.rater_dir, fx.key_dir, ratings=csv_of(tmp_path, all_rated(fx)))
    code = fx.code("P03", "month12", "face")
    row = u.long[(u.long["code"] == code) & (u.long["rater"] == "derm2")].iloc[0]
    assert (row["participant"], row["timepoint"], row["region"], row["scale"], row["arm"]) == \
        ("P03", "month12", "face", "wsrs", "all")
    assert len(u.long) == 2 * 9


def test_the_timepoint_order_is_read_from_the_keys_row_order():
    key = pd.DataFrame({"participant": ["P1"] * 3 + ["P2"] * 2, "region": ["face"] * 5,
                        "view": [""] * 5, "pair": [""] * 5, "repeat_of": [""] * 5,
                        "timepoint": ["pre", "month12", "month24", "pre", "month24"]})
    assert timepoints_from_key(key) == ("pre", "month12", "month24")


def test_a_key_with_contradicting_row_orders_gives_no_timepoint_order():
    key = pd.DataFrame({"participant": ["P1", "P1", "P2", "P2"], "region": ["face"] * 4,
                        "view": [""] * 4, "pair": [""] * 4, "repeat_of": [""] * 4,
                        "timepoint": ["a", "b", "b", "a"]})
    assert timepoints_from_key(key) is None


def test_a_key_not_grouped_by_participant_gives_no_timepoint_order():
    key = pd.DataFrame({"participant": ["P1", "P2", "P2", "P1"], "region": ["face"] * 4,
                        "view": [""] * 4, "pair": [""] * 4, "repeat_of": [""] * 4,
                        "timepoint": ["month12", "month12", "baseline", "baseline"]})
    assert timepoints_from_key(key) is None
