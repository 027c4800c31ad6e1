"""Visible differences between visits as a blinding threat: the table, its photos, its file.

Every display copy of a set is measured (:func:`assess.pixels.visible.measure`, decoded by
:func:`assess.deid.read_pixels`) and each property is compared between the timepoints of each
region as an AUC (``U / (n1·n2)`` folded to 0.5..1, as for every property of the leak audit). A
property with AUC above :data:`VISIBLE_LIMIT` whose medians at the two visits differ by at least a
just-noticeable difference (:data:`assess.pixels.visible.JND`) is a *threat*: a rater who noticed
it could guess the visit better than chance. (The AUC alone cannot judge: once a difference is
corrected, what is left of it can be a hundredth of what an eye sees and still order the photos.) Threats are reported — in ``assess audit-set --key`` (kind ``visible``),
in ``key/visible.csv`` and in ``assess randomize``'s output — but never refuse a set: what the rater
must see (the skin) and what gives the visit away (the light on it) share the same pixels, and only
the coordinator can judge whether a difference is the camera's or the treatment's. ``[pixels]
normalize = true`` removes the white balance and exposure part (docs/pixels.md).

For each threat the photos that contribute most are named: each photo's own AUC against all
photos of the other group, the farther from 0.5 in the direction of the difference the more it
contributes; among photos beyond the whole other group, the one farthest from that group's median
first (the photos to look at first on the contact sheet).
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .auc import small_sample
from .findings import AuditReport, PropertyAUC
from .identifiers import _Key

__all__ = ["VISIBLE_LIMIT", "TOP_PHOTOS", "Threat", "measure_set", "threats", "write_table",
           "summary", "TABLE_FILE", "TABLE_COLUMNS"]

VISIBLE_LIMIT = 0.6
"""AUC above which a visible property is reported as a threat, if the typical photos of the two
visits also differ by a noticeable amount (:data:`assess.pixels.visible.JND`); the target of
``[pixels] normalize`` is every property at or below it."""
TOP_PHOTOS = 3
"""How many contributing photos each row names."""
TABLE_FILE = "visible.csv"
"""The coordinator's threat table, in the key folder (sealed with it)."""
TABLE_COLUMNS = ("region", "property", "comparison", "auc", "n1", "n2", "median_1", "median_2",
                 "higher_in", "threat", "top_photos")


@dataclass(frozen=True)
class Threat:
    """How well one visible property separates two groups of photos of one region."""

    region: str
    property: str
    comparison: str  # e.g. "baseline vs month12"
    auc: float
    n1: int
    n2: int
    higher_in: str  # the group whose photos have the higher values
    top: tuple[str, ...]  # codes of the photos contributing most
    median_1: float = float("nan")  # the property's median in the first group
    median_2: float = float("nan")  # and in the second

    @property
    def noticeable(self) -> bool:
        """Whether the groups' medians differ by at least the property's JND."""
        from ..pixels.visible import noticeable

        return noticeable(self.property, self.median_1, self.median_2)

    @property
    def threat(self) -> bool:
        """AUC above :data:`VISIBLE_LIMIT` and a noticeable difference."""
        return self.auc > VISIBLE_LIMIT and self.noticeable


def _look_of(path: Path):
    from ..deid import read_pixels
    from ..pixels.visible import measure

    try:
        return measure(read_pixels(path))
    except Exception:  # an unreadable copy is the leak audit's finding, not a number here
        return None


def measure_set(rater_dir: Path, codes: Sequence[str], workers: int | None = None) -> dict:
    """code -> :class:`assess.pixels.visible.Look` of its display copy (codes without a readable
    display copy are left out). Threads decode and measure (both release the GIL mostly)."""
    paths = {c: Path(rater_dir) / "images" / "display" / f"{c}.jpg" for c in codes}
    paths = {c: p for c, p in paths.items() if p.is_file()}
    n = workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    with ThreadPoolExecutor(max_workers=n) as pool:
        looks = dict(zip(paths, pool.map(_look_of, paths.values())))
    return {c: look for c, look in looks.items() if look is not None}


def _own_auc(values: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Each value's share of ``others`` it lies above (ties count half)."""
    above = (values[:, None] > others[None, :]).mean(axis=1)
    ties = (values[:, None] == others[None, :]).mean(axis=1)
    return above + ties / 2


def _row(region: str, name: str, label: str, names: tuple[str, str], a: dict[str, float],
         b: dict[str, float]) -> Threat:
    va, vb = np.array(list(a.values())), np.array(list(b.values()))
    raw = float(_own_auc(va, vb).mean())  # U / (n1·n2), unfolded: above 0.5 when a is higher
    auc = max(raw, 1.0 - raw)
    sign = 1.0 if raw >= 0.5 else -1.0
    ma, mb = float(np.median(va)), float(np.median(vb))
    # how far each photo lies on its group's side: its own AUC against the other group, then
    # (among photos beyond every photo of the other group) its distance from that group's median
    pull = {**{c: (sign * (x - 0.5), sign * (v - mb)) for c, x, v in zip(a, _own_auc(va, vb), va)},
            **{c: (sign * (0.5 - x), sign * (ma - v)) for c, x, v in zip(b, _own_auc(vb, va), vb)}}
    top = tuple(c for c, p in sorted(pull.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
                [:TOP_PHOTOS] if p[0] > 0)
    return Threat(region, name, label, round(float(auc), 4), len(a), len(b),
                  names[0] if sign > 0 else names[1], top, ma, mb)


def threats(rows: Sequence[Mapping[str, str]], looks: Mapping[str, object]) -> list[Threat]:
    """The table: every visible property of every region, baseline against follow-up.

    ``rows``: the key's rows (``code``, ``timepoint``, ``region``); with two timepoints the first is
    compared with the second, with more each with the others together. A disguised repeat (a row
    with ``repeat_of``) shows a photo counted already and is left out. ``looks``: by code.
    """
    from ..pixels.visible import PROPERTIES

    rows = [r for r in rows if not r.get("repeat_of")]
    timepoints: list[str] = []
    for r in rows:
        if r["timepoint"] not in timepoints:
            timepoints.append(r["timepoint"])
    comparisons = ([(timepoints[0], timepoints[1])] if len(timepoints) == 2
                   else [(t, None) for t in timepoints])
    values = {c: look.values() for c, look in looks.items()}
    out: list[Threat] = []
    for region in sorted({r["region"] for r in rows}):
        mine = [r for r in rows if r["region"] == region and r["code"] in values]
        for tp, other in comparisons:
            label = f"{tp} vs {other}" if other else f"{tp} vs other timepoints"
            names = (tp, other or "other timepoints")
            a = [r["code"] for r in mine if r["timepoint"] == tp]
            b = [r["code"] for r in mine if (r["timepoint"] == other if other else r["timepoint"] != tp)]
            if not a or not b:
                continue
            for name in PROPERTIES:
                out.append(_row(region, name, label, names, {c: values[c][name] for c in a},
                                {c: values[c][name] for c in b}))
    return out


def write_table(path: Path, table: Sequence[Threat]) -> None:
    """Write the threat table as CSV (:data:`TABLE_COLUMNS`; ``top_photos`` space-separated)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(TABLE_COLUMNS)
        for t in table:
            writer.writerow([t.region, t.property, t.comparison, f"{t.auc:.3f}", t.n1, t.n2,
                             f"{t.median_1:.4g}", f"{t.median_2:.4g}", t.higher_in,
                             "yes" if t.threat else "no", " ".join(t.top)])


def summary(table: Sequence[Threat], where: str = "", limit: int = 12) -> list[str]:
    """A few lines for the terminal: the threats, worst first (at most ``limit``), or that there
    are none; ``where`` names the table's file."""
    if not table:
        return []
    found = sorted((t for t in table if t.threat), key=lambda t: (-t.auc, t.region, t.property))
    if not found:
        return [f"Visible differences between visits: no threat among {len(table)} properties "
                f"compared{where} (a threat: AUC above {VISIBLE_LIMIT:g} and a noticeable "
                "difference)."]
    lines = [f"Visible differences between visits: {len(found)} threat(s) among {len(table)} "
             f"properties compared{where} (AUC above {VISIBLE_LIMIT:g} and a noticeable "
             "difference: a rater could tell the visit by them):"]
    for t in found[:limit]:
        lines.append(f"  {t.region}: {t.property} AUC {t.auc:.2f} (n={t.n1}+{t.n2}; median "
                     f"{t.median_1:.4g} vs {t.median_2:.4g}), higher in {t.higher_in}; most: "
                     f"{', '.join(t.top)}")
    if len(found) > limit:
        lines.append(f"  … and {len(found) - limit} more")
    if all(small_sample(t.n1, t.n2) for t in found):
        lines.append("  (with so few photos a visit chance alone gives AUCs like these)")
    return lines


def _visible_checks(report: AuditReport, key: _Key, looks: dict | None) -> None:
    """The visible differences between visits: ``report.visible`` and their AUC rows."""
    if looks is None:
        looks = measure_set(report.rater_dir, [row["code"] for row in key.rows])
    report.visible = threats(key.rows, looks)
    report.aucs.extend(PropertyAUC(t.property, "visible", t.region, t.comparison, t.auc,
                                   float("nan"), t.n1, t.n2, False) for t in report.visible)
