"""The study order of the visits: from the study file kept with the key, from the row order of
``key.csv``, or from their names (a baseline name first, the rest in natural order)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..study import StudyError

__all__ = ["BASELINE_NAMES", "order_timepoints", "declared_timepoints", "timepoints_from_key",
           "study_order"]


BASELINE_NAMES = ("baseline", "screening", "pre", "pretreatment", "pre-treatment", "before",
                  "day0", "week0", "month0", "visit0", "visit1", "v0", "v1", "t0")


def order_timepoints(names, declared=None) -> tuple[str, ...]:
    """Visit names in study order, baseline first.

    ``declared`` (the study's ``timepoints``, when known) wins. Otherwise the visit named like a
    baseline comes first and the others follow in natural order (month3 before month12).

    >>> order_timepoints(["month12", "baseline", "month3"])
    ('baseline', 'month3', 'month12')
    >>> order_timepoints(["week4", "week12", "week0"])
    ('week0', 'week4', 'week12')
    """
    names = sorted(set(names))
    if declared:
        known = [t for t in declared if t in names]
        return tuple(known + [t for t in names if t not in known])

    def natural(name: str):
        return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]

    base = [n for n in names if n.lower() in BASELINE_NAMES]
    first = sorted(base, key=lambda n: BASELINE_NAMES.index(n.lower()))[:1]
    rest = sorted((n for n in names if n not in first), key=natural)
    return tuple(first + rest)


def declared_timepoints(key_dir: Path) -> tuple[str, ...] | None:
    """The study's timepoint order when the key folder holds the study file."""
    path = key_dir / "study.toml"
    if path.is_file():
        from ..study import load_study

        try:
            return load_study(path).timepoints
        except StudyError:
            return None
    return None


def timepoints_from_key(key: pd.DataFrame) -> tuple[str, ...] | None:
    """The timepoint order that ``key.csv``'s row order shows, or ``None`` when it shows none.

    ``assess randomize`` writes the rows of each participant × region × view in study order of
    the timepoints (docs/formats.md); consecutive rows of a unit give "comes before" relations,
    sorted topologically. A key whose rows are not grouped by unit, or whose relations contradict
    or leave two timepoints unordered, gives ``None``.

    >>> key = pd.DataFrame({"participant": ["P1", "P1", "P2", "P2"], "region": ["face"] * 4,
    ...                     "view": [""] * 4, "pair": [""] * 4, "repeat_of": [""] * 4,
    ...                     "timepoint": ["screen", "week2", "screen", "week2"]})
    >>> timepoints_from_key(key)
    ('screen', 'week2')
    """
    first = key[key["repeat_of"] == ""]
    unit = (first["participant"] + "\x1f" + first["region"] + "\x1f" + first["view"] + "\x1f"
            + first["pair"]).tolist()
    tps = first["timepoint"].tolist()
    names = sorted(set(tps))
    runs = 1 + sum(unit[i] != unit[i - 1] for i in range(1, len(unit)))
    if not unit or runs != len(set(unit)):
        return None  # rows are not grouped by unit: their order says nothing
    after: dict[str, set[str]] = {t: set() for t in names}
    for i in range(1, len(tps)):
        if unit[i] == unit[i - 1] and tps[i] != tps[i - 1]:
            after[tps[i - 1]].add(tps[i])
    before_count = {t: 0 for t in names}
    for t, later in after.items():
        for u in later:
            before_count[u] += 1
    order: list[str] = []
    ready = [t for t in names if before_count[t] == 0]
    while ready:
        if len(ready) > 1:
            return None  # the rows do not decide between two timepoints
        t = ready.pop()
        order.append(t)
        for u in sorted(after[t]):
            before_count[u] -= 1
            if before_count[u] == 0:
                ready.append(u)
    return tuple(order) if len(order) == len(names) else None


def study_order(key: pd.DataFrame, key_dir: Path) -> tuple[tuple[str, ...], str]:
    """``(the key's timepoints in study order, where that order comes from)``: the study file
    kept with the key, else the row order of ``key.csv``, else the names."""
    declared = declared_timepoints(key_dir)
    source = "key/study.toml"
    if declared is None:
        declared = timepoints_from_key(key)
        source = "the row order of key.csv"
    if declared is None:
        source = "their names: a baseline name first, the rest in natural order"
    return order_timepoints(key["timepoint"].unique().tolist(), declared), source
