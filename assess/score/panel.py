"""The panel's analysis: consensus scores, the adjudication queue, and how the panel agrees.

The rules come from the set (``set.json`` ``"panel"``, written by ``randomize`` from the study's
``[consensus]`` and ``[adjudication]``); the decisions are :mod:`assess.panel`'s. Here they meet
the unblinded ratings:

* :func:`panel_scores`: one row per photo (or pair) the panel rated — the raters' scores (without
  names), the consensus, whether and why it goes to adjudication, the adjudicator's score and the
  final score with its source. Pre-adjudication scores are kept beside the final one.
* :func:`consensus_long`: the final scores as rows of the long table under the rater name
  ``consensus``; the summary table computed on them is the primary analysis, each rater's own rows
  the sensitivity analyses.
* :func:`panel_table`: the adjudication rate, each rater's bias against the consensus (mean
  difference with its 95% CI), Fleiss' kappa and ICC(2,k)/ICC(3,k) of the panel.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .. import panel as rules_
from .. import store
from . import reliability as rel
from . import stats
from .unblind import IMPROVEMENT, LONG_COLUMNS, ScoreError, Unblinded

__all__ = ["CONSENSUS", "PANEL_COLUMNS", "SCORE_COLUMNS", "rules_of", "panel_scores",
           "consensus_long", "panel_table", "adjudication_queue", "analyse_panel",
           "read_adjudicated", "read_sent", "responder_items"]

CONSENSUS = "consensus"
"""The rater name of the consensus rows in ``summary.csv`` (the primary analysis)."""

PANEL_COLUMNS = ("analysis", "scale", "rater", "n", "value", "ci_low", "ci_high", "p", "note")
SCORE_COLUMNS = ("item", "kind", "scale", "region", "participant", "timepoint", "view", "arm",
                 "n_raters", "scores", "consensus", "adjudicate", "reasons", "adjudicated",
                 "adjudication_reason", "final", "source")
IMPROVEMENT_LEVELS = (-2, -1, 0, 1, 2)


def rules_of(u: Unblinded) -> rules_.Rules:
    """The panel rules the set was built with (none for a set made before it kept them)."""
    return rules_.rules_from_json(u.set.meta.get("panel"))


def _panel_data(u: Unblinded) -> pd.DataFrame:
    """First showings of the panel's raters with a usable answer, one value column."""
    long = u.long
    keep = (~long["repeat"] & ~long["cannot_assess"] & long["rater"].isin(u.set.raters)).to_numpy()
    data = long.loc[keep]
    value = data["score"].where(data["kind"] == "single", data["improvement"]).astype("float64")
    return data.assign(value=value.to_numpy())


def _responder_reasons(u: Unblinded, data: pd.DataFrame, change: float) -> set[str]:
    """Items whose raters disagree on responder status (singles: the follow-up photo's code and
    the baseline photo's, so that the list says nothing about which of them is which)."""
    flagged: set[str] = set()
    pairs = data[data["kind"] == "pair"]
    for item, grp in pairs.groupby("item", sort=False):
        calls = grp["value"].to_numpy() >= change
        if len(set(calls.tolist())) > 1:
            flagged.add(str(item))
    singles = data[data["kind"] == "single"]
    if singles.empty:
        return flagged
    better = {s: u.set.scales[s].better for s in singles["scale"].unique().tolist()}
    base = singles[singles["timepoint"] == u.baseline]
    base_of = {(r.participant, r.region, r.view, r.rater): r.value
               for r in base.itertuples(index=False)}
    for (participant, region, view, tp), grp in singles[singles["timepoint"] != u.baseline].groupby(
            ["participant", "region", "view", "timepoint"], sort=False):
        calls = set()
        for r in grp.itertuples(index=False):
            before = base_of.get((participant, region, view, r.rater))
            if before is not None:
                calls.add(rules_.responder(before, r.value, change, better[r.scale]))
        if len(calls) > 1:
            flagged.update(grp["item"].astype(str).tolist())
            same = ((base["participant"] == participant) & (base["region"] == region)
                    & (base["view"] == view))
            flagged.update(base.loc[same, "item"].astype(str).tolist())
    return flagged


def responder_items(u: Unblinded, rules: rules_.Rules | None = None) -> list[str]:
    """Codes of the photos (baseline and follow-up alike) and pairs on whose responder status the
    panel's raters disagree, in code order; empty without ``[adjudication] responder_change``."""
    rules = rules if rules is not None else rules_of(u)
    if rules.adjudication is None or rules.adjudication.responder_change is None:
        return []
    data = _panel_data(u)
    if data.empty:
        return []
    return sorted(_responder_reasons(u, data, rules.adjudication.responder_change))


def read_adjudicated(db, set_id: str, adjudicator: str | None) -> pd.DataFrame:
    """The adjudicator's current answers of a set from the ratings database: item, score,
    better, reason (empty without an adjudicator or database)."""
    columns = ["item", "score", "better", "reason"]
    if adjudicator is None or db is None or not store.exists(db):
        return pd.DataFrame(columns=columns)
    worklist = rules_.adjudication_worklist(set_id)
    try:
        store.verify(db, worklist).check()
    except store.IntegrityError as exc:
        raise ScoreError(f"the adjudicated scores: {exc}") from None
    rows = store.current_ratings(db, worklist, ["score", "better", "comment"])
    rows = rows[rows["rater"] == adjudicator]
    return pd.DataFrame({"item": rows["item"].to_numpy(), "score": rows["score"].to_numpy(),
                         "better": rows["better"].to_numpy(),
                         "reason": rows["comment"].to_numpy()}, columns=columns)


def _pair_sign(data: pd.DataFrame) -> dict[str, int]:
    """Pair item → +1 when its right photo is the follow-up, −1 when the left is (read off the
    panel's own rows: improvement = ±IMPROVEMENT[better]; an item all raters called equal is
    never adjudicated)."""
    out: dict[str, int] = {}
    pairs = data[(data["kind"] == "pair") & data["better"].notna()]
    for row in pairs.itertuples(index=False):
        raw = IMPROVEMENT.get(row.better, 0)
        if raw and str(row.item) not in out:
            out[str(row.item)] = 1 if float(row.value) == raw else -1
    return out


def _adjudicated_values(data: pd.DataFrame, adjudications: pd.DataFrame | None
                        ) -> dict[str, tuple[float, str]]:
    """Item → (the adjudicated score, or for a pair its improvement score; the reason)."""
    if adjudications is None or adjudications.empty:
        return {}
    sign = _pair_sign(data)
    out = {}
    for r in adjudications.itertuples(index=False):
        better = getattr(r, "better", None)
        if isinstance(better, str) and better:
            if str(r.item) not in sign:
                continue
            value = float(sign[str(r.item)] * IMPROVEMENT[better])
        elif pd.isna(r.score):
            continue
        else:
            value = float(r.score)
        reason = getattr(r, "reason", "")
        out[str(r.item)] = (value, "" if reason is None or pd.isna(reason) else str(reason))
    return out


def read_sent(db, set_id: str) -> set[str]:
    """Codes the coordinator sent to adjudication from the key's side (responder status), after
    verifying their chain; empty without a database."""
    if db is None or not store.exists(db):
        return set()
    worklist = rules_.sent_worklist(set_id)
    try:
        store.verify(db, worklist).check()
    except store.IntegrityError as exc:
        raise ScoreError(f"the codes sent to adjudication: {exc}") from None
    rows = store.current_ratings(db, worklist, ["score"])
    return set(rows.loc[(rows["rater"] == rules_.SENDER) & (rows["score"] == 1), "item"].tolist())


def panel_scores(u: Unblinded, rules: rules_.Rules | None = None,
                 adjudications: pd.DataFrame | None = None,
                 sent: set[str] | None = None) -> pd.DataFrame:
    """One row per item the panel rated: scores, consensus, trigger, adjudication, final score.

    ``adjudications``: columns ``item``, ``score`` (or ``better``, for a pair: the answer "which
    looks better", turned into the improvement score here) and ``reason``, as
    :func:`read_adjudicated` gives them. Without a ``[consensus]`` rule the median is used.
    ``sent``: codes the coordinator sent on responder status (:func:`read_sent`): they stay sent
    even if a revised rating has since ended the disagreement.
    """
    rules = rules if rules is not None else rules_of(u)
    rule = rules.consensus.rule if rules.consensus else "median"
    adj_rule = rules.adjudication
    data = _panel_data(u)
    if data.empty:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    responders = (_responder_reasons(u, data, adj_rule.responder_change)
                  if adj_rule is not None and adj_rule.responder_change is not None else set())
    responders |= set(sent or ()) if adj_rule is not None else set()
    adjudicated = _adjudicated_values(data, adjudications)
    rows = []
    for item, grp in data.groupby("item", sort=True):
        first = grp.iloc[0]
        values = sorted(grp["value"].tolist())
        agreed = rules_.consensus(values, rule)
        trigger = (rules_.adjudication_trigger(values, adj_rule, rule,
                                               [True, False] if item in responders else None)
                   if adj_rule is not None else rules_.Trigger(False))
        adj_score, adj_reason = adjudicated.get(str(item), (None, ""))
        if trigger.adjudicate and adj_score is None:
            final, source = None, "pending adjudication"
        else:
            final, source = rules_.final_score(agreed, adj_score)
        rows.append({
            "item": item, "kind": first["kind"], "scale": first["scale"], "region": first["region"],
            "participant": first["participant"], "timepoint": first["timepoint"],
            "view": first["view"], "arm": first["arm"], "n_raters": len(values),
            "scores": "; ".join(f"{v:g}" for v in values),
            "consensus": np.nan if agreed is None else float(agreed),
            "adjudicate": trigger.adjudicate, "reasons": "; ".join(trigger.reasons),
            "adjudicated": np.nan if adj_score is None else adj_score,
            "adjudication_reason": adj_reason,
            "final": np.nan if final is None else float(final), "source": source})
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def adjudication_queue(scores: pd.DataFrame) -> pd.DataFrame:
    """Items sent to adjudication that have no adjudicated score yet."""
    if scores.empty:
        return scores
    return scores[scores["adjudicate"] & scores["adjudicated"].isna()].reset_index(drop=True)


def consensus_long(u: Unblinded, scores: pd.DataFrame) -> pd.DataFrame:
    """The final scores as long-table rows of the rater ``consensus`` (``score`` may be a half
    grade: a Float64 column); items still waiting for adjudication are left out."""
    data = _panel_data(u)
    done = scores[scores["final"].notna()]
    if done.empty:
        return u.long.iloc[0:0].copy()
    template = data.drop_duplicates("item").set_index("item").loc[done["item"]].reset_index()
    final = done["final"].to_numpy(dtype="float64")
    single = (template["kind"] == "single").to_numpy()
    out = template.assign(
        rater=CONSENSUS,
        score=pd.array(np.where(single, final, np.nan), dtype="Float64"),
        improvement=pd.array(np.where(single, np.nan, final), dtype="Float64"),
        seconds=np.nan, comment=None, answered_at=None, revision=0,
        baseline_identified=pd.array([pd.NA] * len(template), dtype="boolean"))
    return out[list(LONG_COLUMNS)].reset_index(drop=True)


def _row(analysis, scale, rater="", n=0, value=np.nan, low=np.nan, high=np.nan, p=np.nan,
         note="") -> dict:
    return dict(zip(PANEL_COLUMNS, (analysis, scale, rater, n, value, low, high, p, note)))


def panel_table(u: Unblinded, scores: pd.DataFrame) -> pd.DataFrame:
    """Adjudication rate, each rater's bias against the consensus, Fleiss' kappa, ICC(2,k), ICC(3,k)."""
    rows: list[dict] = []
    data = _panel_data(u)
    raters = [r for r in u.set.raters if r in set(data["rater"].tolist())]
    if len(raters) < 2 or scores.empty:
        return pd.DataFrame(rows, columns=list(PANEL_COLUMNS))
    for (kind, scale_id), grp in scores.groupby(["kind", "scale"], sort=True):
        scale = u.set.scales[scale_id]
        label = scale_id + (" (pairs)" if kind == "pair" else "")
        n, sent = len(grp), int(grp["adjudicate"].sum())
        low, high = stats.wilson_ci(sent, n)
        pending = int((grp["adjudicate"] & grp["adjudicated"].isna()).sum())
        rows.append(_row("adjudication rate", label, "", n, sent / n, low, high,
                         note=f"{sent} of {n} items sent to adjudication; {pending} pending"))
        mine = data[(data["kind"] == kind) & (data["scale"] == scale_id)]
        final = grp.set_index("item")["final"]
        for rater in raters:
            own = mine[mine["rater"] == rater].set_index("item")["value"]
            both = pd.concat([own, final], axis=1, keys=["own", "final"], join="inner").dropna()
            b = rules_.bias_against_consensus(both["own"].to_numpy(), both["final"].to_numpy())
            rows.append(_row("bias against consensus", label, rater, b.n, b.mean, b.ci_low,
                             b.ci_high, note="mean of own score − final (consensus or "
                             "adjudicated) score, t-based 95% CI"))
        wide = mine.pivot_table(index="item", columns="rater", values="value", aggfunc="first")
        wide = wide[[r for r in raters if r in wide.columns]].dropna()
        levels = IMPROVEMENT_LEVELS if kind == "pair" else scale.values
        continuous = kind != "pair" and scale.continuous  # a VAS: no categories to count
        if len(wide) >= 2 and wide.shape[1] >= 2 and not continuous:
            f = rel.fleiss_kappa(rel.category_counts(wide.to_numpy(), levels))
            rows.append(_row("Fleiss' kappa", label, " & ".join(wide.columns), f.subjects, f.kappa,
                             f.kappa - rel.Z975 * f.se, f.kappa + rel.Z975 * f.se, f.p,
                             note=f"{f.raters} raters on {f.subjects} items rated by all; P̄ = "
                                  f"{f.p_bar:.4f}, P̄e = {f.p_e:.4f}; Wald CI from the SE under H0"))
        if len(wide) >= 2 and wide.shape[1] >= 2:
            if scale.kind != "categorical" or kind == "pair":
                for form in ("ICC(2,k)", "ICC(3,k)"):
                    c = rel.icc(wide.to_numpy(), form)
                    rows.append(_row(form, label, " & ".join(wide.columns), c.n, c.icc,
                                     c.ci_low, c.ci_high, c.p,
                                     note=("reliability of the mean of the k raters: two-way "
                                           + ("random, absolute agreement" if form[4] == "2"
                                              else "mixed, consistency")
                                           + f"; F = {c.f:.2f} on {c.df1} and {c.df2} df")))
    return pd.DataFrame(rows, columns=list(PANEL_COLUMNS))


def analyse_panel(u: Unblinded, db=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(scores, panel table, primary summary rows)`` of a set rated by two or more raters.

    ``db``: the ratings database that holds the adjudicator's answers, if any. The primary summary
    rows (rater ``consensus``) are computed only when the set declares a
    ``[consensus]`` rule; otherwise they are empty and each rater's rows stay the analysis.
    """
    from .tables import SUMMARY_COLUMNS, summary_table

    empty = pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    if len(u.set.raters) < 2:
        return pd.DataFrame(columns=list(SCORE_COLUMNS)), pd.DataFrame(columns=list(PANEL_COLUMNS)), empty
    rules = rules_of(u)
    who = rules.adjudication.adjudicator if rules.adjudication else None
    scores = panel_scores(u, rules, read_adjudicated(db, u.set.set_id, who),
                          read_sent(db, u.set.set_id))
    table = panel_table(u, scores)
    if rules.consensus is None or scores.empty:
        return scores, table, empty
    primary = summary_table(replace(u, long=consensus_long(u, scores)))
    note = "primary analysis: panel " + rules.consensus.rule + " (adjudicated where the panel differed)"
    primary["note"] = [note if pd.isna(n) or not n else f"{note}; {n}" for n in primary["note"]]
    return scores, table, primary
