"""Files for the statistician: CSV, XLSX and SAV read back, and the ``assess score`` command."""

from __future__ import annotations

import csv

import openpyxl
import pandas as pd
import pyreadstat
import pytest
from click.testing import CliRunner

from assess import store
from assess.cli import cli
from assess.score import OUTPUTS, score
from assess.score.export import spss_name, write_xlsx
from score_fixtures import make_set, rate_all, write_db, write_ratings

COLS = ("rater", "code", "score", "cannot_assess", "comment")


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A scored set: 2 arms, face (WSRS) and hands (Merz), 2 raters, a formula-like comment."""
    tmp = tmp_path_factory.mktemp("scored")
    ps = ["P01", "P02", "P03", "P04", "P05", "P06"]
    fx = make_set(tmp / "sets", participants=ps, regions={"face": "wsrs", "hands": "merz-hand"},
                  raters=("derm1", "derm2"), repeat=[("P01", "baseline", "face")])
    base = dict(zip(ps, [4, 3, 4, 4, 3, 2]))
    rows = (rate_all(fx, "derm1", lambda s: base[s[0]] - (s[1] == "month12") * (s[2] == "face"))
            + rate_all(fx, "derm2", lambda s: base[s[0]] - (s[1] == "month12")))
    rows[0]["comment"] = "=HYPERLINK(\"http://x\",\"y\")"
    rows[1]["comment"] = "+1 fine"
    ratings = write_ratings(tmp / "ratings.csv", rows, COLS)
    parts = tmp / "participants.csv"
    parts.write_text("participant,arm\n" + "".join(
        f"{p},{'UC-MSC secretome' if i % 2 else 'UC-explant secretome'}\n" for i, p in enumerate(ps)))
    result = score(fx.rater_dir, fx.key_dir, tmp / "out", ratings=ratings, participants=parts)
    return fx, result, rows


def test_the_long_csv_has_one_row_per_rating_with_the_unblinded_columns(scored):
    fx, result, rows = scored
    long = pd.read_csv(result.out / "ratings_long.csv", encoding="utf-8-sig")
    assert len(long) == len(rows)
    assert list(long.columns[:10]) == ["participant", "arm", "timepoint", "region", "view", "scale",
                                       "score", "rater", "repeat", "seconds"]
    assert long["repeat"].sum() == 2  # one disguised repeat, rated by both raters


def test_formula_like_text_is_neutralized_in_csv(scored):
    fx, result, rows = scored
    with (result.out / "ratings_long.csv").open(encoding="utf-8-sig") as fh:
        comments = {r["code"] + r["rater"]: r["comment"] for r in csv.DictReader(fh)}
    assert comments[rows[0]["code"] + rows[0]["rater"]] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert comments[rows[1]["code"] + rows[1]["rater"]] == "'+1 fine"


def test_negative_changes_stay_numbers_in_csv(scored):
    fx, result, rows = scored
    summary = pd.read_csv(result.out / "summary.csv", encoding="utf-8-sig")
    within = summary[(summary["analysis"] == "within arm") & (summary["region"] == "face")]
    assert len(within) == 4 and within["mean_change"].dtype.kind == "f"
    assert (within["mean_change"] < 0).all()


def test_the_workbook_has_one_sheet_per_table_with_neutralized_text_and_numeric_numbers(scored):
    fx, result, rows = scored
    wb = openpyxl.load_workbook(result.out / "ratings.xlsx", read_only=True)
    assert wb.sheetnames == ["ratings", "wide", "summary", "reliability", "distribution",
                             "panel", "panel_scores", "dictionary"]  # two raters: a panel
    sheet = list(wb["ratings"].values)
    header, body = sheet[0], sheet[1:]
    assert len(body) == len(rows)
    comment = [r[header.index("comment")] for r in body if r[header.index("comment")]]
    assert sorted(comment) == ["'+1 fine", "'=HYPERLINK(\"http://x\",\"y\")"]
    summary = list(wb["summary"].values)
    col, region = summary[0].index("mean_change"), summary[0].index("region")
    changes = [r[col] for r in summary[1:] if r[0] == "within arm" and r[region] == "face"]
    assert len(changes) == 4
    assert all(isinstance(v, (int, float)) and v < 0 for v in changes)


def test_the_workbook_shows_rounded_numbers_and_keeps_their_full_precision(scored):
    fx, result, rows = scored
    summary = pd.read_csv(result.out / "summary.csv", encoding="utf-8-sig")
    sheet = openpyxl.load_workbook(result.out / "ratings.xlsx")["summary"]
    header = [c.value for c in sheet[1]]
    first = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == "within arm")
    cells = dict(zip(header, first))
    row = summary[summary["analysis"] == "within arm"].iloc[0]
    assert cells["z"].value == row["z"] and cells["p"].value == row["p"]  # every digit kept
    assert (cells["z"].number_format, cells["p"].number_format) == ("0.000", "0.0000")
    assert cells["responder_ci_low"].number_format == "0.000"
    assert cells["n_pairs"].number_format == "General"
    assert cells["test"].value == "Wilcoxon signed-rank"


def test_the_workbook_has_a_wide_sheet_and_a_dictionary_of_every_column(scored):
    fx, result, rows = scored
    wb = openpyxl.load_workbook(result.out / "ratings.xlsx", read_only=True)
    wide = list(wb["wide"].values)
    sav = pyreadstat.read_sav(result.out / "ratings.sav")[0]
    assert list(wide[0]) == list(sav.columns) and len(wide) - 1 == len(sav)
    dictionary = list(wb["dictionary"].values)
    described = {(s, c): d for s, c, d in dictionary[1:]}
    for name in wb.sheetnames[:-1]:
        header = next(wb[name].values)
        missing = [c for c in header if not described.get((name, c))]
        assert not missing, (name, missing)
    assert "follow-up minus baseline" in described[("summary", "mean_change")]
    assert described[("wide", "face_wsrs_baseline_derm1")] == \
        "face: Wrinkle Severity Rating Scale, baseline, rater derm1"


def test_the_workbook_round_trips_values_and_blanks():
    df = pd.DataFrame({"text": ["a & <b>", " padded ", None, "=1+1"], "n": [1.5, None, -2.0, 3.0],
                       "flag": [True, False, True, False]})
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "t.xlsx"
    write_xlsx({"t": df, "empty": df.iloc[:0]}, path)
    wb = openpyxl.load_workbook(path)
    assert list(wb["t"].values) == [("text", "n", "flag"), ("a & <b>", 1.5, 1), (" padded ", None, 0),
                                    (None, -2, 1), ("'=1+1", 3, 0)]
    assert wb["t"].dimensions == "A1:C5" and wb["t"].freeze_panes == "A2"
    assert list(wb["empty"].values) == [("text", "n", "flag")]


def test_the_spss_file_has_one_row_per_participant_with_named_variables(scored):
    fx, result, rows = scored
    df, meta = pyreadstat.read_sav(result.out / "ratings.sav")
    assert len(df) == 6
    assert {"participant", "arm", "face_wsrs_baseline_derm1", "face_wsrs_month12_derm2",
            "hands_merz_hand_baseline_derm1"} <= set(df.columns)


def test_the_spss_file_keeps_value_labels_from_the_scale_descriptors(scored):
    fx, result, rows = scored
    df, meta = pyreadstat.read_sav(result.out / "ratings.sav")
    labels = meta.variable_value_labels["face_wsrs_baseline_derm1"]
    assert {k: v for k, v in labels.items() if k < 90} == {
        1.0: "Absent", 2.0: "Mild", 3.0: "Moderate", 4.0: "Severe", 5.0: "Extreme"}
    assert labels[91.0] == "Cannot assess: out of focus" and labels[99.0].startswith("Not photo")
    assert meta.variable_value_labels["hands_merz_hand_month12_derm1"][4.0] == "Very severe"
    assert set(meta.variable_value_labels["arm"].values()) == {"UC-MSC secretome",
                                                               "UC-explant secretome"}


def test_the_spss_file_keeps_variable_labels_and_measures(scored):
    fx, result, rows = scored
    df, meta = pyreadstat.read_sav(result.out / "ratings.sav")
    labels = meta.column_names_to_labels
    assert labels["face_wsrs_month12_derm2"] == \
        "face: Wrinkle Severity Rating Scale, month12, rater derm2"
    assert meta.variable_measure["face_wsrs_baseline_derm1"] == "ordinal"


def test_the_spss_values_are_the_first_showings(scored):
    fx, result, rows = scored
    df, meta = pyreadstat.read_sav(result.out / "ratings.sav")
    p01 = df[df["participant"] == "P01"].iloc[0]
    assert (p01["face_wsrs_baseline_derm1"], p01["face_wsrs_month12_derm1"]) == (4, 3)
    assert p01["hands_merz_hand_month12_derm1"] == 4


@pytest.mark.parametrize("name, expected", [
    ("face_wsrs_month12", "face_wsrs_month12"),
    ("hands_merz-hand_baseline", "hands_merz_hand_baseline"),
    ("12-week", "v12_week"),
    ("BY", "BY_"),
    ("x" * 80, "x" * 64),
])
def test_spss_variable_names_follow_the_spss_rules(name, expected):
    assert spss_name(name) == expected


def test_spss_names_stay_unique_within_64_bytes():
    long = "a" * 70
    first = spss_name(long)
    second = spss_name(long, {first})
    assert second != first and len(second.encode()) <= 64


# ------------------------------------------------------------------------------ CLI


def test_the_score_command_prints_the_checks_the_warnings_and_the_files(tmp_path):
    fx = make_set(tmp_path / "sets", participants=("P01", "P02", "P03"), raters=("derm1", "derm2"))
    skip = fx.items["derm2"][:1]
    db = write_db(tmp_path / "ratings.sqlite", fx,
                  rate_all(fx, "derm1") + rate_all(fx, "derm2", skip=skip), lock=["derm1"])
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, [
        "score", "--rater-dir", str(fx.rater_dir), "--key", str(fx.key_dir), "--db", str(db),
        "--out", str(out), "--allow-unlocked"])
    assert result.exit_code == 0, result.output
    missing = [f for f in ("P01", "P02", "P03") if fx.code(f, "baseline", "face") == skip[0]
               or fx.code(f, "month12", "face") == skip[0]][0]
    tp = "baseline" if fx.code(missing, "baseline", "face") == skip[0] else "month12"
    heads = {rater: wl.head for (_, rater), wl in store.verify(db).worklists.items()}
    assert result.stdout == (
        "Seal: key.csv only (a set made before the seal)\n"
        f"Warning: {fx.key_dir}: the set was made before sets were sealed: only key.csv is checked "
        "(against key_sha256 in set.json); study.toml, access.csv, seed.txt and the rater "
        "folder's files are not\n"
        "Checked: key.csv matches the seal in set.json; 11 ratings by 2 rater(s) of 3 participants "
        "in 1 arm(s) unblinded.\n"
        "Checked: every rater's hash chain is whole and the guard triggers are in place; chain "
        f"heads: derm1 {heads['derm1'][:12]} (signed), derm2 {heads['derm2'][:12]}.\n"
        "Timepoints: baseline → month12 (order from their names: a baseline name first, the rest "
        "in natural order).\n"
        "Warning: worklists not locked (interim analysis: ratings may still change): derm2\n"
        f"Warning: 1 item(s) not rated (derm2 1): derm2:{skip[0]}\n"
        "Warning: 1 participant × region × rater series lack a timepoint and are left out of the "
        f"paired tests: {missing} face derm2: no usable {tp} rating\n"
        f"Wrote {out}: {', '.join(OUTPUTS)}\n")


def test_the_score_command_refuses_a_changed_key_with_one_line_and_status_1(tmp_path):
    fx = make_set(tmp_path / "sets")
    ratings = write_ratings(tmp_path / "r.csv", rate_all(fx, "derm1"))
    key = fx.key_dir / "key.csv"
    key.write_text(key.read_text().replace("P01", "P07"))
    result = CliRunner().invoke(cli, [
        "score", "--rater-dir", str(fx.rater_dir), "--key", str(fx.key_dir), "--ratings",
        str(ratings), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Scoring\nError: {key}: its sha256 ")
    assert result.stderr.endswith("Restore the original key.csv from the coordinator's backup; do "
                                  "not edit it\n")
    assert not (tmp_path / "out").exists()


def test_the_score_command_help_ends_with_an_example():
    result = CliRunner().invoke(cli, ["score", "--help"])
    assert "Example:\n\n      assess score --rater-dir" in result.output


def test_a_table_longer_than_one_block_is_written_whole_and_in_order(tmp_path, monkeypatch):
    from assess.score import export

    monkeypatch.setattr(export, "CHUNK", 3)
    df = pd.DataFrame({"code": [f"C{i}" for i in range(8)], "score": list(range(8)),
                       "comment": ["=x" if i == 4 else None for i in range(8)]})
    export.write_csv(df, tmp_path / "t.csv")
    write_xlsx({"t": df}, tmp_path / "t.xlsx")
    with open(tmp_path / "t.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    expected = [["code", "score", "comment"]] + [
        [f"C{i}", str(i), "'=x" if i == 4 else ""] for i in range(8)]
    assert rows == expected
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx")["t"]
    assert [[("" if v is None else str(v)) for v in row] for row in sheet.values] == expected
    assert sheet.dimensions == "A1:C9"


def test_the_score_command_reads_the_rating_apps_default_database_into_a_fresh_folder(
        tmp_path, monkeypatch):
    fx = make_set(tmp_path / "sets", participants=("P01", "P02", "P03"))
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "results" / fx.set_id / "ratings.sqlite"
    db.parent.mkdir(parents=True)
    write_db(db, fx, rate_all(fx, "derm1"), lock=["derm1"])
    args = ["score", "--rater-dir", str(fx.rater_dir), "--key", str(fx.key_dir)]
    first = CliRunner().invoke(cli, args)
    second = CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    folders = sorted((tmp_path / "results" / fx.set_id).glob("scores-*"))
    assert len(folders) == 2  # a second run never lands in the first one's folder
    for folder in folders:
        assert (folder / "report.html").is_file()
        assert f"Wrote results/{fx.set_id}/{folder.name}: " in first.stdout + second.stdout


def test_the_score_command_without_db_or_ratings_says_exactly_that(tmp_path, monkeypatch):
    fx = make_set(tmp_path / "sets")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["score", "--rater-dir", str(fx.rater_dir), "--key",
                                      str(fx.key_dir)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: neither --db nor --ratings was given, and the rating app's database "
        f"results/{fx.set_id}/ratings.sqlite (the default) does not exist; give --db FILE or "
        "--ratings FILE.csv\n")
    assert not (tmp_path / "results").exists()
