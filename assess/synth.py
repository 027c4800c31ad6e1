"""Synthetic trial photos with a known truth: for the demo, the worked examples and the tests.

:func:`make_study` draws a small clinical trial: every participant has a true severity level per
region and timepoint (most improve by 0 to 2 levels after treatment), and every photo shows skin
whose wrinkle lines (face, neck) or veins and tendons (hands) follow that level, so a person looking
at a photo can judge its severity. The generator also reproduces what happens in real trials and
what a blinding tool must undo: the follow-up visit used another camera (other resolution and
aspect, JPEG quality and chroma subsampling, other EXIF make/model/serial number, the real visit
date, GPS coordinates, a JPEG comment, bytes after the end-of-image marker, a participant id in the
image description), some follow-up photos are stored rotated with an EXIF orientation tag, and a few
are HEIC.

It writes, into one folder, the photos named ``<participant>_<timepoint>_<region>[_<view>].<ext>``,
a ``study.toml``, ``truth.csv`` (``participant,timepoint,region,view,level,arm``), and with arms
``participants.csv`` (``participant,arm``). The truth lives beside the raw photos, never in a blinded
set; ``assess randomize`` ignores every file that is not a photo.

>>> import tempfile, pathlib
>>> synth = make_study(pathlib.Path(tempfile.mkdtemp()) / "demo", participants=3, size=(160, 120),
...                    regions={"face": "wsrs"})
>>> len(synth.photos), synth.study.timepoints
(6, ('baseline', 'month12'))
>>> sorted({p.path.suffix.lower() for p in synth.photos}) <= ['.heic', '.jpg']
True
>>> all(synth.truth[p.slot] == p.level for p in synth.photos)
True
"""

from __future__ import annotations

import csv
import io
import json
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from .errors import AssessError
from .levels import canonical
from .study import Study, load_study, shipped_scales

__all__ = ["Arm", "Camera", "SynthPhoto", "SynthStudy", "SynthError", "make_study", "DEFAULT_REGIONS"]

DEFAULT_REGIONS = {"face": "wsrs", "neck": "wsrs", "hands": "merz-hand"}
PORTRAIT_REGIONS = frozenset({"face"})  # framed upright, as faces are photographed

# Skin tones (sRGB, 0..1) from light to dark; one per participant.
SKIN_TONES = np.array([
    (0.96, 0.80, 0.69), (0.92, 0.74, 0.62), (0.87, 0.68, 0.55), (0.80, 0.60, 0.47),
    (0.72, 0.52, 0.39), (0.60, 0.42, 0.31), (0.48, 0.33, 0.24), (0.38, 0.26, 0.19),
], dtype=np.float32)
MAX_DRAWN_PIXELS = 2_500_000
BACKDROP = np.array((0.42, 0.50, 0.58), dtype=np.float32)  # clinic blue-grey


class SynthError(AssessError):
    """The synthetic study cannot be written as asked (bad parameter or a non-empty folder)."""


@dataclass(frozen=True)
class Arm:
    """A treatment arm: its name, how many participants it has and which regions they are
    photographed on."""

    name: str
    participants: int
    regions: tuple[str, ...]


@dataclass(frozen=True)
class Camera:
    """What one visit's camera leaves in a file besides the pixels."""

    make: str
    model: str
    serial: str
    software: str
    aspect: tuple[int, int]  # long:short
    scale: float  # long edge relative to the study's ``size``
    quality: int
    subsampling: int  # Pillow: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0
    extension: str
    gps: tuple[float, float]
    comment: str = ""
    trailer: bool = False  # bytes after the JPEG end marker, as some phones write
    rotates: bool = False  # stores portrait shots as landscape pixels + EXIF orientation
    heic: bool = False  # writes some photos as HEIC
    skin_warmth: float = 0.03  # how much warmer than baseline's it renders skin (0 = the same)
    sensor_noise: float = 0.0  # standard deviation (8-bit levels) of noise over the whole frame


# Visit i uses CAMERAS[i % len(CAMERAS)]: a DSLR at baseline, phones at the follow-ups.
CAMERAS = (
    Camera("Canon", "Canon EOS 5D Mark IV", "032021004711", "Firmware Version 1.2.0", (4, 3), 1.0,
           95, 0, ".JPG", (48.13743, 11.57549), skin_warmth=0.0),
    Camera("Apple", "iPhone 13 Pro", "F17GK2XQ0D8M", "16.1.2", (16, 9), 1.4, 82, 2, ".jpg",
           (48.15121, 11.56044), comment="Apple iPhone", trailer=True, rotates=True, heic=True),
    Camera("samsung", "SM-G991B", "R58R31ABCDE", "G991BXXU5CVLL", (3, 2), 1.2, 88, 1, ".jpg",
           (48.14032, 11.58811), comment="SAMSUNG", trailer=True, rotates=True),
)


@dataclass(frozen=True)
class SynthPhoto:
    """One written photo and the truth behind it."""

    participant: str
    timepoint: str
    region: str
    view: str
    level: int | float  # a VAS: one of 11 points on its line
    arm: str
    path: Path  # relative to the study folder
    orientation: int = 1  # EXIF orientation stored in the file

    @property
    def slot(self) -> tuple[str, str, str, str]:
        return (self.participant, self.timepoint, self.region, self.view)


@dataclass
class SynthStudy:
    """What :func:`make_study` wrote."""

    root: Path
    study_path: Path
    truth_path: Path
    participants_path: Path | None
    photos: list[SynthPhoto]
    arms: dict[str, str] = field(default_factory=dict)  # participant -> arm

    @property
    def images_dir(self) -> Path:
        return self.root

    @property
    def study(self) -> Study:
        return load_study(self.study_path)

    @property
    def truth(self) -> dict[tuple[str, str, str, str], int]:
        """True level by ``(participant, timepoint, region, view)``."""
        return {p.slot: p.level for p in self.photos}


def make_study(
    out_dir: str | Path,
    *,
    participants: int = 12,
    regions: Mapping[str, str] | None = None,
    timepoints: Sequence[str] = ("baseline", "month12"),
    seed: int = 0,
    size: tuple[int, int] = (1600, 1200),
    arms: Mapping[str, tuple[int, Sequence[str]]] | Sequence[Arm] | None = None,
    views: Mapping[str, Sequence[str]] | None = None,
    study_id: str = "DEMO",
    title: str = "Synthetic demonstration study",
    raters: Sequence[str] = ("derm1",),
    repeat_fraction: float = 0.1,
    presentation: str = "single",
    blinding_seed: int | None = None,
    improvement: Sequence[float] = (0.2, 0.5, 0.3),
    rotated_fraction: float = 0.25,
    heic_fraction: float = 0.1,
    start: date = date(2025, 1, 13),
    normalize: Mapping[str, object] | None = None,
    workers: int | None = 1,
    guide: bool = False,
    follow_up_look: tuple[float, float] = (0.0, 0.0),
    cameras: Sequence[Camera] | None = None,
    skin_tones: Sequence[int] | None = None,
) -> SynthStudy:
    """Write a synthetic study with a known truth into ``out_dir`` (created; must be empty).

    Parameters
    ----------
    out_dir
        Folder for the photos, ``study.toml``, ``truth.csv`` (and ``participants.csv`` with arms).
    participants
        Number of participants when ``arms`` is not given.
    regions
        Region name to scale id (shipped scales), e.g. ``{"face": "wsrs", "hands": "merz-hand"}``.
    timepoints
        Visit names in order; the first is baseline.
    seed
        Everything (levels, skin, lines, cameras, dates) follows from it.
    size
        ``(width, height)`` of a baseline photo; follow-up cameras are bigger and wider. Faces are
        framed upright (height and width swapped).
    arms
        ``{"arm name": (participants, ["region", ...]), ...}`` or a list of :class:`Arm`: each
        participant is allocated at random to one arm and photographed on that arm's regions only.
        Overrides ``participants``.
    views
        Region to view names, e.g. ``{"hands": ["left", "right"]}``; one photo per view.
    improvement
        Probabilities that a participant improves by 0, 1, 2, … levels by the last visit.
    rotated_fraction, heic_fraction
        Share of follow-up photos stored rotated with an EXIF orientation tag, or as HEIC.
    normalize
        ``[normalize]`` table of the study file; by default the long edge of the photos.
    workers
        Processes drawing photos (``None``: one per core). Small studies are fastest with 1.
    follow_up_look
        ``(warmth, brightness)`` of the follow-up visits' camera against baseline's, as its white
        balance and exposure would give them: every pixel of a follow-up photo (skin and backdrop)
        has its linear light scaled by ``1 + warmth`` in red, ``1 - warmth`` in blue and by
        ``1 + brightness`` in all three (e.g. ``(0.12, 0.25)``: clearly warmer and brighter).
        ``(0, 0)`` (the default): no such change.
    cameras
        The camera of each visit (visit ``i`` uses ``cameras[i % len(cameras)]``); by default
        :data:`CAMERAS`: a DSLR at baseline, phones at the follow-ups.
    skin_tones
        Indices into :data:`SKIN_TONES` (0 = lightest … 7 = darkest) the participants' skin is
        drawn from; by default all eight.
    guide
        Also draw a photonumeric guide: one drawing per level of each scale, in
        ``guide/<scale>/<value>.png``, named as the regions' ``references`` in ``study.toml``.

    Returns
    -------
    SynthStudy
        Paths and the truth per photo.
    """
    root = Path(out_dir)
    if root.exists() and any(root.iterdir()):
        raise SynthError(f"{root}: folder is not empty; give a new folder for the synthetic study")
    regions = dict(DEFAULT_REGIONS if regions is None else regions)
    scales = shipped_scales()
    for name, scale_id in regions.items():
        if scale_id not in scales:
            raise SynthError(f"region {name!r}: unknown scale {scale_id!r}; use one of "
                             f"{', '.join(sorted(scales))}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", name):
            raise SynthError(f"region {name!r}: use letters, digits and dashes")
    timepoints = tuple(timepoints)
    if len(timepoints) < 2 or len(set(timepoints)) != len(timepoints):
        raise SynthError(f"timepoints: give two or more distinct names, not {timepoints}")
    views = {r: tuple(v) for r, v in (views or {}).items()}
    arm_list = _arms(arms, participants, regions)
    width, height = int(size[0]), int(size[1])
    if min(width, height) < 32:
        raise SynthError(f"size: {size} is too small; give at least 32 x 32 pixels")
    visit_cameras = tuple(cameras) if cameras else CAMERAS
    warmth, brightness = (float(v) for v in follow_up_look)
    if skin_tones is not None and (not len(skin_tones) or not all(
            isinstance(t, (int, np.integer)) and 0 <= t < len(SKIN_TONES) for t in skin_tones)):
        raise SynthError(f"skin_tones: give indices 0 to {len(SKIN_TONES) - 1}, not {skin_tones!r}")
    if not (-0.5 < warmth < 0.5 and -0.5 < brightness < 1.0):
        raise SynthError(f"follow_up_look: give (warmth, brightness) with warmth between -0.5 and "
                         f"0.5 and brightness between -0.5 and 1, not {tuple(follow_up_look)}")
    probs = np.asarray(improvement, dtype=float)
    if probs.ndim != 1 or len(probs) == 0 or (probs < 0).any() or not np.isclose(probs.sum(), 1):
        raise SynthError(f"improvement: give probabilities of improving by 0, 1, 2, … levels "
                         f"that sum to 1, not {tuple(improvement)}")

    rng = np.random.default_rng([seed, 0])
    n_total = sum(a.participants for a in arm_list)
    ids = [f"S{1001 + i}" for i in range(n_total)]
    allocation = np.concatenate([np.full(a.participants, i) for i, a in enumerate(arm_list)])
    rng.shuffle(allocation)
    arm_of = {pid: arm_list[int(a)] for pid, a in zip(ids, allocation)}
    tones = rng.integers(0, len(SKIN_TONES), size=n_total)
    if skin_tones is not None:
        tones = np.asarray(skin_tones, dtype=int)[tones % len(skin_tones)]
    enrolled = [start + timedelta(days=int(d)) for d in rng.integers(0, 120, size=n_total)]

    jobs: list[_Job] = []
    photos: list[SynthPhoto] = []
    for p_index, pid in enumerate(ids):
        arm = arm_of[pid]
        for r_index, region in enumerate(sorted(arm.regions)):
            scale = scales[regions[region]]
            # a VAS: the truth on eleven points of its line (0, 10, … 100)
            values = scale.values or tuple(
                canonical(scale.minimum + k * (scale.maximum - scale.minimum) / 10) for k in range(11))
            levels = _levels(rng, values, scale.better, len(timepoints), probs)
            worst = values[-1] if scale.better == "lower" else values[0]
            best = values[0] if scale.better == "lower" else values[-1]
            region_views = views.get(region, ("",))
            for t_index, timepoint in enumerate(timepoints):
                camera = visit_cameras[t_index % len(visit_cameras)]
                visit = enrolled[p_index] + timedelta(days=_visit_offset(timepoint, t_index))
                for v_index, view in enumerate(region_views):
                    stem = "_".join(x for x in (pid, timepoint, region, view) if x)
                    taken = datetime(visit.year, visit.month, visit.day, 9 + int(rng.integers(0, 8)),
                                     int(rng.integers(0, 60)), int(rng.integers(0, 60)))
                    jobs.append(_Job(
                        path=root / (stem + camera.extension), kind=_kind(region),
                        severity=float((levels[t_index] - best) / (worst - best)),
                        portrait=region in PORTRAIT_REGIONS, size=(width, height), camera=camera,
                        orientation=1, heic=False, tone=int(tones[p_index]),
                        geometry_seed=(seed, 1, p_index, r_index, v_index),
                        visit_seed=(seed, 2, p_index, r_index, t_index, v_index),
                        taken=taken, description=f"{pid} {timepoint} {region}",
                        look=(warmth, brightness) if t_index else (0.0, 0.0),
                    ))
                    photos.append(SynthPhoto(pid, timepoint, region, view, levels[t_index],
                                             arm.name if arms is not None else "",
                                             Path(stem + camera.extension)))

    # Some photos of the cameras that do so are stored rotated (EXIF orientation) or as HEIC:
    # round(fraction x candidates) of each, at least one when the fraction is above zero.
    def pick(candidates: list[int], fraction: float) -> list[int]:
        if not candidates or fraction <= 0:
            return []
        k = min(len(candidates), max(1, int(np.floor(fraction * len(candidates) + 0.5))))
        return sorted(int(i) for i in rng.choice(candidates, size=k, replace=False))

    rotated = pick([i for i, j in enumerate(jobs) if j.camera.rotates], rotated_fraction)
    for i in rotated:
        orientation = int(rng.choice([6, 8, 3]))
        jobs[i] = replace(jobs[i], orientation=orientation)
        photos[i] = replace(photos[i], orientation=orientation)
    for i in pick([i for i, j in enumerate(jobs) if j.camera.heic and i not in rotated],
                  heic_fraction):
        jobs[i] = replace(jobs[i], heic=True, path=jobs[i].path.with_suffix(".heic"))
        photos[i] = replace(photos[i], path=photos[i].path.with_suffix(".heic"))

    root.mkdir(parents=True, exist_ok=True)
    if workers == 1 or len(jobs) < 8:
        for job in jobs:
            _write_photo(job)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_photo, jobs, chunksize=4))

    ordered = {r: regions[r] for r in _ordered_regions(arm_list, regions)}
    guides = _write_guide(root, ordered, scales, (width, height)) if guide else {}
    study_path = root / "study.toml"
    study_path.write_text(_study_toml(
        study_id, title, timepoints, ordered, raters, repeat_fraction, presentation, blinding_seed,
        normalize or _default_normalize(width, height), guides), encoding="utf-8")
    truth_path = root / "truth.csv"
    with truth_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["participant", "timepoint", "region", "view", "level", "arm"])
        for p in photos:
            writer.writerow([p.participant, p.timepoint, p.region, p.view, p.level, p.arm])
    participants_path = None
    if arms is not None:
        participants_path = root / "participants.csv"
        with participants_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["participant", "arm"])
            for pid in ids:
                writer.writerow([pid, arm_of[pid].name])
    (root / "README.md").write_text(
        "# Synthetic study\n\nPhotos drawn by `assess` (`assess.synth.make_study`) with a known "
        "truth: `truth.csv` holds the true level of every photo. It unblinds the study: never copy "
        "it, or anything but a blinded set's `rater/` folder, to a rater.\n", encoding="utf-8")
    study = load_study(study_path)  # the written file must be a valid study
    del study
    return SynthStudy(root, study_path, truth_path, participants_path, photos,
                      {pid: arm_of[pid].name for pid in ids} if arms is not None else {})


# --------------------------------------------------------------------------- design


def _arms(arms, participants: int, regions: Mapping[str, str]) -> list[Arm]:
    if arms is None:
        if not isinstance(participants, int) or participants < 1:
            raise SynthError(f"participants: give a whole number >= 1, not {participants!r}")
        return [Arm("", participants, tuple(regions))]
    out = []
    items = arms.items() if isinstance(arms, Mapping) else [(a.name, (a.participants, a.regions))
                                                            for a in arms]
    for name, (count, arm_regions) in items:
        arm_regions = tuple(arm_regions)
        unknown = [r for r in arm_regions if r not in regions]
        if unknown:
            raise SynthError(f"arm {name!r}: region(s) {', '.join(unknown)} not in regions "
                             f"({', '.join(regions)})")
        if not isinstance(count, int) or count < 1 or not arm_regions:
            raise SynthError(f"arm {name!r}: give at least one participant and one region")
        out.append(Arm(str(name), count, arm_regions))
    if not out:
        raise SynthError("arms: give at least one arm")
    return out


def _ordered_regions(arm_list: list[Arm], regions: Mapping[str, str]) -> list[str]:
    used = {r for a in arm_list for r in a.regions}
    return [r for r in regions if r in used]


def _levels(rng: np.random.Generator, values: tuple[int, ...], better: str, n_visits: int,
            probs: np.ndarray) -> list[int]:
    """True level per visit: a baseline away from the best level, then improvement by 0–2."""
    order = list(values) if better == "lower" else list(values)[::-1]  # best first
    n = len(order)
    # baseline index among the worse levels (never the best one), weighted to the middle
    idx = np.arange(1, n)
    weights = np.exp(-0.5 * ((idx - (n - 1) / 2 - 0.5) / max(1.0, (n - 1) / 3)) ** 2)
    base = int(rng.choice(idx, p=weights / weights.sum()))
    gain = int(rng.choice(len(probs), p=probs))
    out = []
    for t in range(n_visits):
        step = int(round(gain * t / (n_visits - 1)))
        out.append(order[max(0, base - step)])
    return out


def _visit_offset(timepoint: str, index: int) -> int:
    """Days from baseline, read from names like ``month12``, ``week4``, ``day90``."""
    m = re.search(r"(month|week|day|m|w|d)[-]?(\d+)$", timepoint.lower())
    if m:
        n = int(m.group(2))
        unit = m.group(1)[0]
        return round(n * {"m": 30.44, "w": 7, "d": 1}[unit])
    return 182 * index


def _kind(region: str) -> str:
    name = region.lower()
    if "hand" in name:
        return "hands"
    if "neck" in name or "decollet" in name:
        return "neck"
    return "face"


def _default_normalize(width: int, height: int) -> dict[str, object]:
    # the display copy a little below the baseline camera's size, so that every camera's photos
    # are scaled down for it; the full copy as large as every photo of a region reaches (chosen
    # by randomize), at most 3000
    display = max(256, min(2048, round(0.8 * max(width, height))))
    return {"long_edge": max(display, 3000), "display_long_edge": display, "quality": 90,
            "aspect": "4:3", "fit": "crop"}


def _write_guide(root: Path, regions: Mapping[str, str], scales, size: tuple[int, int]
                 ) -> dict[str, str]:
    """Draw one picture per level of each scale into ``guide/<scale>/<value>.png``; returns region
    -> the folder (relative to ``root``) of its scale's guide."""
    folders: dict[str, str] = {}
    for region, scale_id in regions.items():
        folder = f"guide/{scale_id}"
        if scale_id not in folders.values():
            scale = scales[scale_id]
            worst = scale.values[-1] if scale.better == "lower" else scale.values[0]
            best = scale.values[0] if scale.better == "lower" else scale.values[-1]
            w, h = size
            if region in PORTRAIT_REGIONS:
                w, h = h, w
            (root / folder).mkdir(parents=True, exist_ok=True)
            for value in scale.values:
                severity = (value - best) / (worst - best) if worst != best else 0.0
                pixels = draw_skin(h, w, _kind(region), float(severity), geometry_seed=(9, 9),
                                   visit_seed=(9, 9))
                Image.fromarray(pixels).save(root / folder / f"{value}.png")
        folders[region] = folder
    return folders


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def _study_toml(study_id, title, timepoints, regions, raters, repeat_fraction, presentation,
                blinding_seed, normalize, guides=None) -> str:
    lines = ["# Synthetic study written by assess (assess.synth.make_study).", "",
             "[study]", f"id = {_toml_value(study_id)}", f"title = {_toml_value(title)}",
             f"timepoints = {_toml_value(list(timepoints))}", ""]
    for region, scale in regions.items():
        lines += [f"[regions.{region}]", f"scale = {_toml_value(scale)}"]
        if guides and region in guides:
            lines.append(f"references = {_toml_value(guides[region])}")
        lines.append("")
    lines += ["[blinding]", f"raters = {_toml_value(list(raters))}",
              f"repeat_fraction = {_toml_value(float(repeat_fraction))}",
              f"presentation = {_toml_value(presentation)}"]
    if blinding_seed is not None:
        lines.append(f"seed = {int(blinding_seed)}")
    lines += ["", "[normalize]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in normalize.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class _Job:
    path: Path
    kind: str
    severity: float  # 0 = best level of the scale, 1 = worst
    portrait: bool
    size: tuple[int, int]
    camera: Camera
    orientation: int
    heic: bool
    tone: int
    geometry_seed: tuple[int, ...]
    visit_seed: tuple[int, ...]
    taken: datetime
    description: str
    look: tuple[float, float] = (0.0, 0.0)  # (warmth, brightness) of this visit's camera


def _write_photo(job: _Job) -> None:
    cam = job.camera
    base_long = max(job.size)
    long_edge = int(round(base_long * cam.scale))
    short_edge = int(round(long_edge * cam.aspect[1] / cam.aspect[0]))
    w, h = (short_edge, long_edge) if job.portrait else (long_edge, short_edge)
    # Big photos (benchmarks) are drawn at about 2.5 MP and scaled up, as detailed as needed.
    shrink = max(1.0, (w * h / MAX_DRAWN_PIXELS) ** 0.5)
    dw, dh = max(32, int(round(w / shrink))), max(32, int(round(h / shrink)))
    pixels = draw_skin(dh, dw, job.kind, job.severity, tone=job.tone,
                       geometry_seed=job.geometry_seed, visit_seed=job.visit_seed,
                       warmth=cam.skin_warmth, gains=_look_gains(job.look),
                       sensor_noise=cam.sensor_noise)
    image = Image.fromarray(pixels)
    if (dw, dh) != (w, h):
        image = image.resize((w, h), Image.Resampling.BICUBIC)
    # Stored pixels are rotated so that applying the EXIF orientation restores the upright photo.
    if job.orientation == 6:
        image = image.transpose(Image.Transpose.ROTATE_90)
    elif job.orientation == 8:
        image = image.transpose(Image.Transpose.ROTATE_270)
    elif job.orientation == 3:
        image = image.transpose(Image.Transpose.ROTATE_180)
    exif = _exif(job)
    if job.heic:
        import pillow_heif

        pillow_heif.register_heif_opener()
        image.save(job.path, format="HEIF", quality=cam.quality, exif=exif.tobytes(),
                   enc_params={"preset": "ultrafast"})
        return
    buffer = io.BytesIO()
    options = {"quality": cam.quality, "subsampling": cam.subsampling, "exif": exif}
    if cam.comment:
        options["comment"] = f"{cam.comment} {job.description}"
    image.save(buffer, format="JPEG", **options)
    data = buffer.getvalue()
    if cam.trailer:
        data += b"\x00\x00SEFH" + f"ImageUniqueID={job.description};{cam.serial}".encode() + b"\x00"
    job.path.write_bytes(data)


def _look_gains(look: tuple[float, float]) -> tuple[float, float, float]:
    """Linear-light gains (R, G, B) of a camera ``(warmth, brightness)`` (:func:`make_study`)."""
    warmth, brightness = look
    return ((1 + warmth) * (1 + brightness), 1 + brightness, (1 - warmth) * (1 + brightness))


def _exif(job: _Job) -> Image.Exif:
    cam = job.camera
    exif = Image.Exif()
    stamp = job.taken.strftime("%Y:%m:%d %H:%M:%S")
    exif[0x010F] = cam.make
    exif[0x0110] = cam.model
    exif[0x0131] = cam.software
    exif[0x0132] = stamp
    exif[0x010E] = job.description  # as clinics often type it: participant, visit, region
    exif[0x0112] = job.orientation
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = stamp  # DateTimeOriginal
    sub[0x9004] = stamp  # DateTimeDigitized
    sub[0xA431] = cam.serial  # BodySerialNumber
    sub[0xA433] = cam.make  # LensMake
    gps = exif.get_ifd(0x8825)
    lat, lon = cam.gps
    gps[1] = "N" if lat >= 0 else "S"
    gps[2] = _dms(abs(lat))
    gps[3] = "E" if lon >= 0 else "W"
    gps[4] = _dms(abs(lon))
    gps[29] = job.taken.strftime("%Y:%m:%d")  # GPSDateStamp
    return exif


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600, 2)
    return (float(degrees), float(minutes), seconds)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Noise with features about ``cell`` pixels wide, in -1..1 (bilinear upsampling)."""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    grid = rng.uniform(-1, 1, size=(gh, gw)).astype(np.float32)
    small = Image.fromarray(grid, mode="F")
    return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def draw_skin(h: int, w: int, kind: str, severity: float, *, tone: int = 2,
              geometry_seed: Sequence[int] = (0,), visit_seed: Sequence[int] = (0,),
              warmth: float = 0.0, gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
              sensor_noise: float = 0.0) -> np.ndarray:
    """Draw one photo of skin as an ``(h, w, 3)`` uint8 array.

    ``kind`` is ``face`` (wrinkle arcs), ``neck`` (transverse lines) or ``hands`` (veins and
    tendons); ``severity`` from 0 (best level) to 1 (worst) sets how many lines show, how deep and
    how dark they are. ``geometry_seed`` fixes where the lines are (the same for every visit of a
    participant), ``visit_seed`` the framing, lighting and noise of one visit. ``gains`` scale
    the linear light of red, green and blue over the whole frame, as a camera's white balance and
    exposure do (before the values are rounded to 8 bits; clipped at white). ``sensor_noise``:
    the standard deviation (8-bit levels) of white noise added to every pixel before those gains.

    >>> draw_skin(60, 80, "face", 0.5).shape
    (60, 80, 3)
    """
    geo = np.random.default_rng(list(geometry_seed))
    vis = np.random.default_rng(list(visit_seed))
    # The subject is framed within the largest 4:3 (3:4 upright) rectangle of the frame, so a
    # wider camera shows more backdrop, not a bigger subject: after cropping to the study's canvas
    # every visit looks alike.
    H, W = _core(h, w)
    scale = min(H, W) / 600.0

    # framing: the skin area's centre and size shift a little between visits
    cy = h / 2 + H * vis.uniform(-0.04, 0.04)
    cx = w / 2 + W * vis.uniform(-0.04, 0.04)
    zoom = vis.uniform(0.92, 1.05)

    # Smooth fields (skin outline, shading, lighting, backdrop) are drawn at a quarter of the
    # resolution and scaled up; only the lines and the fine texture are drawn at full size.
    f = 4 if min(h, w) >= 64 else 1
    lh, lw = -(-h // f), -(-w // f)
    ys = (np.arange(lh, dtype=np.float32)[:, None] + 0.5) * f
    xs = (np.arange(lw, dtype=np.float32)[None, :] + 0.5) * f
    if kind == "face":
        ry, rx = 0.46 * H * zoom, 0.40 * W * zoom
        mask = 1.0 - (((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2)
    elif kind == "neck":
        rx = 0.36 * W * zoom
        mask = 1.0 - ((xs - cx) / rx) ** 2 + 0 * ys
    else:  # the back of a hand: a rounded superellipse
        ry, rx = 0.40 * H * zoom, 0.42 * W * zoom
        mask = 1.0 - (np.abs((ys - cy) / ry) ** 3 + np.abs((xs - cx) / rx) ** 3)
    soft_low = np.clip(mask * 8.0, 0.0, 1.0)
    shade = 0.78 + 0.3 * np.sqrt(np.clip(mask, 0, 1))
    light = 1.0 + 0.06 * _smooth_noise(vis, lh, lw, max(2, int(200 * scale) // f))
    mottle = 0.035 * _smooth_noise(geo, lh, lw, max(2, int(24 * scale) // f))
    skin_tone = SKIN_TONES[tone % len(SKIN_TONES)]
    warm = 1.0 + np.array([0.6, 0.1, -0.4], dtype=np.float32) * warmth
    back_lum = (0.9 + 0.1 * light) * (1.0 - 0.15 * ys / h)
    skin_lum = shade * light * (1.0 + mottle)
    low = np.empty((lh, lw, 3), dtype=np.float32)
    for c in range(3):
        low[..., c] = (soft_low * skin_lum * (skin_tone[c] * warm[c])
                       + (1 - soft_low) * back_lum * BACKDROP[c])
    base = _upscale_u8(low, h, w, "RGB").astype(np.float32)  # 0..255
    soft = _upscale_u8(soft_low, h, w, "L").astype(np.float32) * np.float32(1 / 255)

    # fine texture (pores, sensor noise): white noise at full size
    relief = vis.random((h, w), dtype=np.float32)
    relief -= 0.5
    relief *= vis.uniform(0.02, 0.045)  # relief: negative = shadow, positive = highlight; ISO noise
    if kind == "hands":
        tint = np.zeros((h, w), dtype=np.float32)  # bluish (veins)
        _draw_hands(relief, tint, geo, severity, scale, cy, cx, H, W)
    else:
        tint = None
        _draw_wrinkles(relief, geo, severity, scale, kind, cy, cx, H, W)
    # fine crepey texture grows with severity
    relief += (0.02 + 0.02 * severity) * _smooth_noise(geo, h, w, max(2, int(5 * scale)))
    relief *= soft
    relief += 1.0
    base *= relief[..., None]
    if tint is not None:
        tint *= soft
        base += tint[..., None] * np.array([-30, -10, 25], dtype=np.float32)
    if sensor_noise > 0:
        base += vis.normal(0.0, sensor_noise, base.shape).astype(np.float32)
    if tuple(gains) != (1.0, 1.0, 1.0):
        from .pixels.visible import linear_to_srgb

        v = np.clip(base * np.float32(1 / 255), 0.0, 1.0)
        lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
        base = (linear_to_srgb(lin * np.asarray(gains, np.float32)) * 255.0).astype(np.float32)
    base += 0.5
    np.clip(base, 0.0, 255.0, out=base)
    return base.astype(np.uint8)


def _upscale_u8(low: np.ndarray, h: int, w: int, mode: str) -> np.ndarray:
    """Scale a smooth 0..1 field up to ``(h, w)`` through an 8-bit image (fast bilinear)."""
    image = Image.fromarray((np.clip(low, 0, 1) * 255 + 0.5).astype(np.uint8), mode=mode)
    if image.size != (w, h):
        image = image.resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(image)


def _stroke(relief: np.ndarray, centre: np.ndarray, along: slice, width: float, depth: float,
            highlight: float = 0.45) -> None:
    """Add one line to ``relief`` (rows = across the line, columns = along it).

    ``centre[j]`` is the row of the line's centre at column ``along.start + j``; the profile is a
    Gaussian trough with a highlight on one side, tapered at both ends.
    """
    n = len(centre)
    if n < 2:
        return
    lo = int(max(0, np.floor(centre.min() - 4 * width - 2)))
    hi = int(min(relief.shape[0], np.ceil(centre.max() + 4 * width + 3)))
    if hi <= lo:
        return
    rows = np.arange(lo, hi, dtype=np.float32)[:, None]
    d = (rows - centre[None, :].astype(np.float32)) / np.float32(width)
    taper = np.clip(np.sin(np.linspace(0, np.pi, n, dtype=np.float32)), 0, 1) ** 0.6
    profile = -np.exp(-d * d) + highlight * np.exp(-(d - 1.6) ** 2)
    relief[lo:hi, along] += depth * taper[None, :] * profile


def _core(h: int, w: int) -> tuple[float, float]:
    """Height and width of the largest 4:3 rectangle (3:4 when upright) inside an h x w frame."""
    if h > w:
        cw = min(w, h * 3 / 4)
        return cw * 4 / 3, cw
    ch = min(h, w * 3 / 4)
    return ch, ch * 4 / 3


def _draw_wrinkles(relief, geo, severity, scale, kind, cy, cx, h, w) -> None:
    """Wrinkle lines; ``h``, ``w`` are the subject's frame (see :func:`_core`)."""
    full_w = relief.shape[1]
    n_max = 9 if kind == "face" else 6
    count = int(round(1 + (n_max - 1) * severity)) if severity > 0.05 else 0
    depth = 0.06 + 0.30 * severity
    width = max(0.8, (1.2 + 3.5 * severity) * scale)
    # every participant has the same line positions at every visit; fewer and fainter lines show
    # at a better level (the first lines are the most prominent)
    spacing = (0.55 if kind == "face" else 0.7) * h / (n_max + 1)
    for i in range(n_max):
        offset = geo.uniform(-0.2, 0.2) * spacing
        start = geo.uniform(0.05, 0.25) if kind == "face" else geo.uniform(0.0, 0.04)
        stop = geo.uniform(0.75, 0.95) if kind == "face" else geo.uniform(0.96, 1.0)
        amp = geo.uniform(0.01, 0.04) * h
        freq = geo.uniform(0.5, 1.5)
        phase = geo.uniform(0, 2 * np.pi)
        sag = geo.uniform(-0.03, 0.05) * h
        if i >= count:
            continue
        row = cy - 0.35 * h + (i + 1) * spacing + offset
        x0 = max(0, int(cx - w / 2 + w * start))
        x1 = min(full_w, int(cx - w / 2 + w * stop))
        if x1 - x0 < 2:
            continue
        t = np.linspace(-1, 1, max(2, x1 - x0), dtype=np.float32)
        centre = row + amp * np.sin(freq * np.pi * t + phase) + sag * (1 - t * t)
        fade = 1.0 - 0.5 * i / n_max
        _stroke(relief, centre, slice(x0, x0 + len(centre)), width * fade ** 0.5, depth * fade)


def _draw_hands(relief, tint, geo, severity, scale, cy, cx, h, w) -> None:
    """Tendons and veins; ``h``, ``w`` are the subject's frame (see :func:`_core`)."""
    full_h = relief.shape[0]
    rel_t, tint_t = relief.T, tint.T  # veins and tendons run from the wrist to the knuckles
    # tendons: straight ridges fanning out to the knuckles
    tendon_depth = 0.04 + 0.22 * severity
    for i in range(4):
        x = cx + (i - 1.5) * 0.16 * w + geo.uniform(-0.02, 0.02) * w
        y0, y1 = int(cy - 0.33 * h), int(cy + 0.38 * h)
        y0, y1 = max(0, y0), min(full_h, y1)
        t = np.linspace(0, 1, max(2, y1 - y0), dtype=np.float32)
        centre = x + (i - 1.5) * 0.05 * w * (1 - t)
        _stroke(rel_t, centre, slice(y0, y0 + len(centre)), max(1.0, (3 + 3 * severity) * scale),
                -tendon_depth, highlight=0.8)
    # veins: meandering lines, more, wider and bluer with severity
    count = int(round(1 + 6 * severity)) if severity > 0.05 else 0
    for i in range(7):
        x = cx + geo.uniform(-0.32, 0.32) * w
        amp = geo.uniform(0.02, 0.06) * w
        freq = geo.uniform(0.8, 2.0)
        phase = geo.uniform(0, 2 * np.pi)
        y0 = max(0, int(cy + geo.uniform(-0.35, -0.1) * h))
        y1 = min(full_h, int(cy + geo.uniform(0.15, 0.38) * h))
        if i >= count:
            continue
        t = np.linspace(0, 1, max(2, y1 - y0), dtype=np.float32)
        centre = x + amp * np.sin(freq * np.pi * t + phase)
        width = max(1.0, (2.0 + 4.0 * severity) * scale)
        _stroke(rel_t, centre, slice(y0, y0 + len(centre)), width, -(0.03 + 0.12 * severity),
                highlight=-0.6)
        _stroke(tint_t, centre, slice(y0, y0 + len(centre)), width * 1.3, -(0.4 + 0.8 * severity),
                highlight=0.0)
