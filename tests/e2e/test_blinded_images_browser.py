"""Blinded image files in a real Chromium: padding to one size changes nothing it shows."""

from __future__ import annotations

import base64

import pytest
from PIL import Image, ImageDraw

from assess.deid import encode_jpeg, equalize_sizes

pytestmark = pytest.mark.e2e

SHOW = """async (src) => {
    const img = new Image(); img.src = src; await img.decode();
    const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    return [c.width, c.height, Array.from(g.getImageData(0, 0, c.width, c.height).data)];
}"""


def picture(size, grain: float) -> Image.Image:
    img = Image.new("RGB", size, (190, 140, 120))
    draw = ImageDraw.Draw(img)
    draw.ellipse((40, 30, size[0] - 40, size[1] - 30), fill=(150, 100, 90))
    draw.line((0, 0, size[0], size[1]), fill=(60, 40, 30), width=3)
    return Image.blend(img, Image.effect_noise(size, 40).convert("RGB"), grain)


def test_chromium_shows_a_padded_file_exactly_as_the_unpadded_one(tmp_path, new_page):
    small, big = tmp_path / "small.jpg", tmp_path / "big.jpg"
    small.write_bytes(encode_jpeg(picture((320, 240), 0.05), 90))
    big.write_bytes(encode_jpeg(picture((320, 240), 0.4), 90))
    plain = small.read_bytes()
    equalize_sizes([small, big])
    padded = small.read_bytes()
    assert len(padded) == big.stat().st_size > len(plain) + 1000
    page = new_page()
    shown = [page.evaluate(SHOW, "data:image/jpeg;base64," + base64.b64encode(d).decode())
             for d in (plain, padded)]
    assert shown[0][:2] == shown[1][:2] == [320, 240]
    assert shown[0][2] == shown[1][2]
