"""The rater folder as files: symbolic links, and files whose modification times differ (write
order can follow the source order)."""

from __future__ import annotations

import os
from pathlib import Path

from .findings import Finding


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _list_files(rater_dir: Path) -> tuple[list[Finding], list[Path]]:
    """Every file under the rater folder, in name order, and a finding for each linked folder
    (never followed)."""
    findings: list[Finding] = []
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(rater_dir, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in list(dirnames):
            if (base / name).is_symlink():
                findings.append(_symlink_finding(_rel(base / name, rater_dir)))
        for name in sorted(filenames):
            files.append(base / name)
    return findings, files


def _symlink_finding(rel: str) -> Finding:
    return Finding(rel, "symlink", "a symbolic link; copy real files into the rater folder")


def _mtime_findings(mtimes: dict[str, int]) -> list[Finding]:
    """A finding when the files' modification times (rel path -> ns) are not all one."""
    if len(set(mtimes.values())) <= 1:
        return []
    common = max(set(mtimes.values()), key=list(mtimes.values()).count)
    odd = sorted(r for r, m in mtimes.items() if m != common)
    return [Finding(".", "mtime", f"{len(odd)} of {len(mtimes)} files have another "
                    f"modification time than the rest (e.g. {', '.join(odd[:3])}); the "
                    "write order could show the source order — give every file one fixed mtime")]
