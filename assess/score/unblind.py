"""Unblinding: read the set, the key and the ratings, check their integrity, join them.

Nothing is computed before the inputs are proven to belong together. :func:`unblind` refuses
(:class:`ScoreError`, the message names the file and says what to do) when

* a file of ``key/`` or ``rater/`` differs from, is missing from or is extra to the seal
  ``key/seal.json``, or its signature fails or is not by the expected key (:mod:`assess.seal`,
  which raises ``SealError``); a set made before the seal is read with a warning;
* ``key/key.csv`` does not hash to the ``key_sha256`` sealed in ``rater/set.json``;
* the key and the rater folder belong to different sets (worklists or ratings of another set id,
  photo codes that do not match, a worklist of another length than ``set.json`` declares);
* a rated code is not in the key, or not in that rater's worklist, or a rating is not a level of
  the item's scale;
* a worklist is not locked (unless ``allow_unlocked``);
* the ratings database fails its integrity check (an event edited, deleted, reordered or inserted,
  an event after its lock, a lock signature changed, a guard trigger missing: :func:`store.verify`);
* ``--participants`` is malformed or leaves a participant without an arm,

and returns, with the joined long table, the findings a statistician must see (:class:`Finding`):
unrated items, unlocked worklists, participants with a missing timepoint, cannot-assess ratings,
revised ratings.

Disguised repeats (a key row with ``repeat_of``) are kept in the long table with ``repeat`` set:
they are used for intra-rater reliability only; the primary analysis uses the first showing.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import calibration, levels, seal, store, worklists
from ..csvfile import from_spreadsheet_safe, parse_table, plain_table
from ..errors import AssessError
from ..study import Scale, StudyError

__all__ = [
    "ScoreError",
    "Finding",
    "SetFolder",
    "Unblinded",
    "LONG_COLUMNS",
    "IMPROVEMENT",
    "read_set",
    "read_key",
    "read_ratings_csv",
    "read_ratings_db",
    "verify_ratings_db",
    "read_participants",
    "order_timepoints",
    "unblind",
]

KEY_COLUMNS = ("code", "participant", "timepoint", "region", "view", "source_file", "source_sha256",
               "blinded_sha256", "repeat_of", "pair", "pair_side")

#: What the scorer reads of the key (the file's hashes and names stay with the coordinator).
SCORER_KEY_COLUMNS = ("code", "participant", "timepoint", "region", "view", "repeat_of", "pair",
                      "pair_side")

CSV_REQUIRED = ("rater", "code")
CSV_OPTIONAL = ("score", "better", "first", "cannot_assess", "reason", "answered_at", "comment",
                "seconds")

#: Improvement score of a pair answer when the follow-up photo is on the right (mirror it when the
#: follow-up is on the left): much better follow-up = +2 … much better baseline = −2.
IMPROVEMENT = {"much_better_left": -2, "better_left": -1, "no_difference": 0, "better_right": 1,
               "much_better_right": 2}

#: Columns of the long table, in order (one row per rating).
LONG_COLUMNS = ("participant", "arm", "timepoint", "region", "view", "scale", "score", "rater",
                "repeat", "seconds", "code", "item", "kind", "first_showing", "better", "first",
                "improvement", "baseline_identified", "cannot_assess", "reason", "comment",
                "answered_at", "revision")

#: What the scorer reads of each rating in the ratings database.
RATING_COLUMNS = ("rater", "item", "revision", "score", "better", "first", "cannot_assess",
                  "comment", "answered_at", "seconds")

#: Columns of the long table that always hold text.
TEXT_KEYS = ("participant", "arm", "timepoint", "region", "view", "scale", "rater", "code", "item",
             "kind", "first_showing")

DEFAULT_ARM = "all"
TRUE = {"1", "true", "yes", "y"}
FALSE = {"", "0", "false", "no", "n"}
BASELINE_NAMES = ("baseline", "screening", "pre", "pretreatment", "pre-treatment", "before",
                  "day0", "week0", "month0", "visit0", "visit1", "v0", "v1", "t0")


class ScoreError(AssessError):
    """The inputs of ``assess score`` do not fit together; the message says which file and why."""


@dataclass(frozen=True)
class Finding:
    """Something the statistician must see: a warning, with the affected items listed."""

    kind: str  # unrated | unlocked | unchained | missing_timepoint | cannot_assess | revised | participants | single_timepoint
    message: str
    items: tuple[str, ...] = ()

    def short(self, limit: int = 10) -> str:
        """The message with the first ``limit`` items."""
        if not self.items:
            return self.message
        shown = ", ".join(self.items[:limit])
        more = f", … ({len(self.items) - limit} more)" if len(self.items) > limit else ""
        return f"{self.message}: {shown}{more}"


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


@dataclass
class Unblinded:
    """The joined data and what was found on the way."""

    set: SetFolder
    key_sha256: str
    timepoints: tuple[str, ...]
    long: pd.DataFrame  # LONG_COLUMNS
    arms: list[str]
    findings: list[Finding] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)  # input file -> sha256
    sealed: seal.Verified | None = None  # what the seal check found (None: not checked)
    #: Every photo taken (first showings of the key): participant, timepoint, region, view; None
    #: when not known, so a missing rating cannot be told from a photo never taken.
    photos: pd.DataFrame | None = None
    #: The hidden calibration photos of the live worklists (``key/calibration.csv``) with each
    #: rater's current answer: CALIBRATION_COLUMNS; None for a set without them. They are kept
    #: out of ``long`` and of every table of the trial.
    calibration: pd.DataFrame | None = None

    @property
    def baseline(self) -> str:
        return self.timepoints[0]

    @property
    def followups(self) -> tuple[str, ...]:
        return self.timepoints[1:]


# --------------------------------------------------------------------------------- readers


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_meta(root: Path) -> dict:
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


def _worklist_paths(root: Path, meta: dict) -> list[Path]:
    return [root / "worklists" / f"{rater}.json" for rater in meta["raters"]]


def read_set(rater_dir: str | Path) -> SetFolder:
    """Read ``set.json`` and every worklist of a rater folder."""
    root = Path(rater_dir)
    return _read_set(root, _read_meta(root))


def _read_set(root: Path, meta: dict, parsed: list[dict | None] | None = None) -> SetFolder:
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
    for i, (wl_path, (rater, info)) in enumerate(zip(_worklist_paths(root, meta),
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
            raise ScoreError(f"{wl_path}: item(s) {_listing(twice)} appear more than once; the "
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
        key, _ = _read_frame(data, path, KEY_COLUMNS, "key", columns=columns, written_safe=True)
    except ScoreError as exc:
        if "missing" in str(exc) and "line 1" in str(exc):
            raise ScoreError(f"{exc}; this is not a key written by `assess randomize`") from None
        raise
    return key, digest


def _read_frame(data: bytes, path: Path, required: tuple[str, ...], what: str, *,
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


def _read_bytes(path: Path, what: str) -> bytes:
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
    raw, lines = _read_frame(_read_bytes(path, "ratings file"), path, CSV_REQUIRED, "ratings file",
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
        "score": _scores(pd.Series(pd.array(np.where(has_score, score_txt, None), dtype="Float64")))
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


def read_ratings_db(db_path: str | Path, set_id: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Current ratings and locks from the ratings database (through :mod:`assess.store`)."""
    try:
        # "<set-id>:adjudication" (and other worklists of the set's panel) belong to the set
        other = sorted(s for s in set(store.set_ids(db_path)) - {set_id}
                       if not s.startswith(set_id + ":"))
        if other:
            raise ScoreError(f"{db_path}: holds ratings of set(s) {', '.join(other)}, but the rater "
                             f"folder is set {set_id!r}; give the database and rater folder of the "
                             "same set")
        ratings = store.current_ratings(db_path, set_id, columns=RATING_COLUMNS, sort=False)
        locks = store.locks(db_path, set_id)
    except store.StoreError as exc:
        raise ScoreError(str(exc)) from None
    ratings["line"] = np.nan
    return ratings, locks


def verify_ratings_db(db_path: str | Path, set_id: str) -> store.ChainReport:
    """Recompute the set's chains, lock signatures and guard triggers (:func:`store.verify`).

    Raises :class:`ScoreError` naming the rater, item and event of every break.
    """
    try:
        return store.verify(db_path, set_id).check()
    except store.StoreError as exc:
        raise ScoreError(str(exc)) from None


class ChainCheck:
    """:func:`verify_ratings_db` in a second process while this one reads the set and the key.

    Recomputing every hash of a large database takes about as long as reading its ratings; the
    second process does it meanwhile. When that process cannot run or fails, :meth:`result`
    verifies here, so the outcome is the same either way.
    """

    CODE = ("import json, pickle, sys\n"
            "m = json.loads(sys.stdin.readline())\n"
            "sys.path[:0] = m['path']\n"
            "from assess import store\n"
            "try:\n"
            "    r = store.verify(m['db'], m['set_id'])\n"
            "except store.StoreError as e:\n"
            "    r = str(e)\n"
            "with open(m['out'], 'wb') as fh:\n"
            "    pickle.dump(r, fh)\n")

    def __init__(self, db_path: str | Path, set_id: str) -> None:
        import sys

        from ..child import Child

        self.db, self.set_id = store.location(db_path), set_id
        self.child = Child(self.CODE, prefix="assess-verify-")
        self.out = self.child.dir / "report.pickle"
        db = self.db if store.is_url(self.db) else self.db.resolve()
        self.child.send({"path": sys.path, "db": str(db), "set_id": set_id, "out": str(self.out)})

    def result(self) -> store.ChainReport:
        """The verified report; raises :class:`ScoreError` naming every break."""
        import pickle

        report = None
        try:
            if self.child.wait():
                with open(self.out, "rb") as fh:
                    report = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, AttributeError, EOFError):
            report = None
        finally:
            self.child.close()
        if isinstance(report, str):
            raise ScoreError(report)
        if not isinstance(report, store.ChainReport):
            return verify_ratings_db(self.db, self.set_id)
        try:
            return report.check()
        except store.StoreError as exc:
            raise ScoreError(str(exc)) from None


def _chain_counts(report: store.ChainReport) -> dict[str, dict]:
    """Per rater: events, unchained events, chain head and signature, for the report."""
    out = {}
    for (_, rater), wl in report.worklists.items():
        lock = wl.lock or {}
        out[rater] = {"events": wl.events, "unchained": wl.unchained, "head": wl.head,
                      "signed_at": lock.get("locked_at") if wl.signed else None,
                      "signer": lock.get("signer"), "auth_method": lock.get("auth_method")}
    return out


def read_participants(path: str | Path) -> pd.DataFrame:
    """Read ``participant,arm[,...]``; one row per participant."""
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"{path}: participants file not found; give a CSV participant,arm")
    df, lines = _read_frame(_read_bytes(path, "participants file"), path, ("participant", "arm"),
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


def _declared_timepoints(meta: dict, key_dir: Path) -> tuple[str, ...] | None:
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


# --------------------------------------------------------------------------------- checks


def _listing(values, limit: int = 10) -> str:
    values = list(values)
    head = ", ".join(map(str, values[:limit]))
    return head + (f", … ({len(values) - limit} more)" if len(values) > limit else "")


def _check_key_against_set(folder: SetFolder, key: pd.DataFrame, digest: str, key_dir: Path
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
        raise ScoreError(f"{key_path}: code(s) {_listing(dup)} appear twice; the key is damaged — "
                         "restore it from the coordinator's backup")
    wl = folder.worklists
    shown = {side: wl[side].to_numpy()[wl[side].notna().to_numpy()] for side in ("left", "right")}
    rows = {side: code_row.get_indexer(codes) for side, codes in shown.items()}
    not_in_key = sorted({c for side in shown for c in shown[side][rows[side] < 0].tolist()})
    if not_in_key:
        raise ScoreError(f"the key ({key_path}) and the rater folder ({folder.path}) belong to "
                         f"different sets: the worklists show codes that are not in the key: "
                         f"{_listing(not_in_key)}; give the key/ and rater/ folders of one set")
    seen = np.zeros(len(key), dtype=bool)
    for side in rows:
        seen[rows[side]] = True
    not_shown = sorted(key["code"].to_numpy()[~seen].tolist())
    if not_shown:
        raise ScoreError(f"the key ({key_path}) and the rater folder ({folder.path}) belong to "
                         f"different sets: the key has codes that no worklist shows: "
                         f"{_listing(not_shown)}; give the key/ and rater/ folders of one set")
    pair_items = set(folder.worklists.loc[folder.worklists["kind"] == "pair", "item"].tolist())
    unknown_pairs = sorted(pair_items - set(key["pair"].tolist()))
    if unknown_pairs:
        raise ScoreError(f"the key ({key_path}) and the rater folder ({folder.path}) belong to "
                         f"different sets: the worklists show pairs that are not in the key: "
                         f"{_listing(unknown_pairs)}; give the key/ and rater/ folders of one set")
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
                         f"code(s) {_listing(list(dict.fromkeys(bad)))} are of another region in "
                         "the key than in the worklists; give the key/ and rater/ folders of one set")
    return code_row


def _column(values) -> pd.Series | np.ndarray:
    """Text as an ``object`` column (pandas would convert it to its string type: slower here)."""
    values = np.asarray(values)
    return pd.Series(values, dtype=object, copy=False) if values.dtype == object else values


def _positions(values: np.ndarray, names: list[str]) -> np.ndarray:
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
    rater = _positions(ratings["rater"].to_numpy(), raters)
    listed_by = _positions(worklists["rater"].to_numpy(), raters)
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


def _check_ratings(folder: SetFolder, key: pd.DataFrame, code_row: pd.Index,
                   ratings: pd.DataFrame, source: str) -> pd.DataFrame:
    """Refuse ratings that do not fit the set; return them joined with their worklist items."""

    def where(rows: pd.DataFrame) -> str:
        if rows["line"].notna().any():
            return f"{source}: line {_listing(rows['line'].dropna().astype(int).tolist(), 5)}: "
        return f"{source}: "

    ratings = ratings.reset_index(drop=True)
    wl = folder.worklists
    row = _worklist_row(wl, ratings, code_row, folder.raters)
    misfit = ratings[row < 0]  # every refusal below is among these ratings
    known = set(folder.raters)
    stranger = misfit[~misfit["rater"].isin(known)]
    if len(stranger):
        raise ScoreError(f"{where(stranger)}rater(s) {_listing(sorted(set(stranger['rater'].tolist())))} "
                         f"have no worklist in this set (raters: {', '.join(sorted(known))}); these "
                         "ratings belong to another set")
    unknown = misfit
    if len(misfit):
        items = set(key["code"].tolist()) | (set(key["pair"].tolist()) - {""})
        unknown = misfit[~misfit["item"].isin(items)]
    if len(unknown):
        raise ScoreError(f"{where(unknown)}code(s) {_listing(unknown['item'].tolist())} are not in "
                         "the key; the ratings belong to another set or a code was mistyped — "
                         "correct the ratings file, never the key")
    if len(misfit):
        pairs = (misfit["rater"] + ":" + misfit["item"]).tolist()
        raise ScoreError(f"{where(misfit)}code(s) not in the rater's own worklist: "
                         f"{_listing(pairs)}; a rater can only rate the items of their worklist — "
                         "check the rater column")
    joined = ratings
    for col in ("kind", "scale", "region", "key_row"):  # what the joins below need
        joined[col] = _column(wl[col].to_numpy()[row])
    joined["wl_row"] = row
    assessed = joined["cannot_assess"].isna().to_numpy()
    single = (wl["kind"].to_numpy() == "single")[row]
    joined["single"] = single
    wrong_kind = assessed & np.where(single, joined["score"].isna().to_numpy(),
                                     joined["better"].isna().to_numpy())
    if wrong_kind.any():
        rows = joined[wrong_kind]
        raise ScoreError(f"{where(rows)}item(s) {_listing(rows['item'].tolist())}: single photos "
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
            raise ScoreError(f"{where(bad)}score(s) {_listing(values)} are not levels of "
                             f"{scale.name} ({', '.join(map(str, scale.values))}); correct the "
                             "ratings")
    return joined


# --------------------------------------------------------------------------------- join


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
        raise ScoreError(f"key.csv: pair(s) {_listing(incomplete)} lack a left or right photo; the "
                         "key is damaged — restore it from the coordinator's backup")
    baseline_left = both["timepoint_l"] == baseline
    baseline_right = both["timepoint_r"] == baseline
    bad = both.index[baseline_left == baseline_right].tolist()
    if bad:
        raise ScoreError(f"key.csv: pair(s) {_listing(bad)} do not show one {baseline} and one "
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


def _heads_digest(report: store.ChainReport) -> str:
    """A database on a server has no file to hash: the sha256 of its verified chain heads."""
    import hashlib
    import json

    heads = sorted([list(key), wl.head] for key, wl in report.worklists.items())
    return hashlib.sha256(json.dumps(heads, separators=(",", ":")).encode()).hexdigest()


def unblind(
    rater_dir: str | Path,
    key_dir: str | Path,
    *,
    db: str | Path | None = None,
    ratings: str | Path | None = None,
    participants: str | Path | None = None,
    allow_unlocked: bool = False,
    fingerprint: str | None = None,
) -> Unblinded:
    """Check the inputs and join ratings, worklists, key and arms into the long table.

    Exactly one of ``db`` (the ratings database) and ``ratings`` (a CSV of ratings made elsewhere)
    is given. Raises :class:`ScoreError` before anything is computed when the inputs do not fit,
    and :class:`assess.seal.SealError` when the folders do not match their seal or the seal is not
    signed by the key of ``fingerprint`` (when given).
    """
    if db is None and ratings is None:
        raise ScoreError("neither --db nor --ratings was given: give the ratings as --db FILE or "
                         "URL (the rating app's database) or as --ratings FILE.csv")
    if db is not None and ratings is not None:
        raise ScoreError("both --db and --ratings were given: give the ratings once, as --db FILE or "
                         "URL (the rating app's database) or as --ratings FILE.csv")
    key_dir, root = Path(key_dir), Path(rater_dir)
    meta = _read_meta(root)
    sealed = seal.verify(root, key_dir, fingerprint=fingerprint)
    # The worklists are parsed in another process while this one reads the ratings; a problem
    # with the ratings is reported after those of the set and the key, as if read after them.
    late: ScoreError | None = None
    key_error: ScoreError | None = None
    # The chains are verified in a third process meanwhile (ChainCheck); a broken chain is
    # reported before any problem found in ratings that may have been tampered with.
    checking = ChainCheck(db, str(meta["set_id"])) if db is not None and store.exists(db) else None
    chains = None
    try:
        with worklists.Reader(_worklist_paths(root, meta)) as reader:
            try:
                if db is not None:
                    rated, locks = read_ratings_db(db, str(meta["set_id"]))
                else:
                    rated, locks = read_ratings_csv(ratings), {}
            except ScoreError as exc:
                late = exc
            try:
                key, digest = read_key(key_dir, columns=SCORER_KEY_COLUMNS)
            except ScoreError as exc:
                key_error = exc
            folder = _read_set(root, meta, parsed=reader.result())
        if checking is not None:
            try:
                chains = checking.result()
            except ScoreError as exc:
                late = exc
    finally:
        if checking is not None:
            checking.child.close()
    if key_error is not None:
        raise key_error
    cal_key = calibration.read_key(key_dir, error=ScoreError)
    if cal_key is not None:
        folder = _without_calibration(folder, cal_key, key_dir)
    code_row = _check_key_against_set(folder, key, digest, key_dir)
    if late is not None:
        raise late
    cal_rows = None
    if cal_key is not None:
        cal_rows, rated = _calibration_ratings(cal_key, rated)
    sources = {str(root / "set.json"): sha256_file(root / "set.json"),
               str(key_dir / "key.csv"): digest}
    if sealed.seal_sha256:
        sources[str(key_dir / seal.SEAL_FILE)] = sealed.seal_sha256

    findings: list[Finding] = []
    chain_counts: dict[str, dict] = {}
    if db is not None:
        chain_counts = _chain_counts(chains)
        if chains.warnings:
            findings.append(Finding("unchained", "ratings saved before this version of assess "
                                    "chained them cannot be checked for changes",
                                    tuple(chains.warnings)))
        source = str(db)
        sources[str(db)] = _heads_digest(chains) if store.is_url(db) else sha256_file(Path(db))
        unlocked = [r for r in folder.raters if r not in locks]
        if unlocked:
            if not allow_unlocked:
                raise ScoreError(
                    f"worklist(s) of {', '.join(unlocked)} are not locked in {db}: the rater(s) "
                    "may still be rating. Ask them to submit (lock) their worklist, or pass "
                    "--allow-unlocked for an interim look")
            findings.append(Finding("unlocked", "worklists not locked (interim analysis: ratings "
                                                "may still change)", tuple(unlocked)))
    else:
        source = str(ratings)
        sources[str(ratings)] = sha256_file(Path(ratings))
    joined = _check_ratings(folder, key, code_row, rated, source)

    declared = _declared_timepoints(folder.meta, key_dir)
    timepoint_source = "key/study.toml"
    if declared is None:
        declared = timepoints_from_key(key)
        timepoint_source = "the row order of key.csv"
    if declared is None:
        timepoint_source = "their names: a baseline name first, the rest in natural order"
    timepoints = order_timepoints(key["timepoint"].unique().tolist(), declared)
    # One timepoint (a reliability or training study): no change to score; the reliability and
    # descriptive tables are still made, and a finding says why there is no change table.
    baseline = timepoints[0]

    # Arms.
    key_participants = sorted(set(key["participant"].unique().tolist()))
    if participants is not None:
        parts = read_participants(participants)
        sources[str(participants)] = sha256_file(Path(participants))
        arm_of = dict(zip(parts["participant"].tolist(), parts["arm"].tolist()))
        no_arm = [p for p in key_participants if p not in arm_of]
        if no_arm:
            raise ScoreError(f"{participants}: participant(s) {_listing(no_arm)} of the key have no "
                             "arm; add a row participant,arm for each")
        extra = sorted(set(arm_of) - set(key_participants))
        if extra:
            findings.append(Finding("participants", f"{len(extra)} participant(s) in {participants} "
                                    "have no photos in this set", tuple(extra)))
        arms = list(dict.fromkeys(parts["arm"]))
        arms = [a for a in arms if a in {arm_of[p] for p in key_participants}]
    else:
        arm_of = {p: DEFAULT_ARM for p in key_participants}
        arms = [DEFAULT_ARM]

    long = _long_table(joined, key, baseline, arm_of, timepoints)

    # Findings: unrated items, cannot assess, revisions, missing timepoints.
    has_rating = np.zeros(len(folder.worklists), dtype=bool)
    has_rating[joined["wl_row"].to_numpy()] = True
    left_out = folder.worklists[~has_rating].sort_values(["rater", "position"])
    unrated = (left_out["rater"] + ":" + left_out["item"]).tolist()
    if unrated:
        per = left_out["rater"].value_counts().sort_index()
        detail = "; ".join(f"{r} {n}" for r, n in per.items())
        findings.append(Finding("unrated", f"{len(unrated)} item(s) not rated ({detail})",
                                tuple(unrated)))
    ca = long[long["cannot_assess"]]
    if len(ca):
        reasons = ca["reason"].value_counts()
        detail = ", ".join(f"{r} {n}" for r, n in reasons.items())
        findings.append(Finding("cannot_assess", f"{len(ca)} rating(s) 'cannot assess' excluded "
                                f"({detail})", tuple((ca["rater"] + ":" + ca["item"]).tolist())))
    revised = joined[joined["revision"] > 1]
    if len(revised):
        findings.append(Finding("revised", f"{len(revised)} rating(s) were revised by the rater; "
                                "the latest revision is used",
                                tuple((revised["rater"] + ":" + revised["item"]).tolist())))
    missing = _missing_timepoints(joined, key, folder, timepoints) if len(timepoints) > 1 else []
    if len(timepoints) == 1:
        findings.append(Finding("single_timepoint", f"every photo is of timepoint {baseline!r}: "
                                "there is no change to test; the reliability and level-count "
                                "tables are given (a reliability or training study)"))
    if missing:
        findings.append(Finding("missing_timepoint", f"{len(missing)} participant × region × rater "
                                "series lack a timepoint and are left out of the paired tests",
                                tuple(missing)))

    counts = {
        "participants": len(key_participants),
        "photos": int((key["repeat_of"] == "").sum()),
        "repeats": int((key["repeat_of"] != "").sum()),
        "items": int(len(folder.worklists)),
        "ratings": int(len(long)),
        "raters": len(folder.raters),
        "unrated": len(unrated),
        "cannot_assess": int(len(ca)),
        "locks": dict(locks),
        "chains": chain_counts,
        "timepoint_order_from": timepoint_source,
    }
    photos = (key.loc[key["repeat_of"] == "", ["participant", "timepoint", "region", "view"]]
              .drop_duplicates().reset_index(drop=True))
    if cal_rows is not None:
        counts["calibration"] = int(len(cal_rows))
    return Unblinded(folder, digest, timepoints, long, arms, findings, counts, sources, sealed,
                     photos, cal_rows)


CALIBRATION_COLUMNS = ("rater", "position", "block", "code", "region", "view", "reference",
                       "score", "cannot_assess")


def _without_calibration(folder: SetFolder, cal_key: list[dict], key_dir: Path) -> SetFolder:
    """The rater folder without its calibration items, after checking that each one is where
    ``key/calibration.csv`` says (rater, code, position)."""
    wl = folder.worklists
    listed = set(zip(wl["rater"].tolist(), wl["item"].astype(object).tolist(),
                     (wl["position"] + 1).tolist()))
    wrong = [f"{r['rater']}:{r['code']}" for r in cal_key
             if (r["rater"], r["code"], r["position"]) not in listed]
    if wrong:
        raise ScoreError(f"{key_dir / calibration.KEY_FILE}: calibration photo(s) {_listing(wrong)} "
                         f"are not at that place of the rater's worklist in {folder.path}; give the "
                         "key/ and rater/ folders of one set")
    codes = {r["code"] for r in cal_key}
    keep = ~wl["item"].astype(object).isin(codes).to_numpy()
    return SetFolder(folder.path, folder.meta, folder.scales, folder.regions,
                     wl.loc[keep].reset_index(drop=True))


def _calibration_ratings(cal_key: list[dict], rated: pd.DataFrame
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(the calibration rows with each rater's current answer, the trial's ratings)``."""
    codes = {r["code"] for r in cal_key}
    is_cal = rated["item"].astype(object).isin(codes).to_numpy()
    answers = {(r.rater, r.item): r for r in rated.loc[is_cal].itertuples(index=False)}
    rows = []
    for r in cal_key:
        a = answers.get((r["rater"], r["code"]))
        score = np.nan if a is None or pd.isna(a.score) else float(a.score)
        reason = None if a is None or pd.isna(a.cannot_assess) else str(a.cannot_assess)
        rows.append((r["rater"], r["position"], r["block"], r["code"], r["region"], r["view"],
                     r["score"], score, reason))
    frame = pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))
    return frame, rated.loc[~is_cal].reset_index(drop=True)


def _scores(values: pd.Series):
    """Scores as nullable whole numbers, or as nullable floats once any is a half step or a VAS
    value (``assess.levels``)."""
    floats = values.astype("Float64")
    whole = bool(((floats.fillna(0) % 1) == 0).all())
    return floats.astype("Int64").array if whole else floats.array


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


def _long_table(joined: pd.DataFrame, key: pd.DataFrame, baseline: str, arm_of: dict,
                timepoints: tuple[str, ...]) -> pd.DataFrame:
    is_single = joined["single"].to_numpy()
    single = joined[is_single]
    k = single["key_row"].to_numpy()
    repeat_of = key["repeat_of"].to_numpy()[k]
    items = single["item"].to_numpy()
    n = len(single)
    nothing = np.full(n, None, dtype=object)
    parts = [{
        "participant": key["participant"].to_numpy()[k],
        "timepoint": key["timepoint"].to_numpy()[k],
        "region": single["region"].to_numpy(),
        "view": key["view"].to_numpy()[k],
        "scale": single["scale"].to_numpy(),
        "score": _scores(single["score"]),
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
    }]
    pairs = joined[~is_single]
    if len(pairs):
        table = _pairs_table(key, baseline).set_index("pair")
        info = table.reindex(pairs["item"])
        raw = pairs["better"].map(IMPROVEMENT)
        improvement = np.where(info["followup_side"].to_numpy() == "right", raw, -raw)
        identified = np.where(pairs["first"].to_numpy() == "cannot_tell", None,
                              pairs["first"].to_numpy() == info["baseline_side"].to_numpy())
        assessed = pairs["cannot_assess"].isna().to_numpy()
        first_pair = info["first_pair"].to_numpy(dtype=object)
        m = len(pairs)
        parts.append({
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
        })
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
            out[name] = _column(values[rows])
        else:
            out[name] = values[rows]
    return pd.DataFrame(out)


def _missing_timepoints(joined: pd.DataFrame, key: pd.DataFrame, folder: SetFolder,
                        timepoints: tuple[str, ...]) -> list[str]:
    """Participant × region × view × rater series without a usable rating at some timepoint.

    A series is what a rater's worklist holds of one participant's region (and view); a timepoint
    is missing when its photo was never taken, not rated, or rated "cannot assess".
    """
    if folder.presentation == "pairs":
        return []  # a pair holds both timepoints; unrated pairs are listed as unrated
    wl = folder.worklists
    # Number each series (rater, participant, region, view) so that numeric order is name order.
    unit_codes, unit_names = [], []
    for col in ("participant", "region", "view"):
        codes, uniques = pd.factorize(key[col].to_numpy(), sort=True)
        unit_codes.append(codes)
        unit_names.append(uniques)
    shape = [len(u) for u in unit_names]
    unit = np.ravel_multi_index(unit_codes, shape)
    n_units = int(np.prod(shape))
    raters = pd.Index(sorted(folder.raters))
    tp_codes, tp_names = pd.factorize(key["timepoint"].to_numpy())
    rank = {t: i for i, t in enumerate(timepoints)}
    tp = np.array([rank.get(t, -1) for t in tp_names], dtype="int64")[tp_codes]
    first = key["repeat_of"].to_numpy() == ""

    def series_of(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        k = rows["key_row"].to_numpy()
        keep = ((rows["kind"] == "single").to_numpy() & first[k])
        rater = _positions(rows["rater"].to_numpy()[keep], list(raters))
        return rater * n_units + unit[k[keep]], k[keep]

    series = np.unique(series_of(wl)[0])
    used, k = series_of(joined[joined["cannot_assess"].isna().to_numpy()])
    have = np.unique(used * len(timepoints) + tp[k])
    present = np.stack([np.isin(series * len(timepoints) + i, have)
                        for i in range(len(timepoints))], axis=1)
    out = []
    for row in np.flatnonzero(~present.all(axis=1)):
        rater, rest = divmod(int(series[row]), n_units)
        p, g, v = np.unravel_index(rest, shape)
        participant, region, view = unit_names[0][p], unit_names[1][g], unit_names[2][v]
        where = f"{region}/{view}" if view else region
        lacking = "/".join(t for i, t in enumerate(timepoints) if not present[row, i])
        out.append(f"{participant} {where} {raters[rater]}: no usable {lacking} rating")
    return out
