"""The trial report: one self-contained HTML file with the tables and altair charts.

Charts are drawn with altair and rendered to inline SVG by ``vl-convert-python`` (no JavaScript, no
font or script from the network: the file makes no request when opened, which a Content Security
Policy in the file also enforces). Everything that comes from the inputs is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone

import altair as alt
import numpy as np
import pandas as pd

from .. import __version__
from ..chain import short
from ..child import Child
from .tables import IMPROVEMENT_LABELS, IMPROVEMENT_LEVELS, repeat_pairs
from .unblind import Unblinded

__all__ = ["render_report", "charts", "figures", "ChartRenderer", "fmt_p", "fmt_num"]

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src 'none'; "
       "script-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'")

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1d2430;
max-width:1180px;margin:2em auto;padding:0 1.2em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:2px solid #d8dee8;padding-bottom:.2em}
h3{margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:12.5px}
th,td{border:1px solid #d8dee8;padding:3px 4px;text-align:right;vertical-align:top}
th{background:#f1f4f8;text-align:center}td.t{text-align:left}
.meta td{text-align:left}.warn{background:#fff7e0;border-left:4px solid #e0a800;padding:.4em .8em;margin:.4em 0}
.ok{background:#eaf7ee;border-left:4px solid #2e9e5b;padding:.4em .8em;margin:.4em 0}
.note{color:#5a6472;font-size:12px}td.why{color:#6b7480;font-size:11px;font-style:italic;
text-align:left;max-width:6em;overflow-wrap:anywhere;hyphens:auto}.ci{color:#5a6472;font-size:11px;white-space:nowrap}details{margin:.3em 0 .8em}summary{cursor:pointer}
.chart{margin:.5em 0 1.2em;overflow-x:auto}.scroll{overflow-x:auto}code{background:#f1f4f8;padding:0 3px}
@media print{.chart{page-break-inside:avoid}}
"""


def esc(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


def fmt_num(value, digits: int = 2) -> str:
    """A number for a table cell: fixed decimals, a true minus sign, empty when missing.

    >>> fmt_num(-0.68421), fmt_num(float("nan")), fmt_num(12, 0)
    ('−0.68', '', '12')
    """
    if value is None or value is pd.NA:
        return ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if math.isnan(v):
        return ""
    return f"{v:.{digits}f}".replace("-", "−")


def fmt_p(value) -> str:
    """A p-value as journals print it.

    >>> fmt_p(0.0029979), fmt_p(0.00001), fmt_p(0.25441)
    ('0.003', '<0.001', '0.254')
    """
    if value is None or value is pd.NA:
        return ""
    v = float(value)
    if math.isnan(v):
        return ""
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _svg(spec: dict) -> str:
    import vl_convert as vlc

    return vlc.vegalite_to_svg(spec, allowed_base_urls=[])


# Run by ChartRenderer in a child process: start the engine, then draw the specs it is sent.
_WORKER = """
import json, sys
import vl_convert as vlc
vlc.vegalite_to_svg({"data": {"values": []}, "mark": "point"}, allowed_base_urls=[])
line = sys.stdin.readline()
if line.strip():
    src, dst = json.loads(line)
    with open(src, encoding="utf-8") as fh:
        specs = json.load(fh)
    svgs = [vlc.vegalite_to_svg(spec, allowed_base_urls=[]) for spec in specs]
    with open(dst, "w", encoding="utf-8") as fh:
        json.dump(svgs, fh)
"""


class ChartRenderer:
    """Draw Vega-Lite specs as SVG with vl-convert in a child process.

    Its engine needs about a second to start and holds the interpreter while it draws, so the
    scorer starts it first, sends the specs when they are ready and writes the other files
    meanwhile. When the child cannot run, :meth:`result` draws in this process instead.

    >>> with ChartRenderer() as renderer:
    ...     renderer.submit([{"data": {"values": [{"a": 1}]}, "mark": "point",
    ...                       "encoding": {"x": {"field": "a", "type": "quantitative"}}}])
    ...     svg, = renderer.result()
    >>> svg.startswith("<svg")
    True
    """

    def __init__(self) -> None:
        self._child = Child(_WORKER, prefix="assess-charts-")
        self._specs: list[dict] = []

    def submit(self, specs: list[dict]) -> None:
        """Send the specs to draw (once)."""
        self._specs = list(specs)
        if self._child.running:
            src, dst = self._child.dir / "specs.json", self._child.dir / "svgs.json"
            src.write_text(json.dumps(self._specs), encoding="utf-8")
            self._child.send([str(src), str(dst)])

    def result(self) -> list[str]:
        """The SVG of each spec, in order."""
        if self._child.wait():
            try:
                svgs = json.loads((self._child.dir / "svgs.json").read_text(encoding="utf-8"))
                if len(svgs) == len(self._specs):
                    return svgs
            except (OSError, ValueError):
                pass
        return [_svg(spec) for spec in self._specs]

    def close(self) -> None:
        self._child.close()

    def __enter__(self) -> "ChartRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _whole_steps(counts: pd.Series, most: int = 4) -> list[int]:
    """Up to ``most`` whole numbers from the smallest to the largest count, for a legend.

    >>> _whole_steps(pd.Series([1, 2, 9])), _whole_steps(pd.Series([3, 3]))
    ([1, 4, 6, 9], [3])
    """
    lo, hi = int(counts.min()), int(counts.max())
    return sorted({int(round(v)) for v in np.linspace(lo, hi, most)})


def _title(region: str, view: str, scale_name: str) -> str:
    return f"{region}{' / ' + view if view else ''}: {scale_name}"


def charts(u: Unblinded, distribution: pd.DataFrame) -> dict[str, list[tuple[str, alt.Chart]]]:
    """The report's charts, per section: ``{section: [(caption, chart), …]}``."""
    out: dict[str, list[tuple[str, alt.Chart]]] = {}
    _distribution_charts(u, distribution, out)
    _change_charts(u, out)
    _repeat_charts(u, out)
    return out


def _distribution_charts(u: Unblinded, distribution: pd.DataFrame,
                         out: dict[str, list[tuple[str, alt.Chart]]]) -> None:
    """The share of each level at each visit, per region, view and scale (by arm and rater)."""
    tp_order = list(u.timepoints)
    several = len(u.set.raters) > 1
    for (region, view, scale_id), dist in distribution.groupby(["region", "view", "scale"], sort=False):
        scale = u.set.scales[scale_id]
        is_pair = u.set.presentation == "pairs"
        key = f"{region}|{view}"
        section = out.setdefault(key, [])
        labels = ([IMPROVEMENT_LABELS[v] for v in IMPROVEMENT_LEVELS] if is_pair else
                  [f"{lv.value} {lv.label}" for lv in scale.levels])
        d = dist.assign(level_label=[f"{v} {lab}" if not is_pair else lab
                                     for v, lab in zip(dist["level"], dist["label"])])
        base = alt.Chart(d).mark_bar().encode(
            x=alt.X("share:Q", stack="normalize", axis=alt.Axis(format="%", title="share of photos")),
            y=alt.Y("timepoint:N", sort=tp_order, title=None),
            color=alt.Color("level_label:N", sort=labels, title="level",
                            scale=alt.Scale(domain=labels, scheme="redyellowgreen" if is_pair
                                            else ("greens" if scale.better == "higher" else "oranges")),
                            legend=alt.Legend(orient="bottom", direction="horizontal",
                                              columns=min(len(labels), 5))),
            order=alt.Order("level:Q"),
        ).properties(width=340 if several else 600, height=24 * max(1, d["timepoint"].nunique()))
        facet_row = alt.Row("arm:N", sort=u.arms, title=None, header=alt.Header(labelAngle=0,
                                                                               labelAlign="left"))
        chart = base.facet(row=facet_row, column=alt.Column("rater:N", title="rater")) if several \
            else base.facet(row=facet_row)
        what = "improvement scores" if is_pair else "levels"
        section.append((f"Distribution of {what} at each visit ({_title(region, view, scale.name)})",
                        chart))


def _change_charts(u: Unblinded, out: dict[str, list[tuple[str, alt.Chart]]]) -> None:
    """Each participant's change: baseline level → follow-up level, line width = participants."""
    tp_order = list(u.timepoints)
    several = len(u.set.raters) > 1
    data = u.long[~u.long["repeat"] & ~u.long["cannot_assess"] & (u.long["kind"] == "single")]
    if len(data):
        wide = data.pivot_table(index=["rater", "arm", "region", "view", "scale", "participant"],
                                columns="timepoint", values="score", aggfunc="first").astype(float)
        for (region, view, scale_id), grp in wide.groupby(level=["region", "view", "scale"],
                                                          sort=False):
            scale = u.set.scales[scale_id]
            if u.baseline not in grp.columns:
                continue
            frames = []
            for tp in u.followups:
                if tp not in grp.columns:
                    continue
                both = grp[[u.baseline, tp]].dropna()
                if both.empty:
                    continue
                moves = (both.reset_index().groupby(["rater", "arm", u.baseline, tp]).size()
                         .rename("n").reset_index())
                moves["followup"] = tp
                moves = moves.rename(columns={u.baseline: "before", tp: "after"})
                frames.append(moves)
            if not frames:
                continue
            moves = pd.concat(frames, ignore_index=True)
            better = moves["before"] - moves["after"] if scale.better == "lower" else \
                moves["after"] - moves["before"]
            moves["change"] = np.select([better > 0, better < 0], ["improved", "worsened"], "unchanged")
            moves["path"] = np.arange(len(moves))
            lines = pd.concat([
                moves.assign(visit="1 " + u.baseline, level=moves["before"]),
                moves.assign(visit="2 follow-up", level=moves["after"]),
            ], ignore_index=True)
            lines["visit"] = np.where(lines["visit"].str.startswith("1"), u.baseline,
                                      lines["followup"])
            for rater in [r for r in u.set.raters if r in set(lines["rater"])]:
                mine = lines[lines["rater"] == rater]
                chart = alt.Chart(mine).mark_line(opacity=0.7).encode(
                    x=alt.X("visit:N", sort=tp_order, title=None, axis=alt.Axis(labelAngle=0)),
                    y=alt.Y("level:Q", scale=alt.Scale(domain=[scale.low, scale.high],
                                                       reverse=scale.better == "lower"),
                            axis=alt.Axis(values=list(scale.values) or alt.Undefined,
                                          tickMinStep=scale.step),
                            title=f"{scale.id} (better ↑)"),
                    detail="path:N",
                    strokeWidth=alt.StrokeWidth("n:Q", scale=alt.Scale(range=[1, 14]),
                                                title="participants",
                                                legend=alt.Legend(values=_whole_steps(mine["n"]),
                                                                  format="d")),
                    color=alt.Color("change:N", scale=alt.Scale(
                        domain=["improved", "unchanged", "worsened"],
                        range=["#2e9e5b", "#8a94a3", "#c0392b"]), title="change"),
                ).properties(width=180, height=200).facet(
                    column=alt.Column("followup:N", sort=list(u.followups), title=None),
                    row=alt.Row("arm:N", sort=u.arms, title=None))
                who = f", rater {rater}" if several else ""
                out.setdefault(f"{region}|{view}", []).append((
                    f"Each participant's change from {u.baseline} "
                    f"({_title(region, view, scale.name)}{who}; one line per pair of levels, its "
                    "width the number of participants)", chart))


def _repeat_charts(u: Unblinded, out: dict[str, list[tuple[str, alt.Chart]]]) -> None:
    """Repeat agreement: first showing × disguised repeat, per kind of item and scale."""
    reps = repeat_pairs(u)
    if len(reps):
        for (kind, scale_id), grp in reps.groupby(["kind", "scale"], sort=True):
            scale = u.set.scales[scale_id]
            if kind != "pair" and scale.continuous:
                out.setdefault("reliability", []).append(_repeat_scatter(grp, scale))
                continue
            values = list(IMPROVEMENT_LEVELS) if kind == "pair" else list(scale.values)
            counts = grp.groupby(["rater", "first", "repeat"]).size().rename("n").reset_index()
            heat = alt.Chart(counts).mark_rect().encode(
                x=alt.X("first:O", scale=alt.Scale(domain=values), title="first showing"),
                y=alt.Y("repeat:O", scale=alt.Scale(domain=values[::-1]), title="disguised repeat"),
                color=alt.Color("n:Q", scale=alt.Scale(scheme="blues"), title="photos",
                                legend=alt.Legend(values=_whole_steps(counts["n"]),
                                                  format="d")),
            ).properties(width=36 * len(values), height=36 * len(values))
            text = alt.Chart(counts).mark_text(fontSize=12).encode(
                x=alt.X("first:O", scale=alt.Scale(domain=values)),
                y=alt.Y("repeat:O", scale=alt.Scale(domain=values[::-1])), text="n:Q")
            chart = (heat + text).facet(column=alt.Column("rater:N", title="rater"))
            what = "improvement scores of repeated pairs" if kind == "pair" else scale.name
            out.setdefault("reliability", []).append((
                f"Repeat agreement ({what}): counts of first showing × disguised repeat; the "
                "diagonal is exact agreement", chart))


def _repeat_scatter(grp: pd.DataFrame, scale) -> tuple[str, alt.Chart]:
    """A VAS's repeat agreement: first showing against disguised repeat, one point a photo."""
    domain = [scale.minimum, scale.maximum]
    ends = pd.DataFrame({"first": domain, "repeat": domain})
    points = alt.Chart(grp).mark_circle(size=60, opacity=0.7).encode(
        x=alt.X("first:Q", scale=alt.Scale(domain=domain), title="first showing"),
        y=alt.Y("repeat:Q", scale=alt.Scale(domain=domain), title="disguised repeat"),
        color=alt.Color("rater:N", title="rater"))
    line = alt.Chart(ends).mark_line(color="#8a94a3", strokeDash=[4, 4]).encode(
        x="first:Q", y="repeat:Q")
    chart = (line + points).properties(width=260, height=260)
    return (f"Repeat agreement ({scale.name}): first showing against disguised repeat, one point "
            "a photo (colour: rater); on the dashed line they agree exactly", chart)


def _table(df: pd.DataFrame, columns: list[tuple[str, str, str]], why=None) -> str:
    """columns: (field, header, kind) with kind in t (text), h (HTML made here), n0, n2, n3, p,
    pct. ``why(row, field)`` says why a cell is blank; the cell shows it instead."""
    head = "".join(f"<th>{esc(h)}</th>" for _, h, _ in columns)
    body = []
    for _, row in df.iterrows():
        cells = []
        for field, _, kind in columns:
            v = row.get(field)
            if kind == "t":
                text = esc(v)
            elif kind == "h":
                text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            elif kind == "p":
                text = fmt_p(v)
            elif kind == "pct":
                text = fmt_num(float(v) * 100, 1) + "%" if fmt_num(v) else ""
            else:
                text = fmt_num(v, int(kind[1]))
            reason = why(row, field) if why is not None and text == "" else ""
            if reason:
                cells.append(f'<td class="why">{esc(reason)}</td>')
            else:
                cells.append(f'<td class="t">{text}</td>' if kind in ("t", "h") else
                             f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
            "</tbody></table></div>")


def _range(lo, hi, digits=2, pct=False) -> str:
    if fmt_num(lo) == "" or fmt_num(hi) == "":
        return ""
    if pct:
        return f"{fmt_num(lo * 100, 1)}–{fmt_num(hi * 100, 1)}%"
    return f"{fmt_num(lo, digits)} to {fmt_num(hi, digits)}"


def _within_rows(rows: pd.DataFrame) -> pd.DataFrame:
    r = rows.copy()
    r["base"] = [f"{fmt_num(m, 1)} ({fmt_num(a, 1)}–{fmt_num(b, 1)})" if fmt_num(m) else ""
                 for m, a, b in zip(r["baseline_median"], r["baseline_q1"], r["baseline_q3"])]
    r["fu"] = [f"{fmt_num(m, 1)} ({fmt_num(a, 1)}–{fmt_num(b, 1)})" if fmt_num(m) else ""
               for m, a, b in zip(r["followup_median"], r["followup_q1"], r["followup_q3"])]
    r["base_mean"] = [f"{fmt_num(m)} ({fmt_num(s)})" if fmt_num(m) else ""
                      for m, s in zip(r["baseline_mean"], r["baseline_sd"])]
    r["fu_mean"] = [f"{fmt_num(m)} ({fmt_num(s)})" if fmt_num(m) else ""
                    for m, s in zip(r["followup_mean"], r["followup_sd"])]
    r["change"] = [(f"{fmt_num(m)} ({_range(lo, hi)})" if _range(lo, hi) else
                    f"{fmt_num(m)} (no CI: n < 2)") if fmt_num(m) else ""
                   for m, lo, hi in zip(r["mean_change"], r["change_ci_low"], r["change_ci_high"])]
    r["resp"] = [f"{int(k)}/{int(n)} = {fmt_num(rate * 100, 1)}% ({_range(lo, hi, pct=True)})"
                 if n and fmt_num(rate) else ""
                 for k, n, rate, lo, hi in zip(r["responders"].fillna(0), r["n_pairs"].fillna(0),
                                               r["responder_rate"], r["responder_ci_low"],
                                               r["responder_ci_high"])]
    r["dir"] = [f"{int(a)} / {int(b)} / {int(c)}" if not pd.isna(a) else ""
                for a, b, c in zip(r["n_improved"], r["n_unchanged"], r["n_worsened"])]
    return r


def _why_within(row, field: str) -> str:
    """Why a cell of the within-arm table is blank."""
    note = str(row.get("p_exact_note") or "")
    if not row.get("n_pairs"):
        return "no pairs"
    if field == "p_exact":
        return note.removeprefix("not computed: ").replace(" and ", ", ") or "not computed"
    if row.get("scale_kind") == "categorical" and field in (
            "base", "fu", "base_mean", "fu_mean", "change", "z", "effect_r", "rank_biserial"):
        return "categorical scale"
    if row.get("analysis") == "within arm (pairs)" and field in ("base", "base_mean"):
        return "pairs: one score"
    if field in ("z", "p", "effect_r", "rank_biserial") and note.startswith("not computed"):
        return note.removeprefix("not computed: ")
    return "not computed"


WITHIN_COLUMNS = [
    ("arm", "arm", "t"), ("timepoint", "follow-up", "t"), ("rater", "rater", "t"),
    ("n_pairs", "n pairs", "n0"), ("n_excluded", "excluded (missing visit)", "n0"),
    ("base", "baseline median (IQR)", "t"), ("fu", "follow-up median (IQR)", "t"),
    ("base_mean", "baseline mean (SD)", "t"), ("fu_mean", "follow-up mean (SD)", "t"),
    ("change", "mean change (95% CI)", "t"), ("dir", "improved / same / worse", "t"),
    ("test", "test", "t"), ("z", "Z", "n3"), ("p", "p", "p"), ("p_exact", "exact p", "p"),
    ("effect_r", "r", "n2"), ("effect_r_n", "N of r", "t"), ("rank_biserial", "rank-biserial", "n2"),
    ("resp", "responders (Wilson 95% CI)", "t"),
]

BETWEEN_COLUMNS = [
    ("where", "region", "t"), ("scale", "scale", "t"), ("arm", "arms", "t"), ("timepoint", "follow-up", "t"), ("rater", "rater", "t"),
    ("test", "test", "t"), ("statistic", "U", "n1"), ("z", "Z", "n3"), ("p", "p", "p"),
    ("p_exact", "exact p", "p"), ("effect_r", "r", "n2"), ("effect_r_n", "N of r", "t"),
    ("note", "note", "t"),
]

RELIABILITY_HTML = [
    ("analysis", "analysis", "t"), ("scale", "scale", "t"), ("raters", "rater(s)", "t"),
    ("n", "n", "n0"), ("kappa_plain", "κ unweighted (95% CI)", "h"),
    ("kappa_lin", "κ linear weights (95% CI)", "h"),
    ("kappa_quad", "κ quadratic weights (95% CI)", "h"),
    ("exact_agreement", "exact agreement", "pct"), ("within_one_agreement", "within ±1", "pct"),
    ("icc_text", "ICC(2,1) (95% CI)", "h"), ("alpha", "Krippendorff's α", "n3"),
]


def _with_ci(value, lo, hi) -> str:
    """``0.345`` with its interval under it, or empty."""
    if fmt_num(value) == "":
        return ""
    ci = _range(lo, hi, 3)
    return fmt_num(value, 3) + (f"<br><span class='ci'>{ci}</span>" if ci else "")


def _why_reliability(row, field: str) -> str:
    """Why a cell of the reliability table is blank."""
    analysis = str(row.get("analysis") or "")
    kind = row.get("scale_kind")
    if field.startswith("kappa") or field.endswith("agreement"):
        if analysis.startswith("inter-rater") and "rater pair" not in analysis:
            return "per rater pair, below"
        if kind == "categorical" and field in ("kappa_lin", "kappa_quad"):
            return "categorical: unweighted only"
        return "undefined: no variation" if row.get("n") else "no photos"
    if field in ("icc_text", "alpha"):
        if analysis.startswith("intra-rater"):
            return "repeats: κ only"
        if "rater pair" in analysis:
            return "on the inter-rater row"
        if field == "icc_text" and kind == "categorical":
            return "categorical: α only"
        return "undefined: no variation" if row.get("n") else "no photo rated by all"
    return ""


BLINDING_HTML = [
    ("raters", "rater(s)", "t"), ("n", "pairs", "n0"), ("identified", "baseline named first", "n0"),
    ("wrong", "follow-up named first", "n0"), ("cannot_tell", "cannot tell", "n0"),
    ("share_identified", "share identified", "pct"), ("share_ci", "Wilson 95% CI", "t"),
    ("binomial_p", "p (vs 50%)", "p"),
]


def _why_between(row, field: str) -> str:
    if str(row.get("test") or "").startswith("Fisher") and field in ("statistic", "z", "effect_r",
                                                                     "effect_r_n"):
        return "Fisher: no U or Z"
    if field == "p_exact":
        return str(row.get("p_exact_note") or "not computed").removeprefix("not computed: ")
    return "not computed"


def _between_section(between: pd.DataFrame, arms: list[str]) -> str:
    """The one between-arms table: the tests made, then one line on the comparisons not made."""
    out = ["<h2>Between arms</h2>"]
    b = between.assign(where=[r + (f"/{v}" if v else "") for r, v in
                              zip(between["region"], between["view"].fillna(""))])
    tested = b[b["test"].notna() & (b["test"] != "")]
    if len(tested):
        out.append(_table(tested, BETWEEN_COLUMNS, why=_why_between))
    untested = b[~b.index.isin(tested.index)]
    if len(untested):
        reasons: dict[str, list[str]] = {}
        for where, note in zip(untested["where"], untested["note"]):
            reasons.setdefault(str(note).split(" on ")[0].removeprefix("not tested: "),
                               []).append(where)
        out.append("<p class='note'>Not tested: " + "; ".join(
            f"{esc(', '.join(dict.fromkeys(w)))} ({esc(r)})" for r, w in reasons.items()) + ".</p>")
    if not len(b):
        out.append(f"<p class='note'>No region was rated in more than one of the arms "
                   f"{esc(', '.join(arms))}.</p>")
    return "\n".join(out)


def figures(sections: dict[str, list[tuple[str, alt.Chart]]],
            renderer: ChartRenderer | None = None) -> dict[str, list[tuple[str, str]]]:
    """The charts of :func:`charts` drawn as SVG: ``{section: [(caption, svg), …]}``.

    With a ``renderer`` whose specs were submitted already, its results are used.
    """
    flat = [(section, caption, chart) for section, items in sections.items()
            for caption, chart in items]
    if renderer is None:
        svgs = [_svg(chart.to_dict(validate=False)) for _, _, chart in flat]
    else:
        svgs = renderer.result()
    out: dict[str, list[tuple[str, str]]] = {}
    for (section, caption, _), svg in zip(flat, svgs):
        out.setdefault(section, []).append((caption, svg))
    return out


def chart_specs(sections: dict[str, list[tuple[str, alt.Chart]]]) -> list[dict]:
    """The Vega-Lite spec of every chart of :func:`charts`, in :func:`figures` order."""
    return [chart.to_dict(validate=False) for items in sections.values() for _, chart in items]


def render_report(u: Unblinded, summary: pd.DataFrame, reliability: pd.DataFrame,
                  distribution: pd.DataFrame, *, created: str | None = None,
                  drawn: dict[str, list[tuple[str, str]]] | None = None,
                  panel_html: list[str] | None = None) -> str:
    """The whole report as one HTML string (``drawn``: the charts from :func:`figures`;
    ``panel_html``: the panel section of :mod:`.report_panel`)."""
    created = created or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = u.set.meta
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(meta.get('study_id'))}: blinded assessment results</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{esc(meta.get('title') or meta.get('study_id'))}</h1>",
        f"<p>Blinded photo assessment, study <b>{esc(meta.get('study_id'))}</b>, set "
        f"<b>{esc(meta.get('set_id'))}</b> (made {esc(meta.get('created'))}). Scored {esc(created)} "
        f"with assess {esc(__version__)}.</p>",
    ]
    parts += _integrity_section(u)
    parts += _findings_section(u)
    parts.append(_methods(u))
    chart_sections = drawn if drawn is not None else figures(charts(u, distribution))
    parts += _results_section(u, summary, chart_sections)
    if len(u.arms) >= 2:
        parts.append(_between_section(summary[summary["analysis"] == "between arms"], u.arms))
    parts.append("<h2>Reliability</h2>")
    parts.extend(_reliability_section(u, reliability))
    for caption, svg in chart_sections.get("reliability", []):
        parts.append(f"<figure class='chart'>{svg}<figcaption class='note'>{esc(caption)}"
                     "</figcaption></figure>")
    parts.extend(panel_html or [])
    parts += _blinding_section(reliability)
    parts.append("<h2>Files</h2><p><code>ratings_long.csv</code> (one row per rating), "
                 "<code>summary.csv</code>, <code>reliability.csv</code>, "
                 "<code>distribution.csv</code>; the same tables, a wide sheet and a data "
                 "dictionary in <code>ratings.xlsx</code>; <code>ratings.sav</code> (SPSS, one row "
                 "per participant, with change scores) and <code>ratings_long.sav</code> (one row "
                 "per rating) with <code>analysis.sps</code>; <code>ratings.dta</code> (Stata); "
                 "<code>analysis.R</code>; <code>qs.xpt</code> (SDTM-style QS, SAS transport v5) "
                 "with <code>define.xml</code>. docs/analysis.md says what each holds.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _integrity_section(u: Unblinded) -> list[str]:
    """The key, the seal, the counts, the chains and the input files."""
    parts: list[str] = []
    c = u.counts
    parts.append("<h2>Integrity</h2>")
    parts.append(f'<div class="ok">The key matches the seal in the rater folder (sha256 '
                 f'<code>{esc(u.key_sha256)}</code>); every rated code is in the key and in its '
                 f"rater's worklist.</div>")
    sealed = u.sealed
    if sealed is not None and sealed.status == "signed":
        parts.append(f'<div class="ok">Seal: {esc(sealed.describe())}. Coordinator key '
                     f"fingerprint <b><code>{esc(sealed.fingerprint)}</code></b>: compare it with "
                     "the one filed in the trial master file at randomization.</div>")
        parts += [f'<div class="warn">{esc(w)}</div>' for w in sealed.warnings]
    elif sealed is not None:
        parts.append(f'<div class="warn">Seal: {esc(sealed.describe())}.'
                     + "".join(f"<br>{esc(w)}" for w in sealed.warnings) + "</div>")
    parts.append("<table class='meta'><tbody>" + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in [
            ("participants", c.get("participants")), ("arms", ", ".join(u.arms)),
            ("timepoints", f"{' → '.join(u.timepoints)} (baseline first; order from "
                           f"{c.get('timepoint_order_from')})"),
            ("photos (first showings)", c.get("photos")), ("disguised repeats", c.get("repeats")),
            ("raters", ", ".join(u.set.raters)), ("items in the worklists", c.get("items")),
            ("ratings", c.get("ratings")), ("presentation", u.set.presentation),
            ("worklists locked", ", ".join(f"{r} {t}" for r, t in c.get("locks", {}).items())
             or "no lock information (ratings file) or none locked"),
        ]) + "</tbody></table>")
    parts.append(_chains(c.get("chains") or {}))
    parts.append("<details><summary>Input files (sha256)</summary><table class='meta'><tbody>" +
                 "".join(f"<tr><td>{esc(k)}</td><td><code>{esc(v)}</code></td></tr>"
                         for k, v in u.sources.items()) + "</tbody></table></details>")
    return parts


def _findings_section(u: Unblinded) -> list[str]:
    """Warnings and exclusions: every finding, its items listed."""
    parts: list[str] = []
    parts.append("<h2>Warnings and exclusions</h2>")
    if not u.findings:
        parts.append('<div class="ok">None: every item was rated, every worklist locked, no photo '
                     "excluded.</div>")
    for f in u.findings:
        listing = ""
        if f.items:
            items = "".join(f"<li>{esc(i)}</li>" for i in f.items[:2000])
            more = (f"<li>… {len(f.items) - 2000} more (see ratings_long.csv)</li>"
                    if len(f.items) > 2000 else "")
            listing = f"<details><summary>list ({len(f.items)})</summary><ul>{items}{more}</ul></details>"
        parts.append(f'<div class="warn">{esc(f.message)}{listing}</div>')
    return parts


def _results_section(u: Unblinded, summary: pd.DataFrame,
                     chart_sections: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Per region and view: the within-arm table, the counts per level and the charts."""
    parts: list[str] = []
    parts.append("<h2>Results by region</h2>")
    within = summary[summary["analysis"].str.startswith("within")]
    for (region, view), grp in within.groupby(["region", "view"], sort=False):
        scale = u.set.scales[grp["scale"].iloc[0]]
        parts.append(f"<h3>{esc(_title(region, view, scale.name))}</h3>")
        parts.append(f"<p class='note'>{esc(scale.name)}: levels "
                     f"{esc('; '.join(f'{lv.value} {lv.label}' for lv in scale.levels))}; "
                     f"{'lower' if scale.better == 'lower' else 'higher'} is better"
                     f"{'; categorical' if scale.kind == 'categorical' else ''}.</p>")
        if (grp["analysis"] == "within arm (pairs)").any():
            parts.append("<p class='note'>Side-by-side pairs: the follow-up columns describe the "
                         "improvement scores (+2 much better follow-up … −2 much better baseline); "
                         "the test is against 0.</p>")
        parts.append(_table(_within_rows(grp), WITHIN_COLUMNS, why=_why_within))
        counts = grp[["arm", "timepoint", "rater", "baseline_counts", "followup_counts"]]
        parts.append("<details><summary>Counts per level (paired participants)</summary>" +
                     _table(counts, [("arm", "arm", "t"), ("timepoint", "follow-up", "t"),
                                     ("rater", "rater", "t"), ("baseline_counts", "baseline", "t"),
                                     ("followup_counts", "follow-up", "t")]) + "</details>")
        for caption, svg in chart_sections.get(f"{region}|{view}", []):
            parts.append(f"<figure class='chart'>{svg}<figcaption class='note'>"
                         f"{esc(caption)}</figcaption></figure>")
    return parts


def _blinding_section(reliability: pd.DataFrame) -> list[str]:
    """The blinding index of side-by-side pairs (nothing for single photos)."""
    parts: list[str] = []
    blind = reliability[reliability["analysis"] == "blinding index"].copy()
    if len(blind):
        blind["share_ci"] = [_range(a, b, pct=True) for a, b in zip(blind["share_ci_low"],
                                                                    blind["share_ci_high"])]
        parts.append("<h3>Blinding index</h3>" + _table(blind, BLINDING_HTML) +
                     "<p class='note'>Share of answered pairs in which the rater named the baseline "
                     "photo as taken first; 50% is guessing. Exact two-sided binomial test against "
                     "50%; 'cannot tell' answers are counted but not in the share.</p>")
    return parts


def _chains(chains: dict[str, dict]) -> str:
    """The verified chain head of each rater's worklist (short hashes) and its signature."""
    if not chains:
        return ""
    rows = []
    for rater, c in chains.items():
        signed = (f"{str(c['signed_at'])[:16].replace('T', ' ')} UTC by {c['signer']} "
                  f"({c['auth_method']})" if c.get("signed_at") else "not signed")
        rows.append(f"<tr><td>{esc(rater)}</td><td>{esc(c['events'])}</td>"
                    f"<td>{esc(c['unchained'])}</td><td><code>{esc(short(c['head']))}</code></td>"
                    f"<td>{esc(signed)}</td></tr>")
    return ('<div class="ok">Every rater\'s ratings form an unbroken hash chain that ends in the '
            "chain head below; compare each head with the one noted when the rater submitted."
            "</div><table class='meta chains'><thead><tr><th>rater</th><th>events</th>"
            "<th>unchained</th><th>chain head</th><th>signed</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _reliability_section(u: Unblinded, reliability: pd.DataFrame) -> list[str]:
    """The reliability table (kappas with their weights and CIs, ICC, alpha) and its notes."""
    parts: list[str] = []
    rel = reliability[reliability["analysis"] != "blinding index"].copy()
    if len(u.set.raters) < 2:
        parts.append(f"<p class='note'>ICC and Krippendorff's α compare raters: this set has one "
                     f"rater ({esc(', '.join(u.set.raters))}), so they cannot be computed; "
                     "reliability is the rater's agreement with their own disguised repeats "
                     "(κ).</p>")
    if len(rel):
        for name, stem in (("kappa_plain", "kappa"), ("kappa_lin", "kappa_linear"),
                           ("kappa_quad", "kappa_quadratic"), ("icc_text", "icc")):
            rel[name] = [_with_ci(v, a, b) for v, a, b in zip(
                rel[stem], rel[f"{stem}_ci_low"], rel[f"{stem}_ci_high"])]
        parts.append(_table(rel, RELIABILITY_HTML, why=_why_reliability))
        parts.append("<p class='note'>Intra-rater: each disguised repeat against the same rater's "
                     "first showing of the photo. Kappa weights span the scale's declared levels; "
                     "95% CIs are kappa ± 1.96 ASE (Fleiss, Cohen &amp; Everitt 1969). Inter-rater: "
                     "first showings rated by every rater; ICC(2,1) is two-way random, absolute "
                     "agreement, single rater (Shrout &amp; Fleiss 1979) with the McGraw &amp; Wong "
                     "(1996) CI; Krippendorff's alpha uses every photo rated by two or more raters."
                     "</p>")
    else:
        parts.append("<p>No disguised repeats were rated and there is one rater: no reliability "
                     "to report.</p>")
    return parts


def _methods(u: Unblinded) -> str:
    several = len(u.set.raters) > 1
    return f"""<h2>Methods</h2><ul>
<li>Primary analysis: the first showing of each photo; disguised repeats are used for intra-rater
reliability only. Ratings "cannot assess" are excluded. A participant enters the paired test of a
follow-up when both {esc(u.baseline)} and that follow-up were rated; the others are counted as
excluded.{' Each rater is analysed separately.' if several else ''}</li>
<li>Ordinal scales: median (IQR; quartiles at (n + 1)p as in SPSS), mean (SD), mean change
(follow-up − baseline, scale units) with t-based 95% CI. Wilcoxon signed-rank test as SPSS reports
it: zero differences dropped, normal approximation with tie correction and without continuity
correction (Z, two-sided p); the exact p is given when there are no ties or zero differences and
n ≤ 50, otherwise the column says why not.</li>
<li>Effect sizes: r = |Z| / √N with <b>N = the number of non-zero pairs</b> (those entering the
test), and the matched-pairs rank-biserial correlation (T+ − T−)/(T+ + T−); both are positive
when participants improved, whichever direction the scale runs.</li>
<li>Responders: at least one level better in the scale's own direction; Wilson 95% CI.</li>
<li>Categorical scales (Glogau types): ordered categories without defined distances, so no means,
SDs or signed-rank test: counts per category, improved/unchanged/worsened with the exact sign test,
responders. Between arms: Fisher's exact test on responders.</li>
<li>Between arms, only where both arms were rated on the same scale on the same region: Mann–Whitney
U test on the change, tie-corrected Z without continuity correction, r = Z/√(n₁ + n₂) (Z &gt; 0: the
first-named arm improved more). Otherwise the table says why no test was made.</li>
<li>Side-by-side pairs: the answer is an improvement score, +2 much better follow-up … −2 much
better baseline (the key tells which side was the follow-up); one-sample Wilcoxon signed-rank test
against 0. Blinding index: share of pairs whose baseline photo was named as taken first, exact
binomial test against 50%.</li>
<li>No adjustment for multiplicity.</li></ul>"""
