"""Each rater's drift on the hidden calibration photos: agreement with the reference by block.

The calibration photos were interleaved into the live worklists by ``randomize``
(:mod:`assess.calibration`); the key keeps which code is one, where in whose worklist, and its
reference score (``key/calibration.csv``). :func:`assess.score.unblind.unblind` takes them out of
the trial's data (``Unblinded.calibration``; :func:`without_calibration` and
:func:`calibration_ratings` here), so they never enter the summary, reliability, distribution,
panel or package files. Here they are scored: per rater and block of
``[calibration] block`` worklist positions, the exact and within-one agreement with the reference
(:func:`assess.panel.calibration_drift`), flagged below the study's floors.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import panel as rules_
from ..calibration import KEY_FILE
from .errors import ScoreError, listing
from .folder import SetFolder

if TYPE_CHECKING:
    from .unblind import Unblinded

__all__ = ["COLUMNS", "CALIBRATION_COLUMNS", "without_calibration", "calibration_ratings",
           "calibration_table", "section_html", "format_status"]

COLUMNS = ("rater", "block", "first", "last", "n", "exact", "within_one", "flagged",
           "min_exact", "min_within_one", "not_assessed")

CALIBRATION_COLUMNS = ("rater", "position", "block", "code", "region", "view", "reference",
                       "score", "cannot_assess")


def without_calibration(folder: SetFolder, cal_key: list[dict], key_dir: Path) -> SetFolder:
    """The rater folder without its calibration items, after checking that each one is where
    ``key/calibration.csv`` says (rater, code, position)."""
    wl = folder.worklists
    listed = set(zip(wl["rater"].tolist(), wl["item"].astype(object).tolist(),
                     (wl["position"] + 1).tolist()))
    wrong = [f"{r['rater']}:{r['code']}" for r in cal_key
             if (r["rater"], r["code"], r["position"]) not in listed]
    if wrong:
        raise ScoreError(f"{key_dir / KEY_FILE}: calibration photo(s) {listing(wrong)} "
                         f"are not at that place of the rater's worklist in {folder.path}; give the "
                         "key/ and rater/ folders of one set")
    codes = {r["code"] for r in cal_key}
    keep = ~wl["item"].astype(object).isin(codes).to_numpy()
    return SetFolder(folder.path, folder.meta, folder.scales, folder.regions,
                     wl.loc[keep].reset_index(drop=True))


def calibration_ratings(cal_key: list[dict], rated: pd.DataFrame
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(the calibration rows with each rater's current answer, the trial's ratings)``."""
    codes = {r["code"] for r in cal_key}
    is_cal = rated["item"].astype(object).isin(codes).to_numpy()
    answers = {(r.rater, r.item): r for r in rated.loc[is_cal].itertuples(index=False)}
    rows = []
    for r in cal_key:
        a = answers.get((r["rater"], r["code"]))
        score = np.nan if a is None or pd.isna(a.score) else float(a.score)
        reason = None if a is None or pd.isna(a.cannot_assess) else str(a.cannot_assess)
        rows.append((r["rater"], r["position"], r["block"], r["code"], r["region"], r["view"],
                     r["score"], score, reason))
    frame = pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))
    return frame, rated.loc[~is_cal].reset_index(drop=True)


def rule_of(u: Unblinded) -> rules_.Calibration:
    """The set's ``[calibration]`` rule (the defaults for a set that kept none)."""
    rule = rules_.rules_from_json(u.set.meta.get("panel")).calibration
    return rule if rule is not None else rules_.Calibration()


def calibration_table(u: Unblinded) -> pd.DataFrame:
    """One row per rater and block that held a calibration photo the rater answered; empty for a
    set without calibration photos. ``not_assessed``: the block's calibration photos answered
    "cannot assess" or not yet rated (left out of the agreement)."""
    cal = u.calibration
    if cal is None or cal.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    rule = rule_of(u)
    rows = []
    for rater in [r for r in u.set.raters if r in set(cal["rater"])]:
        mine = cal[cal["rater"] == rater]
        answered = mine[mine["score"].notna()]
        missing = (mine.assign(b=(mine["position"] - 1) // rule.block + 1)
                   .loc[mine["score"].isna()].groupby("b").size().to_dict())
        blocks = rules_.calibration_drift(
            zip(answered["position"], answered["score"], answered["reference"]), rule)
        for b in blocks:
            rows.append({"rater": rater, "block": b.block, "first": b.first, "last": b.last,
                         "n": b.n, "exact": b.exact, "within_one": b.within_one,
                         "flagged": b.flagged, "min_exact": rule.min_exact,
                         "min_within_one": rule.min_within_one,
                         "not_assessed": int(missing.get(b.block, 0))})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("min_exact", "min_within_one"):
        table[col] = table[col].astype("float64")
    return table


def _pct(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.0%}"


def section_html(u: Unblinded, table: pd.DataFrame | None) -> list[str]:
    """The report's Calibration section, as HTML parts (none for a set without calibration
    photos)."""
    if u.calibration is None or u.calibration.empty:
        return []
    rule = rule_of(u)
    floors = " and ".join(f for f in (
        f"exact agreement {_pct(rule.min_exact)}" if rule.min_exact is not None else "",
        f"within-one agreement {_pct(rule.min_within_one)}"
        if rule.min_within_one is not None else "") if f) or "no floor"
    per_rater = len(u.calibration) // max(1, u.calibration["rater"].nunique())
    out = ["<h2>Calibration</h2>",
           f"<p>{per_rater} hidden calibration photo(s) with reference scores in each rater's live "
           f"worklist, reported per block of {rule.block} worklist positions; a block is flagged "
           f"below {html.escape(floors)}. Calibration photos are not part of the trial's "
           "analysis.</p>"]
    if table is None or table.empty:
        out.append("<p>No calibration photo has been rated yet.</p>")
        return out
    flagged = table[table["flagged"]]
    raters = sorted(set(flagged["rater"]))
    out.append("<p><b>Flagged:</b> " + (html.escape(", ".join(
        f"{r} (block {', '.join(str(b) for b in flagged.loc[flagged['rater'] == r, 'block'])})"
        for r in raters)) if raters else "no rater") + "</p>")
    out.append("<table><tr><th>Rater</th><th>Block</th><th>Positions</th><th>n</th>"
               "<th>Exact</th><th>Within one</th><th>Flag</th></tr>")
    for r in table.itertuples(index=False):
        out.append(f"<tr><td>{html.escape(str(r.rater))}</td><td>{r.block}</td>"
                   f"<td>{r.first}–{r.last}</td><td>{r.n}</td><td>{_pct(r.exact)}</td>"
                   f"<td>{_pct(r.within_one)}</td><td>{'flagged' if r.flagged else ''}</td></tr>")
    out.append("</table>")
    return out


def format_status(rater_dir, key_dir, db) -> str:
    """The coordinator's calibration line of ``assess status --key``: per rater, how many of the
    hidden calibration photos are rated and the blocks flagged; never a score (empty for a set
    without calibration photos)."""
    import json
    from pathlib import Path

    from .. import calibration, store

    rows = calibration.read_key(key_dir)
    if not rows:
        return ""
    meta = json.loads((Path(rater_dir) / "set.json").read_text(encoding="utf-8"))
    rule = rules_.rules_from_json(meta.get("panel")).calibration or rules_.Calibration()
    current = (store.current_ratings(db, str(meta["set_id"]), ["score", "cannot_assess"])
               if db is not None and store.exists(db) else pd.DataFrame(
                   columns=["rater", "item", "score", "cannot_assess"]))
    answer = {(r.rater, r.item): r.score for r in current.itertuples(index=False)
              if pd.isna(r.cannot_assess) and not pd.isna(r.score)}
    raters = list(dict.fromkeys(r["rater"] for r in rows))
    per = len(rows) // max(1, len(raters))
    parts = []
    for rater in raters:
        mine = [r for r in rows if r["rater"] == rater]
        done = [(r["position"], answer[(rater, r["code"])], r["score"]) for r in mine
                if (rater, r["code"]) in answer]
        flagged = [b.block for b in rules_.calibration_drift(done, rule) if b.flagged]
        parts.append(f"{rater} {len(done)}/{len(mine)} rated, "
                     + (f"flagged in block {', '.join(map(str, flagged))}" if flagged
                        else "not flagged"))
    return (f"Calibration ({per} hidden photo(s) per worklist, blocks of {rule.block}): "
            + "; ".join(parts))
