"""The pixel pipeline: the only module that decodes and encodes images.

A clinical photo leaves this module as a JPEG that carries nothing but pixels. Each photo is
decoded in full (a truncated or corrupt file is refused), turned upright by its EXIF/XMP orientation,
converted from its embedded ICC profile to sRGB, flattened onto a neutral background if it has
transparency, copied into a *fresh* image (so no metadata of the source can travel along), fitted to
the region's canvas and written twice (a full copy for zoom, a display copy for paging) with one fixed
encoder setting for every photo of the study: baseline JPEG, the same quantization tables, the same
chroma subsampling, the standard Huffman tables and one fixed JFIF header. Two cameras therefore give
files that differ only in their pixels.

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

import hashlib
import io
import os
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

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
    """What ``prepare_file`` wrote: the hashes of both copies and of the decoded source pixels."""

    source: Path
    full_sha256: str
    display_sha256: str
    pixel_sha256: str
    size: tuple[int, int]
    display_size: tuple[int, int] = (0, 0)


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
    return Probe(width=w, height=h, format=fmt, bytes_sha256=_sha256_file(path), orientation=orientation)


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
        # 16- and 32-bit greyscale: map the 16-bit range (or 0..255 when the values fit) to 8 bits
        wide = img.convert("F") if mode == "F" else img.convert("I")
        hi = wide.getextrema()[1]
        divisor = 257 if hi is not None and hi > 255 else 1
        return wide.point(lambda v: v / divisor).convert("L")
    if mode in ("YCbCr", "LAB", "HSV"):
        return img.convert("RGB")
    return img.convert("RGB")


def _pixel_digest(img: Image.Image) -> str:
    """sha256 of the image's mode, size and pixels averaged over 4×4 blocks.

    Block averages identify a photo as surely as every pixel (two different photos do not agree
    on millions of block means) at a sixteenth of the hashing work.
    """
    small = img.reduce(4) if min(img.size) >= 64 else img
    h = hashlib.sha256(f"{img.mode} {img.width}x{img.height}\n".encode())
    h.update(small.tobytes())
    return h.hexdigest()


def _scale_for(size: tuple[int, int], canvas: tuple[int, int], fit: str) -> float:
    w, h = size
    cw, ch = canvas
    return min(cw / w, ch / h) if fit == "pad" else max(cw / w, ch / h)


def _draft_target(stored: tuple[int, int], upright: tuple[int, int], spec: Spec) -> tuple[int, int]:
    """Smallest decode size (stored orientation) that covers the canvas in either orientation.

    Both canvas orientations are considered so that the decode scale, and so ``pixel_sha256``, does
    not depend on whether a region's canvas is portrait or landscape.
    """
    land = Spec(spec.long_edge, spec.display_long_edge, spec.quality, spec.aspect, spec.fit, False)
    port = Spec(spec.long_edge, spec.display_long_edge, spec.quality, spec.aspect, spec.fit, True)
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


def prepare_file(src: Path, full_out: Path, display_out: Path, spec: Spec) -> Result:
    """De-identify one photo: write its full copy and display copy, return their hashes.

    Steps: full decode (JPEG at the smallest DCT scale that still covers the canvas) → EXIF/XMP
    orientation → ``pixel_sha256`` of the upright decoded pixels → fit to ``spec.canvas`` → ICC
    profile to sRGB → transparency onto grey → pasted into a fresh image → baseline JPEG
    (:func:`encode_jpeg`); the display copy is resized from the full copy's pixels, not decoded again.

    ``pixel_sha256`` identifies the photo's pixels as decoded at that scale (the scale depends only
    on the photo's size and the study's long edge, aspect and fit, never on the region's canvas
    orientation), so the same photo in two slots gives the same value.

    Raises
    ------
    DeidError
        naming ``src`` for unreadable, truncated, corrupt or oversized files. Nothing is left at
        ``full_out``/``display_out`` when it raises.
    """
    src, full_out, display_out = Path(src), Path(full_out), Path(display_out)
    full = _fitted(src, spec)
    try:
        full_data = encode_jpeg(full.image, spec.quality)
        full_sha = _write(full_out, full_data)
        del full_data
        display = _display_copy(full, spec)
        display_data = encode_jpeg(display, spec.quality)
        display.close()
        display_sha = _write(display_out, display_data)
    except OSError as exc:
        for p in (full_out, display_out):
            p.unlink(missing_ok=True)
        raise DeidError(f"{src}: cannot write the blinded copy ({exc.strerror or exc}); check free disk "
                        "space and permissions of the output folder") from None
    return Result(source=src, full_sha256=full_sha, display_sha256=display_sha,
                  pixel_sha256=full.pixel_sha256, size=spec.canvas, display_size=spec.display_canvas)


@dataclass
class _Fitted:
    image: Image.Image
    pixel_sha256: str
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # where the photo lies on the canvas (the rest is border)


def _fitted(src: Path, spec: Spec) -> _Fitted:
    """Decode, orient, hash, fit and colour-convert one photo into a fresh canvas image.

    Holds at most two full-size images at a time (the decoded one and its transposed or resized
    copy) and releases each as soon as it is used.
    """
    img = _open(src)
    base: Image.Image | None = None
    try:
        orientation = _orientation(img)
        icc = img.info.get("icc_profile") or None
        stored = img.size
        upright = stored[::-1] if orientation in (5, 6, 7, 8) else stored
        if img.format in ("JPEG", "MPO"):
            target = _draft_target(stored, upright, spec)
            img.draft(img.mode if img.mode in ("RGB", "L", "CMYK") else None, target)
        if img.format == "HEIF" and orientation == 1:
            reduced = _heif_reduced(src, _draft_target(stored, upright, spec))
            if reduced is not None:
                img.close()
                return _finish(reduced[0], reduced[1], icc, spec)
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
        base = _to_base_mode(pixels)
        if base is not pixels:
            pixels.close()
        pixel_sha256 = _pixel_digest(base)
    finally:
        if base is not img:  # else _finish uses the decoded image itself, then closes it
            img.close()
    return _finish(base, pixel_sha256, icc, spec)


def _finish(base: Image.Image, pixel_sha256: str, icc: bytes | None, spec: Spec) -> _Fitted:
    """Fit the upright pixels to the canvas, convert to sRGB and paste into a fresh image."""
    resized, offset = _fit(base, spec.canvas, spec.fit)
    if resized is not base:
        base.close()
    colour = _to_srgb(resized, icc)
    if colour is not resized:
        resized.close()
    canvas = Image.new("RGB", spec.canvas, BACKGROUND)  # fresh: carries nothing of the source
    canvas.paste(colour, offset)
    box = (offset[0], offset[1], offset[0] + colour.width, offset[1] + colour.height)
    colour.close()
    return _Fitted(canvas, pixel_sha256, box)


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


def _init_worker(gate, parent: int | None = None) -> None:
    global _WORKER_GATE, _TRIM_HEAP
    if parent is not None:
        end_with_parent(parent)
    _WORKER_GATE = gate
    _TRIM_HEAP = _heap_trimmer()
    share_one_heap()  # libheif's decoding threads: the worker's memory stays flat


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

KEEP_RESIDENT = 128 * 2**20
"""Resident memory (bytes) a worker keeps between photos. The pages freed by one photo are reused
by the next; returning them to the system after every photo and faulting them in again cost about
6% of the pipeline's CPU time. A worker holds about 100 MB between ordinary photos; above this
limit, after an unusually large photo, it trims its heap."""


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
            if resident is None or resident > KEEP_RESIDENT:
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
    :func:`prepare_files` works in the calling process. The workers end with this process even
    when it is killed outright (:func:`end_with_parent`); on Linux also with the thread that made
    the pool, so make it in a thread that outlives it.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.size = max(1, workers or _default_workers())
        self.executor: ProcessPoolExecutor | None = None
        if self.size > 1:
            ctx = get_context("spawn")
            # no max_tasks_per_child: on Python 3.11-3.13 a worker that retires is not replaced and
            # the pool hangs once more than workers x limit jobs are queued (CPython gh-115634)
            gate = ctx.BoundedSemaphore(1)
            self.executor = ProcessPoolExecutor(max_workers=self.size, mp_context=ctx,
                                                initializer=_init_worker,
                                                initargs=(gate, os.getpid()))
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


def equalize_sizes(paths: list[Path]) -> dict[Path, str]:
    """Pad JPEGs written by :func:`prepare_file` to one file size; return their new sha256.

    File size follows from the pixels, and a camera change between visits can make follow-up
    files systematically smaller or larger, which any file browser shows. Each file is padded
    to the size of the largest with JPEG fill bytes (``0xFF``, allowed before any marker by the
    standard, ISO/IEC 10918-1 B.1.1.2) placed before its end-of-image marker: no segment, no
    metadata, nothing after EOI, and the decoded pixels do not change.
    """
    sizes = {Path(p): Path(p).stat().st_size for p in paths}
    if not sizes:
        return {}
    target = max(sizes.values())
    out = {}
    for path, size in sizes.items():
        data = path.read_bytes()
        if not data.endswith(b"\xff\xd9"):
            raise DeidError(f"{path}: not a JPEG written by assess (no end-of-image marker at its end)")
        if size < target:
            data = data[:-2] + b"\xff" * (target - size) + b"\xff\xd9"
            tmp = path.with_name(path.name + ".pad")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        out[path] = hashlib.sha256(data).hexdigest()
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


def render_contact_sheet(tiles: list[tuple[str, Path]], out: Path, columns: int = 8, tile: int = 240,
                         rows_per_page: int = 12) -> list[Path]:
    """Draw labelled thumbnails of ``(label, path)`` into one or more JPEG pages.

    Pages hold ``columns × rows_per_page`` photos so memory stays small for any set size; the first
    page is ``out``, the next ``<stem>-2<suffix>``, … Returns the pages written.
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
                sheet.paste(thumb, (x + (tile - thumb.width) // 2, y + (pic_h - thumb.height) // 2))
            draw.text((x + tile // 2, y + pic_h + 3), label, fill=(0, 0, 0), font=font, anchor="mt")
        del thumbs
        target = out if page_no == 1 else out.with_name(f"{out.stem}-{page_no}{out.suffix}")
        target.write_bytes(encode_jpeg(sheet, 85))
        pages.append(target)
    return pages
