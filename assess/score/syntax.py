"""Analysis scripts for other packages: SPSS syntax (``analysis.sps``) and R (``analysis.R``).

Each script reads the files ``assess score`` wrote beside it and reproduces the primary table of
the report (descriptives, the Wilcoxon signed-rank test per region, arm and follow-up, responders);
the R script also the reliability table (kappa, ICC). They are generated from the same
comparisons as the report, so every block of output answers one row of ``summary.csv``; the
package's numbers are the independent check of the scorer's.
"""

from __future__ import annotations

import pandas as pd

from .export import Wide

__all__ = ["spss_syntax", "r_script", "spss_blocks"]


def _quote(text: str) -> str:
    """A string literal for SPSS syntax or R (single quotes doubled / escaped)."""
    return "'" + str(text).replace("'", "''") + "'"


def spss_blocks(wide: Wide, summary: pd.DataFrame, arms: list[str]) -> list[dict]:
    """One entry per within-arm row of ``summary`` that the wide file can reproduce, in the
    order of ``analysis.sps``: the comparison's variables, the arm and its code."""
    within = summary[summary["analysis"].str.startswith("within")]
    blocks = []
    for comp in wide.comparisons:
        for code, arm in enumerate(arms, start=1):
            rows = within[(within["region"] == comp["region"]) & (within["view"] == comp["view"])
                          & (within["scale"] == comp["scale"]) & (within["rater"] == comp["rater"])
                          & (within["timepoint"] == comp["timepoint"]) & (within["arm"] == arm)]
            if len(rows):
                blocks.append({**comp, "arm": arm, "arm_code": code,
                               "scale_kind": rows["scale_kind"].iloc[0],
                               "summary_row": int(rows.index[0])})
    return blocks


def spss_syntax(wide: Wide, summary: pd.DataFrame, arms: list[str], title: str = "") -> str:
    """``analysis.sps``: SPSS (and GNU PSPP) syntax reproducing the primary table from
    ``ratings.sav``.

    Per region × scale × follow-up × rater × arm, on the participants with a usable rating at
    both visits: DESCRIPTIVES of baseline, follow-up, change and the responder flag (its SUM is
    the number of responders), EXAMINE for the median and quartiles (HAVERAGE, as the report),
    and NPAR TESTS /WILCOXON (categorical scales: /SIGN). Each block starts with an ECHO line
    ``BLOCK <n>: ...`` naming the summary row it reproduces.
    """
    blocks = spss_blocks(wide, summary, arms)
    out = [f"* {title}: reproduces the primary table of report.html from ratings.sav.",
           "* Run from the folder holding ratings.sav:  pspp analysis.sps  (or open in SPSS).",
           "* Missing codes 91-95 (cannot assess, by reason), 98 (not rated) and 99 (not",
           "* photographed) are user-missing in ratings.sav and never enter a statistic.",
           "GET FILE='ratings.sav'.", "COMPUTE zero = 0.", "VARIABLE LABELS zero 'Zero'.",
           "FORMATS zero (F1.0)."]
    for b in blocks:
        b["responder"] = b["improvement"] + "_resp"
    for name in dict.fromkeys(b["responder"] for b in blocks):
        source = next(b["improvement"] for b in blocks if b["responder"] == name)
        out += [f"COMPUTE {name} = ({source} >= 1).",
                f"VARIABLE LABELS {name} 'Responder (at least one level better): {source}'.",
                f"FORMATS {name} (F1.0)."]
    out.append("EXECUTE.")
    for n, b in enumerate(blocks, start=1):
        where = b["region"] + (f"/{b['view']}" if b["view"] else "")
        if b["kind"] == "pair":
            valid = f"NOT MISSING({b['improvement']})"
            variables = [b["improvement"], b["responder"]]
            pair = f"zero WITH {b['improvement']} (PAIRED)"
        else:
            valid = f"NOT SYSMIS({b['change']})"
            variables = [b["baseline"], b["followup"], b["change"], b["responder"]]
            pair = f"{b['baseline']} WITH {b['followup']} (PAIRED)"
        select = ["TEMPORARY.", f"SELECT IF (arm = {b['arm_code']} AND {valid})."]
        test = "SIGN" if b["scale_kind"] == "categorical" else "WILCOXON"
        label = f"BLOCK {n}: {where} {b['scale']} {b['timepoint']} rater {b['rater']} arm {b['arm']}"
        out += ["", f"ECHO {_quote(label)}."]
        out += select + [f"DESCRIPTIVES VARIABLES={' '.join(variables)} "
                         "/STATISTICS=MEAN STDDEV MIN MAX SUM."]
        if b["kind"] != "pair" and b["scale_kind"] != "categorical":
            out += select + [f"EXAMINE VARIABLES={b['baseline']} {b['followup']} "
                             "/PERCENTILES(25,50,75)=HAVERAGE /STATISTICS=NONE /PLOT=NONE."]
        out += select + [f"NPAR TESTS /{test}={pair}."]
    return "\n".join(out) + "\n"
