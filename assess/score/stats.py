"""Paired and between-arm tests, effect sizes and confidence intervals.

Every test is the one in :mod:`scipy.stats`; this module picks the options a trial statistician
expects (those of SPSS, in which the trial's analysis plan was written) and returns the numbers
with what they are based on, so the report can say which N an effect size uses.

Differences are passed *in the direction of improvement* (positive = better, see
:meth:`assess.study.Scale.improvement`), so a positive rank-biserial correlation or r always means
improvement, whatever the scale's direction.

>>> res = wilcoxon_signed_rank([1, 1, 1, 0, 2, -1, 1, 1, 0, 1])
>>> res.n_nonzero, res.n_zero, res.exact_note
(8, 2, 'not computed: ties and zero differences')
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = [
    "EXACT_MAX_N",
    "WilcoxonResult",
    "MannWhitneyResult",
    "wilcoxon_signed_rank",
    "mann_whitney",
    "mean_ci",
    "TTestResult",
    "paired_t",
    "welch_t",
    "wilson_ci",
    "sign_test",
]

#: The exact signed-rank and rank-sum p-values are given up to this many observations (SciPy's
#: own limit for its exact distribution in ``method="auto"``).
EXACT_MAX_N = 50

NAN = float("nan")


@dataclass(frozen=True)
class WilcoxonResult:
    """Wilcoxon signed-rank test on paired differences, as SPSS reports it.

    ``z`` and ``p`` are SPSS's "Z" and "Asymp. Sig. (2-tailed)": zero differences dropped, normal
    approximation with the tie correction and without continuity correction. ``z`` is computed from
    the smaller rank sum, so it is never positive (as SPSS prints it). ``p_exact`` is the exact
    two-sided p when it is defined (no ties, no zeros, n ≤ :data:`EXACT_MAX_N`); ``exact_note``
    says why it is missing otherwise.

    Effect sizes: ``r`` = |Z| / √N with N = ``n_nonzero`` (the non-zero pairs that enter the test),
    signed positive when the positive differences dominate; ``rank_biserial`` = (T+ − T−) / (T+ + T−),
    the matched-pairs rank-biserial correlation (Kerby 2014).
    """

    n: int
    n_zero: int
    n_nonzero: int
    n_positive: int
    n_negative: int
    t_plus: float
    t_minus: float
    z: float
    p: float
    p_exact: float
    exact_note: str
    r: float
    rank_biserial: float

    def as_dict(self) -> dict:
        return asdict(self)


def wilcoxon_signed_rank(differences) -> WilcoxonResult:
    """Wilcoxon signed-rank test of paired differences against zero, SPSS style.

    Parameters
    ----------
    differences : array_like
        One difference per pair (NaN values are ignored).

    Returns
    -------
    WilcoxonResult

    Notes
    -----
    ``scipy.stats.wilcoxon(d, zero_method="wilcox", correction=False, method="approx")`` gives Z and
    p; ``method="exact"`` gives the exact p.

    Examples
    --------
    Hollander & Wolfe (1973), p. 29: Hamilton depression scale factor IV of 9 patients before (x)
    and after (y) treatment; published T+ = 40, exact one-sided p = 0.01953 (so two-sided 0.0390625),
    normal approximation without continuity correction Z = −2.0732, p = 0.03815.

    >>> x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    >>> y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    >>> res = wilcoxon_signed_rank(np.subtract(x, y))
    >>> res.t_plus, res.t_minus, res.p_exact
    (40.0, 5.0, 0.0390625)
    >>> round(res.z, 4), round(res.p, 5), round(res.rank_biserial, 4)
    (-2.0732, 0.03815, 0.7778)
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    n = int(d.size)
    nonzero = d[d != 0]
    m = int(nonzero.size)
    n_pos, n_neg = int((nonzero > 0).sum()), int((nonzero < 0).sum())
    if m == 0:
        note = "no pairs" if n == 0 else "all differences are zero"
        return WilcoxonResult(n, n - m, m, n_pos, n_neg, 0.0, 0.0, NAN, NAN, NAN,
                              f"not computed: {note}", NAN, NAN)
    ranks = stats.rankdata(np.abs(nonzero))
    t_plus = float(ranks[nonzero > 0].sum())
    t_minus = float(ranks[nonzero < 0].sum())
    res = stats.wilcoxon(nonzero, zero_method="wilcox", correction=False, method="approx")
    z = float(res.zstatistic)
    p = float(res.pvalue)
    ties = np.unique(np.abs(nonzero)).size < m
    reasons = []
    if ties:
        reasons.append("ties")
    if m < n:
        reasons.append("zero differences")
    if m > EXACT_MAX_N:
        reasons.append(f"n > {EXACT_MAX_N}")
    if reasons:
        p_exact, note = NAN, "not computed: " + " and ".join(reasons)
    else:
        p_exact = float(stats.wilcoxon(nonzero, method="exact").pvalue)
        note = "exact"
    sign = 1.0 if t_plus >= t_minus else -1.0
    r = sign * abs(z) / math.sqrt(m) if not math.isnan(z) else NAN
    rank_biserial = (t_plus - t_minus) / (t_plus + t_minus)
    return WilcoxonResult(n, n - m, m, n_pos, n_neg, t_plus, t_minus, z, p, p_exact, note, r,
                          rank_biserial)


@dataclass(frozen=True)
class MannWhitneyResult:
    """Mann–Whitney U test of two independent samples, as SPSS reports it.

    ``u`` is SPSS's "Mann-Whitney U" (the smaller of U₁ and U₂); ``u1`` is U of the first sample
    (the number of pairs in which the first sample's value is larger, ties counting ½). ``z`` is
    tie-corrected without continuity correction, negative when the first sample tends to be smaller;
    ``p`` its two-sided p. ``p_exact`` is the exact two-sided p when there are no ties and both
    samples are small. ``r`` = Z / √(n₁ + n₂).
    """

    n1: int
    n2: int
    u: float
    u1: float
    z: float
    p: float
    p_exact: float
    exact_note: str
    r: float

    def as_dict(self) -> dict:
        return asdict(self)


def mann_whitney(x, y) -> MannWhitneyResult:
    """Mann–Whitney U test (Wilcoxon rank-sum), tie-corrected normal approximation, two-sided.

    Parameters
    ----------
    x, y : array_like
        The two samples (NaN values are ignored).

    Examples
    --------
    Hollander & Wolfe (1973), p. 69: published W (U for x) = 35, one-sided p = 0.1272 exact and
    0.1103 by the normal approximation without correction; two-sided exact p = 0.254412.

    >>> x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    >>> y = [1.15, 0.88, 0.90, 0.74, 1.21]
    >>> res = mann_whitney(x, y)
    >>> res.u1, res.u, round(res.p_exact, 6), round(res.p / 2, 4)
    (35.0, 15.0, 0.254412, 0.1103)
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    n1, n2 = int(a.size), int(b.size)
    if n1 == 0 or n2 == 0:
        return MannWhitneyResult(n1, n2, NAN, NAN, NAN, NAN, NAN, "not computed: an empty arm", NAN)
    res = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=False)
    u1 = float(res.statistic)
    u = min(u1, n1 * n2 - u1)
    p = float(res.pvalue)
    if np.isnan(p):
        z = NAN
    else:
        # |Z| from the two-sided p of the tie-corrected normal approximation; sign from U1.
        z = float(stats.norm.isf(p / 2)) * (1.0 if u1 > n1 * n2 / 2 else -1.0)
        if u1 == n1 * n2 / 2:
            z = 0.0
    pooled = np.concatenate([a, b])
    ties = np.unique(pooled).size < pooled.size
    if ties:
        p_exact, note = NAN, "not computed: ties"
    elif max(n1, n2) > EXACT_MAX_N:
        p_exact, note = NAN, f"not computed: n > {EXACT_MAX_N}"
    else:
        p_exact = float(stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue)
        note = "exact"
    r = z / math.sqrt(n1 + n2) if not math.isnan(z) else NAN
    return MannWhitneyResult(n1, n2, u, u1, z, p, p_exact, note, r)


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, SD and the t-based confidence interval of the mean: ``(mean, sd, low, high)``.

    Examples
    --------
    Worked example C (19 participants, change after − before on a 1–5 scale): mean −0.6842,
    SD 0.7493, 95% CI −1.0453 to −0.3231.

    >>> before = [3, 4, 3, 2, 4, 3, 5, 3, 2, 4, 3, 3, 4, 2, 3, 4, 3, 5, 4]
    >>> after = [2, 3, 3, 3, 2, 2, 4, 3, 2, 3, 2, 3, 3, 2, 2, 3, 3, 3, 3]
    >>> [round(v, 4) for v in mean_ci(np.subtract(after, before))]
    [-0.6842, 0.7493, -1.0453, -0.3231]
    """
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return NAN, NAN, NAN, NAN
    mean = float(v.mean())
    if v.size < 2:
        return mean, NAN, NAN, NAN
    sd = float(v.std(ddof=1))
    if sd == 0:
        return mean, 0.0, mean, mean
    ci = stats.ttest_1samp(v, 0.0).confidence_interval(confidence)
    return mean, sd, float(ci.low), float(ci.high)


@dataclass(frozen=True)
class TTestResult:
    """A t-test of a continuous score (a VAS): t, its degrees of freedom, the two-sided p, the
    mean (difference) with its 95% CI, and the effect size r = t / √(t² + df), signed as t
    (positive: improvement)."""

    n: int
    t: float
    df: float
    p: float
    mean: float
    ci_low: float
    ci_high: float
    r: float


def _r_of(t: float, df: float) -> float:
    return t / math.sqrt(t * t + df) if math.isfinite(t) and df > 0 else NAN


def paired_t(differences, confidence: float = 0.95) -> TTestResult:
    """Paired t-test: one-sample t-test of the paired differences against 0.

    Examples
    --------
    Student's sleep data (Cushny & Peebles; R's ``t.test(extra ~ group, data = sleep, paired =
    TRUE)``): differences of 10 patients, t = 4.0621, df = 9, p = 0.002833, mean 1.58, 95% CI
    0.7001 to 2.4599.

    >>> res = paired_t([1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4])
    >>> round(res.t, 4), res.df, round(res.p, 6), [round(v, 4) for v in (res.ci_low, res.ci_high)]
    (4.0621, 9.0, 0.002833, [0.7001, 2.4599])
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if d.size < 2 or float(d.std(ddof=1)) == 0:
        mean = float(d.mean()) if d.size else NAN
        return TTestResult(int(d.size), NAN, float(max(d.size - 1, 0)), NAN, mean, NAN, NAN, NAN)
    res = stats.ttest_1samp(d, 0.0)
    ci = res.confidence_interval(confidence)
    t, df = float(res.statistic), float(res.df)
    return TTestResult(int(d.size), t, df, float(res.pvalue), float(d.mean()), float(ci.low),
                       float(ci.high), _r_of(t, df))


def welch_t(x, y, confidence: float = 0.95) -> TTestResult:
    """Welch's two-sample t-test (unequal variances) of ``x`` against ``y``; mean = x̄ − ȳ.

    Examples
    --------
    Student's sleep data as two groups (R's ``t.test(extra ~ group, data = sleep)``): t = −1.8608,
    df = 17.776, p = 0.07939, 95% CI −3.3655 to 0.2055.

    >>> res = welch_t([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0],
    ...               [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])
    >>> round(res.t, 4), round(res.df, 3), round(res.p, 5), round(res.ci_low, 4), round(res.ci_high, 4)
    (-1.8608, 17.776, 0.07939, -3.3655, 0.2055)
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size < 2 or b.size < 2:
        return TTestResult(int(a.size + b.size), NAN, NAN, NAN, NAN, NAN, NAN, NAN)
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(confidence)
    t, df = float(res.statistic), float(res.df)
    return TTestResult(int(a.size + b.size), t, df, float(res.pvalue), float(a.mean() - b.mean()),
                       float(ci.low), float(ci.high), _r_of(t, df))


def wilson_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (Newcombe 1998, method 3).

    Examples
    --------
    Newcombe (1998), Stat Med 17:857, Table I: 15/148 → 0.0624–0.1605; 0/20 → 0.0000–0.1611.

    >>> [round(v, 4) for v in wilson_ci(15, 148)]
    [0.0624, 0.1605]
    >>> [round(v, 4) for v in wilson_ci(0, 20)]
    [0.0, 0.1611]
    """
    if n <= 0:
        return NAN, NAN
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def sign_test(n_better: int, n_worse: int) -> float:
    """Two-sided exact sign test: improved against worsened, ties (unchanged) left out.

    For categories that are ordered but not equally spaced (the Glogau types), the sign test uses
    only the direction of each participant's change.

    >>> round(sign_test(9, 1), 4)
    0.0215
    """
    n = int(n_better) + int(n_worse)
    if n == 0:
        return NAN
    return float(stats.binomtest(int(n_better), n, 0.5).pvalue)
