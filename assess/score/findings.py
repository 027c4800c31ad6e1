"""What the statistician must see of a joined set (:class:`Finding`): unrated items, ratings
"cannot assess", revised ratings, series that lack a timepoint, a set of one timepoint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import positions
from .folder import SetFolder

__all__ = ["Finding", "missing_timepoints", "join_findings"]


@dataclass(frozen=True)
class Finding:
    """Something the statistician must see: a warning, with the affected items listed."""

    kind: str  # unrated | unlocked | unchained | missing_timepoint | cannot_assess | revised | participants | single_timepoint
    message: str
    items: tuple[str, ...] = ()

    def short(self, limit: int = 10) -> str:
        """The message with the first ``limit`` items."""
        if not self.items:
            return self.message
        shown = ", ".join(self.items[:limit])
        more = f", … ({len(self.items) - limit} more)" if len(self.items) > limit else ""
        return f"{self.message}: {shown}{more}"


def missing_timepoints(joined: pd.DataFrame, key: pd.DataFrame, folder: SetFolder,
                       timepoints: tuple[str, ...]) -> list[str]:
    """Participant × region × view × rater series without a usable rating at some timepoint.

    A series is what a rater's worklist holds of one participant's region (and view); a timepoint
    is missing when its photo was never taken, not rated, or rated "cannot assess".
    """
    if folder.presentation == "pairs":
        return []  # a pair holds both timepoints; unrated pairs are listed as unrated
    wl = folder.worklists
    # Number each series (rater, participant, region, view) so that numeric order is name order.
    unit_codes, unit_names = [], []
    for col in ("participant", "region", "view"):
        codes, uniques = pd.factorize(key[col].to_numpy(), sort=True)
        unit_codes.append(codes)
        unit_names.append(uniques)
    shape = [len(u) for u in unit_names]
    unit = np.ravel_multi_index(unit_codes, shape)
    n_units = int(np.prod(shape))
    raters = pd.Index(sorted(folder.raters))
    tp_codes, tp_names = pd.factorize(key["timepoint"].to_numpy())
    rank = {t: i for i, t in enumerate(timepoints)}
    tp = np.array([rank.get(t, -1) for t in tp_names], dtype="int64")[tp_codes]
    first = key["repeat_of"].to_numpy() == ""

    def series_of(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        k = rows["key_row"].to_numpy()
        keep = ((rows["kind"] == "single").to_numpy() & first[k])
        rater = positions(rows["rater"].to_numpy()[keep], list(raters))
        return rater * n_units + unit[k[keep]], k[keep]

    series = np.unique(series_of(wl)[0])
    used, k = series_of(joined[joined["cannot_assess"].isna().to_numpy()])
    have = np.unique(used * len(timepoints) + tp[k])
    present = np.stack([np.isin(series * len(timepoints) + i, have)
                        for i in range(len(timepoints))], axis=1)
    out = []
    for row in np.flatnonzero(~present.all(axis=1)):
        rater, rest = divmod(int(series[row]), n_units)
        p, g, v = np.unravel_index(rest, shape)
        participant, region, view = unit_names[0][p], unit_names[1][g], unit_names[2][v]
        where = f"{region}/{view}" if view else region
        lacking = "/".join(t for i, t in enumerate(timepoints) if not present[row, i])
        out.append(f"{participant} {where} {raters[rater]}: no usable {lacking} rating")
    return out


def join_findings(folder: SetFolder, joined: pd.DataFrame, long: pd.DataFrame,
                  key: pd.DataFrame, timepoints: tuple[str, ...]
                  ) -> tuple[list[Finding], list[str], pd.DataFrame]:
    """``(the findings of the joined ratings, the unrated rater:item, the "cannot assess" rows
    of the long table)``: unrated items, ratings "cannot assess", revisions, a single timepoint,
    series that lack a timepoint."""
    findings = []
    has_rating = np.zeros(len(folder.worklists), dtype=bool)
    has_rating[joined["wl_row"].to_numpy()] = True
    left_out = folder.worklists[~has_rating].sort_values(["rater", "position"])
    unrated = (left_out["rater"] + ":" + left_out["item"]).tolist()
    if unrated:
        per = left_out["rater"].value_counts().sort_index()
        detail = "; ".join(f"{r} {n}" for r, n in per.items())
        findings.append(Finding("unrated", f"{len(unrated)} item(s) not rated ({detail})",
                                tuple(unrated)))
    ca = long[long["cannot_assess"]]
    if len(ca):
        reasons = ca["reason"].value_counts()
        detail = ", ".join(f"{r} {n}" for r, n in reasons.items())
        findings.append(Finding("cannot_assess", f"{len(ca)} rating(s) 'cannot assess' excluded "
                                f"({detail})", tuple((ca["rater"] + ":" + ca["item"]).tolist())))
    revised = joined[joined["revision"] > 1]
    if len(revised):
        findings.append(Finding("revised", f"{len(revised)} rating(s) were revised by the rater; "
                                "the latest revision is used",
                                tuple((revised["rater"] + ":" + revised["item"]).tolist())))
    missing = missing_timepoints(joined, key, folder, timepoints) if len(timepoints) > 1 else []
    if len(timepoints) == 1:
        findings.append(Finding("single_timepoint", f"every photo is of timepoint "
                                f"{timepoints[0]!r}: there is no change to test; the reliability "
                                "and level-count tables are given (a reliability or training "
                                "study)"))
    if missing:
        findings.append(Finding("missing_timepoint", f"{len(missing)} participant × region × rater "
                                "series lack a timepoint and are left out of the paired tests",
                                tuple(missing)))
    return findings, unrated, ca
