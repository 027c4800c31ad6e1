"""The checks that key, rater folder and ratings belong together, before anything is computed:
the key is the one sealed in ``set.json`` and shows exactly the worklists' photos; each rating is
of a rater of the set, of an item of that rater's worklist, and a level of the item's scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import levels
from .errors import ScoreError, listing
from .folder import SetFolder

__all__ = ["check_key_against_set", "check_ratings", "object_column", "positions"]


def check_key_against_set(folder: SetFolder, key: pd.DataFrame, digest: str, key_dir: Path
                          ) -> pd.Index:
    """Refuse a key that does not belong to the rater folder; return the key's codes as an index
    (row numbers of the key) for the joins that follow."""
    key_path = key_dir / "key.csv"
    if digest != folder.meta["key_sha256"]:
        overlap = len(set(key["code"].tolist()) & folder.photo_codes)
        if overlap == 0:
            raise ScoreError(
                f"{key_path}: belongs to another set — none of its codes appear in the rater folder "
                f"{folder.path} (set {folder.set_id!r}); give the key/ folder written together "
                "with this rater folder")
        raise ScoreError(
            f"{key_path}: its sha256 {digest[:12]}… differs from the key_sha256 "
            f"{str(folder.meta['key_sha256'])[:12]}… sealed in {folder.path / 'set.json'}; the key "
            "was changed after the set was made, or belongs to another set. Restore the original "
            "key.csv from the coordinator's backup; do not edit it")
    code_row = pd.Index(key["code"])
    if not code_row.is_unique:
        dup = key.loc[key["code"].duplicated(), "code"].tolist()
        raise ScoreError(f"{key_path}: code(s) {listing(dup)} appear twice; the key is damaged — "
                         "restore it from the coordinator's backup")
    wl = folder.worklists
    shown = {side: wl[side].to_numpy()[wl[side].notna().to_numpy()] for side in ("left", "right")}
    rows = {side: code_row.get_indexer(codes) for side, codes in shown.items()}
    not_in_key = sorted({c for side in shown for c in shown[side][rows[side] < 0].tolist()})
    if not_in_key:
        raise ScoreError(f"the key ({key_path}) and the rater folder ({folder.path}) belong to "
                         f"different sets: the worklists show codes that are not in the key: "
                         f"{listing(not_in_key)}; give the key/ and rater/ folders of one set")
    seen = np.zeros(len(key), dtype=bool)
    for side in rows:
        seen[rows[side]] = True
    not_shown = sorted(key["code"].to_numpy()[~seen].tolist())
    if not_shown:
        raise ScoreError(f"the key ({key_path}) and the rater folder ({folder.path}) belong to "
                         f"different sets: the key has codes that no worklist shows: "
                         f"{listing(not_shown)}; give the key/ and rater/ folders of one set")
    pair_items = set(folder.worklists.loc[folder.worklists["kind"] == "pair", "item"].tolist())
    unknown_pairs = sorted(pair_items - set(key["pair"].tolist()))
    if unknown_pairs:
        raise ScoreError(f"the key ({key_path}) and the rater folder ({folder.path}) belong to "
                         f"different sets: the worklists show pairs that are not in the key: "
                         f"{listing(unknown_pairs)}; give the key/ and rater/ folders of one set")
    # Every photo of an item must be of the item's region. The key row of each worklist photo is
    # kept with the worklists: every later join goes through it.
    key_region = key["region"].to_numpy()
    wl_region = wl["region"].to_numpy()
    wl["key_row"] = rows["left"]
    bad = shown["left"][key_region[rows["left"]] != wl_region].tolist()
    if len(shown["right"]):
        on_right = wl_region[wl["right"].notna().to_numpy()]
        bad += shown["right"][key_region[rows["right"]] != on_right].tolist()
    if bad:
        raise ScoreError(f"the key ({key_path}) and the rater folder ({folder.path}) do not match: "
                         f"code(s) {listing(list(dict.fromkeys(bad)))} are of another region in "
                         "the key than in the worklists; give the key/ and rater/ folders of one set")
    return code_row


def object_column(values) -> pd.Series | np.ndarray:
    """Text as an ``object`` column (pandas would convert it to its string type: slower here)."""
    values = np.asarray(values)
    return pd.Series(values, dtype=object, copy=False) if values.dtype == object else values


def positions(values: np.ndarray, names: list[str]) -> np.ndarray:
    """The position in ``names`` of each of many ``values`` drawn from few (−1 if not there)."""
    codes, uniques = pd.factorize(values)
    at = np.append(pd.Index(names).get_indexer(uniques), -1)
    return at[codes]


def _worklist_row(worklists: pd.DataFrame, ratings: pd.DataFrame, code_row: pd.Index,
                  raters: list[str]) -> np.ndarray:
    """For each rating, the row of its rater's worklist item (−1 when the worklist lacks it).

    Single photos are found through their row in the key (``code_row``, the key's codes); pair
    items through each rater's own pair items.
    """
    rater = positions(ratings["rater"].to_numpy(), raters)
    listed_by = positions(worklists["rater"].to_numpy(), raters)
    single = np.flatnonzero(worklists["kind"].to_numpy() == "single")
    n_key = len(code_row)
    where = np.full(len(raters) * n_key, -1, dtype="int64")
    where[listed_by[single] * n_key + worklists["key_row"].to_numpy()[single]] = single
    k = code_row.get_indexer(ratings["item"].to_numpy())
    known = (k >= 0) & (rater >= 0)
    row = np.full(len(ratings), -1, dtype="int64")
    row[known] = where[rater[known] * n_key + k[known]]
    pairs = np.flatnonzero(worklists["kind"].to_numpy() != "single")
    if len(pairs):
        items = worklists["item"].to_numpy(dtype=object)
        for r in range(len(raters)):
            mine = np.flatnonzero((row < 0) & (rater == r))
            listed = pairs[listed_by[pairs] == r]
            if len(mine) and len(listed):
                found = pd.Index(items[listed]).get_indexer(ratings["item"].to_numpy()[mine])
                row[mine] = np.where(found >= 0, listed[found], -1)
    return row


def check_ratings(folder: SetFolder, key: pd.DataFrame, code_row: pd.Index,
                  ratings: pd.DataFrame, source: str) -> pd.DataFrame:
    """Refuse ratings that do not fit the set; return them joined with their worklist items."""

    def where(rows: pd.DataFrame) -> str:
        if rows["line"].notna().any():
            return f"{source}: line {listing(rows['line'].dropna().astype(int).tolist(), 5)}: "
        return f"{source}: "

    ratings = ratings.reset_index(drop=True)
    wl = folder.worklists
    row = _worklist_row(wl, ratings, code_row, folder.raters)
    misfit = ratings[row < 0]  # every refusal below is among these ratings
    known = set(folder.raters)
    stranger = misfit[~misfit["rater"].isin(known)]
    if len(stranger):
        raise ScoreError(f"{where(stranger)}rater(s) {listing(sorted(set(stranger['rater'].tolist())))} "
                         f"have no worklist in this set (raters: {', '.join(sorted(known))}); these "
                         "ratings belong to another set")
    unknown = misfit
    if len(misfit):
        items = set(key["code"].tolist()) | (set(key["pair"].tolist()) - {""})
        unknown = misfit[~misfit["item"].isin(items)]
    if len(unknown):
        raise ScoreError(f"{where(unknown)}code(s) {listing(unknown['item'].tolist())} are not in "
                         "the key; the ratings belong to another set or a code was mistyped — "
                         "correct the ratings file, never the key")
    if len(misfit):
        pairs = (misfit["rater"] + ":" + misfit["item"]).tolist()
        raise ScoreError(f"{where(misfit)}code(s) not in the rater's own worklist: "
                         f"{listing(pairs)}; a rater can only rate the items of their worklist — "
                         "check the rater column")
    joined = ratings
    for col in ("kind", "scale", "region", "key_row"):  # what the joins below need
        joined[col] = object_column(wl[col].to_numpy()[row])
    joined["wl_row"] = row
    assessed = joined["cannot_assess"].isna().to_numpy()
    single = (wl["kind"].to_numpy() == "single")[row]
    joined["single"] = single
    wrong_kind = assessed & np.where(single, joined["score"].isna().to_numpy(),
                                     joined["better"].isna().to_numpy())
    if wrong_kind.any():
        rows = joined[wrong_kind]
        raise ScoreError(f"{where(rows)}item(s) {listing(rows['item'].tolist())}: single photos "
                         "take a score, pairs take better and first")
    score = joined["score"].to_numpy(dtype="float64", na_value=np.nan)
    scale_of = joined["scale"].to_numpy()
    for scale_id, scale in folder.scales.items():
        if scale.continuous:  # a VAS: any value on its range and step
            steps = (score - scale.minimum) / scale.step
            fits = ((score >= scale.minimum) & (score <= scale.maximum)
                    & (np.abs(steps - np.round(steps)) < 1e-6))
        else:
            fits = np.isin(score, np.asarray(scale.values, dtype="float64"))
        wrong = single & assessed & (scale_of == scale_id) & ~fits
        if wrong.any():
            bad = joined[wrong]
            values = sorted({levels.canonical(v) for v in bad["score"]})
            raise ScoreError(f"{where(bad)}score(s) {listing(values)} are not levels of "
                             f"{scale.name} ({', '.join(map(str, scale.values))}); correct the "
                             "ratings")
    return joined
