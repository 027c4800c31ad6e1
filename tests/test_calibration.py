"""Hidden calibration photos: placed at the declared rate in every live worklist, looking like the
trial's photos, kept out of the trial's analysis, and scored for each rater's drift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assess import calibration
from assess.audit import audit_report
from assess.blind import CODE_RE, randomize
from assess.rate import load_rater_set
from assess.score import analyse, score
from assess.synth import make_study

from rater_sets import add_reference_photos

SIZE = (96, 72)
REFERENCE = (1, 2, 4, 5, 3)  # the calibration photos' reference scores
CALIBRATION = "[calibration]\nrate = 0.2\nblock = 5\nmin_within_one = 0.8\n"


# ------------------------------------------------------------------------------ placing (pure)


@pytest.mark.parametrize("seed", range(20))
def test_each_block_gets_its_share_of_calibration_photos_and_none_are_neighbours(seed):
    rng = np.random.default_rng(seed)
    n, rate, block = 171, 0.1, 20
    m = calibration.count(n, rate)
    places = calibration.positions(n, m, block, rng)
    assert m == 19 and len(places) == m and len(set(places)) == m
    assert all(0 <= p < n + m for p in places)
    per_block = [sum(1 for p in places if b * block <= p < (b + 1) * block)
                 for b in range(-(-(n + m) // block))]
    assert per_block == [2] * 9 + [1]  # 190 places: nine blocks of 20, then one of 10
    assert all(b - a >= 2 for a, b in zip(places, places[1:]))


def test_the_declared_rate_is_the_share_of_the_whole_live_worklist():
    for n, rate in ((90, 0.1), (300, 0.05), (40, 0.2), (7, 0.5)):
        m = calibration.count(n, rate)
        assert abs(m / (n + m) - rate) <= 0.5 / (n + m) + 1e-9


def test_a_block_too_short_to_keep_its_calibration_photos_apart_is_refused():
    with pytest.raises(calibration.CalibrationError, match="lower \\[calibration\\] rate"):
        calibration.positions(1, 3, 4, np.random.default_rng(0))  # 3 apart in 4 places


# -------------------------------------------------------------------------------- a real set


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """4 participants x 2 visits x face (8 trial photos), two raters, five calibration photos."""
    synth = make_study(tmp_path_factory.mktemp("raw") / "images", participants=4,
                       regions={"face": "wsrs"}, size=SIZE, repeat_fraction=0,
                       raters=("derm1", "derm2"), heic_fraction=0, rotated_fraction=0)
    add_reference_photos(synth.study_path, "face", REFERENCE, SIZE, use="calibration")
    with open(synth.study_path, "a", encoding="utf-8") as fh:
        fh.write("\n" + CALIBRATION)
    return synth


@pytest.fixture(scope="module")
def built(study, tmp_path_factory):
    return randomize(study.study_path, study.root, tmp_path_factory.mktemp("sets"), set_id="cal1",
                     seed=717171717171717, workers=1)


def cal_key(built) -> list[dict]:
    return calibration.read_key(built.key_dir)


def worklist(built, rater) -> list[dict]:
    return json.loads((built.rater_dir / "worklists" / f"{rater}.json").read_text())["items"]


def test_every_live_worklist_holds_the_calibration_photos_at_the_declared_rate(built):
    rows = cal_key(built)
    m = calibration.count(8, 0.2)
    assert m == 2 and built.counts["calibration"] == m
    codes = {r["code"] for r in rows}
    assert len(codes) == m
    for rater in ("derm1", "derm2"):
        items = worklist(built, rater)
        assert len(items) == 8 + m
        mine = sorted(r["position"] for r in rows if r["rater"] == rater)
        assert [items[p - 1]["item"] for p in mine] == [
            r["code"] for r in sorted((r for r in rows if r["rater"] == rater),
                                      key=lambda r: r["position"])]
        assert {it["item"] for it in items} >= codes  # the same codes in every worklist
        # blocks of 5 places: one calibration photo in each, never two side by side
        assert sorted((p - 1) // 5 for p in mine) == [0, 1]
        assert all(b - a >= 2 for a, b in zip(mine, mine[1:]))
        assert {r["block"] for r in rows if r["rater"] == rater} == {1, 2}
    assert {r["score"] for r in rows} <= {float(s) for s in REFERENCE}


def test_calibration_items_look_like_trial_items_in_code_json_and_file_size(built):
    codes = {r["code"] for r in cal_key(built)}
    items = worklist(built, "derm1")
    assert all(CODE_RE.match(it["item"]) for it in items)
    assert len({tuple(sorted(it)) for it in items}) == 1  # one item shape
    assert len({(it["kind"], it["scale"], it["region"]) for it in items}) == 1
    for copy in ("full", "display"):
        sizes = {it["item"]: (built.rater_dir / "images" / copy / f"{it['item']}.jpg").stat().st_size
                 for it in items}
        assert len(set(sizes.values())) == 1, sizes  # padded to one size with the trial photos
    meta = (built.rater_dir / "set.json").read_text()
    assert not [c for c in codes if c in meta]


def test_the_leak_audit_is_clean_and_compares_calibration_with_trial_photos(built):
    report = audit_report(built.rater_dir, built.key_dir, p_values=False)
    assert report.findings == []
    compared = {row.property for row in report.aucs
                if row.comparison == "calibration photos vs trial photos"}
    assert {"file size", "display file size", "code", "position in derm1's worklist"} <= compared


# ---------------------------------------------------------------------------------- scoring


@pytest.fixture(scope="module")
def rated(built, tmp_path_factory):
    """Both raters score every trial photo 3; derm1 scores the calibration photos as the
    reference, derm2 two or more grades away from it."""
    db = tmp_path_factory.mktemp("db") / "ratings.sqlite"
    reference = {r["code"]: int(r["score"]) for r in cal_key(built)}
    rs = load_rater_set(built.rater_dir)
    for rater in ("derm1", "derm2"):
        wl = rs.worklist(rater)
        for it in wl.items:
            if it.item not in reference:
                value = 3
            elif rater == "derm1":
                value = reference[it.item]
            else:
                value = 5 if reference[it.item] <= 2 else 1  # two grades off or more
            wl.save(db, it.item, score=value)
    return built, db, reference


def test_a_rater_who_drifts_from_the_reference_is_flagged_and_one_who_does_not_is_not(rated):
    built, db, _ = rated
    a = analyse(built.rater_dir, built.key_dir, db=db, allow_unlocked=True)
    table = a.calibration.set_index(["rater", "block"])
    assert sorted(table.index) == [("derm1", 1), ("derm1", 2), ("derm2", 1), ("derm2", 2)]
    assert not table.loc["derm1", "flagged"].any()
    assert table.loc["derm1", "within_one"].tolist() == [1.0, 1.0]
    assert table.loc["derm2", "flagged"].all()
    assert table.loc["derm2", "within_one"].tolist() == [0.0, 0.0]
    assert (table["n"] == 1).all() and (table["min_within_one"] == 0.8).all()


def test_calibration_photos_never_enter_the_trials_analysis(rated, tmp_path):
    built, db, reference = rated
    result = score(built.rater_dir, built.key_dir, tmp_path / "out", db=db, allow_unlocked=True)
    u = result.analysis.unblinded
    assert not set(u.long["code"]) & set(reference)
    assert len(u.long) == 16 and u.counts["items"] == 16 and u.counts["calibration"] == 4
    long_csv = pd.read_csv(result.out / "ratings_long.csv", encoding="utf-8-sig")
    assert not set(long_csv["code"]) & set(reference) and set(long_csv["score"]) == {3}
    within = result.analysis.summary[result.analysis.summary["analysis"] == "within arm"]
    assert (within["baseline_mean"] == 3).all() and (within["followup_mean"] == 3).all()
    assert not any(f.kind == "unrated" for f in result.findings)
    drift = pd.read_csv(result.out / "calibration.csv", encoding="utf-8-sig")
    assert drift.groupby("rater")["flagged"].all().to_dict() == {"derm1": False, "derm2": True}
    sheet = pd.read_excel(result.out / "ratings.xlsx", sheet_name="calibration", engine="openpyxl")
    pd.testing.assert_frame_equal(sheet, drift, check_dtype=False)
    report = (result.out / "report.html").read_text(encoding="utf-8")
    section = report.split("<h2>Calibration</h2>", 1)[1]
    assert "derm2 (block 1, 2)" in section and "per block of 5" in section


def test_the_status_counts_calibration_photos_like_any_item_without_the_key(rated):
    from click.testing import CliRunner

    from assess.cli import cli

    built, db, reference = rated
    result = CliRunner().invoke(cli, ["status", str(built.rater_dir), "--db", str(db)])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("derm1"))
    assert line.split()[1] == "10/10", result.output
    assert not [c for c in reference if c in result.output]
    assert "Calibration" not in result.output
    keyed = CliRunner().invoke(cli, ["status", str(built.rater_dir), "--db", str(db), "--key",
                                     str(built.key_dir)])
    assert keyed.exit_code == 0, keyed.output
    assert ("Calibration (2 hidden photo(s) per worklist, blocks of 5): derm1 2/2 rated, not "
            "flagged; derm2 2/2 rated, flagged in block 1, 2") in keyed.output
    assert not [c for c in reference if c in keyed.output]
