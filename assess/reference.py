"""Reference photos: photos with an expert consensus score, for training and calibration.

The study names one CSV (``[reference] photos = "reference.csv"``, relative to the study folder)
with the columns ``file,region,score,use`` and optionally ``view``:

- ``file``: the photo, relative to the study folder (e.g. ``images-reference/face-07.jpg``);
- ``region``: a region of the study; the photo is rated on that region's scale;
- ``score``: the reference score, a level of that scale (the expert consensus);
- ``use``: ``training`` (the qualification worklist) or ``calibration`` (hidden among the live
  photos); a photo is one or the other, never both.

:func:`read_reference` reads and checks it: path in, a list of :class:`ReferencePhoto` out, or one
:class:`ReferenceError` naming the CSV, the row and the field. Nothing here writes a file; the photos
are de-identified and coded by :mod:`assess.blind` exactly as the trial photos are.

>>> import tempfile
>>> from assess.study import parse_study, TEMPLATE
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "ref-1.jpg").write_bytes(b"x"), (folder / "ref-2.jpg").write_bytes(b"y")
>>> _ = (folder / "reference.csv").write_text("file,region,score,use\\nref-1.jpg,face,3,training\\n"
...                                          "ref-2.jpg,face,7,training\\n")
>>> study = parse_study(TEMPLATE, folder / "study.toml")
>>> read_reference(folder / "reference.csv", study)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
assess.reference.ReferenceError: ... row 3: score: 7 is not a level of Wrinkle Severity Rating Scale (1, 2, 3, 4, 5); give the expert consensus as one of them
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .csvfile import read_table
from .errors import AssessError
from .ingest import EXTENSIONS
from .study import Study

__all__ = ["USES", "COLUMNS", "ReferenceError", "ReferencePhoto", "read_reference", "study_reference"]

USES = ("training", "calibration")
COLUMNS = ("file", "region", "score", "use")
"""Required columns of the reference CSV; ``view`` is optional."""


class ReferenceError(AssessError):
    """The reference photos' CSV is wrong: the message names the file, the row and the field."""


@dataclass(frozen=True)
class ReferencePhoto:
    """One reference photo: ``file`` as written in the CSV, ``path`` where it is on disk."""

    file: str
    region: str
    view: str
    score: int | float
    use: str
    path: Path
    sha256: str = ""
    row: int = 0  # line of the CSV (the header is line 1), for messages


def _score(text: str, study: Study, region: str):
    scale = study.scale_for(region)
    try:
        value: int | float = float(text)
    except ValueError:
        value = None  # type: ignore[assignment]
    if value is not None and float(value).is_integer():
        value = int(value)
    if value is None or not scale.accepts(value):
        levels = ", ".join(str(v) for v in scale.values[:12]) + (" …" if len(scale.values) > 12
                                                                  else "")
        raise ValueError(f"score: {text or '(empty)'} is not a level of {scale.name} ({levels}); "
                         "give the expert consensus as one of them")
    return value


def read_reference(csv_path: str | Path, study: Study) -> list[ReferencePhoto]:
    """The reference photos of ``csv_path``, checked against ``study``, in the CSV's order.

    Files are relative to the study folder (the folder of ``study.path``; the CSV's folder when
    the study has no path).

    Raises
    ------
    ReferenceError
        naming the CSV, the row and the field: a missing column, a missing or unreadable file, a
        file that is not a photo, an unknown region, a score that is not a level of the region's
        scale, a ``use`` other than training or calibration, a file listed twice (or the same
        bytes under two names).
    """
    path = Path(csv_path)
    if not path.is_file():
        raise ReferenceError(f"{path}: no such file; [reference] photos names the CSV of the "
                             "reference photos (file,region,score,use), relative to the study folder")
    table = read_table(path, COLUMNS, allowed=(*COLUMNS, "view"), error=ReferenceError,
                       what="reference photos file", fold_case=True)
    header = table.header
    col = {name: header.index(name) for name in header}
    root = study.path.parent if study.path is not None else path.parent
    out: list[ReferencePhoto] = []
    seen: dict[str, int] = {}
    by_bytes: dict[str, int] = {}
    for n, cells in zip(table.lines, table.rows):
        def get(name: str) -> str:
            i = col.get(name)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        where = f"{path}: row {n}"
        try:
            out.append(_row(get, root, study, n))
        except ValueError as exc:
            raise ReferenceError(f"{where}: {exc}") from None
        ref = out[-1]
        key = ref.path.resolve().as_posix()
        if key in seen:
            raise ReferenceError(f"{where}: file: {ref.file} is listed already in row {seen[key]}; "
                                 "a photo is either training or calibration, and listed once")
        seen[key] = n
        if ref.sha256 in by_bytes:
            raise ReferenceError(f"{where}: file: {ref.file} has the same bytes as the photo of row "
                                 f"{by_bytes[ref.sha256]}; list each reference photo once")
        by_bytes[ref.sha256] = n
    if not out:
        raise ReferenceError(f"{path}: no reference photos; add one row per photo "
                             "(file,region,score,use)")
    return out


def _row(get, root: Path, study: Study, n: int) -> ReferencePhoto:
    file = get("file")
    if not file:
        raise ValueError("file: empty; give the photo's path relative to the study folder")
    src = Path(file)
    src = src if src.is_absolute() else root / src
    if src.suffix.lower() not in EXTENSIONS:
        raise ValueError(f"file: {file} is not a photo ({', '.join(sorted(EXTENSIONS))})")
    try:
        data = src.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"file: {file} does not exist (looked for {src}); paths are relative to "
                         "the study folder") from None
    except OSError as exc:
        raise ValueError(f"file: {file} cannot be read ({exc.strerror})") from None
    region = get("region")
    if region not in study.regions:
        raise ValueError(f"region: {region or '(empty)'} is not a region of the study "
                         f"({', '.join(study.regions)})")
    score = _score(get("score"), study, region)
    use = get("use").lower()
    if use not in USES:
        raise ValueError(f"use: must be training or calibration, not {get('use') or '(empty)'}")
    return ReferencePhoto(file, region, get("view"), score, use, src,
                          hashlib.sha256(data).hexdigest(), n)


def study_reference(study: Study, use: str | None = None) -> list[ReferencePhoto]:
    """The study's reference photos (``[reference] photos``), those of ``use`` when given; empty
    when the study names none."""
    if study.reference is None:
        return []
    refs = read_reference(study.reference, study)
    return [r for r in refs if use is None or r.use == use]


def by_use(refs: Sequence[ReferencePhoto], use: str) -> list[ReferencePhoto]:
    """The photos of one ``use``."""
    return [r for r in refs if r.use == use]
