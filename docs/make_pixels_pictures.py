"""Draw docs/pixels-found.png and docs/pixels-masked.png from the code.

A synthetic skin photo with a label card held askew and a camera's date imprint
(``tests/text_photos.py``), searched with :func:`assess.pixels.text.find_text`: the text found
outlined, then the same photo as :func:`assess.pixels.text.mask` leaves it for the raters.

Usage::

    PYTHONPATH=. python3 docs/make_pixels_pictures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "tests"))

from assess.pixels.text import find_text, mask  # noqa: E402
from text_photos import _imprint, photo_with_text  # noqa: E402

WIDTH = 800


def main() -> None:
    img, _, planted = photo_with_text(1, "card")
    planted += _imprint(img, np.random.default_rng(3))
    found = find_text(img)
    outlined = img.copy()
    draw = ImageDraw.Draw(outlined)
    for f in found:
        x0, y0, x1, y1 = f.box
        draw.rectangle((x0 - 6, y0 - 6, x1 + 6, y1 + 6), outline=(230, 0, 0), width=5)
    masked = Image.fromarray(mask(np.asarray(img), [f.box for f in found]))
    size = (WIDTH, round(img.height * WIDTH / img.width))
    for picture, name in ((outlined, "pixels-found.png"), (masked, "pixels-masked.png")):
        picture.resize(size, Image.Resampling.LANCZOS).save(DOCS / name, optimize=True)
    print("planted:", planted)
    for f in found:
        print(f"found {f.text!r} at {f.box} (confidence {f.confidence:.0f})")


if __name__ == "__main__":
    main()
