"""Synthetic photos with and without text in the frame, built in code (tests, bench, docs).

Skin from :func:`assess.synth.draw_skin` under date imprints in several DejaVu fonts, colours and
sizes; label cards held a few degrees askew with the participant and visit; rulers with numbers;
and low-contrast signs on the backdrop. Each photo with text comes with the strings planted in it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from assess.synth import draw_skin

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf",
         "DejaVuSansCondensed.ttf", "DejaVuSansMono-Bold.ttf")
KINDS = ("imprint", "card", "ruler", "faint")
SIZE = (1600, 1200)  # width, height of every photo


def fonts_present() -> bool:
    """Whether the DejaVu fonts (Debian's fonts-dejavu-core) are installed."""
    return all((FONT_DIR / name).is_file() for name in FONTS)


@functools.lru_cache(maxsize=None)
def _skin(k: int) -> np.ndarray:
    kinds = ("face", "neck", "hands")
    w, h = SIZE
    return draw_skin(h, w, kinds[k % 3], 0.2 + 0.15 * (k % 5), tone=1 + k % 4,
                     geometry_seed=(k,), visit_seed=(k, 1), warmth=0.1 * (k % 3))


def background(seed: int) -> Image.Image:
    """A skin photo without text: one of eight drawn skins, flipped and tinted by ``seed``."""
    rng = np.random.default_rng(seed)
    pixels = _skin(int(rng.integers(8)))
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    gain = rng.uniform(0.85, 1.15, 3)
    pixels = np.clip(pixels.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _font(rng, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / FONTS[int(rng.integers(len(FONTS)))]), size)


def _date(rng) -> str:
    y, m, d = int(rng.integers(2015, 2027)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    style = int(rng.integers(4))
    return (f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"'{y % 100:02d} {m:2d} {d:2d}",
            f"{d:02d}.{m:02d}.{y % 100:02d}")[style]


def _imprint(img: Image.Image, rng) -> list[str]:
    """A camera's date (and sometimes time) in a corner, orange, yellow, white or red."""
    draw = ImageDraw.Draw(img)
    text = _date(rng)
    if rng.random() < 0.4:
        text += f" {int(rng.integers(24)):02d}:{int(rng.integers(60)):02d}"
    font = _font(rng, int(rng.integers(22, 56)))
    colour = [(255, 150, 40), (255, 220, 60), (250, 250, 250), (230, 40, 30)][int(rng.integers(4))]
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    w, h = img.size
    margin = int(rng.integers(20, 80))
    x = w - (x1 - x0) - margin if rng.random() < 0.7 else margin
    y = h - (y1 - y0) - margin if rng.random() < 0.8 else margin
    draw.text((x - x0, y - y0), text, fill=colour, font=font)
    return text.replace("'", "").split()


def _card(img: Image.Image, rng) -> list[str]:
    """A label card held in the frame, rotated a few degrees: participant, visit, date."""
    lines = [f"P{int(rng.integers(1, 99)):02d}-{int(rng.integers(100, 999))}",
             ["Baseline", "Visit 2", "Week 12", "Month 6", "Follow-up"][int(rng.integers(5))],
             _date(rng)]
    size = int(rng.integers(26, 48))
    font = _font(rng, size)
    pad = size // 2
    width = max(ImageDraw.Draw(img).textbbox((0, 0), s, font=font)[2] for s in lines) + 2 * pad
    height = len(lines) * int(size * 1.35) + 2 * pad
    paper = tuple(int(v) for v in rng.integers(215, 256, 3))
    card = Image.new("RGBA", (width, height), paper + (255,))
    draw = ImageDraw.Draw(card)
    ink = [(20, 20, 20), (20, 30, 120), (120, 20, 20)][int(rng.integers(3))]
    for k, s in enumerate(lines):
        draw.text((pad, pad + k * int(size * 1.35)), s, fill=ink, font=font)
    card = card.rotate(float(rng.uniform(-5, 5)), resample=Image.Resampling.BICUBIC, expand=True)
    w, h = img.size
    x = int(rng.integers(30, w - card.width - 30))
    y = int(rng.choice([rng.integers(30, 200), rng.integers(h - card.height - 200, h - card.height - 30)]))
    img.paste(card, (x, y), card)
    return [word.replace("'", "") for s in lines for word in s.split()]


def _ruler(img: Image.Image, rng) -> list[str]:
    """A ruler along an edge, with millimetre ticks and numbers every centimetre."""
    w, h = img.size
    mm = float(rng.uniform(5, 8))
    length = int(rng.integers(14, 22))
    size = int(rng.integers(20, 30))
    font = _font(rng, size)
    body = (int(mm * 10 * length + 40 + 2.5 * size), int(size * 2.8))
    ruler = Image.new("RGB", body, tuple(int(v) for v in rng.integers(200, 250, 3)))
    draw = ImageDraw.Draw(ruler)
    numbers = []
    for k in range(10 * length + 1):
        x = 20 + k * mm
        tick = body[1] * (0.34 if k % 10 == 0 else 0.28 if k % 5 == 0 else 0.18)
        draw.line((x, 0, x, tick), fill=(30, 30, 30), width=2)
        if k % 10 == 0 and k:
            draw.text((x, body[1] * 0.6), str(k // 10), fill=(30, 30, 30), font=font, anchor="mt")
            numbers.append(str(k // 10))
    draw.text((body[0] - 8, body[1] * 0.6), "cm", fill=(30, 30, 30), font=font, anchor="rt")
    ruler = ruler.convert("RGBA").rotate(float(rng.uniform(-3, 3)), resample=Image.Resampling.BICUBIC,
                                         expand=True)
    x = int(rng.integers(20, max(21, w - ruler.width - 20)))
    y = h - ruler.height - int(rng.integers(20, 120))
    img.paste(ruler, (x, y), ruler)
    return [s for s in numbers if len(s) >= 2] + ["cm"]


def _faint(img: Image.Image, rng) -> list[str]:
    """Low-contrast text on the backdrop: a sign or a pencilled note, 25-45 grey levels off."""
    words = ["ROOM", "CLINIC", "DERMATOLOGY", "STUDY", "Photo", "Station"]
    text = f"{words[int(rng.integers(len(words)))]} {int(rng.integers(2, 40))}"
    font = _font(rng, int(rng.integers(30, 60)))
    w, h = img.size
    x0, y0, x1, y1 = ImageDraw.Draw(img).textbbox((0, 0), text, font=font)
    x = int(rng.integers(20, 300)) if rng.random() < 0.5 else w - (x1 - x0) - int(rng.integers(20, 300))
    y = int(rng.integers(20, 120))
    ink = Image.new("L", img.size, 0)
    ImageDraw.Draw(ink).text((x - x0, y - y0), text, fill=255, font=font)
    pixels = np.asarray(img, dtype=np.float32)
    local = pixels[y:y + y1 - y0, x:x + x1 - x0].mean()
    step = float(rng.uniform(25, 45)) * (1 if local < 128 else -1)
    shifted = pixels + step * (np.asarray(ink, dtype=np.float32)[..., None] / 255.0)
    img.paste(Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8)))
    return text.split()


_DRAW = {"imprint": _imprint, "card": _card, "ruler": _ruler, "faint": _faint}


def photo_with_text(seed: int, kind: str | None = None) -> tuple[Image.Image, str, list[str]]:
    """A skin photo with text of one kind (by ``seed`` unless given); the kind and the strings."""
    rng = np.random.default_rng([seed, 7])
    kind = kind or KINDS[seed % len(KINDS)]
    img = background(seed + 1000)
    planted = _DRAW[kind](img, rng)
    return img, kind, planted
