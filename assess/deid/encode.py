"""Encoding: the one fixed JPEG setting of every written file, the disguise of a repeat's copy,
and writing the bytes.
"""

from __future__ import annotations

import functools
import hashlib
import io
import random
from pathlib import Path

from PIL import Image, ImageChops

from .errors import OutputError

SUBSAMPLING = "4:2:0"
"""Chroma subsampling of every written JPEG (the same for all photos, whatever the camera used)."""

JFIF_APP0 = bytes.fromhex("ffe000104a46494600010100000100010000")
"""The one APP0 segment every written JPEG carries: JFIF 1.1, no density unit, 1:1, no thumbnail."""


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    """Encode with the one fixed setting used for every photo: baseline, standard Huffman tables,
    :data:`SUBSAMPLING`, the IJG tables for ``quality``, only the fixed :data:`JFIF_APP0`.

    The image must be a fresh RGB image (nothing in ``info``); nothing but pixels is written.
    """
    if img.mode != "RGB":
        raise ValueError("encode_jpeg takes RGB images")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, subsampling=SUBSAMPLING, optimize=False, progressive=False,
             exif=b"", icc_profile=None, comment=b"", dpi=(0, 0))
    data = buf.getvalue()
    if data[2:2 + len(JFIF_APP0)] != JFIF_APP0:  # pragma: no cover - guards a Pillow/libjpeg change
        raise RuntimeError("the JPEG encoder wrote an unexpected header")
    return data


DISGUISE_SHARE = 0.02
"""Share of a disguised copy's 8×8 blocks whose brightness is moved by one step (see :func:`disguise`)."""


@functools.lru_cache(maxsize=8)
def _luma_dc_step(quality: int) -> int:
    """The quantization step of the luminance DC coefficient at ``quality`` (3 at quality 90)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=quality, subsampling=SUBSAMPLING)
    with Image.open(buf) as img:
        return int(img.quantization[0][0])


def disguise(img: Image.Image, seed: int, quality: int, share: float = DISGUISE_SHARE) -> Image.Image:
    """A copy of ``img`` that encodes to other bytes than ``img`` and looks the same.

    A disguised repeat shows the photo of its first showing again under a new code; a byte-identical
    file would pair the two for any duplicate finder or checksum. Here the first 8×8 block and a
    random ``share`` of the others (drawn from ``seed``) are made brighter or darker by the same
    small amount in red, green and blue, which moves only the block's luminance DC coefficient:
    the amount is the smallest that always changes the quantized coefficient at ``quality`` (one
    grey level at quality 90, ``ceil(step / 8)`` for a DC quantization step ``step``). A block
    that would clip at 0 or 255 either way is left alone, so no other coefficient changes. The
    JPEG's entropy-coded data then differs from its first block on, and the decoded pixels differ
    by at most about two grey levels on 2% of the area (measured in ``tests/test_deid.py``); the
    encoder's own error against the source is larger everywhere.

    Parameters
    ----------
    img
        The RGB canvas that :func:`encode_jpeg` would encode.
    seed
        Which blocks move and which way; the same seed gives the same copy.
    quality
        The JPEG quality the copy will be encoded with.
    share
        Share of the blocks that move (besides the first).

    Returns
    -------
    PIL.Image.Image
        A new RGB image of the same size.
    """
    if img.mode != "RGB":
        raise ValueError("disguise takes RGB images")
    w, h = img.size
    bw, bh = max(1, w // 8), max(1, h // 8)
    step = max(1, -(-_luma_dc_step(quality) // 8))
    rnd = random.Random(seed)
    n = bw * bh
    chosen = [0] + rnd.sample(range(n), min(n, round(n * share)))
    moves = Image.new("L", (bw, bh), 128)  # 128: no change
    for block in dict.fromkeys(chosen):  # block 0 first, each once
        bx, by = block % bw, block // bw
        extrema = img.crop((bx * 8, by * 8, min(w, bx * 8 + 8), min(h, by * 8 + 8))).getextrema()
        lo, hi = min(e[0] for e in extrema), max(e[1] for e in extrema)
        up = rnd.random() < 0.5
        if (up and hi + step > 255) or (not up and lo - step < 0):
            up = not up
        if (up and hi + step > 255) or (not up and lo - step < 0):
            continue
        moves.putpixel((bx, by), 128 + (step if up else -step))
    delta = Image.new("L", (w, h), 128)
    delta.paste(moves.resize((bw * 8, bh * 8), Image.Resampling.NEAREST))
    moves.close()
    shift = Image.merge("RGB", (delta, delta, delta))
    delta.close()
    out = ImageChops.add(img, shift, 1.0, -128)
    shift.close()
    return out


def _write_disguised(img: Image.Image, seed: int, quality: int, path: Path, taken: set[str]) -> str:
    """Encode a disguised copy of ``img`` whose sha256 is none of ``taken`` (which it joins)."""
    for attempt in range(16):
        copy = disguise(img, seed + attempt, quality)
        data = encode_jpeg(copy, quality)
        copy.close()
        sha = hashlib.sha256(data).hexdigest()
        if sha not in taken:
            taken.add(sha)
            return _write(path, data)
    raise RuntimeError("no disguised copy with other bytes was found")  # pragma: no cover


def _write(path: Path, data: bytes) -> str:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise OutputError(exc.strerror or str(exc), str(path), exc.errno) from None
    return hashlib.sha256(data).hexdigest()
