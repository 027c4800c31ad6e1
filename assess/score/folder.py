"""The rater folder as the scorer reads it: ``set.json``, its scales and regions, and every
worklist, checked to belong to the one set (:class:`SetFolder`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import worklists
from ..study import Scale, StudyError
from .errors import ScoreError, listing

__all__ = ["SetFolder", "read_set", "read_folder", "read_meta", "worklist_paths"]


@dataclass
class SetFolder:
    """A rater folder as the scorer sees it."""

    path: Path
    meta: dict
    scales: dict[str, Scale]
    regions: dict[str, str]
    worklists: pd.DataFrame  # rater, item, kind, scale, region, position, left, right

    @property
    def photo_codes(self) -> set[str]:
        """Every photo code the worklists show."""
        return set(self.worklists["left"].tolist()) | set(self.worklists["right"].dropna().tolist())

    @property
    def set_id(self) -> str:
        return str(self.meta.get("set_id", ""))

    @property
    def study_id(self) -> str:
        return str(self.meta.get("study_id", ""))

    @property
    def presentation(self) -> str:
        return str(self.meta.get("presentation", "single"))

    @property
    def raters(self) -> list[str]:
        return list(self.meta.get("raters", {}))


def read_meta(root: Path) -> dict:
    """``set.json`` of a rater folder, with the fields the scorer needs."""
    meta_path = root / "set.json"
    if not meta_path.is_file():
        raise ScoreError(f"{meta_path}: not found; --rater-dir must be the rater/ folder of a blinded "
                         "set (the one holding set.json and worklists/)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScoreError(f"{meta_path}: cannot be read ({exc}); copy the rater folder again from "
                         "the coordinator's set") from None
    for name in ("set_id", "key_sha256", "scales", "regions", "raters"):
        if name not in meta:
            raise ScoreError(f"{meta_path}: field {name!r} is missing; this is not a set written by "
                             "`assess randomize`")
    return meta


def worklist_paths(root: Path, meta: dict) -> list[Path]:
    return [root / "worklists" / f"{rater}.json" for rater in meta["raters"]]


def read_set(rater_dir: str | Path) -> SetFolder:
    """Read ``set.json`` and every worklist of a rater folder."""
    root = Path(rater_dir)
    return read_folder(root, read_meta(root))


def read_folder(root: Path, meta: dict, parsed: list[dict | None] | None = None) -> SetFolder:
    """The rater folder of ``set.json``'s ``meta``; ``parsed``: the worklists as
    :class:`assess.worklists.Reader` gave them, when they were read in another process (any one
    missing there is read here)."""
    meta_path = root / "set.json"
    scales = {}
    for sid, data in meta["scales"].items():
        try:
            scales[sid] = Scale.from_dict({"id": sid, **data}, where=f"{meta_path}: scales.{sid}")
        except StudyError as exc:
            raise ScoreError(str(exc)) from None
    regions = {str(k): str(v) for k, v in meta["regions"].items()}
    rows = []
    for i, (wl_path, (rater, info)) in enumerate(zip(worklist_paths(root, meta),
                                                      meta["raters"].items())):
        if not wl_path.is_file():
            raise ScoreError(f"{wl_path}: worklist of rater {rater!r} not found; copy the complete "
                             "rater folder from the coordinator's set")
        wl = parsed[i] if parsed is not None and i < len(parsed) else None
        if wl is None:
            try:
                wl = worklists.read(wl_path)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ScoreError(f"{wl_path}: cannot be read ({exc}); copy the rater folder "
                                 "again") from None
            except ValueError:
                raise ScoreError(f"{wl_path}: not a worklist written by `assess randomize` (each "
                                 "item needs item, kind, scale, region, photos); copy the rater "
                                 "folder again") from None
        if wl["set_id"] != meta["set_id"]:
            raise ScoreError(f"{wl_path}: belongs to set {wl['set_id']!r}, but set.json is set "
                             f"{meta['set_id']!r}; the rater folder mixes two sets — copy it again "
                             "from the coordinator")
        if wl["rater"] not in (None, rater):
            raise ScoreError(f"{wl_path}: is the worklist of {wl['rater']!r}, not {rater!r}; "
                             "copy the rater folder again")
        columns = wl["columns"]
        n = len(columns["item"])
        declared = info.get("items") if isinstance(info, dict) else None
        if declared is not None and declared != n:
            raise ScoreError(f"{wl_path}: has {n} items but set.json declares {declared}; "
                             "the rater folder is incomplete or was changed — copy it again")
        frame = pd.DataFrame({
            "rater": pd.Series(np.full(n, rater, dtype=object), dtype=object),
            # Codes in pandas' string type: compact, and the parsed JSON is freed whole.
            "item": pd.array(columns["item"], dtype="str"),
            # Few distinct values: one string object each instead of one per item.
            **{name: pd.Series(_shared(columns[name]), dtype=object)
               for name in ("kind", "scale", "region")},
            "position": np.arange(n),
            "left": pd.array(columns["left"], dtype="str"),
            "right": pd.Series(_shared([v or None for v in columns["right"]]), dtype=object),
        })
        twice = frame.loc[frame["item"].duplicated(), "item"].tolist()
        if twice:
            raise ScoreError(f"{wl_path}: item(s) {listing(twice)} appear more than once; the "
                             "worklist is damaged — copy the rater folder again")
        bad = sorted(set(frame["scale"].unique().tolist()) - set(scales))
        if bad:
            raise ScoreError(f"{wl_path}: items use scale(s) {', '.join(bad)}, which set.json does "
                             "not define; copy the rater folder again")
        rows.append(frame)
        wl = columns = None  # free the parsed worklist before the next one
        if parsed is not None and i < len(parsed):
            parsed[i] = None
    frames = (pd.concat(rows, ignore_index=True) if rows else
              pd.DataFrame(columns=["rater", "item", "kind", "scale", "region", "position",
                                    "left", "right"]))
    return SetFolder(root, meta, scales, regions, frames)


def _shared(values: list) -> np.ndarray:
    """The values as an object array in which equal strings are one object."""
    codes, uniques = pd.factorize(np.array(values, dtype=object), use_na_sentinel=True)
    return np.append(np.asarray(uniques, dtype=object), None)[codes]
