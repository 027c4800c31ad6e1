"""Files for other packages: SPSS user-missing codes, change variables, the long file, and
Stata, SAS transport, SDTM and define.xml read back by their own readers."""

from __future__ import annotations

import pandas as pd
import pyreadstat
import pytest

from assess.score import score
from score_fixtures import make_set, rate_all, write_ratings

COLS = ("rater", "code", "score", "cannot_assess", "comment")


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Face (WSRS, lower is better) of 6 participants and 1 rater: P06 has no baseline photo,
    P05's follow-up is not rated, P04's baseline is out of focus, P03's follow-up badly lit."""
    tmp = tmp_path_factory.mktemp("packages")
    ps = ["P01", "P02", "P03", "P04", "P05", "P06"]
    fx = make_set(tmp / "sets", participants=ps, missing=[("P06", "baseline", "face")],
                  repeat=[("P01", "baseline", "face")])
    base = dict(zip(ps, [4, 3, 4, 4, 3, 2]))
    gain = dict(zip(ps, [1, 2, 0, 1, 1, 1]))
    skip = [fx.code("P05", "month12", "face")]
    rows = rate_all(fx, "derm1", lambda s: base[s[0]] - (s[1] == "month12") * gain[s[0]],
                    skip=skip)
    for row in rows:
        if row["code"] == fx.code("P04", "baseline", "face"):
            row.update(score="", cannot_assess="out_of_focus")
        if row["code"] == fx.code("P03", "month12", "face"):
            row.update(score="", cannot_assess="lighting", comment="=too dark")
    ratings = write_ratings(tmp / "ratings.csv", rows, COLS)
    result = score(fx.rater_dir, fx.key_dir, tmp / "out", ratings=ratings, allow_unlocked=True)
    return fx, result, rows


def _by_participant(df):
    return df.set_index("participant")


def test_a_missing_rating_holds_a_user_missing_code_that_says_why(scored):
    fx, result, rows = scored
    df, meta = pyreadstat.read_sav(result.out / "ratings.sav", user_missing=True)
    df = _by_participant(df)
    assert df.loc["P04", "face_wsrs_baseline"] == 91  # cannot assess: out of focus
    assert df.loc["P03", "face_wsrs_month12"] == 93  # cannot assess: lighting
    assert df.loc["P05", "face_wsrs_month12"] == 98  # photo taken, not rated
    assert df.loc["P06", "face_wsrs_baseline"] == 99  # never photographed
    assert meta.missing_ranges["face_wsrs_baseline"] == [{"lo": 91.0, "hi": 99.0}]
    labels = meta.variable_value_labels["face_wsrs_month12"]
    assert labels[93.0] == "Cannot assess: lighting" and labels[98.0] == "Not rated (photo taken)"


def test_spss_reads_the_missing_codes_as_missing_and_the_ratings_as_values(scored):
    fx, result, rows = scored
    df = _by_participant(pyreadstat.read_sav(result.out / "ratings.sav")[0])
    assert df["face_wsrs_baseline"].isna().tolist() == [False, False, False, True, False, True]
    assert df.loc["P01", "face_wsrs_baseline"] == 4


def test_change_and_improvement_exist_only_where_both_visits_have_a_usable_rating(scored):
    fx, result, rows = scored
    df, meta = pyreadstat.read_sav(result.out / "ratings.sav")
    df = _by_participant(df)
    change, improvement = df["face_wsrs_change_month12"], df["face_wsrs_improvement_month12"]
    assert change.loc[["P01", "P02"]].tolist() == [-1, -2]  # follow-up minus baseline
    assert improvement.loc[["P01", "P02"]].tolist() == [1, 2]  # lower is better on WSRS
    assert change.loc[["P03", "P04", "P05", "P06"]].isna().all()
    assert "change month12 - baseline" in meta.column_names_to_labels["face_wsrs_change_month12"]


def test_the_change_variables_give_the_reports_mean_change(scored):
    fx, result, rows = scored
    df = pyreadstat.read_sav(result.out / "ratings.sav")[0]
    summary = pd.read_csv(result.out / "summary.csv", encoding="utf-8-sig")
    row = summary[summary["analysis"] == "within arm"].iloc[0]
    assert df["face_wsrs_change_month12"].mean() == pytest.approx(row["mean_change"])
    assert df["face_wsrs_change_month12"].count() == row["n_pairs"]


def test_the_long_spss_file_has_one_row_per_rating_with_repeats_reasons_and_revisions(scored):
    fx, result, rows = scored
    df, meta = pyreadstat.read_sav(result.out / "ratings_long.sav", user_missing=True)
    assert len(df) == len(rows)
    assert df["repeat"].sum() == 1
    ca = df[df["cannot_assess"] == 1]
    assert sorted(ca["score"].tolist()) == [91, 93]
    assert sorted(ca["reason"].tolist()) == ["lighting", "out_of_focus"]
    assert "'=too dark" in df["comment"].tolist()  # a spreadsheet never runs it
    assert set(df["revision"]) == {1}
    assert meta.variable_value_labels["timepoint"] == {1.0: "baseline", 2.0: "month12"}
    assert meta.variable_value_labels["score"][3.0] == "Moderate"
    assert meta.column_names_to_labels["seconds"] == "Seconds the photo was on screen"


# ------------------------------------------------------------------------------ Stata, SAS, SDTM


def test_the_stata_file_keeps_value_labels_and_says_why_a_rating_is_missing(scored):
    fx, result, rows = scored
    df, meta = pyreadstat.read_dta(result.out / "ratings.dta", user_missing=True)
    df = _by_participant(df)
    assert df.loc["P01", "face_wsrs_baseline"] == 4
    assert (df.loc["P04", "face_wsrs_baseline"], df.loc["P03", "face_wsrs_month12"],
            df.loc["P05", "face_wsrs_month12"], df.loc["P06", "face_wsrs_baseline"]) == \
        ("a", "c", "r", "p")
    labels = meta.variable_value_labels["face_wsrs_baseline"]
    assert labels[3] == "Moderate" and labels["p"] == "Not photographed at this visit"
    assert meta.variable_value_labels["arm"] == {1: "all"}
    assert df.loc["P02", "face_wsrs_improvement_month12"] == 2
    plain = pyreadstat.read_dta(result.out / "ratings.dta")[0]
    assert plain["face_wsrs_baseline"].isna().sum() == 2  # Stata's missing, not a number


def test_the_sas_transport_file_is_version_5_and_reads_back_every_rating(scored):
    fx, result, rows = scored
    path = result.out / "qs.xpt"
    assert path.read_bytes().startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!")
    qs, meta = pyreadstat.read_xport(path)
    assert meta.table_name == "QS" and len(qs) == len(rows)
    assert all(len(c) <= 8 for c in qs.columns)
    assert set(qs["DOMAIN"]) == {"QS"} and set(qs["QSEVAL"]) == {"INDEPENDENT ASSESSOR"}
    assert set(qs["USUBJID"]) == {f"NCT0000001-{p}" for p in ("P01", "P02", "P03", "P04", "P05",
                                                               "P06")}
    done = qs[qs["QSSTAT"] == "NOT DONE"]
    assert sorted(done["QSREASND"]) == ["LIGHTING", "OUT OF FOCUS"]
    assert done["QSSTRESN"].isna().all()
    p01 = qs[(qs["USUBJID"] == "NCT0000001-P01") & (qs["VISIT"] == "BASELINE")]
    assert sorted(p01["QSREPNUM"]) == [1, 2]  # the first showing and its disguised repeat
    assert set(p01["QSSTRESC"]) == {"4"} and set(p01["QSORRES"]) == {"SEVERE"}
    assert set(qs["QSTESTCD"]) == {"WSRSFACE"}
    assert qs.groupby("USUBJID")["QSSEQ"].apply(lambda s: list(s) == list(range(1, len(s) + 1))).all()


def test_define_xml_is_well_formed_and_describes_every_variable_of_the_dataset(scored):
    import xml.etree.ElementTree as ET

    fx, result, rows = scored
    root = ET.parse(result.out / "define.xml").getroot()
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.0"}
    assert root.tag == "{http://www.cdisc.org/ns/odm/v1.3}ODM"
    group = root.find(".//odm:ItemGroupDef", ns)
    assert group.get("Name") == "QS"
    leaf = group.find("def:leaf", ns)
    assert leaf.get("{http://www.w3.org/1999/xlink}href") == "qs.xpt"
    qs, meta = pyreadstat.read_xport(result.out / "qs.xpt")
    refs = [r.get("ItemOID") for r in group.findall("odm:ItemRef", ns)]
    assert refs == [f"IT.QS.{c}" for c in qs.columns]
    defs = {d.get("OID"): d for d in root.findall(".//odm:ItemDef", ns)}
    assert set(refs) <= set(defs)
    assert defs["IT.QS.QSSTRESN"].get("DataType") == "float"
    codes = [c.get("CodedValue") for c in root.findall(".//odm:CodeList/odm:CodeListItem", ns)]
    assert codes == ["WSRSFACE"]
