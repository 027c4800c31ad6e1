"""The trial's tables: within-arm change, between arms, categorical scales, pairs, reliability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from assess.score import analyse
from assess.score import reliability as rel
from assess.score.unblind import IMPROVEMENT
from assess.study import Level, Scale
from score_fixtures import make_set, rate_all, slot_of, write_ratings

# Worked example C: 19 participants, 1-5 scale, lower is better.
C_BEFORE = [3, 4, 3, 2, 4, 3, 5, 3, 2, 4, 3, 3, 4, 2, 3, 4, 3, 5, 4]
C_AFTER = [2, 3, 3, 3, 2, 2, 4, 3, 2, 3, 2, 3, 3, 2, 2, 3, 3, 3, 3]
PARTICIPANTS = [f"P{i:02d}" for i in range(1, 20)]


def run(fx, tmp_path, rows, participants=None, columns=("rater", "code", "score")):
    path = write_ratings(tmp_path / "ratings.csv", rows, columns)
    parts = None
    if participants is not None:
        parts = tmp_path / "participants.csv"
        parts.write_text("participant,arm\n" + "".join(f"{p},{a}\n" for p, a in participants.items()))
    return analyse(fx.rater_dir, fx.key_dir, ratings=path, participants=parts)


@pytest.fixture
def example_c(tmp_path):
    fx = make_set(tmp_path / "sets", participants=PARTICIPANTS)
    truth = {}
    for p, b, a in zip(PARTICIPANTS, C_BEFORE, C_AFTER):
        truth[(p, "baseline")], truth[(p, "month12")] = b, a
    rows = rate_all(fx, "derm1", score=lambda slot: truth[(slot[0], slot[1])])
    return run(fx, tmp_path, rows)


def test_example_c_through_the_whole_pipeline_gives_spss_z_and_p(example_c):
    row = example_c.summary.iloc[0]
    assert (row["analysis"], row["n_pairs"], row["n_excluded"]) == ("within arm", 19, 0)
    assert (round(row["z"], 6), round(row["p"], 6)) == (-2.967954, 0.002998)
    assert row["test"] == "Wilcoxon signed-rank"


def test_example_c_effect_size_states_its_n_of_non_zero_pairs(example_c):
    row = example_c.summary.iloc[0]
    assert row["effect_r_n"] == "13 non-zero pairs"
    assert row["effect_r"] == pytest.approx(2.967954 / np.sqrt(13), abs=1e-6)
    assert row["rank_biserial"] == pytest.approx((85 - 6) / 91)  # positive: improvement


def test_example_c_mean_change_responders_and_medians(example_c):
    row = example_c.summary.iloc[0]
    assert [round(row[c], 4) for c in ("mean_change", "sd_change", "change_ci_low",
                                       "change_ci_high")] == [-0.6842, 0.7493, -1.0453, -0.3231]
    assert (row["responders"], round(row["responder_ci_low"], 4),
            round(row["responder_ci_high"], 4)) == (12, 0.4104, 0.8085)
    assert (row["baseline_median"], row["followup_median"]) == (3.0, 3.0)
    assert (row["n_improved"], row["n_unchanged"], row["n_worsened"]) == (12, 6, 1)


def test_counts_per_level_cover_every_declared_level(example_c):
    row = example_c.summary.iloc[0]
    assert row["baseline_counts"] == "1=0; 2=3; 3=8; 4=6; 5=2"
    assert row["followup_counts"] == "1=0; 2=7; 3=11; 4=1; 5=0"
    dist = example_c.distribution
    base = dist[dist["timepoint"] == "baseline"]
    assert base["level"].tolist() == [1, 2, 3, 4, 5]
    assert base["n"].tolist() == [0, 3, 8, 6, 2]


def test_responders_follow_the_scale_direction_when_higher_is_better(tmp_path):
    score = Scale("gain", "Gain scale", (Level(1, "Low"), Level(2, "Mid"), Level(3, "High")),
                  better="higher")
    fx = make_set(tmp_path / "sets", participants=("P01", "P02", "P03", "P04"),
                  regions={"face": "gain"}, scales={"gain": score})
    after = {"P01": 3, "P02": 2, "P03": 1, "P04": 3}
    rows = rate_all(fx, "derm1", score=lambda s: 2 if s[1] == "baseline" else after[s[0]])
    row = run(fx, tmp_path, rows).summary.iloc[0]
    assert (row["responders"], row["n_improved"], row["n_worsened"]) == (2, 2, 1)
    assert row["mean_change"] == pytest.approx(0.25)
    assert row["rank_biserial"] > 0


def test_a_categorical_scale_gets_counts_responders_and_the_sign_test_but_no_means(tmp_path):
    fx = make_set(tmp_path / "sets", participants=[f"P{i}" for i in range(10)],
                  regions={"skin": "glogau"})
    after = [1, 1, 2, 2, 3, 1, 2, 3, 4, 2]
    rows = rate_all(fx, "derm1", score=lambda s: 3 if s[1] == "baseline" else after[int(s[0][1:])])
    row = run(fx, tmp_path, rows).summary.iloc[0]
    assert row["test"] == "sign test (exact)"
    assert row["p"] == pytest.approx(sps.binomtest(7, 8).pvalue)
    assert row["responders"] == 7
    for col in ("baseline_mean", "mean_change", "z", "effect_r", "baseline_median"):
        assert pd.isna(row[col]), col
    assert row["baseline_counts"] == "1=0; 2=0; 3=10; 4=0"


def test_between_arms_is_mann_whitney_on_the_change(tmp_path):
    ps = [f"P{i:02d}" for i in range(12)]
    fx = make_set(tmp_path / "sets", participants=ps)
    after = dict(zip(ps, [1, 2, 3, 3, 2, 4, 3, 4, 4, 4, 5, 3]))
    rows = rate_all(fx, "derm1", score=lambda s: 4 if s[1] == "baseline" else after[s[0]])
    arms = {p: ("A" if i < 6 else "B") for i, p in enumerate(ps)}
    summary = run(fx, tmp_path, rows, participants=arms).summary
    row = summary[summary["analysis"] == "between arms"].iloc[0]
    change_a = [4 - after[p] for p in ps[:6]]
    change_b = [4 - after[p] for p in ps[6:]]
    expected = sps.mannwhitneyu(change_a, change_b, method="asymptotic", use_continuity=False)
    assert row["arm"] == "A vs B"
    assert row["p"] == pytest.approx(expected.pvalue)
    assert row["statistic"] == min(expected.statistic, 36 - expected.statistic)
    assert row["z"] > 0  # A improved more
    assert row["effect_r_n"] == "n1 + n2 = 12"


def test_arms_assessed_on_different_regions_are_not_compared_and_the_table_says_so(tmp_path):
    ps = ["P01", "P02", "P03", "P04"]
    missing = [(p, t, "neck") for p in ("P03", "P04") for t in ("baseline", "month12")]
    fx = make_set(tmp_path / "sets", participants=ps, regions={"face": "wsrs", "neck": "wsrs"},
                  missing=missing)
    rows = rate_all(fx, "derm1", score=lambda s: 4 if s[1] == "baseline" else 3)
    summary = run(fx, tmp_path, rows, participants={"P01": "A", "P02": "A", "P03": "B",
                                                    "P04": "B"}).summary
    neck = summary[(summary["analysis"] == "between arms") & (summary["region"] == "neck")].iloc[0]
    assert neck["note"] == "not tested: only A was assessed on neck"
    assert pd.isna(neck["p"])


def test_each_rater_gets_own_rows_and_inter_rater_icc_and_alpha(tmp_path):
    ps = [f"P{i:02d}" for i in range(8)]
    fx = make_set(tmp_path / "sets", participants=ps, raters=("derm1", "derm2"))
    base = dict(zip(ps, [2, 3, 4, 5, 3, 4, 2, 5]))
    one = lambda s: base[s[0]] - (1 if s[1] == "month12" and s[0] > "P03" else 0)  # noqa: E731
    two = lambda s: min(5, one(s) + (1 if s[0] in ("P01", "P05") else 0))  # noqa: E731
    a = run(fx, tmp_path, rate_all(fx, "derm1", one) + rate_all(fx, "derm2", two))
    within = a.summary[a.summary["analysis"] == "within arm"]
    assert within["rater"].tolist() == ["derm1", "derm2"]
    inter = a.reliability[a.reliability["analysis"] == "inter-rater"].iloc[0]
    units = sorted(fx.codes.items())
    m = np.array([[one(slot), two(slot)] for slot, _ in units], dtype=float)
    assert inter["n"] == 16
    assert inter["icc"] == pytest.approx(rel.icc_2_1(m).icc)
    assert inter["alpha"] == pytest.approx(rel.krippendorff_alpha(m.T, [1, 2, 3, 4, 5]))


def test_intra_rater_kappa_compares_each_repeat_with_its_first_showing(tmp_path):
    ps = [f"P{i:02d}" for i in range(6)]
    repeat = [(p, "baseline", "face") for p in ps]
    fx = make_set(tmp_path / "sets", participants=ps, repeat=repeat)
    first = dict(zip(ps, [1, 2, 3, 4, 5, 2]))
    again = dict(zip(ps, [1, 3, 3, 4, 4, 2]))
    rows = []
    for code in fx.items["derm1"]:
        p, t, _, _ = slot_of(fx, code)
        value = (again if code in fx.repeats else first)[p] if t == "baseline" else 3
        rows.append({"rater": "derm1", "code": code, "score": value})
    intra = run(fx, tmp_path, rows).reliability.iloc[0]
    assert intra["analysis"] == "intra-rater (repeats)"
    a, b = [first[p] for p in ps], [again[p] for p in ps]
    assert intra["n"] == 6
    assert intra["kappa_linear"] == pytest.approx(rel.weighted_kappa(a, b, [1, 2, 3, 4, 5]).kappa)
    assert intra["kappa_quadratic"] == pytest.approx(
        rel.weighted_kappa(a, b, [1, 2, 3, 4, 5], "quadratic").kappa)
    assert (intra["exact_agreement"], intra["within_one_agreement"]) == (4 / 6, 1.0)


def pair_rows(fx, better_followup, first_baseline, raters=("derm1",)):
    """Answer every pair: the follow-up looks better by ``better_followup[participant]`` (−2…2);
    ``first_baseline[participant]`` True/False/None (cannot tell)."""
    words = {v: k for k, v in IMPROVEMENT.items()}
    by_pair = {info["pair"]: (slot, info) for slot, info in fx.pairs.items()}
    rows = []
    for rater in raters:
        for item in fx.items[rater]:
            slot, info = by_pair[fx.repeats.get(item, item)]
            score = better_followup[slot[0]]
            followup_right = info["baseline_side"] == "left"
            better = words[score if followup_right else -score]
            ident = first_baseline[slot[0]]
            first = "cannot_tell" if ident is None else (
                info["baseline_side"] if ident else ("right" if info["baseline_side"] == "left"
                                                     else "left"))
            rows.append({"rater": rater, "code": item, "better": better, "first": first})
    return rows


def test_pair_answers_become_improvement_scores_whichever_side_the_follow_up_was(tmp_path):
    ps = [f"P{i:02d}" for i in range(8)]
    fx = make_set(tmp_path / "sets", participants=ps, presentation="pairs", seed=3)
    sides = {info["baseline_side"] for info in fx.pairs.values()}
    assert sides == {"left", "right"}  # both layouts occur
    better = dict(zip(ps, [2, 1, 1, 0, 2, -1, 1, 1]))
    rows = pair_rows(fx, better, {p: True for p in ps})
    a = run(fx, tmp_path, rows, columns=("rater", "code", "better", "first"))
    long = a.unblinded.long
    assert dict(zip(long["participant"], long["improvement"].astype(int))) == better
    row = a.summary.iloc[0]
    assert row["analysis"] == "within arm (pairs)"
    assert row["responders"] == 6
    assert row["p"] == pytest.approx(sps.wilcoxon(list(better.values()), correction=False,
                                                  method="approx").pvalue)


def test_the_blinding_index_counts_identified_wrong_and_cannot_tell(tmp_path):
    ps = [f"P{i:02d}" for i in range(10)]
    fx = make_set(tmp_path / "sets", participants=ps, presentation="pairs", seed=4)
    ident = dict(zip(ps, [True] * 6 + [False] * 2 + [None] * 2))
    rows = pair_rows(fx, {p: 1 for p in ps}, ident)
    bi = run(fx, tmp_path, rows, columns=("rater", "code", "better", "first")).reliability
    bi = bi[bi["analysis"] == "blinding index"].iloc[0]
    assert (bi["n"], bi["identified"], bi["wrong"], bi["cannot_tell"]) == (10, 6, 2, 2)
    assert bi["share_identified"] == 0.75
    assert bi["binomial_p"] == pytest.approx(sps.binomtest(6, 8, 0.5).pvalue)


def test_repeated_pairs_give_intra_rater_agreement_on_improvement_scores(tmp_path):
    ps = [f"P{i:02d}" for i in range(5)]
    fx = make_set(tmp_path / "sets", participants=ps, presentation="pairs", seed=5,
                  repeat=[(p, "month12", "face") for p in ps[:3]])
    rows = pair_rows(fx, {p: 1 for p in ps}, {p: None for p in ps})
    rel_table = run(fx, tmp_path, rows, columns=("rater", "code", "better", "first")).reliability
    intra = rel_table[rel_table["analysis"] == "intra-rater (repeats), pairs"].iloc[0]
    assert (intra["n"], intra["exact_agreement"]) == (3, 1.0)


# Shrout & Fleiss (1979), Table 2: 4 judges rate 6 targets; ICC(2,1) = .29 (R psych: F = 11.03).
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def test_a_vas_gets_the_icc_of_shrout_and_fleiss_instead_of_kappa_across_and_between_raters(
        tmp_path):
    ps = ["P1", "P2", "P3"]  # × baseline and month12: the six targets
    raters = ("j1", "j2", "j3", "j4")
    fx = make_set(tmp_path / "sets", participants=ps, raters=raters, regions={"hands": "vas-wrinkles"})

    def target(slot):
        return 2 * ps.index(slot[0]) + (slot[1] == "month12")

    rows = [row for j, rater in enumerate(raters) for row in rate_all(
        fx, rater, score=lambda slot, j=j: SHROUT_FLEISS[target(slot)][j])]
    rel_table = run(fx, tmp_path, rows).reliability
    inter = rel_table[rel_table["analysis"] == "inter-rater"].iloc[0]
    assert (round(inter["icc"], 2), round(inter["icc_f"], 2)) == (0.29, 11.03)
    assert inter["alpha_level"] == "interval"
    pairs = rel_table[rel_table["analysis"] == "inter-rater, rater pair"]
    assert len(pairs) == 6 and pairs["kappa"].isna().all() and pairs["icc"].notna().all()
    j1_j2 = pairs[pairs["raters"] == "j1 & j2"].iloc[0]
    assert j1_j2["icc"] == pytest.approx(
        rel.icc_2_1([[row[0], row[1]] for row in SHROUT_FLEISS]).icc, abs=1e-12)


def test_half_steps_are_weighted_over_every_declared_half_level(tmp_path):
    half = Scale.from_dict({"id": "half", "name": "Half steps", "step": 0.5, "min": 1, "max": 3,
                            "levels": [{"value": 1, "label": "None"}, {"value": 3, "label": "Marked"}]})
    assert half.values == (1, 1.5, 2, 2.5, 3)
    ps = ["P1", "P2", "P3", "P4"]  # × baseline and month12: eight photos
    fx = make_set(tmp_path / "sets", participants=ps, raters=("a", "b"), regions={"face": "half"},
                  scales={"half": half})
    a = [1, 1.5, 2, 2.5, 3, 2, 1.5, 2.5]
    b = [1, 2, 2, 2.5, 2.5, 2, 1.5, 3]

    def photo(slot):
        return 2 * ps.index(slot[0]) + (slot[1] == "month12")

    rows = (rate_all(fx, "a", score=lambda slot: a[photo(slot)])
            + rate_all(fx, "b", score=lambda slot: b[photo(slot)]))
    table = run(fx, tmp_path, rows).reliability
    pair = table[table["analysis"] == "inter-rater, rater pair"].iloc[0]
    expected = rel.weighted_kappa(a, b, levels=[1, 1.5, 2, 2.5, 3], weights="linear")
    assert pair["kappa_linear"] == pytest.approx(expected.kappa, abs=1e-12)
    assert pair["exact_agreement"] == pytest.approx(5 / 8)
