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
    "format_counts",
]

EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".heif")
"""Photo file types read by ``assess`` (any case)."""

# Image types we do not read: a warning, so that a photo in such a format is not silently lost.
_OTHER_IMAGE_TYPES = (".webp", ".bmp", ".gif", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf",
                      ".rw2", ".raf", ".raw", ".jxl", ".avif", ".jp2", ".psd", ".mpo")

_PART = r"[A-Za-z0-9][A-Za-z0-9-]*"
_NAME_RE = re.compile(rf"^(?P<participant>[A-Za-z0-9]+)_(?P<timepoint>{_PART})_(?P<region>{_PART})"
                      rf"(?:_(?P<view>{_PART}))?$")
_PARTICIPANT_RE = re.compile(r"^[A-Za-z0-9]+$")
_VIEW_RE = re.compile(rf"^(?:{_PART})?$")
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
    from . import deid

    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise IngestError(f"{images_dir}: no such folder; give the folder that holds the photos")
    root = images_dir.resolve()
    timepoints = {t.lower(): t for t in study.timepoints}
    regions = {r.lower(): r for r in study.regions}
    problems: list[tuple[str, str]] = []
    warnings: list[str] = []
    candidates: list[tuple[str, str, str, str, str]] = []  # participant, tp, region, view, rel

    if manifest is not None:
        manifest = Path(manifest)
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
        unlisted = sorted(e.name for e in _entries(images_dir) if _file_like(e)
                          and e.name.lower().endswith(EXTENSIONS) and e.name not in listed)
        if unlisted:
            warnings.append(f"{len(unlisted)} photo file(s) in {images_dir} are not in the manifest "
                            f"and are left out: {_some(unlisted)}")
    else:
        ignored: list[str] = []
        hidden: list[str] = []
        for entry in _entries(images_dir):
            name = entry.name
            lower = name.lower()
            if not lower.endswith(EXTENSIONS):
                if lower.endswith(_OTHER_IMAGE_TYPES):
                    ignored.append(name)
                continue
            if name.startswith("."):
                hidden.append(name)
                continue
            if entry.is_dir(follow_symlinks=False):
                continue
            parsed = parse_name(name)
            if parsed is None:
                problems.append((name, "the name does not fit <participant>_<timepoint>_<region>"
                                 "[_<view>].<ext> (participant: letters and digits; e.g. "
                                 f"P07_{study.baseline}_{next(iter(study.regions))}.jpg); rename it, "
                                 "list the photos in a manifest (--manifest), or move it out of the "
                                 "folder"))
                continue
            candidates.append((*parsed, name))
        if ignored:
            warnings.append(f"{len(ignored)} file(s) of an image type assess does not read are left "
                            f"out: {_some(ignored)}; export them as JPEG, PNG, TIFF or HEIC if they "
                            "are trial photos")
        if hidden:
            warnings.append(f"{len(hidden)} hidden file(s) are left out: {_some(hidden)}")

    # Slot names, paths inside the folder. A file in an unknown slot is still read and hashed,
    # so that one run reports everything wrong with it.
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

    # Read every header and hash every file (I/O bound: threads)
    def look(item, full=decode):
        try:
            return item, deid.probe(item[5], full=full), None
        except deid.DeidError as exc:
            return item, None, _reason(str(exc), item[5])

    # one thread per core, at most 4: hashing runs outside the GIL, and each further thread would
    # keep a C heap of its own (tens of MB) for the rest of the run
    threads = workers or max(1, min(4, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        looked = list(pool.map(look, checked))
    photos: list[Photo] = []
    readable: list[Photo] = []
    for (participant, tp, region, view, rel, _path, valid), info, why in looked:
        if info is None:
            problems.append((rel, why))
            continue
        photo = Photo(participant, tp, region, view, Path(rel), info.bytes_sha256, info.width,
                      info.height, info.format)
        readable.append(photo)
        if valid:
            photos.append(photo)

    # Two files for one slot; one photo (same bytes) in two slots
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

    if problems and not decode:
        # refused anyway: decode the photos whose headers were fine, so that this one error also
        # names the truncated and corrupt ones
        headers_ok = [item for item, info, _ in looked if info is not None]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for item, info, why in pool.map(lambda it: look(it, True), headers_ok):
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
    return Inventory(images_dir, study, photos, warnings, manifest)


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
                  pixel_sha256: Sequence[str | None], failures: dict[int, str] | None = None) -> None:
    """Refuse, after decoding, the photos that could not be decoded and the same pixels in two
    slots, in one error naming every file concerned.

    For a caller that read only the headers in :func:`discover` (``decode=False``) and then
    decoded every photo: ``failures`` maps the index of each photo that failed to its reason (the
    :class:`assess.deid.DeidError` message; a leading ``<path>: `` is dropped), and
    ``pixel_sha256[i]`` is the pixel hash of ``photos[i]`` (``None`` for a failed one).

    >>> check_decoded("images", [Photo("S1", "baseline", "face", "", Path("S1_baseline_face.jpg"))],
    ...               [None], {0: "images/S1_baseline_face.jpg: the image data is truncated"})
    Traceback (most recent call last):
    ...
    assess.ingest.IngestError: images: 1 photo file(s) cannot be used; nothing was written. Fix or remove them and run again:
      S1_baseline_face.jpg: the image data is truncated

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
    for group in groups.values():
        if len({p.slot for p in group}) > 1:
            names = sorted(str(p.path) for p in group)
            for name in names:
                problems.append((name, f"the same photo (identical pixels) as "
                                 f"{', '.join(n for n in names if n != name)}; one photo cannot be "
                                 "in two slots — replace the wrong copy with the right photo"))
    if problems:
        raise _error(root, problems)


# --------------------------------------------------------------------------- helpers


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise IngestError(f"{folder}: cannot list the folder ({exc.strerror})") from None


def _file_like(entry: os.DirEntry) -> bool:
    """A file, or a link that cannot be followed (a loop): named, never a traceback."""
    try:
        return entry.is_file()
    except OSError:
        return True


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
