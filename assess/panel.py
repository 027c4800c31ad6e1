"""The panel's rules: qualification, calibration drift, consensus and the adjudication trigger.

Pure functions: scores and declared rules in, decisions out. The rules are the study's
``[qualification]``, ``[calibration]``, ``[consensus]`` and ``[adjudication]`` sections
(:func:`parse_rules` checks them; :mod:`assess.study` names the file and field when one is wrong).
Nothing here reads a file, a database or the clock.

A photo's reference score is the expert consensus the coordinator keeps with the images. A rater
*qualifies* on an attempt at the training worklist when every declared criterion holds:

>>> rule = Qualification(min_kappa=0.6, min_kappa_lower=0.0, min_within_one=0.8, attempts=2)
>>> first = qualify([1, 2, 3, 4, 5, 1, 2, 3], [2, 3, 4, 5, 5, 3, 4, 1], [1, 2, 3, 4, 5], rule)
>>> first.passed, first.failures[0]
(False, 'weighted kappa 0.23 is below 0.60')
>>> second = qualify([2, 3, 4, 5, 5, 3, 4, 2], [2, 3, 4, 5, 5, 3, 4, 1], [1, 2, 3, 4, 5], rule)
>>> second.passed
True
>>> standing([first, second], rule).state
'qualified'
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "Qualification",
    "Calibration",
    "Consensus",
    "Adjudication",
    "Rules",
    "parse_rules",
    "rules_json",
    "adjudication_worklist",
    "sent_worklist",
    "SENDER",
    "RESPONDER_REASON",
    "rules_from_json",
    "AttemptResult",
    "qualify",
    "Standing",
    "standing",
    "CalibrationBlock",
    "calibration_drift",
    "consensus",
    "Trigger",
    "adjudication_trigger",
    "responder",
    "blinded_scores",
    "final_score",
    "Bias",
    "bias_against_consensus",
]

NAN = float("nan")
WEIGHTS = ("linear", "quadratic", "none")
FEEDBACK = ("each", "end", "none")
RULES = ("median", "mean", "majority")


# ------------------------------------------------------------------------------------ the rules


@dataclass(frozen=True)
class Qualification:
    """``[qualification]``: what an attempt at the training worklist must reach, and how often.

    A criterion left out (``None``) is not checked; ``attempts`` is how many attempts a rater has;
    ``feedback`` shows the reference after each photo (``"each"``), after the attempt (``"end"``)
    or never (``"none"``).
    """

    min_kappa: float | None = None
    min_kappa_lower: float | None = None
    min_exact: float | None = None
    min_within_one: float | None = None
    weights: str = "linear"
    attempts: int = 2
    feedback: str = "end"


@dataclass(frozen=True)
class Calibration:
    """``[calibration]``: hidden reference photos in live worklists and the drift criterion.

    ``rate``: share of calibration photos in a live worklist (0.1: one in ten); ``block``: worklist
    positions per block of the drift report; a block is flagged when its calibration photos agree
    with the reference less than ``min_exact`` / ``min_within_one``.
    """

    rate: float = 0.1
    block: int = 20
    min_exact: float | None = None
    min_within_one: float | None = 0.8


@dataclass(frozen=True)
class Consensus:
    """``[consensus]``: how the panel's scores combine into the endpoint (median, mean, majority)."""

    rule: str = "median"


@dataclass(frozen=True)
class Adjudication:
    """``[adjudication]``: when a photo goes to the adjudicator, and what the adjudicator sees.

    ``min_difference``: highest minus lowest panel score that sends a photo to adjudication
    (``None``: never on grades alone); ``responder_change``: the improvement from baseline that
    makes a responder (``None``: responder status not checked); ``adjudicator``: the rater id
    who adjudicates; ``show_scores``: whether the adjudicator sees the panel's scores (never whose).
    """

    adjudicator: str | None = None
    min_difference: float | None = 2
    responder_change: float | None = None
    show_scores: bool = True


@dataclass(frozen=True)
class Rules:
    """All four sections of a study; a section the study leaves out is ``None``."""

    qualification: Qualification | None = None
    calibration: Calibration | None = None
    consensus: Consensus | None = None
    adjudication: Adjudication | None = None


KEYS: dict[str, tuple[str, ...]] = {
    "qualification": ("min_kappa", "min_kappa_lower", "min_exact", "min_within_one",
                      "weights", "attempts", "feedback"),
    "calibration": ("rate", "block", "min_exact", "min_within_one"),
    "consensus": ("rule",),
    "adjudication": ("adjudicator", "min_difference", "responder_change", "show_scores"),
}
"""The keys of each section, added to :data:`assess.study.KNOWN_KEYS`."""


def _share(table: Mapping, key: str, default: float | None, low: float = 0.0) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= 1:
        raise ValueError(f"{key}: must be a number from {low:g} to 1, not {value!r}")
    return float(value)


def _choice(table: Mapping, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = table.get(key, default)
    if value not in choices:
        raise ValueError(f"{key}: must be one of {', '.join(choices)}, not {value!r}")
    return value


def _count(table: Mapping, key: str, default: int, low: int = 1) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{key}: must be a whole number of at least {low}, not {value!r}")
    return value


def _grades(table: Mapping, key: str, default: float | None) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{key}: must be a number of grades above 0, not {value!r}")
    return float(value)


def parse_rules(data: Mapping[str, Any]) -> Rules:
    """The four sections from a parsed study file; ``ValueError("<section>.<key>: ...")`` if wrong.

    >>> parse_rules({"consensus": {"rule": "mode"}})
    Traceback (most recent call last):
    ...
    ValueError: consensus.rule: must be one of median, mean, majority, not 'mode'
    >>> parse_rules({"qualification": {"min_kappa": 0.7}}).qualification.attempts
    2
    """
    out: dict[str, Any] = {}
    for section, parse in (("qualification", _qualification), ("calibration", _calibration),
                           ("consensus", _consensus), ("adjudication", _adjudication)):
        table = data.get(section)
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise ValueError(f"{section}: must be a table ([{section}])")
        try:
            out[section] = parse(table)
        except ValueError as exc:
            raise ValueError(f"{section}.{exc}") from None
    return Rules(**out)


def adjudication_worklist(set_id: str) -> str:
    """The set id under which the adjudicator's scores are recorded (a worklist of its own, so
    the panel's ratings are never touched).

    >>> adjudication_worklist("demo-20261125")
    'demo-20261125:adjudication'
    """
    return f"{set_id}:adjudication"


SENDER = "coordinator"
"""The "rater" of the worklist that records which photos the coordinator sent to adjudication."""

RESPONDER_REASON = "raters disagree on responder status"


def sent_worklist(set_id: str) -> str:
    """The set id under which the coordinator records the codes sent to the adjudicator from the
    key's side (responder-status disagreements: :func:`assess.score.responders.send`).

    >>> sent_worklist("demo-20261125")
    'demo-20261125:adjudication-sent'
    """
    return f"{set_id}:adjudication-sent"


def rules_json(rules: Rules) -> dict:
    """The rules as ``set.json`` keeps them (``"panel"``): a section left out is absent.

    >>> rules_json(Rules(consensus=Consensus("mean")))
    {'consensus': {'rule': 'mean'}}
    """
    sections = {name: getattr(rules, name) for name in KEYS}
    return {name: asdict(section) for name, section in sections.items() if section is not None}


def rules_from_json(data: Mapping[str, Any] | None) -> Rules:
    """The rules back from ``set.json`` (``None``: a set written before it had them: no rules).

    >>> r = Rules(qualification=Qualification(min_kappa=0.7), adjudication=Adjudication("derm9"))
    >>> rules_from_json(rules_json(r)) == r, rules_from_json(None) == Rules()
    (True, True)
    """
    if not data:
        return Rules()
    return parse_rules({name: table for name, table in data.items() if name in KEYS})


def _qualification(t: Mapping) -> Qualification:
    return Qualification(
        min_kappa=_share(t, "min_kappa", None, low=-1.0),
        min_kappa_lower=_share(t, "min_kappa_lower", None, low=-1.0),
        min_exact=_share(t, "min_exact", None), min_within_one=_share(t, "min_within_one", None),
        weights=_choice(t, "weights", "linear", WEIGHTS), attempts=_count(t, "attempts", 2),
        feedback=_choice(t, "feedback", "end", FEEDBACK))


def _calibration(t: Mapping) -> Calibration:
    rate = _share(t, "rate", 0.1)
    if rate is None or not 0 < rate <= 0.5:
        raise ValueError(f"rate: must be above 0 and at most 0.5, not {t.get('rate')!r}")
    return Calibration(rate=rate, block=_count(t, "block", 20),
                       min_exact=_share(t, "min_exact", None),
                       min_within_one=_share(t, "min_within_one", 0.8))


def _consensus(t: Mapping) -> Consensus:
    return Consensus(rule=_choice(t, "rule", "median", RULES))


def _adjudication(t: Mapping) -> Adjudication:
    who = t.get("adjudicator")
    if who is not None and not isinstance(who, str):
        raise ValueError(f"adjudicator: must be a rater id (text), not {who!r}")
    show = t.get("show_scores", True)
    if not isinstance(show, bool):
        raise ValueError(f"show_scores: must be true or false, not {show!r}")
    return Adjudication(adjudicator=who, min_difference=_grades(t, "min_difference", 2),
                        responder_change=_grades(t, "responder_change", None), show_scores=show)


# -------------------------------------------------------------------------------- qualification


@dataclass(frozen=True)
class AttemptResult:
    """One attempt at the training worklist against the reference, and whether it qualifies."""

    n: int
    kappa: float
    kappa_lower: float
    kappa_upper: float
    exact: float
    within_one: float
    passed: bool
    failures: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return asdict(self)


def _below(label: str, value: float, floor: float | None, pct: bool) -> str | None:
    if floor is None:
        return None
    shown = (lambda v: f"{v:.0%}") if pct else (lambda v: f"{v:.2f}")
    if math.isnan(value):
        return f"{label} cannot be computed (no variation in the scores); it must reach {shown(floor)}"
    if value < floor:
        return f"{label} {shown(value)} is below {shown(floor)}"
    return None


def qualify(answers: Sequence[float], reference: Sequence[float], levels: Sequence[int],
            rule: Qualification) -> AttemptResult:
    """Score one attempt: ``answers[i]`` is the rater's score of the photo whose reference is
    ``reference[i]``; ``levels`` are the scale's declared levels (the kappa weights).

    Examples
    --------
    The exact and within-one floors are checked as shares:

    >>> rule = Qualification(min_exact=0.5, min_within_one=1.0)
    >>> r = qualify([1, 2, 3, 5], [1, 2, 4, 3], [1, 2, 3, 4, 5], rule)
    >>> r.exact, r.within_one, r.passed, r.failures
    (0.5, 0.75, False, ('within-one agreement 75% is below 100%',))
    """
    from .score.reliability import agreement, weighted_kappa  # score's package imports study

    if len(answers) != len(reference):
        raise ValueError("answers and reference scores must pair up")
    if not answers:
        return AttemptResult(0, NAN, NAN, NAN, NAN, NAN, False, ("no training photo was rated",))
    weights = None if rule.weights == "none" else rule.weights
    k = weighted_kappa(answers, reference, levels, weights)
    exact, within = agreement(answers, reference)
    failures = [f for f in (
        _below("weighted kappa", k.kappa, rule.min_kappa, False),
        _below("the lower 95% bound of kappa", k.ci_low, rule.min_kappa_lower, False),
        _below("exact agreement", exact, rule.min_exact, True),
        _below("within-one agreement", within, rule.min_within_one, True)) if f]
    return AttemptResult(len(answers), k.kappa, k.ci_low, k.ci_high, exact, within,
                         not failures, tuple(failures))


@dataclass(frozen=True)
class Standing:
    """Where a rater stands: ``"training"`` (attempts left), ``"qualified"`` or ``"refused"``."""

    state: str
    attempts_used: int
    attempts_left: int

    @property
    def may_rate_live(self) -> bool:
        return self.state == "qualified"


def standing(results: Sequence[AttemptResult], rule: Qualification | None) -> Standing:
    """The rater's standing after the finished attempts ``results`` (oldest first).

    A rater qualifies on the first passed attempt; attempts after it do not count. Without a
    ``[qualification]`` section every rater is qualified.

    >>> fail = AttemptResult(8, .3, .1, .5, .4, .7, False, ("x",))
    >>> standing([fail], Qualification(attempts=2))
    Standing(state='training', attempts_used=1, attempts_left=1)
    >>> standing([fail, fail], Qualification(attempts=2)).state
    'refused'
    """
    if rule is None:
        return Standing("qualified", len(results), 0)
    for used, result in enumerate(results, start=1):
        if result.passed:
            return Standing("qualified", used, max(rule.attempts - used, 0))
    used = min(len(results), rule.attempts)
    left = rule.attempts - used
    return Standing("training" if left > 0 else "refused", used, left)


# ---------------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibrationBlock:
    """Agreement with the reference of one block of a rater's live worklist."""

    block: int
    first: int
    last: int
    n: int
    exact: float
    within_one: float
    flagged: bool


def calibration_drift(rows: Iterable[tuple[int, float, float]], rule: Calibration
                      ) -> list[CalibrationBlock]:
    """Blocks of ``rule.block`` worklist positions: each one's agreement with the reference.

    ``rows`` are ``(position, score, reference)`` of the calibration photos one rater rated
    (position 1 is the first photo of the worklist). A block whose exact or within-one agreement
    is below the declared floor is flagged; blocks without a calibration photo are left out.

    >>> rows = [(3, 2, 2), (9, 3, 3), (14, 4, 2), (22, 1, 4), (27, 3, 1)]
    >>> [(b.block, b.n, b.within_one, b.flagged)
    ...  for b in calibration_drift(rows, Calibration(block=10, min_within_one=0.8))]
    [(1, 2, 1.0, False), (2, 1, 0.0, True), (3, 2, 0.0, True)]
    """
    from .score.reliability import agreement  # score's package imports study, which imports us

    by_block: dict[int, list[tuple[float, float]]] = {}
    for position, score, ref in rows:
        by_block.setdefault((int(position) - 1) // rule.block + 1, []).append((score, ref))
    out = []
    for block in sorted(by_block):
        scores, refs = zip(*by_block[block])
        exact, within = agreement(scores, refs)
        flagged = ((rule.min_exact is not None and exact < rule.min_exact)
                   or (rule.min_within_one is not None and within < rule.min_within_one))
        out.append(CalibrationBlock(block, (block - 1) * rule.block + 1, block * rule.block,
                                    len(scores), exact, within, flagged))
    return out


# ------------------------------------------------------------------------ consensus, adjudication


def consensus(scores: Sequence[float], rule: str) -> float | None:
    """The panel's score of one photo; ``None`` when the rule gives none (no strict majority).

    ``median``: the middle score (the mean of the two middle ones for an even panel, which can be
    a half grade); ``mean``: the arithmetic mean; ``majority``: the score more than half the panel
    gave. "Cannot assess" answers are left out by the caller.

    >>> consensus([2, 3, 4], "median"), consensus([2, 3, 3, 4], "median"), consensus([2, 3], "median")
    (3, 3.0, 2.5)
    >>> round(consensus([2, 3, 5], "mean"), 4)
    3.3333
    >>> consensus([2, 2, 4], "majority"), consensus([2, 3, 4], "majority")
    (2, None)
    """
    if not scores:
        return None
    if rule == "median":
        return median(scores)
    if rule == "mean":
        return float(np.mean(scores))
    if rule == "majority":
        score, count = Counter(scores).most_common(1)[0]
        return score if count * 2 > len(scores) else None
    raise ValueError(f"rule must be one of {', '.join(RULES)}, not {rule!r}")


def responder(baseline: float, follow_up: float, change: float, better: str) -> bool:
    """Whether a change from ``baseline`` to ``follow_up`` improves by at least ``change`` grades.

    >>> responder(4, 3, 1, "lower"), responder(4, 4, 1, "lower"), responder(1, 3, 2, "higher")
    (True, False, True)
    """
    gain = baseline - follow_up if better == "lower" else follow_up - baseline
    return gain >= change


@dataclass(frozen=True)
class Trigger:
    """Whether a photo (or a participant's pair of photos) goes to adjudication, and why."""

    adjudicate: bool
    reasons: tuple[str, ...] = ()


def adjudication_trigger(scores: Sequence[float], rule: Adjudication,
                         consensus_rule: str | None = None,
                         responders: Sequence[bool] | None = None) -> Trigger:
    """Whether the panel's ``scores`` of one photo send it to the adjudicator.

    ``responders`` are the raters' responder calls for the participant and region (one per rater,
    from :func:`responder`), checked when the study declares ``responder_change``; a majority rule
    without a majority also sends the photo.

    >>> rule = Adjudication(min_difference=2)
    >>> adjudication_trigger([2, 3, 3], rule)
    Trigger(adjudicate=False, reasons=())
    >>> adjudication_trigger([2, 3, 4], rule).reasons
    ('scores differ by 2 grades (2 to 4)',)
    >>> adjudication_trigger([2, 3, 3], Adjudication(responder_change=1), responders=[True, False, True]).reasons
    ('raters disagree on responder status',)
    >>> adjudication_trigger([1, 2, 3], Adjudication(min_difference=None), "majority").reasons
    ('no majority among the panel',)
    """
    reasons = []
    if len(scores) >= 2 and rule.min_difference is not None:
        spread = max(scores) - min(scores)
        if spread >= rule.min_difference:
            reasons.append(f"scores differ by {spread:g} grades ({min(scores):g} to {max(scores):g})")
    if rule.responder_change is not None and responders and len(set(responders)) > 1:
        reasons.append(RESPONDER_REASON)
    if consensus_rule == "majority" and scores and consensus(scores, "majority") is None:
        reasons.append("no majority among the panel")
    return Trigger(bool(reasons), tuple(reasons))


def blinded_scores(scores_by_rater: Mapping[str, float], rule: Adjudication) -> tuple[float, ...]:
    """What the adjudicator is shown of the panel: the scores in ascending order, never whose.

    >>> blinded_scores({"derm2": 4, "derm1": 2, "derm3": 3}, Adjudication())
    (2, 3, 4)
    >>> blinded_scores({"derm2": 4}, Adjudication(show_scores=False))
    ()
    """
    if not rule.show_scores:
        return ()
    return tuple(sorted(scores_by_rater.values()))


def final_score(consensus_score: float | None, adjudicated: float | None) -> tuple[float | None, str]:
    """The endpoint of one photo and where it comes from: the adjudicator's score wins.

    >>> final_score(3, None), final_score(3, 4), final_score(None, None)
    ((3, 'consensus'), (4, 'adjudicated'), (None, 'pending adjudication'))
    """
    if adjudicated is not None:
        return adjudicated, "adjudicated"
    if consensus_score is None:
        return None, "pending adjudication"
    return consensus_score, "consensus"


# ------------------------------------------------------------------------------------------ bias


@dataclass(frozen=True)
class Bias:
    """One rater's mean difference from the consensus with its t-based confidence interval."""

    n: int
    mean: float
    ci_low: float
    ci_high: float


def bias_against_consensus(own: Sequence[float], panel: Sequence[float],
                           confidence: float = 0.95) -> Bias:
    """Mean of ``own − panel`` over the photos both scored, with a t interval (Bland & Altman).

    >>> b = bias_against_consensus([3, 4, 2, 5, 3], [3, 3, 2, 4, 3])
    >>> b.n, b.mean, round(b.ci_low, 3), round(b.ci_high, 3)
    (5, 0.4, -0.28, 1.08)
    """
    d = np.asarray(own, dtype=float) - np.asarray(panel, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return Bias(0, NAN, NAN, NAN)
    mean = float(d.mean())
    if d.size < 2:
        return Bias(1, mean, NAN, NAN)
    half = float(stats.t.ppf(0.5 + confidence / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return Bias(int(d.size), mean, mean - half, mean + half)
