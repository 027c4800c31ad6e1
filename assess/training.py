"""Qualification before live rating: the rater's training attempts, their results and the gate.

A set built from a study with ``[qualification]`` holds, for each rater, one training worklist per
allowed attempt (``worklists/<rater>.training-<n>.json``: the study's training photos under new
codes, in a new order), and in ``set.json`` ``"training"`` a salted commitment to each training
code's reference score — never the score. The reference scores themselves stay in the key
(``key/reference.csv``); the coordinator gives that file to the rating server
(``assess rate RATER_DIR --reference KEY_DIR/reference.csv``), which checks it against the sealed
commitments (:func:`load_reference`) and keeps it in the server process: the browser gets a
reference score only after the rater has answered that photo.

Every answer is an ordinary rating event, hash-chained, in a worklist of its own:
set ``<set-id>:training:<n>`` (:func:`worklist_id`). At the end of an attempt its worklist is
locked and the result (criterion, values, passed) is recorded as a chained event in
``<set-id>:qualification`` (:func:`results_id`), item ``attempt-<n>``, score 1 (passed) or 0,
the result as JSON in the comment. The rater's standing (:func:`assess.panel.standing`) is read
back from those events on every page, so it survives reloads and restarts.
"""

from __future__ import annotations

import json
import math
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from . import panel, store
from .errors import AssessError
from .rate import Item, RaterSet, Worklist, load_rater_set

__all__ = ["ENV_REFERENCE", "check_serve", "TrainingError", "Training", "worklist_id", "results_id", "plan_of", "load_reference",
           "Trainee", "attempt_results", "codes_of", "standings", "format_status"]


ENV_REFERENCE = "ASSESS_REFERENCE"
"""The environment variable naming ``key/reference.csv`` for the app (set by ``assess rate``)."""


class TrainingError(AssessError):
    """Qualification cannot go on as asked; the message names the file or rater and what to do."""


def worklist_id(set_id: str, attempt: int) -> str:
    """The set id under which attempt ``attempt`` of the training worklist is recorded.

    >>> worklist_id("demo-20261125", 2)
    'demo-20261125:training:2'
    """
    return f"{set_id}:training:{attempt}"


def results_id(set_id: str) -> str:
    """The set id under which the attempts' results are recorded.

    >>> results_id("demo-20261125")
    'demo-20261125:qualification'
    """
    return f"{set_id}:qualification"


@dataclass(frozen=True)
class Training:
    """``set.json`` ``"training"`` with the ``[qualification]`` rule."""

    rule: panel.Qualification
    worklists: Mapping[str, tuple[str, ...]]  # rater -> worklist files, attempt 1 first
    commitments: Mapping[str, str]  # training code -> salted commitment

    @property
    def attempts(self) -> int:
        return self.rule.attempts


def plan_of(rs: RaterSet) -> Training | None:
    """The set's training plan, ``None`` when the set has no qualification."""
    data = json.loads((rs.root / "set.json").read_text(encoding="utf-8"))
    raw = data.get("training")
    if not raw:
        return None
    where = rs.root / "set.json"
    try:
        rule = panel.rules_from_json(data.get("panel")).qualification
    except ValueError as exc:
        raise TrainingError(f"{where}: panel.{exc}; copy the rater folder again") from None
    worklists, commitments = raw.get("worklists"), raw.get("commitments")
    if rule is None or not isinstance(worklists, dict) or not isinstance(commitments, dict):
        raise TrainingError(f"{where}: training: incomplete; copy the rater folder again")
    return Training(rule, {r: tuple(v) for r, v in worklists.items()}, dict(commitments))


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def load_reference(path: str | Path, rs: RaterSet) -> dict[str, float]:
    """The reference score of each training code, from ``key/reference.csv``, checked against the
    sealed commitments of ``set.json``.

    Raises
    ------
    TrainingError
        when the file is inside the rater folder (it would travel to the raters), cannot be read,
        lacks a training code of the set, or a row does not match its commitment (another set's
        file, or a changed one).
    """
    from .blind import BlindError, read_reference_key, reference_commitment

    path = Path(path)
    plan = plan_of(rs)
    if plan is None:
        raise TrainingError(f"{path}: set {rs.set_id} has no training worklists; start it "
                            "without --reference")
    if _inside(path, rs.root):
        raise TrainingError(f"{path}: is inside the rater folder {rs.root}; the reference scores "
                            "must stay with the key: give KEY_DIR/reference.csv from outside it")
    try:
        rows = read_reference_key(path)
    except BlindError as exc:
        raise TrainingError(str(exc)) from None
    by_code = {r.code: r for r in rows if r.use == "training"}
    out: dict[str, float] = {}
    for code, sealed in sorted(plan.commitments.items()):
        row = by_code.get(code)
        if row is None:
            raise TrainingError(f"{path}: has no row for training code {code} of set "
                                f"{rs.set_id}; give the reference.csv of this set's key folder")
        if reference_commitment(row.code, row.score, row.salt) != sealed:
            raise TrainingError(f"{path}: the row of {code} does not match the sealed set "
                                f"{rs.set_id} (set.json): the file was changed or is of another "
                                "set; give the reference.csv of this set's key folder")
        out[code] = float(row.score)
    return out


def check_serve(rs: RaterSet, reference: str | Path | None) -> Path | None:
    """What ``assess rate`` checks before it serves a set: a set with training worklists needs
    its reference (checked by :func:`load_reference`), a set without them takes none. Returns the
    reference's absolute path (or ``None``)."""
    if plan_of(rs) is None:
        if reference is not None:
            raise TrainingError(f"--reference {reference}: set {rs.set_id} has no training "
                                "worklists; start it without --reference")
        return None
    if reference is None:
        raise TrainingError(f"{rs.root}: set {rs.set_id} has a training worklist "
                            "([qualification]): start it with --reference KEY_DIR/reference.csv "
                            "(the key folder's reference.csv, kept outside the rater folder)")
    load_reference(reference, rs)
    return Path(reference).resolve()


def codes_of(rs: RaterSet, rater: str) -> frozenset[str]:
    """Every photo code of the rater's training worklists (the photo server serves these too)."""
    plan = plan_of(rs)
    if plan is None or rater not in plan.worklists:
        return frozenset()
    return frozenset(c for n in range(1, plan.attempts + 1)
                     for it in _items(rs, plan, rater, n) for c in it.photos)


def _items(rs: RaterSet, plan: Training, rater: str, attempt: int) -> tuple[Item, ...]:
    files = plan.worklists.get(rater, ())
    if not 1 <= attempt <= len(files):
        raise TrainingError(f"{rater}: no training attempt {attempt} in set {rs.set_id}")
    path = rs.root / files[attempt - 1]
    if not (path.resolve().parent == (rs.root / "worklists").resolve() and path.is_file()):
        raise TrainingError(f"{rs.root / 'set.json'}: training.worklists.{rater}: "
                            f"{files[attempt - 1]} is missing; copy the whole rater folder again")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = [Item(e["item"], e["kind"], e["scale"], str(e.get("region", "")), tuple(e["photos"]))
                 for e in data.get("items") or []]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TrainingError(f"{path}: cannot be read ({exc}); copy the rater folder again") from None
    _check_items(rs, path, data, rater, items)
    return tuple(items)


def _check_items(rs: RaterSet, path: Path, data: dict, rater: str, items: list[Item]) -> None:
    from .blind import CODE_RE

    if data.get("rater") != rater or data.get("set_id") != rs.set_id or not items:
        raise TrainingError(f"{path}: rater, set_id or items do not match set.json; copy the "
                            "rater folder again")
    for it in items:
        if (not CODE_RE.match(it.item) or it.kind != "single" or it.scale not in rs.scales
                or len(it.photos) != 1
                or not (rs.root / "images" / "display" / f"{it.photos[0]}.jpg").is_file()):
            raise TrainingError(f"{path}: item {it.item}: not a training photo of this set; copy "
                                "the rater folder again")


def _result_json(attempt: int, rule: panel.Qualification, result: panel.AttemptResult) -> str:
    def clean(v):
        return None if isinstance(v, float) and math.isnan(v) else v

    values = {k: clean(v) for k, v in result.as_dict().items()}
    values["failures"] = list(result.failures)
    return json.dumps({"attempt": attempt, "criterion": {k: clean(v) for k, v in
                                                         vars(rule).items()},
                       "result": values}, sort_keys=True)


def _result_from(event: store.Event) -> panel.AttemptResult:
    data = json.loads(event.comment or "{}")["result"]
    nan = float("nan")
    return panel.AttemptResult(
        int(data["n"]), *(nan if data[k] is None else float(data[k]) for k in
                          ("kappa", "kappa_lower", "kappa_upper", "exact", "within_one")),
        bool(data["passed"]), tuple(data.get("failures") or ()))


def attempt_results(rs: RaterSet, db, rater: str) -> list[panel.AttemptResult]:
    """The rater's finished attempts, oldest first, from the ratings database."""
    if not store.exists(db):
        return []
    with closing(store.connect(db)) as conn:
        events = store.current(conn, results_id(rs.set_id), rater)
    out = []
    n = 1
    while f"attempt-{n}" in events:
        out.append(_result_from(events[f"attempt-{n}"]))
        n += 1
    return out


class Trainee:
    """One rater's qualification: their attempts, answers and standing.

    ``reference``: code → reference score (:func:`load_reference`); without it nothing can be
    scored, and :meth:`finish` refuses.
    """

    def __init__(self, rs: RaterSet, rater: str, db, reference: Mapping[str, float] | None):
        self.set, self.rater, self.db = rs, rater, db
        plan = plan_of(rs)
        if plan is None:
            raise TrainingError(f"set {rs.set_id} has no qualification")
        self.plan = plan
        self.reference = dict(reference or {})

    @property
    def rule(self) -> panel.Qualification:
        return self.plan.rule

    def results(self) -> list[panel.AttemptResult]:
        return attempt_results(self.set, self.db, self.rater)

    def standing(self) -> panel.Standing:
        return panel.standing(self.results(), self.rule)

    def attempt(self) -> int | None:
        """The attempt the rater is on now (1 …), ``None`` once qualified or out of attempts."""
        st = self.standing()
        return None if st.state != "training" else st.attempts_used + 1

    def worklist(self, attempt: int) -> Worklist:
        """Attempt ``attempt``'s worklist; its answers are recorded under :func:`worklist_id`."""
        items = _items(self.set, self.plan, self.rater, attempt)
        view = replace(self.set, set_id=worklist_id(self.set.set_id, attempt))
        return Worklist(view, self.rater, items)

    def feedback(self, code: str, answered: bool) -> float | None:
        """The reference score of ``code`` once the rater has answered it (``None`` before)."""
        return self.reference.get(code) if answered else None

    def score(self, attempt: int) -> panel.AttemptResult:
        """The attempt's result against the reference (every photo must have a score)."""
        wl = self.worklist(attempt)
        current = wl.state(self.db).current
        missing = [it.item for it in wl.items if it.item not in current
                   or current[it.item].score is None]
        if missing:
            raise TrainingError(f"{self.rater}: attempt {attempt} is not finished: "
                                f"{len(missing)} photo(s) have no score")
        if any(it.item not in self.reference for it in wl.items):
            raise TrainingError(f"{self.rater}: the server was started without the reference "
                                "scores of this set (assess rate --reference KEY_DIR/reference.csv)")
        answers = [float(current[it.item].score) for it in wl.items]
        refs = [self.reference[it.item] for it in wl.items]
        levels = sorted({v for it in wl.items for v in self.set.scales[it.scale].values})
        return panel.qualify(answers, refs, levels, self.rule)

    def finish(self, attempt: int) -> panel.AttemptResult:
        """End attempt ``attempt``: lock its answers, record its result (a chained event) and
        return it. Finishing an attempt already finished returns its recorded result."""
        done = self.results()
        if attempt <= len(done):
            return done[attempt - 1]
        if attempt != len(done) + 1 or self.standing().state != "training":
            raise TrainingError(f"{self.rater}: attempt {attempt} is not open")
        result = self.score(attempt)
        wl = self.worklist(attempt)
        with closing(store.connect(self.db)) as conn:
            if not store.is_locked(conn, wl.set.set_id, self.rater):
                store.lock(conn, wl.set.set_id, self.rater, [it.item for it in wl.items])
            store.record(conn, results_id(self.set.set_id), self.rater, f"attempt-{attempt}",
                         score=1 if result.passed else 0,
                         comment=_result_json(attempt, self.rule, result))
        return result


def standings(rater_dir: str | Path, db=None) -> dict[str, panel.Standing]:
    """Rater → standing (``training``, ``qualified`` or ``refused``, attempts used and left) from
    the ratings database; empty for a set without training worklists."""
    from .rate import default_db

    rs = load_rater_set(rater_dir)
    plan = plan_of(rs)
    if plan is None:
        return {}
    db = store.location(db) if db is not None else default_db(rs)
    return {rater: panel.standing(attempt_results(rs, db, rater), plan.rule) for rater in rs.raters}


def format_status(rater_dir: str | Path, db=None) -> str:
    """The coordinator's view of qualification (``assess status``): each rater's state and the
    attempts used of those allowed; never a score. Empty for a set without training worklists.

    The states: ``training`` (attempts left, not qualified yet), ``qualified`` (the live worklist
    is open), ``refused`` (out of attempts: the coordinator decides what follows).
    """
    rows = standings(rater_dir, db)
    if not rows:
        return ""
    allowed = plan_of(load_rater_set(rater_dir)).attempts
    width = max(len(r) for r in rows)
    lines = ["Qualification (training before live rating):"]
    lines += [f"  {rater.ljust(width)}  {st.state:<9}  attempts {st.attempts_used}/{allowed}"
              for rater, st in rows.items()]
    return "\n".join(lines)
