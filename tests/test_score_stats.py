"""The scorer's statistics against published worked examples (numbers copied from their sources).

A–G are the examples of the project's statistics notes: Hollander & Wolfe (1973) pp. 29 and 69,
SciPy's Darwin maize example, an SPSS-style ordinal before/after example, the SAS PROC FREQ
agreement study and 3 × 3 table, and Newcombe (1998) Table I. Shrout & Fleiss (1979) and
Krippendorff (2011) check the ICC and alpha.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from assess.score import reliability as rel
from assess.score import stats
from assess.score.tables import quartiles

# A. Hollander & Wolfe (1973), p. 29: Hamilton depression scale factor IV.
HW_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
HW_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
# B. Darwin's maize: differences of 15 pairs.
DARWIN = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]
# C. Ordinal 1-5 scale, lower is better, with ties and zeros.
C_BEFORE = [3, 4, 3, 2, 4, 3, 5, 3, 2, 4, 3, 3, 4, 2, 3, 4, 3, 5, 4]
C_AFTER = [2, 3, 3, 3, 2, 2, 4, 3, 2, 3, 2, 3, 3, 2, 2, 3, 3, 3, 3]
# D. Hollander & Wolfe (1973), p. 69.
MW_X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
MW_Y = [1.15, 0.88, 0.90, 0.74, 1.21]
# E. SAS/STAT PROC FREQ "Agreement Study".
SAS_TABLE = [[10, 4, 1, 0], [5, 10, 12, 2], [2, 4, 12, 5], [0, 2, 6, 13]]
# F. SAS 3 x 3 table.
SAS_3X3 = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]


def test_example_a_signed_rank_sums_are_those_of_hollander_and_wolfe():
    res = stats.wilcoxon_signed_rank(np.subtract(HW_X, HW_Y))
    assert (res.t_plus, res.t_minus) == (40.0, 5.0)
    assert res.n_nonzero == 9 and res.n_zero == 0


def test_example_a_exact_p_is_10_over_512_one_sided():
    res = stats.wilcoxon_signed_rank(np.subtract(HW_X, HW_Y))
    assert res.exact_note == "exact"
    assert res.p_exact == 0.0390625
    assert round(res.p_exact / 2, 5) == 0.01953


def test_example_a_normal_approximation_is_spss_asymptotic_z_and_p():
    res = stats.wilcoxon_signed_rank(np.subtract(HW_X, HW_Y))
    assert round(res.z, 4) == -2.0732
    assert round(res.p, 5) == 0.03815


def test_example_a_matched_pairs_rank_biserial_is_0_7778():
    res = stats.wilcoxon_signed_rank(np.subtract(HW_X, HW_Y))
    assert round(res.rank_biserial, 4) == 0.7778


def test_example_a_effect_size_r_uses_the_non_zero_pairs():
    res = stats.wilcoxon_signed_rank(np.subtract(HW_X, HW_Y))
    assert res.r == pytest.approx(2.0732210 / 3, abs=1e-6)


def test_example_b_darwin_maize_exact_and_approximate_p():
    res = stats.wilcoxon_signed_rank(DARWIN)
    assert min(res.t_plus, res.t_minus) == 24
    assert res.p_exact == 0.041259765625
    assert round(res.p, 6) == 0.040888


def test_example_c_zero_differences_are_dropped_as_spss_ties():
    res = stats.wilcoxon_signed_rank(np.subtract(C_AFTER, C_BEFORE))
    assert (res.n, res.n_zero, res.n_nonzero) == (19, 6, 13)
    assert (res.t_minus, res.t_plus) == (85.0, 6.0)


def test_example_c_tie_corrected_z_without_continuity_correction():
    res = stats.wilcoxon_signed_rank(np.subtract(C_AFTER, C_BEFORE))
    assert round(res.z, 6) == -2.967954
    assert round(res.p, 6) == 0.002998


def test_example_c_is_neither_the_continuity_corrected_nor_the_pratt_variant():
    res = stats.wilcoxon_signed_rank(np.subtract(C_AFTER, C_BEFORE))
    corrected = sps.wilcoxon(C_AFTER, C_BEFORE, correction=True, method="approx").pvalue
    pratt = sps.wilcoxon(C_AFTER, C_BEFORE, zero_method="pratt", method="approx").pvalue
    assert (round(corrected, 6), round(pratt, 6)) == (0.003385, 0.002332)
    assert round(res.p, 6) not in (0.003385, 0.002332)


def test_example_c_exact_p_is_not_given_with_ties_and_zeros():
    res = stats.wilcoxon_signed_rank(np.subtract(C_AFTER, C_BEFORE))
    assert np.isnan(res.p_exact)
    assert res.exact_note == "not computed: ties and zero differences"


def test_example_c_medians_are_equal_although_p_is_0_003():
    assert quartiles(C_BEFORE)[0] == 3 and quartiles(C_AFTER)[0] == 3


def test_example_c_responders_and_wilson_interval():
    improvement = np.subtract(C_BEFORE, C_AFTER)  # lower is better
    k = int((improvement >= 1).sum())
    low, high = stats.wilson_ci(k, len(improvement))
    assert (k, len(improvement)) == (12, 19)
    assert (round(low, 4), round(high, 4)) == (0.4104, 0.8085)


def test_example_c_mean_change_with_t_interval():
    mean, sd, low, high = stats.mean_ci(np.subtract(C_AFTER, C_BEFORE))
    assert [round(v, 4) for v in (mean, sd, low, high)] == [-0.6842, 0.7493, -1.0453, -0.3231]


def test_example_d_mann_whitney_u_of_x_is_35():
    res = stats.mann_whitney(MW_X, MW_Y)
    assert res.u1 == 35 and res.u == 15


def test_example_d_exact_p_one_and_two_sided():
    res = stats.mann_whitney(MW_X, MW_Y)
    assert round(res.p_exact, 6) == 0.254412
    assert round(res.p_exact / 2, 4) == 0.1272


def test_example_d_normal_approximation_without_correction():
    res = stats.mann_whitney(MW_X, MW_Y)
    assert round(res.p / 2, 4) == 0.1103
    assert res.z > 0  # x tends to be larger than y


def test_mann_whitney_effect_size_uses_both_arms():
    res = stats.mann_whitney(MW_X, MW_Y)
    assert res.r == pytest.approx(res.z / np.sqrt(15))


def test_example_e_simple_kappa_with_ase_and_interval():
    k = rel.kappa_from_table(SAS_TABLE)
    assert (round(k.kappa, 4), round(k.ase, 4)) == (0.3449, 0.0724)
    assert (round(k.ci_low, 4), round(k.ci_high, 4)) == (0.2030, 0.4868)


def test_example_e_linear_weighted_kappa_cicchetti_allison():
    k = rel.kappa_from_table(SAS_TABLE, "linear")
    assert (round(k.kappa, 4), round(k.ase, 4)) == (0.5082, 0.0655)


def test_example_e_quadratic_weighted_kappa_fleiss_cohen():
    assert round(rel.kappa_from_table(SAS_TABLE, "quadratic").kappa, 4) == 0.6607


def test_example_e_from_ratings_equals_from_table():
    levels = [1, 2, 3, 4]
    a, b = [], []
    for i, row in enumerate(SAS_TABLE):
        for j, n in enumerate(row):
            a += [levels[i]] * n
            b += [levels[j]] * n
    assert round(rel.weighted_kappa(a, b, levels, "linear").kappa, 4) == 0.5082


def test_example_f_three_by_three_kappas():
    k = rel.kappa_from_table(SAS_3X3)
    assert (round(k.kappa, 4), round(k.ase, 4)) == (0.4842, 0.1380)
    assert round(rel.kappa_from_table(SAS_3X3, "linear").kappa, 4) == 0.4701


def test_kappa_weights_follow_the_declared_levels_when_a_middle_level_is_unused():
    # Level 3 of the 1-5 scale is never used. Weights over the declared levels keep the distance
    # 2 -> 4 at two steps; scoring the observed levels 1..k (as irr::kappa2 does) makes it one.
    a = [1, 2, 2, 4, 5, 4, 1, 5, 2, 4]
    b = [1, 4, 2, 4, 5, 2, 2, 4, 2, 5]
    declared = rel.weighted_kappa(a, b, [1, 2, 3, 4, 5], "linear").kappa
    by_value = rel.kappa_from_table(rel.confusion_table(a, b, [1, 2, 4, 5]), "linear",
                                    values=[1, 2, 4, 5]).kappa
    observed_ranks = rel.kappa_from_table(rel.confusion_table(a, b, [1, 2, 4, 5]), "linear").kappa
    assert declared == pytest.approx(by_value)
    assert round(declared, 4) != round(observed_ranks, 4)


def test_example_g_wilson_intervals_of_newcombe_table_1():
    assert [round(v, 4) for v in stats.wilson_ci(15, 148)] == [0.0624, 0.1605]
    assert [round(v, 4) for v in stats.wilson_ci(0, 20)] == [0.0, 0.1611]


def test_icc_2_1_of_shrout_and_fleiss_table_2_is_0_29():
    sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    res = rel.icc_2_1(sf)
    assert round(res.icc, 2) == 0.29
    assert (round(res.ci_low, 3), round(res.ci_high, 2)) == (0.019, 0.76)


def test_krippendorff_alpha_of_the_published_reliability_data():
    n = np.nan
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
            [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]
    assert round(rel.krippendorff_alpha(data, level_of_measurement="ordinal"), 3) == 0.815
    assert round(rel.krippendorff_alpha(data, level_of_measurement="nominal"), 3) == 0.743


def test_agreement_counts_exact_and_within_one_level():
    assert rel.agreement([1, 2, 3, 4], [1, 3, 3, 1]) == (0.5, 0.75)


def test_blinding_index_tests_identified_against_guessing():
    bi = rel.blinding_index(identified=15, wrong=5, cannot_tell=4)
    assert (bi.n, bi.share) == (24, 0.75)
    assert bi.p == pytest.approx(sps.binomtest(15, 20, 0.5).pvalue)


def test_all_zero_differences_give_no_test_and_say_why():
    res = stats.wilcoxon_signed_rank([0, 0, 0])
    assert np.isnan(res.p) and res.exact_note == "not computed: all differences are zero"


def test_sign_test_is_the_exact_binomial_test_of_improved_against_worsened():
    assert stats.sign_test(9, 1) == pytest.approx(sps.binomtest(9, 10).pvalue)
