"""Scoring a panel: the consensus is the primary analysis, adjudication replaces a disputed
score (the panel's own scores kept), and the panel's agreement is reported."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest

from assess import panel as rules
from assess.score import analyse, score
from assess.score import panel as sp
from assess.score import reliability as rel
from score_fixtures import make_set, rate_all, write_ratings

BEFORE = [3, 4, 3, 2, 4, 3, 5, 3, 2, 4, 3, 3, 4, 2, 3, 4, 3, 5, 4]
AFTER = [2, 3, 3, 3, 2, 2, 4, 3, 2, 3, 2, 3, 3, 2, 2, 3, 3, 3, 3]
PEOPLE = [f"P{i:02d}" for i in range(1, 20)]
TRUTH = {(p, t): v for p, b, a in zip(PEOPLE, BEFORE, AFTER)
         for t, v in (("baseline", b), ("month12", a))}
DISPUTED = ("P05", "month12")  # derm3 scores it 4, two grades above the others' 2


def derm3(slot):
    if slot[:2] == DISPUTED:
        return 4
    return min(TRUTH[slot[:2]] + 1, 5) if slot[0] in ("P01", "P02", "P03") else TRUTH[slot[:2]]


def with_rules(fx, section: dict) -> None:
    meta_path = fx.rater_dir / "set.json"
    meta = json.loads(meta_path.read_text())
    meta["panel"] = rules.rules_json(rules.parse_rules(section))
    meta_path.write_text(json.dumps(meta))


@pytest.fixture
def panel_set(tmp_path):
    fx = make_set(tmp_path / "sets", participants=PEOPLE, raters=("derm1", "derm2", "derm3"))
    with_rules(fx, {"consensus": {"rule": "median"}, "adjudication": {"adjudicator": "derm9",
                                                                      "min_difference": 2}})
    rows = (rate_all(fx, "derm1", lambda s: TRUTH[s[:2]]) + rate_all(fx, "derm2", lambda s: TRUTH[s[:2]])
            + rate_all(fx, "derm3", derm3))
    return fx, write_ratings(tmp_path / "ratings.csv", rows)


def test_the_primary_analysis_is_on_the_consensus_and_each_rater_is_a_sensitivity_row(panel_set):
    fx, ratings = panel_set
    a = analyse(fx.rater_dir, fx.key_dir, ratings=ratings)
    within = a.summary[a.summary["analysis"] == "within arm"]
    assert within["rater"].tolist()[0] == sp.CONSENSUS
    assert set(within["rater"]) == {"consensus", "derm1", "derm2", "derm3"}
    cons = within[within["rater"] == sp.CONSENSUS].iloc[0]
    # The disputed photo waits for adjudication: P05 leaves the consensus pairs.
    assert cons["n_pairs"] == 18
    keep = [i for i, p in enumerate(PEOPLE) if p != "P05"]
    change = np.subtract(AFTER, BEFORE)[keep]
    assert cons["mean_change"] == pytest.approx(change.mean())
    assert cons["note"].startswith("primary analysis: panel median")
    assert within[within["rater"] == "derm1"].iloc[0]["n_pairs"] == 19


def test_a_photo_whose_panel_differs_by_two_grades_goes_to_adjudication_and_no_other(panel_set):
    fx, ratings = panel_set
    scores = analyse(fx.rater_dir, fx.key_dir, ratings=ratings).panel_scores
    sent = scores[scores["adjudicate"]]
    assert sent["item"].tolist() == [fx.code("P05", "month12", "face")]
    assert sent.iloc[0]["reasons"] == "scores differ by 2 grades (2 to 4)"
    assert sent.iloc[0]["source"] == "pending adjudication" and np.isnan(sent.iloc[0]["final"])
    assert len(sp.adjudication_queue(scores)) == 1


def test_the_adjudicated_score_is_final_and_the_panel_scores_are_kept(panel_set):
    fx, ratings = panel_set
    a = analyse(fx.rater_dir, fx.key_dir, ratings=ratings)
    code = fx.code("P05", "month12", "face")
    adj = pd.DataFrame({"item": [code], "score": [3], "reason": ["fold visible at rest"]})
    scores = sp.panel_scores(a.unblinded, adjudications=adj)
    row = scores[scores["item"] == code].iloc[0]
    assert (row["scores"], row["consensus"], row["final"], row["source"]) == ("2; 2; 4", 2.0, 3.0,
                                                                              "adjudicated")
    assert row["adjudication_reason"] == "fold visible at rest"
    assert sp.adjudication_queue(scores).empty
    cons = sp.consensus_long(a.unblinded, scores)
    assert len(cons) == 38 and set(cons["rater"]) == {"consensus"}
    assert float(cons.loc[cons["code"] == code, "score"].iloc[0]) == 3.0


def test_each_raters_bias_against_the_consensus_is_reported_with_its_interval(panel_set):
    fx, ratings = panel_set
    table = analyse(fx.rater_dir, fx.key_dir, ratings=ratings).panel
    bias = table[table["analysis"] == "bias against consensus"].set_index("rater")
    assert bias.loc["derm1", "value"] == 0 and bias.loc["derm1", "n"] == 37
    # derm3 is one grade high on P01-P03 (6 photos, one of them clipped at 5 already: P01..P03
    # baselines 3, 4, 3 and follow-ups 2, 3, 3 all move up by one).
    assert bias.loc["derm3", "value"] == pytest.approx(6 / 37)
    assert bias.loc["derm3", "ci_low"] < 6 / 37 < bias.loc["derm3", "ci_high"]


def test_fleiss_kappa_and_the_average_iccs_are_those_of_the_panels_table(panel_set):
    fx, ratings = panel_set
    a = analyse(fx.rater_dir, fx.key_dir, ratings=ratings)
    wide = np.array([[TRUTH[s], TRUTH[s], derm3(s)] for s in TRUTH], dtype=float)
    table = a.panel.set_index("analysis")
    assert table.loc["Fleiss' kappa", "value"] == pytest.approx(
        rel.fleiss_kappa(rel.category_counts(wide, [1, 2, 3, 4, 5])).kappa)
    assert table.loc["ICC(2,k)", "value"] == pytest.approx(rel.icc(wide, "ICC(2,k)").icc)
    assert table.loc["ICC(3,k)", "value"] == pytest.approx(rel.icc(wide, "ICC(3,k)").icc)
    assert table.loc["adjudication rate", "value"] == pytest.approx(1 / 38)


def test_without_a_consensus_rule_each_rater_stays_the_analysis(tmp_path):
    fx = make_set(tmp_path / "sets", participants=PEOPLE, raters=("derm1", "derm2"))
    rows = rate_all(fx, "derm1", lambda s: TRUTH[s[:2]]) + rate_all(fx, "derm2", lambda s: TRUTH[s[:2]])
    a = analyse(fx.rater_dir, fx.key_dir, ratings=write_ratings(tmp_path / "r.csv", rows))
    assert sp.CONSENSUS not in set(a.summary["rater"])
    assert not a.panel_scores["adjudicate"].any()
    assert a.panel.set_index("analysis").loc["Fleiss' kappa", "value"] == 1.0


def test_majority_rule_without_a_majority_waits_for_the_adjudicator(tmp_path):
    fx = make_set(tmp_path / "sets", participants=PEOPLE[:3], raters=("derm1", "derm2", "derm3"))
    with_rules(fx, {"consensus": {"rule": "majority"}, "adjudication": {"min_difference": 3}})
    code = fx.code("P01", "baseline", "face")
    rows = [*rate_all(fx, "derm1", lambda s: 2), *rate_all(fx, "derm2", lambda s: 3),
            *rate_all(fx, "derm3", lambda s: 3 if s[:2] != ("P01", "baseline") else 4)]
    scores = analyse(fx.rater_dir, fx.key_dir,
                     ratings=write_ratings(tmp_path / "r.csv", rows)).panel_scores
    row = scores.set_index("item").loc[code]
    assert row["reasons"] == "no majority among the panel" and row["source"] == "pending adjudication"
    assert (scores["final"].dropna() == 3).all()


def test_score_writes_the_panel_tables(panel_set, tmp_path):
    fx, ratings = panel_set
    result = score(fx.rater_dir, fx.key_dir, ratings=ratings, out=tmp_path / "out")
    panel_csv = pd.read_csv(result.out / "panel.csv", encoding="utf-8-sig")
    assert "Fleiss' kappa" in set(panel_csv["analysis"])
    items = pd.read_csv(result.out / "panel_scores.csv", encoding="utf-8-sig")
    assert items["adjudicate"].sum() == 1 and len(items) == 38


def test_the_workbook_holds_the_panel_tables_with_the_values_of_the_csv_files(panel_set, tmp_path):
    fx, ratings = panel_set
    result = score(fx.rater_dir, fx.key_dir, ratings=ratings, out=tmp_path / "out")
    for name in ("panel", "panel_scores"):
        csv = pd.read_csv(result.out / f"{name}.csv", encoding="utf-8-sig")
        sheet = pd.read_excel(result.out / "ratings.xlsx", sheet_name=name, engine="openpyxl")
        assert len(csv) > 0 and list(sheet.columns) == list(csv.columns)
        pd.testing.assert_frame_equal(sheet, csv, check_dtype=False)
    sheet = pd.read_excel(result.out / "ratings.xlsx", sheet_name="panel_scores", engine="openpyxl")
    sent = sheet[sheet["adjudicate"] == 1]
    assert sent["item"].tolist() == [fx.code("P05", "month12", "face")]
    assert sent["scores"].tolist() == ["2; 2; 4"]
    words = pd.read_excel(result.out / "ratings.xlsx", sheet_name="dictionary", engine="openpyxl")
    described = words[words["sheet"] == "panel_scores"].set_index("column")["description"]
    assert described["scores"].startswith("The panel's scores, ascending")


def test_the_report_has_a_panel_section_with_the_published_reliability_beside(panel_set, tmp_path):
    fx, ratings = panel_set
    result = score(fx.rater_dir, fx.key_dir, ratings=ratings, out=tmp_path / "out")
    text = html.unescape((result.out / "report.html").read_text(encoding="utf-8"))
    section = text.split("<h2>Panel</h2>", 1)[1]
    assert "panel's <b>median</b> score" in section
    assert "Fleiss' kappa" in section and "ICC(2,k)" in section and "ICC(3,k)" in section
    assert "Day DJ et al." in section
    assert "Adjudicated photos (1)" in section and fx.code("P05", "month12", "face") in section
    assert "derm1" not in section.split("Adjudicated photos")[1].split("</table>")[0]


def test_a_single_timepoint_set_gives_reliability_and_level_counts_instead_of_a_refusal(tmp_path):
    fx = make_set(tmp_path / "sets", participants=PEOPLE[:6], timepoints=("baseline",),
                  raters=("derm1", "derm2", "derm3"))
    rows = (rate_all(fx, "derm1", lambda s: TRUTH[s[:2]]) + rate_all(fx, "derm2", lambda s: TRUTH[s[:2]])
            + rate_all(fx, "derm3", derm3))
    ratings = write_ratings(tmp_path / "r.csv", rows)
    result = score(fx.rater_dir, fx.key_dir, ratings=ratings, out=tmp_path / "out")
    a = result.analysis
    assert a.summary.empty
    assert [f.kind for f in a.findings] == ["single_timepoint"]
    inter = a.reliability.set_index("analysis").loc["inter-rater"]
    assert inter["n"] == 6 and not np.isnan(inter["icc"])
    assert set(a.distribution["timepoint"]) == {"baseline"}
    assert a.distribution.groupby("rater")["n"].sum().to_dict() == {"derm1": 6, "derm2": 6,
                                                                    "derm3": 6}
    assert "Fleiss' kappa" in set(a.panel["analysis"])
    assert "there is no change to test" in (result.out / "report.html").read_text(encoding="utf-8")
