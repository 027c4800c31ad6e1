"""The trial's tables: within-arm change, between-arm comparison, level counts and reliability.

All tables are tidy :class:`pandas.DataFrame` s with one row per analysis unit and the same columns
for every row, so they go to CSV, Excel and the report unchanged.

Analysis rules (the report's *Methods* section says the same):

* Primary analysis: first showings only (disguised repeats serve intra-rater reliability), ratings
  "cannot assess" excluded, one row per region (× view) × scale × arm × follow-up timepoint × rater.
  A participant enters a paired test when both the baseline and that follow-up were rated.
* Ordinal scales: median (IQR, quartiles by SPSS's (n + 1)p rule), mean (SD), counts per declared
  level at both timepoints; mean change (follow-up − baseline, in scale units) with its t-based
  95% CI; Wilcoxon signed-rank test as SPSS reports it (zero differences dropped, tie-corrected
  normal approximation without continuity correction), the exact p when there are no ties or zero
  differences and n ≤ 50; effect sizes r = Z/√N with N = the non-zero pairs, and the matched-pairs
  rank-biserial correlation, both positive when participants improved.
* Categorical scales (``kind = "categorical"``, the Glogau types): the categories are ordered but
  their distances are not defined, so no means, SDs, mean change or signed-rank test: counts per
  category at both timepoints, improved / unchanged / worsened, and the exact sign test.
* Responders: participants at least one level better in the scale's own direction
  (:attr:`Scale.better`), with the Wilson 95% CI.
* Between arms, only where the arms used the same scale on the same region (and view): the
  Mann–Whitney U test on the change (tie-corrected Z, no continuity correction, r = Z/√(n₁ + n₂));
  for categorical scales Fisher's exact test on the responder counts. Otherwise a row says why no
  test was made.
* Pairs presentation: each answer is an improvement score (much better follow-up = +2 … much
  better baseline = −2); one-sample Wilcoxon signed-rank test against 0, responders = score ≥ 1.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import reliability as rel
from . import stats
from .unblind import Unblinded

__all__ = [
    "SUMMARY_COLUMNS",
    "RELIABILITY_COLUMNS",
    "IMPROVEMENT_LEVELS",
    "primary",
    "summary_table",
    "distribution_table",
    "reliability_table",
    "quartiles",
]

NAN = float("nan")
IMPROVEMENT_LEVELS = (-2, -1, 0, 1, 2)
IMPROVEMENT_LABELS = {-2: "Much better baseline", -1: "Better baseline", 0: "No difference",
                      1: "Better follow-up", 2: "Much better follow-up"}

SUMMARY_COLUMNS = (
    "analysis", "region", "view", "scale", "scale_kind", "better", "arm", "baseline", "timepoint",
    "rater", "n_pairs", "n_excluded",
    "baseline_median", "baseline_q1", "baseline_q3", "baseline_mean", "baseline_sd", "baseline_counts",
    "followup_median", "followup_q1", "followup_q3", "followup_mean", "followup_sd", "followup_counts",
    "mean_change", "sd_change", "change_ci_low", "change_ci_high",
    "n_improved", "n_unchanged", "n_worsened",
    "test", "statistic", "z", "p", "p_exact", "p_exact_note", "effect_r", "effect_r_n",
    "rank_biserial", "responders", "responder_rate", "responder_ci_low", "responder_ci_high", "note",
)

RELIABILITY_COLUMNS = (
    "analysis", "scale", "scale_kind", "raters", "n",
    "kappa", "kappa_ci_low", "kappa_ci_high",
    "kappa_linear", "kappa_linear_ci_low", "kappa_linear_ci_high",
    "kappa_quadratic", "kappa_quadratic_ci_low", "kappa_quadratic_ci_high",
    "exact_agreement", "within_one_agreement",
    "icc", "icc_ci_low", "icc_ci_high", "icc_f", "icc_p", "alpha", "alpha_level",
    "identified", "wrong", "cannot_tell", "share_identified", "share_ci_low", "share_ci_high",
    "binomial_p", "note",
)


def quartiles(values) -> tuple[float, float, float]:
    """Median and quartiles as SPSS computes them (weighted average at (n + 1)p).

    >>> quartiles([1, 2, 3, 4, 5, 6])
    (3.5, 1.75, 5.25)
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return NAN, NAN, NAN
    q1, med, q3 = np.percentile(v, [25, 50, 75], method="weibull")
    return float(med), float(q1), float(q3)


def counts_text(values, levels) -> str:
    """Counts per declared level, e.g. ``"1=0; 2=3; 3=1"``.

    >>> counts_text([2, 2, 3, 2], [1, 2, 3])
    '1=0; 2=3; 3=1'
    """
    v = pd.Series(values).value_counts()
    return "; ".join(f"{lv}={int(v.get(lv, 0))}" for lv in levels)


def primary(u: Unblinded, columns: list[str] | None = None) -> pd.DataFrame:
    """First showings with a usable rating: the data of the primary analysis (optionally only
    some columns, which is faster for a large trial)."""
    long = u.long
    rows = (~long["repeat"] & ~long["cannot_assess"]).to_numpy()
    return long.loc[rows, columns] if columns is not None else long[rows]


def _describe(prefix: str, v: np.ndarray, levels, categorical: bool) -> dict:
    out = {f"{prefix}_counts": counts_text(v, levels) if len(levels) else ""}
    if categorical:
        return out
    med, q1, q3 = quartiles(v)
    out.update({f"{prefix}_median": med, f"{prefix}_q1": q1, f"{prefix}_q3": q3,
                f"{prefix}_mean": float(v.mean()) if v.size else NAN,
                f"{prefix}_sd": float(v.std(ddof=1)) if v.size > 1 else NAN})
    return out


def _t_stats(improvement: np.ndarray, raw_change: np.ndarray) -> dict:
    """A VAS analysed by the paired t-test: mean change with its CI, t, p and r."""
    mean, sd, lo, hi = stats.mean_ci(raw_change)
    t = stats.paired_t(improvement)
    return {"n_improved": int((improvement > 0).sum()), "n_unchanged": int((improvement == 0).sum()),
            "n_worsened": int((improvement < 0).sum()), "mean_change": mean, "sd_change": sd,
            "change_ci_low": lo, "change_ci_high": hi, "test": "paired t-test",
            "statistic": t.t, "p": t.p, "effect_r": t.r, "effect_r_n": f"df = {t.df:g}"}


def _change_stats(improvement: np.ndarray, raw_change: np.ndarray | None, categorical: bool,
                  scale=None) -> dict:
    """Tests and effect sizes of one group of changes (improvement: positive = better).

    A VAS (``scale`` continuous) has no levels, so no responders: it is tested as its ``test``
    declares, by the paired t-test or (``"wilcoxon"``) the signed-rank test.
    """
    continuous = scale is not None and scale.continuous
    if continuous and scale.test == "paired-t":
        return _t_stats(improvement, raw_change)
    n = int(improvement.size)
    out: dict = {
        "n_improved": int((improvement > 0).sum()),
        "n_unchanged": int((improvement == 0).sum()),
        "n_worsened": int((improvement < 0).sum()),
    }
    if not continuous:
        responders = int((improvement >= 1).sum())
        low, high = stats.wilson_ci(responders, n)
        out.update({"responders": responders, "responder_rate": responders / n if n else NAN,
                    "responder_ci_low": low, "responder_ci_high": high})
    if categorical:
        out.update({"test": "sign test (exact)", "statistic": float(out["n_improved"]),
                    "p": stats.sign_test(out["n_improved"], out["n_worsened"]),
                    "p_exact_note": "exact binomial; unchanged left out"})
        return out
    if raw_change is not None:
        mean, sd, lo, hi = stats.mean_ci(raw_change)
        out.update({"mean_change": mean, "sd_change": sd, "change_ci_low": lo, "change_ci_high": hi})
    w = stats.wilcoxon_signed_rank(improvement)
    out.update({"test": "Wilcoxon signed-rank", "statistic": min(w.t_plus, w.t_minus),
                "z": w.z, "p": w.p, "p_exact": w.p_exact, "p_exact_note": w.exact_note,
                "effect_r": w.r, "effect_r_n": f"{w.n_nonzero} non-zero pairs",
                "rank_biserial": w.rank_biserial})
    return out


def summary_table(u: Unblinded) -> pd.DataFrame:
    """Within-arm change per region × view × scale × arm × follow-up × rater, then between arms."""
    data = primary(u, ["rater", "arm", "region", "view", "scale", "participant", "timepoint",
                       "kind", "score", "improvement"])
    rows: list[dict] = []
    changes: dict[tuple, tuple[str, np.ndarray]] = {}  # (region, view, tp, rater, arm) -> (scale, improvement)
    singles = data[data["kind"] == "single"]
    if len(singles):
        # One first showing per rater × participant × region × view × timepoint: per group, a
        # participant × timepoint grid of scores.
        present = set(singles["timepoint"].unique().tolist())
        tp_codes, tp_names = pd.factorize(singles["timepoint"])
        tp_index = np.array([u.timepoints.index(t) for t in tp_names], dtype="int64")[tp_codes]
        score = singles["score"].to_numpy(dtype="float64", na_value=np.nan)
        participant = singles["participant"].to_numpy()
        groups = singles.groupby(["rater", "arm", "region", "view", "scale"], sort=True,
                                 observed=True).indices
        for (rater, arm, region, view, scale_id), idx in groups.items():
            scale = u.set.scales[scale_id]
            categorical = scale.kind == "categorical"
            if u.baseline not in present:
                continue
            who = pd.factorize(participant[idx], sort=True)[0]
            grid = np.full((who.max() + 1, len(u.timepoints)), np.nan)
            grid[who[::-1], tp_index[idx][::-1]] = score[idx][::-1]  # the first showing wins
            base_all = grid[:, 0]
            for tp in u.followups:
                if tp not in present:
                    continue
                fu_all = grid[:, u.timepoints.index(tp)]
                both = ~np.isnan(base_all) & ~np.isnan(fu_all)
                either = ~np.isnan(base_all) | ~np.isnan(fu_all)
                before = base_all[both]
                after = fu_all[both]
                improvement = (before - after) if scale.better == "lower" else (after - before)
                row = {"analysis": "within arm", "region": region, "view": view, "scale": scale_id,
                       "scale_kind": scale.kind, "better": scale.better, "arm": arm,
                       "baseline": u.baseline, "timepoint": tp, "rater": rater,
                       "n_pairs": int(both.sum()), "n_excluded": int((either & ~both).sum())}
                row.update(_describe("baseline", before, scale.values, categorical))
                row.update(_describe("followup", after, scale.values, categorical))
                row.update(_change_stats(improvement, after - before, categorical, scale))
                if scale.continuous:
                    row["note"] = (f"visual analogue scale {scale.minimum}–{scale.maximum}: means, "
                                   f"SDs and the {row['test']}; no responders (no levels)")
                if categorical:
                    row["note"] = ("categorical scale: counts, responders and sign test; no means "
                                   "or signed-rank test")
                rows.append(row)
                changes[(region, view, tp, rater, arm)] = (scale_id, improvement)
    pairs = data[data["kind"] == "pair"]
    for (rater, arm, region, view, scale_id, tp), grp in pairs.groupby(
            ["rater", "arm", "region", "view", "scale", "timepoint"], sort=False):
        improvement = grp["improvement"].astype("float64").dropna().to_numpy()
        row = {"analysis": "within arm (pairs)", "region": region, "view": view, "scale": scale_id,
               "scale_kind": "improvement score", "better": "higher", "arm": arm,
               "baseline": u.baseline, "timepoint": tp, "rater": rater,
               "n_pairs": int(improvement.size), "n_excluded": 0}
        row.update(_describe("followup", improvement, IMPROVEMENT_LEVELS, False))
        stats_ = _change_stats(improvement, improvement, False)
        stats_["test"] = "Wilcoxon signed-rank vs 0"
        row.update(stats_)
        row["note"] = ("improvement scores from the side-by-side comparison: +2 much better "
                       "follow-up … −2 much better baseline; follow-up columns describe the scores")
        rows.append(row)
        changes[(region, view, tp, rater, arm)] = ("pairs:" + scale_id, improvement)
    rows.extend(_between_arms(u, changes))
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return _order(table, u)


def _order(table: pd.DataFrame, u: Unblinded) -> pd.DataFrame:
    if table.empty:
        return table
    tp = {t: i for i, t in enumerate(u.timepoints)}
    arm = {a: i for i, a in enumerate(u.arms)}
    kind = {"within arm": 0, "within arm (pairs)": 0, "between arms": 1}
    keys = pd.DataFrame({
        "k": table["analysis"].map(kind).fillna(2),
        "r": table["region"], "v": table["view"], "t": table["timepoint"].map(tp),
        "rt": table["rater"], "a": table["arm"].map(arm).fillna(len(arm)),
    })
    idx = keys.sort_values(["k", "r", "v", "t", "rt", "a"], kind="stable").index
    return table.loc[idx].reset_index(drop=True)


def _between_arms(u: Unblinded, changes: dict) -> list[dict]:
    if len(u.arms) < 2:
        return []
    rows = []
    units = sorted({k[:4] for k in changes}, key=lambda k: (k[0], k[1], k[2], k[3]))
    for region, view, tp, rater in units:
        present = {arm: changes[(region, view, tp, rater, arm)] for arm in u.arms
                   if (region, view, tp, rater, arm) in changes}
        for a, b in itertools.combinations(u.arms, 2):
            row = {"analysis": "between arms", "region": region, "view": view, "baseline": u.baseline,
                   "timepoint": tp, "rater": rater, "arm": f"{a} vs {b}"}
            if a not in present or b not in present:
                only = a if a in present else b
                row["note"] = (f"not tested: only {only} was assessed on {region}"
                               + (f"/{view}" if view else ""))
                row["scale"] = present[only][0].removeprefix("pairs:")
                rows.append(row)
                continue
            (scale_a, x), (scale_b, y) = present[a], present[b]
            if scale_a != scale_b:
                row["note"] = (f"not tested: the arms used different scales on {region} "
                               f"({scale_a.removeprefix('pairs:')} and {scale_b.removeprefix('pairs:')})")
                rows.append(row)
                continue
            is_pairs = scale_a.startswith("pairs:")
            scale_id = scale_a.removeprefix("pairs:")
            scale = u.set.scales[scale_id]
            row.update({"scale": scale_id,
                        "scale_kind": "improvement score" if is_pairs else scale.kind,
                        "better": "higher" if is_pairs else scale.better,
                        "n_pairs": int(x.size + y.size)})
            if scale.kind == "categorical" and not is_pairs:
                ra, rb = int((x >= 1).sum()), int((y >= 1).sum())
                table = [[ra, x.size - ra], [rb, y.size - rb]]
                p = float(sps.fisher_exact(table).pvalue) if x.size and y.size else NAN
                row.update({"test": "Fisher exact (responders)", "p": p,
                            "note": f"responders {ra}/{x.size} ({a}) vs {rb}/{y.size} ({b}); "
                                    "categorical scale"})
            elif scale.continuous and scale.test == "paired-t" and not is_pairs:
                t = stats.welch_t(x, y)
                row.update({"test": "Welch t-test on the change", "statistic": t.t, "p": t.p,
                            "effect_r": t.r, "effect_r_n": f"df = {t.df:.1f}",
                            "mean_change": t.mean, "change_ci_low": t.ci_low,
                            "change_ci_high": t.ci_high,
                            "note": f"n {a} = {x.size}, n {b} = {y.size}; t > 0: {a} improved "
                                    "more; mean_change: difference of the mean improvements"
                                    + ("; no multiplicity adjustment" if len(u.arms) > 2 else "")})
            else:
                m = stats.mann_whitney(x, y)
                row.update({"test": "Mann-Whitney U on the change", "statistic": m.u, "z": m.z,
                            "p": m.p, "p_exact": m.p_exact, "p_exact_note": m.exact_note,
                            "effect_r": m.r, "effect_r_n": f"n1 + n2 = {m.n1 + m.n2}",
                            "note": f"n {a} = {m.n1}, n {b} = {m.n2}; Z > 0: {a} improved more"
                                    + ("; no multiplicity adjustment" if len(u.arms) > 2 else "")})
            rows.append(row)
    return rows


def distribution_table(u: Unblinded) -> pd.DataFrame:
    """Counts and percentages per level: region × view × scale × arm × timepoint × rater × level."""
    data = primary(u, ["region", "view", "scale", "arm", "timepoint", "rater", "kind", "score",
                       "improvement"])
    out = []
    singles = data[data["kind"] == "single"]
    if len(singles):
        counts = (singles.groupby(["region", "view", "scale", "arm", "timepoint", "rater", "score"],
                                  observed=True).size().rename("n").reset_index())
        for keys, grp in counts.groupby(["region", "view", "scale", "arm", "timepoint", "rater"],
                                        sort=False):
            scale = u.set.scales[keys[2]]
            if scale.continuous:  # a VAS has no levels to count
                continue
            got = dict(zip(grp["score"].astype("float64"), grp["n"]))
            total = sum(got.values())
            for lv in scale.levels:
                n = int(got.get(lv.value, 0))
                out.append((*keys, lv.value, lv.label, n, n / total if total else NAN))
    pairs = data[data["kind"] == "pair"]
    if len(pairs):
        counts = (pairs.groupby(["region", "view", "scale", "arm", "timepoint", "rater",
                                 "improvement"], observed=True).size().rename("n").reset_index())
        for keys, grp in counts.groupby(["region", "view", "scale", "arm", "timepoint", "rater"],
                                        sort=False):
            got = dict(zip(grp["improvement"].astype(int), grp["n"]))
            total = sum(got.values())
            for lv in IMPROVEMENT_LEVELS:
                n = int(got.get(lv, 0))
                out.append((*keys, lv, IMPROVEMENT_LABELS[lv], n, n / total if total else NAN))
    table = pd.DataFrame(out, columns=["region", "view", "scale", "arm", "timepoint", "rater",
                                       "level", "label", "n", "share"])
    if table.empty:
        return table
    tp = {t: i for i, t in enumerate(u.timepoints)}
    arm = {a: i for i, a in enumerate(u.arms)}
    order = table.assign(_t=table["timepoint"].map(tp), _a=table["arm"].map(arm)).sort_values(
        ["region", "view", "rater", "_a", "_t", "level"], kind="stable").index
    return table.loc[order].reset_index(drop=True)


# --------------------------------------------------------------------------------- reliability


def _iccs(a: np.ndarray, b: np.ndarray) -> dict:
    """Agreement of two series of a continuous score (a VAS): ICC(2,1), absolute agreement."""
    out: dict = {"n": int(a.size)}
    if a.size >= 2:
        icc = rel.icc_2_1(np.column_stack([a, b]))
        out.update({"icc": icc.icc, "icc_ci_low": icc.ci_low, "icc_ci_high": icc.ci_high,
                    "icc_f": icc.f, "icc_p": icc.p})
    return out


def _kappas(a: np.ndarray, b: np.ndarray, levels, categorical: bool) -> dict:
    if not len(levels):  # a VAS: no levels to weight, the ICC instead of kappa
        return _iccs(a, b)
    out = {"n": int(a.size)}
    if a.size == 0:
        return out
    k = rel.weighted_kappa(a, b, levels, weights=None)
    out.update({"kappa": k.kappa, "kappa_ci_low": k.ci_low, "kappa_ci_high": k.ci_high})
    exact, within = rel.agreement(a, b)
    out["exact_agreement"] = exact
    if not categorical:
        for w in ("linear", "quadratic"):
            k = rel.weighted_kappa(a, b, levels, weights=w)
            out.update({f"kappa_{w}": k.kappa, f"kappa_{w}_ci_low": k.ci_low,
                        f"kappa_{w}_ci_high": k.ci_high})
        out["within_one_agreement"] = within
    return out


def repeat_pairs(u: Unblinded) -> pd.DataFrame:
    """First showing and disguised repeat of the same photo by the same rater, side by side.

    Columns: rater, scale, kind, region, first, repeat (scores, or improvement scores for pairs).
    """
    long = u.long.loc[~u.long["cannot_assess"].to_numpy(),
                      ["rater", "first_showing", "code", "repeat", "score", "improvement", "scale",
                       "kind", "region"]]
    value = long["score"].where(long["kind"] == "single", long["improvement"]).astype("float64")
    long = long.assign(value=value)
    repeat = long["repeat"].to_numpy()
    reps = long[repeat]
    firsts = long[~repeat]
    # The first showing of each repeat: same rater, its code is the repeat's first_showing.
    first_row = np.full(len(reps), -1, dtype="int64")
    codes, wanted = firsts["code"].to_numpy(), reps["first_showing"].to_numpy()
    rep_rater, first_rater = reps["rater"].to_numpy(), firsts["rater"].to_numpy()
    for rater in pd.unique(rep_rater):
        mine = np.flatnonzero(rep_rater == rater)
        theirs = np.flatnonzero(first_rater == rater)
        found = pd.Index(codes[theirs]).get_indexer(wanted[mine])
        first_row[mine] = np.where(found >= 0, theirs[np.maximum(found, 0)], -1)
    reps, first_row = reps[first_row >= 0], first_row[first_row >= 0]
    return pd.DataFrame({"rater": reps["rater"].to_numpy(), "scale": reps["scale"].to_numpy(),
                         "kind": reps["kind"].to_numpy(), "region": reps["region"].to_numpy(),
                         "first": firsts["value"].to_numpy()[first_row],
                         "repeat": reps["value"].to_numpy()})


def _grid(rows: pd.Series, columns: pd.Series, values: np.ndarray, names: list[str]) -> pd.DataFrame:
    """``values`` laid out with one row per distinct ``rows`` value (sorted) and one column per
    name of ``names`` (in that order); the first value of a cell wins, missing cells are NaN."""
    r, _ = pd.factorize(rows, sort=True)
    c = pd.Index(names).get_indexer(columns)
    keep = c >= 0
    grid = np.full((r.max() + 1 if len(r) else 0, len(names)), np.nan)
    grid[r[keep][::-1], c[keep][::-1]] = values[keep][::-1]
    return pd.DataFrame(grid, columns=names)


def reliability_table(u: Unblinded) -> pd.DataFrame:
    """Intra-rater (repeats), inter-rater (≥ 2 raters) and, for pairs, the blinding index."""
    rows: list[dict] = []
    pairs = repeat_pairs(u)
    for (kind, scale_id, rater), grp in pairs.groupby(["kind", "scale", "rater"], sort=True):
        scale = u.set.scales[scale_id]
        is_pair = kind == "pair"
        levels = IMPROVEMENT_LEVELS if is_pair else scale.values
        categorical = scale.kind == "categorical" and not is_pair
        row = {"analysis": "intra-rater (repeats)" + (", pairs" if is_pair else ""),
               "scale": scale_id, "scale_kind": "improvement score" if is_pair else scale.kind,
               "raters": rater}
        row.update(_kappas(grp["first"].to_numpy(), grp["repeat"].to_numpy(), levels, categorical))
        row["note"] = ("first showing vs disguised repeat; kappa weights over the declared levels "
                       f"{', '.join(map(str, levels))}" if len(levels) else
                       "first showing vs disguised repeat; visual analogue scale: ICC(2,1) "
                       "absolute agreement instead of kappa")
        rows.append(row)
    raters = u.set.raters
    data = primary(u, ["kind", "scale", "rater", "code", "score", "improvement",
                       "baseline_identified"])
    if len(raters) >= 2 and len(data):
        value = data["score"].where(data["kind"] == "single", data["improvement"]).astype("float64")
        # A photo (or pair) has one code for every rater: the code is the unit rated.
        data = data.assign(value=value, unit=data["code"])
        for (kind, scale_id), grp in data.groupby(["kind", "scale"], sort=True):
            scale = u.set.scales[scale_id]
            is_pair = kind == "pair"
            levels = IMPROVEMENT_LEVELS if is_pair else scale.values
            categorical = scale.kind == "categorical" and not is_pair
            wide = _grid(grp["unit"], grp["rater"], grp["value"].to_numpy(),
                         [r for r in raters if r in set(grp["rater"].unique().tolist())])
            if wide.shape[1] < 2:
                continue
            row = {"analysis": "inter-rater" + (", pairs" if is_pair else ""), "scale": scale_id,
                   "scale_kind": "improvement score" if is_pair else scale.kind,
                   "raters": " & ".join(wide.columns)}
            complete = wide.dropna()
            level = "nominal" if categorical else "interval" if not len(levels) else "ordinal"
            row["alpha"] = rel.krippendorff_alpha(wide.to_numpy().T, levels or None, level)
            row["alpha_level"] = level
            row["n"] = int(len(complete))
            if not categorical:
                icc = rel.icc_2_1(complete.to_numpy())
                row.update({"icc": icc.icc, "icc_ci_low": icc.ci_low, "icc_ci_high": icc.ci_high,
                            "icc_f": icc.f, "icc_p": icc.p})
            row["note"] = (f"{len(complete)} photos rated by all {wide.shape[1]} raters "
                           f"(alpha uses all {len(wide)}); ICC(2,1) absolute agreement"
                           if not categorical else
                           f"{len(complete)} photos rated by all raters; categorical: "
                           "nominal alpha and unweighted kappa")
            rows.append(row)
            for r1, r2 in itertools.combinations(wide.columns, 2):
                both = wide[[r1, r2]].dropna()
                sub = {"analysis": "inter-rater, rater pair" + (", pairs" if is_pair else ""),
                       "scale": scale_id, "scale_kind": row["scale_kind"], "raters": f"{r1} & {r2}"}
                sub.update(_kappas(both[r1].to_numpy(), both[r2].to_numpy(), levels, categorical))
                rows.append(sub)
    pair_data = data[data["kind"] == "pair"] if len(data) else data
    if len(pair_data):
        # Per rater only: two raters' answers on the same pairs are not independent.
        for who, grp in ((r, pair_data[pair_data["rater"] == r]) for r in raters):
            ident = grp["baseline_identified"]
            identified = int((ident == True).sum())  # noqa: E712 (nullable boolean)
            wrong = int((ident == False).sum())  # noqa: E712
            cannot = int(ident.isna().sum())
            bi = rel.blinding_index(identified, wrong, cannot)
            rows.append({"analysis": "blinding index", "scale": "", "raters": who, "n": bi.n,
                         "identified": identified, "wrong": wrong, "cannot_tell": cannot,
                         "share_identified": bi.share, "share_ci_low": bi.ci_low,
                         "share_ci_high": bi.ci_high, "binomial_p": bi.p,
                         "note": "pairs whose baseline photo was named as taken first, of those "
                                 "answered left/right; exact binomial test against 50%"})
    return pd.DataFrame(rows, columns=list(RELIABILITY_COLUMNS))

