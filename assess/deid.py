"""The pixel pipeline: the only module that decodes and encodes images.

A clinical photo leaves this module as a JPEG that carries nothing but pixels. Each photo is
decoded in full (a truncated or corrupt file is refused), turned upright by its EXIF/XMP orientation,
converted from its embedded ICC profile to sRGB, flattened onto a neutral background if it has
transparency, copied into a *fresh* image (so no metadata of the source can travel along), fitted to
the region's canvas and written twice (a full copy for zoom, a display copy for paging) with one fixed
encoder setting for every photo of the study: baseline JPEG, the same quantization tables, the same
chroma subsampling, the standard Huffman tables and one fixed JFIF header. Two cameras therefore give
files that differ only in their pixels.

Two things are done to the written files so that no file property tells a photo apart
(docs/formats.md): :func:`equalize_sizes` pads every file of a kind and region to one size with JPEG
fill bytes, and a photo shown under a second code (a disguised repeat) gets a copy made by
:func:`disguise`, which encodes to other bytes with no visible change.

Speed and memory: a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still covers the
canvas, and a large HEIC is reduced strip by strip as it comes out of libheif, so a 12 MP phone
photo or a 24 MP DSLR photo is decoded at about a quarter of its pixels for the default 2000-pixel
canvas; the display copy is made from the full copy's pixels, not decoded again. Batches run in one
process per core, one full-size decode at a time, with the C heap trimmed after each photo
(``bench/deid.py`` measures it against exiftool, ImageMagick and a plain Pillow loop).

>>> spec = Spec(long_edge=400, display_long_edge=200, quality=90, aspect=(4, 3), fit="pad", portrait=False)
>>> spec.canvas, spec.display_canvas
((400, 300), (200, 150))
>>> Spec(400, 200, 90, (4, 3), "crop", portrait=True).canvas
(300, 400)
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import random
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageFont, UnidentifiedImageError

from .errors import AssessError

__all__ = [
    "DeidError",
    "OutputError",
    "Probe",
    "Spec",
    "Result",
    "probe",
    "prepare_file",
    "prepare_files",
    "Workers",
    "encode_jpeg",
    "disguise",
    "DISGUISE_SHARE",
    "padding_fraction",
    "render_contact_sheet",
    "equalize_sizes",
    "MAX_PIXELS",
    "JFIF_APP0",
    "SUBSAMPLING",
    "BACKGROUND",
]

MAX_PIXELS = 100_000_000
"""Largest image accepted (width × height of the stored image). Larger files are refused as
possible decompression bombs; no clinical camera comes near it (a 61 MP full-frame sensor does not)."""

SUBSAMPLING = "4:2:0"
"""Chroma subsampling of every written JPEG (the same for all photos, whatever the camera used)."""

RESAMPLE = Image.Resampling.HAMMING
"""Resampling filter for fitting and for the display copy. Pillow's Hamming filter costs what
bilinear costs and is sharper; at the modest reductions used here (typically 1.3-2x after DCT
scaling) it is visually indistinguishable from Lanczos, which takes twice as long. Larger
reductions first average whole blocks of pixels (``reducing_gap=1``), as the JPEG decoder's DCT
scaling does for JPEG input, so every format is reduced alike."""

BACKGROUND = (128, 128, 128)
"""Neutral grey used for padding and under transparent pixels."""

FORMATS = ("JPEG", "PNG", "TIFF", "HEIF")
"""Pillow formats accepted as input (MPO is opened by the JPEG plugin: its first frame is used)."""

JFIF_APP0 = bytes.fromhex("ffe000104a46494600010100000100010000")
"""The one APP0 segment every written JPEG carries: JFIF 1.1, no density unit, 1:1, no thumbnail."""

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112
_FULL_DECODES = threading.BoundedSemaphore(2)  # full-size decodes in probe(full=True) at a time
_WORKER_GATE = None  # in pool workers: a semaphore shared by all workers for full-size decodes
_GATE_TIMEOUT = 600.0  # seconds; a worker never waits forever for a crashed sibling
_GATE_PIXELS = 8_000_000  # decodes larger than this (after DCT scaling) take the gate


class OutputError(AssessError):
    """A de-identified copy cannot be written (a full disk, a read-only folder): the output
    folder is at fault, not the photo. ``reason`` is the system's word for it, ``path`` the file,
    ``errno`` the error number (``errno.ENOSPC`` for a full disk).
    """

    def __init__(self, reason: str, path: str, errno: int | None = None):
        super().__init__(reason, path, errno)
        self.reason, self.path, self.errno = reason, path, errno

    def __str__(self) -> str:
        return f"{self.path}: cannot write the de-identified copy ({self.reason})"


class DeidError(AssessError):
    """A photo cannot be de-identified; the message names the file and says what to do.

    Raised by :func:`prepare_files` for a batch, it also carries ``failures`` (job index ->
    message naming the file) and ``results`` (the :class:`Result` of every job that succeeded,
    ``None`` for the others), so that a caller can report the failures together with its own
    checks of the rest.
    """

    def __init__(self, message: str, failures: dict[int, str] | None = None,
                 results: list | None = None):
        super().__init__(message)
        self.failures = dict(failures or {})
        self.results = list(results or [])


def _register_heif() -> None:
    """Register pillow-heif's opener without thumbnails, depth or auxiliary images.

    With thumbnails enabled, pillow-heif's ``draft`` may decode the embedded thumbnail instead of the
    photo; we never want that. libheif applies the ``irot``/``imir`` transforms while decoding and
    pillow-heif resets the EXIF orientation to 1, so the rotation is applied exactly once. Two
    decoding threads: only one worker at a time decodes a HEIC (see :func:`prepare_files`), and
    it may then use both cores.
    """
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - pillow-heif is a dependency
        return
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False,
                                     decode_threads=2)


_register_heif()


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Probe:
    """What a cheap look at a photo's header tells: size *after* orientation, format and file hash."""

    width: int
    height: int
    format: str
    bytes_sha256: str
    orientation: int = 1
    frames: tuple[tuple[int, int], ...] = ()  # (width, height) of each frame of a multi-frame file

    @property
    def portrait(self) -> bool:
        return self.height > self.width


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


# --------------------------------------------------------------------------- opening


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _open(path: Path) -> Image.Image:
    """Open a photo, check it is an accepted format of sane size; errors name the file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DeidError(f"{path}: no such file; check the path") from None
    except OSError as exc:
        raise DeidError(f"{path}: cannot read the file ({exc.strerror}); check its permissions") from None
    if size == 0:
        raise DeidError(f"{path}: the file is empty (0 bytes); copy the photo again from the camera "
                        "or remove it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path, formats=FORMATS)
    except Image.DecompressionBombError:
        raise _bomb(path, None) from None
    except UnidentifiedImageError:
        raise DeidError(f"{path}: not an image Pillow can read as JPEG, PNG, TIFF or HEIC; export the "
                        "photo again as JPEG, or remove the file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DeidError(f"{path}: cannot read the image header ({exc}); the file is damaged — copy it "
                        "again from the camera or remove it") from None
    w, h = img.size
    if w <= 0 or h <= 0:
        img.close()
        raise DeidError(f"{path}: the image has no pixels ({w}x{h}); remove the file")
    if w * h > MAX_PIXELS:
        img.close()
        raise _bomb(path, (w, h))
    if img.format == "HEIF" and _bmff_truncated(path, size):
        img.close()
        raise DeidError(f"{path}: the file is truncated (its last part is missing); copy the photo "
                        "again from the phone or camera, or remove it")
    return img


def _bmff_truncated(path: Path, size: int) -> bool:
    """Whether a HEIF file's top-level boxes run past its end.

    libheif decodes a truncated grid image (as iPhones write) without an error and fills the
    missing tiles with flat colour, so truncation is checked on the container: every top-level
    ISO-BMFF box (``ftyp``, ``meta``, ``mdat``, …) must end inside the file.
    """
    with open(path, "rb") as fh:
        pos = 0
        while pos < size:
            fh.seek(pos)
            head = fh.read(16)
            if len(head) < 8:
                return True
            box = int.from_bytes(head[:4], "big")
            if box == 1:
                if len(head) < 16:
                    return True
                box = int.from_bytes(head[8:16], "big")
            elif box == 0:  # the last box runs to the end of the file
                return False
            if box < 8:
                return True
            pos += box
        return pos > size


def _bomb(path: Path, size: tuple[int, int] | None) -> DeidError:
    dims = f"{size[0]}x{size[1]} = {size[0] * size[1] / 1e6:.0f} MP, " if size else ""
    return DeidError(f"{path}: the image is too large ({dims}limit {MAX_PIXELS / 1e6:.0f} MP) and may be "
                     "a decompression bomb; reduce it to a normal photo size or remove it")


def _orientation(img: Image.Image) -> int:
    """EXIF orientation 1-8 (Pillow also reads an XMP ``tiff:Orientation``); 1 when absent or invalid."""
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a malformed EXIF block: the photo is shown as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def probe(path: Path, full: bool = False) -> Probe:
    """Check a photo cheaply before anything is written.

    Reads the header only (unless ``full``): refuses zero-byte files, files that are not an image,
    unreadable files, images over :data:`MAX_PIXELS` and truncated HEIC containers.
    ``width``/``height`` are after EXIF orientation. With ``full=True`` the compressed data of
    JPEG (at 1/8 scale), PNG and TIFF files is decoded too, which also catches their truncation;
    at most two full-size decodes run at once (thread-safe, memory stays bounded). HEIC files are
    checked at the container level in either case (libheif decodes a truncated file silently).

    Raises
    ------
    DeidError
        naming the file and saying what to do.
    """
    path = Path(path)
    img = _open(path)
    try:
        orientation = _orientation(img)
        fmt = img.format or "?"
        w, h = img.size
        _check_depth(img, path)
        frames = _frame_sizes(img)
        if full:
            if fmt in ("JPEG", "MPO"):
                img.draft(img.mode if img.mode in ("RGB", "L", "CMYK") else None, (max(1, w // 8), max(1, h // 8)))
                _load(img, path)
            elif fmt != "HEIF":
                # PNG and TIFF decode at full size: bound how many do so at once, whatever the
                # caller's thread count, so that memory stays flat
                with _FULL_DECODES:
                    _load(img, path)
            # HEIF: libheif reports neither truncated grids nor damaged tiles when decoding, so a
            # full decode would add nothing to the container check _open has made
    finally:
        img.close()
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return Probe(width=w, height=h, format=fmt, bytes_sha256=_sha256_file(path), orientation=orientation,
                 frames=frames)


MULTI_FRAME_FORMATS = ("TIFF", "PNG")
"""Formats whose extra frames are other pictures (pages of a TIFF, frames of an animated PNG): such a
file is refused unless the study names the frame to use. An MPO's (JPEG) later frames are previews
or a stereo partner, and a HEIF file's primary image is the photo: those formats use their first or
primary image, as any viewer shows."""


def _frame_sizes(img: Image.Image, limit: int = 20) -> tuple[tuple[int, int], ...]:
    """``(width, height)`` of each frame (at most ``limit``) of a multi-frame TIFF or PNG, else ``()``."""
    if img.format not in MULTI_FRAME_FORMATS:
        return ()
    try:
        count = getattr(img, "n_frames", 1)
        if count <= 1:
            return ()
        sizes = []
        for i in range(min(count, limit)):
            img.seek(i)
            sizes.append(img.size)
        img.seek(0)
        return tuple(sizes) + ((0, 0),) * (count - len(sizes))
    except (OSError, EOFError, ValueError, SyntaxError):
        return ((img.width, img.height), (0, 0))  # a damaged second frame: refused as multi-frame


def _check_depth(img: Image.Image, path: Path) -> None:
    """Refuse 32-bit integer images: their range has no defined white (16-bit, float 0..1 and 8-bit
    are read; see :func:`_to_eight_bit`)."""
    raw = ""
    if img.tile:
        args = img.tile[0].args
        raw = args[0] if isinstance(args, tuple) and args else str(args or "")
    if img.mode == "I" and "32" in str(raw):
        raise DeidError(f"{path}: a 32-bit integer image, whose values have no defined white; export "
                        "it as an 8- or 16-bit TIFF or PNG (or as JPEG)")


def _load(img: Image.Image, path: Path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except Image.DecompressionBombError:
        raise _bomb(path, img.size) from None
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError) as exc:
        raise DeidError(f"{path}: the image data is truncated or corrupt ({exc}); copy the photo again "
                        "from the camera or remove it") from None


# --------------------------------------------------------------------------- pixels


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


def _pixel_digest(img: Image.Image) -> str:
    """sha256 of the image's mode, size and pixels averaged over 4×4 blocks.

    Block averages identify a photo as surely as every pixel (two different photos do not agree
    on millions of block means) at a sixteenth of the hashing work.
    """
    small = img.reduce(4) if min(img.size) >= 64 else img
    h = hashlib.sha256(f"{img.mode} {img.width}x{img.height}\n".encode())
    h.update(small.tobytes())
    return h.hexdigest()


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

    from .pixels import text as text_

    left, top, right, bottom = full.box
    photo = full.image.crop(full.box) if full.box != (0, 0, *full.image.size) else full.image
    found = tuple(text_.Found((x0 + left, y0 + top, x1 + left, y1 + top), f.text, f.confidence)
                  for f in text_.find_text(photo) for x0, y0, x1, y1 in [f.box])
    if action == "mask" and found:
        masked = Image.fromarray(text_.mask(np.asarray(full.image), [f.box for f in found]))
        full.image.close()
        full.image = masked
    return found


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
        if _WORKER_GATE is not None and img.width * img.height > _GATE_PIXELS:
            # a HEIC, PNG or TIFF (or a JPEG that DCT scaling cannot shrink) decodes at full
            # size, holding two copies of the image for a moment (libheif's and Pillow's): one
            # worker at a time does so, which keeps the process tree's peak memory flat
            acquired = _WORKER_GATE.acquire(timeout=_GATE_TIMEOUT)
            try:
                _load(img, src)
            finally:
                if acquired:
                    _WORKER_GATE.release()
        else:
            _load(img, src)
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


def _seek_frame(img: Image.Image, src: Path, frame: int | None) -> None:
    """Go to the chosen frame of a multi-frame TIFF or PNG; refuse such a file without a choice."""
    count = getattr(img, "n_frames", 1) if img.format in MULTI_FRAME_FORMATS else 1
    if frame is None:
        if count > 1:
            raise DeidError(f"{src}: holds {count} frames (pages or animation); say which is the photo "
                            "in study.toml under [photos] frames, or save that frame alone")
        return
    if not 0 <= frame < count:
        raise DeidError(f"{src}: has {count} frame(s), so frame {frame + 1} does not exist; fix "
                        "[photos] frames in study.toml")
    if frame:
        try:
            img.seek(frame)
        except (OSError, EOFError, ValueError) as exc:
            raise DeidError(f"{src}: frame {frame + 1} cannot be read ({exc}); save the photo again "
                            "or choose another frame") from None


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
        from .pixels.visible import gain_tables

        corrected = colour.point(gain_tables(tuple(gains)))
        colour.close()
        colour = corrected
    neutralized = backdrop is not None and _neutralize(colour, backdrop)
    canvas = Image.new("RGB", spec.canvas, BACKGROUND)  # fresh: carries nothing of the source
    canvas.paste(colour, offset)
    box = (offset[0], offset[1], offset[0] + colour.width, offset[1] + colour.height)
    colour.close()
    return _Fitted(canvas, pixel_sha256, box, fingerprint, neutralized)


def _neutralize(photo: Image.Image, colour: tuple[int, int, int]) -> bool:
    """Paint the backdrop of the fitted sRGB photo (in place) in ``colour``; ``False``, leaving it
    as it is, when its subject mask is not reliable (:func:`assess.pixels.visible.backdrop_weight`).

    The mask and the weights are found on a copy reduced by a whole factor to at most
    :data:`GAINS_EDGE` pixels (block means); the weights are scaled back up bilinearly and the
    flat colour pasted through their complement, so a pixel of weight 1 (the subject and its
    margin) stays the photo's own. About 0.03 s of CPU for 1600 × 1200 pixels, 0.06 s for
    3000 × 2250 (0.016 s of it the mask and the weights).
    """
    import numpy as np

    from .pixels.visible import backdrop_weight

    factor = max(1, -(-max(photo.size) // GAINS_EDGE))
    small = photo.reduce(factor) if factor > 1 else photo
    weight = backdrop_weight(np.asarray(small))
    if small is not photo:
        small.close()
    if weight is None:
        return False
    cover = Image.fromarray(np.round((1.0 - weight) * 255.0).astype(np.uint8), "L")
    if cover.size != photo.size:
        cover = cover.resize(photo.size, Image.Resampling.BILINEAR)
    photo.paste(tuple(int(v) for v in colour), (0, 0, *photo.size), cover)
    cover.close()
    return True


def _heif_reduced(src: Path, target: tuple[int, int]) -> tuple[Image.Image, str] | None:
    """Decode a HEIC and shrink it by a whole factor strip by strip, without a full Pillow copy.

    libheif hands over the decoded photo in its own buffer; the Pillow plugin would copy it whole
    into a second full-size image. Here strips of that buffer are averaged over k×k blocks (what
    ``Image.reduce`` does, and what DCT scaling does for JPEG) straight into the k-times smaller
    image, and the 4×4 block means for ``pixel_sha256`` are taken on the way, so the result equals
    the plugin path's. ``None`` when the photo is not 8-bit RGB(A) or needs no reduction; the
    caller then takes the plugin path.
    """
    import pillow_heif

    heif = pillow_heif.open_heif(src, convert_hdr_to_8bit=True, remove_stride=False)
    try:
        frame = heif[heif.primary_index]
        w, h = frame.size
        k = min(w // max(1, target[0]), h // max(1, target[1]))
        if k < 2 or frame.mode not in ("RGB", "RGBA") or min(w, h) < 64:
            return None
        if _WORKER_GATE is not None:
            acquired = _WORKER_GATE.acquire(timeout=_GATE_TIMEOUT)
        else:
            acquired = False
        try:
            data = memoryview(frame.data)
        finally:
            if acquired:
                _WORKER_GATE.release()
        stride, mode = frame.stride, frame.mode
        step = 4 * k * 16  # rows per strip: a multiple of both k and 4
        out = Image.new(mode, (-(-w // k), -(-h // k)))
        digest = hashlib.sha256(f"RGB {w}x{h}\n".encode())
        for top in range(0, h, step):
            rows = min(step, h - top)
            strip = Image.frombuffer(mode, (w, rows), data[top * stride:(top + rows) * stride],
                                     "raw", mode, stride, 1)
            if mode == "RGBA":
                strip = _to_base_mode(strip)
            out.paste(strip.reduce(k), (0, top // k))
            digest.update(strip.reduce(4).tobytes())
            strip.close()
        data.release()
    except (ValueError, OSError, RuntimeError, EOFError) as exc:
        raise DeidError(f"{src}: the image data is corrupt ({exc}); copy the photo again from the "
                        "phone or camera, or remove it") from None
    finally:
        del heif
    if out.mode != "RGB":
        out = out.convert("RGB")
    return out, digest.hexdigest()


# --------------------------------------------------------------------------- near-duplicates


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


# --------------------------------------------------------------------------- batches


def _glibc(name: str) -> Callable | None:
    """The C library function ``name`` of glibc (Linux), or ``None`` elsewhere."""
    try:
        import ctypes

        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


PARENT_CHECK_SECONDS = 0.5
"""How often a worker checks that the process that started it still runs."""


def end_with_parent(parent: int) -> None:
    """End this process as soon as ``parent`` (the process that started it) ends, killed included.

    A worker waits for photos on a pipe that it holds open itself, so a parent killed outright
    (SIGKILL, the out-of-memory killer) would leave it blocked forever. On Linux the kernel ends it
    with the parent's thread that started it (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon
    thread also checks every :data:`PARENT_CHECK_SECONDS` that the parent is still its parent and
    ends the process otherwise. A parent already gone ends it at once.
    """
    prctl = _glibc("prctl")
    if prctl is not None:
        import signal

        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # gone before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="assess-parent-watch", daemon=True).start()


def share_one_heap() -> None:
    """Make every thread of this process allocate from one C heap (glibc's ``M_ARENA_MAX = 1``).

    By default glibc gives each new thread a heap (arena) of its own. What a thread frees at the
    top of its heap stays resident, and ``malloc_trim`` does not return it: a thread that read a
    few large files keeps 10-15 MB for the life of the process. With one heap, a trim returns
    everything free. The threads of assess read files, run decoders that allocate a few large
    buffers per photo, or run Python, which allocates under its global lock anyway, so they seldom
    wait for each other's allocations (randomize ran as fast with it as without, bench/deid.py).
    It applies to the whole process for the rest of its life (``assess demo`` serves the rating
    app from the same process afterwards) and only to heaps not made yet; elsewhere than glibc it
    does nothing.
    """
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(-8, 1)  # M_ARENA_MAX


def _init_worker(gate, parent: int | None = None, text: bool = False) -> None:
    global _WORKER_GATE, _TRIM_HEAP, _READY_RESIDENT
    if parent is not None:
        end_with_parent(parent)
    _WORKER_GATE = gate
    _TRIM_HEAP = _heap_trimmer()
    share_one_heap()  # libheif's decoding threads: the worker's memory stays flat
    if text:  # while the caller still reads the photos' headers, not when the first photo waits
        from .pixels import text as text_

        text_.preload()
    _READY_RESIDENT = _resident() or 0


def _heap_trimmer() -> Callable[[], object] | None:
    """glibc's ``malloc_trim`` when available (Linux), else ``None``.

    A freed image leaves its pages in the C heap; without a trim a worker's resident memory stays
    at the high-water mark of the largest photo it ever decoded, and two workers that each met a
    large HEIC or TIFF sit at that mark together. Workers trim only above :data:`KEEP_RESIDENT`
    (see :func:`_job`).
    """
    trim = _glibc("malloc_trim")
    return None if trim is None else lambda: trim(0)


_TRIM_HEAP: Callable[[], object] | None = None

KEEP_RESIDENT = 96 * 2**20
"""Resident memory (bytes) a worker keeps between photos beyond what it holds once ready
(:data:`_READY_RESIDENT`: the libraries, and the text search's model when it is on). The pages
freed by one photo are reused by the next; returning them to the system after every photo and
faulting them in again cost about 6% of the pipeline's CPU time. A worker holds about 70 MB between
ordinary photos beyond its libraries; above this limit, after an unusually large photo, it trims
its heap."""

_READY_RESIDENT = 0
"""This worker's resident memory once it was ready for its first photo (0 outside a worker)."""


def _resident() -> int | None:
    """This process's resident memory in bytes (``None`` where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _job(job: tuple[Path, Path, Path, Spec]) -> tuple[bool, object]:
    try:
        return _job_inner(job)
    finally:
        if _TRIM_HEAP is not None:
            resident = _resident()
            if resident is None or resident > _READY_RESIDENT + KEEP_RESIDENT:
                _TRIM_HEAP()


def _job_inner(job: tuple[Path, Path, Path, Spec]) -> tuple[bool, object]:
    try:
        return True, prepare_file(*job)
    except OutputError:
        raise  # the output folder, not the photo: the whole batch stops
    except DeidError as exc:
        return False, str(exc)
    except MemoryError:
        return False, f"{job[0]}: not enough memory to decode the image; close other programs and retry"
    except Exception as exc:  # an unexpected decoder failure is still reported per file
        return False, f"{job[0]}: cannot process the image ({type(exc).__name__}: {exc})"


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_FULL_SIZE_TYPES = (".heic", ".heif", ".png", ".tif", ".tiff")
"""Photos decoded at full size whatever the canvas (no DCT scaling as for JPEG)."""


QUICK_TAIL = 12
"""Jobs at the end of a batch that hold no photo decoded at full size."""


def _spread_full_size_decodes(jobs: list[tuple[Path, Path, Path, Spec]]) -> list[int]:
    """The order in which to hand out jobs: photos decoded at full size spread evenly among the
    others, and the batch ending with photos that are quick to do.

    Only one worker at a time decodes at full size (the gate in :func:`_fitted`); two such photos
    handed out together would leave one worker waiting for the other. Evenly spread, each comes
    long after the one before. They are spread over all but the last :data:`QUICK_TAIL` jobs (or
    the last half of the quick ones, when there are fewer), so that no worker is still decoding a
    large photo while the other has nothing left to do.

    >>> names = ["a.heic", "b.heic", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]
    >>> [names[i] for i in _spread_full_size_decodes([(Path(n),) for n in names])]
    ['c.jpg', 'a.heic', 'd.jpg', 'b.heic', 'e.jpg', 'f.jpg']
    """
    heavy = [i for i, job in enumerate(jobs) if Path(job[0]).suffix.lower() in _FULL_SIZE_TYPES]
    if not heavy or len(heavy) == len(jobs):
        return list(range(len(jobs)))
    chosen = set(heavy)
    light = [i for i in range(len(jobs)) if i not in chosen]
    n = len(jobs)
    span = n - min(QUICK_TAIL, len(light) // 2)
    keyed = [((k + 0.5) * span / len(heavy), 1, i) for k, i in enumerate(heavy)]
    keyed += [((k + 0.5) * n / len(light), 0, i) for k, i in enumerate(light)]
    return [i for _, _, i in sorted(keyed)]


def _ready() -> None:
    """A job that does nothing: submitting it makes the pool start a worker."""


class Workers:
    """Worker processes for :func:`prepare_files`, started ahead of the batch.

    Starting a worker (a fresh interpreter that imports Pillow and libheif) takes a few tenths of
    a second. A caller with other work to do before the batch (reading the photos' headers) starts
    the workers first, so they are ready when the batch comes; ``with Workers() as pool: …``
    stops them at the end, dropping photos not started yet if the block fails.

    With one worker (``workers=1`` or a one-core machine) no process is started and
    :func:`prepare_files` works in the calling process. With ``text``, each worker loads the text
    search (:func:`assess.pixels.text.preload`) as it starts. The workers end with this process even
    when it is killed outright (:func:`end_with_parent`); on Linux also with the thread that made
    the pool, so make it in a thread that outlives it.
    """

    def __init__(self, workers: int | None = None, text: bool = False) -> None:
        self.size = max(1, workers or _default_workers())
        self.executor: ProcessPoolExecutor | None = None
        if self.size > 1:
            ctx = get_context("spawn")
            # no max_tasks_per_child: on Python 3.11-3.13 a worker that retires is not replaced and
            # the pool hangs once more than workers x limit jobs are queued (CPython gh-115634)
            gate = ctx.BoundedSemaphore(1)
            self.executor = ProcessPoolExecutor(max_workers=self.size, mp_context=ctx,
                                                initializer=_init_worker,
                                                initargs=(gate, os.getpid(), text))
            for _ in range(self.size):  # workers are started on demand: one per job submitted
                self.executor.submit(_ready)

    def close(self, cancel: bool = False) -> None:
        """Stop the workers (at once for photos not started yet when ``cancel``)."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=cancel)
            self.executor = None

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, exc_type, *exc) -> bool:
        self.close(cancel=exc_type is not None)
        return False


def prepare_files(jobs: list[tuple[Path, Path, Path, Spec]], workers: int | None = None,
                  progress: Callable[[int], None] | None = None,
                  pool: Workers | None = None) -> list[Result]:
    """Run :func:`prepare_file` over many photos on all cores; results in job order.

    Each job is the arguments of :func:`prepare_file`: ``(src, full_out, display_out, spec)``,
    with a fifth, ``variants``, for a photo that is shown under more than one code, then
    ``frame`` and ``gains`` (``[pixels] normalize``) when given.

    Workers are fresh processes (``spawn``) that hold one photo at a time, so memory stays flat
    whatever the batch size; only one worker at a time decodes an image at full size (HEIC, PNG,
    TIFF, or a JPEG that DCT scaling cannot reduce), so two large decodes never add up, and such
    photos are handed out spread through the batch (:func:`_spread_full_size_decodes`).
    ``progress(n)`` is called with the number of photos just finished (1 each time). ``pool``:
    :class:`Workers` started earlier by the caller, who stops them; without it the workers are
    started here (``workers`` of them, default one per core) and stopped at the end. On an error,
    Ctrl+C or SIGTERM, photos not started yet are dropped, not waited for.

    Raises
    ------
    DeidError
        once, after every photo has been tried, listing every failing file and why. Files already
        written for other photos are left for the caller (who builds the set aside) to discard.
    OutputError
        at once when a copy cannot be written (a full disk): the photos not started are dropped.
    """
    jobs = list(jobs)
    if not jobs:
        return []
    results: list[Result | None] = [None] * len(jobs)
    errors: list[tuple[int, str]] = []
    trim = _heap_trimmer()
    if trim is not None:  # whatever the caller freed (e.g. ingest's reading threads) goes back first
        trim()
    own = pool is None
    if pool is None:
        pool = Workers(max(1, min(workers or _default_workers(), len(jobs))))
    futures: dict = {}

    def outcomes():
        """``(job index, ok, result or error)`` of each photo as it is done."""
        if pool.executor is None:
            for i, job in enumerate(jobs):
                yield (i, *_job(job))
            return
        futures.update({pool.executor.submit(_job, jobs[i]): i
                        for i in _spread_full_size_decodes(jobs)})
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                ok, value = fut.result()
            except OutputError:
                raise
            except Exception as exc:  # a worker died (e.g. killed for memory)
                ok, value = False, f"{jobs[i][0]}: the worker processing it stopped ({exc}); retry"
            yield i, ok, value

    try:
        for i, ok, value in outcomes():
            if ok:
                results[i] = value
            else:
                errors.append((i, value))
            if progress:
                progress(1)
    except BaseException:
        for fut in futures:  # photos not started yet are dropped, not waited for
            fut.cancel()
        if own:
            pool.close(cancel=True)
        raise
    if own:
        pool.close()
    if errors:
        errors.sort()
        lines = "\n".join(f"  {msg}" for _, msg in errors)
        raise DeidError(f"{len(errors)} of {len(jobs)} photo(s) could not be de-identified:\n{lines}",
                        failures=dict(errors), results=results)
    return results  # type: ignore[return-value]


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


# --------------------------------------------------------------------------- checks on written files


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


LOOK_EDGE = 512
"""Long edge (at most) at which a photo's look is measured (:mod:`assess.pixels.visible`): about
0.1 s a photo (at 1280 it would be 0.5 s)."""
GAINS_EDGE = 320
"""Long edge of the canvas a source photo is decoded for to compute its ``[pixels] normalize``
gains (:func:`look_file`): means of colour need few pixels, and the pass costs about a fifth of
what the pixel pipeline does for a 2 MP photo."""


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

    from .pixels.visible import measure

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


def render_contact_sheet(tiles: list[tuple[str, Path]], out: Path, columns: int = 8, tile: int = 240,
                         rows_per_page: int = 12,
                         outlines: dict[str, list[tuple[float, float, float, float]]] | None = None
                         ) -> list[Path]:
    """Draw labelled thumbnails of ``(label, path)`` into one or more JPEG pages.

    Pages hold ``columns × rows_per_page`` photos so memory stays small for any set size; the first
    page is ``out``, the next ``<stem>-2<suffix>``, … Returns the pages written. ``outlines``:
    boxes to draw in red on a label's thumbnail (left, top, right, bottom as fractions of the
    photo's width and height), e.g. the text found in it.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    label_h, gap = 24, 8
    cell_w = tile + gap
    try:
        font = ImageFont.load_default(size=16)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        font = ImageFont.load_default()
    per_page = columns * rows_per_page
    pages = []
    for page_no, start in enumerate(range(0, len(tiles), per_page), start=1):
        chunk = tiles[start:start + per_page]
        thumbs: list[Image.Image | None] = []
        for _, path in chunk:
            try:
                with Image.open(path, formats=FORMATS) as img:
                    img.draft("RGB", (tile, tile))
                    thumb = img.convert("RGB")
                thumb.thumbnail((tile, tile), Image.Resampling.LANCZOS)
                thumbs.append(thumb)
            except (OSError, SyntaxError, ValueError):
                thumbs.append(None)
        pic_h = max((t.height for t in thumbs if t is not None), default=tile)
        cell_h = pic_h + label_h + gap
        rows = -(-len(chunk) // columns)
        sheet = Image.new("RGB", (columns * cell_w + gap, rows * cell_h + gap), (255, 255, 255))
        draw = ImageDraw.Draw(sheet)
        for k, ((label, _), thumb) in enumerate(zip(chunk, thumbs)):
            x = gap + (k % columns) * cell_w
            y = gap + (k // columns) * cell_h
            if thumb is None:
                draw.rectangle((x, y, x + tile - 1, y + pic_h - 1), outline=(200, 0, 0), width=3)
                draw.text((x + 8, y + pic_h // 2), "cannot read", fill=(200, 0, 0), font=font)
            else:
                px, py = x + (tile - thumb.width) // 2, y + (pic_h - thumb.height) // 2
                sheet.paste(thumb, (px, py))
                for a, b, c, d in (outlines or {}).get(label, ()):
                    draw.rectangle((px + a * thumb.width - 3, py + b * thumb.height - 3,
                                    px + c * thumb.width + 3, py + d * thumb.height + 3),
                                   outline=(230, 0, 0), width=3)
            draw.text((x + tile // 2, y + pic_h + 3), label, fill=(0, 0, 0), font=font, anchor="mt")
        del thumbs
        target = out if page_no == 1 else out.with_name(f"{out.stem}-{page_no}{out.suffix}")
        target.write_bytes(encode_jpeg(sheet, 85))
        pages.append(target)
    return pages
