"""What every column of the scorer's tables means: the data dictionary of ``ratings.xlsx`` and of
``docs/analysis.md``.
"""

from __future__ import annotations

import pandas as pd

from .export import Wide

__all__ = ["COLUMNS", "dictionary"]

_COMMON = {
    "analysis": "Which analysis the row belongs to (within arm, within arm (pairs), between arms; "
                "intra-rater, inter-rater, rater pair, blinding index)",
    "region": "Body region photographed", "view": "View of the region (e.g. left/right hand); "
                                                  "empty when the region has one view",
    "scale": "Rating scale id (its levels are in the report)",
    "scale_kind": "ordinal, categorical (ordered categories without distances) or improvement "
                  "score (side-by-side pairs)",
    "better": "Direction in which a participant improves on the scale (lower / higher)",
    "arm": "Treatment arm (from --participants; 'all' without it)",
    "timepoint": "Follow-up visit compared with the baseline", "rater": "Rater id",
    "baseline": "The baseline visit",
}

#: Description of each column, per table (sheet name -> column -> text).
COLUMNS: dict[str, dict[str, str]] = {
    "summary": {
        **_COMMON,
        "n_pairs": "Participants with a usable rating at both visits (those in the paired test)",
        "n_excluded": "Participants with a usable rating at only one of the two visits",
        "baseline_median": "Median at baseline (paired participants)",
        "baseline_q1": "First quartile at baseline, SPSS's (n + 1)p rule (HAVERAGE)",
        "baseline_q3": "Third quartile at baseline, SPSS's (n + 1)p rule (HAVERAGE)",
        "baseline_mean": "Mean at baseline", "baseline_sd": "Standard deviation at baseline",
        "baseline_counts": "Participants per declared level at baseline, level=count",
        "followup_median": "Median at the follow-up (pairs: of the improvement scores)",
        "followup_q1": "First quartile at the follow-up", "followup_q3": "Third quartile at the "
                                                                          "follow-up",
        "followup_mean": "Mean at the follow-up", "followup_sd": "Standard deviation at the "
                                                                 "follow-up",
        "followup_counts": "Participants per declared level at the follow-up, level=count",
        "mean_change": "Mean of follow-up minus baseline, in scale units",
        "sd_change": "Standard deviation of the change",
        "change_ci_low": "Lower end of the t-based 95% CI of the mean change",
        "change_ci_high": "Upper end of the t-based 95% CI of the mean change",
        "n_improved": "Participants better at the follow-up (in the scale's own direction)",
        "n_unchanged": "Participants at the same level", "n_worsened": "Participants worse",
        "test": "The test of the row",
        "statistic": "Wilcoxon: the smaller rank sum (SPSS); Mann-Whitney: U; sign test: improved",
        "z": "Z of the normal approximation, tie-corrected, no continuity correction (SPSS)",
        "p": "Two-sided p of the test (Wilcoxon and Mann-Whitney: SPSS's Asymp. Sig.)",
        "p_exact": "Exact two-sided p, when defined (no ties, no zero differences, n <= 50)",
        "p_exact_note": "Why the exact p is missing, or 'exact'",
        "effect_r": "Effect size r = Z / sqrt(N), positive when participants improved",
        "effect_r_n": "The N used by r (non-zero pairs, or n1 + n2)",
        "rank_biserial": "Matched-pairs rank-biserial correlation (T+ - T-) / (T+ + T-)",
        "responders": "Participants at least one level better",
        "responder_rate": "Responders / n_pairs",
        "responder_ci_low": "Lower end of the Wilson 95% CI of the responder rate",
        "responder_ci_high": "Upper end of the Wilson 95% CI of the responder rate",
        "note": "What else the row needs said (why no test, categorical scale, ...)",
    },
    "reliability": {
        **_COMMON,
        "raters": "The rater (intra-rater, blinding index) or raters compared",
        "n": "Photos (or pairs) compared",
        "kappa": "Cohen's kappa, unweighted",
        "kappa_ci_low": "Lower end of its 95% CI (kappa - 1.96 ASE)",
        "kappa_ci_high": "Upper end of its 95% CI (kappa + 1.96 ASE)",
        "kappa_linear": "Cohen's kappa, linear (Cicchetti-Allison) weights over the declared levels",
        "kappa_linear_ci_low": "Lower end of its 95% CI",
        "kappa_linear_ci_high": "Upper end of its 95% CI",
        "kappa_quadratic": "Cohen's kappa, quadratic (Fleiss-Cohen) weights over the declared "
                           "levels",
        "kappa_quadratic_ci_low": "Lower end of its 95% CI",
        "kappa_quadratic_ci_high": "Upper end of its 95% CI",
        "exact_agreement": "Share of photos rated the same",
        "within_one_agreement": "Share of photos rated within one level",
        "icc": "ICC(2,1): two-way random, absolute agreement, single rater",
        "icc_ci_low": "Lower end of its 95% CI (McGraw & Wong 1996)",
        "icc_ci_high": "Upper end of its 95% CI", "icc_f": "F = MSR / MSE",
        "icc_p": "p of the F test of ICC = 0",
        "alpha": "Krippendorff's alpha over every photo rated by two or more raters",
        "alpha_level": "Level of measurement used by alpha (ordinal or nominal)",
        "identified": "Pairs whose baseline photo was named as taken first",
        "wrong": "Pairs whose follow-up photo was named as taken first",
        "cannot_tell": "Pairs answered 'cannot tell'",
        "share_identified": "identified / (identified + wrong); 50% is guessing",
        "share_ci_low": "Lower end of its Wilson 95% CI", "share_ci_high": "Upper end",
        "binomial_p": "Exact two-sided binomial test of share_identified against 50%",
        "note": "What the row is based on",
    },
    "distribution": {
        **_COMMON, "timepoint": "Visit",
        "level": "Level of the scale (pairs: improvement score)", "label": "The level's label",
        "n": "First showings with that level", "share": "n / all first showings of the group",
    },
    "panel": {
        **_COMMON,
        "analysis": "adjudication rate, bias against consensus (per rater), Fleiss' kappa, "
                    "ICC(2,k) or ICC(3,k) of the panel",
        "scale": "Rating scale id; '(pairs)' for side-by-side pairs",
        "rater": "The rater (bias) or the raters of the panel (kappa, ICC)",
        "n": "Items (photos or pairs) the row is based on",
        "value": "The rate, mean difference, kappa or ICC",
        "ci_low": "Lower end of its 95% CI", "ci_high": "Upper end of its 95% CI",
        "p": "p of its test, where there is one", "note": "How the row is computed",
    },
    "panel_scores": {
        **_COMMON, "timepoint": "Visit",
        "item": "Item code (the photo's or pair's code in the worklists)",
        "kind": "single (one photo) or pair (side by side)",
        "participant": "Participant id",
        "n_raters": "Raters of the panel with a usable score of the item",
        "scores": "The panel's scores, ascending, without the raters' names",
        "consensus": "The panel's score by the study's [consensus] rule (empty: none, e.g. no "
                     "majority)",
        "adjudicate": "1 when the item was sent to the adjudicator",
        "reasons": "Why it was sent", "adjudicated": "The adjudicator's score",
        "adjudication_reason": "The adjudicator's reason",
        "final": "The endpoint: the adjudicated score, otherwise the consensus",
        "source": "consensus, adjudicated or pending adjudication",
    },
    "calibration": {
        "rater": "Rater id", "block": "Block of the live worklist (block 1: positions 1 to "
                                      "[calibration] block)",
        "first": "First worklist position of the block", "last": "Last worklist position",
        "n": "Calibration photos of the block the rater scored",
        "exact": "Share of them scored as the reference",
        "within_one": "Share within one grade of the reference",
        "flagged": "1 when the block's agreement is below a floor of [calibration]",
        "min_exact": "The study's floor of exact agreement (empty: none)",
        "min_within_one": "The study's floor of within-one agreement (empty: none)",
        "not_assessed": "Calibration photos of the block answered 'cannot assess' or not rated",
    },
}


def dictionary(sheets: dict[str, pd.DataFrame], long_labels: dict[str, str], wide: Wide
               ) -> pd.DataFrame:
    """``sheet, column, description`` of every column of ``sheets`` (the workbook's tables):
    ``ratings`` from ``long_labels``, ``wide`` from the wide table's variable labels."""
    rows = []
    for sheet, df in sheets.items():
        known = (long_labels if sheet == "ratings" else wide.labels if sheet == "wide"
                 else COLUMNS.get(sheet, {}))
        for col in df.columns:
            rows.append({"sheet": sheet, "column": col, "description": known.get(col, "")})
    return pd.DataFrame(rows, columns=["sheet", "column", "description"])
