"""The files the scorer reads besides the rater folder: the key ``key/key.csv`` and ratings made
elsewhere (a CSV, docs/formats.md), read strictly through :mod:`assess.csvfile`."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..csvfile import from_spreadsheet_safe, parse_table, plain_table
from .errors import ScoreError

__all__ = ["KEY_COLUMNS", "SCORER_KEY_COLUMNS", "CSV_REQUIRED", "CSV_OPTIONAL", "sha256_file",
           "read_key", "read_ratings_csv", "read_frame", "read_bytes", "score_values"]


KEY_COLUMNS = ("code", "participant", "timepoint", "region", "view", "source_file", "source_sha256",
               "blinded_sha256", "repeat_of", "pair", "pair_side")

#: What the scorer reads of the key (the file's hashes and names stay with the coordinator).
SCORER_KEY_COLUMNS = ("code", "participant", "timepoint", "region", "view", "repeat_of", "pair",
                      "pair_side")


CSV_REQUIRED = ("rater", "code")

CSV_OPTIONAL = ("score", "better", "first", "cannot_assess", "reason", "answered_at", "comment",
                "seconds")


TRUE = {"1", "true", "yes", "y"}

FALSE = {"", "0", "false", "no", "n"}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_key(key_dir: str | Path, columns: tuple[str, ...] | None = None
             ) -> tuple[pd.DataFrame, str]:
    """Read ``key/key.csv``: ``(key table, sha256 of the file)``, optionally only ``columns``."""
    path = Path(key_dir) / "key.csv"
    if not path.is_file():
        raise ScoreError(f"{path}: not found; --key must be the key/ folder of the blinded set "
                         "(kept by the coordinator)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScoreError(f"{path}: cannot read the key ({exc.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        key, _ = read_frame(data, path, KEY_COLUMNS, "key", columns=columns, written_safe=True)
    except ScoreError as exc:
        if "missing" in str(exc) and "line 1" in str(exc):
            raise ScoreError(f"{exc}; this is not a key written by `assess randomize`") from None
        raise
    return key, digest


def read_frame(data: bytes, path: Path, required: tuple[str, ...], what: str, *,
               allowed: tuple[str, ...] | None = None, columns: tuple[str, ...] | None = None,
               fold_case: bool = False, written_safe: bool = False,
               skip_initial_space: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """A CSV file read strictly (:mod:`assess.csvfile`) as text columns (all, or ``columns``),
    and the line of each row.

    A plain file (as ``randomize`` writes a key) is checked fast and parsed by pandas; any other
    goes through :func:`assess.csvfile.parse_table`.
    """
    plain = plain_table(data, path, required, allowed=allowed, error=ScoreError, what=what,
                        fold_case=fold_case)
    if plain is None:
        table = parse_table(data, path, required, allowed=allowed, error=ScoreError, what=what,
                            fold_case=fold_case, written_safe=written_safe,
                            skip_initial_space=skip_initial_space)
        names = list(columns or table.header)
        frame = pd.DataFrame({c: pd.Series(table.column(c), dtype=object) for c in names},
                             columns=names)
        return frame, np.asarray(table.lines, dtype=np.int64)
    header, lines = plain
    index = sorted(header.index(c) for c in columns) if columns else None
    frame = pd.read_csv(io.BytesIO(data), dtype=object, keep_default_na=False, na_filter=False,
                        encoding="utf-8-sig", usecols=index, skipinitialspace=skip_initial_space)
    frame.columns = [header[i] for i in index] if index else list(header)
    if columns:
        frame = frame[list(columns)]
    if written_safe and b"'" in data:
        for col in frame.columns:
            if frame[col].str.startswith("'").any():
                frame[col] = frame[col].map(from_spreadsheet_safe)
    return frame, lines


def read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ScoreError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def read_ratings_csv(path: str | Path) -> pd.DataFrame:
    """Read ratings made elsewhere (docs/formats.md) into the shape of :func:`store.current_ratings`.

    One row per rating: ``rater,code,score`` and optionally ``cannot_assess,reason,answered_at,
    comment,seconds``; pair items give ``better,first`` instead of ``score``. ``cannot_assess`` is
    empty for a rating, and ``1``/``true``/``yes`` or one of the reasons for a photo that cannot be
    assessed (``reason`` then says why).
    """
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"{path}: ratings file not found; give the CSV with --ratings")
    raw, lines = read_frame(read_bytes(path, "ratings file"), path, CSV_REQUIRED, "ratings file",
                            allowed=CSV_REQUIRED + CSV_OPTIONAL, fold_case=True,
                            skip_initial_space=True)
    if not ({"score"} <= set(raw.columns) or {"better", "first"} <= set(raw.columns)):
        raise ScoreError(f"{path}: give a score column (single photos) or better and first columns "
                         "(pairs)")
    for col in CSV_OPTIONAL:
        if col not in raw.columns:
            raw[col] = ""
    df = raw.apply(lambda s: s.str.strip())
    line = pd.Series(lines, index=df.index)

    def fail(mask: pd.Series, what: str) -> None:
        if mask.any():
            lines = line[mask].astype(str).tolist()
            more = f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""
            raise ScoreError(f"{path}: line {', '.join(lines[:5])}{more}: {what}")

    fail((df["rater"] == "") | (df["code"] == ""), "rater and code must not be empty")
    ca = df["cannot_assess"].str.lower()
    reason_given = df["reason"].str.lower()
    is_reason = ca.isin(store.REASONS)
    fail(~(ca.isin(TRUE | FALSE) | is_reason),
         f"cannot_assess must be empty, yes/no, 1/0 or one of {', '.join(store.REASONS)}")
    cannot = is_reason | ca.isin(TRUE)
    reason = pd.Series(np.where(is_reason, ca, np.where(reason_given != "", df["reason"], "other")),
                       index=df.index)
    score_txt = df["score"]
    fail(~(score_txt.str.fullmatch(r"[+-]?\d+(\.\d+)?") | (score_txt == "")),
         "score must be a number (a level of the item's scale, e.g. 3 or 2.5, or a VAS value)")
    has_score = score_txt != ""
    has_pair = (df["better"] != "") | (df["first"] != "")
    fail(cannot & (has_score | has_pair), "a photo that cannot be assessed has no score; give "
         "either a rating or cannot_assess")
    fail(~cannot & ~has_score & ~has_pair, "no rating; give a score (single photos), better and "
         "first (pairs), or cannot_assess")
    fail(has_score & has_pair, "give a score (single photos) or better and first (pairs), not both")
    fail(has_pair & ~df["better"].isin(store.BETTER),
         f"better must be one of {', '.join(store.BETTER)}")
    fail(has_pair & ~df["first"].isin(store.FIRST), f"first must be one of {', '.join(store.FIRST)}")
    seconds = pd.to_numeric(df["seconds"].replace("", np.nan), errors="coerce")
    fail(seconds.isna() & (df["seconds"] != ""), "seconds must be a number")
    dup = df.duplicated(["rater", "code"], keep=False)
    fail(dup, "the same rater rated the same code more than once; keep one row per rating")
    out = pd.DataFrame({
        "set_id": None,
        "rater": df["rater"],
        "item": df["code"],
        "revision": 1,
        "score": score_values(pd.Series(pd.array(np.where(has_score, score_txt, None), dtype="Float64")))
        if len(df) else pd.array([], dtype="Int64"),
        "better": df["better"].where(has_pair, None),
        "first": df["first"].where(has_pair, None),
        "cannot_assess": reason.where(cannot, None),
        "comment": df["comment"].where(df["comment"] != "", None),
        "change_reason": None,
        "shown_at": None,
        "answered_at": df["answered_at"].where(df["answered_at"] != "", None),
        "seconds": seconds,
        "line": line,
    })
    return out.reset_index(drop=True)


def score_values(values: pd.Series):
    """Scores as nullable whole numbers, or as nullable floats once any is a half step or a VAS
    value (``assess.levels``)."""
    floats = values.astype("Float64")
    whole = bool(((floats.fillna(0) % 1) == 0).all())
    return floats.astype("Int64").array if whole else floats.array
