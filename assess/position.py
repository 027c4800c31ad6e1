"""Where a rater is in their worklist: the first and the next unrated item, how many are rated,
and the time left at the rater's own pace.

>>> from types import SimpleNamespace as Item
>>> items = [Item(item="AAA-AAAA"), Item(item="CCC-CCCC"), Item(item="DDD-DDDD")]
>>> first_unrated(items, {"AAA-AAAA"}), next_unrated(items, {"CCC-CCCC"}, 2)
(1, 0)
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from . import store

__all__ = ["first_unrated", "next_unrated", "Progress", "progress", "format_duration"]


def first_unrated(items: Sequence, rated: Iterable[str]) -> int | None:
    """Index of the first item without a rating, or ``None`` when all are rated (``items``:
    worklist entries such as :class:`assess.rate.Item`, each with its code as ``item``)."""
    rated = set(rated)
    for i, it in enumerate(items):
        if it.item not in rated:
            return i
    return None


def next_unrated(items, rated: Iterable[str], index: int) -> int | None:
    """Index of the next unrated item after ``index`` (wrapping to the start), or ``None``."""
    rated = set(rated)
    n = len(items)
    for step in range(1, n + 1):
        i = (index + step) % n
        if items[i].item not in rated:
            return i
    return None


@dataclass(frozen=True)
class Progress:
    """How far a rater is: rated items, total, cannot-assess count, estimated seconds left."""

    rated: int
    total: int
    cannot_assess: int
    seconds_left: float | None

    @property
    def fraction(self) -> float:
        return self.rated / self.total if self.total else 1.0

    @property
    def text(self) -> str:
        """``"12 of 80 rated · about 9 min left"``."""
        out = f"{self.rated} of {self.total} rated"
        if self.rated < self.total and self.seconds_left is not None:
            out += f" · about {format_duration(self.seconds_left, coarse=True)} left"
        return out


def progress(items, current: Mapping[str, store.Event], pace: Iterable[float] = ()) -> Progress:
    """Progress over ``items`` given the current ratings; time left from the rater's own pace.

    ``pace`` holds the seconds the rater spent on each first answer; the estimate is their median
    (robust to a pause) times the items left, once three answers give a pace.
    """
    codes = {it.item for it in items}
    rated = [e for code, e in current.items() if code in codes]
    pace = [s for s in pace if s is not None and s > 0]
    left = len(codes) - len(rated)
    seconds_left = statistics.median(pace) * left if len(pace) >= 3 else None
    return Progress(len(rated), len(codes), sum(1 for e in rated if e.cannot_assess), seconds_left)


def format_duration(seconds: float, coarse: bool = False) -> str:
    """``"1 h 02 min"``, ``"12 min"``, ``"40 s"``; ``coarse`` rounds to whole minutes.

    >>> format_duration(42), format_duration(42, coarse=True), format_duration(605)
    ('42 s', '1 min', '10 min 05 s')
    """
    seconds = max(0, int(round(seconds)))
    if coarse:
        minutes = max(1, round(seconds / 60))
        return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {s:02d} s"
    return f"{s} s"
