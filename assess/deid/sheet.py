"""The contact sheet: labelled thumbnails of a set's photos on JPEG pages.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .decode import FORMATS
from .encode import encode_jpeg


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
