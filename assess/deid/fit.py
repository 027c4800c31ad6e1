"""Fitting to the canvas: the :class:`Spec` of a region (canvas sizes), the scale a photo is
decoded at, and the resize or trim that puts it on the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

RESAMPLE = Image.Resampling.HAMMING
"""Resampling filter for fitting and for the display copy. Pillow's Hamming filter costs what
bilinear costs and is sharper; at the modest reductions used here (typically 1.3-2x after DCT
scaling) it is visually indistinguishable from Lanczos, which takes twice as long. Larger
reductions first average whole blocks of pixels (``reducing_gap=1``), as the JPEG decoder's DCT
scaling does for JPEG input, so every format is reduced alike."""


@dataclass(frozen=True)
class Spec:
    """How every photo of one region is normalized; one Spec per region gives one canvas size.

    ``aspect`` is the canvas ratio in either order (``(4, 3)`` and ``(3, 4)`` mean the same);
    ``portrait`` turns the canvas upright. ``fit`` is ``"pad"`` (the whole photo, centred on a
    neutral grey border) or ``"crop"`` (the canvas is filled, the overhang is cut off centred).
    """

    long_edge: int = 3000
    display_long_edge: int = 2048
    quality: int = 90
    aspect: tuple[int, int] = (4, 3)
    fit: str = "pad"
    portrait: bool = False
    #: Long edge the photo is decoded for (0: ``long_edge``). A region whose full copies are smaller
    #: than the study's long edge still decodes for the study's, so that ``pixel_sha256`` of a photo
    #: does not depend on its region.
    decode_long_edge: int = 0

    def __post_init__(self) -> None:
        if self.fit not in ("pad", "crop"):
            raise ValueError(f"fit must be 'pad' or 'crop', not {self.fit!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be 1 to 100, not {self.quality!r}")
        if not 16 <= self.display_long_edge <= self.long_edge:
            raise ValueError("display_long_edge must be at least 16 and at most long_edge")
        if len(self.aspect) != 2 or min(self.aspect) <= 0:
            raise ValueError(f"aspect must be two positive numbers, not {self.aspect!r}")

    @classmethod
    def from_normalize(cls, normalize, portrait: bool = False) -> "Spec":
        """The Spec for a study's ``[normalize]`` section (``assess.study.Normalize``)."""
        return cls(normalize.long_edge, normalize.display_long_edge, normalize.quality,
                   tuple(normalize.aspect), normalize.fit, portrait)

    def _size(self, long_edge: int) -> tuple[int, int]:
        big, small = max(self.aspect), min(self.aspect)
        short = max(1, round(long_edge * small / big))
        return (short, long_edge) if self.portrait else (long_edge, short)

    @property
    def canvas(self) -> tuple[int, int]:
        """(width, height) of the full copy."""
        return self._size(self.long_edge)

    @property
    def display_canvas(self) -> tuple[int, int]:
        """(width, height) of the display copy."""
        return self._size(self.display_long_edge)


def largest_long_edge(size: tuple[int, int], aspect: tuple[int, int], fit: str,
                      portrait: bool) -> int:
    """The largest canvas long edge at which a photo of ``size`` (upright) is not enlarged.

    ``aspect``, ``fit`` and ``portrait`` as in :class:`Spec`. With ``pad`` the photo must fill the
    canvas in one direction at its own size, with ``crop`` in both.

    >>> largest_long_edge((4000, 3000), (4, 3), "pad", False)
    4000
    >>> largest_long_edge((4000, 2250), (4, 3), "pad", False), largest_long_edge((4000, 2250), (4, 3), "crop", False)
    (4000, 3000)
    >>> largest_long_edge((3000, 4000), (4, 3), "crop", False)
    3000
    >>> largest_long_edge((3000, 4000), (4, 3), "crop", True)
    4000
    """
    w, h = size
    r = min(aspect) / max(aspect)
    along, across = (h, w / r) if portrait else (w, h / r)
    edge = max(along, across) if fit == "pad" else min(along, across)
    return int(edge + 1e-6)


def _scale_for(size: tuple[int, int], canvas: tuple[int, int], fit: str) -> float:
    w, h = size
    cw, ch = canvas
    return min(cw / w, ch / h) if fit == "pad" else max(cw / w, ch / h)


def _draft_target(stored: tuple[int, int], upright: tuple[int, int], spec: Spec) -> tuple[int, int]:
    """Smallest decode size (stored orientation) that covers the canvas in either orientation.

    Both canvas orientations are considered so that the decode scale, and so ``pixel_sha256``, does
    not depend on whether a region's canvas is portrait or landscape.
    """
    edge = max(spec.long_edge, spec.decode_long_edge)
    land = Spec(edge, spec.display_long_edge, spec.quality, spec.aspect, spec.fit, False)
    port = Spec(edge, spec.display_long_edge, spec.quality, spec.aspect, spec.fit, True)
    scale = max(_scale_for(upright, land.canvas, spec.fit), _scale_for(upright, port.canvas, spec.fit))
    scale = min(scale, 1.0)
    return (max(1, int(stored[0] * scale)), max(1, int(stored[1] * scale)))


TRIM = 0.01
"""A photo within 1% of the size it must have on the canvas is trimmed (or given a border of a
few pixels) rather than resampled: resampling a whole image to change its size by less than 1%
would only soften it, and cost as much as any other resize."""


def _fit(img: Image.Image, canvas: tuple[int, int], fit: str) -> tuple[Image.Image, tuple[int, int]]:
    """Resize for the canvas; return the resized image and where to paste it."""
    cw, ch = canvas
    w, h = img.size
    s = min(cw / w, ch / h) if fit == "pad" else max(cw / w, ch / h)
    if abs(s - 1.0) <= TRIM:
        # no resampling: keep the pixels 1:1, centre-crop what overhangs the canvas
        left, top = max(0, (w - cw) // 2), max(0, (h - ch) // 2)
        out = img if (w <= cw and h <= ch) else img.crop((left, top, left + min(w, cw), top + min(h, ch)))
        return out, ((cw - out.width) // 2, (ch - out.height) // 2)
    if fit == "pad":
        nw, nh = min(cw, max(1, round(w * s))), min(ch, max(1, round(h * s)))
        out = img.resize((nw, nh), RESAMPLE, reducing_gap=1.0)
        return out, ((cw - nw) // 2, (ch - nh) // 2)
    bw, bh = cw / s, ch / s  # the part of the source that fills the canvas
    box = ((w - bw) / 2, (h - bh) / 2, (w + bw) / 2, (h + bh) / 2)
    return img.resize((cw, ch), RESAMPLE, box=box, reducing_gap=1.0), (0, 0)
