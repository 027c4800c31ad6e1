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

Each step has its module: :mod:`.folder` reads the rater folder, :mod:`.readers` the key and a
ratings CSV, :mod:`.ratings_db` the ratings database and its chains, :mod:`.checks` proves that
they belong together, :mod:`.timepoints` orders the visits, :mod:`.arms` reads the participants
file, :mod:`.long` joins the long table, :mod:`.findings` lists what the statistician must see;
:mod:`.calibration` takes the hidden calibration photos out. Here they run in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import calibration as calibration_key, seal, store, worklists
from .arms import assign_arms, read_participants
from .calibration import CALIBRATION_COLUMNS, calibration_ratings, without_calibration
from .checks import check_key_against_set, check_ratings
from .errors import ScoreError
from .findings import Finding, join_findings
from .folder import SetFolder, read_folder, read_meta, read_set, worklist_paths
from .long import IMPROVEMENT, LONG_COLUMNS, long_table
from .ratings_db import ChainCheck, chain_counts, heads_digest, read_ratings_db, verify_ratings_db
from .readers import SCORER_KEY_COLUMNS, read_key, read_ratings_csv, sha256_file
from .timepoints import order_timepoints, study_order, timepoints_from_key

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
    "timepoints_from_key",
    "sha256_file",
    "CALIBRATION_COLUMNS",
]


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


@dataclass
class _Inputs:
    """The set, the key and the ratings, read and proven to belong together."""

    folder: SetFolder
    key: pd.DataFrame
    digest: str
    code_row: pd.Index
    rated: pd.DataFrame
    locks: dict
    chains: store.ChainReport | None
    calibration: pd.DataFrame | None


def _read_inputs(root: Path, meta: dict, key_dir: Path, db: str | Path | None,
                 ratings: str | Path | None) -> _Inputs:
    """Read the rater folder, the key and the ratings side by side and check that the key
    belongs to the folder; the hidden calibration photos are taken out of both."""
    # The worklists are parsed in another process while this one reads the ratings; a problem
    # with the ratings is reported after those of the set and the key, as if read after them.
    late: ScoreError | None = None
    key_error: ScoreError | None = None
    # The chains are verified in a third process meanwhile (ChainCheck); a broken chain is
    # reported before any problem found in ratings that may have been tampered with.
    checking = ChainCheck(db, str(meta["set_id"])) if db is not None and store.exists(db) else None
    chains = None
    try:
        with worklists.Reader(worklist_paths(root, meta)) as reader:
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
            folder = read_folder(root, meta, parsed=reader.result())
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
    cal_key = calibration_key.read_key(key_dir, error=ScoreError)
    if cal_key is not None:
        folder = without_calibration(folder, cal_key, key_dir)
    code_row = check_key_against_set(folder, key, digest, key_dir)
    if late is not None:
        raise late
    cal_rows = None
    if cal_key is not None:
        cal_rows, rated = calibration_ratings(cal_key, rated)
    return _Inputs(folder, key, digest, code_row, rated, locks, chains, cal_rows)


def _ratings_source(inputs: _Inputs, db: str | Path | None, ratings: str | Path | None,
                    allow_unlocked: bool, sources: dict, findings: list[Finding]) -> str:
    """Name the ratings' source and record its hash in ``sources``; for a database, refuse
    unlocked worklists (unless ``allow_unlocked``) and note unchained and unlocked ones."""
    if db is None:
        sources[str(ratings)] = sha256_file(Path(ratings))
        return str(ratings)
    chains = inputs.chains
    if chains.warnings:
        findings.append(Finding("unchained", "ratings saved before this version of assess "
                                "chained them cannot be checked for changes",
                                tuple(chains.warnings)))
    sources[str(db)] = heads_digest(chains) if store.is_url(db) else sha256_file(Path(db))
    unlocked = [r for r in inputs.folder.raters if r not in inputs.locks]
    if unlocked:
        if not allow_unlocked:
            raise ScoreError(
                f"worklist(s) of {', '.join(unlocked)} are not locked in {db}: the rater(s) "
                "may still be rating. Ask them to submit (lock) their worklist, or pass "
                "--allow-unlocked for an interim look")
        findings.append(Finding("unlocked", "worklists not locked (interim analysis: ratings "
                                            "may still change)", tuple(unlocked)))
    return str(db)


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
    meta = read_meta(root)
    sealed = seal.verify(root, key_dir, fingerprint=fingerprint)
    inputs = _read_inputs(root, meta, key_dir, db, ratings)
    folder, key = inputs.folder, inputs.key
    sources = {str(root / "set.json"): sha256_file(root / "set.json"),
               str(key_dir / "key.csv"): inputs.digest}
    if sealed.seal_sha256:
        sources[str(key_dir / seal.SEAL_FILE)] = sealed.seal_sha256

    findings: list[Finding] = []
    source = _ratings_source(inputs, db, ratings, allow_unlocked, sources, findings)
    joined = check_ratings(folder, key, inputs.code_row, inputs.rated, source)
    # One timepoint (a reliability or training study): no change to score; the reliability and
    # descriptive tables are still made, and a finding says why there is no change table.
    timepoints, timepoint_source = study_order(key, key_dir)

    key_participants = sorted(set(key["participant"].unique().tolist()))
    arm_of, arms, extra = assign_arms(participants, key_participants)
    if participants is not None:
        sources[str(participants)] = sha256_file(Path(participants))
    if extra:
        findings.append(Finding("participants", f"{len(extra)} participant(s) in {participants} "
                                "have no photos in this set", tuple(extra)))

    long = long_table(joined, key, timepoints[0], arm_of, timepoints)
    found, unrated, ca = join_findings(folder, joined, long, key, timepoints)
    findings += found
    counts = {
        "participants": len(key_participants),
        "photos": int((key["repeat_of"] == "").sum()),
        "repeats": int((key["repeat_of"] != "").sum()),
        "items": int(len(folder.worklists)),
        "ratings": int(len(long)),
        "raters": len(folder.raters),
        "unrated": len(unrated),
        "cannot_assess": int(len(ca)),
        "locks": dict(inputs.locks),
        "chains": chain_counts(inputs.chains) if db is not None else {},
        "timepoint_order_from": timepoint_source,
    }
    photos = (key.loc[key["repeat_of"] == "", ["participant", "timepoint", "region", "view"]]
              .drop_duplicates().reset_index(drop=True))
    if inputs.calibration is not None:
        counts["calibration"] = int(len(inputs.calibration))
    return Unblinded(folder, inputs.digest, timepoints, long, arms, findings, counts, sources,
                     sealed, photos, inputs.calibration)
