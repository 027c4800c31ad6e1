"""What a rater sees of a visit without judging the skin: light, colour, sharpness, framing.

Between visits the room, the camera, its white balance, exposure and framing change, and a rater
learns that "the warmer, brighter photos are the follow-ups". :func:`measure` takes the pixels of
one photo (an ``(h, w, 3)`` uint8 sRGB array, the display copy) and returns a :class:`Look`: the
numbers a rater could tell visits apart by. ``assess audit-set --key`` and ``assess randomize``
compare them between timepoints as AUCs (:mod:`assess.audit.visible`); with ``[pixels] normalize
= true`` the white balance and exposure of every photo are matched to its region's reference
(:func:`reference`, :func:`gains`, :func:`gain_tables`) and, where the subject mask is reliable,
the backdrop is painted in the region's backdrop colour (:func:`backdrop_colour`,
:func:`backdrop_weight`; :mod:`assess.deid` paints) before the photo is encoded.

The measures (CIE colorimetry with the sRGB primaries and a D65 white)
-------------------------------------------------------------------
* **luminance**, **contrast**: mean and standard deviation of CIE L* over the photo.
* **temperature**: correlated colour temperature (kelvin) of the photo's mean colour (the mean of
  its sRGB values, in linear light), by McCamy's formula from CIE 1931 x, y
  (McCamy 1992, *Color Res. Appl.* 17:142); lower is warmer.
* **tint**: Duv of the same colour, its distance from the Planckian locus in CIE 1960 u, v
  (Ohno 2014, *LEUKOS* 10:47, eq. 4 and Table 1); positive is greenish, negative magenta.
* **saturation**: mean CIE chroma C*ab of the pixels.
* **sharpness**: variance of the Laplacian of L* (Pech-Pacheco et al. 2000) in a band along the
  subject's outline, where the camera's focus shows and the skin's own texture (the clinical
  signal: wrinkles, pores) hardly enters; the whole photo when the subject mask is not reliable.
* **noise**: Immerkær's estimate (1996) of the standard deviation of white noise in L*: the
  mean absolute high-pass response of a kernel that cancels flat areas, ramps and straight edges,
  over the background away from the subject (the sensor's noise, not the skin's texture); the
  whole photo when the subject mask is not reliable.
* **background L\\*, a\\*, b\\***: the median colour of the pixels outside the subject.
* **subject area**, **subject x**, **subject y**: the subject's share of the photo and its centre
  (0 = left or top edge, 1 = right or bottom).

The subject mask: the background colour is the colour that most of the photo's outer strip
agrees with (the median of each side, the one most border pixels lie within a ΔE*ab of 12 of);
the subject is the pixels farther than ΔE*ab 15 from it, cleaned with :mod:`scipy.ndimage` (opened,
holes filled, the largest connected part kept). It is *reliable* when that part covers 5 to 90 %
of the photo and at least 60 % of the outer strip is background. An unreliable mask still gives
its numbers, but the correction then uses the whole photo's colour and leaves the backdrop as it is.

The neutral padding border that ``fit = "pad"`` draws (:data:`assess.deid.BACKGROUND`) is neither
background nor content: :func:`content_box` finds it and every measure leaves it out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = [
    "Look",
    "PROPERTIES",
    "measure",
    "content_box",
    "subject_mask",
    "srgb_to_linear",
    "linear_to_srgb",
    "lab",
    "xy_of_linear",
    "cct_mccamy",
    "duv_ohno",
    "sharpness",
    "noise_sigma",
    "reference",
    "gains",
    "gain_tables",
    "subject_reference",
    "backdrop_colour",
    "backdrop_weight",
    "PAD_COLOUR",
    "JND",
    "noticeable",
    "BORDER_AGREE",
    "SUBJECT_DELTA_E",
]

PAD_COLOUR = (128, 128, 128)
"""The colour of ``fit = "pad"`` borders (:data:`assess.deid.BACKGROUND`)."""
PAD_TOLERANCE = 8
"""How far (in 8-bit levels) a padding pixel may lie from :data:`PAD_COLOUR` after JPEG coding."""
BORDER_AGREE = 12.0
"""ΔE*ab within which a border pixel agrees with a candidate background colour."""
SUBJECT_DELTA_E = 15.0
"""ΔE*ab from the background colour beyond which a pixel is subject."""
STRIP = 0.05
"""Width of the outer strip (share of the shorter side) the background colour is read from."""
MAX_GAIN = 2.0
"""Largest factor (and smallest, its inverse) by which a correction scales a channel."""
TRIM = 0.03
"""``[pixels] normalize_to = "backdrop"``: how far (a share of linear light per channel) the
gains matched to the backdrop may move towards the participant's own skin colour over their
visits. 3 % changes a skin colour by about 1 ΔE*ab, below the 2.3 of a just noticeable difference
(Sharma 2003), and takes out what the backdrop's colour cannot tell of the camera (its coding
rounds one flat colour unlike the skin); a larger change of the skin between visits is kept."""
KEEP_DELTA_E = 10.0
"""ΔE*ab from the backdrop colour beyond which a pixel is kept by :func:`backdrop_weight` (lower
than :data:`SUBJECT_DELTA_E`: what might be skin is kept, not painted)."""
MARGIN = 0.03
"""Width (share of the shorter side) of the band around everything kept that keeps its own
pixels."""
FEATHER = 0.03
"""Width (share of the shorter side) beyond :data:`MARGIN` over which the photo fades into the
neutral backdrop."""

_M = np.array([[0.4124, 0.3576, 0.1805],
               [0.2126, 0.7152, 0.0722],
               [0.0193, 0.1192, 0.9505]], dtype=np.float64)  # linear sRGB -> XYZ (D65)
_WHITE = _M.sum(axis=1)  # XYZ of sRGB white (D65)
_LINEAR = np.where(np.arange(256) / 255.0 <= 0.04045, np.arange(256) / 255.0 / 12.92,
                   ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4).astype(np.float32)

PROPERTIES = ("luminance", "contrast", "temperature", "tint", "saturation", "sharpness", "noise",
              "background L*", "background a*", "background b*", "subject area", "subject x",
              "subject y")
"""The properties of a :class:`Look`, by the names the threat table gives them."""

JND = {
    "luminance": 1.0, "contrast": 1.0, "temperature": 100.0, "tint": 0.002, "saturation": 1.0,
    "sharpness": 0.10, "noise": 0.10, "background L*": 1.0, "background a*": 1.0,
    "background b*": 1.0, "subject area": 0.02, "subject x": 0.02, "subject y": 0.02,
}
"""The smallest difference between the typical photos of two visits that a rater could notice,
per property: ΔE*ab 1 for L*, a*, b*, chroma and L* contrast (about half the just-noticeable
difference of 2.3 usually quoted, Mahy et al. 1994); 100 K in colour temperature (about 4 mired
near 5000 K); a Duv of 0.002; 2 % of the frame for the subject's size and place; and, as shares of
their value (:data:`RELATIVE`), 10 % for sharpness and noise."""
RELATIVE = frozenset({"sharpness", "noise"})
"""Properties whose :data:`JND` is a share of their value, not a difference in their unit."""


def noticeable(name: str, a: float, b: float) -> bool:
    """Whether typical values ``a`` and ``b`` of property ``name`` differ by at least its
    :data:`JND`.

    >>> noticeable("temperature", 5000, 5050), noticeable("sharpness", 10.0, 12.0)
    (False, True)
    """
    if name in RELATIVE:
        scale = max(abs(a), abs(b), 1e-9)
        return abs(a - b) / scale >= JND[name]
    return abs(a - b) >= JND[name]


@dataclass(frozen=True)
class Look:
    """What :func:`measure` found in one photo (see the module docstring for each number).

    ``frame_linear``, ``background_linear`` and ``subject_linear`` are the linear-light RGB of the
    mean (8-bit sRGB) colour of the whole photo, of its background and of the subject away from its
    outline: what a correction matches (:func:`gains`).
    The mean is taken of the encoded values, which resizing and JPEG coding keep (both work on
    them); a mean of linear light would fall with every averaging of a noisy photo, more for a
    brighter one.
    """

    luminance: float
    contrast: float
    temperature: float
    tint: float
    saturation: float
    sharpness: float
    noise: float
    background_l: float
    background_a: float
    background_b: float
    subject_area: float
    subject_x: float
    subject_y: float
    reliable: bool
    frame_linear: tuple[float, float, float]
    background_linear: tuple[float, float, float]
    subject_linear: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def values(self) -> dict[str, float]:
        """The properties by their names in :data:`PROPERTIES`."""
        own = [f.name for f in fields(self)][:len(PROPERTIES)]
        return {name: float(getattr(self, attr)) for name, attr in zip(PROPERTIES, own)}

    def to_json(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- colour


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """Linear-light values (0..1, float32) of 8-bit sRGB values (IEC 61966-2-1)."""
    return _LINEAR[np.asarray(rgb, dtype=np.uint8)]


def _decoded(mean_rgb: np.ndarray) -> np.ndarray:
    """Linear light of mean 8-bit sRGB values (floats 0..255)."""
    v = np.clip(np.asarray(mean_rgb, dtype=np.float64) / 255.0, 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """sRGB-encoded values (0..1) of linear-light values (clipped to 0..1)."""
    v = np.clip(np.asarray(lin, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of 8-bit sRGB pixels ``(..., 3)``, as float32 ``(..., 3)``."""
    xyz = srgb_to_linear(rgb) @ _M.T.astype(np.float32)
    t = xyz / _WHITE.astype(np.float32)
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    out = np.empty_like(f)
    out[..., 0] = 116 * f[..., 1] - 16
    out[..., 1] = 500 * (f[..., 0] - f[..., 1])
    out[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return out


def xy_of_linear(lin: tuple[float, float, float] | np.ndarray) -> tuple[float, float]:
    """CIE 1931 chromaticity x, y of one linear-light sRGB colour."""
    X, Y, Z = _M @ np.asarray(lin, dtype=np.float64)
    s = X + Y + Z
    return (float(X / s), float(Y / s)) if s > 0 else (0.3127, 0.3290)


def cct_mccamy(x: float, y: float) -> float:
    """Correlated colour temperature (K) from CIE 1931 x, y by McCamy's cubic (1992).

    >>> round(cct_mccamy(0.3127, 0.3290))  # D65
    6505
    >>> round(cct_mccamy(0.4476, 0.4074))  # illuminant A, 2856 K
    2856
    """
    n = (x - 0.3320) / (0.1858 - y)
    return float(449.0 * n ** 3 + 3525.0 * n ** 2 + 6823.3 * n + 5520.33)


_OHNO_K = (-0.471106, 1.925865, -2.4243787, 1.5317403, -0.5179722, 0.0893944, -0.00616793)


def duv_ohno(x: float, y: float) -> float:
    """Duv (distance from the Planckian locus in CIE 1960 u, v) by Ohno's polynomial (2014).

    >>> round(duv_ohno(0.3127, 0.3290), 4)  # D65 lies a little above the locus
    0.0032
    """
    d = -2 * x + 12 * y + 3
    u, v = 4 * x / d, 6 * y / d
    lfp = float(np.hypot(u - 0.292, v - 0.24))
    a = float(np.arccos((u - 0.292) / lfp)) if lfp > 0 else 0.0
    lbb = sum(k * a ** i for i, k in enumerate(_OHNO_K))
    return lfp - lbb


# --------------------------------------------------------------------------- detail


def sharpness(lightness: np.ndarray, where: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of an L* image (higher: sharper or grainier), over the pixels
    ``where`` is true (default: all)."""
    from scipy.ndimage import laplace

    if min(lightness.shape) < 3:
        return 0.0
    response = laplace(np.asarray(lightness, dtype=np.float32), mode="nearest")
    inner = np.zeros(response.shape, bool)
    inner[1:-1, 1:-1] = True
    if where is not None and (where & inner).sum() >= 16:
        inner &= where
    return float(response[inner].var())


def noise_sigma(lightness: np.ndarray, where: np.ndarray | None = None) -> float:
    """Noise level of an L* image by Immerkær's estimator (1996, *CVIU* 64:300).

    The mean absolute response to the difference of two Laplacians (``[[1, -2, 1], [-2, 4, -2],
    [1, -2, 1]]``), which cancels flat areas, ramps and straight edges, scaled so that white noise
    of standard deviation s gives s. Over the pixels ``where`` is true (default: all).
    """
    from scipy.ndimage import convolve

    L = np.asarray(lightness, dtype=np.float32)
    if min(L.shape) < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    response = np.abs(convolve(L, kernel, mode="nearest"))
    inner = np.zeros(L.shape, bool)
    inner[1:-1, 1:-1] = True
    if where is not None and (where & inner).sum() >= 16:
        inner &= where
    return float(np.sqrt(np.pi / 2) / 6 * response[inner].mean())


# --------------------------------------------------------------------------- framing


def content_box(rgb: np.ndarray, pad: tuple[int, int, int] = PAD_COLOUR,
                tolerance: int = PAD_TOLERANCE) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the photo inside any ``fit = "pad"`` border.

    A border row or column is one whose pixels (98 % of them) all lie within ``tolerance`` of the
    padding colour; only whole rows and columns at the edges count, so grey inside the photo stays.
    """
    diff = np.abs(rgb.astype(np.int16) - np.asarray(pad, dtype=np.int16)).max(axis=2)
    flat = diff <= tolerance
    rows = flat.mean(axis=1) >= 0.98
    cols = flat.mean(axis=0) >= 0.98

    def span(line: np.ndarray) -> tuple[int, int]:
        inside = np.flatnonzero(~line)
        return (0, 0) if inside.size == 0 else (int(inside[0]), int(inside[-1]) + 1)

    top, bottom = span(rows)
    left, right = span(cols)
    return top, bottom, left, right


def _strip(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    k = max(1, int(round(STRIP * min(h, w))))
    ring = np.zeros((h, w), dtype=bool)
    ring[:k], ring[-k:], ring[:, :k], ring[:, -k:] = True, True, True, True
    return ring


def subject_mask(lab_pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """The subject mask of an L*a*b* photo, the background colour and whether the mask is reliable.

    See the module docstring for the rule.
    """
    from scipy import ndimage

    h, w = lab_pixels.shape[:2]
    k = max(1, int(round(STRIP * min(h, w))))
    sides = (lab_pixels[:k].reshape(-1, 3), lab_pixels[-k:].reshape(-1, 3),
             lab_pixels[:, :k].reshape(-1, 3), lab_pixels[:, -k:].reshape(-1, 3))
    ring = lab_pixels[_strip((h, w))]
    candidates = [np.median(s, axis=0) for s in sides]
    agree = [int((np.linalg.norm(ring - c, axis=1) <= BORDER_AGREE).sum()) for c in candidates]
    colour = candidates[int(np.argmax(agree))]
    far = np.linalg.norm(lab_pixels - colour, axis=2) > SUBJECT_DELTA_E
    size = max(1, min(h, w) // 100)  # opened by a square of 2·size + 1 pixels
    kept = ndimage.distance_transform_cdt(far, metric="chessboard") > size if far.any() else far
    far = (ndimage.distance_transform_cdt(~kept, metric="chessboard") <= size if kept.any()
           else kept)
    far = ndimage.binary_fill_holes(far)
    labels, n = ndimage.label(far)
    if n > 1:
        counts = np.bincount(labels.ravel())
        counts[0] = 0
        far = labels == int(np.argmax(counts))
    area = float(far.mean())
    border_background = 1.0 - float(far[_strip((h, w))].mean())
    reliable = 0.05 <= area <= 0.90 and border_background >= 0.60
    return far, colour, reliable


# --------------------------------------------------------------------------- one photo


def _outline(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The band along the subject's outline (where focus shows, away from the skin's own
    texture) and the background away from it (where the sensor's noise shows)."""
    from scipy import ndimage

    k = max(1, int(round(0.02 * min(mask.shape))))
    outside = ndimage.distance_transform_cdt(~mask, metric="chessboard")  # 0 on the subject
    inside = ndimage.distance_transform_cdt(mask, metric="chessboard")  # 0 off the subject
    return (outside <= k) & (inside <= max(1, k // 2)), outside > 2 * k


def _core(mask: np.ndarray) -> np.ndarray:
    """The subject away from its outline (farther inside than the outline band of
    :func:`_outline`): the skin itself, without the soft edge where it blends into the backdrop,
    whose share of the mask changes with the exposure."""
    from scipy import ndimage

    if not mask.any():
        return mask
    k = max(1, int(round(0.02 * min(mask.shape))))
    core = ndimage.distance_transform_cdt(mask, metric="chessboard") > k
    return core if core.any() else mask


def measure(rgb: np.ndarray, box: tuple[int, int, int, int] | None = None) -> Look:
    """Measure one photo: an ``(h, w, 3)`` uint8 sRGB array, its display copy.

    ``box`` (``top, bottom, left, right``) is where the photo lies on the canvas; by default it is
    found by :func:`content_box`, so a padding border counts neither as content nor background.

    >>> rng = np.random.default_rng(0)
    >>> grey = np.full((60, 80, 3), 118, np.uint8)
    >>> grey[15:45, 20:60] = (200, 150, 120)  # a skin-coloured box on a grey backdrop
    >>> look = measure(grey)
    >>> look.reliable, round(look.subject_area, 2), round(look.subject_x, 2)
    (True, 0.25, 0.5)
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("measure takes an (h, w, 3) uint8 RGB array")
    top, bottom, left, right = box if box is not None else content_box(rgb)
    if bottom - top < 8 or right - left < 8:  # all padding, or too small to say anything
        top, bottom, left, right = 0, rgb.shape[0], 0, rgb.shape[1]
    pixels = rgb[top:bottom, left:right]
    L = lab(pixels)
    frame_linear = _decoded(pixels.reshape(-1, 3).mean(axis=0))
    x, y = xy_of_linear(frame_linear)
    mask, _, reliable = subject_mask(L)
    edge, plain = _outline(mask) if reliable else (None, None)
    background = ~mask
    if not background.any():
        background = np.ones_like(mask)
    bg_lab = np.median(L[background], axis=0)
    bg_linear = _decoded(pixels[background].mean(axis=0))
    core = _core(mask)
    subject_linear = _decoded(pixels[core].mean(axis=0)) if core.any() else frame_linear
    h, w = mask.shape
    if mask.any():
        ys, xs = np.nonzero(mask)
        cy, cx = (ys.mean() + 0.5) / h, (xs.mean() + 0.5) / w
    else:
        cy = cx = 0.5
    lightness = L[..., 0]
    return Look(
        luminance=float(lightness.mean()), contrast=float(lightness.std()),
        temperature=cct_mccamy(x, y), tint=duv_ohno(x, y),
        saturation=float(np.hypot(L[..., 1], L[..., 2]).mean()),
        sharpness=sharpness(lightness, edge), noise=noise_sigma(lightness, plain),
        background_l=float(bg_lab[0]), background_a=float(bg_lab[1]),
        background_b=float(bg_lab[2]), subject_area=float(mask.mean()),
        subject_x=float(cx), subject_y=float(cy), reliable=bool(reliable),
        frame_linear=tuple(float(v) for v in frame_linear),
        background_linear=tuple(float(v) for v in bg_linear),
        subject_linear=tuple(float(v) for v in subject_linear))


# --------------------------------------------------------------------------- normalization


def _anchor(look: Look, use_background: bool) -> np.ndarray:
    return np.asarray(look.background_linear if use_background else look.frame_linear, float)


def reference(looks: list[Look]) -> tuple[tuple[float, float, float], bool]:
    """A region's reference colour: the median over its photos of what each correction matches.

    The background's mean linear RGB when the subject mask is reliable in at least 80 % of the
    region's photos, else the whole photo's; returns the colour and which of the two it is.
    """
    if not looks:
        raise ValueError("reference needs at least one photo")
    use_background = sum(look.reliable for look in looks) >= 0.8 * len(looks)
    ref = np.median([_anchor(look, use_background) for look in looks], axis=0)
    return tuple(float(v) for v in ref), use_background


def gains(look: Look, ref: tuple[float, float, float], use_background: bool,
          subject: tuple[float, float, float] | None = None, trim: float | None = None
          ) -> tuple[float, float, float]:
    """Linear-light gains per channel (R, G, B) that bring ``look``'s anchor colour to ``ref``.

    One factor per channel matches white balance (the ratios between channels) and exposure (their
    level) at once; being a scaling of linear light, it leaves the relative contrast of every
    wrinkle, pore and line as it was (bar clipping in the brightest highlights). Each factor is
    kept within 1/:data:`MAX_GAIN` .. :data:`MAX_GAIN`.

    ``subject``: the region's reference colour of the subject (:func:`subject_reference`), for a
    photo whose backdrop is painted (:func:`backdrop_weight`): the backdrop then no longer needs to
    match, and the subject's own colour (``look.subject_linear``) is brought to it instead; with
    ``trim`` (:data:`TRIM`), only so far: the gains that match the backdrop, moved towards the
    subject's by at most that share per channel (the subject reference then being the
    participant's own skin over their visits), so the skin's colour is kept but for a difference
    no rater could see.

    >>> look = measure(np.full((40, 40, 3), 120, np.uint8))
    >>> [round(g, 3) for g in gains(look, look.background_linear, False)]
    [1.0, 1.0, 1.0]
    """
    base = np.asarray(ref, float) / np.maximum(_anchor(look, use_background), 1e-4)
    if subject is not None and look.reliable:
        own = np.asarray(look.subject_linear, float)
        g = np.asarray(subject, float) / np.maximum(own, 1e-4)
        if trim is not None:
            g = base * np.clip(g / base, 1 / (1 + trim), 1 + trim)
    else:
        g = base
    g = np.clip(g, 1 / MAX_GAIN, MAX_GAIN)
    return tuple(float(v) for v in g)


def subject_reference(looks: list[Look], painted: bool | None = None
                      ) -> tuple[float, float, float] | None:
    """A reference colour of the subject: the median of ``subject_linear`` over the photos whose
    subject mask is reliable (a region's, or one participant's in a region); ``None`` when the
    region's backdrops are not painted (``painted``; by default :func:`backdrop_colour` of these
    photos) or none is reliable."""
    if not (painted if painted is not None else backdrop_colour(looks) is not None):
        return None
    reliable = [look.subject_linear for look in looks if look.reliable]
    if not reliable:
        return None
    ref = np.median(reliable, axis=0)
    return tuple(float(v) for v in ref)


def gain_tables(channel_gains: tuple[float, float, float]) -> list[int]:
    """A 768-entry lookup table (R, G, B) for ``Image.point`` that applies linear-light gains to
    8-bit sRGB values.

    >>> gain_tables((1.0, 1.0, 1.0))[:3], gain_tables((1.0, 1.0, 1.0))[255]
    ([0, 1, 2], 255)
    """
    out: list[int] = []
    for g in channel_gains:
        encoded = linear_to_srgb(_LINEAR.astype(np.float64) * g)
        out.extend(int(v) for v in np.round(encoded * 255.0))
    return out



# --------------------------------------------------------------------------- the backdrop


def backdrop_colour(looks: list[Look]) -> tuple[int, int, int] | None:
    """The 8-bit sRGB colour a region's backdrops are painted with: the median over its photos of
    the backdrop's mean colour (linear light, encoded again).

    ``None`` when the subject mask is reliable in fewer than 80 % of the photos (the rule of
    :func:`reference`): such a region's backdrops are left as they are.

    >>> grey = np.full((60, 80, 3), 118, np.uint8)
    >>> grey[15:45, 20:60] = (200, 150, 120)
    >>> backdrop_colour([measure(grey)])
    (118, 118, 118)
    """
    if not looks or sum(look.reliable for look in looks) < 0.8 * len(looks):
        return None
    ref = np.median([look.background_linear for look in looks], axis=0)
    return tuple(int(v) for v in np.round(linear_to_srgb(ref) * 255.0))


def backdrop_weight(rgb: np.ndarray) -> np.ndarray | None:
    """How much of each pixel of an ``(h, w, 3)`` uint8 sRGB photo to keep when its backdrop is
    neutralized: 1 on everything that may be the subject and a margin around it, fading to 0 over
    the backdrop; ``None`` when the subject mask (:func:`subject_mask`) is not reliable.

    Kept are the pixels farther than :data:`KEEP_DELTA_E` from the backdrop colour (not only the
    subject mask's largest part: a second hand, an ear, a strand of hair stay too) bar specks
    smaller than the mask's opening, their holes filled, then every pixel within :data:`MARGIN` of
    the shorter side of them; over the next :data:`FEATHER` the weight falls linearly to 0. Returns
    float32 ``(h, w)``; :mod:`assess.deid` paints the flat colour through its complement, so a
    pixel of weight 1 stays the photo's own.
    """
    from scipy import ndimage

    rgb = np.asarray(rgb)
    L = lab(rgb)
    mask, colour, reliable = subject_mask(L)
    if not reliable:
        return None
    h, w = mask.shape
    keep = np.linalg.norm(L - colour, axis=2) > KEEP_DELTA_E
    labels, n = ndimage.label(keep)
    if n > 1:
        size = max(1, min(h, w) // 100)
        counts = np.bincount(labels.ravel())
        small = counts < (2 * size + 1) ** 2
        small[0] = False
        keep[small[labels]] = False
    keep = ndimage.binary_fill_holes(keep | mask)
    distance = ndimage.distance_transform_edt(~keep)
    short = min(h, w)
    margin, feather = MARGIN * short, max(1.0, FEATHER * short)
    return np.clip((margin + feather - distance) / feather, 0.0, 1.0).astype(np.float32)
