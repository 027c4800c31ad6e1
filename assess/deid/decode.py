"""Decoding: open a photo and check it (format, size, decompression bombs, truncated HEIF
containers, bit depth, frames), read its orientation, probe it cheaply, decode it (one full-size
decode at a time in the pool's workers) and hash its decoded pixels.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .colour import _to_base_mode
from .errors import DeidError

MAX_PIXELS = 100_000_000
"""Largest image accepted (width × height of the stored image). Larger files are refused as
possible decompression bombs; no clinical camera comes near it (a 61 MP full-frame sensor does not)."""

FORMATS = ("JPEG", "PNG", "TIFF", "HEIF")
"""Pillow formats accepted as input (MPO is opened by the JPEG plugin: its first frame is used)."""

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


def _load_gated(img: Image.Image, path: Path) -> None:
    """:func:`_load`, in a pool worker behind the gate shared by all workers when the decode is
    larger than :data:`_GATE_PIXELS`."""
    if _WORKER_GATE is not None and img.width * img.height > _GATE_PIXELS:
        # a HEIC, PNG or TIFF (or a JPEG that DCT scaling cannot shrink) decodes at full
        # size, holding two copies of the image for a moment (libheif's and Pillow's): one
        # worker at a time does so, which keeps the process tree's peak memory flat
        acquired = _WORKER_GATE.acquire(timeout=_GATE_TIMEOUT)
        try:
            _load(img, path)
        finally:
            if acquired:
                _WORKER_GATE.release()
    else:
        _load(img, path)


def _set_gate(gate) -> None:
    """In a pool worker: the semaphore shared by all workers for full-size decodes."""
    global _WORKER_GATE
    _WORKER_GATE = gate


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


def _pixel_digest(img: Image.Image) -> str:
    """sha256 of the image's mode, size and pixels averaged over 4×4 blocks.

    Block averages identify a photo as surely as every pixel (two different photos do not agree
    on millions of block means) at a sixteenth of the hashing work.
    """
    small = img.reduce(4) if min(img.size) >= 64 else img
    h = hashlib.sha256(f"{img.mode} {img.width}x{img.height}\n".encode())
    h.update(small.tobytes())
    return h.hexdigest()


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
