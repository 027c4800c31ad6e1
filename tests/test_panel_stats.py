"""The panel's statistics: Fleiss' kappa (Fleiss 1971) and the six ICCs (Shrout & Fleiss 1979).

The published numbers are in the doctests of :mod:`assess.score.reliability`; here the same
functions are checked against R's ``psych::ICC`` on a table of our own, and Fleiss' standard error
against the spread of kappa over simulated panels that rate at random.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from assess.score import reliability as rel

SF = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
FLEISS_H = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def test_shrout_fleiss_table_4_gives_each_published_icc():
    published = dict(zip(rel.ICC_FORMS, (0.17, 0.29, 0.71, 0.44, 0.62, 0.91)))
    for form, value in published.items():
        assert round(rel.icc(SF, form).icc, 2) == value, form


def test_icc_2_1_of_the_general_function_is_the_existing_icc_2_1():
    a, b = rel.icc(SF, "ICC(2,1)"), rel.icc_2_1(SF)
    assert (a.icc, a.ci_low, a.ci_high, a.f) == (b.icc, b.ci_low, b.ci_high, b.f)


def test_every_icc_and_its_interval_match_r_psych_on_a_wider_panel(rscript, tmp_path):
    rng = np.random.default_rng(13)
    truth = rng.integers(1, 6, size=25)
    table = np.clip(truth[:, None] + rng.integers(-1, 2, size=(25, 3)) + [0, 0, 1], 1, 5)
    np.savetxt(tmp_path / "t.csv", table, delimiter=",", fmt="%d")
    script = ("library(psych); m <- as.matrix(read.csv('t.csv', header=FALSE)); "
              "r <- ICC(m, lmer=FALSE)$results; "
              "write.csv(r[, c('ICC','F','df1','df2','lower bound','upper bound')], 'r.csv')")
    subprocess.run([rscript, "-e", script], cwd=tmp_path, check=True, capture_output=True,
                   timeout=60)
    rows = (tmp_path / "r.csv").read_text().strip().splitlines()[1:]
    r_forms = ["ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)"]
    for form, line in zip(r_forms, rows):
        value, f, df1, df2, low, high = (float(x) for x in line.split(",")[1:])
        ours = rel.icc(table, form)
        assert ours.icc == pytest.approx(value, abs=1e-9), form
        assert (ours.f, ours.df1, ours.df2) == (pytest.approx(f), df1, df2), form
        assert ours.ci_low == pytest.approx(low, abs=1e-6), form
        assert ours.ci_high == pytest.approx(high, abs=1e-6), form


def test_an_unknown_icc_form_is_refused_by_name():
    with pytest.raises(ValueError, match="ICC\\(2,k\\)"):
        rel.icc(SF, "ICC(4,1)")


def test_fleiss_kappa_reproduces_the_worked_example():
    r = rel.fleiss_kappa(FLEISS_H)
    assert (round(r.p_bar, 4), round(r.p_e, 4), round(r.kappa, 4)) == (0.3780, 0.2128, 0.2099)


def test_fleiss_kappa_of_a_panel_in_full_agreement_is_one_and_of_two_raters_is_scotts_pi():
    assert rel.fleiss_kappa([[3, 0, 0], [0, 3, 0], [0, 0, 3], [3, 0, 0]]).kappa == 1.0
    # Two raters: Fleiss' kappa is Scott's pi, (Po - Pe) / (1 - Pe) with pooled marginals.
    a, b = [1, 1, 2, 2, 3, 3, 1, 2], [1, 2, 2, 2, 3, 1, 1, 3]
    counts = rel.category_counts(np.column_stack([a, b]), levels=[1, 2, 3])
    po = np.mean(np.equal(a, b))
    pooled = np.bincount(np.r_[a, b], minlength=4)[1:] / 16
    pi = (po - (pooled ** 2).sum()) / (1 - (pooled ** 2).sum())
    assert rel.fleiss_kappa(counts).kappa == pytest.approx(pi)


def test_fleiss_standard_error_matches_the_spread_of_kappa_when_raters_guess():
    rng = np.random.default_rng(7)
    kappas, ses = [], []
    for _ in range(400):
        ratings = rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1], size=(60, 4))
        r = rel.fleiss_kappa(rel.category_counts(ratings, levels=[1, 2, 3, 4]))
        kappas.append(r.kappa)
        ses.append(r.se)
    assert np.std(kappas) == pytest.approx(np.mean(ses), rel=0.15)
    assert abs(np.mean(kappas)) < 0.02


def test_fleiss_kappa_refuses_rows_with_different_numbers_of_raters():
    with pytest.raises(ValueError, match="same number of raters"):
        rel.fleiss_kappa([[2, 1, 0], [1, 1, 0]])


def test_category_counts_names_a_score_outside_the_declared_levels():
    with pytest.raises(ValueError, match="7 is not one of the declared levels"):
        rel.category_counts([[1, 7]], levels=[1, 2, 3])
