"""The pixel pipeline: the only package that decodes and encodes images.

A clinical photo leaves this package as a JPEG that carries nothing but pixels. Each photo is
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

One module per job, each using only those listed before it:

* :mod:`~assess.deid.errors` — :class:`DeidError` (a photo) and :class:`OutputError` (the output folder);
* :mod:`~assess.deid.colour` — ICC profile to sRGB, modes, 16-bit and float images to 8 bits;
* :mod:`~assess.deid.decode` — opening, checks (bombs, truncation, depth, frames), orientation,
  :func:`probe`, full and strip-by-strip HEIC decodes;
* :mod:`~assess.deid.fit` — :class:`Spec`, the decode scale and the fit to the canvas;
* :mod:`~assess.deid.encode` — :func:`encode_jpeg`, :func:`disguise`, writing;
* :mod:`~assess.deid.fingerprint` — :class:`Fingerprint` and :func:`similarity`;
* :mod:`~assess.deid.backdrop` — painting the backdrop (``[pixels] normalize``);
* :mod:`~assess.deid.prepare` — :func:`prepare_file` (the canvas, the text search, both copies);
* :mod:`~assess.deid.process` — ending with the parent, one C heap, the heap trim;
* :mod:`~assess.deid.workers` — :class:`Workers` and :func:`prepare_files`;
* :mod:`~assess.deid.files` — :func:`equalize_sizes` and :func:`padding_fraction`;
* :mod:`~assess.deid.look` — :func:`read_pixels` and :func:`look_files`;
* :mod:`~assess.deid.sheet` — :func:`render_contact_sheet`.

>>> spec = Spec(long_edge=400, display_long_edge=200, quality=90, aspect=(4, 3), fit="pad", portrait=False)
>>> spec.canvas, spec.display_canvas
((400, 300), (200, 150))
>>> Spec(400, 200, 90, (4, 3), "crop", portrait=True).canvas
(300, 400)
"""

from __future__ import annotations

from .errors import DeidError, OutputError
from .colour import BACKGROUND, FLOAT_TOLERANCE
from .decode import FORMATS, MAX_PIXELS, MULTI_FRAME_FORMATS, Probe, probe
from .fit import RESAMPLE, TRIM, Spec, largest_long_edge
from .encode import DISGUISE_SHARE, JFIF_APP0, SUBSAMPLING, disguise, encode_jpeg
from .fingerprint import COARSE_FLOOR, NEAR_DUPLICATE, PRINT_EDGE, Fingerprint, similarity
from .backdrop import GAINS_EDGE, _neutralize
from .prepare import TEXT_ACTIONS, Result, prepare_file, search_text
from .process import PARENT_CHECK_SECONDS, _heap_trimmer, end_with_parent, share_one_heap
from .workers import KEEP_RESIDENT, QUICK_TAIL, Workers, _job, _resident, prepare_files
from .files import equalize_sizes, padding_fraction
from .look import LOOK_EDGE, look_file, look_files, read_pixels
from .sheet import render_contact_sheet

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
