"""The panel's rules with small fixtures: qualify, fail then pass, run out of attempts; drift
flagged; each combining rule; adjudication triggered and not; identities hidden from the adjudicator.
"""

from __future__ import annotations

import math

import pytest

from assess import panel
from assess.score.reliability import weighted_kappa

WSRS = [1, 2, 3, 4, 5]
REFERENCE = [1, 2, 3, 4, 5, 2, 3, 4, 1, 5, 3, 2]
CLOSE = [1, 2, 3, 4, 5, 2, 3, 3, 1, 5, 3, 2]  # one grade off on one photo
FAR = [3, 4, 1, 2, 2, 4, 5, 1, 3, 2, 1, 5]
RULE = panel.Qualification(min_kappa=0.7, min_kappa_lower=0.5, min_within_one=0.8, attempts=2)


def test_a_rater_close_to_the_reference_qualifies_on_the_first_attempt():
    result = panel.qualify(CLOSE, REFERENCE, WSRS, RULE)
    assert result.passed and result.failures == ()
    assert result.kappa == pytest.approx(weighted_kappa(CLOSE, REFERENCE, WSRS).kappa)
    assert panel.standing([result], RULE) == panel.Standing("qualified", 1, 1)


def test_a_rater_who_fails_then_passes_is_qualified_on_the_second_attempt():
    results = [panel.qualify(FAR, REFERENCE, WSRS, RULE), panel.qualify(CLOSE, REFERENCE, WSRS, RULE)]
    assert [r.passed for r in results] == [False, True]
    assert panel.standing(results[:1], RULE).state == "training"
    assert panel.standing(results, RULE) == panel.Standing("qualified", 2, 0)


def test_a_rater_who_runs_out_of_attempts_is_refused_the_live_worklist():
    results = [panel.qualify(FAR, REFERENCE, WSRS, RULE)] * 2
    s = panel.standing(results, RULE)
    assert (s.state, s.attempts_left, s.may_rate_live) == ("refused", 0, False)


def test_each_failed_criterion_is_named_with_its_value_and_floor():
    rule = panel.Qualification(min_kappa=0.7, min_kappa_lower=0.5, min_exact=0.9,
                               min_within_one=0.95)
    failures = panel.qualify(FAR, REFERENCE, WSRS, rule).failures
    assert len(failures) == 4
    assert failures[0].startswith("weighted kappa ") and failures[0].endswith("below 0.70")
    assert failures[1].startswith("the lower 95% bound of kappa")
    assert failures[2].startswith("exact agreement") and failures[2].endswith("below 90%")


def test_the_lower_bound_alone_can_refuse_a_short_training_set():
    # Four photos, all within one, kappa above 0.7 but its interval is wide.
    rule = panel.Qualification(min_kappa=0.5, min_kappa_lower=0.6)
    result = panel.qualify([1, 3, 4, 5], [1, 2, 4, 5], WSRS, rule)
    assert result.kappa >= 0.5 and result.kappa_lower < 0.6
    assert not result.passed and len(result.failures) == 1


def test_a_study_without_qualification_lets_every_rater_rate_live():
    assert panel.standing([], None).may_rate_live


def test_calibration_drift_flags_the_block_where_a_rater_falls_below_the_criterion():
    rule = panel.Calibration(rate=0.1, block=10, min_within_one=0.75)
    rows = ([(p, 3, 3) for p in (2, 5, 8)] + [(12, 3, 3), (15, 4, 4), (18, 2, 3)]
            + [(21, 5, 2), (24, 1, 3), (27, 3, 3), (29, 4, 4)])
    blocks = panel.calibration_drift(rows, rule)
    assert [(b.first, b.last, b.n) for b in blocks] == [(1, 10, 3), (11, 20, 3), (21, 30, 4)]
    assert [b.flagged for b in blocks] == [False, False, True]
    assert blocks[2].within_one == 0.5


def test_calibration_exact_floor_flags_a_block_that_is_only_within_one():
    rule = panel.Calibration(block=5, min_exact=0.5, min_within_one=None)
    (block,) = panel.calibration_drift([(1, 2, 3), (3, 4, 3)], rule)
    assert block.exact == 0 and block.within_one == 1 and block.flagged


@pytest.mark.parametrize("rule, scores, expected", [
    ("median", [2, 4, 3], 3), ("median", [1, 2, 4, 5], 3.0), ("median", [2, 3], 2.5),
    ("mean", [2, 4, 3, 3], 3.0), ("mean", [1, 2], 1.5),
    ("majority", [4, 2, 4], 4), ("majority", [1, 2, 2, 3], None), ("majority", [2, 2, 3, 3], None),
])
def test_each_combining_rule_gives_the_panel_score(rule, scores, expected):
    assert panel.consensus(scores, rule) == expected


def test_a_photo_within_the_declared_difference_is_not_adjudicated():
    rule = panel.Adjudication(min_difference=2)
    assert not panel.adjudication_trigger([3, 4, 4], rule).adjudicate


def test_a_photo_whose_scores_differ_by_the_declared_amount_is_adjudicated():
    trig = panel.adjudication_trigger([3, 5, 4], panel.Adjudication(min_difference=2))
    assert trig.adjudicate and trig.reasons == ("scores differ by 2 grades (3 to 5)",)


def test_raters_who_disagree_on_responder_status_send_the_photo_to_adjudication():
    rule = panel.Adjudication(min_difference=None, responder_change=1)
    calls = [panel.responder(4, 3, 1, "lower"), panel.responder(4, 4, 1, "lower")]
    assert calls == [True, False]
    assert panel.adjudication_trigger([3, 4], rule, responders=calls).adjudicate
    assert not panel.adjudication_trigger([3, 4], rule, responders=[True, True]).adjudicate


def test_the_adjudicator_sees_the_scores_but_not_whose_they_are():
    shown = panel.blinded_scores({"derm3": 5, "derm1": 3, "derm2": 4}, panel.Adjudication())
    assert shown == (3, 4, 5)
    assert not any(isinstance(x, str) for x in shown)
    assert panel.blinded_scores({"derm1": 3}, panel.Adjudication(show_scores=False)) == ()


def test_the_adjudicated_score_replaces_the_consensus_and_a_tie_waits_for_it():
    assert panel.final_score(3.5, 4) == (4, "adjudicated")
    assert panel.final_score(None, None) == (None, "pending adjudication")


def test_bias_against_consensus_is_the_mean_difference_with_a_t_interval():
    b = panel.bias_against_consensus([3, 3, 3, 3], [2, 2, 2, 2])
    assert (b.mean, b.ci_low, b.ci_high) == (1.0, 1.0, 1.0)
    b = panel.bias_against_consensus([4, 2, 3, 5, 1, 3], [3, 3, 3, 3, 3, 3])
    assert b.mean == 0 and b.ci_low < 0 < b.ci_high
    assert math.isnan(panel.bias_against_consensus([], []).mean)


@pytest.mark.parametrize("data, message", [
    ({"qualification": {"min_kappa": 1.5}}, "qualification.min_kappa: must be a number from -1 to 1"),
    ({"qualification": {"attempts": 0}}, "qualification.attempts: must be a whole number of at least 1"),
    ({"qualification": {"feedback": "later"}}, "qualification.feedback: must be one of each, end, none"),
    ({"calibration": {"rate": 0.9}}, "calibration.rate: must be above 0 and at most 0.5"),
    ({"adjudication": {"min_difference": 0}}, "adjudication.min_difference: must be a number of grades"),
    ({"adjudication": {"show_scores": "yes"}}, "adjudication.show_scores: must be true or false"),
    ({"consensus": "median"}, "consensus: must be a table"),
])
def test_a_wrong_rule_is_refused_naming_its_section_and_key(data, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        panel.parse_rules(data)
