"""Text in the frame: find it, say what it reads, and cover it.

A camera's date imprint, a label card held in the frame with the participant and the visit, a
ruler with a date: the picture itself unblinds, whatever the metadata. :func:`find_text` looks for
text in an RGB array in two steps, because Tesseract run on a whole photo misses most of it:

1. a cheap candidate search: the white and black morphological top-hats of the luminance (each
   pixel minus the opening, or the closing minus the pixel, over a window wider than any stroke),
   which flatten the background and keep thin bright or dark marks; a threshold; connected
   components of character size; and components of like height side by side grouped into boxes
   shaped like a line of text;
2. Tesseract (through ``tesserocr``, one engine per process, reused) reads the candidates that
   look most like type, each channel's best in turn, at most :data:`MAX_READS` readings a photo:
   each cut from the photo at its own resolution (the search runs on a copy of at most
   :data:`SEARCH_EDGE` pixels), flattened and scaled so that its text is about
   :data:`READ_HEIGHT` pixels tall; turned by a few degrees (a card held askew) when something was
   half read; and, when it reads as figures that do not count, group by group (a camera's spaced
   date, ``'23  9  7``), as figures only.

A word counts as text read (:func:`counts`) when it is long and read with confidence, or has the
shape of a date or time; a short word or number (``"cm"``, ``"29.0"``, ``"1009"``: what foliage or
a shadow can look like) counts only beside such a word, or numbers together (a ruler); groups of
figures read on one line count together (:func:`figures`). Lines beside
text read (a card's other lines) are reported too, to be masked with it. These are pure functions
of arrays; :mod:`assess.deid` calls :func:`find_text` on each
decoded photo and :func:`mask` on the blinded copy.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ..errors import AssessError

__all__ = ["Found", "TextEngineError", "find_text", "mask", "counts", "figures", "check_engine",
           "preload", "SEARCH_EDGE", "MIN_CONFIDENCE", "MASK_MARGIN"]

SEARCH_EDGE = 1000
"""Long edge (pixels) of the copy searched for candidates at most: a larger photo is reduced by a
whole factor (2000 pixels to 1000, 1600 to 800). The candidates are read from the photo itself,
at its own resolution, and the boxes are given in its pixels."""

WINDOW = 20
"""Top-hat window (pixels of the searched copy): wider than the strokes of any text sought."""

GRID = 4
"""The top-hat's background is computed on blocks of GRID × GRID pixels (:func:`background`)."""

MIN_CONTRAST = 18
"""Grey levels a mark must stand out of its flattened background to be a candidate stroke."""

CHAR_HEIGHT = (7, 110)
"""Height range (pixels of the searched copy) of a character component."""

MAX_MARKS = 1200
"""Character-sized marks joined into lines at most (the largest, in a busy texture)."""

MAX_CANDIDATES = 14
"""Candidate lines kept per channel, polarity and joining pass at most (the best first)."""

MAX_READS = 12
"""Tesseract readings per photo at most (about 2 ms each), given to the best candidates first
(:func:`candidates` ranks every line found by its score, whichever pass joined it)."""

GLIMPSE = 30.0
"""Confidence of a half-read word that makes a candidate worth reading turned (:data:`ROTATIONS`)."""

READ_HEIGHT = 36
"""Height (pixels) a candidate line is scaled to before Tesseract reads it."""

READ_LENGTH = 20
"""Of a longer line, the first READ_LENGTH heights are read (its whole box is still reported)."""

MIN_CONFIDENCE = 55.0
"""Tesseract's word confidence (0-100) from which a word counts as text read."""

DATE_CONFIDENCE = 40.0
"""Confidence from which a word shaped like a date or a time (``11:49``, ``2017-10-27``) counts:
Tesseract is least sure of figures spaced as a camera prints them."""

COMPANION_CONFIDENCE = 70.0
"""Confidence a short word needs to count beside another (:func:`counts`)."""

UNITS = ("cm", "mm", "in")
"""Units of a ruler, read like its numbers (:func:`counts`)."""

RULER_CONFIDENCE = 90.0
"""Confidence from which two whole numbers or units together count (a ruler; :func:`counts`)."""

SURE_CONFIDENCE = 80.0
"""Confidence from which a word of three letters or digits counts alone (:func:`counts`)."""

MASK_MARGIN = 0.25
"""Margin around a found box that :func:`mask` covers too, as a share of the box height."""

ROTATIONS = (4.0, -4.0)
"""Degrees a candidate is turned by when reading it as it is finds nothing (cards held askew)."""

TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")
"""Where Debian's ``tesseract-ocr-eng`` puts the English model (``$TESSDATA_PREFIX`` overrides)."""

_PUNCTUATION = "'\"‘’“”.,;:!|()[]{}_-—~"

_DATE = re.compile(r"^'?(\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}:\d{2}(:\d{2})?|\d{4}[./-]\d{1,2})$")


FIGURES = "0123456789'-./:"
"""The characters of dates, times and rulers: a reading of figures is tried again with these."""

MAX_GROUPS = 5
"""Groups of spaced figures read one by one at most (a date and a time)."""

BESIDE = "(beside the text read)"
"""What :class:`Found` says for a line next to text read that was not read itself; it is
masked with the rest."""


class TextEngineError(AssessError):
    """The OCR engine or its English model is missing; the message says what to install."""


@dataclass(frozen=True)
class Found:
    """One line of text found in a photo: ``box`` (left, top, right, bottom) in the pixels of the
    array searched, the words read (space-separated) and their lowest confidence (0-100)."""

    box: tuple[int, int, int, int]
    text: str
    confidence: float


# --------------------------------------------------------------------------- the engine

_ENGINE = None
_ENGINE_LOCK = threading.Lock()


def _tessdata() -> Path:
    prefix = os.environ.get("TESSDATA_PREFIX")
    return Path(prefix) if prefix else TESSDATA


def check_engine() -> None:
    """Make sure the OCR engine and its English model are installed, without loading them.

    Raises
    ------
    TextEngineError
        naming what to install: the ``tesserocr`` Python package, or Debian's
        ``tesseract-ocr-eng`` (the model, ``eng.traineddata``).
    """
    try:
        import tesserocr  # noqa: F401
    except ImportError:
        raise TextEngineError(
            "the text search needs the OCR engine tesserocr: pip install tesserocr==2.13.0 "
            "(or set [pixels] text = \"off\" in study.toml)") from None
    data = _tessdata()
    if not (data / "eng.traineddata").is_file():
        raise TextEngineError(
            f"the text search needs Tesseract's English model, {data / 'eng.traineddata'} "
            "is missing: apt-get install tesseract-ocr tesseract-ocr-eng (or set "
            "TESSDATA_PREFIX to the folder holding eng.traineddata)")


def preload() -> None:
    """Load what the search needs (the engine and its model) ahead of the first photo, e.g. in a
    worker as it starts; a missing engine is left for :func:`find_text` to report."""
    try:
        _engine()
    except TextEngineError:
        pass


def _engine():
    """The process's Tesseract engine, loaded at the first read and reused for every other."""
    global _ENGINE
    if _ENGINE is not None:
        return _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            check_engine()
            import tesserocr

            data = _tessdata()
            try:
                api = tesserocr.PyTessBaseAPI(path=str(data), lang="eng",
                                              psm=tesserocr.PSM.SINGLE_LINE,
                                              oem=tesserocr.OEM.LSTM_ONLY)
            except RuntimeError as exc:
                raise TextEngineError(f"Tesseract cannot load its English model from {data} "
                                      f"({exc}): apt-get install --reinstall tesseract-ocr-eng") from None
            # every crop is given as dark text on light: Tesseract's own second try with the
            # image inverted would only double the time spent on what is not text
            api.SetVariable("tessedit_do_invert", "0")
            _ENGINE = (tesserocr, api)
    return _ENGINE


# --------------------------------------------------------------------------- candidates


def background(grey: np.ndarray, bright: bool) -> np.ndarray:
    """The grey opening (``bright``: what bright marks stand on) or closing of ``grey``, cheaply.

    The morphological opening over a :data:`WINDOW`-wide square (erosion, then dilation) is
    approximated on a grid :data:`GRID` times coarser: block minima (maxima), an erosion and a
    dilation of :data:`WINDOW` // :data:`GRID` cells with ``scipy.ndimage``, and each cell's value
    spread back over its block. Marks narrower than the window vanish from it; wider regions (a
    card, the skin) stay, so ``grey - background`` (the top-hat) keeps the strokes of text.
    """
    coarse = _coarse(grey, bright)
    return np.repeat(np.repeat(coarse, GRID, axis=0), GRID, axis=1)[:grey.shape[0], :grey.shape[1]]


def _coarse(grey: np.ndarray, bright: bool) -> np.ndarray:
    """:func:`background` on the coarse grid (one value per GRID × GRID block, edges padded)."""
    H, W = grey.shape
    f = GRID
    ph, pw = -H % f, -W % f
    padded = np.pad(grey, ((0, ph), (0, pw)), mode="edge") if ph or pw else grey
    pick = np.minimum if bright else np.maximum
    rows = padded[0::f]
    for k in range(1, f):
        rows = pick(rows, padded[k::f])
    cells = rows[:, 0::f]
    for k in range(1, f):
        cells = pick(cells, rows[:, k::f])
    # the second filter is two cells wider than the first, so that the blocks straddling the edge
    # of a wide region (a card, a ruler) do not spread its level a block further
    k = max(2, WINDOW // f)
    if bright:
        return ndimage.maximum_filter(ndimage.minimum_filter(cells, k), k + 2)
    return ndimage.minimum_filter(ndimage.maximum_filter(cells, k), k + 2)


def candidates(grey: np.ndarray, bright: bool) -> list[tuple[float, tuple[int, int, int, int]]]:
    """Boxes shaped like a line of text, bright on dark (``bright``) or dark on bright.

    The top-hat (``grey`` against its :func:`background`) keeps marks narrower than
    :data:`WINDOW` standing out by :data:`MIN_CONTRAST`; connected components of character height
    (:data:`CHAR_HEIGHT`) that lie side by side with like heights are joined into lines; a line of
    at least two characters, wider than tall, is a candidate, scored by :func:`_lines`; at most
    :data:`MAX_CANDIDATES` ``(score, box)`` per pass, the best first.
    """
    H, W = grey.shape
    f = GRID
    ph, pw = -H % f, -W % f
    padded = np.pad(grey, ((0, ph), (0, pw)), mode="edge") if ph or pw else grey
    coarse = _coarse(padded, bright).astype(np.int16)
    blocks = padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f)
    if bright:
        marks = blocks > (coarse + MIN_CONTRAST)[:, None, :, None]
    else:
        marks = blocks < (coarse - MIN_CONTRAST)[:, None, :, None]
    marks = marks.reshape(padded.shape)[:H, :W]
    labels, n = ndimage.label(marks)
    if n == 0:
        return []
    slices = ndimage.find_objects(labels)
    boxes = np.array([(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in slices], dtype=np.int32)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (h >= CHAR_HEIGHT[0]) & (h <= CHAR_HEIGHT[1]) & (w <= 3 * h + 4) & (3 * w >= h)
    boxes = boxes[keep]
    if len(boxes) < 2:
        return []
    if len(boxes) > MAX_MARKS:  # a busy texture: the most compact are looked at
        fill = (w * h)[keep]
        boxes = boxes[np.argsort(-fill)[:MAX_MARKS]]
    return _lines(boxes)


JOINS = ((0.9, 0.45, 0.35), (1.5, 0.6, 0.25), (4.0, 0.7, 0.15))
"""The passes that join marks into lines, each on the pieces of the one before: ``(gap, height,
centre)`` shares of the taller height (:func:`_groups`). First characters side by side, then
pieces that continue each other (a date split at its dashes or dots), then pieces of one height
on one baseline far apart (a camera's spaced date ``'23  9  7``, a ruler's numbers)."""


def _lines(boxes: np.ndarray) -> list[tuple[float, tuple[int, int, int, int]]]:
    """Join character boxes into lines in the passes of :data:`JOINS`: first those side by side
    with like heights (closer than 0.9 heights), then the pieces that continue each other (closer
    than 1.5 heights: a date split at its dashes, colons or dots, which are too small to be
    characters), then pieces on one baseline up to four heights apart (spaced figures).

    Each line comes with a score: its number of characters (up to ten), lowered when their heights
    vary, their bottoms do not line up or they are thin bars (texture, not type)."""
    heights = (boxes[:, 3] - boxes[:, 1]).astype(np.float64)
    widths = (boxes[:, 2] - boxes[:, 0]).astype(np.float64)
    bottoms = boxes[:, 3].astype(np.float64)
    member = np.arange(len(boxes))  # the piece each character is in
    count = np.ones(len(boxes), dtype=np.int64)
    chars = heights.astype(np.int64)  # the tallest character of each piece
    found: list[tuple[float, tuple[int, int, int, int]]] = []
    for shares in JOINS:
        group = _groups(boxes, *shares)
        n = int(group.max()) + 1
        merged = np.empty((n, 4), dtype=boxes.dtype)
        merged[:, :2] = np.iinfo(boxes.dtype).max
        merged[:, 2:] = np.iinfo(boxes.dtype).min
        for k, pick in ((0, np.minimum), (1, np.minimum), (2, np.maximum), (3, np.maximum)):
            pick.at(merged[:, k], group, boxes[:, k])
        tallest = np.zeros(n, dtype=np.int64)
        np.maximum.at(tallest, group, chars)
        count = np.bincount(group, weights=count, minlength=n).astype(np.int64)
        boxes, chars, member = merged, tallest, group[member]
        score = np.minimum(count, 10) * _regularity(member, heights, widths, bottoms, n)
        known = {box for _, box in found}
        found += [(sc, box) for sc, box in _line_boxes(boxes, count, chars, score)
                  if box not in known]
    # the best first, whichever pass joined them: a ruler's spaced numbers (the last pass) are
    # read before the fragments of texture the first pass found
    return sorted(found, key=lambda sb: -sb[0])


def _regularity(member: np.ndarray, heights: np.ndarray, widths: np.ndarray, bottoms: np.ndarray,
                n: int) -> np.ndarray:
    """Per piece, 1 for characters of one height on one baseline and about half as wide as tall,
    down to 0.1 for scattered marks or a comb of thin bars (the gaps between a ruler's ticks)."""
    size = np.maximum(np.bincount(member, minlength=n), 1)
    shape = np.clip(np.bincount(member, widths / np.maximum(heights, 1), n) / size / 0.5, 0.2, 1)
    mean_h = np.bincount(member, heights, n) / size
    var_h = np.maximum(np.bincount(member, heights ** 2, n) / size - mean_h ** 2, 0)
    mean_b = np.bincount(member, bottoms, n) / size
    var_b = np.maximum(np.bincount(member, bottoms ** 2, n) / size - mean_b ** 2, 0)
    spread = (np.sqrt(var_h) + np.sqrt(var_b)) / np.maximum(mean_h, 1)
    return np.clip(1 - spread, 0.1, 1) * shape


def _line_boxes(boxes: np.ndarray, count: np.ndarray, chars: np.ndarray, score: np.ndarray
                ) -> list[tuple[float, tuple[int, int, int, int]]]:
    """The pieces shaped like a line of text: two characters or more, wider than tall, not much
    taller than their tallest character; at most :data:`MAX_CANDIDATES`, the best first."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ok = np.flatnonzero((count >= 2) & (w >= 1.3 * h) & (h <= 1.6 * chars + 4))
    best = ok[np.argsort(-score[ok], kind="stable")[:MAX_CANDIDATES]]
    return [(float(score[k]), tuple(int(v) for v in boxes[k])) for k in best]


def _groups(boxes: np.ndarray, gap_share: float, height_share: float, centre_share: float
            ) -> np.ndarray:
    """Group index of each box: boxes closer side by side than ``gap_share`` heights, the lower
    at least ``height_share`` of the taller, centres within ``centre_share`` heights, chained.

    Only pairs whose centres lie within ``centre_share`` of the tallest box of each other are
    weighed (boxes sorted by their centre's height, each against those just below it), so a busy
    texture's marks cost pairs along a band, not all pairs."""
    x0, y0, x1, y1 = (boxes[:, k].astype(np.float32) for k in range(4))
    h = y1 - y0
    cy = (y0 + y1) / 2
    order = np.argsort(cy, kind="stable")
    band = centre_share * float(h.max())
    ends = np.searchsorted(cy[order], cy[order] + band, side="right")
    reach = ends - np.arange(len(order)) - 1  # the boxes after each (in that order) in its band
    a = np.repeat(np.arange(len(order)), reach)
    b = a + 1 + (np.arange(len(a)) - np.repeat(np.cumsum(reach) - reach, reach))
    i, j = order[a], order[b]
    hmax = np.maximum(h[i], h[j])
    gap = np.maximum(x0[j] - x1[i], x0[i] - x1[j])
    near = (gap < gap_share * hmax) & (np.abs(cy[i] - cy[j]) < centre_share * hmax) & \
        (np.minimum(h[i], h[j]) > height_share * hmax)
    return _components(i[near], j[near], len(boxes))[1]


def _components(i: np.ndarray, j: np.ndarray, n: int) -> tuple[int, np.ndarray]:
    """Connected components of ``n`` nodes joined by the edges ``i[k]``-``j[k]``: their number and
    each node's component, numbered by their lowest node (as
    ``scipy.sparse.csgraph.connected_components`` numbers them), found by carrying the lowest
    node over every edge and jumping to its own lowest until nothing changes (a few rounds for
    the short chains of a line's characters, without building a sparse graph for each).

    >>> _components(np.array([3, 1]), np.array([4, 2]), 5)
    (3, array([0, 1, 1, 2, 2]))
    """
    low = np.arange(n)
    while len(i):
        m = np.minimum(low[i], low[j])
        new = low.copy()
        np.minimum.at(new, i, m)
        np.minimum.at(new, j, m)
        new = new[new]
        if np.array_equal(new, low):
            break
        low = new
    roots, labels = np.unique(low, return_inverse=True)
    return len(roots), labels


# --------------------------------------------------------------------------- reading


def counts(words: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The words of one photo that count as text read, from ``(word, confidence)`` pairs.

    Natural texture (foliage, hair, fabric) reads as short garbage words at middling
    confidence, so a word counts alone only when it is long and sure: three letters or digits at
    :data:`SURE_CONFIDENCE`, five, or a date or time, at :data:`MIN_CONFIDENCE`. Shorter words
    (``"cm"``, ``"12"``, ``"29.0"``) count only beside a word that counts, or, for whole numbers and
    units, three together at :data:`SURE_CONFIDENCE`, or two with one at :data:`RULER_CONFIDENCE`
    (a ruler's).

    >>> counts([("29.0", 80.0)])
    []
    >>> counts([("07.01.24", 60.0)])
    [('07.01.24', 60.0)]
    >>> counts([("10", 94.0), ("cm", 96.0), ("ae", 85.0)])
    [('10', 94.0), ('cm', 96.0)]
    """
    strong, short, numbers = [], [], []
    for word, conf in words:
        word = word.strip()
        alnum = sum(c.isalnum() for c in word)
        if conf < _least_confidence(word) or alnum < 2:
            continue
        if _DATE.match(word) or alnum >= 5 or \
                (alnum >= 3 and conf >= SURE_CONFIDENCE and any(c.isalpha() for c in word)):
            strong.append((word, conf))
        elif conf >= COMPANION_CONFIDENCE:
            short.append((word, conf))
            if (word.isdigit() or word.lower() in UNITS) and conf >= SURE_CONFIDENCE:
                numbers.append((word, conf))
    if not strong and (len(numbers) < 2 or (len(numbers) < 3
                                             and max(c for _, c in numbers) < RULER_CONFIDENCE)):
        return []
    kept = strong + (short if strong else numbers)
    order = {w: k for k, (w, _) in enumerate(words)}
    return sorted(kept, key=lambda wc: order.get(wc[0], 0))


def _read(crop: np.ndarray, only: str = "") -> list[tuple[str, float]]:
    """``(word, confidence)`` of each word Tesseract reads in a grey crop (dark text on light);
    with ``only``, read as made of those characters alone (:data:`FIGURES`)."""
    tesserocr, api = _engine()
    crop = np.ascontiguousarray(crop, dtype=np.uint8)
    api.SetImageBytes(crop.tobytes(), crop.shape[1], crop.shape[0], 1, crop.shape[1])
    api.SetVariable("tessedit_char_whitelist", only)
    try:
        api.Recognize()
    finally:
        api.SetVariable("tessedit_char_whitelist", "")
    words = []
    it = api.GetIterator()
    level = tesserocr.RIL.WORD
    if it is None:
        return words
    for word in tesserocr.iterate_level(it, level):
        try:
            text = word.GetUTF8Text(level)
        except RuntimeError:  # an empty page
            break
        if text:
            words.append((text, float(word.Confidence(level))))
    return words


def _crop(photo: Image.Image, saturated: bool, box: tuple[int, int, int, int], bright: bool
          ) -> np.ndarray:
    """The candidate ``box`` (pixels of ``photo``) with a margin, cut from the photo at its own
    resolution and scaled so that its text is about :data:`READ_HEIGHT` pixels tall, then
    flattened (its top-hat in the channel searched: the background's steps and shading gone),
    contrast stretched, as dark text on light."""
    x0, y0, x1, y1 = box
    s = READ_HEIGHT / max(1, y1 - y0)
    m = max(6, READ_HEIGHT * 2 // 3) / s  # margin, and the background's context beyond it
    c = WINDOW / s
    W, H = photo.size
    x1 = min(x1, x0 + int(READ_LENGTH * (y1 - y0)))  # enough of a long line to tell text
    around = (max(0, int(x0 - m - c)), max(0, int(y0 - m - c)), min(W, int(x1 + m + c) + 1),
              min(H, int(y1 + m + c) + 1))
    region = photo.crop(around)
    if abs(s - 1) > 0.15:
        region = region.resize((max(1, round(region.width * s)), max(1, round(region.height * s))),
                               Image.Resampling.BICUBIC)
    else:
        s = 1.0
    if saturated:
        channel = _saturation(region)
    else:
        channel = np.asarray(region.convert("L") if region.mode != "L" else region)
    base = background(channel, bright).astype(np.float32)
    hat = (channel - base) if bright else (base - channel)
    # a narrow margin above and below (the next line of a card stays out), then white around
    v = 0.25 * (y1 - y0)
    top, left = round((y0 - v - around[1]) * s), round((x0 - m - around[0]) * s)
    bottom, right = round((y1 + v - around[1]) * s), round((x1 + m - around[0]) * s)
    part = hat[max(0, top):max(1, bottom), max(0, left):max(1, right)]
    hi = max(float(np.percentile(part, 99)), float(MIN_CONTRAST))
    out = (255.0 - np.clip(part * (255.0 / hi), 0, 255)).astype(np.uint8)
    return np.pad(out, ((READ_HEIGHT // 3,) * 2, (0, 0)), constant_values=255)


def _read_line(photo: Image.Image, saturated: bool, box, bright: bool, budget: list[int],
               search: tuple[Image.Image, float] | None = None) -> list[tuple[str, float]]:
    """The words worth weighing in one candidate (:func:`_legible`): read flattened (the other
    polarity is a candidate of its own), then, if something was half read, turned a few degrees
    each way; figures read as letters are read again as figures. Each reading takes one from
    ``budget[0]``. The crop is cut from ``photo`` (``box`` in its pixels), or from the searched
    copy ``search`` (the copy and its scale) where the text is :data:`READ_HEIGHT` tall there."""
    if search is not None and (box[3] - box[1]) * search[1] >= READ_HEIGHT:
        photo, box = search[0], _scaled(box, search[1])  # tall enough there: cut from the copy
    crop = _crop(photo, saturated, box, bright)
    budget[0] -= 1
    read = _read(crop)
    words = _legible(read)
    if read and not counts(words) and not figures(words) and _figure_like(read):
        # spaced figures (a camera's ``'23  9  7``) that Tesseract ran together or half read:
        # each group read on its own, as figures
        again = []
        for part in _spaced_groups(crop):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            again += _legible(_read(part, FIGURES))
        if counts(again) or figures(again):
            return again
    if words:
        return words
    if not any(c >= GLIMPSE and sum(ch.isalnum() for ch in w) >= 2 for w, c in read):
        return []
    for angle in ROTATIONS:
        if budget[0] <= 0:
            return []
        budget[0] -= 1
        turned = Image.fromarray(crop).rotate(angle, Image.Resampling.BILINEAR, expand=True,
                                              fillcolor=255)
        words = _legible(_read(np.asarray(turned)))
        if words:
            return words
    return []


def _spaced_groups(crop: np.ndarray) -> list[np.ndarray]:
    """The groups of a crop (dark on light) parted by gaps wider than half the text's height,
    each with a margin; ``[]`` when there are fewer than two, or more than :data:`MAX_GROUPS`."""
    ink = (crop < 128).any(axis=0)
    cols = np.flatnonzero(ink)
    if len(cols) == 0:
        return []
    gaps = np.flatnonzero(np.diff(cols) > READ_HEIGHT // 2)
    starts, ends = np.r_[cols[0], cols[gaps + 1]], np.r_[cols[gaps], cols[-1]]
    if not 2 <= len(starts) <= MAX_GROUPS:
        return []
    m = READ_HEIGHT // 3
    return [np.pad(crop[:, a:b + 1], ((0, 0), (m, m)), constant_values=255)
            for a, b in zip(starts, ends)]


def _figure_like(words: list[tuple[str, float]]) -> bool:
    """Whether most of the letters and digits read are digits (a date, a time, a ruler)."""
    chars = "".join(w for w, _ in words)
    digits = sum(ch.isdigit() for ch in chars)
    return digits >= 2 and digits >= 0.6 * sum(ch.isalnum() for ch in chars)


def _legible(words: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Words with :data:`MIN_CONFIDENCE` and two letters or digits, or one digit (a spaced date's
    month), before :func:`counts` and :func:`figures`."""
    words = [(w.strip().strip(_PUNCTUATION), c) for w, c in words]
    return [(w, c) for w, c in words
            if c >= _least_confidence(w) and (sum(ch.isalnum() for ch in w) >= 2 or w.isdigit())]


def _least_confidence(word: str) -> float:
    """The confidence a word needs to be weighed at all: :data:`DATE_CONFIDENCE` for one shaped
    like a date or a time, :data:`MIN_CONFIDENCE` for any other."""
    return DATE_CONFIDENCE if _DATE.match(word) else MIN_CONFIDENCE


def figures(words: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The words of one line (read whole or in pieces) when they are groups of figures that
    count: a spaced date (``'23  9  7``) or a ruler's numbers. Three groups or more with four
    digits or more in all, or two groups with five, each at :data:`COMPANION_CONFIDENCE` and on
    average at :data:`SURE_CONFIDENCE`; ``[]`` otherwise.

    >>> figures([("23", 88.8), ("9", 81.0), ("7", 84.0)])
    [('23', 88.8), ('9', 81.0), ('7', 84.0)]
    >>> figures([("23", 88.8), ("9", 81.0)])
    []
    >>> figures([("17", 89.1), ("1027", 79.5)])
    [('17', 89.1), ('1027', 79.5)]
    >>> figures([("1009", 80.0), ("a1", 90.0)])
    []
    """
    groups = [(w, c) for w, c in words if w.isdigit()]
    digits = sum(len(w) for w, _ in groups)
    if len(groups) < len(words) or not (len(groups) >= 3 and digits >= 4
                                         or len(groups) == 2 and digits >= 5):
        return []
    if min(c for _, c in groups) < COMPANION_CONFIDENCE or \
            sum(c for _, c in groups) / len(groups) < SURE_CONFIDENCE:
        return []
    return groups


def find_text(rgb: np.ndarray, search_edge: int = SEARCH_EDGE) -> list[Found]:
    """Lines of text found in a photo, boxes in the array's own pixels.

    Parameters
    ----------
    rgb
        ``(h, w, 3)`` uint8 (or a 2-D grey) array of the upright photo, or a Pillow image of it
        (RGB or L), which saves a copy.
    search_edge
        The photo is searched on a copy whose long edge is at most this.

    Returns
    -------
    list of Found
        One per candidate line in which a word counts (:func:`counts`); empty for a photo
        without text.

    Raises
    ------
    TextEngineError
        when the OCR engine or its model is missing.
    """
    if _ENGINE is None:
        check_engine()
    photo = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.asarray(rgb))
    w, h = photo.size
    k = -(-max(h, w) // search_edge)
    # reduced by a whole factor, averaging blocks of pixels (the sensor's noise with them)
    img = photo.reduce(k) if k > 1 else photo
    scale = img.width / w
    grey = np.asarray(img.convert("L") if img.mode != "L" else img)
    lines: list[tuple[tuple[int, int, int, int], list[tuple[str, float]]]] = []
    ranked = []
    sat = _saturation(img)
    if sat is not None:  # a sensor's chroma is noisy: averaged over 3 x 3 pixels
        sat = ndimage.uniform_filter(sat, 3)
    for channel, saturated, bright in ((grey, False, True), (grey, False, False),
                                       (sat, True, True)):
        if channel is not None:
            ranked += [(score, k, saturated, bright, _scaled(box, 1 / scale))
                       for k, (score, box) in enumerate(candidates(channel, bright))]
    ranked.sort(key=lambda item: (item[1], -item[0]))  # each channel's best first, in turn
    seen = [box for *_, box in ranked]
    budget = [MAX_READS]
    for _, _, saturated, bright, box in ranked:
        if budget[0] <= 0:
            break
        if any(_overlap(box, other) and (counts(words) or figures(words)) for other, words in lines):
            continue  # read already (a line's gaps are bright marks between dark strokes)
        words = _read_line(photo, saturated, box, bright, budget,
                           (img, scale) if img is not photo else None)
        if words:
            lines.append((box, words))
    kept = set(counts([wc for _, words in lines for wc in words]))
    # figures count by line: each line read, and each read whole and in pieces taken as one
    kept.update(wc for _, words in lines + _merged(lines) for wc in figures(words))
    found: list[Found] = []
    for box, words in _merged([(box, [wc for wc in words if wc in kept]) for box, words in lines]):
        found.append(Found(box, " ".join(w for w, _ in words), round(min(c for _, c in words), 1)))
    for box in _beside([f.box for f in found], seen):
        found.append(Found(box, BESIDE, 0.0))
    return found


def _scaled(box: tuple[int, int, int, int], k: float) -> tuple[int, int, int, int]:
    """``box`` in the pixels of a copy ``k`` times larger."""
    return tuple(int(round(v * k)) for v in box)  # type: ignore[return-value]


def _merged(lines: list) -> list:
    """Lines read more than once (in both polarities, or whole and in pieces) as one: the boxes
    joined, each word once; lines without a word that counts dropped."""
    out: list = []
    for box, words in sorted(lines, key=lambda bw: -(bw[0][2] - bw[0][0]) * (bw[0][3] - bw[0][1])):
        if not words:
            continue
        for k, (other, known) in enumerate(out):
            if _overlap(box, other):
                seen = {w for w, _ in known}
                out[k] = ((min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]),
                           max(box[3], other[3])), known + [wc for wc in words if wc[0] not in seen])
                break
        else:
            out.append((box, list(words)))
    return out


def _beside(found: list, seen: list) -> list:
    """Candidate lines next to found text (the other lines of a card or a label) that were not
    read themselves: of like height (within 1.6 times), above or below a found line within one
    height and overlapping a third of it across, or continuing it on its line within one and a
    half heights. Repeated until none is added, so a whole card's lines join."""
    out: list = []
    block = list(found)
    added = True
    while added:
        added = False
        for box in seen:
            if box in block or any(_overlap(box, b) for b in block):
                continue
            for b in block:
                hb, hx = b[3] - b[1], box[3] - box[1]
                h = max(hb, hx)
                if min(hb, hx) < h / 1.6:
                    continue  # another size of text, or no text
                across = min(b[2], box[2]) - max(b[0], box[0]) > \
                    0.3 * min(b[2] - b[0], box[2] - box[0])
                vertical = max(b[1] - box[3], box[1] - b[3])
                along = max(b[0] - box[2], box[0] - b[2])
                same_line = abs((b[1] + b[3]) - (box[1] + box[3])) / 2 < 0.3 * h
                if (across and vertical < h) or (same_line and along < 1.5 * h):
                    block.append(box)
                    out.append(box)
                    added = True
                    break
    return out


def _saturation(img: Image.Image) -> np.ndarray | None:
    """Max minus min of R, G, B: where coloured text (a red or orange imprint) stands out of a
    background of like brightness. ``None`` for a grey image."""
    if img.mode != "RGB":
        return None
    r, g, b = (np.asarray(c) for c in img.split())
    return np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)


def _overlap(a, b) -> bool:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy > 0.5 * (a[2] - a[0]) * (a[3] - a[1])


# --------------------------------------------------------------------------- masking


def mask(rgb: np.ndarray, boxes, margin: float = MASK_MARGIN) -> np.ndarray:
    """A copy of ``rgb`` with each box (and a margin of ``margin`` × its height) filled with the
    median colour of the band around it, so nothing of the text's shapes remains.

    >>> a = np.zeros((40, 60, 3), np.uint8); a[10:20, 10:40] = 255
    >>> int(mask(a, [(10, 10, 40, 20)])[10:20, 10:40].max())
    0
    """
    out = np.array(rgb, copy=True)
    H, W = out.shape[:2]
    for x0, y0, x1, y1 in boxes:
        m = max(2, int(round(margin * (y1 - y0))))
        a0, b0, a1, b1 = max(0, x0 - m), max(0, y0 - m), min(W, x1 + m), min(H, y1 + m)
        r0, s0, r1, s1 = max(0, a0 - m), max(0, b0 - m), min(W, a1 + m), min(H, b1 + m)
        ring = np.ones((s1 - s0, r1 - r0), bool)
        ring[b0 - s0:b1 - s0, a0 - r0:a1 - r0] = False
        around = out[s0:s1, r0:r1][ring]
        fill = np.median(around, axis=0) if len(around) else 128
        out[b0:b1, a0:a1] = np.asarray(fill).astype(out.dtype)
    return out
