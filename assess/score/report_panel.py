"""The report's panel section: how the panel combined, who was adjudicated, how the panel agreed.

Called by :func:`assess.score.write_files` and passed to :func:`assess.score.report.render_report`
as ready HTML, so the report module stays one layout for every set.
"""

from __future__ import annotations

import pandas as pd

from .. import panel as rules_
from .report import _table, _with_ci, esc
from .unblind import Unblinded

__all__ = ["PUBLISHED", "panel_section"]

PUBLISHED: dict[str, str] = {
    "wsrs": "intra-rater weighted κ 0.77–0.81, inter-rater weighted κ 0.75–0.78 (Day DJ et al., "
            "Am J Clin Dermatol 2004;5:49–52)",
    "merz-hand": "intra-rater weighted κ 0.74 after a scale qualification programme (Carruthers A "
                 "et al., Dermatol Surg 2008;34 Suppl 2:S179–83)",
}
"""The published reliability of a shipped scale, shown beside the trial's own."""

PANEL_HTML = [("analysis", "analysis", "t"), ("scale", "scale", "t"), ("rater", "rater(s)", "t"),
              ("n", "n", "n0"), ("value_ci", "value (95% CI)", "h"), ("p", "p", "p"),
              ("note", "note", "t")]
QUEUE_HTML = [("item", "code", "t"), ("region", "region", "t"), ("scores", "panel scores", "t"),
              ("reasons", "why", "t"), ("adjudicated", "adjudicated", "n0"),
              ("adjudication_reason", "adjudicator's reason", "t"), ("source", "final from", "t")]


def panel_section(u: Unblinded, panel: pd.DataFrame | None, scores: pd.DataFrame | None
                  ) -> list[str]:
    """HTML of the panel section; empty for a set rated by one rater."""
    if panel is None or panel.empty:
        return []
    rules = rules_.rules_from_json(u.set.meta.get("panel"))
    parts = ["<h2>Panel</h2>"]
    if rules.consensus is not None:
        parts.append(f"<p>The primary analysis uses the panel's <b>{esc(rules.consensus.rule)}</b> "
                     "score of each photo (rater <code>consensus</code> in the tables above), the "
                     "adjudicated score where the panel differed; each rater's own rows are the "
                     "sensitivity analyses.</p>")
    else:
        parts.append("<p class='note'>The study declares no [consensus] rule: each rater is "
                     "analysed on their own; the agreement below uses the panel's median.</p>")
    adj = rules.adjudication
    if adj is not None:
        when = [f"scores {adj.min_difference:g} or more grades apart"] if adj.min_difference else []
        if adj.responder_change is not None:
            when.append(f"raters disagreeing whether the change reaches {adj.responder_change:g}")
        parts.append(f"<p class='note'>Adjudication by {esc(adj.adjudicator or 'the adjudicator')}"
                     f" of photos with {esc(' or '.join(when) or 'no majority')}; the adjudicator "
                     + ("saw the panel's scores without the raters' names." if adj.show_scores
                        else "did not see the panel's scores.") + "</p>")
    shown = panel.copy()
    shown["value_ci"] = [_with_ci(v, a, b) for v, a, b in zip(shown["value"], shown["ci_low"],
                                                               shown["ci_high"])]
    parts.append(_table(shown, PANEL_HTML))
    published = [(s, PUBLISHED[s]) for s in u.set.scales if s in PUBLISHED]
    if published:
        parts.append("<p class='note'>Published reliability beside this trial's: " + "; ".join(
            f"{esc(u.set.scales[s].name)}: {esc(text)}" for s, text in published) + ".</p>")
    if scores is not None and len(scores) and scores["adjudicate"].any():
        sent = scores[scores["adjudicate"]]
        parts.append(f"<h3>Adjudicated photos ({len(sent)})</h3>" + _table(sent, QUEUE_HTML))
    parts.append("<p class='note'>Bias: mean of the rater's score minus the final score with a "
                 "t-based 95% CI (Bland &amp; Altman). Fleiss' κ (Fleiss 1971) over the photos "
                 "rated by every rater, with a Wald interval from its standard error under H0 "
                 "(Fleiss, Nee &amp; Landis 1979); ICC(2,k) and ICC(3,k) (Shrout &amp; Fleiss "
                 "1979): the reliability of the mean of the k raters. Files: "
                 "<code>panel.csv</code>, <code>panel_scores.csv</code>.</p>")
    return parts
