"""The contact sheet: every display copy in code order, for what no file check can see."""

from __future__ import annotations

from pathlib import Path

from .findings import AuditError

__all__ = ["contact_sheet"]


def contact_sheet(rater_dir: Path, out: Path, columns: int = 8) -> list[Path]:
    """Write one picture of every display copy, in code order, each labelled with its code.

    Large sets are split into pages of 12 rows (``out``, then ``<stem>-2.jpg``, …); the pages
    written are returned.

    The order does not follow any worklist. The coordinator looks at it for what no file check can
    see: dates burned into the pixels, name tags or wristbands in frame, tattoos, rulers with ids.
    ``out`` must not be inside the rater folder (it would be copied to the rater).
    """
    from ..deid import render_contact_sheet

    rater_dir = Path(rater_dir)
    out = Path(out)
    display = rater_dir / "images" / "display"
    if not display.is_dir():
        raise AuditError(f"{display}: no display copies; give the rater folder of a set (…/<set-id>/rater)")
    try:
        out.resolve().relative_to(rater_dir.resolve())
    except ValueError:
        pass
    else:
        raise AuditError(f"{out}: inside the rater folder, it would be copied to the rater; "
                         "write the contact sheet elsewhere (e.g. beside rater/ and key/)")
    tiles = [(p.stem, p) for p in sorted(display.glob("*.jpg"))]
    if not tiles:
        raise AuditError(f"{display}: no display copies found")
    if columns < 1:
        raise AuditError("columns must be at least 1")
    return render_contact_sheet(tiles, out, columns)
