"""The second opinion of exiftool, when it is installed: any tag beyond the File, Composite and
basic JFIF groups."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .findings import AuditError, Finding

_EXIFTOOL_ALLOWED = {
    "ExifTool": {"ExifToolVersion"},
    "System": None,  # file name, size, dates and permissions of the file system, not of the photo
    "File": {"FileType", "FileTypeExtension", "MIMEType", "ImageWidth", "ImageHeight", "EncodingProcess",
             "BitsPerSample", "ColorComponents", "YCbCrSubSampling"},
    "JFIF": {"JFIFVersion", "ResolutionUnit", "XResolution", "YResolution"},
    "Composite": {"ImageSize", "Megapixels"},
}


def _exiftool(files: list[Path], processes: int = 1) -> dict[Path, list[str]] | None:
    """Tags beyond the allowed basics per file, per exiftool; ``None`` when exiftool is absent.

    The files are split over ``processes`` exiftool runs working at the same time. Composite
    tags are not computed (``-e``): each is derived from tags that exiftool reports in their own
    group (GPSPosition from GPS:GPSLatitude, …), so they add nothing to the check and would double
    exiftool's time.
    """
    run = _Exiftool(files, processes)
    try:
        return run.result()
    finally:
        run.close()


class _Exiftool:
    """exiftool runs started at once in the background; :meth:`result` collects their answers.

    Each run reads its list of files from a temporary file and writes its JSON into another, so
    exiftool never waits on a pipe for this process (whose threads are busy with the audit) to
    drain it.
    """

    def __init__(self, files: list[Path], processes: int = 1) -> None:
        self.exe = shutil.which("exiftool")
        self.runs: list[tuple[subprocess.Popen, object, object]] = []
        if self.exe is None or not files:
            return
        size = max(1, min(500, -(-len(files) // max(1, processes))))
        try:
            for i in range(0, len(files), size):
                names = tempfile.TemporaryFile()
                names.write("\n".join(str(f) for f in files[i:i + size]).encode("utf-8", "surrogateescape"))
                names.flush()
                names.seek(0)
                answer = tempfile.TemporaryFile()
                proc = subprocess.Popen([self.exe, "-a", "-G1", "-s", "-j", "-e", "-q", "-q", "-@", "-"],
                                        stdin=names, stdout=answer, stderr=subprocess.DEVNULL)
                self.runs.append((proc, names, answer))
        except BaseException:
            self.close()
            raise

    def result(self, timeout: float = 600) -> dict[Path, list[str]] | None:
        if self.exe is None:
            return None
        out: dict[Path, list[str]] = {}
        for proc, _, answer in self.runs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise AuditError(f"exiftool did not finish within {timeout:.0f} s; run the audit "
                                 "again") from None
            answer.seek(0)
            try:
                records = json.loads(answer.read().decode("utf-8", "replace") or "[]")
            except json.JSONDecodeError:
                return None
            for rec in records:
                path = Path(rec.get("SourceFile", ""))
                extra = []
                for tag, value in rec.items():
                    if tag == "SourceFile":
                        continue
                    group, _, name = tag.partition(":")
                    allowed = _EXIFTOOL_ALLOWED.get(group, set())
                    if allowed is None or name in allowed:
                        continue
                    extra.append(f"{tag}={str(value)[:60]}")
                out[path] = extra
        return out

    def close(self) -> None:
        """Stop runs still going and drop their files."""
        for proc, names, answer in self.runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            names.close()
            answer.close()
        self.runs = []


def _exif_findings(exif: dict[Path, list[str]], jpegs: list[Path], rater_dir: Path) -> list[Finding]:
    """A finding for every JPEG of which exiftool reports more than the allowed basics."""
    findings: list[Finding] = []
    resolved = {p.resolve(): p.relative_to(rater_dir).as_posix() for p in jpegs}
    for path, extra in exif.items():
        if extra:
            rel = resolved.get(path.resolve(), str(path))
            findings.append(Finding(rel, "exiftool", "exiftool reports " + "; ".join(extra[:8])
                                    + (f" (+{len(extra) - 8} more)" if len(extra) > 8 else "")))
    return findings
