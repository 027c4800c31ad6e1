"""Written files: one size for every file of a kind and region, and the share of a copy that is
padding border.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageChops

from .colour import BACKGROUND
from .decode import _sha256_file
from .errors import DeidError


def equalize_sizes(paths: Sequence[Path]) -> dict[Path, str]:
    """Pad JPEGs written by :func:`prepare_file` to one file size; return the sha256 of each.

    File size follows from the pixels: a follow-up camera with more noise or detail makes larger
    files, which any file browser shows. ``assess randomize`` pads every file of one kind (full,
    display) in one region to the size of the largest with JPEG fill bytes: ``0xFF`` bytes, which
    the standard allows before any marker (ISO/IEC 10918-1 B.1.1.2) and every decoder skips,
    placed before the end-of-image marker. They add no segment (nothing that exiftool or any
    metadata reader lists), nothing after the end marker, and the decoded pixels do not change.
    Files are padded in place.

    Raises
    ------
    DeidError
        naming a file that does not end with the JPEG end-of-image marker.
    """
    sizes: dict[Path, int] = {}
    for path in map(Path, paths):
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 2))
            if size < 4 or fh.read(2) != b"\xff\xd9":
                raise DeidError(f"{path}: not a JPEG written by assess (no end-of-image marker at its "
                                "end); build the set again with assess randomize")
        sizes[path] = size
    if not sizes:
        return {}
    target = max(sizes.values())
    out = {}
    for path, size in sizes.items():
        if size < target:
            with open(path, "r+b") as fh:
                fh.seek(size - 2)
                fh.write(b"\xff" * (target - size) + b"\xff\xd9")
        out[path] = _sha256_file(path)
    return out


def padding_fraction(path: Path, tolerance: int = 10) -> float:
    """Share of a written photo's area that is the neutral padding border (0 for a filled canvas).

    The audit compares it between timepoints: photos from cameras with other aspect ratios get
    borders of other widths under ``fit = "pad"``, which a rater can see.
    """
    with Image.open(path, formats=("JPEG",)) as img:
        img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
        small = img.convert("RGB")
    diff = ImageChops.difference(small, Image.new("RGB", small.size, BACKGROUND))
    r, g, b = diff.split()
    mask = ImageChops.lighter(ImageChops.lighter(r, g), b).point(lambda v: 255 if v > tolerance else 0)
    box = mask.getbbox()
    if box is None:
        return 1.0
    inner = (box[2] - box[0]) * (box[3] - box[1])
    return round(1.0 - inner / (small.width * small.height), 3)
