"""Small real blinded sets for the rater-side tests (store, app, status, browser tests).

A synthetic study (:func:`assess.synth.make_study`) randomized by :func:`assess.blind.randomize`:
the same rater folder and key that a coordinator would hand out. Building one takes a few seconds,
so each distinct set is built once per test session and copied into every test that asks for it.
"""

from __future__ import annotations

import atexit
import csv
import re
import shutil
import tempfile
from pathlib import Path

from assess import blind, synth

REGIONS = {"face": "wsrs", "hands": "merz-hand"}
SET_ID = "test-set"
_BUILT: dict[tuple, Path] = {}
_ROOT = Path(tempfile.mkdtemp(prefix="assess-rater-sets-"))
atexit.register(shutil.rmtree, _ROOT, True)


def build_rater_set(out: Path, raters=("derm1",), participants: int = 3, presentation: str = "single",
                    seed: int = 7, size=(160, 120), repeat_fraction: float = 0.0,
                    references: bool = False, min_view_ms: int | None = None,
                    session_hours: float | None = None, regions=None, own_scales=None,
                    sites: dict[str, str] | None = None, training: tuple = (),
                    sections: str = "", views=None):
    """Copy a randomized set into ``out`` (``out/rater``, ``out/key``).

    ``references`` gives the face scale (WSRS) one reference photo per level; ``min_view_ms``
    writes ``[rating] min_view_ms`` into the study file (left out: the study's default), and
    ``session_hours`` likewise ``[rating] session_hours``; ``regions`` maps regions to shipped
    scale ids (default :data:`REGIONS`); ``own_scales`` maps a region to the TOML body of a
    study's own scale (``[scales.own-<region>]``) it is rated on instead (the photos are drawn
    for the shipped scale); ``sites`` (rater → site) writes ``blinding.sites``; ``training``
    gives the face region one training photo per listed reference score
    (:func:`add_reference_photos`); ``sections`` is TOML appended to the study file (e.g. a
    ``[qualification]`` or ``[consensus]`` section); ``views`` maps a region to its views (one
    photo per view, :func:`assess.synth.make_study`).

    Returns ``(rater_dir, key_dir, access)`` with ``access`` the rater → access code map of
    ``key/access.csv``.
    """
    params = (tuple(raters), participants, presentation, seed, tuple(size), repeat_fraction,
              references, min_view_ms, session_hours, tuple(sorted((regions or REGIONS).items())),
              tuple(sorted((own_scales or {}).items())),
              tuple(sorted((sites or {}).items())), tuple(training), sections,
              tuple(sorted((region, tuple(v)) for region, v in (views or {}).items())))
    src = _BUILT.get(params)
    if src is None:
        work = _ROOT / f"set{len(_BUILT)}"
        study = synth.make_study(work / "images", participants=participants,
                                 regions=regions or REGIONS,
                                 seed=seed, size=tuple(size), raters=tuple(raters),
                                 repeat_fraction=repeat_fraction, presentation=presentation,
                                 views=views)
        if references:
            _add_references(study.study_path, size)
        if training:
            add_reference_photos(study.study_path, "face", training, size)
        if sections:
            with open(study.study_path, "a", encoding="utf-8") as fh:
                fh.write("\n" + sections + "\n")
        if sites:
            text = study.study_path.read_text(encoding="utf-8")
            table = ", ".join(f'{r} = "{site}"' for r, site in sites.items())
            text, n = re.subn(r"(?m)^(raters = .*)$", lambda m: f"{m[1]}\nsites = {{{table}}}",
                              text, count=1)
            assert n == 1, "no raters line in the synthetic study"
            study.study_path.write_text(text, encoding="utf-8")
        for region, body in (own_scales or {}).items():
            text = study.study_path.read_text(encoding="utf-8")
            shipped = (regions or REGIONS)[region]
            text = text.replace(f'[regions.{region}]\nscale = "{shipped}"',
                                f'[regions.{region}]\nscale = "own-{region}"')
            study.study_path.write_text(text + f"\n[scales.own-{region}]\n{body}\n",
                                        encoding="utf-8")
        rating = [f"{k} = {v}" for k, v in (("min_view_ms", min_view_ms),
                                            ("session_hours", session_hours)) if v is not None]
        if rating:
            with open(study.study_path, "a", encoding="utf-8") as fh:
                fh.write("\n[rating]\n" + "\n".join(rating) + "\n")
        built = blind.randomize(study.study_path, study.root, work / "assignments", set_id=SET_ID,
                                seed=seed, workers=1)
        src = _BUILT[params] = built.path
    shutil.copytree(src, out)
    with open(out / "key" / "access.csv", newline="", encoding="utf-8") as fh:
        access = {row["rater"]: row["access_code"] for row in csv.DictReader(fh)}
    return out / "rater", out / "key", access


def add_reference_photos(study_path: Path, region: str, scores, size, use: str = "training",
                         folder: str = "images-reference") -> Path:
    """Draw one reference photo of ``region`` per score (its severity follows the score), list
    them in ``reference.csv`` beside the study file with ``use`` and name it in ``[reference]``.
    Returns the CSV."""
    from PIL import Image

    from assess.synth import draw_skin

    root = study_path.parent
    (root / folder).mkdir(exist_ok=True)
    lines = ["file,region,score,use"]
    for n, score in enumerate(scores):
        pixels = draw_skin(size[1], size[0], region, (score - 1) / 4, geometry_seed=(90, n),
                           visit_seed=(91, n))
        name = f"{folder}/{region}-{n:02d}.jpg"
        Image.fromarray(pixels).save(root / name, quality=92)
        lines.append(f"{name},{region},{score},{use}")
    csv_path = root / "reference.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(study_path, "a", encoding="utf-8") as fh:
        fh.write('\n[reference]\nphotos = "reference.csv"\n')
    return csv_path


def _add_references(study_path: Path, size) -> None:
    from PIL import Image, ImageDraw

    refs = study_path.parent / "refs" / "face"
    refs.mkdir(parents=True)
    for level in range(1, 6):
        img = Image.new("RGB", tuple(size), (220, 180, 160))
        draw = ImageDraw.Draw(img)
        for k in range(level):
            y = (k + 1) * size[1] // 7
            draw.line((10, y, size[0] - 10, y + 5), fill=(120, 80, 70), width=level)
        img.save(refs / f"{level}.jpg", quality=90)
    text = study_path.read_text(encoding="utf-8")
    study_path.write_text(text.replace('[regions.face]\nscale = "wsrs"\n',
                                       '[regions.face]\nscale = "wsrs"\nreferences = "refs/face"\n'),
                          encoding="utf-8")
