"""Photo discovery and validation: which raw photo belongs to which participant, visit and region.

:func:`discover` finds the photos of a study in an images folder, either by their names
(``<participant>_<timepoint>_<region>[_<view>].<ext>``) or from a manifest CSV
(``participant,timepoint,region,file[,view]``), and checks every one of them before anything is
written: it reads each header (:func:`assess.deid.probe`), hashes the bytes and refuses, with one
:class:`IngestError` that names every file concerned, unreadable, empty, truncated or non-image
files, decompression bombs, unknown timepoints or regions, the same photo in two slots, two files for
one slot and paths leaving the images folder. A participant without a photo at some timepoint is a
warning only. The same photo stored twice under other bytes (a re-saved copy) is caught after
de-identification by :func:`check_decoded`. A caller that decodes every photo anyway (the
randomizer) asks :func:`discover` for the headers only (``decode=False``) and refuses the photos its
decoder fails on with :func:`check_decoded`, in the same words, so no photo is decoded twice.

>>> parse_name("S1001_Baseline_FACE_left.JPG")
('S1001', 'Baseline', 'FACE', 'left')
>>> parse_name("S1001_month12_neck.heic")
('S1001', 'month12', 'neck', '')
>>> parse_name("notes.jpg") is None
True
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .csvfile import read_table
from .errors import AssessError
from .study import Study

__all__ = [
    "EXTENSIONS",
    "IngestError",
    "Photo",
    "Inventory",
    "discover",
    "parse_name",
    "check_pixel_duplicates",
    "check_decoded",
    "check_near_duplicates",
    "format_counts",
]

EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".heic", ".heif", ".hif")
"""Photo file types read by ``assess`` (any case); ``.jpe``/``.jfif`` are JPEG, ``.hif`` is HEIF."""

# Image types we do not read: a warning, so that a photo in such a format is not silently lost.
_OTHER_IMAGE_TYPES = (".webp", ".bmp", ".gif", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf",
                      ".rw2", ".raf", ".raw", ".jxl", ".avif", ".jp2", ".psd", ".mpo")

# Image files by their first bytes, whatever their name: JPEG, PNG, TIFF (both byte orders), GIF,
# WebP, ISO-BMFF (HEIF, AVIF), JPEG XL, JPEG 2000, Photoshop
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"GIF8", b"\xff\x0a",
                b"\x00\x00\x00\x0cJXL ", b"\x00\x00\x00\x0cjP  ", b"8BPS")

# \Z, not $: a name is matched whole ($ would also match before a trailing newline)
_PART = r"[A-Za-z0-9][A-Za-z0-9-]*"
_NAME_RE = re.compile(rf"(?P<participant>[A-Za-z0-9]+)_(?P<timepoint>{_PART})_(?P<region>{_PART})"
                      rf"(?:_(?P<view>{_PART}))?\Z")
_PARTICIPANT_RE = re.compile(r"[A-Za-z0-9]+\Z")
_VIEW_RE = re.compile(rf"(?:{_PART})?\Z")
MANIFEST_COLUMNS = ("participant", "timepoint", "region", "file")


class IngestError(AssessError):
    """Photos that cannot be used; ``problems`` lists ``(file, reason)`` for every one of them."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class Photo:
    """One raw photo in its slot (participant, timepoint, region, view).

    ``timepoint`` and ``region`` are spelled as in the study file; ``path`` is relative to the
    images folder.
    """

    participant: str
    timepoint: str
    region: str
    view: str
    path: Path
    sha256: str = ""
    width: int = 0  # after EXIF orientation
    height: int = 0
    format: str = ""
    frame: int | None = None  # the frame used of a multi-frame file (0 = first), from study.toml

    @property
    def slot(self) -> tuple[str, str, str, str]:
        return (self.participant, self.timepoint, self.region, self.view)

    @property
    def portrait(self) -> bool:
        return self.height > self.width


@dataclass
class Inventory:
    """The photos of a study found in an images folder, all checked, and the warnings."""

    images_dir: Path
    study: Study
    photos: list[Photo]
    warnings: list[str] = field(default_factory=list)
    manifest: Path | None = None

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of photos per ``(region, timepoint)``, every pair of the study included."""
        out = {(r, t): 0 for r in self.study.regions for t in self.study.timepoints}
        for p in self.photos:
            out[(p.region, p.timepoint)] += 1
        return out

    def source(self, photo: Photo) -> Path:
        """Absolute path of a photo."""
        return self.images_dir / photo.path

    @property
    def participants(self) -> list[str]:
        return sorted({p.participant for p in self.photos})


def parse_name(name: str) -> tuple[str, str, str, str] | None:
    """``(participant, timepoint, region, view)`` from a file name, or ``None`` if it does not fit
    ``<participant>_<timepoint>_<region>[_<view>].<ext>``. Case is kept as written."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        return None
    m = _NAME_RE.match(stem)
    if not m:
        return None
    return (m["participant"], m["timepoint"], m["region"], m["view"] or "")


def format_counts(inventory: Inventory) -> str:
    """The region × timepoint table printed before a set is built.

    >>> from assess.study import parse_study, TEMPLATE
    >>> inv = Inventory(Path("."), parse_study(TEMPLATE), [Photo("S1", "baseline", "face", "", Path("a"))])
    >>> print(format_counts(inv))
    region  baseline  month12
    face           1        0
    neck           0        0
    hands          0        0
    total          1        0
    """
    study = inventory.study
    counts = inventory.counts()
    regions = list(study.regions)
    first = max(len("region"), len("total"), *(len(r) for r in regions))
    widths = [max(len(t), 5) for t in study.timepoints]
    lines = ["  ".join(["region".ljust(first)] + [t.rjust(w) for t, w in zip(study.timepoints, widths)])]
    for r in regions:
        lines.append("  ".join([r.ljust(first)] + [str(counts[(r, t)]).rjust(w)
                                                    for t, w in zip(study.timepoints, widths)]))
    lines.append("  ".join(["total".ljust(first)] + [
        str(sum(counts[(r, t)] for r in regions)).rjust(w) for t, w in zip(study.timepoints, widths)]))
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------- discovery


def discover(images_dir: str | Path, study: Study, manifest: str | Path | None = None,
             workers: int | None = None, decode: bool = True) -> Inventory:
    """Find and check every photo of ``study`` in ``images_dir``.

    Parameters
    ----------
    images_dir
        The folder of raw photos. Without a manifest its files are read by name (sub-folders and
        files that are not photos, such as ``study.toml``, ``README.md`` or a manifest, are left
        alone); a file with a photo extension whose name does not fit the convention is an error.
    study
        The study: its timepoints and regions (matched case-insensitively).
    manifest
        Optional CSV with columns ``participant,timepoint,region,file[,view]``; ``file`` is
        relative to ``images_dir``. Only the files it lists are used.
    workers
        Threads reading file headers and hashing (default: one per core, at most 4).
    decode
        Decode every photo's compressed data too (JPEG at 1/8 scale), which finds truncated and
        corrupt data. ``False`` for a caller that decodes every photo itself right after (as
        :func:`assess.blind.randomize` does in its pixel pipeline) and refuses what fails there
        with :func:`check_decoded`: then only headers are read, unless some photo is refused
        already, in which case every other photo is decoded as well so that the one error names
        every file that cannot be used.

    Returns
    -------
    Inventory
        The photos sorted by participant, region, view and timepoint order, and the warnings.

    Raises
    ------
    IngestError
        once, naming every file that cannot be used and why; nothing has been written.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise IngestError(f"{images_dir}: no such folder; give the folder that holds the photos")
    problems: list[tuple[str, str]] = []
    warnings: list[str] = []
    if manifest is not None:
        manifest = Path(manifest)
        candidates = _from_manifest(manifest, images_dir, study, problems, warnings)
    else:
        candidates = _by_name(images_dir, study, problems, warnings)
    checked = _in_slots(candidates, images_dir, study, problems)
    # one thread per core, at most 4: hashing runs outside the GIL, and each further thread would
    # keep a C heap of its own (tens of MB) for the rest of the run
    threads = workers or max(1, min(4, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        looked = list(pool.map(lambda item: _look(item, decode), checked))
    photos, readable = _photos(study, looked, problems)
    _clashes(photos, readable, problems)
    if problems and not decode:
        # refused anyway: decode the photos whose headers were fine, so that this one error also
        # names the truncated and corrupt ones
        headers_ok = [item for item, info, _ in looked if info is not None]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for item, info, why in pool.map(lambda it: _look(it, True), headers_ok):
                if info is None:
                    problems.append((item[4], why))
    if problems:
        raise _error(images_dir, problems)
    if not photos:
        raise IngestError(f"{images_dir}: no photos found; name them <participant>_<timepoint>_"
                          f"<region>[_<view>].<ext> ({', '.join(EXTENSIONS)}) or give a manifest")

    order = {t: i for i, t in enumerate(study.timepoints)}
    photos.sort(key=lambda p: (p.participant, p.region, p.view, order[p.timepoint], str(p.path)))
    warnings.extend(_missing(photos, study))
    warnings.extend(_case_clashes(photos))
    warnings.extend(_unused_settings(study, {p.path.as_posix() for p in readable}))
    return Inventory(images_dir, study, photos, warnings, manifest)


def _from_manifest(manifest: Path, images_dir: Path, study: Study, problems: list[tuple[str, str]],
                   warnings: list[str]) -> list[tuple[str, str, str, str, str]]:
    """The photos a manifest lists (participant, timepoint, region, view, file), each once; the
    photo files it leaves out are a warning."""
    candidates: list[tuple[str, str, str, str, str]] = []  # participant, tp, region, view, rel
    rows = _read_manifest(manifest)
    for line, row in rows:
        where = f"{manifest.name} line {line}"
        rel = row["file"].strip()
        participant = row["participant"].strip()
        view = (row.get("view") or "").strip()
        if not rel:
            problems.append((where, "no file given"))
            continue
        if not _PARTICIPANT_RE.match(participant):
            problems.append((f"{rel} ({where})", f"participant {participant!r} must be letters "
                             "and digits only"))
            continue
        if not _VIEW_RE.match(view):
            problems.append((f"{rel} ({where})", f"view {view!r} must be letters, digits and "
                             "dashes"))
            continue
        candidates.append((participant, row["timepoint"].strip(), row["region"].strip(), view,
                           rel))
    seen: dict[str, int] = {}
    unique = []
    for cand in candidates:
        norm = os.path.normpath(cand[4])
        seen[norm] = seen.get(norm, 0) + 1
        if seen[norm] == 1:
            unique.append(cand)
    for norm, times in seen.items():
        if times > 1:
            problems.append((norm, f"listed {times} times in {manifest.name}; list each photo "
                             "once"))
    candidates = unique
    listed = {os.path.normpath(c[4]) for c in candidates}
    unlisted = [rel for rel in _image_files(images_dir, _reference_folders(study))
                if os.path.normpath(rel) not in listed]
    if unlisted:
        warnings.append(f"{len(unlisted)} photo file(s) in {images_dir} are not in the manifest "
                        f"and are left out: {_some(unlisted)}")
    return candidates


def _in_slots(candidates: list[tuple[str, str, str, str, str]], images_dir: Path, study: Study,
              problems: list[tuple[str, str]]) -> list[tuple[str, str, str, str, str, Path, bool]]:
    """The candidates with the study's names of their timepoint and region, a path inside the
    folder and whether their slot is known.

    A file in an unknown slot is still read and hashed, so that one run reports everything
    wrong with it.
    """
    root = images_dir.resolve()
    timepoints = {t.lower(): t for t in study.timepoints}
    regions = {r.lower(): r for r in study.regions}
    checked: list[tuple[str, str, str, str, str, Path, bool]] = []
    for participant, tp_raw, region_raw, view, rel in candidates:
        tp = timepoints.get(tp_raw.lower())
        region = regions.get(region_raw.lower())
        bad = []
        if tp is None:
            bad.append(f"unknown timepoint {tp_raw!r}; the study's timepoints are "
                       f"{', '.join(study.timepoints)}")
        if region is None:
            bad.append(f"unknown region {region_raw!r}; the study's regions are "
                       f"{', '.join(study.regions)}")
        if bad:
            problems.append((rel, "; ".join(bad) + " (fix the name or the study file)"))
        path, why = _inside(root, images_dir, rel)
        if path is None:
            problems.append((rel, why))
            continue
        if not rel.lower().endswith(EXTENSIONS):
            problems.append((rel, f"not a photo type assess reads ({', '.join(EXTENSIONS)})"))
            continue
        checked.append((participant, tp or tp_raw, region or region_raw, view, rel, path, not bad))

    return checked


def _look(item: tuple, full: bool):
    """``(item, what deid.probe reads of its file, None)``, or ``(item, None, why not)``."""
    from . import deid

    try:
        return item, deid.probe(item[5], full=full), None
    except deid.DeidError as exc:
        return item, None, _reason(str(exc), item[5])


def _photos(study: Study, looked: list, problems: list[tuple[str, str]]
            ) -> tuple[list[Photo], list[Photo]]:
    """``(the photos of known slots, every readable photo)`` from the probed files."""
    photos: list[Photo] = []
    readable: list[Photo] = []
    for (participant, tp, region, view, rel, _path, valid), info, why in looked:
        if info is None:
            problems.append((rel, why))
            continue
        frame, width, height, why = _frame(study, rel, info)
        if why:
            problems.append((rel, why))
            continue
        photo = Photo(participant, tp, region, view, Path(rel), info.bytes_sha256, width, height,
                      info.format, frame)
        readable.append(photo)
        if valid:
            photos.append(photo)
    return photos, readable


def _clashes(photos: list[Photo], readable: list[Photo], problems: list[tuple[str, str]]) -> None:
    """Two files for one slot; one photo (same bytes) in two slots."""
    by_slot: dict[tuple, list[Photo]] = defaultdict(list)
    for p in photos:
        by_slot[p.slot].append(p)
    for slot, group in by_slot.items():
        if len(group) > 1:
            names = sorted(str(p.path) for p in group)
            for name in names:
                problems.append((name, f"{_slot_text(slot)} has {len(group)} files "
                                 f"({', '.join(names)}); keep one"))
    by_hash: dict[str, list[Photo]] = defaultdict(list)
    for p in readable:
        by_hash[p.sha256].append(p)
    for group in by_hash.values():
        if len({p.slot for p in group}) > 1:
            names = sorted(str(p.path) for p in group)
            for name in names:
                problems.append((name, f"the same photo (identical bytes) as "
                                 f"{', '.join(n for n in names if n != name)}; one photo cannot be "
                                 "in two slots — replace the wrong copy with the right photo"))


def check_pixel_duplicates(photos: Sequence[Photo], pixel_sha256: Sequence[str]) -> None:
    """Refuse the same pixels in two slots (a photo saved twice under other bytes).

    ``pixel_sha256[i]`` is the hash of ``photos[i]``'s decoded pixels
    (:attr:`assess.deid.Result.pixel_sha256`).

    Raises
    ------
    IngestError
        naming every file concerned.
    """
    check_decoded(None, photos, pixel_sha256)


def check_decoded(images_dir: str | Path | None, photos: Sequence[Photo],
                  pixel_sha256: Sequence[str | None], failures: dict[int, str] | None = None, *,
                  fingerprints: Sequence | None = None, study: Study | None = None) -> list[str]:
    """Refuse, after decoding, the photos that could not be decoded, the same pixels in two slots
    and near-duplicates, in one error naming every file concerned.

    For a caller that read only the headers in :func:`discover` (``decode=False``) and then
    decoded every photo: ``failures`` maps the index of each photo that failed to its reason (the
    :class:`assess.deid.DeidError` message; a leading ``<path>: `` is dropped), and
    ``pixel_sha256[i]`` is the pixel hash of ``photos[i]`` (``None`` for a failed one).
    ``fingerprints[i]`` (:attr:`assess.deid.Result.fingerprint`, optional) lets the photos of one
    participant, region and view at different timepoints be compared
    (:func:`check_near_duplicates`); pairs listed in the study's ``[photos] distinct`` pass with a
    warning.

    >>> check_decoded("images", [Photo("S1", "baseline", "face", "", Path("S1_baseline_face.jpg"))],
    ...               [None], {0: "images/S1_baseline_face.jpg: the image data is truncated"})
    Traceback (most recent call last):
    ...
    assess.ingest.IngestError: images: 1 photo file(s) cannot be used; nothing was written. Fix or remove them and run again:
      S1_baseline_face.jpg: the image data is truncated

    Returns
    -------
    list of str
        Warnings: near-duplicate pairs let pass by ``[photos] distinct``.

    Raises
    ------
    IngestError
        naming every file concerned.
    """
    problems = []
    root = Path(images_dir) if images_dir is not None else None
    for i, why in sorted((failures or {}).items()):
        photo = photos[i]
        full = root / photo.path if root is not None else photo.path
        problems.append((str(photo.path), _reason(why, full)))
    groups: dict[str, list[Photo]] = defaultdict(list)
    for photo, digest in zip(photos, pixel_sha256, strict=True):
        if digest is not None:
            groups[digest].append(photo)
    identical: set[frozenset[str]] = set()
    for group in groups.values():
        if len({p.slot for p in group}) > 1:
            names = sorted(str(p.path) for p in group)
            identical.update(frozenset((a, b)) for a in names for b in names if a != b)
            for name in names:
                problems.append((name, f"the same photo (identical pixels) as "
                                 f"{', '.join(n for n in names if n != name)}; one photo cannot be "
                                 "in two slots — replace the wrong copy with the right photo"))
    warnings: list[str] = []
    if fingerprints is not None:
        near, warnings = check_near_duplicates(photos, fingerprints, study, skip=identical)
        problems += near
    if problems:
        raise _error(root, problems)
    return warnings


def check_near_duplicates(photos: Sequence[Photo], fingerprints: Sequence, study: Study | None = None,
                          skip: set[frozenset[str]] = frozenset(), workers: int = 2
                          ) -> tuple[list[tuple[str, str]], list[str]]:
    """Compare the photos of each participant, region and view across timepoints and find the same
    photo re-encoded, resized, cropped a little or brightened (a follow-up "filled in" from the
    baseline).

    Two photos of one participant, region and view at different timepoints whose
    :func:`assess.deid.similarity` reaches :data:`assess.deid.NEAR_DUPLICATE` are a problem naming
    both, unless the study lists the pair in ``[photos] distinct`` (then a warning). ``None``
    fingerprints (photos that failed) are left out.

    Returns
    -------
    (problems, warnings)
        ``problems`` as ``(file, reason)`` for :class:`IngestError`; ``warnings`` for the pairs
        let pass.
    """
    from . import deid

    by_group: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, (photo, fp) in enumerate(zip(photos, fingerprints, strict=True)):
        if fp is not None:
            by_group[(photo.participant, photo.region, photo.view)].append(i)
    pairs = [(i, j) for members in by_group.values() for n, i in enumerate(members)
             for j in members[n + 1:] if photos[i].slot != photos[j].slot
             and frozenset((str(photos[i].path), str(photos[j].path))) not in skip]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        scores = list(pool.map(lambda ij: deid.similarity(fingerprints[ij[0]], fingerprints[ij[1]]),
                               pairs))
    problems: list[tuple[str, str]] = []
    warnings: list[str] = []
    for (i, j), score in zip(pairs, scores):
        if score < deid.NEAR_DUPLICATE:
            continue
        a, b = photos[i].path.as_posix(), photos[j].path.as_posix()
        if study is not None and study.photos.is_distinct(a, b):
            warnings.append(f"{a} and {b} look like the same photo (similarity {score:.2f}) and are "
                            "kept as different photos, as [photos] distinct in the study file says")
            continue
        for name, other in ((a, b), (b, a)):
            problems.append((name, f"looks like the same photo as {other} (re-saved, resized or "
                             f"cropped; similarity {score:.2f}, limit {deid.NEAR_DUPLICATE:.2f}): "
                             "replace the wrong copy with the photo taken at that visit, or, if both "
                             "are genuine photos, list them in study.toml: [photos] distinct = "
                             f"[[\"{a}\", \"{b}\"]]"))
    return problems, warnings


# --------------------------------------------------------------------------- every file accounted for


def _by_name(images_dir: Path, study: Study, problems: list[tuple[str, str]],
             warnings: list[str]) -> list[tuple[str, str, str, str, str]]:
    """The photos of the top of ``images_dir`` by their names; every other file is accounted for.

    A file with a photo extension is a candidate or refused (its name does not fit, or has a space
    or invisible character at its start or end). Hidden files, image types assess does not read,
    images without a photo extension and sub-folders holding photos are named in a warning; an
    image without a photo extension whose name fits a slot is refused. Files that are not images
    (``study.toml``, ``participants.csv``, a README, notes) are left without a word.
    """
    candidates: list[tuple[str, str, str, str, str]] = []
    unread: list[str] = []
    hidden: list[str] = []
    unnamed: list[str] = []
    folders: list[str] = []
    refs = _reference_folders(study)
    example = f"P07_{study.baseline}_{next(iter(study.regions))}.jpg"
    for entry in _entries(images_dir):
        name, path = entry.name, Path(entry.path)
        shown = _shown(name)
        if _is_dir(entry):
            count = 0 if name.startswith(".") else _photos_below(path, refs)
            if count:
                folders.append(f"{shown}/ ({count})")
            continue
        lower = name.lower().strip()
        image_ext = lower.endswith(EXTENSIONS + _OTHER_IMAGE_TYPES)
        if name.startswith("."):
            if image_ext or _looks_like_image(path):
                hidden.append(shown)
            continue
        if name != name.strip() or not name.isprintable():
            if image_ext or _looks_like_image(path):
                problems.append((shown, "the name has a space or an invisible character in it "
                                 f"(at its start or end); rename it, e.g. to {_clean(name)!r}"))
            continue
        if lower.endswith(EXTENSIONS):
            parsed = parse_name(name)
            if parsed is None:
                problems.append((name, "the name does not fit <participant>_<timepoint>_<region>"
                                 "[_<view>].<ext> (participant: letters and digits; e.g. "
                                 f"{example}); rename it, list the photos in a manifest "
                                 "(--manifest), or move it out of the folder"))
            else:
                candidates.append((*parsed, name))
        elif lower.endswith(_OTHER_IMAGE_TYPES):
            unread.append(name)
        elif _looks_like_image(path):
            if parse_name(name.split(".")[0] + ".x") is not None:
                problems.append((name, "an image without a photo extension; rename it to end in "
                                 f"{', '.join(EXTENSIONS[:2])}, … as its format is, or move it out "
                                 "of the folder"))
            else:
                unnamed.append(name)
    if unread:
        warnings.append(f"{len(unread)} file(s) of an image type assess does not read are left "
                        f"out: {_some(unread)}; export them as JPEG, PNG, TIFF or HEIC if they "
                        "are trial photos")
    if unnamed:
        warnings.append(f"{len(unnamed)} file(s) hold an image but have no photo extension and are "
                        f"left out: {_some(unnamed)}; give them their extension and a "
                        "<participant>_<timepoint>_<region> name if they are trial photos")
    if hidden:
        warnings.append(f"{len(hidden)} hidden file(s) are left out: {_some(hidden)}")
    if folders:
        warnings.append(f"photos in {len(folders)} sub-folder(s) are left out (only the top of "
                        f"{images_dir} is read by name): {_some(folders)}; move them up or list "
                        "them in a manifest (--manifest)")
    return candidates


def _frame(study: Study, rel: str, info) -> tuple[int | None, int, int, str]:
    """``(frame index or None, width, height, problem)`` of a photo: a multi-frame file needs its
    frame named in ``[photos] frames``."""
    chosen = study.photos.frame_of(Path(rel).as_posix())
    frames = info.frames
    if not frames:
        if chosen not in (None, 1):
            return None, 0, 0, (f"has one frame, so frame {chosen} does not exist; fix [photos] "
                                "frames in study.toml")
        return (0 if chosen else None), info.width, info.height, ""
    listed = ", ".join(f"{i}: {w}x{h}" if w else f"{i}: ?" for i, (w, h) in enumerate(frames, 1))
    if chosen is None:
        return None, 0, 0, (f"holds {len(frames)} frames ({listed}); say which is the photo in "
                            f"study.toml: [photos] frames = {{\"{Path(rel).as_posix()}\" = 1}}, "
                            "or save that frame alone")
    if chosen > len(frames):
        return None, 0, 0, (f"has {len(frames)} frames ({listed}), so frame {chosen} does not "
                            "exist; fix [photos] frames in study.toml")
    w, h = frames[chosen - 1]
    if info.orientation in (5, 6, 7, 8):
        w, h = h, w
    return chosen - 1, w, h, ""


def _unused_settings(study: Study, files: set[str]) -> list[str]:
    """Warnings for ``[photos]`` settings that name no photo of the folder (a typo, a renamed file)."""
    names = sorted({n for n in study.photos.frames if n not in files}
                   | {n for pair in study.photos.distinct for n in pair if n not in files})
    if not names:
        return []
    return [f"[photos] in the study file names {len(names)} file(s) that are not photos of the "
            f"folder: {_some(names)}; check the names"]


def _shown(name: str) -> str:
    """A file name as printed: quoted when it has spaces at its ends or invisible characters."""
    return name if name == name.strip() and name.isprintable() else repr(name)


def _clean(name: str) -> str:
    return "".join(ch for ch in name if ch.isprintable()).strip()


def _looks_like_image(path: Path) -> bool:
    """Whether the file's first bytes are those of an image format, whatever its name."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return (head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
            or (head[4:8] == b"ftyp" and head[8:12] in _BMFF_IMAGE_BRANDS))


_BMFF_IMAGE_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
                      b"avif", b"avis")


def _reference_folders(study: Study) -> set[Path]:
    out = set()
    for region in study.regions.values():
        if region.references is not None:
            try:
                out.add(Path(region.references).resolve())
            except (OSError, RuntimeError):
                continue
    return out | _reference_photo_folders(study)


def _reference_photo_folders(study: Study) -> set[Path]:
    """The folders of the ``[reference] photos`` (training and calibration photos are not trial
    photos); the CSV itself is checked by :mod:`assess.reference`."""
    import csv

    if study.reference is None:
        return set()
    root = study.path.parent if study.path is not None else Path(".")
    out = set()
    try:
        with open(study.reference, newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                name = next((v for k, v in row.items() if (k or "").strip().lower() == "file"), "")
                if name and name.strip():
                    out.add((root / name.strip()).parent.resolve())
    except (OSError, UnicodeDecodeError, csv.Error, RuntimeError):
        return set()
    return out


def _image_files(images_dir: Path, refs: set[Path]) -> list[str]:
    """Paths (relative, ``/``) of every image file under ``images_dir`` outside hidden and
    reference folders: by extension, and at the top also by content."""
    found = []
    for entry in _entries(images_dir):
        if entry.name.startswith("."):
            continue
        if _is_dir(entry):
            found += _photos_below(Path(entry.path), refs, names=True)
        elif (entry.name.lower().strip().endswith(EXTENSIONS + _OTHER_IMAGE_TYPES)
              or _looks_like_image(Path(entry.path))):
            found.append(entry.name)
    return found


def _photos_below(folder: Path, refs: set[Path], names: bool = False):
    """Image files (by extension) under a sub-folder, outside hidden and reference folders: their
    number, or with ``names`` their paths relative to the folder's parent."""
    found = []
    base = folder.parent
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        try:
            if Path(top).resolve() in refs:
                continue
        except (OSError, RuntimeError):
            continue
        for f in sorted(files):
            if not f.startswith(".") and f.lower().strip().endswith(EXTENSIONS + _OTHER_IMAGE_TYPES):
                found.append(Path(top, f).relative_to(base).as_posix())
        if len(found) > 10000:
            break
    return found if names else len(found)


# --------------------------------------------------------------------------- helpers


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise IngestError(f"{folder}: cannot list the folder ({exc.strerror})") from None


def _is_dir(entry: os.DirEntry) -> bool:
    """A folder (a link that cannot be followed, a loop, counts as a file: named, never a
    traceback)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _read_manifest(path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` of each photo listed; any other column is allowed and left unread."""
    table = read_table(path, MANIFEST_COLUMNS, error=IngestError, fold_case=True,
                       what="manifest")
    return list(table.records())


def _inside(root: Path, images_dir: Path, rel: str) -> tuple[Path | None, str]:
    """The file's path if it stays inside the images folder (after links), else the reason."""
    if os.path.isabs(rel) or re.match(r"^[A-Za-z]:[\\/]", rel) or rel.startswith("\\"):
        return None, "an absolute path; give the path relative to the images folder"
    parts = Path(rel.replace("\\", "/")).parts
    if ".." in parts:
        return None, "the path leaves the images folder (..); copy the photo into the folder"
    path = images_dir / Path(*parts)
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        if path.is_symlink():
            return None, "a symbolic link to a file that does not exist"
        return None, "no such file in the images folder"
    except (OSError, RuntimeError) as exc:
        return None, f"cannot follow the path ({exc})"
    if real != root and root not in real.parents:
        return None, (f"a link that leaves the images folder (to {real}); copy the photo into the "
                      "folder instead")
    if not real.is_file():
        return None, "not a file"
    return path, ""


def _reason(message: str, path: Path) -> str:
    """A deid message without the leading path (the list names the file already)."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _slot_text(slot: tuple[str, str, str, str]) -> str:
    participant, tp, region, view = slot
    return f"participant {participant}, {tp}, {region}" + (f", view {view}" if view else "")


def _some(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _error(images_dir: Path | None, problems: list[tuple[str, str]]) -> IngestError:
    problems = sorted(set(problems))
    files = len({f for f, _ in problems})
    where = f"{images_dir}: " if images_dir is not None else ""
    head = (f"{where}{files} photo file(s) cannot be used; nothing was written. Fix or remove them "
            "and run again:")
    return IngestError(head + "".join(f"\n  {f}: {why}" for f, why in problems), problems)


def _missing(photos: Iterable[Photo], study: Study) -> list[str]:
    have: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for p in photos:
        have[(p.participant, p.region, p.view)].add(p.timepoint)
    out = []
    for (participant, region, view), tps in sorted(have.items()):
        lacking = [t for t in study.timepoints if t not in tps]
        if lacking:
            what = region + (f" ({view})" if view else "")
            out.append(f"participant {participant} has no {what} photo at {', '.join(lacking)}")
    return out


def _case_clashes(photos: Iterable[Photo]) -> list[str]:
    spelled: dict[str, set[str]] = defaultdict(set)
    for p in photos:
        spelled[p.participant.lower()].add(p.participant)
    return [f"participant ids {' and '.join(sorted(s))} differ only in case; they are treated as "
            "different participants" for s in spelled.values() if len(s) > 1]
