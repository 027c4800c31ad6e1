"""The report's numbers, recomputed by independent engines from the files the scorer wrote:
GNU PSPP runs ``analysis.sps`` on ``ratings.sav``, R runs ``analysis.R`` on ``ratings_long.csv``.

The set has the design of the NCT06217627 example (examples/nct06217627): 19 participants in arm
"UC-MSC secretome" with face and neck on the WSRS, 30 in "UC-explant secretome" with the back of
each hand (views left and right) on the Merz hand scale, baseline and month12, 10 disguised
repeats. It is built in code, without pixels, so the check takes seconds: the scorer reads only
the set's files, never a photo. The ratings are drawn from a seeded generator, one photo is
"cannot assess"; the R check adds a second rater so that ICC and inter-rater kappa exist.
"""

from __future__ import annotations

import csv
import io
import random
import subprocess

import pandas as pd
import pytest

from assess.score import score
from score_fixtures import make_set, rate_all, write_ratings

ARM_A = [f"S{1000 + i}" for i in range(1, 20)]
ARM_B = [f"S{1100 + i}" for i in range(1, 31)]


def nct06217627(root, raters):
    """Score a set of the example's design; returns the results folder."""
    missing = [(p, t, "hands", v) for p in ARM_A for t in ("baseline", "month12")
               for v in ("left", "right")]
    missing += [(p, t, r, "") for p in ARM_B for t in ("baseline", "month12") for r in ("face", "neck")]
    repeat = ([(p, "baseline", "face") for p in ARM_A[:4]]
              + [(p, "month12", "hands", "left") for p in ARM_B[:6]])
    fx = make_set(root / "sets", participants=ARM_A + ARM_B, missing=missing, raters=raters,
                  regions={"face": "wsrs", "neck": "wsrs", "hands": "merz-hand"},
                  views={"hands": ("left", "right")}, repeat=repeat, study_id="NCT06217627",
                  set_id="nct06217627")
    rng = random.Random(7)
    truth = {}
    for p in ARM_A + ARM_B:
        for region, views, low, high in (("face", ("",), 1, 5), ("neck", ("",), 1, 5),
                                         ("hands", ("left", "right"), 0, 4)):
            for v in views:
                base = rng.randint(low + 1, high)
                truth[(p, "baseline", region, v)] = base
                truth[(p, "month12", region, v)] = max(base - rng.choice([0, 0, 1, 1, 1, 2]), low)

    def rating(slot):
        low, high = (0, 4) if slot[2] == "hands" else (1, 5)
        return max(low, min(high, truth[slot] + rng.choice([0, 0, 0, 0, 1, -1])))

    rows = [row for r in raters for row in rate_all(fx, r, rating)]
    rows[3].update(score="", cannot_assess="lighting")
    ratings = write_ratings(root / "ratings.csv", rows, ("rater", "code", "score", "cannot_assess"))
    parts = root / "participants.csv"
    parts.write_text("participant,arm\n" + "".join(f"{p},UC-MSC secretome\n" for p in ARM_A)
                     + "".join(f"{p},UC-explant secretome\n" for p in ARM_B))
    return score(fx.rater_dir, fx.key_dir, root / "out", ratings=ratings, participants=parts).out


def _summary(out):
    s = pd.read_csv(out / "summary.csv", encoding="utf-8-sig", keep_default_na=False,
                    na_values=[""])
    return s[s["analysis"].str.startswith("within")]


# ------------------------------------------------------------------------------ PSPP


def pspp_blocks(text: str) -> list[dict]:
    """PSPP's CSV output cut at each ``BLOCK n:`` line: ``{table title: rows}`` per block."""
    blocks: list[dict] = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        lines = chunk.strip("\n").split("\n")
        if not lines or not lines[0]:
            continue
        if lines[0].startswith("BLOCK "):
            blocks.append({"title": lines[0]})
            lines = lines[1:]
            if not lines or not lines[0]:
                continue
        if lines[0].startswith("Table: ") and blocks:
            blocks[-1][lines[0][7:]] = list(csv.reader(io.StringIO("\n".join(lines[1:]))))
    return blocks


def near(printed: str, value: float) -> bool:
    """``printed`` (PSPP's rounded text, e.g. ``-.70`` or ``.000``) is ``value`` rounded."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(float(printed) - value) <= 0.5 * 10 ** -decimals + 1e-9


@pytest.fixture(scope="module")
def pspp_run(tmp_path_factory, pspp):
    out = nct06217627(tmp_path_factory.mktemp("pspp"), ("derm1",))
    result = subprocess.run([pspp, "-O", "format=csv", "-o", "pspp.csv", "analysis.sps"],
                            cwd=out, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower(), result.stdout
    return out, pspp_blocks((out / "pspp.csv").read_text(encoding="utf-8"))


def test_pspp_runs_the_syntax_with_one_block_per_row_of_the_primary_table(pspp_run):
    out, blocks = pspp_run
    summary = _summary(out)
    assert len(blocks) == len(summary) == 4  # face, neck (arm A); left and right hand (arm B)
    for block in blocks:
        assert {"Descriptive Statistics", "Percentiles", "Ranks", "Test Statistics"} <= set(block)


def test_every_number_pspp_prints_is_the_reports(pspp_run):
    out, blocks = pspp_run
    summary = _summary(out)
    for block in blocks:
        _, rest = block["title"].split(": ", 1)
        where, scale, tp, _, rater, _, arm = rest.split(" ", 6)
        region, _, view = where.partition("/")
        row = summary[(summary["region"] == region) & (summary["view"].fillna("") == view)
                      & (summary["timepoint"] == tp) & (summary["rater"] == rater)
                      & (summary["arm"] == arm)].iloc[0]
        desc = {r[0]: r for r in block["Descriptive Statistics"][1:]}
        base, follow, change, responder = list(desc.values())[:4]
        assert int(base[1]) == int(follow[1]) == int(change[1]) == row["n_pairs"]
        for printed, value in ((base[2], row["baseline_mean"]), (base[3], row["baseline_sd"]),
                               (follow[2], row["followup_mean"]), (follow[3], row["followup_sd"]),
                               (change[2], row["mean_change"]), (change[3], row["sd_change"]),
                               (responder[2], row["responder_rate"])):
            assert near(printed, value), (block["title"], printed, value)
        assert float(responder[6]) == row["responders"]
        pct = block["Percentiles"]
        weighted = [r for r in pct if len(r) > 1 and r[1] == "Weighted Average"]
        assert len(weighted) == 2
        for r, prefix in zip(weighted, ("baseline", "followup")):
            for printed, q in zip(r[2:5], ("q1", "median", "q3")):
                assert near(printed, row[f"{prefix}_{q}" if q != "median" else f"{prefix}_median"])
        ranks = block["Ranks"]
        counts = {r[1]: r for r in ranks[1:]}
        assert int(counts["Ties"][2]) == row["n_unchanged"]
        assert sorted([int(counts["Negative Ranks"][2]), int(counts["Positive Ranks"][2])]) == \
            sorted([row["n_improved"], row["n_worsened"]])
        assert min(float(counts["Negative Ranks"][4]), float(counts["Positive Ranks"][4])) == \
            row["statistic"]
        tests = {r[0]: r[1] for r in block["Test Statistics"][1:]}
        assert near(tests["Z"], row["z"]), (block["title"], tests["Z"], row["z"])
        assert near(tests["Asymp. Sig. (2-tailed)"], row["p"])


def test_pspp_reads_the_cannot_assess_code_as_missing(pspp_run, pspp):
    out, blocks = pspp_run
    syntax = ("GET FILE='ratings.sav'.\n"
              "COUNT why = face_wsrs_baseline face_wsrs_month12 neck_wsrs_baseline "
              "neck_wsrs_month12 (93).\nCOUNT gone = face_wsrs_baseline face_wsrs_month12 "
              "neck_wsrs_baseline neck_wsrs_month12 (MISSING).\n"
              "DESCRIPTIVES why gone /STATISTICS=SUM.\n")
    (out / "check.sps").write_text(syntax)
    result = subprocess.run([pspp, "-O", "format=csv", "-o", "check.csv", "check.sps"], cwd=out,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
    rows = {r[0]: r for r in csv.reader(io.StringIO((out / "check.csv").read_text()))
            if r and r[0] in ("why", "gone")}
    long = pd.read_csv(out / "ratings_long.csv", encoding="utf-8-sig")
    lit = long[(long["reason"] == "lighting") & (long["region"].isin(["face", "neck"]))]
    assert float(rows["why"][-1]) == len(lit) and float(rows["gone"][-1]) >= len(lit)


# ------------------------------------------------------------------------------ R


@pytest.fixture(scope="module")
def r_run(tmp_path_factory, rscript):
    out = nct06217627(tmp_path_factory.mktemp("r"), ("derm1", "derm2"))
    result = subprocess.run([rscript, "analysis.R"], cwd=out, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


KEYS = ["rater", "arm", "region", "view", "scale", "timepoint"]


def test_r_wilcox_test_gives_the_reports_primary_table(r_run):
    summary = _summary(r_run).fillna({"view": ""})
    r = pd.read_csv(r_run / "r_summary.csv", keep_default_na=False, na_values=["NA"])
    both = summary.merge(r, on=KEYS, suffixes=("", "_r"))
    assert len(both) == len(summary) == len(r) == 8  # 4 comparisons × 2 raters
    assert (both["n_pairs"] == both["n_pairs_r"]).all()
    assert (both["responders"] == both["responders_r"]).all()
    for col in ("baseline_median", "baseline_q1", "baseline_q3", "followup_median", "followup_q1",
                "followup_q3", "baseline_mean", "baseline_sd", "mean_change", "sd_change",
                "change_ci_low", "change_ci_high", "p", "z"):
        assert both[col].to_numpy() == pytest.approx(both[f"{col}_r"].to_numpy(), abs=1e-9), col


def test_r_psych_gives_the_reports_kappas_and_icc(r_run):
    rel = pd.read_csv(r_run / "reliability.csv", encoding="utf-8-sig")
    r = pd.read_csv(r_run / "r_reliability.csv")
    both = rel.merge(r, on=["analysis", "scale", "raters"], suffixes=("", "_r"))
    assert len(both) == len(rel) == len(r)
    assert set(both["analysis"]) == {"intra-rater (repeats)", "inter-rater",
                                     "inter-rater, rater pair"}
    kappa = both[both["kappa"].notna()]
    assert len(kappa) == 6  # 2 scales × 2 raters (repeats) + 2 rater pairs
    for col in ("n", "kappa", "kappa_ci_low", "kappa_ci_high", "kappa_linear", "kappa_quadratic"):
        assert kappa[col].to_numpy(dtype=float) == pytest.approx(
            kappa[f"{col}_r"].to_numpy(dtype=float), abs=1e-9), col
    icc = both[both["analysis"] == "inter-rater"]
    assert len(icc) == 2
    for col in ("n", "icc", "icc_ci_low", "icc_ci_high", "icc_f", "icc_p"):
        assert icc[col].to_numpy(dtype=float) == pytest.approx(
            icc[f"{col}_r"].to_numpy(dtype=float), rel=1e-9, abs=1e-12), col


# ------------------------------------------------------------------------------ a worked example

BEFORE = [3, 4, 3, 2, 4, 3, 5, 3, 2, 4, 3, 3, 4, 2, 3, 4, 3, 5, 4]
AFTER = [2, 3, 3, 3, 2, 2, 4, 3, 2, 3, 2, 3, 3, 2, 2, 3, 3, 3, 3]


@pytest.fixture(scope="module")
def worked_example(tmp_path_factory):
    """The SPSS-style example of :func:`assess.score.stats.mean_ci`: 19 participants on a 1–5
    scale where lower is better, with ties and 6 zero differences; SPSS's Z = −2.967954 (tie
    correction, no continuity correction), p = 0.002998, responders 12/19."""
    tmp = tmp_path_factory.mktemp("worked")
    ps = [f"P{i:02d}" for i in range(1, 20)]
    fx = make_set(tmp / "sets", participants=ps)
    level = {(p, "baseline"): b for p, b in zip(ps, BEFORE)}
    level.update({(p, "month12"): a for p, a in zip(ps, AFTER)})
    ratings = write_ratings(tmp / "ratings.csv", rate_all(fx, "derm1", lambda s: level[s[:2]]))
    return score(fx.rater_dir, fx.key_dir, tmp / "out", ratings=ratings).out


def test_the_worked_example_gives_spss_published_numbers_in_the_report_pspp_and_r(
        worked_example, pspp, rscript):
    out = worked_example
    row = _summary(out).iloc[0]
    assert round(row["z"], 6) == -2.967954 and round(row["p"], 6) == 0.002998
    assert (row["responders"], row["n_pairs"], row["n_unchanged"]) == (12, 19, 6)
    assert round(row["mean_change"], 4) == -0.6842
    subprocess.run([pspp, "-O", "format=csv", "-o", "pspp.csv", "analysis.sps"], cwd=out,
                   check=True, capture_output=True, timeout=60)
    block, = pspp_blocks((out / "pspp.csv").read_text(encoding="utf-8"))
    tests = {r[0]: r[1] for r in block["Test Statistics"][1:]}
    assert (tests["Z"], tests["Asymp. Sig. (2-tailed)"]) == ("-2.97", ".003")
    subprocess.run([rscript, "analysis.R"], cwd=out, check=True, capture_output=True, timeout=60)
    r = pd.read_csv(out / "r_summary.csv").iloc[0]
    assert round(r["p"], 6) == 0.002998 and round(r["z"], 6) == -2.967954


# ------------------------------------------------------------------------------ pairs, categories


@pytest.fixture(scope="module")
def pairs_and_categories(tmp_path_factory):
    """A side-by-side pairs set (WSRS) and a set on the categorical Glogau scale."""
    from test_score_tables import pair_rows

    tmp = tmp_path_factory.mktemp("kinds")
    ps = [f"P{i:02d}" for i in range(12)]
    fx = make_set(tmp / "p" / "sets", participants=ps, presentation="pairs", seed=3)
    better = dict(zip(ps, [2, 1, 1, 0, 2, -1, 1, 1, 0, 1, 2, 1]))
    rows = pair_rows(fx, better, {p: True for p in ps})
    ratings = write_ratings(tmp / "p.csv", rows, ("rater", "code", "better", "first"))
    pairs = score(fx.rater_dir, fx.key_dir, tmp / "p" / "out", ratings=ratings).out
    fx = make_set(tmp / "g" / "sets", participants=ps, regions={"face": "glogau"})
    base = dict(zip(ps, [3, 4, 2, 3, 4, 3, 2, 4, 3, 3, 4, 2]))
    gain = dict(zip(ps, [1, 1, 0, 1, 2, 0, -1, 1, 1, 0, 1, 0]))
    ratings = write_ratings(tmp / "g.csv", rate_all(
        fx, "derm1", lambda s: base[s[0]] - (gain[s[0]] if s[1] == "month12" else 0)))
    categories = score(fx.rater_dir, fx.key_dir, tmp / "g" / "out", ratings=ratings).out
    return pairs, categories


def _engines(out, pspp, rscript):
    subprocess.run([pspp, "-O", "format=csv", "-o", "pspp.csv", "analysis.sps"], cwd=out,
                   check=True, capture_output=True, timeout=60)
    subprocess.run([rscript, "analysis.R"], cwd=out, check=True, capture_output=True, timeout=60)
    block, = pspp_blocks((out / "pspp.csv").read_text(encoding="utf-8"))
    return block, pd.read_csv(out / "r_summary.csv").iloc[0], _summary(out).iloc[0]


def test_pspp_and_r_test_the_pair_improvement_scores_against_zero_as_the_report(
        pairs_and_categories, pspp, rscript):
    block, r, row = _engines(pairs_and_categories[0], pspp, rscript)
    assert row["analysis"] == "within arm (pairs)"
    tests = {t[0]: t[1] for t in block["Test Statistics"][1:]}
    assert near(tests["Z"], row["z"]) and near(tests["Asymp. Sig. (2-tailed)"], row["p"])
    responder = block["Descriptive Statistics"][2]
    assert float(responder[6]) == row["responders"] == r["responders"] == 9
    assert r["p"] == pytest.approx(row["p"], abs=1e-12)


def test_pspp_and_r_give_the_reports_sign_test_on_a_categorical_scale_and_no_mean(
        pairs_and_categories, pspp, rscript):
    block, r, row = _engines(pairs_and_categories[1], pspp, rscript)
    assert row["test"] == "sign test (exact)"
    tests = {t[0]: t[1] for t in block["Test Statistics"][1:]}
    assert near(tests["Exact Sig. (2-tailed)"], row["p"])
    assert r["p"] == pytest.approx(row["p"], abs=1e-12)
    means = [d[0] for d in block["Descriptive Statistics"][1:]]
    assert not any("baseline" in m or "change" in m for m in means)  # only the responders
    assert float(block["Descriptive Statistics"][1][6]) == row["responders"]


def test_pspp_gives_the_reports_mann_whitney_test_between_two_arms(tmp_path, pspp):
    ps = [f"P{i:02d}" for i in range(1, 17)]
    fx = make_set(tmp_path / "sets", participants=ps)
    base = dict(zip(ps, [4, 3, 4, 2, 3, 4, 3, 2, 4, 3, 4, 3, 5, 4, 3, 2]))
    gain = dict(zip(ps, [1, 0, 2, 1, 1, 0, 1, 1, 2, 0, 1, 1, 3, 0, 0, 1]))
    ratings = write_ratings(tmp_path / "r.csv", rate_all(
        fx, "derm1", lambda s: base[s[0]] - (gain[s[0]] if s[1] == "month12" else 0)))
    parts = tmp_path / "participants.csv"
    parts.write_text("participant,arm\n" + "".join(
        f"{p},{('vehicle', 'secretome')[i % 2]}\n" for i, p in enumerate(ps)))
    out = score(fx.rater_dir, fx.key_dir, tmp_path / "out", ratings=ratings,
                participants=parts).out
    subprocess.run([pspp, "-O", "format=csv", "-o", "pspp.csv", "analysis.sps"], cwd=out,
                   check=True, capture_output=True, timeout=60)
    *within, between = pspp_blocks((out / "pspp.csv").read_text(encoding="utf-8"))
    assert len(within) == 2 and between["title"].endswith("between vehicle vs secretome")
    summary = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    row = summary[summary["analysis"] == "between arms"].iloc[0]
    head, values = between["Test Statistics"][0], between["Test Statistics"][1]
    printed = dict(zip(head[1:], values[1:]))
    assert float(printed["Mann-Whitney U"]) == row["statistic"]
    assert near(printed["Z"], -abs(row["z"])) and near(printed["Asymp. Sig. (2-tailed)"], row["p"])


# ------------------------------------------------------------------------------ any scale

#: Student's sleep data (R's ``sleep``): the extra hours of sleep of 10 patients on two drugs;
#: R's ``t.test(extra ~ group, data = sleep, paired = TRUE)`` gives t = -4.0621, df = 9,
#: p = 0.002833. Here the differences, × 10, are VAS points of improvement.
SLEEP_DIFF = [1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4]


@pytest.fixture(scope="module")
def any_scale(tmp_path_factory):
    """A 0–10 numeric rating scale (face), a VAS (hands) and a 1–5 scale in half steps (neck),
    one rater, 10 participants; the VAS changes are the sleep data's differences."""
    from assess.study import Scale

    tmp = tmp_path_factory.mktemp("scales")
    ps = [f"P{i:02d}" for i in range(1, 11)]
    half = Scale.from_dict({"id": "half", "name": "Half-step wrinkle scale", "step": 0.5,
                            "min": 1, "max": 5, "levels": [
                                {"value": v, "label": f"Grade {v}"} for v in (1, 2, 3, 4, 5)]})
    fx = make_set(tmp / "sets", participants=ps, scales={"half": half},
                  regions={"face": "nrs-wrinkles", "hands": "vas-wrinkles", "neck": "half"})
    nrs_base = dict(zip(ps, [8, 7, 9, 6, 5, 8, 7, 10, 9, 6]))
    nrs_gain = dict(zip(ps, [2, 1, 3, 0, 1, 2, 1, 4, 2, 1]))
    vas_base = {p: 50 + i for i, p in enumerate(ps)}
    vas_gain = {p: round(d * 10) for p, d in zip(ps, SLEEP_DIFF)}
    half_base = dict(zip(ps, [3.5, 4, 2.5, 3, 4.5, 3.5, 2, 4, 3, 5]))
    half_gain = dict(zip(ps, [0.5, 1, 0, 0.5, 1.5, 0, 0.5, 1, -0.5, 1]))

    def rating(slot):
        p, tp, region = slot[:3]
        base, gain = {"face": (nrs_base, nrs_gain), "hands": (vas_base, vas_gain),
                      "neck": (half_base, half_gain)}[region]
        return base[p] - (gain[p] if tp == "month12" else 0)

    ratings = write_ratings(tmp / "ratings.csv", rate_all(fx, "derm1", rating))
    return score(fx.rater_dir, fx.key_dir, tmp / "out", ratings=ratings).out


def test_a_vas_is_tested_by_the_paired_t_test_with_the_published_numbers_in_report_pspp_and_r(
        any_scale, pspp, rscript):
    out = any_scale
    summary = _summary(out).set_index("region")
    vas = summary.loc["hands"]
    assert vas["test"] == "paired t-test" and vas["scale_kind"] == "vas"
    assert (round(vas["statistic"], 4), round(vas["p"], 6)) == (4.0621, 0.002833)
    assert pd.isna(vas["responders"]) and pd.isna(vas["baseline_counts"])
    assert summary.loc["face", "test"] == summary.loc["neck", "test"] == "Wilcoxon signed-rank"
    subprocess.run([pspp, "-O", "format=csv", "-o", "pspp.csv", "analysis.sps"], cwd=out,
                   check=True, capture_output=True, timeout=60)
    blocks = {b["title"].split(": ", 1)[1].split(" ")[0]: b
              for b in pspp_blocks((out / "pspp.csv").read_text(encoding="utf-8"))}
    paired = blocks["hands"]["Paired Samples Test"]
    t_col = paired[1].index("t") if "t" in paired[1] else paired[0].index("t")
    row = next(r for r in paired if r and r[0].startswith("Pair"))
    assert near(row[t_col], vas["statistic"])
    subprocess.run([rscript, "analysis.R"], cwd=out, check=True, capture_output=True, timeout=60)
    r = pd.read_csv(out / "r_summary.csv").set_index("region")
    assert r.loc["hands", "t"] == pytest.approx(vas["statistic"], abs=1e-9)
    assert r.loc["hands", "p"] == pytest.approx(vas["p"], abs=1e-12)
    assert r.loc["neck", "p"] == pytest.approx(summary.loc["neck", "p"], abs=1e-12)


def test_pspp_and_r_read_a_0_to_10_scale_with_its_labels_and_a_vas_as_a_measurement(
        any_scale, pspp, rscript):
    out = any_scale
    (out / "dict.sps").write_text("GET FILE='ratings.sav'.\nDISPLAY DICTIONARY.\n")
    subprocess.run([pspp, "-O", "format=csv", "-o", "dict.csv", "dict.sps"], cwd=out,
                   check=True, capture_output=True, timeout=60)
    rows = list(csv.reader(io.StringIO((out / "dict.csv").read_text(encoding="utf-8"))))
    header = next(r for r in rows if "Measurement Level" in r)
    level = {r[0]: r[header.index("Measurement Level")] for r in rows
             if len(r) == len(header) and r[0] in ("face_nrs_wrinkles_baseline",
                                                   "hands_vas_wrinkles_baseline",
                                                   "neck_half_baseline")}
    assert level == {"face_nrs_wrinkles_baseline": "Ordinal",
                     "hands_vas_wrinkles_baseline": "Scale", "neck_half_baseline": "Ordinal"}
    script = (
        "library(foreign)\n"
        "d <- read.spss('ratings.sav', to.data.frame = FALSE, use.value.labels = FALSE,"
        " use.missings = FALSE)\n"
        "for (v in c('face_nrs_wrinkles_baseline', 'hands_vas_wrinkles_baseline',"
        " 'neck_half_baseline')) {\n"
        "  l <- attr(d[[v]], 'value.labels')\n"
        "  cat(v, paste(unname(l), names(l), sep = '=', collapse = '|'), '\\n', sep = '\\t')\n"
        "  cat(v, paste(d[[v]], collapse = '|'), '\\n', sep = '\\t')\n"
        "}\n")
    (out / "labels.R").write_text(script)
    result = subprocess.run([rscript, "-e", "if (!requireNamespace('foreign', quietly = TRUE)) "
                             "quit(status = 3)"], capture_output=True)
    if result.returncode == 3:
        pytest.skip("the R package foreign is not installed (apt-get install r-cran-foreign)")
    result = subprocess.run([rscript, "labels.R"], cwd=out, capture_output=True, text=True,
                            timeout=60, check=True)
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    labels = {v: dict(kv.split("=", 1) for kv in text.split("|") if "=" in kv)
              for v, text, *_ in lines[0::2]}
    values = {v: text.split("|") for v, text, *_ in lines[1::2]}
    nrs = labels["face_nrs_wrinkles_baseline"]
    assert (nrs["0"], nrs["10"], nrs["5"]) == ("No wrinkles", "Worst imaginable wrinkles", "5")
    assert set(labels["hands_vas_wrinkles_baseline"]) <= {str(c) for c in range(900, 1000)}
    half = labels["neck_half_baseline"]
    assert (half["2"], half["2.5"]) == ("Grade 2", "2.5")  # every declared half step is labelled
    assert sorted(map(float, values["neck_half_baseline"])) == sorted(
        [3.5, 4, 2.5, 3, 4.5, 3.5, 2, 4, 3, 5])
    assert sorted(map(float, values["hands_vas_wrinkles_baseline"])) == list(range(50, 60))


#: Student's sleep data as two groups: R's ``t.test(extra ~ group, data = sleep)`` (Welch):
#: t = -1.8608, df = 17.776, p = 0.07939.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_two_arms_on_a_vas_get_welchs_t_test_with_the_published_numbers_in_report_and_pspp(
        tmp_path, pspp):
    ps = [f"P{i:02d}" for i in range(1, 21)]
    fx = make_set(tmp_path / "sets", participants=ps, regions={"hands": "vas-wrinkles"})
    gain = {p: round(x * 10) for p, x in zip(ps, SLEEP_1 + SLEEP_2)}
    ratings = write_ratings(tmp_path / "r.csv", rate_all(
        fx, "derm1", lambda s: 60 - (gain[s[0]] if s[1] == "month12" else 0)))
    parts = tmp_path / "participants.csv"
    parts.write_text("participant,arm\n" + "".join(
        f"{p},{'drug1' if i < 10 else 'drug2'}\n" for i, p in enumerate(ps)))
    out = score(fx.rater_dir, fx.key_dir, tmp_path / "out", ratings=ratings,
                participants=parts).out
    summary = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    row = summary[summary["analysis"] == "between arms"].iloc[0]
    assert row["arm"] == "drug1 vs drug2" and row["test"] == "Welch t-test on the change"
    assert (round(row["statistic"], 4), round(row["p"], 5)) == (-1.8608, 0.07939)
    subprocess.run([pspp, "-O", "format=csv", "-o", "pspp.csv", "analysis.sps"], cwd=out,
                   check=True, capture_output=True, timeout=60)
    *_, between = pspp_blocks((out / "pspp.csv").read_text(encoding="utf-8"))
    table = between["Independent Samples Test"]
    header = next(r for r in table if "t" in r)
    welch = next(r for r in table if any("not assumed" in c for c in r))
    assert near(welch[header.index("t")], row["statistic"])
    assert near(welch[header.index("df")], 17.776)
