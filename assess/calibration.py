"""Hidden calibration photos in the live worklists: how many, where, and what the key keeps.

A study with ``[calibration]`` and reference photos of ``use = calibration`` (``[reference]
photos``, :mod:`assess.reference`) gets those photos interleaved into every rater's live
worklist: de-identified like the trial photos, coded from the same pool, in the same item format.
Every rater's worklist holds the same calibration codes (a code found in one worklist only would
give it away), each rater at positions of their own. Pure functions: a count, positions, an
order; :mod:`assess.blind` writes the set, :mod:`assess.score.calibration` scores the drift.

The share ``rate`` is of the whole live worklist: ``rate = 0.1`` puts one calibration photo among
every ten items. Each block of ``block`` positions (the blocks of the drift report) gets its share,
at random places within it, and no two calibration photos are ever neighbours:

>>> import numpy as np
>>> count(90, 0.1)
10
>>> places = positions(90, 10, 20, np.random.default_rng(3))
>>> [sum(1 for p in places if b * 20 <= p < (b + 1) * 20) for b in range(5)]
[2, 2, 2, 2, 2]
>>> all(b - a >= 2 for a, b in zip(places, places[1:]))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

import numpy as np

from .errors import AssessError

__all__ = ["CalibrationError", "KEY_FILE", "KEY_COLUMNS", "count", "shares", "positions",
           "interleave", "place", "Placement", "read_key"]

KEY_FILE = "calibration.csv"
KEY_COLUMNS = ("rater", "position", "block", "code", "region", "view", "score")
"""Columns of ``key/calibration.csv``: one row per calibration photo in a rater's live worklist;
``position`` counts from 1 (the worklist's first item), ``block`` from 1, ``score`` is the
reference score."""

T = TypeVar("T")


class CalibrationError(AssessError):
    """Calibration photos cannot be placed as the study asks; the message says what to change."""


def count(n_trial: int, rate: float) -> int:
    """Calibration photos in a live worklist of ``n_trial`` trial items, so that they are ``rate``
    of the whole worklist (at least one when there is anything to rate).

    >>> count(9, 0.1), count(8, 0.1), count(100, 0.2), count(0, 0.1), count(3, 0.01)
    (1, 1, 25, 0, 1)
    """
    if n_trial <= 0:
        return 0
    return max(1, math.floor(rate * n_trial / (1 - rate) + 0.5))


def shares(total: int, m: int, block: int, rng: np.random.Generator) -> list[int]:
    """How many of ``m`` calibration photos each block of ``block`` positions (of ``total``) gets:
    in proportion to the block's length, the remainders given at random (largest remainder first).

    >>> shares(25, 3, 10, np.random.default_rng(0))
    [1, 1, 1]
    >>> sum(shares(95, 10, 20, np.random.default_rng(0)))
    10
    """
    lengths = [min(block, total - start) for start in range(0, total, block)]
    exact = [m * n / total for n in lengths]
    out = [math.floor(x) for x in exact]
    rest = m - sum(out)
    jitter = rng.random(len(lengths))
    order = sorted(range(len(lengths)), key=lambda b: (-(exact[b] - out[b]), jitter[b]))
    for b in order[:rest]:
        out[b] += 1
    return out


def positions(n_trial: int, m: int, block: int, rng: np.random.Generator) -> list[int]:
    """Places (0-based) of ``m`` calibration photos in a worklist of ``n_trial + m`` items: each
    block gets its :func:`shares`, drawn uniformly among the places of the block that keep every
    calibration photo apart from the others.

    Raises :class:`CalibrationError` when a block cannot hold its share apart (a rate near 0.5
    with a short block).
    """
    total = n_trial + m
    out: list[int] = []
    for b, k in enumerate(shares(total, m, block, rng)):
        start, stop = b * block, min((b + 1) * block, total)
        if out and out[-1] == start - 1:
            start += 1  # the previous block's last place is taken: not its neighbour
        free = stop - start
        if k == 0:
            continue
        if free - k + 1 < k:
            raise CalibrationError(
                f"calibration: {k} calibration photos cannot be kept apart in a block of "
                f"{block} places; lower [calibration] rate or raise [calibration] block")
        # k places apart among `free`: k distinct among free - k + 1, the i-th moved on by i
        picked = sorted(int(x) for x in rng.choice(free - k + 1, size=k, replace=False))
        out += [start + p + i for i, p in enumerate(picked)]
    return out


def interleave(trial: Sequence[T], calibration: Sequence[T], places: Sequence[int]) -> list[T]:
    """The live worklist: ``calibration[j]`` at ``places[j]`` (ascending), the trial items in
    their order around them.

    >>> interleave(["a", "b", "c"], ["X", "Y"], [1, 3])
    ['a', 'X', 'b', 'Y', 'c']
    """
    if len(calibration) != len(places):
        raise ValueError("one place per calibration item")
    out: list[T] = []
    trial_it, cal_it = iter(trial), iter(calibration)
    at = set(places)
    for k in range(len(trial) + len(calibration)):
        out.append(next(cal_it) if k in at else next(trial_it))
    return out


def place(raters: Sequence[str], n_trial: int, m: int, block: int, seed: int
          ) -> dict[str, list[tuple[int, int]]]:
    """Each rater's ``(place, calibration item)`` pairs: places of their own (generator
    ``[seed, 12, rater index]``) and the ``m`` calibration items in an order of their own.

    >>> sorted(place(["derm1"], 8, 2, 5, 1)["derm1"], key=lambda p: p[1])[0][1]
    0
    """
    out = {}
    for r_index, rater in enumerate(raters):
        rng = np.random.default_rng([seed, 12, r_index])
        places = positions(n_trial, m, block, rng)
        which = [int(k) for k in rng.permutation(m)]
        out[rater] = list(zip(places, which))
    return out


@dataclass
class Placement:
    """The calibration items of a set and where they go in each rater's live worklist.

    ``items``: one worklist item per calibration code (shown to every rater); ``rows``: their
    reference key rows (``code``, ``region``, ``view``, ``score`` attributes), in the same order;
    ``places``: :func:`place`; ``block``: ``[calibration] block``.
    """

    items: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    sources: list[int] = field(default_factory=list)
    places: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    block: int = 20

    def worklist(self, rater: str, trial: Sequence[T]) -> list[T]:
        """The rater's live worklist: their trial items with the calibration items among them."""
        mine = sorted(self.places.get(rater, []))
        return interleave(trial, [self.items[k] for _, k in mine], [p for p, _ in mine])

    def key_rows(self) -> list[tuple[Any, ...]]:
        """The rows of ``key/calibration.csv`` (:data:`KEY_COLUMNS`), by rater and position."""
        out = []
        for rater in self.places:
            for p, k in sorted(self.places[rater]):
                r = self.rows[k]
                out.append((rater, str(p + 1), str(p // self.block + 1), r.code, r.region, r.view,
                            r.score))
        return out

    def rater_counts(self, counts: dict[str, int]) -> dict[str, int]:
        """``set.json`` ``counts``: the calibration photos counted as photos and items, so the
        rater folder does not say how many there are."""
        m = len(self.items)
        return {**counts, "photos": counts.get("photos", 0) + m, "items": counts["items"] + m}

    def coordinator_counts(self, counts: dict[str, int]) -> dict[str, int]:
        """What ``randomize`` reports: items per worklist and, apart, the calibration photos."""
        m = len(self.items)
        return {**counts, "items": counts["items"] + m, **({"calibration": m} if m else {})}


def read_key(key_dir: str | Path, error: type[AssessError] = CalibrationError) -> list[dict] | None:
    """The rows of ``key/calibration.csv`` (``position`` and ``block`` as numbers), or ``None``
    when the set has no calibration photos."""
    from .csvfile import read_table

    path = Path(key_dir) / KEY_FILE
    if not path.is_file():
        return None
    table = read_table(path, KEY_COLUMNS, error=error, what="calibration key", written_safe=True)
    rows = []
    for line, row in table.records():
        try:
            rows.append({**row, "position": int(row["position"]), "block": int(row["block"]),
                         "score": float(row["score"])})
        except ValueError:
            raise error(f"{path}: line {line}: position, block and score must be numbers; "
                        "restore the file from the coordinator's backup") from None
    return rows
