"""Preparing one photo: decoded, oriented, hashed and fitted into a fresh canvas (with the text
search hook and the backdrop painted), then written as its full and display copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image

from .backdrop import _neutralize
from .colour import BACKGROUND, _to_base_mode, _to_eight_bit, _to_srgb
from .decode import (_TRANSPOSE, _check_depth, _heif_reduced, _load_gated, _open, _orientation,
                     _pixel_digest, _seek_frame)
from .encode import _write, _write_disguised, encode_jpeg
from .errors import DeidError
from .fingerprint import Fingerprint, _fingerprint
from .fit import RESAMPLE, Spec, _draft_target, _fit


@dataclass(frozen=True)
class Result:
    """What ``prepare_file`` wrote: the hashes of both copies and of the decoded source pixels.

    ``variants``: for each disguised copy asked for, the sha256 of its full and display copy.
    """

    source: Path
    full_sha256: str
    display_sha256: str
    pixel_sha256: str
    size: tuple[int, int]
    display_size: tuple[int, int] = (0, 0)
    variants: tuple[tuple[str, str], ...] = ()
    fingerprint: "Fingerprint | None" = None  # for the near-duplicate check (:func:`similarity`)
    #: text found in the photo (``assess.pixels.text.Found``, boxes in the full copy's pixels)
    text: tuple = ()
    #: the backdrop painted in the region's colour (``[pixels] normalize``, a reliable mask)
    neutralized: bool = False


@dataclass
class _Fitted:
    image: Image.Image
    pixel_sha256: str
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # where the photo lies on the canvas (the rest is border)
    fingerprint: Fingerprint | None = None
    neutralized: bool = False  # the backdrop painted (``[pixels] normalize``)


def _fitted(src: Path, spec: Spec, frame: int | None = None,
            gains: tuple[float, float, float] | None = None,
            backdrop: tuple[int, int, int] | None = None) -> _Fitted:
    """Decode, orient, hash, fit and colour-convert one photo into a fresh canvas image.

    Holds at most two full-size images at a time (the decoded one and its transposed or resized
    copy) and releases each as soon as it is used.
    """
    img = _open(src)
    base: Image.Image | None = None
    try:
        _check_depth(img, src)
        _seek_frame(img, src, frame)
        orientation = _orientation(img)
        icc = img.info.get("icc_profile") or None
        stored = img.size
        upright = stored[::-1] if orientation in (5, 6, 7, 8) else stored
        if img.format in ("JPEG", "MPO"):
            target = _draft_target(stored, upright, spec)
            img.draft(img.mode if img.mode in ("RGB", "L", "CMYK") else None, target)
        if img.format == "HEIF" and orientation == 1 and not frame:
            reduced = _heif_reduced(src, _draft_target(stored, upright, spec))
            if reduced is not None:
                img.close()
                return _finish(reduced[0], reduced[1], icc, spec, gains, backdrop)
        _load_gated(img, src)
        pixels: Image.Image = img
        if orientation != 1:
            pixels = img.transpose(_TRANSPOSE[orientation])
            img.close()
        if pixels.mode.startswith("I;16") or pixels.mode in ("I", "F"):
            base = _to_eight_bit(pixels, src)
        else:
            base = _to_base_mode(pixels)
        if base is not pixels:
            pixels.close()
        pixel_sha256 = _pixel_digest(base)
    finally:
        if base is not img:  # else _finish uses the decoded image itself, then closes it
            img.close()
    return _finish(base, pixel_sha256, icc, spec, gains, backdrop)


def _finish(base: Image.Image, pixel_sha256: str, icc: bytes | None, spec: Spec,
            gains: tuple[float, float, float] | None = None,
            backdrop: tuple[int, int, int] | None = None) -> _Fitted:
    """Fit the upright pixels to the canvas, convert to sRGB, apply ``gains`` (white balance and
    exposure, as a lookup table per channel), paint the backdrop ``backdrop`` where the subject
    mask is reliable (:func:`_neutralize`) and paste into a fresh image."""
    fingerprint = _fingerprint(base)
    resized, offset = _fit(base, spec.canvas, spec.fit)
    if resized is not base:
        base.close()
    colour = _to_srgb(resized, icc)
    if colour is not resized:
        resized.close()
    if gains is not None and tuple(gains) != (1.0, 1.0, 1.0):
        from ..pixels.visible import gain_tables

        corrected = colour.point(gain_tables(tuple(gains)))
        colour.close()
        colour = corrected
    neutralized = backdrop is not None and _neutralize(colour, backdrop)
    canvas = Image.new("RGB", spec.canvas, BACKGROUND)  # fresh: carries nothing of the source
    canvas.paste(colour, offset)
    box = (offset[0], offset[1], offset[0] + colour.width, offset[1] + colour.height)
    colour.close()
    return _Fitted(canvas, pixel_sha256, box, fingerprint, neutralized)


def _display_copy(full: _Fitted, spec: Spec) -> Image.Image:
    """The display copy: a fresh canvas with the photo resized from the full copy's pixels.

    Only the photo is resampled, not the grey border around it, which costs less and keeps the
    border from blurring into the photo's edge. Closes the full copy.
    """
    display = Image.new("RGB", spec.display_canvas, BACKGROUND)
    sx, sy = display.width / full.image.width, display.height / full.image.height
    left, top, right, bottom = full.box
    if (left, top, right, bottom) == (0, 0, full.image.width, full.image.height):
        small = full.image.resize(display.size, RESAMPLE, reducing_gap=3.0)
        offset = (0, 0)
    else:
        x0, y0 = round(left * sx), round(top * sy)
        size = (max(1, min(display.width, round(right * sx)) - x0),
                max(1, min(display.height, round(bottom * sy)) - y0))
        small = full.image.resize(size, RESAMPLE, box=full.box, reducing_gap=3.0)
        offset = (x0, y0)
    full.image.close()
    display.paste(small, offset)
    small.close()
    return display


def prepare_file(src: Path, full_out: Path, display_out: Path, spec: Spec,
                 variants: Sequence[tuple[Path, Path, int]] = (), frame: int | None = None,
                 text: str = "off", gains: tuple[float, float, float] | None = None,
                 backdrop: tuple[int, int, int] | None = None) -> Result:
    """De-identify one photo: write its full copy and display copy, return their hashes.

    Steps: full decode (JPEG at the smallest DCT scale that still covers the canvas) → EXIF/XMP
    orientation → ``pixel_sha256`` of the upright decoded pixels → fit to ``spec.canvas`` → ICC
    profile to sRGB → transparency onto grey → pasted into a fresh image → baseline JPEG
    (:func:`encode_jpeg`); the display copy is resized from the full copy's pixels, not decoded again.

    ``pixel_sha256`` identifies the photo's pixels as decoded at that scale (the scale depends only
    on the photo's size and the study's long edge, aspect and fit, never on the region's canvas
    orientation), so the same photo in two slots gives the same value. ``fingerprint`` is a small
    greyscale copy of those pixels for :func:`similarity`.

    ``frame`` (0 = first) is the frame of a multi-frame TIFF or PNG to use; without it such a file
    is refused (:data:`MULTI_FRAME_FORMATS`).

    ``variants``: ``(full_out, display_out, seed)`` for each further code the photo is shown under
    (a disguised repeat): a :func:`disguise` copy of the same canvas pixels, with bytes unlike
    those of every other copy of the photo (the display copy's drawn with ``seed`` + 2**32).

    ``text``: ``"off"``, ``"find"`` (the canvas is searched for text, :func:`search_text`, and what
    was found returned in ``Result.text``) or ``"mask"`` (found and covered in every copy), after
    ``gains`` are applied.

    ``gains``: linear-light factors for red, green and blue (``[pixels] normalize``, from
    :func:`assess.pixels.visible.gains`), applied to the photo once it is in sRGB, before it is
    pasted on the canvas (a padding border stays neutral grey); ``pixel_sha256`` and the
    fingerprint are of the source pixels, before them.

    ``backdrop``: an 8-bit sRGB colour (``[pixels] normalize``, from
    :func:`assess.pixels.visible.backdrop_colour`) to paint the photo's backdrop with, after the
    gains, where its subject mask is reliable (:func:`_neutralize`); every copy (full, display,
    disguised repeats) shows the painted backdrop, the padding border stays grey.
    ``Result.neutralized`` says whether it was painted.

    Raises
    ------
    DeidError
        naming ``src`` for unreadable, truncated, corrupt or oversized files. Nothing is left at
        ``full_out``/``display_out`` (or a variant's paths) when it raises.
    """
    src, full_out, display_out = Path(src), Path(full_out), Path(display_out)
    variants = [(Path(f), Path(d), int(seed)) for f, d, seed in variants]
    full = _fitted(src, spec, frame, gains, backdrop)
    try:
        found = search_text(full, text)  # and masked in the canvas, before any copy is encoded
        full_data = encode_jpeg(full.image, spec.quality)
        full_sha = _write(full_out, full_data)
        del full_data
        taken = {full_sha}
        variant_full = [_write_disguised(full.image, seed, spec.quality, f, taken)
                        for f, _, seed in variants]
        display = _display_copy(full, spec)
        display_data = encode_jpeg(display, spec.quality)
        display_sha = _write(display_out, display_data)
        del display_data
        taken = {display_sha}
        variant_display = [_write_disguised(display, seed + 2**32, spec.quality, d, taken)
                           for _, d, seed in variants]
        display.close()
    except OSError as exc:
        for p in (full_out, display_out, *(q for f, d, _ in variants for q in (f, d))):
            p.unlink(missing_ok=True)
        raise DeidError(f"{src}: cannot write the blinded copy ({exc.strerror or exc}); check free disk "
                        "space and permissions of the output folder") from None
    finally:
        full.image.close()
    return Result(source=src, full_sha256=full_sha, display_sha256=display_sha,
                  pixel_sha256=full.pixel_sha256, size=spec.canvas, display_size=spec.display_canvas,
                  variants=tuple(zip(variant_full, variant_display)), fingerprint=full.fingerprint,
                  text=found, neutralized=full.neutralized)


TEXT_ACTIONS = ("off", "find", "mask")


def search_text(full: "_Fitted", action: str) -> tuple:
    """Search the fitted canvas for text (``action`` ``"find"`` or ``"mask"``) on the pixels
    already decoded; with ``"mask"`` the boxes are covered in ``full.image`` itself, before any copy
    is encoded. Returns the :class:`assess.pixels.text.Found` lines (``()`` for ``"off"``)."""
    if action not in TEXT_ACTIONS:
        raise ValueError(f"text must be one of {TEXT_ACTIONS}, not {action!r}")
    if action == "off":
        return ()
    import numpy as np

    from ..pixels import text as text_

    left, top, right, bottom = full.box
    photo = full.image.crop(full.box) if full.box != (0, 0, *full.image.size) else full.image
    found = tuple(text_.Found((x0 + left, y0 + top, x1 + left, y1 + top), f.text, f.confidence)
                  for f in text_.find_text(photo) for x0, y0, x1, y1 in [f.box])
    if action == "mask" and found:
        masked = Image.fromarray(text_.mask(np.asarray(full.image), [f.box for f in found]))
        full.image.close()
        full.image = masked
    return found
