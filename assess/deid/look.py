"""Looks: the pixels of a written copy, and a cheap decode of each source photo to measure its look
for ``[pixels] normalize``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from PIL import Image, UnidentifiedImageError

from .backdrop import GAINS_EDGE
from .encode import encode_jpeg
from .errors import DeidError
from .fit import Spec
from .prepare import _fitted

if TYPE_CHECKING:
    from .workers import Workers

LOOK_EDGE = 512
"""Long edge (at most) at which a photo's look is measured (:mod:`assess.pixels.visible`): about
0.1 s a photo (at 1280 it would be 0.5 s)."""


def read_pixels(path: Path, max_edge: int = LOOK_EDGE):
    """The pixels of a written JPEG (a display copy) as an ``(h, w, 3)`` uint8 array.

    Decoded at the smallest DCT scale whose long edge still reaches ``max_edge``, then reduced
    to at most ``max_edge`` by averaging (the same for every copy of a region's canvas).

    Raises
    ------
    DeidError
        naming the file when it cannot be read as a JPEG.
    """
    import numpy as np

    try:
        with Image.open(path, formats=("JPEG",)) as img:
            s = min(1.0, max_edge / max(img.size))
            img.draft("RGB", (max(1, round(img.width * s)), max(1, round(img.height * s))))
            rgb = img.convert("RGB")
        if max(rgb.size) > max_edge:
            rgb.thumbnail((max_edge, max_edge), Image.Resampling.BOX)
        return np.asarray(rgb)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise DeidError(f"{path}: cannot read the copy to measure it ({exc}); build the set again "
                        "with assess randomize") from None


def look_file(src: Path, spec: Spec, frame: int | None = None):
    """Measure a source photo's look (:func:`assess.pixels.visible.measure`) as randomize would
    show it, cheaply: decoded for a canvas of at most :data:`GAINS_EDGE` pixels (a JPEG at its
    smallest DCT scale), oriented, converted to sRGB, fitted and JPEG-coded as its copies will be.
    ``None`` when it cannot be decoded (the pixel pipeline then reports why)."""
    import numpy as np

    from ..pixels.visible import measure

    edge = min(GAINS_EDGE, spec.display_long_edge)
    small = Spec(edge, edge, spec.quality, spec.aspect, spec.fit, spec.portrait)
    try:
        fitted = _fitted(src, small, frame)
    except Exception:  # the pixel pipeline tries the photo again and says what is wrong
        return None
    try:
        left, top, right, bottom = fitted.box
        # through the study's JPEG encoder, as the copies it is compared with will be
        with Image.open(io.BytesIO(encode_jpeg(fitted.image, spec.quality))) as coded:
            pixels = np.asarray(coded.convert("RGB"))
        return measure(pixels, (top, bottom, left, right))
    finally:
        fitted.image.close()


def _look_job(job: tuple) -> object:
    return look_file(*job)


def look_files(jobs: Sequence[tuple], pool: "Workers | None" = None) -> list:
    """:func:`look_file` over ``(src, spec, frame)`` jobs on ``pool``'s workers (or here)."""
    if pool is None or pool.executor is None:
        return [_look_job(job) for job in jobs]
    try:
        return list(pool.executor.map(_look_job, jobs, chunksize=4))
    except Exception as exc:  # a worker died (e.g. killed for memory)
        raise DeidError(f"a worker measuring the photos for [pixels] normalize stopped ({exc}); "
                        "retry, or set normalize = false") from None
