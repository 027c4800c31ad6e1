"""The participants file ``participant,arm``: which arm each participant of the key is in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ScoreError, listing
from .readers import read_bytes, read_frame

__all__ = ["DEFAULT_ARM", "read_participants", "assign_arms"]


DEFAULT_ARM = "all"


def read_participants(path: str | Path) -> pd.DataFrame:
    """Read ``participant,arm[,...]``; one row per participant."""
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"{path}: participants file not found; give a CSV participant,arm")
    df, lines = read_frame(read_bytes(path, "participants file"), path, ("participant", "arm"),
                           "participants file", fold_case=True)
    df = df.apply(lambda s: s.str.strip())
    empty = np.flatnonzero(((df["participant"] == "") | (df["arm"] == "")).to_numpy())
    if len(empty):
        raise ScoreError(f"{path}: line {lines[empty[0]]}: participant and arm must not be empty")
    dup = df.loc[df["participant"].duplicated(), "participant"].tolist()
    if dup:
        raise ScoreError(f"{path}: participant(s) {', '.join(dup[:10])} listed more than once; give "
                         "one row per participant")
    return df


def assign_arms(participants: str | Path | None, key_participants: list[str]
                ) -> tuple[dict[str, str], list[str], list[str]]:
    """``(arm of each participant, the arms in the file's order, participants of the file
    without photos in this set)``; all participants form one arm without a file.

    Refuses a file that leaves a participant of the key without an arm.
    """
    if participants is None:
        return {p: DEFAULT_ARM for p in key_participants}, [DEFAULT_ARM], []
    parts = read_participants(participants)
    arm_of = dict(zip(parts["participant"].tolist(), parts["arm"].tolist()))
    no_arm = [p for p in key_participants if p not in arm_of]
    if no_arm:
        raise ScoreError(f"{participants}: participant(s) {listing(no_arm)} of the key have no "
                         "arm; add a row participant,arm for each")
    extra = sorted(set(arm_of) - set(key_participants))
    arms = list(dict.fromkeys(parts["arm"]))
    arms = [a for a in arms if a in {arm_of[p] for p in key_participants}]
    return arm_of, arms, extra
