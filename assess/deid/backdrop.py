"""Backdrop painting (``[pixels] normalize``): the photo's backdrop in the region's colour where its
subject mask is reliable.
"""

from __future__ import annotations

from PIL import Image

GAINS_EDGE = 320
"""Long edge of the canvas a source photo is decoded for to compute its ``[pixels] normalize``
gains (:func:`look_file`): means of colour need few pixels, and the pass costs about a fifth of
what the pixel pipeline does for a 2 MP photo."""


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

    from ..pixels.visible import backdrop_weight

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
