"""Leak audit of a rater folder: does anything but the pixels tell participant or timepoint?

:func:`audit_report` scans every file under a rater folder and returns findings (each names the file,
the kind of leak and what was found) and, with the key folder, a table of file properties compared
between timepoints. :func:`audit_set` returns the findings only; ``assess randomize`` runs it on every
set it builds and refuses a set with findings.

What is checked
---------------
Every JPEG is walked marker by marker (our own parser, independent of any library). A blinded JPEG
may hold only SOI, the one fixed JFIF APP0 that :mod:`assess.deid` writes, DQT, SOF0, DHT, SOS with
its entropy-coded data, and EOI. Any other APPn (EXIF, XMP, ICC, IPTC/Photoshop, vendor), a COM
segment, another frame type (progressive, arithmetic, lossless), a malformed structure, or **any byte
after EOI** is a finding: exiftool does not report trailing data, so that check is ours. Any image that
is not a JPEG (PNG, TIFF, HEIC, GIF, WebP, BMP) is a finding. When ``exiftool`` is installed it is run
as an independent second opinion: any tag beyond the File, Composite and basic JFIF groups is a
finding. The audit stays correct without it.

Symbolic links and files whose modification times differ are findings too: formats.md gives every
file of a rater folder one fixed mtime, because write order can follow the source order.

With the key (``key/key.csv``, ``key/access.csv``, ``key/seed.txt``) every participant id, timepoint
name, source file name and its stem, source sha256, access code and the seed (when 6 or more digits)
is searched for, case-insensitively, as a whole word (not preceded or followed by a letter or digit):

* in every byte of every non-JPEG file, and of JPEG headers and segments;
* in JPEG entropy-coded scan data only for terms of at least :data:`MIN_SCAN_TERM` bytes. Short ids
  such as ``P07`` occur in compressed data by chance (about 6 hits per MB for 50 three-letter ids),
  whereas a 6-byte term is expected by chance about once in 10⁸ MB; an identifier hidden in scan data
  would have to be written there deliberately, and the segment/trailer checks catch every place an
  encoder or tool would put one.

Properties compared between timepoints (with the key)
-----------------------------------------------------
For each region and each timepoint against the others, the AUC of every property is computed from
the Mann–Whitney U statistic (``U / (n1·n2)``, folded to ``max(AUC, 1 − AUC)``: 0.5 means the property
says nothing about the timepoint, 1.0 that it separates them perfectly). Categorical properties use
the category that separates best. Four kinds of property:

* **fixed by design** (format, width, height, file size, quantization tables, Huffman tables,
  chroma subsampling, JPEG segment layout, metadata segments, mtime, permissions; for the full and
  the display copy): ``assess randomize`` makes them equal for every file of a kind in a region, so
  they are judged by their effect size alone: AUC > :data:`AUC_LIMIT` (0.55) is a finding at any
  sample size. With or without the key, a file whose fixed property differs from the other files
  of its kind and region is a finding too, naming the file (one tampered file among 60 moves the
  AUC by less than 0.02). A rater folder written before file sizes were made equal (no file has
  fill bytes) gets a note instead of the second check for file size; its AUC still decides.
  Two image files of one kind with the same bytes are a finding (``duplicate``: a disguised
  repeat must not be a copy of its first showing), a note in such an older folder.
* **randomized** (code, position in each rater's worklist, side in a pair): they vary by chance, and
  with a few dozen photos a chance AUC above 0.55 is common, so they are findings only when AUC >
  0.55 **and** the two-sided Mann–Whitney p-value is below :data:`P_LIMIT` (10⁻⁴). An AUC above
  0.55 that is not a finding is reported as a note saying so, and saying when the sample is too
  small for any AUC to reach that p-value (:func:`small_sample`), never as clean. (``assess
  randomize`` balances them to 0.55 or less wherever a region has 5 or more photos a timepoint.)
* **from the pixels** (padding border): it follows from the cameras' aspect ratios and a rater
  sees it; AUC > :data:`AUC_EXTREME_LIMIT` (0.8) is a finding at any sample size. The fix is
  ``fit = "crop"`` in ``[normalize]``.
* **content** (length of the entropy-coded image data, padding excluded): it follows from the
  detail and noise in the pixels, which the rater sees as they are; reported, never a finding.
  The files' sizes do not show it; only a program that parses the JPEG does.
* **visible** (luminance, white balance, sharpness, noise, background, subject size and place,
  measured on the display copies by :mod:`assess.pixels.visible`): what a rater sees without
  judging the skin. Above :data:`assess.audit_visible.VISIBLE_LIMIT` (0.6) a property is reported
  as a threat with the photos that contribute most, never as a finding (:mod:`assess.audit_visible`
  says why); ``[pixels] normalize = true`` matches white balance and exposure.

Every finding's advice is something the coordinator can do in ``study.toml`` or on the command
line (:data:`ADVICE`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import stat
import subprocess
import tempfile
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .csvfile import read_table
from .deid import JFIF_APP0
from .errors import AssessError

__all__ = [
    "Finding",
    "PropertyAUC",
    "AuditReport",
    "AuditError",
    "JpegWalk",
    "walk_jpeg",
    "audit_report",
    "audit_set",
    "contact_sheet",
    "AUC_LIMIT",
    "AUC_EXTREME_LIMIT",
    "ADVICE",
    "small_sample",
    "P_LIMIT",
    "MIN_SCAN_TERM",
]

CALIBRATION = "calibration"  # the group of the hidden calibration photos in the comparisons
AUC_LIMIT = 0.55
AUC_EXTREME_LIMIT = 0.8
P_LIMIT = 1e-4
MIN_SCAN_TERM = 6

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

SOI, EOI, SOS, APP0, DQT, SOF0, DHT, COM = 0xD8, 0xD9, 0xDA, 0xE0, 0xDB, 0xC0, 0xC4, 0xFE
ALLOWED_SEGMENTS = {DQT, SOF0, DHT, SOS}
_RST = set(range(0xD0, 0xD8))
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_FILL = re.compile(rb"\xff+")
_MARKER_NAMES = {
    **{0xE0 + n: f"APP{n}" for n in range(16)},
    **{0xC0 + n: f"SOF{n}" for n in (0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15)},
    0xC4: "DHT", 0xC8: "JPG", 0xCC: "DAC", 0xD8: "SOI", 0xD9: "EOI", 0xDA: "SOS", 0xDB: "DQT",
    0xDC: "DNL", 0xDD: "DRI", 0xDE: "DHP", 0xDF: "EXP", 0xFE: "COM",
}
_APP_MEANING = {
    b"Exif\x00": "EXIF", b"http://ns.adobe.com/xap/1.0/": "XMP", b"ICC_PROFILE": "ICC profile",
    b"Photoshop 3.0": "Photoshop/IPTC", b"Adobe": "Adobe", b"MPF": "MPF (multi-picture)",
    b"JFXX": "JFIF thumbnail", b"Ducky": "Ducky", b"FPXR": "FlashPix", b"JFIF": "JFIF",
}
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"GIF8", "GIF"),
    (b"BM", "BMP"), (b"RIFF", "RIFF/WebP"),
)
_EXIFTOOL_ALLOWED = {
    "ExifTool": {"ExifToolVersion"},
    "System": None,  # file name, size, dates and permissions of the file system, not of the photo
    "File": {"FileType", "FileTypeExtension", "MIMEType", "ImageWidth", "ImageHeight", "EncodingProcess",
             "BitsPerSample", "ColorComponents", "YCbCrSubSampling"},
    "JFIF": {"JFIFVersion", "ResolutionUnit", "XResolution", "YResolution"},
    "Composite": {"ImageSize", "Megapixels"},
}


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
    #: visible differences between visits (:class:`assess.audit_visible.Threat`), with the key
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


# --------------------------------------------------------------------------- JPEG structure


@dataclass
class JpegWalk:
    """The marker structure of one JPEG file.

    ``segments``: ``(marker, offset, length)`` for every marker (length counts the 2 length bytes;
    0 for standalone markers); ``scans``: ``(start, end)`` byte ranges of entropy-coded data;
    ``end``: offset just after EOI (``None`` if there is none); ``problems``: what is not allowed.
    Fill bytes (``0xFF`` before a marker) are allowed before EOI only, where
    :func:`assess.deid.equalize_sizes` puts them; ``fill`` counts them.
    """

    segments: list[tuple[int, int, int]] = field(default_factory=list)
    scans: list[tuple[int, int]] = field(default_factory=list)
    end: int | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    dqt: bytes = b""
    dht: bytes = b""
    sampling: tuple = ()
    size: tuple[int, int] = (0, 0)
    fill: int = 0  # fill bytes (0xFF) just before EOI: the padding to the size of the region's files

    @property
    def scan_bytes(self) -> int:
        """Length of the entropy-coded data, padding excluded (it follows from the pixels)."""
        return sum(end - start for start, end in self.scans)

    @property
    def layout(self) -> str:
        return " ".join(_MARKER_NAMES.get(m, f"0x{m:02X}") for m, _, _ in self.segments)


def walk_jpeg(data: bytes) -> JpegWalk:
    """Walk the markers of a JPEG and list everything a blinded file must not contain.

    >>> from PIL import Image; import io
    >>> buf = io.BytesIO(); Image.new("RGB", (16, 16)).save(buf, "JPEG", comment=b"P07")
    >>> [kind for kind, _ in walk_jpeg(buf.getvalue() + b"tail").problems]
    ['metadata', 'trailer']
    """
    walk = JpegWalk()
    n = len(data)
    if data[:2] != b"\xff\xd8":
        walk.problems.append(("not-jpeg", "does not start with the JPEG start-of-image marker"))
        return walk
    walk.segments.append((SOI, 0, 0))
    i = 2
    app0_seen = False
    dqt, dht = [], []
    while True:
        if i >= n:
            walk.problems.append(("jpeg-structure", "ends without an end-of-image marker (truncated)"))
            return walk
        if data[i] != 0xFF:
            walk.problems.append(("jpeg-structure", f"unexpected byte 0x{data[i]:02X} at offset {i} "
                                  "where a marker should start"))
            return walk
        run = i
        if data[i + 1:i + 2] == b"\xff":  # fill bytes (a long run when padded: skipped in C)
            i = _FILL.match(data, i).end()
        else:
            i += 1
        if i >= n:
            walk.problems.append(("jpeg-structure", "ends inside a marker"))
            return walk
        fill = i - run - 1
        marker = data[i]
        start = i - 1
        i += 1
        name = _MARKER_NAMES.get(marker, f"0x{marker:02X}")
        if marker == EOI:
            walk.segments.append((EOI, start, 0))
            walk.end = i
            walk.fill = fill
            break
        if fill:
            walk.problems.append(("jpeg-structure", f"{fill} fill byte(s) before the {name} marker at "
                                  f"offset {start} (assess pads only before the end-of-image marker)"))
        if marker in _RST or marker == 0x01 or marker == SOI:
            walk.segments.append((marker, start, 0))
            walk.problems.append(("jpeg-structure", f"stray {name} marker at offset {start}"))
            continue
        if i + 2 > n:
            walk.problems.append(("jpeg-structure", f"{name} at offset {start} is cut off"))
            return walk
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2 or i + length > n:
            walk.problems.append(("jpeg-structure", f"{name} at offset {start} has an impossible length"))
            return walk
        payload = data[i + 2:i + length]
        walk.segments.append((marker, start, length))
        i += length
        if marker == APP0 and data[start:start + 2 + length] == JFIF_APP0 and not app0_seen:
            app0_seen = True
        elif 0xE0 <= marker <= 0xEF:
            walk.problems.append(("metadata", f"{name} segment ({_app_meaning(payload)}, {length} bytes) "
                                  f"at offset {start}"))
        elif marker == COM:
            text = payload[:40].decode("latin-1", "replace")
            walk.problems.append(("metadata", f"COM comment segment ({length} bytes) at offset {start}: "
                                  f"{text!r}"))
        elif marker not in ALLOWED_SEGMENTS:
            what = "progressive or other non-baseline frame" if 0xC1 <= marker <= 0xCF else "segment"
            walk.problems.append(("jpeg-structure", f"{name} {what} at offset {start} (only baseline "
                                  "SOF0/DQT/DHT/SOS are written)"))
        if marker == DQT:
            dqt.append(payload)
        if marker == DHT:
            dht.append(payload)
        if 0xC0 <= marker <= 0xCF and marker not in (DHT, 0xC8, 0xCC) and len(payload) >= 6:
            walk.size = (int.from_bytes(payload[3:5], "big"), int.from_bytes(payload[1:3], "big"))
            comps = payload[5]
            walk.sampling = tuple((payload[6 + 3 * k + 1] >> 4, payload[6 + 3 * k + 1] & 15)
                                  for k in range(comps) if 6 + 3 * k + 2 <= len(payload))
        if marker == SOS:
            # the scan runs to the first 0xFF that is not a stuffed 0xFF00 or a restart marker:
            # a marker, or the first of a run of fill bytes before one (a data byte 0xFF is
            # always stuffed, so 0xFF 0xFF cannot be data)
            end_of_scan = _SCAN_END.search(data, i)
            if end_of_scan is None:
                walk.scans.append((i, n))
                walk.problems.append(("jpeg-structure", "ends inside the compressed image data "
                                      "(truncated)"))
                return walk
            stop = end_of_scan.start()
            walk.scans.append((i, stop))
            i = stop
    walk.dqt = b"".join(dqt)
    walk.dht = b"".join(dht)
    if walk.end is not None and walk.end < n:
        extra = n - walk.end
        walk.problems.append(("trailer", f"{extra} byte(s) after the end-of-image marker "
                              f"(starting {data[walk.end:walk.end + 16]!r})"))
    return walk


def _app_meaning(payload: bytes) -> str:
    for prefix, meaning in _APP_MEANING.items():
        if payload.startswith(prefix):
            return meaning
    head = payload[:12].split(b"\x00")[0]
    return head.decode("latin-1", "replace") or "unknown"


def _image_kind(head: bytes, suffix: str) -> str | None:
    """The image format a file's first bytes (or, failing that, its extension) say it is."""
    if head.startswith(b"\xff\xd8"):
        return "JPEG"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        return "HEIF/MP4"
    if suffix.lower() in {".png", ".tif", ".tiff", ".heic", ".heif", ".gif", ".webp", ".bmp", ".jpg",
                          ".jpeg", ".avif", ".jxl", ".jp2"}:
        return suffix.lower().lstrip(".").upper()
    return None


# --------------------------------------------------------------------------- the key


@dataclass
class _Key:
    rows: list[dict[str, str]]
    terms: list[str]
    #: The hidden calibration photos (key/calibration.csv): code, region; compared with the
    #: trial photos of their region as a timepoint is compared with another.
    calibration: list[dict[str, str]] = field(default_factory=list)


def _read_key(key_dir: Path) -> _Key:
    key_csv = key_dir / "key.csv"
    if not key_csv.exists():
        raise AuditError(f"{key_csv}: no key file; give the key folder of the set (…/<set-id>/key)")
    table = read_table(key_csv, ("code", "participant", "timepoint", "region", "source_file"),
                       error=AuditError, what="key", written_safe=True)
    rows = [row for _, row in table.records()]
    terms: set[str] = set()
    for row in rows:
        for col in ("participant", "timepoint"):
            if row.get(col):
                terms.add(row[col])
        src = row.get("source_file") or ""
        if src:
            p = Path(src)
            terms.update({src, p.name, p.stem})
        if row.get("source_sha256"):
            terms.add(row["source_sha256"])
    access = key_dir / "access.csv"
    if access.is_file():
        terms.update(code for code in read_table(
            access, ("access_code",), error=AuditError, what="access codes file",
            written_safe=True).column("access_code") if code)
    seed = key_dir / "seed.txt"
    if seed.is_file():
        value = seed.read_text(encoding="utf-8").strip()
        if len(value) >= 6:
            terms.add(value)
    reference = key_dir / "reference.csv"  # the reference photos' own file names and hashes
    if reference.is_file():
        for _, row in read_table(reference, ("code", "source_file"), error=AuditError,
                                 what="reference key", written_safe=True).records():
            src = row.get("source_file") or ""
            if src:  # a short stem ("07") would be found in any number: only long ones
                terms.update({src, Path(src).name} | ({Path(src).stem}
                                                      if len(Path(src).stem) >= MIN_SCAN_TERM
                                                      else set()))
            if row.get("source_sha256"):
                terms.add(row["source_sha256"])
    from .calibration import read_key as read_calibration

    cal = read_calibration(key_dir, error=AuditError) or []
    calibration = list({r["code"]: {"code": r["code"], "region": r["region"],
                                    "timepoint": CALIBRATION} for r in cal}.values())
    return _Key(rows, sorted((t for t in terms if t.strip()), key=lambda t: (-len(t), t)),
                calibration)


class _Matcher:
    """Find many literal terms at once, case-insensitively, as whole words, in bytes of any size.

    Candidates are found with NumPy (a lookup of every two-byte window, then of the first up to
    eight bytes), so a 3 MB file against thousands of key terms takes milliseconds; each candidate
    is then confirmed in full, with its word boundaries.

    >>> _Matcher(["P07", "baseline"]).find(b'{"title": "P07 at Baseline", "x": "P070"}')
    ['P07', 'Baseline']
    """

    SMALL = 2048  # bytes up to which positions are looked at one by one

    def __init__(self, terms: Iterable[str], min_len: int = 1) -> None:
        import numpy as np

        self.terms = sorted({t.lower().encode("utf-8") for t in terms if len(t.encode("utf-8")) >= min_len},
                            key=lambda t: (-len(t), t))
        self.by_k: dict[int, tuple[object, dict[int, list[bytes]]]] = {}
        self.short = [t for t in self.terms if len(t) == 1]
        lut = np.zeros(65536, dtype=bool)
        groups: dict[int, dict[int, list[bytes]]] = defaultdict(lambda: defaultdict(list))
        for t in self.terms:
            if len(t) < 2:
                continue
            lut[(t[0] << 8) | t[1]] = True
            k = min(len(t), 8)
            groups[k][int.from_bytes(t[:k], "big")].append(t)
        self.lut = lut
        self.pairs = {int(i) for i in np.flatnonzero(lut)}
        firsts = sorted({t[0] for t in self.terms if len(t) >= 2})
        self.starts = re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in firsts) + b"]") if firsts else None
        for k, table in groups.items():
            keys = np.array(sorted(table), dtype=np.uint64)
            self.by_k[k] = (keys, dict(table))

    def find(self, data: bytes, limit: int = 5) -> list[str]:
        import numpy as np

        if not self.terms or len(data) < 1:
            return []
        low = data.lower()
        n = len(low)
        found: list[tuple[int, int]] = []

        def boundary(i: int, j: int) -> bool:
            return not (i > 0 and low[i - 1:i].isalnum()) and not (j < n and low[j:j + 1].isalnum())

        for t in self.short:
            for m in re.finditer(re.escape(t), low):
                if len(found) < 1000 and boundary(m.start(), m.end()):
                    found.append((m.start(), m.end()))
        if 2 <= n <= self.SMALL and self.by_k and self.starts is not None:
            # a JPEG header, a file name: looking at each position costs less than NumPy's setup
            pairs = self.pairs
            for match in self.starts.finditer(low, 0, n - 1):
                pos = match.start()
                if (low[pos] << 8) | low[pos + 1] not in pairs:
                    continue
                for k, (_, table) in self.by_k.items():
                    if pos + k > n:
                        continue
                    for t in table.get(int.from_bytes(low[pos:pos + k], "big"), ()):
                        if len(found) < 1000 and low.startswith(t, pos) and boundary(pos, pos + len(t)):
                            found.append((pos, pos + len(t)))
        elif n >= 2 and self.by_k:
            arr = np.frombuffer(low, dtype=np.uint8)
            pairs = (arr[:-1].astype(np.uint16) << 8) | arr[1:]
            cand = np.nonzero(self.lut[pairs])[0]
            for k, (keys, table) in self.by_k.items():
                c = cand[cand + k <= n]
                if not len(c):
                    continue
                value = np.zeros(len(c), dtype=np.uint64)
                for j in range(k):
                    value = (value << np.uint64(8)) | arr[c + j].astype(np.uint64)
                idx = np.searchsorted(keys, value)
                ok = idx < len(keys)
                ok[ok] = keys[idx[ok]] == value[ok]
                for pos, val in zip(c[ok].tolist(), value[ok].tolist()):
                    for t in table[int(val)]:
                        if len(found) < 1000 and low.startswith(t, pos) and boundary(pos, pos + len(t)):
                            found.append((pos, pos + len(t)))
        return _texts(data, found, limit)


def _texts(data: bytes, found: list[tuple[int, int]], limit: int) -> list[str]:
    """The matched texts of ``(start, end)`` spans, the longest match only ("P07_baseline_face",
    not also "P07" and "baseline" inside it), each spelling once."""
    spans = sorted(set(found), key=lambda se: (se[0], -se[1]))
    kept: list[tuple[int, int]] = []
    for start, end in spans:
        if not any(s0 <= start and end <= e0 for s0, e0 in kept):
            kept.append((start, end))
    texts: list[str] = []
    for start, end in kept:
        text = bytes(data[start:end]).decode("utf-8", "replace")
        if text.lower() not in {t.lower() for t in texts}:
            texts.append(text)
    return texts[:limit]


class _ScanMatcher:
    """Find terms of at least 5 bytes, case-insensitively, as whole words, in large binary data
    (the entropy-coded data of a JPEG): the same answers as :class:`_Matcher` at a third of its cost.

    Every occurrence of a term of 5 or more bytes holds a 4-byte piece of the term starting at an
    even offset in the data. The data is read as little-endian 32-bit words at offsets 0 and 2
    (every even position, without copying), case-folded (``| 0x20`` on each byte, applied to the
    terms alike), and each word is looked up in a hashed bit table of the terms' 4-byte pieces;
    the few hits are checked against the sorted pieces and then confirmed in full, with their word
    boundaries.

    >>> m = _ScanMatcher(["S1001_baseline_face.jpg", "month12", "P07"], min_len=6)
    >>> m.find(b"~S1001_BASELINE_face.jpg; xmonth12 month12x (month12)")
    ['S1001_BASELINE_face.jpg', 'month12']
    """

    BITS = 20  # table of 2**20 entries (1 MB): stays in the cache

    def __init__(self, terms: Iterable[str], min_len: int = MIN_SCAN_TERM) -> None:
        import numpy as np

        if min_len < 5:
            raise ValueError("_ScanMatcher needs terms of at least 5 bytes")
        self.terms = sorted({t.lower().encode("utf-8") for t in terms if len(t.encode("utf-8")) >= min_len},
                            key=lambda t: (-len(t), t))
        index: dict[int, list[tuple[bytes, int]]] = defaultdict(list)
        for t in self.terms:
            for offset in range(len(t) - 3):
                index[int.from_bytes(t[offset:offset + 4], "little") | 0x20202020].append((t, offset))
        self.index = dict(index)
        self.pieces = np.array(sorted(index), dtype=np.uint32)
        self.table = np.zeros(1 << self.BITS, dtype=bool)
        self.table[self._hash(self.pieces)] = True

    def _hash(self, words):
        import numpy as np

        return (words * np.uint32(2654435761)) >> np.uint32(32 - self.BITS)

    def find(self, data: bytes, start: int = 0, end: int | None = None, limit: int = 5) -> list[str]:
        """Terms found in ``data[start:end]`` (the range's ends count as word boundaries)."""
        import numpy as np

        end = len(data) if end is None else end
        if not self.terms or end - start < 5:
            return []
        view = memoryview(data)[start:end]
        n = len(view)
        found: list[tuple[int, int]] = []
        for first in (0, 2):
            count = (n - first) // 4
            if count <= 0:
                continue
            words = np.frombuffer(view, dtype="<u4", count=count, offset=first) | np.uint32(0x20202020)
            cand = np.flatnonzero(np.take(self.table, self._hash(words)))
            if not len(cand):
                continue
            values = words[cand]
            at = np.minimum(np.searchsorted(self.pieces, values), len(self.pieces) - 1)
            real = self.pieces[at] == values
            for k, value in zip(cand[real].tolist(), values[real].tolist()):
                pos = first + 4 * k
                for term, offset in self.index[value]:
                    s, e = pos - offset, pos - offset + len(term)
                    if s < 0 or e > n or bytes(view[s:e]).lower() != term or len(found) >= 1000:
                        continue
                    if (s > 0 and bytes(view[s - 1:s]).isalnum()) or (e < n and bytes(view[e:e + 1]).isalnum()):
                        continue
                    found.append((s, e))
        return _texts(view, found, limit)


# --------------------------------------------------------------------------- exiftool


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


# --------------------------------------------------------------------------- statistics


def timepoint_auc(a: list, b: list, categorical: bool = False, p_value: bool = True) -> tuple[float, float]:
    """Folded AUC (0.5 to 1) and two-sided Mann–Whitney p-value with which a property separates
    the photos of one timepoint (``a``) from another's (``b``); the randomizer balances with it.

    With ``p_value=False`` the p-value is NaN and the AUC comes from the rank sum directly
    (the same number as ``mannwhitneyu``'s U / (n1·n2)) without loading SciPy: the randomizer
    calls it thousands of times just before de-identification starts its worker processes, and
    SciPy would add 60 MB to the parent's memory for the whole run.

    >>> timepoint_auc([1, 2, 3], [4, 5, 6])[0]
    1.0
    >>> timepoint_auc([1, 2, 2, 5], [2, 3, 4], p_value=False)[0] == timepoint_auc([1, 2, 2, 5], [2, 3, 4])[0]
    True
    """
    if p_value:
        return _auc(a, b, categorical)
    if not a or not b:
        return 0.5, float("nan")
    if categorical:
        cats = sorted(set(a) | set(b), key=repr)
        aucs = [_rank_auc([int(x == c) for x in a], [int(y == c) for y in b]) for c in cats]
    else:
        aucs = [_rank_auc(list(a), list(b))]
    return max(max(x, 1.0 - x) for x in aucs), float("nan")


def _rank_auc(a: list, b: list) -> float:
    """U1 / (n1·n2) from mid-ranks (ties share their average rank), unfolded."""
    ordered = sorted(a + b)
    mid: dict = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[i]:
            j += 1
        mid[ordered[i]] = (i + j) / 2 + 1
        i = j + 1
    u1 = sum(mid[x] for x in a) - len(a) * (len(a) + 1) / 2
    return u1 / (len(a) * len(b))


def _auc(a: list, b: list, categorical: bool) -> tuple[float, float]:
    """Folded AUC and two-sided Mann–Whitney p-value of ``a`` vs ``b``.

    >>> _auc([1, 2, 3], [4, 5, 6], categorical=False)[0]
    1.0
    >>> _auc(["x", "x"], ["x", "x", "x"], categorical=True)
    (0.5, 1.0)
    """
    from scipy.stats import mannwhitneyu

    if not a or not b:
        return 0.5, 1.0
    if categorical:
        cats = sorted(set(a) | set(b), key=repr)
        if len(cats) < 2:
            return 0.5, 1.0
        pairs = [_auc([int(x == c) for x in a], [int(y == c) for y in b], False) for c in cats]
        return max(pairs, key=lambda t: (t[0], -t[1]))
    if len(set(a) | set(b)) < 2:
        return 0.5, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    auc = float(res.statistic) / (len(a) * len(b))
    p = float(res.pvalue)
    return max(auc, 1.0 - auc), (1.0 if p != p else p)


# --------------------------------------------------------------------------- the audit


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def audit_report(rater_dir: Path, key_dir: Path | None = None, *, p_values: bool = True,
                 looks: dict | None = None) -> AuditReport:
    """Audit every file of a rater folder; with ``key_dir`` also search identifiers and compare
    file properties between timepoints. See the module docstring for the rules.

    With ``p_values=False`` the Mann–Whitney p-value of a property is computed only where it can
    matter, for an AUC above the limit of its kind (every finding states it); the other rows of
    ``aucs`` have ``p_value`` NaN. The findings are the same either way, and SciPy is not loaded
    for a clean set.

    With the key, the visible differences between visits are measured too (``looks``: the
    display copies' looks by code when the caller measured them already) and added as rows of
    kind ``"visible"``, never findings; ``report.visible`` holds their table with the photos that
    contribute most (:mod:`assess.audit_visible`).
    """
    rater_dir = Path(rater_dir)
    if not rater_dir.is_dir():
        raise AuditError(f"{rater_dir}: no such folder; give the rater folder of a set (…/<set-id>/rater)")
    key = _read_key(Path(key_dir)) if key_dir is not None else None
    match_all = _Matcher(key.terms) if key else None
    match_long = _ScanMatcher(key.terms, min_len=MIN_SCAN_TERM) if key else None

    findings: list[Finding] = []
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(rater_dir, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in list(dirnames):
            if (base / name).is_symlink():
                findings.append(Finding(_rel(base / name, rater_dir), "symlink",
                                        "a symbolic link; copy real files into the rater folder"))
        for name in sorted(filenames):
            files.append(base / name)
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
        info: dict[str, dict] = {}  # rel path -> properties of a JPEG
        jpegs: list[Path] = []
        mtimes: dict[str, int] = {}
        for path in files:
            rel = _rel(path, rater_dir)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                findings.append(Finding(rel, "symlink", "a symbolic link; copy real files into the rater folder"))
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
                if match_all is not None and match_long is not None:
                    outside = bytearray()
                    pos = 0
                    for s, e in walk.scans:
                        outside += data[pos:s] + b"\x00"
                        pos = e
                    if walk.end is not None and walk.fill:  # fill bytes: no text can hide in 0xFF
                        outside += data[pos:walk.end - 2 - walk.fill] + b"\x00"
                        pos = walk.end - 2
                    outside += data[pos:]
                    hits = match_all.find(bytes(outside))
                    for s, e in walk.scans:
                        hits += [h for h in match_long.find(data, s, e) if h not in hits]
                    if hits:
                        findings.append(_identifier_finding(rel, hits))
            else:
                if kind is not None:
                    findings.append(Finding(rel, "not-jpeg", f"a {kind} image; a rater folder holds only "
                                            "blinded baseline JPEGs"))
                hits = match_all.find(data) if match_all is not None else []
                if hits:
                    findings.append(_identifier_finding(rel, hits))

        if len(set(mtimes.values())) > 1:
            common = max(set(mtimes.values()), key=list(mtimes.values()).count)
            odd = sorted(r for r, m in mtimes.items() if m != common)
            findings.append(Finding(".", "mtime", f"{len(odd)} of {len(mtimes)} files have another "
                                    f"modification time than the rest (e.g. {', '.join(odd[:3])}); the "
                                    "write order could show the source order — give every file one fixed mtime"))

        exif = early.result()
        named = set(named_jpeg)
        late = [p for p in jpegs if p not in named]  # JPEG data under another extension
        if exif is not None and late:
            exif.update(_exiftool(late) or {})
        report.exiftool = exif is not None
        if exif:
            resolved = {p.resolve(): _rel(p, rater_dir) for p in jpegs}
            for path, extra in exif.items():
                if extra:
                    rel = resolved.get(path.resolve(), str(path))
                    findings.append(Finding(rel, "exiftool", "exiftool reports " + "; ".join(extra[:8])
                                            + (f" (+{len(extra) - 8} more)" if len(extra) > 8 else "")))

        padding = {rel: fut.result() for rel, fut in paddings.items()}
        findings.extend(_property_checks(report, key, info, padding, p_values))
        if key is not None:
            _visible_checks(report, key, looks)
    finally:
        early.close()
        if measuring is not None:
            measuring.shutdown(cancel_futures=True)
    report.findings = findings
    return report


def _property_checks(report: AuditReport, key: _Key | None, info: dict[str, dict],
                     padding: dict[str, float], p_values: bool) -> list[Finding]:
    """Files unlike the rest of their region, and (with the key) the AUC table; notes go to
    ``report.notes``, the AUC rows to ``report.aucs``; returns the findings."""
    positions, regions = _read_worklists(report.rater_dir)
    if key is not None:
        for row in key.rows:
            regions.setdefault(row["code"], row["region"])
    findings, notes = _uniformity(info, regions)
    report.notes.extend(notes)
    if key is not None:
        report.aucs, auc_findings, auc_notes = _compare_timepoints(report.rater_dir, key, info, padding,
                                                                   p_values, positions)
        findings += auc_findings
        report.notes.extend(auc_notes)
    return findings


def _visible_checks(report: AuditReport, key: _Key, looks: dict | None) -> None:
    """The visible differences between visits: ``report.visible`` and their AUC rows."""
    from .audit_visible import measure_set, threats

    if looks is None:
        looks = measure_set(report.rater_dir, [row["code"] for row in key.rows])
    report.visible = threats(key.rows, looks)
    report.aucs.extend(PropertyAUC(t.property, "visible", t.region, t.comparison, t.auc,
                                   float("nan"), t.n1, t.n2, False) for t in report.visible)


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _identifier_finding(rel: str, hits: list[str]) -> Finding:
    return Finding(rel, "identifier", f"contains {', '.join(repr(h) for h in hits)} from the key")


def audit_set(rater_dir: Path, key_dir: Path | None = None) -> list[Finding]:
    """The findings of :func:`audit_report`; an empty list means the folder is clean."""
    return audit_report(rater_dir, key_dir, p_values=False).findings


def _read_worklists(rater_dir: Path) -> tuple[dict[str, dict[str, tuple[int, int]]], dict[str, str]]:
    """rater -> photo code -> (position of its item, index within the item); and code -> region."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    regions: dict[str, str] = {}
    for wl in sorted((rater_dir / "worklists").glob("*.json")):
        try:
            data = json.loads(wl.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        pos: dict[str, tuple[int, int]] = {}
        for k, item in enumerate(data.get("items", [])):
            if not isinstance(item, dict):
                continue
            for side, code in enumerate(item.get("photos", [])):
                pos[str(code)] = (k, side)
                if isinstance(item.get("region"), str):
                    regions.setdefault(str(code), item["region"])
        name = str(data.get("rater", wl.stem))
        if "attempt" in data:  # a training worklist: its own positions, never the live ones
            name = f"{name} (training {data['attempt']})"
        out[name] = pos
    return out, regions


def _padding(path: Path) -> float:
    from .deid import padding_fraction

    try:
        return padding_fraction(path)
    except Exception:
        return -1.0


def small_sample(n1: int, n2: int, p_limit: float = P_LIMIT) -> bool:
    """Whether ``n1`` + ``n2`` photos are too few for any AUC, even 1.0, to reach ``p_limit``.

    The smallest two-sided Mann–Whitney p-value (normal approximation with continuity correction,
    as :func:`_auc` computes it) is that of perfect separation. With fewer than about 11 photos a
    timepoint a p-value threshold of 10⁻⁴ can never be met, so a p-value says nothing there.

    >>> small_sample(6, 6), small_sample(10, 10), small_sample(12, 12)
    (True, True, False)
    """
    if n1 < 1 or n2 < 1:
        return True
    sigma = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    z = (n1 * n2 / 2 - 0.5) / sigma
    return math.erfc(z / math.sqrt(2)) >= p_limit


# fixed properties that every file of a kind in a region shares: (name, value from the file's info)
_UNIFORM = (
    ("width", lambda p: p["walk"].size[0]),
    ("height", lambda p: p["walk"].size[1]),
    ("file size", lambda p: p["size"]),
    ("quantization tables", lambda p: p["walk"].dqt),
    ("Huffman tables", lambda p: p["walk"].dht),
    ("chroma subsampling", lambda p: p["walk"].sampling),
    ("JPEG segment layout", lambda p: p["walk"].layout),
    ("permissions", lambda p: p["mode"]),
)


def _shown(value: object, name: str) -> str:
    if name == "file size":
        return f"{value} bytes"
    if name == "permissions" and isinstance(value, int):
        return oct(value)
    if isinstance(value, bytes):
        return f"tables of {len(value)} bytes (sha256 {hashlib.sha256(value).hexdigest()[:12]})"
    return str(value)


def _uniformity(info: dict[str, dict], regions: dict[str, str]) -> tuple[list[Finding], list[str]]:
    """Findings for files whose fixed property differs from the rest of their kind and region,
    and for image files of one kind with the same bytes (a repeat must not be a copy).

    A rater folder written before file sizes were made equal and repeats disguised (no file has
    fill bytes before its end marker) gets notes instead: its file sizes are then judged by their
    AUC alone, and its byte-identical repeats are named once.
    """
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel in sorted(info):
        parts = rel.split("/")
        if info[rel]["walk"].problems:  # a finding already; its layout and size differ anyway
            continue
        if len(parts) == 3 and parts[0] == "images" and parts[1] in ("full", "display"):
            code = parts[2].rsplit(".", 1)[0]
            if code in regions:
                groups[(parts[1], regions[code])].append(rel)
    padded = any(p["walk"].fill > 0 for p in info.values())
    findings: list[Finding] = []
    unequal: list[str] = []
    for (copy, region), rels in sorted(groups.items()):
        for name, get in _UNIFORM:
            values = {rel: get(info[rel]) for rel in rels}
            counts = Counter(values.values())
            if len(counts) < 2:
                continue
            if name == "file size" and not padded:
                unequal.append(f"{copy} copies of {region}")
                continue
            common, _ = counts.most_common(1)[0]
            odd = [rel for rel, v in values.items() if v != common]
            label = name if copy == "full" else f"display {name}"
            examples = ", ".join(f"{rel} ({_shown(values[rel], name)})" for rel in odd[:3])
            findings.append(Finding(odd[0], "uniform-property",
                                    f"{label}: {len(odd)} of the {len(rels)} {copy} copies of region "
                                    f"{region} differ from the others' {_shown(common, name)}: "
                                    f"{examples}{' …' if len(odd) > 3 else ''}; every file of a "
                                    f"region is written with one {name}, so these were changed "
                                    f"afterwards — {ADVICE['uniform-property']}"))
    notes = []
    same: dict[tuple[str, bytes], list[str]] = defaultdict(list)
    for (copy, _), rels in groups.items():
        for rel in rels:
            same[(copy, info[rel]["sha256"])].append(rel)
    twins = sorted(rels for rels in same.values() if len(rels) > 1)
    if twins and not padded:
        notes.append(f"{len(twins)} group(s) of byte-identical image files (e.g. "
                     f"{' and '.join(twins[0][:2])}): this rater folder was written before assess "
                     "gave a disguised repeat bytes of its own, so a duplicate finder pairs each "
                     "repeat with its first showing; build the set again with assess randomize "
                     "(the same --seed gives the same codes and worklists)")
    elif twins:
        for rels in twins:
            findings.append(Finding(rels[0], "duplicate",
                                    f"byte-identical to {', '.join(rels[1:4])}"
                                    f"{' …' if len(rels) > 4 else ''}: a checksum or duplicate "
                                    "finder pairs them (a repeat with its first showing); "
                                    f"{ADVICE['duplicate']}"))
    if unequal:
        notes.append(f"file sizes differ among the {', '.join(unequal)}: this rater folder was "
                     "written before assess made every file of a region one size, so file size is "
                     "judged only by how it separates the timepoints (with --key); build the set "
                     "again with assess randomize (the same --seed gives the same codes and "
                     "worklists)")
    return findings, notes


_FIXED_HINT = ("assess randomize writes every file of a region alike, so a file was changed after "
               "it — build the set again with assess randomize (the same --seed gives the same "
               "codes and worklists)")
_OLD_SIZE_HINT = ("this rater folder was written before assess made every file of a region one "
                  "size — build it again with assess randomize (the same --seed gives the same "
                  "codes and worklists)")
_HINTS = {
    "padding border": "the cameras had other aspect ratios — set fit = \"crop\" in [normalize] of "
                      "study.toml and randomize again",
    "randomized": "randomize again with another --seed (or without blinding.seed in study.toml)",
}


def _properties(key: _Key, info: dict[str, dict], padding: dict[str, float], positions: dict
                ) -> tuple[dict[str, dict[str, object]], dict[str, tuple[str, bool]]]:
    """code -> property -> value, and property -> (kind, categorical), for every key row."""
    codes_sorted = sorted(row["code"] for row in [*key.rows, *key.calibration])
    code_rank = {c: i for i, c in enumerate(codes_sorted)}
    pairs = any(row.get("pair") for row in key.rows)
    props: dict[str, dict[str, object]] = {}  # code -> property -> value
    kinds: dict[str, tuple[str, bool]] = {}  # property -> (kind, categorical)

    def put(code: str, name: str, value: object, kind: str, categorical: bool) -> None:
        props.setdefault(code, {})[name] = value
        kinds[name] = (kind, categorical)

    paddings = {row["code"]: padding.get(f"images/display/{row['code']}.jpg", -1.0)
                for row in [*key.rows, *key.calibration]
                if f"images/display/{row['code']}.jpg" in info}

    for row in [*key.rows, *key.calibration]:
        code = row["code"]
        for copy in ("full", "display"):
            rel = f"images/{copy}/{code}.jpg"
            p = info.get(rel)
            label = "" if copy == "full" else "display "
            if p is None:
                put(code, f"{label}format", "missing or not JPEG", "fixed", True)
                continue
            walk: JpegWalk = p["walk"]
            put(code, f"{label}format", "JPEG", "fixed", True)
            put(code, f"{label}width", walk.size[0], "fixed", True)
            put(code, f"{label}height", walk.size[1], "fixed", True)
            put(code, f"{label}file size", p["size"], "fixed", False)
            put(code, f"{label}quantization tables", walk.dqt, "fixed", True)
            put(code, f"{label}Huffman tables", walk.dht, "fixed", True)
            put(code, f"{label}chroma subsampling", walk.sampling, "fixed", True)
            put(code, f"{label}JPEG segment layout", walk.layout, "fixed", True)
            put(code, f"{label}metadata segments", len(walk.problems), "fixed", False)
            put(code, f"{label}mtime", p["mtime"], "fixed", False)
            put(code, f"{label}permissions", p["mode"], "fixed", True)
            put(code, f"{label}image data length", walk.scan_bytes, "content", False)
            if copy == "display":
                put(code, "padding border", paddings.get(code, -1.0), "pixels", False)
        put(code, "code", code_rank[code], "randomized", False)
        for rater, pos in sorted(positions.items()):
            if code in pos:
                put(code, f"position in {rater}'s worklist", pos[code][0], "randomized", False)
                if pairs:
                    put(code, f"pair side in {rater}'s worklist", pos[code][1], "randomized", True)
    return props, kinds


def _compare_timepoints(rater_dir: Path, key: _Key, info: dict[str, dict], padding: dict[str, float],
                        p_values: bool = True, positions: dict | None = None
                        ) -> tuple[list[PropertyAUC], list[Finding], list[str]]:
    """The AUC of every property between the timepoints of each region, its findings and notes."""
    if positions is None:
        positions = _read_worklists(rater_dir)[0]
    props, kinds = _properties(key, info, padding, positions)
    padded = any(p["walk"].fill > 0 for p in info.values())
    cal_codes = {r["code"] for r in key.calibration}
    timepoints: list[str] = []
    for row in key.rows:
        if row["timepoint"] not in timepoints:
            timepoints.append(row["timepoint"])
    comparisons = ([(timepoints[0], timepoints[1])] if len(timepoints) == 2
                   else [(t, None) for t in timepoints])
    if key.calibration:  # calibration photos must not be told from the trial's photos
        comparisons.append((CALIBRATION, None))
    regions = sorted({row["region"] for row in key.rows})
    rows: list[PropertyAUC] = []
    findings: list[Finding] = []
    notes: list[str] = []
    for region in regions:
        in_region = [row for row in [*key.rows, *key.calibration] if row["region"] == region]
        for tp, other in comparisons:
            group_a = [r["code"] for r in in_region if r["timepoint"] == tp]
            group_b = [r["code"] for r in in_region if (r["timepoint"] == other if other else r["timepoint"] != tp)]
            label = f"{tp} vs {other}" if other else f"{tp} vs other timepoints"
            if tp == CALIBRATION:
                label = "calibration photos vs trial photos"
            elif not other:
                group_b = [c for c in group_b if c not in cal_codes]
            for name, (kind, categorical) in kinds.items():
                a = [props[c][name] for c in group_a if name in props.get(c, {})]
                b = [props[c][name] for c in group_b if name in props.get(c, {})]
                if not a or not b:
                    continue
                row = _judge(name, kind, categorical, a, b, region, label, p_values)
                rows.append(row)
                where = f"in region {region} with AUC {row.auc:.2f} (n={row.n1}+{row.n2}"
                if row.finding:
                    if kind == "randomized":
                        why, hint = f", p={row.p_value:.2g})", _HINTS["randomized"]
                    else:
                        limit = AUC_LIMIT if kind == "fixed" else AUC_EXTREME_LIMIT
                        small = "; few photos, " if small_sample(row.n1, row.n2) else "; "
                        why = (f"{small}judged by the AUC alone, above {limit:g} at any sample size)")
                        hint = _HINTS.get(name) or (_OLD_SIZE_HINT if name.endswith("file size")
                                                    and not padded else _FIXED_HINT)
                    findings.append(Finding(".", "timepoint-property",
                                            f"{name} separates {label} {where}{why}; {hint}"))
                elif kind == "randomized" and row.auc > AUC_LIMIT:
                    if small_sample(row.n1, row.n2):
                        notes.append(f"{name} separates {label} {where}): too few photos to tell a "
                                     "chance imbalance from a leak (at this n even an AUC of 1.00 "
                                     f"has p ≥ {P_LIMIT:g}); not counted as a finding")
                    else:
                        notes.append(f"{name} separates {label} {where}, p={row.p_value:.2g}): "
                                     "within chance for a property drawn at random; not counted as "
                                     f"a finding — {_HINTS['randomized']} for a balanced draw")
    return rows, findings, notes


def _judge(name: str, kind: str, categorical: bool, a: list, b: list, region: str, label: str,
           p_values: bool) -> PropertyAUC:
    """The AUC row of one property in one comparison, and whether it is a finding.

    Fixed properties are findings above :data:`AUC_LIMIT` and pixel-derived ones above
    :data:`AUC_EXTREME_LIMIT`, at any sample size; randomized ones also need p < :data:`P_LIMIT`;
    content is never a finding. Without ``p_values`` the p-value is computed only where it is
    reported (a randomized property above the limit).
    """
    if p_values:
        auc, p = _auc(a, b, categorical)
    else:
        auc, p = timepoint_auc(a, b, categorical, p_value=False)
        if kind == "randomized" and auc > AUC_LIMIT - 1e-9:
            auc, p = _auc(a, b, categorical)
    if kind == "fixed":
        flag = auc > AUC_LIMIT
    elif kind == "randomized":
        flag = auc > AUC_LIMIT and p < P_LIMIT
    elif kind == "pixels":
        flag = auc > AUC_EXTREME_LIMIT
    else:
        flag = False
    return PropertyAUC(name, kind, region, label, round(auc, 4), p, len(a), len(b), flag)


# --------------------------------------------------------------------------- contact sheet


def contact_sheet(rater_dir: Path, out: Path, columns: int = 8) -> list[Path]:
    """Write one picture of every display copy, in code order, each labelled with its code.

    Large sets are split into pages of 12 rows (``out``, then ``<stem>-2.jpg``, …); the pages
    written are returned.

    The order does not follow any worklist. The coordinator looks at it for what no file check can
    see: dates burned into the pixels, name tags or wristbands in frame, tattoos, rulers with ids.
    ``out`` must not be inside the rater folder (it would be copied to the rater).
    """
    from .deid import render_contact_sheet

    rater_dir = Path(rater_dir)
    out = Path(out)
    display = rater_dir / "images" / "display"
    if not display.is_dir():
        raise AuditError(f"{display}: no display copies; give the rater folder of a set (…/<set-id>/rater)")
    try:
        out.resolve().relative_to(rater_dir.resolve())
    except ValueError:
        pass
    else:
        raise AuditError(f"{out}: inside the rater folder, it would be copied to the rater; "
                         "write the contact sheet elsewhere (e.g. beside rater/ and key/)")
    tiles = [(p.stem, p) for p in sorted(display.glob("*.jpg"))]
    if not tiles:
        raise AuditError(f"{display}: no display copies found")
    if columns < 1:
        raise AuditError("columns must be at least 1")
    return render_contact_sheet(tiles, out, columns)
