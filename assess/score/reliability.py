"""Reliability: weighted kappa, Fleiss' kappa, the ICCs, Krippendorff's alpha, agreement, blinding.

Cohen's and Fleiss' kappa and the six ICCs are written here with NumPy (SciPy has none); each carries
a doctest that reproduces the published values of its source. Krippendorff's alpha comes from the
``krippendorff`` package, the blinding index's test from :func:`scipy.stats.binomtest`.

Kappa weights are computed over the scale's *declared* levels (for WSRS 1–5 even when nobody used 5):
R's ``irr::kappa2`` uses the observed levels only and gives other values when a level is unused.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import krippendorff
import numpy as np
from scipy import stats

__all__ = [
    "KappaResult",
    "ICCResult",
    "BlindingIndex",
    "confusion_table",
    "kappa_from_table",
    "weighted_kappa",
    "agreement",
    "icc_2_1",
    "icc",
    "ICC_FORMS",
    "FleissResult",
    "fleiss_kappa",
    "category_counts",
    "krippendorff_alpha",
    "blinding_index",
]

NAN = float("nan")
Z975 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa with its asymptotic standard error and 95% confidence interval."""

    kappa: float
    ase: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def _level_index(levels: Sequence[float]):
    """A function from scores to their positions in ``levels``; it refuses a score that is not
    one of them, naming it.

    >>> _level_index([1, 2, 3])([3, 1]).tolist()
    [2, 0]
    >>> _level_index([0, 0.5, 1])([0.25])
    Traceback (most recent call last):
    ValueError: 0.25 is not one of the declared levels [0, 0.5, 1]
    """
    levels = list(levels)
    if not levels:
        raise ValueError("no declared levels")
    declared = np.asarray(levels, dtype=float)
    order = np.argsort(declared, kind="stable")
    ranked = declared[order]

    def index(values) -> np.ndarray:
        v = np.asarray(values, dtype=float).ravel()
        pos = np.minimum(np.searchsorted(ranked, v), len(levels) - 1)
        unknown = ranked[pos] != v
        if unknown.any():
            bad = v[unknown][0]
            shown = int(bad) if float(bad).is_integer() else float(bad)
            raise ValueError(f"{shown!r} is not one of the declared levels {levels}")
        return order[pos]

    return index


def confusion_table(a, b, levels: Sequence[int]) -> np.ndarray:
    """Counts of (a, b) pairs over the declared ``levels`` (rows: a, columns: b).

    >>> confusion_table([1, 2, 2], [1, 3, 2], levels=[1, 2, 3]).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    """
    levels = list(levels)
    index = _level_index(levels)
    k = len(levels)
    return np.bincount(index(a) * k + index(b), minlength=k * k).reshape(k, k)


def kappa_from_table(table, weights: str | None = None, values: Sequence[float] | None = None
                     ) -> KappaResult:
    """Cohen's kappa (simple or weighted) from a square table of counts.

    Parameters
    ----------
    table : array_like, shape (k, k)
        Counts; rows are the first rating, columns the second, both over the same k ordered levels.
    weights : {None, "linear", "quadratic"}
        ``None``: simple kappa. ``"linear"``: Cicchetti–Allison weights 1 − |vᵢ − vⱼ| / (v_max − v_min).
        ``"quadratic"``: Fleiss–Cohen weights 1 − (vᵢ − vⱼ)² / (v_max − v_min)².
    values : sequence of float, optional
        The level values (scores) of the rows/columns; default 1..k.

    Returns
    -------
    KappaResult
        kappa, its asymptotic standard error (Fleiss, Cohen & Everitt 1969, as SAS PROC FREQ
        computes it) and the 95% Wald interval kappa ± 1.96 ASE, cut to [−1, 1].

    Examples
    --------
    SAS/STAT PROC FREQ documentation, "Agreement Study": two dermatologists rate 88 patients as
    Terrible, Poor, Marginal, Clear. Published: simple kappa 0.3449 (ASE 0.0724, 95% CI
    0.2030–0.4868), weighted kappa with Cicchetti–Allison weights 0.5082 (ASE 0.0655), with
    Fleiss–Cohen weights 0.6607.

    >>> sas = [[10, 4, 1, 0], [5, 10, 12, 2], [2, 4, 12, 5], [0, 2, 6, 13]]
    >>> k = kappa_from_table(sas)
    >>> round(k.kappa, 4), round(k.ase, 4), round(k.ci_low, 4), round(k.ci_high, 4)
    (0.3449, 0.0724, 0.203, 0.4868)
    >>> k = kappa_from_table(sas, "linear")
    >>> round(k.kappa, 4), round(k.ase, 4)
    (0.5082, 0.0655)
    >>> round(kappa_from_table(sas, "quadratic").kappa, 4)
    0.6607

    A 3 × 3 table from the SAS documentation (also in statsmodels' tests): simple kappa 0.4842
    (ASE 0.1380), linear weighted kappa 0.4701.

    >>> t = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]
    >>> round(kappa_from_table(t).kappa, 4), round(kappa_from_table(t).ase, 4)
    (0.4842, 0.138)
    >>> round(kappa_from_table(t, "linear").kappa, 4)
    0.4701
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 2:
        raise ValueError("the table must be square with at least two levels")
    k = t.shape[0]
    n = float(t.sum())
    if n == 0:
        return KappaResult(NAN, NAN, NAN, NAN, 0)
    v = np.arange(1, k + 1, dtype=float) if values is None else np.asarray(values, dtype=float)
    span = v[-1] - v[0]
    diff = v[:, None] - v[None, :]
    if weights is None:
        w = np.eye(k)
    elif weights == "linear":
        w = 1 - np.abs(diff) / span
    elif weights == "quadratic":
        w = 1 - diff**2 / span**2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}")
    p = t / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    po = float((w * p).sum())
    pe = float((w * np.outer(rows, cols)).sum())
    if pe == 1:
        return KappaResult(NAN, NAN, NAN, NAN, int(n))
    kappa = (po - pe) / (1 - pe)
    wi = w @ cols  # weighted column mean for each row level
    wj = rows @ w  # weighted row mean for each column level
    var = float((p * (w - (wi[:, None] + wj[None, :]) * (1 - kappa)) ** 2).sum()
                - (kappa - pe * (1 - kappa)) ** 2)
    ase = math.sqrt(max(var, 0.0)) / ((1 - pe) * math.sqrt(n))
    low, high = max(kappa - Z975 * ase, -1.0), min(kappa + Z975 * ase, 1.0)
    return KappaResult(kappa, ase, low, high, int(n))


def weighted_kappa(a, b, levels: Sequence[int], weights: str | None = "linear") -> KappaResult:
    """Cohen's kappa of paired ratings ``a`` and ``b`` with weights over the declared ``levels``.

    Examples
    --------
    Level 5 is declared but never used: it still sets the weights, 1 − |i − j| / 4. By hand:
    observed weighted agreement 11/12, expected 3/4, kappa = (11/12 − 3/4) / (1 − 3/4) = 2/3.

    >>> a, b = [1, 2, 3, 2, 1, 3], [1, 2, 2, 2, 1, 4]
    >>> round(weighted_kappa(a, b, levels=[1, 2, 3, 4, 5]).kappa, 4)
    0.6667
    """
    table = confusion_table(a, b, levels)
    return kappa_from_table(table, weights, values=list(levels))


def agreement(a, b) -> tuple[float, float]:
    """Share of pairs rated the same (exact) and within one level (±1): ``(exact, within_one)``.

    >>> agreement([1, 2, 3, 4], [1, 3, 3, 2])
    (0.5, 0.75)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0:
        return NAN, NAN
    d = np.abs(a - b)
    return float((d == 0).mean()), float((d <= 1).mean())


@dataclass(frozen=True)
class ICCResult:
    """An intraclass correlation with its confidence interval and F test.

    :func:`icc_2_1` gives ICC(2,1) (two-way random effects, absolute agreement, single rater:
    McGraw & Wong's ICC(A,1)); :func:`icc` gives any of the six forms of Shrout & Fleiss (1979).
    """

    icc: float
    ci_low: float
    ci_high: float
    f: float
    df1: int
    df2: int
    p: float
    n: int
    k: int
    form: str = "ICC(2,1)"

    def as_dict(self) -> dict:
        return asdict(self)


def icc_2_1(ratings, confidence: float = 0.95) -> ICCResult:
    """ICC(2,1) of Shrout & Fleiss (1979) with the McGraw & Wong (1996) confidence interval.

    Parameters
    ----------
    ratings : array_like, shape (n targets, k raters)
        Complete cases only (rows with a missing rating are dropped).

    Returns
    -------
    ICCResult
        ICC, its confidence interval, and the F test of H0: ICC = 0 (F = MSR / MSE).

    Examples
    --------
    Shrout & Fleiss (1979), Table 2: 4 judges rate 6 targets; published ICC(2,1) = .29. R's
    ``psych::ICC`` on the same data: F = 11, df 5 and 15, p = 0.00013, 95% CI 0.019 to 0.76.

    >>> sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> res = icc_2_1(sf)
    >>> round(res.icc, 2), round(res.f, 2), res.df1, res.df2, round(res.p, 5)
    (0.29, 11.03, 5, 15, 0.00013)
    >>> round(res.ci_low, 3), round(res.ci_high, 2)
    (0.019, 0.76)
    """
    y = np.asarray(ratings, dtype=float)
    if y.ndim != 2:
        raise ValueError("ratings must be a targets × raters table")
    y = y[~np.isnan(y).any(axis=1)]
    n, k = y.shape
    if n < 2 or k < 2:
        return ICCResult(NAN, NAN, NAN, NAN, max(n - 1, 0), max((n - 1) * (k - 1), 0), NAN, n, k)
    grand = y.mean()
    ss_rows = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((y.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((y - grand) ** 2).sum() - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    df1, df2 = n - 1, (n - 1) * (k - 1)
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    if denom == 0:
        return ICCResult(NAN, NAN, NAN, NAN, df1, df2, NAN, n, k)
    icc = (msr - mse) / denom
    if mse == 0:
        return ICCResult(float(icc), NAN, NAN, math.inf, df1, df2, 0.0, n, k)
    f = msr / mse
    p = float(stats.f.sf(f, df1, df2))
    alpha = 1 - confidence
    low = high = NAN
    if icc < 1:
        a = k * icc / (n * (1 - icc))
        b = 1 + k * icc * (n - 1) / (n * (1 - icc))
        v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / df2)
        fl = stats.f.ppf(1 - alpha / 2, df1, v)
        fu = stats.f.ppf(1 - alpha / 2, v, df1)
        low = n * (msr - fl * mse) / (fl * (k * msc + (k * n - k - n) * mse) + n * msr)
        high = n * (fu * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fu * msr)
    return ICCResult(float(icc), float(low), float(high), float(f), df1, df2, p, n, k)


ICC_FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")


def _mean_squares(y: np.ndarray) -> tuple[float, float, float, float]:
    """Between-targets, within-targets, between-judges and residual mean squares of a full table."""
    n, k = y.shape
    grand = y.mean()
    ss_rows = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((y.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((y - grand) ** 2).sum()
    ss_err = ss_total - ss_rows - ss_cols
    return (ss_rows / (n - 1), (ss_total - ss_rows) / (n * (k - 1)), ss_cols / (k - 1),
            ss_err / ((n - 1) * (k - 1)))


def icc(ratings, form: str = "ICC(2,k)", confidence: float = 0.95) -> ICCResult:
    """One of the six intraclass correlations of Shrout & Fleiss (1979), with its interval.

    Parameters
    ----------
    ratings : array_like, shape (n targets, k judges)
        Complete cases only (rows with a missing rating are dropped).
    form : {"ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)"}
        Model 1: one-way random (each target rated by different judges); 2: two-way random, absolute
        agreement (the judges are a sample of judges); 3: two-way mixed, consistency (these judges
        only). ``1``: reliability of one judge; ``k``: of the mean of the k judges.
    confidence : float
        Coverage of the interval (Shrout & Fleiss 1979, eq. 6–14; for ICC(2,k) the ICC(2,1) bounds
        carried through the Spearman–Brown formula, as R's ``psych::ICC`` does).

    Returns
    -------
    ICCResult
        ``f``, ``df1``, ``df2`` and ``p`` are the F test of H0: ICC = 0 (MSB/MSW for model 1,
        MSR/MSE for models 2 and 3).

    References
    ----------
    Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater reliability. Psychol
    Bull 1979;86:420–8. McGraw KO, Wong SP. Psychol Methods 1996;1:30–46.

    Examples
    --------
    Shrout & Fleiss (1979), Table 2 (6 targets, 4 judges); published in their Table 4:
    ICC(1,1) = .17, ICC(2,1) = .29, ICC(3,1) = .71, ICC(1,4) = .44, ICC(2,4) = .62,
    ICC(3,4) = .91.

    >>> sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> [round(icc(sf, f).icc, 2) for f in ICC_FORMS]
    [0.17, 0.29, 0.71, 0.44, 0.62, 0.91]

    R's ``psych::ICC`` on the same table gives these intervals (and F = 11.03 on 5 and 15 df for
    models 2 and 3, 1.79 on 5 and 18 df for model 1):

    >>> [tuple(round(x, 2) for x in (icc(sf, f).ci_low, icc(sf, f).ci_high)) for f in ICC_FORMS]
    [(-0.13, 0.72), (0.02, 0.76), (0.34, 0.95), (-0.88, 0.91), (0.07, 0.93), (0.68, 0.99)]
    >>> r = icc(sf, "ICC(3,k)"); round(r.f, 2), r.df1, r.df2
    (11.03, 5, 15)
    >>> r = icc(sf, "ICC(1,1)"); round(r.f, 2), r.df1, r.df2
    (1.79, 5, 18)
    """
    if form not in ICC_FORMS:
        raise ValueError(f"form must be one of {', '.join(ICC_FORMS)}, not {form!r}")
    y = np.asarray(ratings, dtype=float)
    if y.ndim != 2:
        raise ValueError("ratings must be a targets × raters table")
    y = y[~np.isnan(y).any(axis=1)]
    n, k = y.shape
    model, average = form[4], form[6] == "k"
    if form == "ICC(2,1)":
        return replace(icc_2_1(y, confidence), form=form)
    if model == "2":
        single = icc_2_1(y, confidence)
        k_up = (lambda r: k * r / (1 + (k - 1) * r))
        return replace(single, icc=k_up(single.icc), ci_low=k_up(single.ci_low),
                       ci_high=k_up(single.ci_high), form=form)
    df1 = max(n - 1, 0)
    df2 = max(n * (k - 1) if model == "1" else (n - 1) * (k - 1), 0)
    if n < 2 or k < 2:
        return ICCResult(NAN, NAN, NAN, NAN, df1, df2, NAN, n, k, form)
    msr, msw, _msc, mse = _mean_squares(y)
    between, within = msr, (msw if model == "1" else mse)
    if within == 0:
        return ICCResult(NAN if between == 0 else 1.0, NAN, NAN,
                         NAN if between == 0 else math.inf, df1, df2, NAN, n, k, form)
    f = between / within
    p = float(stats.f.sf(f, df1, df2))
    alpha = 1 - confidence
    f_low = f / stats.f.ppf(1 - alpha / 2, df1, df2)
    f_high = f * stats.f.ppf(1 - alpha / 2, df2, df1)
    if average:
        value, low, high = 1 - 1 / f, 1 - 1 / f_low, 1 - 1 / f_high
    else:
        value = (f - 1) / (f + k - 1)
        low, high = (f_low - 1) / (f_low + k - 1), (f_high - 1) / (f_high + k - 1)
    return ICCResult(float(value), float(low), float(high), float(f), df1, df2, p, n, k, form)


@dataclass(frozen=True)
class FleissResult:
    """Fleiss' kappa for many raters per subject, with P̄, P̄e and its standard error under H0."""

    kappa: float
    p_bar: float
    p_e: float
    se: float
    z: float
    p: float
    subjects: int
    raters: int

    def as_dict(self) -> dict:
        return asdict(self)


def category_counts(ratings, levels: Sequence[int]) -> np.ndarray:
    """Subjects × categories counts from a subjects × raters table (NaN: not rated).

    >>> category_counts([[1, 2, 2], [3, 3, np.nan]], levels=[1, 2, 3]).tolist()
    [[1, 2, 0], [0, 0, 2]]
    """
    y = np.asarray(ratings, dtype=float)
    levels = list(levels)
    k = len(levels)
    rated = ~np.isnan(y)
    rows = np.broadcast_to(np.arange(y.shape[0])[:, None], y.shape)[rated]
    return np.bincount(rows * k + _level_index(levels)(y[rated]),
                       minlength=y.shape[0] * k).reshape(y.shape[0], k)


def fleiss_kappa(counts) -> FleissResult:
    """Fleiss' kappa from a subjects × categories table of counts (same number of raters per row).

    Parameters
    ----------
    counts : array_like, shape (N subjects, k categories)
        How many of the n raters put each subject in each category. Rows with a different number
        of raters than the most common one are refused (Fleiss' kappa assumes n raters per subject).

    Returns
    -------
    FleissResult
        κ = (P̄ − P̄e) / (1 − P̄e); the standard error under H0: κ = 0 of Fleiss, Nee & Landis
        (1979) and its two-sided z test.

    References
    ----------
    Fleiss JL. Measuring nominal scale agreement among many raters. Psychol Bull 1971;76:378–82.
    Fleiss JL, Nee JCM, Landis JR. Large sample variance of kappa in the case of different sets of
    raters. Psychol Bull 1979;86:974–7.

    Examples
    --------
    The worked example of the Fleiss' kappa literature: 10 subjects, 14 raters, 5 categories;
    P̄ = 0.3780, P̄e = 0.2128, κ = 0.2099.

    >>> table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
    ...          [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
    ...          [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    >>> r = fleiss_kappa(table)
    >>> round(r.p_bar, 4), round(r.p_e, 4), round(r.kappa, 4), r.subjects, r.raters
    (0.378, 0.2128, 0.2099, 10, 14)
    """
    x = np.asarray(counts, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError("counts must be a subjects × categories table with two or more categories")
    per_row = x.sum(axis=1)
    x = x[per_row >= 2]
    if x.shape[0] == 0:
        return FleissResult(NAN, NAN, NAN, NAN, NAN, NAN, 0, 0)
    if np.unique(x.sum(axis=1)).size != 1:
        raise ValueError("Fleiss' kappa needs the same number of raters for every subject")
    big_n, n = x.shape[0], int(x[0].sum())
    p_j = x.sum(axis=0) / (big_n * n)
    p_i = ((x * x).sum(axis=1) - n) / (n * (n - 1))
    p_bar, p_e = float(p_i.mean()), float((p_j ** 2).sum())
    if p_e == 1:
        return FleissResult(NAN, p_bar, p_e, NAN, NAN, NAN, big_n, n)
    kappa = (p_bar - p_e) / (1 - p_e)
    q = p_j * (1 - p_j)
    sq = float(q.sum())
    se = NAN
    if sq > 0:
        se = math.sqrt(2 / (big_n * n * (n - 1))) * math.sqrt(
            sq ** 2 - float((q * (1 - 2 * p_j)).sum())) / sq
    z = kappa / se if se and not math.isnan(se) and se > 0 else NAN
    p = float(2 * stats.norm.sf(abs(z))) if not math.isnan(z) else NAN
    return FleissResult(float(kappa), p_bar, p_e, se, z, p, big_n, n)


def krippendorff_alpha(reliability_data, levels: Sequence[int] | None = None,
                       level_of_measurement: str = "ordinal") -> float:
    """Krippendorff's alpha (``krippendorff`` package) over the declared ``levels``.

    Parameters
    ----------
    reliability_data : array_like, shape (raters, units)
        NaN where a rater did not rate a unit.

    Examples
    --------
    Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 observers × 12 units with
    missing values; published alpha nominal 0.743, ordinal 0.815, interval 0.849.

    >>> n = np.nan
    >>> data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
    ...         [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]
    >>> [round(krippendorff_alpha(data, level_of_measurement=m), 3)
    ...  for m in ("nominal", "ordinal", "interval")]
    [0.743, 0.815, 0.849]
    """
    data = np.asarray(reliability_data, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        return NAN
    # Units rated by fewer than two raters carry no information on agreement.
    data = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    if data.shape[1] == 0:
        return NAN
    observed = np.unique(data[~np.isnan(data)])
    if observed.size < 2 and (levels is None or level_of_measurement == "nominal"):
        return NAN  # no variation: alpha is undefined
    domain = None if levels is None else [float(v) for v in levels]
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(krippendorff.alpha(reliability_data=data, value_domain=domain,
                                            level_of_measurement=level_of_measurement))
    except (ValueError, ZeroDivisionError):
        return NAN


@dataclass(frozen=True)
class BlindingIndex:
    """How often a rater of photo pairs identified which photo was taken first.

    ``identified`` answers named the baseline photo, ``wrong`` named the follow-up,
    ``cannot_tell`` said so. ``share`` = identified / (identified + wrong), with its Wilson 95% CI
    and the exact two-sided binomial test against 50% (guessing).
    """

    n: int
    identified: int
    wrong: int
    cannot_tell: int
    share: float
    ci_low: float
    ci_high: float
    p: float

    def as_dict(self) -> dict:
        return asdict(self)


def blinding_index(identified: int, wrong: int, cannot_tell: int = 0) -> BlindingIndex:
    """Share of answered pairs whose baseline photo was identified; exact binomial test vs 50%.

    >>> bi = blinding_index(identified=14, wrong=6, cannot_tell=5)
    >>> bi.n, round(bi.share, 2), round(bi.p, 4)
    (25, 0.7, 0.1153)
    """
    answered = int(identified) + int(wrong)
    n = answered + int(cannot_tell)
    if answered == 0:
        return BlindingIndex(n, int(identified), int(wrong), int(cannot_tell), NAN, NAN, NAN, NAN)
    test = stats.binomtest(int(identified), answered, 0.5)
    ci = test.proportion_ci(method="wilson")
    return BlindingIndex(n, int(identified), int(wrong), int(cannot_tell), identified / answered,
                         float(ci.low), float(ci.high), float(test.pvalue))
