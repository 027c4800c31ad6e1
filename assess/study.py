"""Study and scale definitions: load and validate ``study.toml``.

A study names its timepoints (the first is baseline), its regions with the scale each is rated on,
its raters and how the blinded set is built. Scales are data: the package ships one TOML file per
validated scale in ``assess/scales/`` and a study may define its own under ``[scales.<id>]``.

>>> study = parse_study(TEMPLATE)
>>> study.id, study.timepoints, study.baseline
('NCT06217627', ('baseline', 'month12'), 'baseline')
>>> study.scale_for("face").name
'Wrinkle Severity Rating Scale'
>>> [level.value for level in study.scale_for("hands").levels]
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import AssessError

__all__ = [
    "Level",
    "Scale",
    "Region",
    "Normalize",
    "Blinding",
    "Rating",
    "Study",
    "StudyError",
    "shipped_scales",
    "load_study",
    "parse_study",
    "TEMPLATE",
]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
PRESENTATIONS = ("single", "pairs")


class StudyError(AssessError):
    """A study file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Level:
    """One level of a scale: its value, short label and descriptor."""

    value: int
    label: str
    description: str = ""


@dataclass(frozen=True)
class Scale:
    """An ordinal (or categorical) rating scale.

    ``better`` is ``"lower"`` or ``"higher"``: the direction in which a participant improves.
    """

    id: str
    name: str
    levels: tuple[Level, ...]
    better: str = "lower"
    kind: str = "ordinal"
    source: str = ""

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(level.value for level in self.levels)

    def level(self, value: int) -> Level:
        for level in self.levels:
            if level.value == value:
                return level
        raise KeyError(f"{value!r} is not a level of scale {self.id!r} (levels: {self.values})")

    def improvement(self, before: float, after: float) -> float:
        """Change in the direction of improvement: positive means better.

        >>> shipped_scales()["wsrs"].improvement(4, 2)
        2
        """
        return before - after if self.better == "lower" else after - before

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "better": self.better,
            "source": self.source,
            "levels": [
                {"value": lv.value, "label": lv.label, "description": lv.description}
                for lv in self.levels
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "scale") -> "Scale":
        return _parse_scale(data.get("id", ""), data, where)


@dataclass(frozen=True)
class Region:
    name: str
    scale: str
    references: Path | None = None  # folder with one photo per level, named <value>.<ext>


@dataclass(frozen=True)
class Normalize:
    # 2000 px: a 12 MP phone photo (4000-4032 px) and a 24 MP DSLR photo (6000 px) then both
    # decode at half size in the JPEG decoder (DCT scaling), which makes de-identification ~1.7x
    # faster than at 3000 px and halves memory (measured by bench/deid.py)
    long_edge: int = 2000  # full copy, for zoom
    display_long_edge: int = 1600  # display copy, for paging
    quality: int = 90
    aspect: tuple[int, int] = (4, 3)  # every photo of a region is fitted to one canvas
    fit: str = "pad"  # "pad" keeps every pixel; "crop" fills the canvas


@dataclass(frozen=True)
class Blinding:
    raters: tuple[str, ...] = ("rater1",)
    repeat_fraction: float = 0.1
    presentation: str = "single"
    seed: int | None = None


@dataclass(frozen=True)
class Rating:
    """How the rating app takes answers.

    ``min_view_ms``: a photo must have finished loading and been on screen this long before an
    answer for it is taken; a quicker press is refused with a hint.
    """

    min_view_ms: int = 400


@dataclass(frozen=True)
class Study:
    id: str
    title: str
    timepoints: tuple[str, ...]
    regions: dict[str, Region]
    scales: dict[str, Scale]
    blinding: Blinding = field(default_factory=Blinding)
    normalize: Normalize = field(default_factory=Normalize)
    rating: Rating = field(default_factory=Rating)
    path: Path | None = None
    text: str = field(default="", repr=False, compare=False)  # the study file as written

    @property
    def baseline(self) -> str:
        return self.timepoints[0]

    @property
    def followups(self) -> tuple[str, ...]:
        return self.timepoints[1:]

    def scale_for(self, region: str) -> Scale:
        return self.scales[self.regions[region].scale]


def shipped_scales() -> dict[str, Scale]:
    """The validated scales shipped with the package, by id.

    >>> sorted(shipped_scales())
    ['allergan-neck', 'gais', 'glogau', 'merz-hand', 'wsrs']
    """
    out = {}
    for entry in sorted(resources.files("assess.scales").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            scale = _parse_scale(data.get("id", ""), data, f"assess/scales/{entry.name}")
            out[scale.id] = scale
    return out


def _parse_scale(scale_id: str, data: dict[str, Any], where: str) -> Scale:
    if not isinstance(data, dict):
        raise StudyError(f"{where}: must be a table")
    if not scale_id or not NAME_RE.match(str(scale_id)):
        raise StudyError(f"{where}: scale id {scale_id!r} must be letters, digits and dashes")
    better = data.get("better", "lower")
    if better not in ("lower", "higher"):
        raise StudyError(f"{where}.better: must be \"lower\" or \"higher\", not {better!r}")
    kind = data.get("kind", "ordinal")
    if kind not in ("ordinal", "categorical"):
        raise StudyError(f"{where}.kind: must be \"ordinal\" or \"categorical\", not {kind!r}")
    raw_levels = data.get("levels")
    if not isinstance(raw_levels, list) or len(raw_levels) < 2:
        raise StudyError(f"{where}.levels: give at least two levels, e.g. "
                         "levels = [{value = 1, label = \"None\"}, {value = 2, label = \"Mild\"}]")
    levels = []
    for i, lv in enumerate(raw_levels):
        if not isinstance(lv, dict):
            raise StudyError(f"{where}.levels[{i}]: must be a table with value and label")
        value = lv.get("value")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 9:
            raise StudyError(f"{where}.levels[{i}].value: must be a whole number 0 to 9, not {value!r}")
        label = lv.get("label")
        if not isinstance(label, str) or not label.strip():
            raise StudyError(f"{where}.levels[{i}].label: must be a non-empty text")
        levels.append(Level(value, label.strip(), str(lv.get("description", "")).strip()))
    values = [lv.value for lv in levels]
    if len(set(values)) != len(values):
        raise StudyError(f"{where}.levels: values must be unique, got {values}")
    if values != sorted(values):
        raise StudyError(f"{where}.levels: list the levels in increasing order, got {values}")
    return Scale(
        id=str(scale_id),
        name=str(data.get("name", scale_id)),
        levels=tuple(levels),
        better=better,
        kind=kind,
        source=str(data.get("source", "")),
    )


def load_study(path: str | Path) -> Study:
    """Read and validate a ``study.toml``; errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError(f"{path}: no such study file; create one with `assess init DIR`") from None
    except OSError as exc:
        raise StudyError(f"{path}: cannot read the study file ({exc.strerror})") from None
    return parse_study(text, path)


def parse_study(text: str, path: Path | None = None) -> Study:
    where = str(path) if path else "study.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{where}: not valid TOML ({exc})") from None

    def fail(field_name: str, message: str) -> StudyError:
        return StudyError(f"{where}: {field_name}: {message}")

    known = {"study", "regions", "blinding", "normalize", "rating", "scales"}
    for key in data:
        if key not in known:
            raise fail(key, f"unknown section; expected one of {', '.join(sorted(known))}")

    st = data.get("study")
    if not isinstance(st, dict):
        raise fail("[study]", "missing; give at least id and timepoints")
    study_id = st.get("id")
    if not isinstance(study_id, str) or not study_id.strip():
        raise fail("study.id", "missing or empty; e.g. id = \"NCT06217627\"")
    timepoints = st.get("timepoints")
    if (not isinstance(timepoints, list) or len(timepoints) < 2
            or not all(isinstance(t, str) and NAME_RE.match(t) for t in timepoints)):
        raise fail("study.timepoints", "give two or more names in order, the first is baseline, "
                   "e.g. [\"baseline\", \"month12\"] (letters, digits and dashes)")
    if len(set(t.lower() for t in timepoints)) != len(timepoints):
        raise fail("study.timepoints", f"names must be unique, got {timepoints}")

    scales = shipped_scales()
    own = data.get("scales", {})
    if not isinstance(own, dict):
        raise fail("[scales]", "must be tables, e.g. [scales.my-scale]")
    for sid, sdata in own.items():
        scales[sid] = _parse_scale(sid, sdata, f"{where}: scales.{sid}")

    regions_raw = data.get("regions")
    if not isinstance(regions_raw, dict) or not regions_raw:
        raise fail("[regions]", "missing; add one table per region, e.g. [regions.face] scale = \"wsrs\"")
    regions = {}
    for name, rdata in regions_raw.items():
        if not NAME_RE.match(name) or "_" in name:
            raise fail(f"regions.{name}", "region names are letters, digits and dashes")
        if not isinstance(rdata, dict) or "scale" not in rdata:
            raise fail(f"regions.{name}.scale", "missing; e.g. scale = \"wsrs\"")
        scale_id = rdata["scale"]
        if scale_id not in scales:
            raise fail(f"regions.{name}.scale", f"unknown scale {scale_id!r}; shipped scales are "
                       f"{', '.join(sorted(shipped_scales()))}, or define [scales.{scale_id}]")
        refs = rdata.get("references")
        ref_path = None
        if refs is not None:
            ref_path = Path(refs)
            if path is not None and not ref_path.is_absolute():
                ref_path = path.parent / ref_path
        regions[name] = Region(name=name, scale=scale_id, references=ref_path)

    bl = data.get("blinding", {})
    if not isinstance(bl, dict):
        raise fail("[blinding]", "must be a table")
    raters = bl.get("raters", ["rater1"])
    if (not isinstance(raters, list) or not raters
            or not all(isinstance(r, str) and NAME_RE.match(r) for r in raters)):
        raise fail("blinding.raters", "give one or more rater ids, e.g. [\"derm1\"] "
                   "(letters, digits and dashes)")
    if len(set(raters)) != len(raters):
        raise fail("blinding.raters", f"rater ids must be unique, got {raters}")
    rf = bl.get("repeat_fraction", 0.1)
    if isinstance(rf, bool) or not isinstance(rf, (int, float)) or not 0 <= rf <= 1:
        raise fail("blinding.repeat_fraction", f"must be a number from 0 to 1, not {rf!r}")
    presentation = bl.get("presentation", "single")
    if presentation not in PRESENTATIONS:
        raise fail("blinding.presentation", f"must be \"single\" or \"pairs\", not {presentation!r}")
    seed = bl.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise fail("blinding.seed", f"must be a whole number >= 0, not {seed!r}")
    blinding = Blinding(tuple(raters), float(rf), presentation, seed)

    nm = data.get("normalize", {})
    if not isinstance(nm, dict):
        raise fail("[normalize]", "must be a table")
    defaults = Normalize()
    long_edge = nm.get("long_edge", defaults.long_edge)
    display = nm.get("display_long_edge", defaults.display_long_edge)
    quality = nm.get("quality", defaults.quality)
    for fname, value, lo, hi in (("long_edge", long_edge, 256, 12000),
                                 ("display_long_edge", display, 256, 8000),
                                 ("quality", quality, 50, 100)):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise fail(f"normalize.{fname}", f"must be a whole number from {lo} to {hi}, not {value!r}")
    if display > long_edge:
        raise fail("normalize.display_long_edge", "must not exceed normalize.long_edge")
    aspect_raw = nm.get("aspect", "4:3")
    m = re.match(r"^(\d+):(\d+)$", str(aspect_raw))
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise fail("normalize.aspect", f"must look like \"4:3\", not {aspect_raw!r}")
    fit = nm.get("fit", defaults.fit)
    if fit not in ("pad", "crop"):
        raise fail("normalize.fit", f"must be \"pad\" or \"crop\", not {fit!r}")
    normalize = Normalize(long_edge, display, quality, (int(m.group(1)), int(m.group(2))), fit)

    rating = _parse_rating(data.get("rating", {}), fail)

    used = {r.scale for r in regions.values()}
    return Study(
        id=study_id.strip(),
        title=str(st.get("title", study_id)).strip(),
        timepoints=tuple(timepoints),
        regions=regions,
        scales={k: v for k, v in scales.items() if k in used},
        blinding=blinding,
        normalize=normalize,
        rating=rating,
        path=path,
        text=text,
    )


MIN_VIEW_MS_RANGE = (0, 10_000)


def _parse_rating(raw: Any, fail) -> Rating:
    """The ``[rating]`` section: ``min_view_ms`` (whole milliseconds, 0 to 10 000)."""
    if not isinstance(raw, dict):
        raise fail("[rating]", "must be a table")
    for key in raw:
        if key != "min_view_ms":
            raise fail(f"rating.{key}", "unknown key; the only key is min_view_ms")
    value = raw.get("min_view_ms", Rating.min_view_ms)
    lo, hi = MIN_VIEW_MS_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise fail("rating.min_view_ms", f"must be a whole number of milliseconds from {lo} to "
                   f"{hi}, not {value!r}")
    return Rating(value)


TEMPLATE = '''\
# study.toml: the design that `assess randomize` turns into a blinded set.

[study]
id = "NCT06217627"                      # trial registry id or your own study id
title = "Skin rejuvenation with umbilical cord secretome"
timepoints = ["baseline", "month12"]    # in order; the first is baseline

# One table per photographed region and the scale it is rated on. Shipped scales:
#   wsrs           Wrinkle Severity Rating Scale, 1-5
#   merz-hand      Merz hand grading scale (hand volume), 0-4
#   gais           Global Aesthetic Improvement Scale, 1-5
#   allergan-neck  Allergan Transverse Neck Lines Scale, 0-4
#   glogau         Glogau photoaging classification, I-IV (categorical)
# Optional: references = "refs/face" (a folder with one photo per level named 1.jpg, 2.jpg, ...)
[regions.face]
scale = "wsrs"

[regions.neck]
scale = "wsrs"

[regions.hands]
scale = "merz-hand"

[blinding]
raters = ["derm1"]          # one worklist and one access code each
repeat_fraction = 0.1       # 0 to 1; share of photos shown again under a new code (1 repeats every photo)
presentation = "single"     # "single": one photo at a time; "pairs": baseline and follow-up side by side
# seed = 20261125           # fix it to rebuild the same set; without it a random seed is drawn and kept in the key

[normalize]                 # every photo of a region gets the same size, quality and encoding
long_edge = 2000            # full copy, for zoom (12 MP phones and 24 MP DSLRs decode fastest up to 2000)
display_long_edge = 1600    # display copy, for fast paging
quality = 90                # JPEG quality
aspect = "4:3"              # canvas of every photo (turned to portrait where a region's photos mostly are)
fit = "pad"                 # "pad" keeps every pixel on a neutral border; "crop" fills the canvas

[rating]                    # how the rating app takes answers
min_view_ms = 400           # a photo must be loaded and on screen this long before it can be rated

# A study's own scale:
# [scales.my-scale]
# name = "My scale"
# better = "lower"
# levels = [{value = 1, label = "None"}, {value = 2, label = "Mild"}, {value = 3, label = "Marked"}]
'''
