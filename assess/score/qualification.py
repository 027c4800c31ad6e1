"""The qualification results: each rater's training attempts against the reference scores.

The scorer recomputes every attempt from the training answers in the ratings database (worklists
``<set-id>:training:<n>``, chains verified first) and the reference scores of the key
(``key/reference.csv``), with the criterion of ``set.json``; it sets beside them what the rating
app recorded when the attempt ended (``<set-id>:qualification``). Training answers are never part
of the trial's tables: they are in worklists of their own, which the trial's analysis does not
read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import panel as rules_
from .. import store
from .report import esc, fmt_num
from .unblind import ScoreError, Unblinded

__all__ = ["COLUMNS", "qualification_table", "qualification_section"]

COLUMNS = ("rater", "attempt", "n", "kappa", "kappa_lower", "kappa_upper", "exact", "within_one",
           "passed", "recorded", "failures")
"""Columns of ``qualification.csv``: one row per rater and finished attempt. ``passed`` is the
scorer's own result; ``recorded`` what the app recorded at the end of the attempt (``passed`` /
``failed``; empty when the app recorded none)."""


def _reference(key_dir: Path) -> dict[str, tuple[str, str, float]]:
    """Training code → (rater, attempt, reference score) from ``key/reference.csv``."""
    from ..blind import BlindError, read_reference_key

    try:
        rows = read_reference_key(key_dir / "reference.csv")
    except BlindError as exc:
        raise ScoreError(str(exc)) from None
    return {r.code: (r.rater, r.attempt, float(r.score)) for r in rows if r.use == "training"}


def qualification_table(u: Unblinded, key_dir: str | Path, db) -> pd.DataFrame | None:
    """Every finished attempt of every rater, scored against the reference; ``None`` for a set
    without training worklists or without a ratings database."""
    from ..training import results_id, worklist_id

    meta = u.set.meta
    if not meta.get("training") or db is None or not store.exists(db):
        return None
    rule = rules_.rules_from_json(meta.get("panel")).qualification
    if rule is None:
        return None
    set_id = str(meta["set_id"])
    ref = _reference(Path(key_dir))
    for n in range(1, rule.attempts + 1):
        _verify(db, worklist_id(set_id, n))
    _verify(db, results_id(set_id))
    levels = sorted({v for s in u.set.scales.values() for v in s.values})
    recorded = _recorded(db, set_id, u)
    rows = []
    for n in range(1, rule.attempts + 1):
        current = store.current_ratings(db, worklist_id(set_id, n), ["score"])
        locks = store.locks(db, worklist_id(set_id, n))
        for rater in u.set.raters:
            if rater not in locks:  # an attempt is finished when the app locked it
                continue
            mine = current[current["rater"] == rater]
            pairs = [(float(s), ref[i][2]) for i, s in zip(mine["item"], mine["score"])
                     if i in ref and ref[i][0] == rater and ref[i][1] == str(n) and pd.notna(s)]
            result = rules_.qualify([a for a, _ in pairs], [b for _, b in pairs], levels, rule)
            rec = recorded.get((rater, n))
            rows.append({"rater": rater, "attempt": n, "n": result.n, "kappa": result.kappa,
                         "kappa_lower": result.kappa_lower, "kappa_upper": result.kappa_upper,
                         "exact": result.exact, "within_one": result.within_one,
                         "passed": result.passed,
                         "recorded": "" if rec is None else ("passed" if rec else "failed"),
                         "failures": "; ".join(result.failures)})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _recorded(db, set_id: str, u: Unblinded) -> dict[tuple[str, int], bool]:
    from ..training import results_id

    current = store.current_ratings(db, results_id(set_id), ["score"])
    out = {}
    for rater, item, score in zip(current["rater"], current["item"], current["score"]):
        if str(item).startswith("attempt-") and pd.notna(score):
            out[(rater, int(str(item)[len("attempt-"):]))] = bool(score)
    return out


def _verify(db, set_id: str) -> None:
    try:
        store.verify(db, set_id).check()
    except store.StoreError as exc:
        raise ScoreError(f"the training ratings: {exc}") from None


def qualification_section(u: Unblinded, table: pd.DataFrame | None) -> list[str]:
    """HTML of the report's qualification section; empty without training."""
    if table is None:
        return []
    rule = rules_.rules_from_json(u.set.meta.get("panel")).qualification
    crit = []
    if rule.min_kappa is not None:
        crit.append(f"weighted κ ({rule.weights}) ≥ {rule.min_kappa:.2f}")
    if rule.min_kappa_lower is not None:
        crit.append(f"its lower 95% bound ≥ {rule.min_kappa_lower:.2f}")
    if rule.min_exact is not None:
        crit.append(f"exact agreement ≥ {rule.min_exact:.0%}")
    if rule.min_within_one is not None:
        crit.append(f"within-one agreement ≥ {rule.min_within_one:.0%}")
    parts = ["<h2>Qualification</h2>",
             f"<p>Each rater rated the training photos against the expert reference before the "
             f"live worklist opened; criterion: {esc(', '.join(crit) or 'none declared')}; "
             f"{rule.attempts} attempt(s) allowed, feedback: {esc(rule.feedback)}. Training "
             "ratings are not part of the trial's analysis.</p>"]
    if table.empty:
        parts.append("<p class='note'>No attempt was finished.</p>")
        return parts
    head = ("rater", "attempt", "n", "weighted κ (95% CI)", "exact", "within one", "passed",
            "why not")
    body = []
    for row in table.itertuples(index=False):
        kappa = (f"{fmt_num(row.kappa)} ({fmt_num(row.kappa_lower)} to "
                 f"{fmt_num(row.kappa_upper)})" if fmt_num(row.kappa) else "")
        cells = (esc(row.rater), str(row.attempt), str(row.n), kappa,
                 fmt_num(100 * row.exact, 0) + "%" if pd.notna(row.exact) else "",
                 fmt_num(100 * row.within_one, 0) + "%" if pd.notna(row.within_one) else "",
                 "yes" if row.passed else "no", esc(row.failures))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head)
                 + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")
    return parts
