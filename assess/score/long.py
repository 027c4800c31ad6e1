"""The long table: the checked ratings joined with the key and the arms, one row per rating
(:data:`LONG_COLUMNS`); pair answers become improvement scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import object_column
from .errors import ScoreError, listing
from .readers import score_values

__all__ = ["IMPROVEMENT", "LONG_COLUMNS", "TEXT_KEYS", "long_table"]


#: Improvement score of a pair answer when the follow-up photo is on the right (mirror it when the
#: follow-up is on the left): much better follow-up = +2 … much better baseline = −2.
IMPROVEMENT = {"much_better_left": -2, "better_left": -1, "no_difference": 0, "better_right": 1,
               "much_better_right": 2}


#: Columns of the long table, in order (one row per rating).
LONG_COLUMNS = ("participant", "arm", "timepoint", "region", "view", "scale", "score", "rater",
                "repeat", "seconds", "code", "item", "kind", "first_showing", "better", "first",
                "improvement", "baseline_identified", "cannot_assess", "reason", "comment",
                "answered_at", "revision")


#: Columns of the long table that always hold text.
TEXT_KEYS = ("participant", "arm", "timepoint", "region", "view", "scale", "rater", "code", "item",
             "kind", "first_showing")


def _pairs_table(key: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """One row per pair item: participant, region, view, follow-up timepoint, side of follow-up."""
    rows = key[key["pair"] != ""]
    if rows.empty:
        return pd.DataFrame(columns=["pair", "participant", "region", "view", "timepoint",
                                     "followup_side", "baseline_side", "first_pair"])
    left = rows[rows["pair_side"] == "left"].set_index("pair")
    right = rows[rows["pair_side"] == "right"].set_index("pair")
    both = left.join(right, suffixes=("_l", "_r"), how="outer")
    incomplete = both.index[both["code_l"].isna() | both["code_r"].isna()].tolist()
    if incomplete:
        raise ScoreError(f"key.csv: pair(s) {listing(incomplete)} lack a left or right photo; the "
                         "key is damaged — restore it from the coordinator's backup")
    baseline_left = both["timepoint_l"] == baseline
    baseline_right = both["timepoint_r"] == baseline
    bad = both.index[baseline_left == baseline_right].tolist()
    if bad:
        raise ScoreError(f"key.csv: pair(s) {listing(bad)} do not show one {baseline} and one "
                         "follow-up photo; the key is damaged — restore it")
    code_pair = dict(zip(rows["code"].tolist(), rows["pair"].tolist()))
    repeat_of = both["repeat_of_l"].where(both["repeat_of_l"] != "", both["repeat_of_r"])
    first_pair = repeat_of.map(lambda c: code_pair.get(c, "") if c else "")
    return pd.DataFrame({
        "pair": both.index,
        "participant": both["participant_l"].to_numpy(),
        "region": both["region_l"].to_numpy(),
        "view": both["view_l"].to_numpy(),
        "timepoint": np.where(baseline_left, both["timepoint_r"], both["timepoint_l"]),
        "followup_side": np.where(baseline_left, "right", "left"),
        "baseline_side": np.where(baseline_left, "left", "right"),
        "first_pair": first_pair.to_numpy(),
    })


def _missing(n: int, dtype: str):
    """``n`` missing values of a nullable dtype (``Int64`` or ``boolean``)."""
    if dtype == "Int64":
        return pd.arrays.IntegerArray(np.zeros(n, dtype="int64"), np.ones(n, dtype=bool))
    return pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool))


def _concat(parts: list):
    """One column from the single-photo part and the pair part of the long table."""
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return pd.concat([pd.Series(p, dtype=object if isinstance(p, np.ndarray) and p.dtype == object
                                else None) for p in parts], ignore_index=True).array


def _single_columns(single: pd.DataFrame, key: pd.DataFrame) -> dict:
    """The long table's columns of the single-photo ratings (unsorted)."""
    k = single["key_row"].to_numpy()
    repeat_of = key["repeat_of"].to_numpy()[k]
    items = single["item"].to_numpy()
    n = len(single)
    nothing = np.full(n, None, dtype=object)
    return {
        "participant": key["participant"].to_numpy()[k],
        "timepoint": key["timepoint"].to_numpy()[k],
        "region": single["region"].to_numpy(),
        "view": key["view"].to_numpy()[k],
        "scale": single["scale"].to_numpy(),
        "score": score_values(single["score"]),
        "rater": single["rater"].to_numpy(),
        "repeat": repeat_of != "",
        "seconds": single["seconds"].to_numpy(dtype="float64", na_value=np.nan),
        "code": items,
        "item": items,
        "kind": np.full(n, "single", dtype=object),
        "first_showing": np.where(repeat_of != "", repeat_of, items),
        "better": nothing,
        "first": nothing,
        "improvement": _missing(n, "Int64"),
        "baseline_identified": _missing(n, "boolean"),
        "cannot_assess": single["cannot_assess"].notna().to_numpy(),
        "reason": single["cannot_assess"].to_numpy(dtype=object),
        "comment": single["comment"].to_numpy(dtype=object),
        "answered_at": single["answered_at"].to_numpy(dtype=object),
        "revision": single["revision"].to_numpy(dtype="int64"),
    }


def _pair_columns(pairs: pd.DataFrame, key: pd.DataFrame, baseline: str) -> dict:
    """The long table's columns of the pair answers (unsorted): improvement scores, whether the
    rater named the baseline photo."""
    table = _pairs_table(key, baseline).set_index("pair")
    info = table.reindex(pairs["item"])
    raw = pairs["better"].map(IMPROVEMENT)
    improvement = np.where(info["followup_side"].to_numpy() == "right", raw, -raw)
    identified = np.where(pairs["first"].to_numpy() == "cannot_tell", None,
                          pairs["first"].to_numpy() == info["baseline_side"].to_numpy())
    assessed = pairs["cannot_assess"].isna().to_numpy()
    first_pair = info["first_pair"].to_numpy(dtype=object)
    m = len(pairs)
    return {
        "participant": info["participant"].to_numpy(dtype=object),
        "timepoint": info["timepoint"].to_numpy(dtype=object),
        "region": pairs["region"].to_numpy(dtype=object),
        "view": info["view"].to_numpy(dtype=object),
        "scale": pairs["scale"].to_numpy(dtype=object),
        "score": _missing(m, "Int64"),
        "rater": pairs["rater"].to_numpy(dtype=object),
        "repeat": first_pair != "",
        "seconds": pairs["seconds"].to_numpy(dtype="float64", na_value=np.nan),
        "code": pairs["item"].to_numpy(dtype=object),
        "item": pairs["item"].to_numpy(dtype=object),
        "kind": np.full(m, "pair", dtype=object),
        "first_showing": np.where(first_pair != "", first_pair, pairs["item"].to_numpy()),
        "better": pairs["better"].to_numpy(dtype=object),
        "first": pairs["first"].to_numpy(dtype=object),
        "improvement": pd.array(np.where(assessed, improvement, np.nan), dtype="Float64")
        .astype("Int64"),
        "baseline_identified": pd.array(np.where(assessed, identified, None), dtype="boolean"),
        "cannot_assess": ~assessed,
        "reason": pairs["cannot_assess"].to_numpy(dtype=object),
        "comment": pairs["comment"].to_numpy(dtype=object),
        "answered_at": pairs["answered_at"].to_numpy(dtype=object),
        "revision": pairs["revision"].to_numpy(dtype="int64"),
    }


def long_table(joined: pd.DataFrame, key: pd.DataFrame, baseline: str, arm_of: dict,
               timepoints: tuple[str, ...]) -> pd.DataFrame:
    """The checked ratings (``joined``) with the key's participant, timepoint and view and the
    participant's arm: one row per rating, :data:`LONG_COLUMNS`, in study order."""
    is_single = joined["single"].to_numpy()
    parts = [_single_columns(joined[is_single], key)]
    pairs = joined[~is_single]
    if len(pairs):
        parts.append(_pair_columns(pairs, key, baseline))
    cols = {name: _concat([p[name] for p in parts]) for name in parts[0]}
    coded = {c: pd.factorize(cols[c], sort=True)
             for c in ("participant", "region", "view", "rater", "timepoint")}
    codes, names = coded["participant"]
    arm_codes, arm_names = pd.factorize(np.array([arm_of.get(p) for p in names], dtype=object))
    coded["arm"] = (arm_codes[codes], arm_names)
    cols["arm"] = np.asarray(arm_names, dtype=object)[coded["arm"][0]]
    # Sort by participant, region, view, timepoint (study order), rater, repeat, code; only
    # repeats of one photo share all the keys before the code.
    codes, names = coded["timepoint"]
    rank = np.array([timepoints.index(t) for t in names], dtype="int64")[codes]
    repeat = np.flatnonzero(cols["repeat"])
    tie = np.zeros(len(cols["code"]), dtype="int64")
    tie[repeat] = pd.factorize(cols["code"][repeat], sort=True)[0]
    rows = np.lexsort([tie, cols["repeat"], coded["rater"][0], rank, coded["view"][0],
                       coded["region"][0], coded["participant"][0]])
    out = {}
    for name in LONG_COLUMNS:
        values = cols[name]
        if name in ("code", "item", "first_showing"):
            out[name] = pd.array(values[rows], dtype="str")  # one value per rating
        elif name in TEXT_KEYS:
            # Text that is never empty becomes pandas' string type: grouping on it is faster.
            codes, uniques = coded[name] if name in coded else pd.factorize(values)
            out[name] = pd.array(np.asarray(uniques, dtype=object), dtype="str").take(codes[rows])
        elif isinstance(values, np.ndarray):
            out[name] = object_column(values[rows])
        else:
            out[name] = values[rows]
    return pd.DataFrame(out)
