"""How well a property separates the photos of one timepoint from another's: the folded rank AUC,
its Mann–Whitney p-value, and when a sample is too small for a p-value to say anything."""

from __future__ import annotations

import math
import warnings

from .findings import P_LIMIT

__all__ = ["timepoint_auc", "small_sample"]


def timepoint_auc(a: list, b: list, categorical: bool = False, p_value: bool = True) -> tuple[float, float]:
    """Folded AUC (0.5 to 1) and two-sided Mann–Whitney p-value with which a property separates
    the photos of one timepoint (``a``) from another's (``b``); the randomizer balances with it.

    With ``p_value=False`` the p-value is NaN and the AUC comes from the rank sum directly
    (the same number as ``mannwhitneyu``'s U / (n1·n2)) without loading SciPy: the randomizer
    calls it thousands of times just before de-identification starts its worker processes, and
    SciPy would add 60 MB to the parent's memory for the whole run.

    >>> timepoint_auc([1, 2, 3], [4, 5, 6])[0]
    1.0
    >>> timepoint_auc([1, 2, 2, 5], [2, 3, 4], p_value=False)[0] == timepoint_auc([1, 2, 2, 5], [2, 3, 4])[0]
    True
    """
    if p_value:
        return _auc(a, b, categorical)
    if not a or not b:
        return 0.5, float("nan")
    if categorical:
        cats = sorted(set(a) | set(b), key=repr)
        aucs = [_rank_auc([int(x == c) for x in a], [int(y == c) for y in b]) for c in cats]
    else:
        aucs = [_rank_auc(list(a), list(b))]
    return max(max(x, 1.0 - x) for x in aucs), float("nan")


def _rank_auc(a: list, b: list) -> float:
    """U1 / (n1·n2) from mid-ranks (ties share their average rank), unfolded."""
    ordered = sorted(a + b)
    mid: dict = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[i]:
            j += 1
        mid[ordered[i]] = (i + j) / 2 + 1
        i = j + 1
    u1 = sum(mid[x] for x in a) - len(a) * (len(a) + 1) / 2
    return u1 / (len(a) * len(b))


def _auc(a: list, b: list, categorical: bool) -> tuple[float, float]:
    """Folded AUC and two-sided Mann–Whitney p-value of ``a`` vs ``b``.

    >>> _auc([1, 2, 3], [4, 5, 6], categorical=False)[0]
    1.0
    >>> _auc(["x", "x"], ["x", "x", "x"], categorical=True)
    (0.5, 1.0)
    """
    from scipy.stats import mannwhitneyu

    if not a or not b:
        return 0.5, 1.0
    if categorical:
        cats = sorted(set(a) | set(b), key=repr)
        if len(cats) < 2:
            return 0.5, 1.0
        pairs = [_auc([int(x == c) for x in a], [int(y == c) for y in b], False) for c in cats]
        return max(pairs, key=lambda t: (t[0], -t[1]))
    if len(set(a) | set(b)) < 2:
        return 0.5, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    auc = float(res.statistic) / (len(a) * len(b))
    p = float(res.pvalue)
    return max(auc, 1.0 - auc), (1.0 if p != p else p)


def small_sample(n1: int, n2: int, p_limit: float = P_LIMIT) -> bool:
    """Whether ``n1`` + ``n2`` photos are too few for any AUC, even 1.0, to reach ``p_limit``.

    The smallest two-sided Mann–Whitney p-value (normal approximation with continuity correction,
    as :func:`_auc` computes it) is that of perfect separation. With fewer than about 11 photos a
    timepoint a p-value threshold of 10⁻⁴ can never be met, so a p-value says nothing there.

    >>> small_sample(6, 6), small_sample(10, 10), small_sample(12, 12)
    (True, True, False)
    """
    if n1 < 1 or n2 < 1:
        return True
    sigma = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    z = (n1 * n2 / 2 - 0.5) / sigma
    return math.erfc(z / math.sqrt(2)) >= p_limit

