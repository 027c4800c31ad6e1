"""What the leak audit returns: findings, AUC rows and the report; the limits that judge them
and the advice for each kind of finding."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AssessError

__all__ = ["AuditError", "Finding", "PropertyAUC", "AuditReport", "ADVICE", "AUC_LIMIT",
           "AUC_EXTREME_LIMIT", "P_LIMIT"]

AUC_LIMIT = 0.55
AUC_EXTREME_LIMIT = 0.8
P_LIMIT = 1e-4

ADVICE = {
    "metadata": "build the set with assess randomize and copy the rater folder as it is; never "
                "open and save its files with another program",
    "trailer": "build the set with assess randomize and copy the rater folder as it is",
    "jpeg-structure": "build the set with assess randomize and copy the rater folder as it is",
    "not-jpeg": "remove the file; assess randomize writes only baseline JPEGs",
    "exiftool": "build the set with assess randomize and copy the rater folder as it is",
    "identifier": "remove what names it, or build the set again with assess randomize",
    "symlink": "copy real files into the rater folder (e.g. cp -rL)",
    "mtime": "copy the rater folder with its times kept (cp -a, rsync -a), or build it again",
    "unreadable": "check the file's permissions, or build the set again",
    "timepoint-property": "see the advice in each message",
    "uniform-property": "build the set again with assess randomize (the same --seed gives the same "
                        "codes and worklists); never edit or re-save its files",
    "duplicate": "build the set again with assess randomize (every code gets its own bytes); "
                 "never copy one image file over another",
}
"""What a coordinator can do about each kind of finding (``assess audit-set`` prints it)."""


class AuditError(AssessError):
    """The audit cannot run (no such folder, unreadable key); the message says what to fix."""


@dataclass(frozen=True)
class Finding:
    """One leak: ``file`` is relative to the rater folder (``.`` for the folder as a whole)."""

    file: str
    kind: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class PropertyAUC:
    """How well one property separates one timepoint from the others within one region."""

    property: str
    kind: str  # "fixed" | "randomized" | "pixels" | "content" | "visible"
    region: str
    comparison: str  # e.g. "baseline vs month12"
    auc: float
    p_value: float
    n1: int
    n2: int
    finding: bool


@dataclass
class AuditReport:
    rater_dir: Path
    files_checked: int
    findings: list[Finding] = field(default_factory=list)
    aucs: list[PropertyAUC] = field(default_factory=list)
    exiftool: bool = False
    notes: list[str] = field(default_factory=list)
    #: visible differences between visits (:class:`assess.audit.visible.Threat`), with the key
    visible: list = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No finding and no note: nothing to look at (a note is never "clean")."""
        return not self.findings and not self.notes

    def worst_aucs(self) -> list[PropertyAUC]:
        """Per property, the row with the highest AUC over regions and comparisons."""
        best: dict[str, PropertyAUC] = {}
        for row in self.aucs:
            cur = best.get(row.property)
            if cur is None or (row.finding, row.auc) > (cur.finding, cur.auc):
                best[row.property] = row
        return list(best.values())
