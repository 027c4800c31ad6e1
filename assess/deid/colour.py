"""Colour: an embedded ICC profile to sRGB, any decoded mode to RGB, L or CMYK (transparency onto
the neutral grey), 16-bit and float images to 8 bits by their bit depth.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, ImageCms

from .errors import DeidError

BACKGROUND = (128, 128, 128)
"""Neutral grey used for padding and under transparent pixels."""


_SRGB = None
_TRANSFORMS: dict[tuple[str, bytes], object] = {}


def _srgb():
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB


def _is_srgb(profile) -> bool:
    """A matrix/TRC RGB profile with the sRGB colorants (what most cameras embed): nothing to do."""
    try:
        p = profile.profile
        if p.xcolor_space.strip() != "RGB" or not p.is_matrix_shaper:
            return False
        ref = _srgb().profile
        pairs = ((p.red_colorant, ref.red_colorant), (p.green_colorant, ref.green_colorant),
                 (p.blue_colorant, ref.blue_colorant))
        return all(abs(a - b) < 0.005 for mine, theirs in pairs for a, b in zip(mine[0], theirs[0]))
    except Exception:
        return False


def _transform_for(mode: str, icc: bytes):
    """The cached lcms transform from ``icc`` to sRGB, or ``None`` (sRGB already, or unusable)."""
    key = (mode, hashlib.sha256(icc).digest())
    if key in _TRANSFORMS:
        return _TRANSFORMS[key]
    transform = None
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if not (mode == "RGB" and _is_srgb(src)):
            transform = ImageCms.buildTransform(src, _srgb(), mode, "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        transform = None
    if len(_TRANSFORMS) > 32:
        _TRANSFORMS.clear()
    _TRANSFORMS[key] = transform
    return transform


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert to RGB through the embedded ICC profile when there is one (sRGB otherwise assumed).

    A profile with the sRGB colorants is taken as sRGB (no work). A profile lcms cannot use
    (malformed, or for another colour space than the pixels) is ignored: the pixels are then read
    as sRGB, as every browser would show them.
    """
    transform = _transform_for(img.mode, icc) if icc else None
    if transform is not None:
        try:
            if img.mode == "RGB":
                ImageCms.applyTransform(img, transform, inPlace=True)
                return img
            return ImageCms.applyTransform(img, transform)
        except (ImageCms.PyCMSError, ValueError):
            pass
    return img if img.mode == "RGB" else img.convert("RGB")


def _to_base_mode(img: Image.Image) -> Image.Image:
    """Bring any decoded mode to RGB, L or CMYK; transparency is flattened onto :data:`BACKGROUND`."""
    mode = img.mode
    if mode in ("RGB", "L", "CMYK"):
        return img
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _to_eight_bit(img, None)
    if mode in ("YCbCr", "LAB", "HSV"):
        return img.convert("RGB")
    return img.convert("RGB")


FLOAT_TOLERANCE = 0.002
"""How far a float image's values may lie outside 0..1 (rounding in the program that wrote it)
before it is refused; the values within are clipped."""


def _to_eight_bit(img: Image.Image, path: Path | None) -> Image.Image:
    """A 16-bit or float greyscale image in 8 bits, by its bit depth, never by its content.

    16-bit (``I;16*``, or ``I`` from a 16-bit file): 0..65535 maps to 0..255 (v / 257), so a dark
    16-bit photo stays dark. Float (``F``): 0..1 maps to 0..255 (1.0 is white, the convention of
    float TIFFs); values outside 0..1 (beyond :data:`FLOAT_TOLERANCE`) or not numbers are refused,
    since stretching each photo by its own range would change its exposure from one visit to the
    next. 32-bit integer images are refused when opened (:func:`_check_depth`).
    """
    if img.mode == "F":
        lo, hi = img.getextrema()
        if not (lo == lo and hi == hi) or lo < -FLOAT_TOLERANCE or hi > 1 + FLOAT_TOLERANCE:
            where = f"{path}: " if path else ""
            raise DeidError(f"{where}a floating-point image with values from {lo:g} to {hi:g}; assess "
                            "reads float images on 0..1 (1 = white): export it as an 8- or 16-bit "
                            "TIFF or PNG (or as JPEG)")
        return img.point(lambda v: v * 255.0 + 0.5).convert("L")
    wide = img.convert("I")
    return wide.point(lambda v: v / 257.0 + 0.5).convert("L")
