"""Identifiers from the key: the terms the key names, and the matchers that find them as whole
words in file names, file bytes and JPEG scan data."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..csvfile import read_table
from .findings import AuditError, Finding
from .jpeg import JpegWalk

__all__ = ["MIN_SCAN_TERM", "CALIBRATION"]

CALIBRATION = "calibration"  # the group of the hidden calibration photos in the comparisons
MIN_SCAN_TERM = 6


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
    from ..calibration import read_key as read_calibration

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


def _identifier_finding(rel: str, hits: list[str]) -> Finding:
    return Finding(rel, "identifier", f"contains {', '.join(repr(h) for h in hits)} from the key")


def _jpeg_hits(data: bytes, walk: JpegWalk, match_all: _Matcher, match_long: _ScanMatcher) -> list[str]:
    """The key's terms in a JPEG: any term outside its scan data (fill bytes left out, no text can
    hide in 0xFF), only the long ones inside it."""
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
    return hits
