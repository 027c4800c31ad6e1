"""The values of a scale: its range, step, levels and anchors, how a value is entered and kept.

Pure functions under :mod:`assess.study` (which owns the ``Scale``): an ordinal scale lists its
levels, or gives ``min``/``max`` (and ``step = 0.5`` for half steps) and labels as many levels as it
likes; a visual analogue scale (``kind = "vas"``) gives a range and two anchors and has no levels.

A value is kept as a whole number when it is one (``2``, never ``2.0``) and as a float otherwise
(``1.5``), so that every store, hash and export sees one form (see :func:`canonical`).

>>> canonical(2.0), canonical(1.5), canonical(None)
(2, 1.5, None)
>>> entry_of("ordinal", (1, 2, 3, 4, 5)), entry_of("ordinal", tuple(range(11))), entry_of("vas", ())
('digit', 'typed', 'slider')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MAX_LEVELS", "MAX_VALUE", "ORDINAL_STEPS", "VAS_STEPS", "VAS_TESTS", "canonical",
           "text", "entry_of", "accepts", "parse_range", "parse_test"]

#: The most levels an ordinal scale may have (a rater still has to find the one meant).
MAX_LEVELS = 101
#: Values lie from 0 to this.
MAX_VALUE = 1000
#: Steps an ordinal scale may declare: whole levels or half steps.
ORDINAL_STEPS = (1, 0.5)
#: Steps of a visual analogue scale: whole points, halves or tenths of its range's units.
VAS_STEPS = (1, 0.5, 0.1)


#: How the change of a VAS is tested, as the analysis plan declares (``test`` of the scale): the
#: paired t-test (the default; between arms Welch's t-test) or the Wilcoxon signed-rank test
#: (between arms Mann-Whitney U). Ordinal scales are always compared by rank.
VAS_TESTS = ("paired-t", "wilcoxon")


def parse_test(data: dict, kind: str, where: str, error) -> str:
    """The declared ``test`` of a VAS (``""`` for a scale with levels, which may not declare one)."""
    if kind != "vas":
        if "test" in data:
            raise error(f"{where}.test: only a visual analogue scale (kind = \"vas\") declares its "
                        "test; a scale with levels is compared by rank (Wilcoxon signed-rank)")
        return ""
    test = data.get("test", VAS_TESTS[0])
    if test not in VAS_TESTS:
        raise error(f"{where}.test: must be \"paired-t\" or \"wilcoxon\", not {test!r}")
    return test


def canonical(value: Any) -> int | float | None:
    """A score in its one kept form: ``None``, a whole number as ``int``, otherwise a ``float``.

    >>> canonical(3), canonical(3.0), canonical(37.25)
    (3, 3, 37.25)
    """
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def text(value: Any) -> str:
    """A value as written for people and in keys: ``"10"``, ``"1.5"``.

    >>> text(10), text(1.5), text(2.0)
    ('10', '1.5', '2')
    """
    return str(canonical(value))


def entry_of(kind: str, values: tuple) -> str:
    """``"digit"`` when each level is one digit key, ``"typed"`` (digits then Enter) for larger
    or half-step levels, ``"slider"`` for a VAS."""
    if kind == "vas":
        return "slider"
    return "digit" if all(isinstance(v, int) and 0 <= v <= 9 for v in values) else "typed"


def _decimals(step: float) -> int:
    return 0 if float(step).is_integer() else len(repr(float(step)).split(".")[1])


def accepts(scale: Any, value: Any) -> bool:
    """Whether ``value`` is a level of ``scale`` or, for a VAS, a number on its range and step."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if not scale.continuous:
        return value in scale.values
    if not scale.minimum <= value <= scale.maximum:
        return False
    steps = (value - scale.minimum) / scale.step
    return abs(steps - round(steps)) < 1e-6


def _number(data: dict, key: str, where: str, error) -> int | float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise error(f"{where}.{key}: must be a number, not {value!r}")
    if not 0 <= value <= MAX_VALUE:
        raise error(f"{where}.{key}: must be from 0 to {MAX_VALUE}, not {value!r}")
    return canonical(value)


def _on_step(value: float, base: float, step: float) -> bool:
    k = (value - base) / step
    return abs(k - round(k)) < 1e-9


def _step(data: dict, kind: str, where: str, error) -> int | float:
    allowed = VAS_STEPS if kind == "vas" else (1,) if kind == "categorical" else ORDINAL_STEPS
    step = data.get("step", 1)
    if isinstance(step, bool) or not isinstance(step, (int, float)) or step not in allowed:
        words = " or ".join(map(str, allowed))
        what = "a categorical scale has whole levels only" if kind == "categorical" else \
            "1 for whole levels, 0.5 for half steps" if kind == "ordinal" else "the VAS resolution"
        raise error(f"{where}.step: must be {words} ({what}), not {step!r}")
    return canonical(step)


def _range(data: dict, step, where: str, error, default=(None, None)):
    low = _number(data, "min", where, error)
    high = _number(data, "max", where, error)
    low = default[0] if low is None else low
    high = default[1] if high is None else high
    if (low is None) != (high is None):
        missing = "max" if high is None else "min"
        raise error(f"{where}.{missing}: give both min and max, e.g. min = 0 and max = 10")
    if low is None:
        return None, None
    if high <= low:
        raise error(f"{where}.max: must be greater than min ({low}), not {high}")
    for key, value in (("min", low), ("max", high)):
        if not _on_step(value, 0, step):
            raise error(f"{where}.{key}: {value} is not a multiple of step {step}")
    return low, high


def parse_range(data: dict, kind: str, where: str, level_type, error, check_keys):
    """(step, min, max, levels, anchors) of a scale table; ``error`` is the exception to raise,
    ``level_type`` makes a level and ``check_keys(table, section, where)`` refuses unknown keys.

    Hostile values are refused naming the field: a step that is not allowed or does not divide
    the range, ``max`` not above ``min``, too many levels, levels off the step or outside the
    range, levels or a missing pair of anchors on a VAS, anchors on a scale with levels.
    """
    step = _step(data, kind, where, error)
    if kind == "vas":
        if "levels" in data:
            raise error(f"{where}.levels: a visual analogue scale has no levels; name its two ends "
                        "with anchors = [\"No wrinkles\", \"Worst imaginable\"] instead")
        low, high = _range(data, step, where, error, default=(0, 100))
        anchors = data.get("anchors")
        if (not isinstance(anchors, list) or len(anchors) != 2
                or not all(isinstance(a, str) and a.strip() for a in anchors)):
            raise error(f"{where}.anchors: give the two ends of the line as two texts, e.g. "
                        "anchors = [\"No wrinkles\", \"Worst imaginable\"]")
        return step, low, high, [], tuple(a.strip() for a in anchors)
    if "anchors" in data:
        raise error(f"{where}.anchors: only a visual analogue scale (kind = \"vas\") has anchors; "
                    "label the levels instead, e.g. levels = [{value = 0, label = \"None\"}]")
    low, high = _range(data, step, where, error)
    if low is not None and (high - low) / step + 1 > MAX_LEVELS:
        raise error(f"{where}.max: {low} to {high} in steps of {step} gives "
                    f"{int((high - low) / step) + 1} levels, at most {MAX_LEVELS}; use a visual "
                    "analogue scale (kind = \"vas\") for a continuous score")
    listed = _levels(data.get("levels"), low is not None, step, where, level_type, error,
                     check_keys)
    if low is None:
        return step, None, None, listed, ()
    by_value = {lv.value: lv for lv in listed}
    for i, lv in enumerate(listed):
        if not low <= lv.value <= high:
            raise error(f"{where}.levels[{i}].value: {lv.value} is outside min {low} to max {high}")
    count = int(round((high - low) / step)) + 1
    grid = [canonical(low + k * step) for k in range(count)]
    return step, low, high, [by_value.get(v, level_type(v, text(v))) for v in grid], ()


def _levels(raw: Any, ranged: bool, step, where: str, level_type, error, check_keys) -> list:
    if raw is None and ranged:
        return []
    if not isinstance(raw, list) or (len(raw) < 2 and not ranged):
        raise error(f"{where}.levels: give at least two levels, e.g. "
                    "levels = [{value = 1, label = \"None\"}, {value = 2, label = \"Mild\"}], "
                    "or min and max")
    if len(raw) > MAX_LEVELS:
        raise error(f"{where}.levels: {len(raw)} levels, at most {MAX_LEVELS}")
    levels = []
    for i, lv in enumerate(raw):
        if not isinstance(lv, dict):
            raise error(f"{where}.levels[{i}]: must be a table with value and label")
        check_keys(lv, "scales.*.levels", f"{where}.levels[{i}]")
        if not isinstance(lv.get("description", ""), str):
            raise error(f"{where}.levels[{i}].description: must be a text in quotes")
        value = lv.get("value")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or not 0 <= value <= MAX_VALUE):
            raise error(f"{where}.levels[{i}].value: must be a number from 0 to {MAX_VALUE}, "
                        f"not {value!r}")
        if not _on_step(value, 0, step):
            hint = "; declare step = 0.5 for half steps" if step == 1 else ""
            raise error(f"{where}.levels[{i}].value: {value} is not a multiple of step {step}{hint}")
        label = lv.get("label")
        if not isinstance(label, str) or not label.strip():
            raise error(f"{where}.levels[{i}].label: must be a non-empty text")
        levels.append(level_type(canonical(value), label.strip(), str(lv.get("description", "")).strip()))
    values = [lv.value for lv in levels]
    if len(set(values)) != len(values):
        raise error(f"{where}.levels: values must be unique, got {values}")
    if values != sorted(values):
        raise error(f"{where}.levels: list the levels in increasing order, got {values}")
    return levels
