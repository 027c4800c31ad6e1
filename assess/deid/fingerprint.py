"""Perceptual fingerprints: a small greyscale copy of each photo, and the similarity that finds the
same photo re-encoded, resized or cropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Fingerprint:
    """A small greyscale copy of a photo's upright decoded pixels (long edge :data:`PRINT_EDGE`),
    compared by :func:`similarity` to find the same photo re-encoded, resized or cropped."""

    width: int
    height: int
    pixels: bytes

    def array(self):
        import numpy as np

        return np.frombuffer(self.pixels, dtype=np.uint8).reshape(self.height, self.width)


PRINT_EDGE = 256
"""Long edge (pixels) of a photo's :class:`Fingerprint`."""


def _fingerprint(img: Image.Image) -> Fingerprint:
    w, h = img.size
    s = PRINT_EDGE / max(w, h)
    size = (max(8, round(w * s)), max(8, round(h * s)))
    small = img.resize(size, Image.Resampling.BOX, reducing_gap=2.0) if s < 1 else img
    grey = small.convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    return Fingerprint(size[0], size[1], grey.tobytes())


NEAR_DUPLICATE = 0.75
"""Similarity (:func:`similarity`) from which two photos count as the same photo. Measured on
synthetic skin photos: copies re-saved at quality 60, halved, cropped 3% a side or brightened are
caught 63-64 times in 64, cropped 5% on one side 56 in 64; genuine follow-ups of one participant
and region (same framing and camera) score at most 0.72, different real-camera pictures at most
0.32 (docs/formats.md)."""

COARSE_FLOOR = 0.35
"""Below this correlation on the quarter-size copies two photos are not compared further."""

_SCALES_COARSE = tuple(0.84 ** (1 - k / 6) for k in range(13))  # 0.84 … 1/0.84, even in log


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """How surely two fingerprints show the same photo: from about 0 (other photos) to 1.

    The fine detail of both (each pixel minus a blur of its neighbourhood, which drops colour,
    exposure and lighting) is compared after the best match of ``b`` onto ``a`` under a change of
    scale (0.84-1.19, as a resize or a crop gives) and a shift (up to 12% of the long edge):
    the correlation of the overlapping detail. A copy that was re-encoded, resized, cropped a little
    or brightened keeps its detail in place; another photo of the same person and region (taken
    again, the skin moved, the noise new) does not. The scale is found on a quarter-size copy and
    refined at full fingerprint size.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> pic = rng.integers(0, 255, (96, 128), dtype=np.uint8)
    >>> fp = Fingerprint(128, 96, pic.tobytes())
    >>> other = Fingerprint(128, 96, rng.integers(0, 255, (96, 128), dtype=np.uint8).tobytes())
    >>> round(similarity(fp, fp), 2), similarity(fp, other) < 0.2
    (1.0, True)
    """
    one = _similarity(a, b)
    if 0.35 <= one < NEAR_DUPLICATE:  # the match is best found with the larger view scaled down
        one = max(one, _similarity(b, a))
    return max(0.0, round(one, 4))


def _similarity(a: Fingerprint, b: Fingerprint) -> float:
    import numpy as np

    A, B = a.array().astype(np.float32), b.array()
    coarse_a = _detail(_scaled(A, 0.25), 1.0)
    best_s, best = 1.0, -1.0
    for s in _SCALES_COARSE:
        value = _match(coarse_a, _detail(_scaled(B, 0.25 * s), 1.0))
        if value > best:
            best_s, best = s, value
    if best < COARSE_FLOOR:  # other pictures: their coarse detail does not match anywhere
        return best
    fine_a = _detail(A, 0.75)
    best = -1.0
    for s in best_s * np.exp(np.linspace(-0.04, 0.04, 11)):
        best = max(best, _match(fine_a, _detail(_scaled(B, float(s)), 0.75)))
    return best


def _scaled(pixels, factor: float):
    import numpy as np

    h, w = pixels.shape
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    img = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    out = img.resize(size, Image.Resampling.BOX if factor < 0.5 else Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32)


def _detail(pixels, sigma: float):
    from scipy.ndimage import gaussian_filter

    return pixels - gaussian_filter(pixels, 2 * sigma)


def _match(A, B, max_shift: float = 0.12, min_overlap: float = 0.6) -> float:
    """Correlation of ``B`` over ``A`` at the shift where their cross-correlation peaks."""
    import numpy as np
    from scipy import fft

    H = fft.next_fast_len(A.shape[0] + B.shape[0], real=True)
    W = fft.next_fast_len(A.shape[1] + B.shape[1], real=True)
    corr = fft.irfft2(fft.rfft2(A - A.mean(), (H, W)) * np.conj(fft.rfft2(B - B.mean(), (H, W))),
                      (H, W))
    m = int(max_shift * max(A.shape)) + 2
    ys = np.r_[0:min(m + 1, H), max(H - m, m + 1):H]
    xs = np.r_[0:min(m + 1, W), max(W - m, m + 1):W]
    sub = corr[np.ix_(ys, xs)]
    i, j = np.unravel_index(int(np.argmax(sub)), sub.shape)
    dy, dx = int(ys[i]), int(xs[j])
    dy, dx = (dy - H if dy > H // 2 else dy), (dx - W if dx > W // 2 else dx)
    y0, x0 = max(0, dy), max(0, dx)
    y1, x1 = min(A.shape[0], B.shape[0] + dy), min(A.shape[1], B.shape[1] + dx)
    if (y1 - y0) * (x1 - x0) < min_overlap * min(A.size, B.size):
        return -1.0
    pa = A[y0:y1, x0:x1]
    pb = B[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    pa, pb = pa - pa.mean(), pb - pb.mean()
    denom = float(np.sqrt((pa * pa).sum() * (pb * pb).sum()))
    return float((pa * pb).sum() / denom) if denom > 0 else -1.0
