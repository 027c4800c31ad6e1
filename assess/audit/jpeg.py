"""The JPEG marker walk: what a blinded JPEG may hold, segment by segment, and what kind of
image a file is."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..deid import JFIF_APP0

__all__ = ["JpegWalk", "walk_jpeg"]

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

