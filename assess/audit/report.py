"""The audit of a rater folder as a whole: every file checked on its own, then exiftool's second
opinion, the file properties and (with the key) the visible differences between visits."""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .exiftool import _exif_findings, _Exiftool, _exiftool
from .files import _list_files, _mtime_findings, _rel, _symlink_finding
from .findings import AuditError, AuditReport, Finding
from .identifiers import (MIN_SCAN_TERM, _identifier_finding, _jpeg_hits, _Key, _Matcher, _read_key,
                          _ScanMatcher)
from .jpeg import _image_kind, walk_jpeg
from .properties import _padding, _property_checks

__all__ = ["audit_report", "audit_set"]


def audit_report(rater_dir: Path, key_dir: Path | None = None, *, p_values: bool = True,
                 looks: dict | None = None) -> AuditReport:
    """Audit every file of a rater folder; with ``key_dir`` also search identifiers and compare
    file properties between timepoints. See :mod:`assess.audit` for the rules.

    With ``p_values=False`` the Mann–Whitney p-value of a property is computed only where it can
    matter, for an AUC above the limit of its kind (every finding states it); the other rows of
    ``aucs`` have ``p_value`` NaN. The findings are the same either way, and SciPy is not loaded
    for a clean set.

    With the key, the visible differences between visits are measured too (``looks``: the
    display copies' looks by code when the caller measured them already) and added as rows of
    kind ``"visible"``, never findings; ``report.visible`` holds their table with the photos that
    contribute most (:mod:`assess.audit.visible`).
    """
    rater_dir = Path(rater_dir)
    if not rater_dir.is_dir():
        raise AuditError(f"{rater_dir}: no such folder; give the rater folder of a set (…/<set-id>/rater)")
    key = _read_key(Path(key_dir)) if key_dir is not None else None
    findings, files = _list_files(rater_dir)
    report = AuditReport(rater_dir, len(files))
    # exiftool (a separate program) reads the JPEGs while this process walks them itself
    named_jpeg = [p for p in files if p.suffix.lower() in (".jpg", ".jpeg") and not p.is_symlink()]
    early = _Exiftool(named_jpeg, _cores())
    # and the padding border of every display copy is measured meanwhile (Pillow decodes outside
    # the GIL)
    measuring = ThreadPoolExecutor(max_workers=_cores()) if key is not None else None
    paddings = {} if measuring is None else {
        _rel(p, rater_dir): measuring.submit(_padding, p) for p in named_jpeg
        if p.parent == rater_dir / "images" / "display"}

    try:
        info, jpegs, file_findings = _check_files(rater_dir, files, key)
        findings += file_findings
        findings += _exiftool_checks(report, early, named_jpeg, jpegs)
        padding = {rel: fut.result() for rel, fut in paddings.items()}
        findings.extend(_property_checks(report, key, info, padding, p_values))
        if key is not None:
            from .visible import _visible_checks  # NumPy, only with the key

            _visible_checks(report, key, looks)
    finally:
        early.close()
        if measuring is not None:
            measuring.shutdown(cancel_futures=True)
    report.findings = findings
    return report


def _check_files(rater_dir: Path, files: list[Path], key: _Key | None
                 ) -> tuple[dict[str, dict], list[Path], list[Finding]]:
    """Every file on its own: a link, unreadable, not a JPEG, a JPEG's segments, the key's terms in
    its name and bytes; then the files' modification times. Returns the properties of every JPEG
    (by rel path), the JPEGs (whatever their extension) and the findings."""
    match_all = _Matcher(key.terms) if key else None
    match_long = _ScanMatcher(key.terms, min_len=MIN_SCAN_TERM) if key else None
    findings: list[Finding] = []
    info: dict[str, dict] = {}  # rel path -> properties of a JPEG
    jpegs: list[Path] = []
    mtimes: dict[str, int] = {}
    for path in files:
        rel = _rel(path, rater_dir)
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            findings.append(_symlink_finding(rel))
            continue
        mtimes[rel] = st.st_mtime_ns
        try:
            data = path.read_bytes()
        except OSError as exc:
            findings.append(Finding(rel, "unreadable", f"cannot read the file ({exc.strerror})"))
            continue
        if match_all is not None:
            for name_hit in match_all.find(rel.encode("utf-8")):
                findings.append(Finding(rel, "identifier", f"the file name contains {name_hit!r} from the key"))
        kind = _image_kind(data[:16], path.suffix)
        if kind == "JPEG":
            walk = walk_jpeg(data)
            for what, message in walk.problems:
                findings.append(Finding(rel, what, message))
            jpegs.append(path)
            info[rel] = {"walk": walk, "size": len(data), "mtime": st.st_mtime_ns, "mode": st.st_mode & 0o7777,
                         "sha256": hashlib.sha256(data).digest()}
            hits = (_jpeg_hits(data, walk, match_all, match_long)
                    if match_all is not None and match_long is not None else [])
        else:
            if kind is not None:
                findings.append(Finding(rel, "not-jpeg", f"a {kind} image; a rater folder holds only "
                                        "blinded baseline JPEGs"))
            hits = match_all.find(data) if match_all is not None else []
        if hits:
            findings.append(_identifier_finding(rel, hits))
    findings.extend(_mtime_findings(mtimes))
    return info, jpegs, findings


def _exiftool_checks(report: AuditReport, early: _Exiftool, named_jpeg: list[Path],
                     jpegs: list[Path]) -> list[Finding]:
    """exiftool's findings: the run started early on the files named .jpg/.jpeg, and one on JPEG
    data under another extension; ``report.exiftool`` says whether exiftool ran."""
    exif = early.result()
    named = set(named_jpeg)
    late = [p for p in jpegs if p not in named]  # JPEG data under another extension
    if exif is not None and late:
        exif.update(_exiftool(late) or {})
    report.exiftool = exif is not None
    return _exif_findings(exif, jpegs, report.rater_dir) if exif else []


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def audit_set(rater_dir: Path, key_dir: Path | None = None) -> list[Finding]:
    """The findings of :func:`audit_report`; an empty list means the folder is clean."""
    return audit_report(rater_dir, key_dir, p_values=False).findings
