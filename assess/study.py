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

import difflib
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import levels as levels_mod
from . import panel
from .errors import AssessError

__all__ = [
    "Level",
    "Scale",
    "Region",
    "Normalize",
    "Blinding",
    "Rating",
    "Photos",
    "Study",
    "StudyError",
    "shipped_scales",
    "load_study",
    "parse_study",
    "TEMPLATE",
]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
"""An id (timepoint, region, rater, scale, set): letters, digits and dashes, matched whole (``\\Z``:
a trailing newline does not pass, as it would with ``$``). Use with :data:`MAX_NAME`."""
MAX_NAME = 64
"""Longest id accepted (timepoints, regions, raters, scales, study and set ids)."""
PRESENTATIONS = ("single", "pairs")
NORMALIZE_TO = ("subject", "backdrop")
"""What ``[pixels] normalize`` matches to the region's reference (:class:`Pixels`)."""
SCALE_KINDS = ("ordinal", "categorical", "vas")

KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "study": ("id", "title", "timepoints"),
    "regions.*": ("scale", "references", "full_long_edge"),
    "blinding": ("raters", "repeat_fraction", "presentation", "seed", "sites"),
    "normalize": ("long_edge", "display_long_edge", "quality", "aspect", "fit"),
    "rating": ("min_view_ms", "session_hours"),
    "photos": ("frames", "distinct"),
    "pixels": ("text", "allow_text", "normalize", "normalize_to"),
    "reference": ("photos",),
    "scales.*": ("id", "name", "source", "kind", "better", "levels", "min", "max", "step",
                 "anchors", "test"),
    "scales.*.levels": ("value", "label", "description"),
    **panel.KEYS,
}
"""The keys each section of a study file may hold (``*``: any region or scale id). A key not listed
is refused with the nearest valid one; a new setting is added here and read where its section is."""
SECTIONS = tuple(dict.fromkeys(k.split(".")[0] for k in KNOWN_KEYS))


class StudyError(AssessError):
    """A study file is invalid; the message names the file and the field."""


def is_name(value: object) -> bool:
    """Whether ``value`` is a valid id: letters, digits and dashes, whole, at most :data:`MAX_NAME`.

    >>> is_name("derm1"), is_name("derm1\\n"), is_name("x" * 65), is_name("-a")
    (True, False, False, False)
    """
    return isinstance(value, str) and len(value) <= MAX_NAME and NAME_RE.match(value) is not None


def _nearest(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    near = f"did you mean {close[0]!r}? " if close else ""
    return f"{near}valid keys: {', '.join(known)}"


def check_keys(table: dict[str, Any], section: str, where: str) -> None:
    """Refuse a key of ``table`` that :data:`KNOWN_KEYS` does not list for ``section``.

    ``section`` is a key of :data:`KNOWN_KEYS` (``"blinding"``, ``"regions.*"``, …); ``where`` is the
    field path printed (``"study.toml: blinding"``).

    >>> check_keys({"rater": ["derm1"]}, "blinding", "study.toml: blinding")
    Traceback (most recent call last):
    ...
    assess.study.StudyError: study.toml: blinding.rater: unknown key; did you mean 'raters'? valid keys: raters, repeat_fraction, presentation, seed, sites
    """
    known = KNOWN_KEYS[section]
    for key in table:
        if key not in known:
            raise StudyError(f"{where}.{key}: unknown key; {_nearest(key, known)}")


def _check_text(value: Any, where: str, field_path: str = "") -> None:
    """Refuse control characters (and lone surrogates) in any key or text of a study file, at any
    depth; newlines and tabs are allowed in free text only (``title``, ``name``, ``description``,
    ``source``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{field_path}.{key}" if field_path else key
            _check_chars(key, f"{where}: {inner!r} (a name)", allow="")
            _check_text(item, where, inner)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_text(item, where, f"{field_path}[{i}]")
    elif isinstance(value, str):
        free = field_path.rsplit(".", 1)[-1] in ("title", "name", "description", "source")
        _check_chars(value, f"{where}: {field_path}", allow="\n\t" if free else "")


def _check_chars(text: str, where: str, allow: str) -> None:
    for ch in text:
        if ch in allow:
            continue
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            raise StudyError(f"{where}: holds the control character U+{ord(ch):04X}; retype the text "
                             "without it")


def _fail(where: str, field_name: str, message: str) -> StudyError:
    return StudyError(f"{where}: {field_name}: {message}")


def _case_clash(names: Any, what: str, where: str) -> None:
    """Refuse ids that differ only in case (``FACE`` beside ``face``)."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(str(name).lower(), str(name))
        if other != name:
            raise StudyError(f"{where}: {what} {other!r} and {name!r} differ only in case; "
                             "give them different names (or keep one)")


@dataclass(frozen=True)
class Level:
    """One level of a scale: its value (a whole number, or a half step such as 1.5), short label
    and descriptor."""

    value: int | float
    label: str
    description: str = ""


@dataclass(frozen=True)
class Scale:
    """A rating scale: ordinal (or categorical) levels, or a continuous visual analogue scale.

    ``better`` is ``"lower"`` or ``"higher"``: the direction in which a participant improves.
    ``kind`` is ``"ordinal"``, ``"categorical"`` or ``"vas"``; ``step`` is the distance between
    neighbouring values (1, or 0.5 for declared half steps); a VAS has no levels but a range
    (``minimum`` to ``maximum``, 0 to 100 by default), two ``anchors`` naming its ends and the
    ``test`` its change is analysed with (``"paired-t"``, or ``"wilcoxon"``; see
    :data:`assess.levels.VAS_TESTS`).
    """

    id: str
    name: str
    levels: tuple[Level, ...]
    better: str = "lower"
    kind: str = "ordinal"
    source: str = ""
    step: int | float = 1
    minimum: int | float | None = None
    maximum: int | float | None = None
    anchors: tuple[str, ...] = ()
    test: str = ""

    @property
    def values(self) -> tuple[int | float, ...]:
        return tuple(level.value for level in self.levels)

    @property
    def continuous(self) -> bool:
        """Whether the scale is a visual analogue scale (a score anywhere on its range)."""
        return self.kind == "vas"

    @property
    def entry(self) -> str:
        """How a rater enters a value: ``"digit"`` (one key rates at once: every level is a single
        digit), ``"typed"`` (digits, maybe a ``.``, then Enter) or ``"slider"`` (a VAS)."""
        return levels_mod.entry_of(self.kind, self.values)

    @property
    def low(self) -> int | float:
        return self.values[0] if self.levels else self.minimum

    @property
    def high(self) -> int | float:
        return self.values[-1] if self.levels else self.maximum

    def accepts(self, value: object) -> bool:
        """Whether ``value`` can be saved on this scale: a level, or a VAS value on its step."""
        return levels_mod.accepts(self, value)

    def level(self, value: int | float) -> Level:
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
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "better": self.better,
            "source": self.source,
        }
        if self.continuous:
            out.update(min=self.minimum, max=self.maximum, step=self.step, anchors=list(self.anchors),
                       test=self.test)
            return out
        if self.step != 1:
            out["step"] = self.step
        if self.minimum is not None:
            out.update(min=self.minimum, max=self.maximum)
        out["levels"] = [{"value": lv.value, "label": lv.label, "description": lv.description}
                         for lv in self.levels]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "scale") -> "Scale":
        return _parse_scale(data.get("id", ""), data, where)


@dataclass(frozen=True)
class Region:
    name: str
    scale: str
    references: Path | None = None  # folder with one photo per level, named <value>.<ext>
    #: Long edge of the region's full copies; ``None``: the largest that every photo of the region
    #: reaches without being enlarged, at most ``normalize.long_edge`` (chosen by ``randomize``).
    full_long_edge: int | None = None


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
    #: (rater, site) for the raters whose site is given: ``assess status`` groups raters by site.
    sites: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Rating:
    """How the rating app takes answers.

    ``min_view_ms``: a photo must have finished loading and been on screen this long before an
    answer for it is taken; a quicker press is refused with a hint. ``session_hours``: how long a
    sign-in holds across reloads and server restarts (more than 0, at most a week).
    """

    min_view_ms: int = 400
    session_hours: float = 12.0


def _file_name(name: object) -> str:
    """A file of the images folder as the study file names it: with forward slashes."""
    return str(name).replace("\\", "/")


@dataclass(frozen=True)
class Photos:
    """``[photos]``: settings for single files of the images folder, named as in it.

    ``frames`` maps a multi-frame file (multi-page TIFF, animated PNG) to the frame to use, counted
    from 1; ``distinct`` lists pairs of files confirmed as different photos although they look
    alike (the near-duplicate check lets them pass).
    """

    frames: dict[str, int] = field(default_factory=dict)
    distinct: tuple[tuple[str, str], ...] = ()

    def frame_of(self, name: str) -> int | None:
        """The frame (from 1) chosen for file ``name`` (its path in the images folder), if any."""
        return self.frames.get(_file_name(name))

    def is_distinct(self, a: str, b: str) -> bool:
        """Whether files ``a`` and ``b`` are confirmed as different photos."""
        a, b = _file_name(a), _file_name(b)
        return (a, b) in self.distinct or (b, a) in self.distinct


TEXT_MODES = ("refuse", "mask", "off")


@dataclass(frozen=True)
class Pixels:
    """``[pixels]``: what randomize does about what the pixels themselves give away.

    ``text``: text found in a photo (a date imprint, a label card, a ruler) makes randomize
    ``"refuse"`` (the default, naming each photo and where), be ``"mask"``-ed in the blinded copies
    (what was found is recorded on the coordinator's side), or is not searched for (``"off"``).
    ``allow_text`` maps a file of the images folder (named as in it) to the reason its text is
    harmless: that photo passes as it is, and the reason is recorded. ``normalize``: match each
    photo's white balance and exposure to its region's reference and paint its backdrop in the
    region's backdrop colour where the subject mask is reliable. ``normalize_to``: what the gains
    of a photo with a painted backdrop match, ``"backdrop"`` (the default: the camera, with a trim
    towards the skin below what a rater could see; the skin's own colour, and any change of it
    between visits, kept) or ``"subject"`` (the skin's mean colour: every photo's skin is shown at
    the region's typical colour, for scales that judge shape alone).
    """

    text: str = "refuse"
    allow_text: dict[str, str] = field(default_factory=dict)
    normalize: bool = False
    normalize_to: str = "backdrop"

    def text_allowed(self, name: str) -> str | None:
        """The recorded reason why file ``name``'s text may pass, if one was given."""
        return self.allow_text.get(_file_name(name))


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
    photos: Photos = field(default_factory=Photos)
    pixels: Pixels = field(default_factory=Pixels)
    panel: panel.Rules = field(default_factory=panel.Rules)
    #: ``[reference] photos``: the CSV of reference photos (training and calibration), resolved
    #: against the study folder; read by :func:`assess.reference.read_reference`.
    reference: Path | None = None
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
    ['allergan-neck', 'gais', 'glogau', 'merz-hand', 'nrs-wrinkles', 'vas-wrinkles', 'wsrs']
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
    if not is_name(scale_id):
        raise StudyError(f"{where}: scale id {scale_id!r} must be letters, digits and dashes "
                         f"(at most {MAX_NAME})")
    check_keys(data, "scales.*", where)
    if "id" in data and data["id"] != scale_id:
        raise StudyError(f"{where}.id: {data['id']!r} differs from the scale's table name "
                         f"{scale_id!r}; leave id out")
    for key in ("name", "source"):
        if key in data and not isinstance(data[key], str):
            raise StudyError(f"{where}.{key}: must be a text in quotes, not {data[key]!r}")
    better = data.get("better", "lower")
    if better not in ("lower", "higher"):
        raise StudyError(f"{where}.better: must be \"lower\" or \"higher\", not {better!r}")
    kind = data.get("kind", "ordinal")
    if kind not in SCALE_KINDS:
        raise StudyError(f"{where}.kind: must be \"ordinal\", \"categorical\" or \"vas\" (a visual "
                         f"analogue scale), not {kind!r}")
    step, low, high, levels, anchors = levels_mod.parse_range(data, kind, where, Level, StudyError,
                                                              check_keys)
    return Scale(
        id=str(scale_id),
        name=str(data.get("name", scale_id)),
        levels=tuple(levels),
        better=better,
        kind=kind,
        source=str(data.get("source", "")),
        step=step,
        minimum=low,
        maximum=high,
        anchors=anchors,
        test=levels_mod.parse_test(data, kind, where, StudyError),
    )


def load_study(path: str | Path) -> Study:
    """Read and validate a ``study.toml``; errors name the file and the field.

    The file must be UTF-8 (a byte-order mark is accepted and dropped).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StudyError(f"{path}: no such study file; create one with `assess init DIR`") from None
    except IsADirectoryError:
        raise StudyError(f"{path}: a folder, not a study file; give the path of study.toml") from None
    except OSError as exc:
        raise StudyError(f"{path}: cannot read the study file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise StudyError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02X}); save "
                         "the file as UTF-8 in your editor") from None
    return parse_study(text, path)


def parse_study(text: str, path: Path | None = None) -> Study:
    """Parse and validate the text of a study file; ``path`` (for messages and ``references``).

    Raises
    ------
    StudyError
        naming the file and the field: bad TOML, an unknown section or key (with the nearest valid
        one), a wrong type or value, a control character, ids that are not plain names or differ
        only in case, a redefined shipped scale.
    """
    where = str(path) if path else "study.toml"
    if not isinstance(text, str):
        raise StudyError(f"{where}: the study file must be text")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{where}: not valid TOML ({exc})") from None

    for key in data:
        if key not in SECTIONS:
            close = difflib.get_close_matches(key, SECTIONS, n=1, cutoff=0.6)
            near = f"did you mean [{close[0]}]? " if close else ""
            raise _fail(where, f"[{key}]",
                        f"unknown section; {near}expected one of {', '.join(SECTIONS)}")
    _check_text(data, where)
    for name in SECTIONS:
        if name in data and not isinstance(data[name], dict):
            raise _fail(where, f"[{name}]", f"must be a table, e.g. [{name}] on a line of its own")

    study_id, title, timepoints = _parse_head(data.get("study"), where)
    scales = _parse_scales(data.get("scales", {}), where)
    regions = _parse_regions(data.get("regions"), scales, path, where)
    blinding = _parse_blinding(data.get("blinding", {}), where)
    normalize = _parse_normalize(data.get("normalize", {}), where)
    for region in regions.values():
        if region.full_long_edge is not None and region.full_long_edge < normalize.display_long_edge:
            raise _fail(where, f"regions.{region.name}.full_long_edge",
                        f"must not be below normalize.display_long_edge "
                        f"({normalize.display_long_edge})")
    photos = _parse_photos(data.get("photos", {}), where)
    pixels = _parse_pixels(data.get("pixels", {}), where)
    rating = _parse_rating(data.get("rating", {}), where)
    rules = _parse_panel(data, where)
    reference = _parse_reference(data.get("reference", {}), path, where)

    used = {r.scale for r in regions.values()}
    return Study(
        id=study_id,
        title=title,
        timepoints=timepoints,
        regions=regions,
        scales={k: v for k, v in scales.items() if k in used},
        blinding=blinding,
        normalize=normalize,
        photos=photos,
        pixels=pixels,
        rating=rating,
        panel=rules,
        reference=reference,
        path=path,
        text=text,
    )


def _parse_head(st: Any, where: str) -> tuple[str, str, tuple[str, ...]]:
    """``[study]``: id, title and timepoints."""
    if not isinstance(st, dict):
        raise _fail(where, "[study]", "missing; give at least id and timepoints")
    check_keys(st, "study", f"{where}: study")
    study_id = st.get("id")
    if not isinstance(study_id, str) or not study_id.strip():
        raise _fail(where, "study.id", "missing or empty; e.g. id = \"NCT06217627\"")
    if len(study_id.strip()) > MAX_NAME:
        raise _fail(where, "study.id", f"at most {MAX_NAME} characters, not {len(study_id.strip())}")
    title = st.get("title", study_id)
    if not isinstance(title, str):
        raise _fail(where, "study.title", f"must be a text in quotes, not {title!r}")
    timepoints = st.get("timepoints")
    if (not isinstance(timepoints, list) or len(timepoints) < 2
            or not all(is_name(t) for t in timepoints)):
        raise _fail(where, "study.timepoints", "give two or more names in order, the first is baseline, "
                    "e.g. [\"baseline\", \"month12\"] (letters, digits and dashes, at most "
                    f"{MAX_NAME})")
    if len(set(timepoints)) != len(timepoints):
        raise _fail(where, "study.timepoints", f"names must be unique, got {timepoints}")
    _case_clash(timepoints, "timepoints", f"{where}: study.timepoints")
    return study_id.strip(), title.strip(), tuple(timepoints)


def _parse_scales(own: Any, where: str) -> dict[str, Scale]:
    """The shipped scales and the study's own ``[scales.<id>]``, which may not reuse a shipped id."""
    scales = shipped_scales()
    if not isinstance(own, dict):
        raise _fail(where, "[scales]", "must be tables, e.g. [scales.my-scale]")
    shipped = {sid.lower(): sid for sid in scales}
    for sid, sdata in own.items():
        if sid.lower() in shipped:
            theirs = shipped[sid.lower()]
            raise _fail(where, f"scales.{sid}", f"{theirs!r} is a shipped scale and cannot be "
                        f"redefined; define a new id (e.g. [scales.my-{theirs}]) and name it in the "
                        "region's scale")
        scales[sid] = _parse_scale(sid, sdata, f"{where}: scales.{sid}")
    _case_clash(own, "scale ids", f"{where}: [scales]")
    return scales


def _parse_regions(regions_raw: Any, scales: dict[str, Scale], path: Path | None,
                   where: str) -> dict[str, Region]:
    """``[regions.<name>]``: the scale of each region and its optional reference photos."""
    if not isinstance(regions_raw, dict) or not regions_raw:
        raise _fail(where, "[regions]",
                    "missing; add one table per region, e.g. [regions.face] scale = \"wsrs\"")
    regions = {}
    for name, rdata in regions_raw.items():
        if not is_name(name):
            raise _fail(where, f"regions.{name!r}", "region names are letters, digits and dashes "
                        f"(at most {MAX_NAME})")
        if not isinstance(rdata, dict) or "scale" not in rdata:
            raise _fail(where, f"regions.{name}.scale", "missing; e.g. scale = \"wsrs\"")
        check_keys(rdata, "regions.*", f"{where}: regions.{name}")
        scale_id = rdata["scale"]
        if not isinstance(scale_id, str) or scale_id not in scales:
            raise _fail(where, f"regions.{name}.scale", f"unknown scale {scale_id!r}; shipped scales "
                        f"are {', '.join(sorted(shipped_scales()))}, or define [scales.{scale_id}]")
        refs = rdata.get("references")
        ref_path = None
        if refs is not None:
            if not isinstance(refs, str) or not refs.strip():
                raise _fail(where, f"regions.{name}.references", "must be a folder path in quotes, e.g. "
                            "references = \"refs/face\"")
            ref_path = Path(refs)
            if path is not None and not ref_path.is_absolute():
                ref_path = path.parent / ref_path
        full = rdata.get("full_long_edge")
        if full is not None and (isinstance(full, bool) or not isinstance(full, int)
                                 or not 256 <= full <= 12000):
            raise _fail(where, f"regions.{name}.full_long_edge", "must be a whole number of pixels "
                        "from 256 to 12000, e.g. full_long_edge = 3000 (leave it out to have it "
                        "chosen from the photos)")
        regions[name] = Region(name=name, scale=scale_id, references=ref_path, full_long_edge=full)
    _case_clash(regions, "regions", f"{where}: [regions]")
    return regions


def _parse_blinding(bl: dict[str, Any], where: str) -> Blinding:
    """``[blinding]``: raters, repeats, presentation and seed."""
    check_keys(bl, "blinding", f"{where}: blinding")
    raters = bl.get("raters", ["rater1"])
    if not isinstance(raters, list) or not raters or not all(is_name(r) for r in raters):
        raise _fail(where, "blinding.raters", "give one or more rater ids, e.g. [\"derm1\"] "
                    f"(letters, digits and dashes, at most {MAX_NAME})")
    if len(set(raters)) != len(raters):
        raise _fail(where, "blinding.raters", f"rater ids must be unique, got {raters}")
    _case_clash(raters, "rater ids", f"{where}: blinding.raters")
    rf = bl.get("repeat_fraction", 0.1)
    if isinstance(rf, bool) or not isinstance(rf, (int, float)) or not 0 <= rf <= 1:
        raise _fail(where, "blinding.repeat_fraction", f"must be a number from 0 to 1, not {rf!r}")
    presentation = bl.get("presentation", "single")
    if presentation not in PRESENTATIONS:
        raise _fail(where, "blinding.presentation",
                    f"must be \"single\" or \"pairs\", not {presentation!r}")
    seed = bl.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise _fail(where, "blinding.seed", f"must be a whole number >= 0, not {seed!r}")
    return Blinding(tuple(raters), float(rf), presentation, seed, _parse_sites(bl, raters, where))


def _parse_sites(bl: dict[str, Any], raters: list[str], where: str) -> tuple[tuple[str, str], ...]:
    """``blinding.sites``: where each rater works, e.g. ``{derm1 = "Paris", derm2 = "Boston"}``."""
    sites = bl.get("sites", {})
    if not isinstance(sites, dict):
        raise _fail(where, "blinding.sites", "give a table of rater id = site, e.g. "
                    "sites = {derm1 = \"Paris\", derm2 = \"Boston\"}")
    for rater, site in sites.items():
        if rater not in raters:
            raise _fail(where, f"blinding.sites.{rater}", "not one of blinding.raters "
                        f"({', '.join(raters)})")
        if not isinstance(site, str) or not site.strip() or len(site) > MAX_NAME \
                or not site.isprintable():
            raise _fail(where, f"blinding.sites.{rater}", f"give the site's name (at most "
                        f"{MAX_NAME} characters), not {site!r}")
    return tuple((r, sites[r].strip()) for r in raters if r in sites)


def sites_of(study_toml: str | Path) -> dict[str, str]:
    """Rater → site from a study file (a set's ``key/study.toml``); ``{}`` when none is given."""
    path = Path(study_toml)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StudyError(f"{path}: cannot be read ({exc})") from None
    bl = data.get("blinding", {})
    if not isinstance(bl, dict):
        return {}
    return dict(_parse_sites(bl, list(bl.get("raters", [])), str(path)))


def _parse_normalize(nm: dict[str, Any], where: str) -> Normalize:
    """``[normalize]``: canvas size, quality, aspect and fit."""
    check_keys(nm, "normalize", f"{where}: normalize")
    defaults = Normalize()
    long_edge = nm.get("long_edge", defaults.long_edge)
    display = nm.get("display_long_edge", defaults.display_long_edge)
    quality = nm.get("quality", defaults.quality)
    for fname, value, lo, hi in (("long_edge", long_edge, 256, 12000),
                                 ("display_long_edge", display, 256, 8000),
                                 ("quality", quality, 50, 100)):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _fail(where, f"normalize.{fname}",
                        f"must be a whole number from {lo} to {hi}, not {value!r}")
    if display > long_edge:
        raise _fail(where, "normalize.display_long_edge", "must not exceed normalize.long_edge")
    aspect_raw = nm.get("aspect", "4:3")
    m = re.fullmatch(r"(\d{1,3}):(\d{1,3})", aspect_raw) if isinstance(aspect_raw, str) else None
    if (not m or int(m.group(1)) == 0 or int(m.group(2)) == 0
            or max(int(m.group(1)), int(m.group(2))) > 4 * min(int(m.group(1)), int(m.group(2)))):
        raise _fail(where, "normalize.aspect",
                    f"must look like \"4:3\" (at most 4:1), not {aspect_raw!r}")
    fit = nm.get("fit", defaults.fit)
    if fit not in ("pad", "crop"):
        raise _fail(where, "normalize.fit", f"must be \"pad\" or \"crop\", not {fit!r}")
    return Normalize(long_edge, display, quality, (int(m.group(1)), int(m.group(2))), fit)


def _check_file_name(name: str, where: str, field_path: str) -> None:
    """Refuse a key naming a file of the images folder that is empty or has spaces around it."""
    if not name.strip() or name != name.strip():
        raise _fail(where, field_path, "give the file name exactly, without spaces around it")


def _parse_photos(ph: dict[str, Any], where: str) -> Photos:
    """``[photos]``: the frame of each multi-frame file, and pairs confirmed as distinct photos."""
    check_keys(ph, "photos", f"{where}: photos")
    frames_raw = ph.get("frames", {})
    if not isinstance(frames_raw, dict):
        raise _fail(where, "photos.frames", "must be a table of file name = frame number, e.g. "
                    "frames = {\"P07_baseline_face.tif\" = 1}")
    frames = {}
    for name, number in frames_raw.items():
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 10000:
            raise _fail(where, f"photos.frames.{name!r}",
                        f"must be a frame number from 1 (the first), not {number!r}")
        _check_file_name(name, where, f"photos.frames.{name!r}")
        frames[name] = number
    distinct_raw = ph.get("distinct", [])
    if not isinstance(distinct_raw, list):
        raise _fail(where, "photos.distinct", "must be a list of pairs of file names, e.g. "
                    "distinct = [[\"P07_baseline_face.jpg\", \"P07_month12_face.jpg\"]]")
    pairs = []
    for i, pair in enumerate(distinct_raw):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(n, str) and n.strip() for n in pair) or pair[0] == pair[1]):
            raise _fail(where, f"photos.distinct[{i}]", "must be two different file names, e.g. "
                        "[\"P07_baseline_face.jpg\", \"P07_month12_face.jpg\"]")
        pairs.append((pair[0], pair[1]))
    return Photos(frames=frames, distinct=tuple(pairs))


def _parse_pixels(px: dict[str, Any], where: str) -> Pixels:
    """``[pixels]``: the text search's mode, the photos whose text may pass, and normalization."""
    check_keys(px, "pixels", f"{where}: pixels")
    mode = px.get("text", Pixels.text)
    if mode not in TEXT_MODES:
        raise _fail(where, "pixels.text", f"must be \"refuse\", \"mask\" or \"off\", not {mode!r}")
    allow_raw = px.get("allow_text", {})
    if not isinstance(allow_raw, dict):
        raise _fail(where, "pixels.allow_text", "must be a table of file name = reason, e.g. "
                    "allow_text = {\"P07_baseline_face.jpg\" = \"the clinic's logo on the wall\"}")
    allow = {}
    for name, reason in allow_raw.items():
        _check_file_name(name, where, f"pixels.allow_text.{name!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise _fail(where, f"pixels.allow_text.{name!r}",
                        "give the reason the text is harmless, in quotes (it is recorded)")
        allow[name] = reason.strip()
    normalize = px.get("normalize", Pixels.normalize)
    if not isinstance(normalize, bool):
        raise _fail(where, "pixels.normalize", f"must be true or false, not {normalize!r}")
    to = px.get("normalize_to", Pixels.normalize_to)
    if to not in NORMALIZE_TO:
        raise _fail(where, "pixels.normalize_to",
                    f"must be \"subject\" or \"backdrop\", not {to!r}")
    return Pixels(text=mode, allow_text=allow, normalize=normalize, normalize_to=to)


MIN_VIEW_MS_RANGE = (0, 10_000)
SESSION_HOURS_MAX = 168


def _parse_rating(raw: dict[str, Any], where: str) -> Rating:
    """The ``[rating]`` section: ``min_view_ms`` (whole milliseconds, 0 to 10 000) and
    ``session_hours`` (above 0, at most 168)."""
    check_keys(raw, "rating", f"{where}: rating")
    value = raw.get("min_view_ms", Rating.min_view_ms)
    lo, hi = MIN_VIEW_MS_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(where, "rating.min_view_ms", f"must be a whole number of milliseconds from "
                    f"{lo} to {hi}, not {value!r}")
    hours = raw.get("session_hours", Rating.session_hours)
    if (isinstance(hours, bool) or not isinstance(hours, (int, float))
            or not 0 < hours <= SESSION_HOURS_MAX):
        raise _fail(where, "rating.session_hours", f"must be a number of hours above 0 and at "
                    f"most {SESSION_HOURS_MAX:g} (a week), not {hours!r}")
    return Rating(value, float(hours))


def _parse_reference(raw: dict[str, Any], path: Path | None, where: str) -> Path | None:
    """``[reference] photos``: the reference photos' CSV, relative to the study folder."""
    check_keys(raw, "reference", f"{where}: reference")
    value = raw.get("photos")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "reference.photos", "must be a CSV path in quotes, e.g. "
                    "photos = \"reference.csv\"")
    ref = Path(value)
    return ref if ref.is_absolute() or path is None else path.parent / ref


def _parse_panel(data: dict[str, Any], where: str) -> panel.Rules:
    """``[qualification]``, ``[calibration]``, ``[consensus]``, ``[adjudication]`` (:mod:`.panel`)."""
    for section in panel.KEYS:
        if section in data:
            check_keys(data[section], section, f"{where}: {section}")
    try:
        rules = panel.parse_rules(data)
    except ValueError as exc:
        raise StudyError(f"{where}: {exc}") from None
    raters = data.get("blinding", {}).get("raters", ["rater1"])
    who = rules.adjudication.adjudicator if rules.adjudication else None
    if who is not None and who in raters:
        raise _fail(where, "adjudication.adjudicator", f"{who!r} is one of the panel's raters; "
                    "name someone outside blinding.raters (the adjudicator must not judge their "
                    "own scores)")
    if who is not None and not is_name(who):
        raise _fail(where, "adjudication.adjudicator", f"{who!r} must be a rater id (letters, "
                    f"digits and dashes, at most {MAX_NAME})")
    return rules


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
#   nrs-wrinkles   wrinkle severity, 0-10 numeric rating scale (typed: digits then Enter)
#   vas-wrinkles   wrinkle severity, visual analogue scale 0-100 (a slider)
# Optional: references = "refs/face" (a folder with one photo per level named 1.jpg, 2.jpg, ...;
#   the rating app shows them as a guide beside the photo, key G)
# Optional: full_long_edge = 3000 (long edge of the region's full copies, for zoom; left out, the
#   largest that every photo of the region reaches without being enlarged, at most long_edge)
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
# sites = {derm1 = "Paris"} # optional: where each rater works; `assess status --key` groups raters by site

[normalize]                 # every photo of a region gets the same size, quality and encoding
long_edge = 2000            # full copy, for zoom, at most (12 MP phones and 24 MP DSLRs decode fastest up to 2000)
display_long_edge = 1600    # display copy, for fast paging
quality = 90                # JPEG quality
aspect = "4:3"              # canvas of every photo (turned to portrait where a region's photos mostly are)
fit = "pad"                 # "pad" keeps every pixel on a neutral border; "crop" fills the canvas

[rating]                    # how the rating app takes answers
min_view_ms = 400           # a photo must be loaded and on screen this long before it can be rated
session_hours = 12          # a sign-in holds this long across reloads and restarts (at most 168)

[photos]                    # settings for single files of the images folder, named as in it
# frames = {"P07_baseline_face.tif" = 1}   # a multi-page TIFF or animated PNG: the frame to use (1 = first)
# distinct = [["P07_baseline_face.jpg", "P07_month12_face.jpg"]]   # confirmed different photos of
#                           # one participant that look alike (passes the near-duplicate check)

[pixels]                    # what the pixels themselves give away (docs/pixels.md)
text = "refuse"             # text in a photo (date imprint, label card, ruler): "refuse" names each
#                           #   photo and where; "mask" covers it in the blinded copies; "off"
# allow_text = {"P07_baseline_face.jpg" = "the clinic's logo on the wall"}   # harmless text, recorded
normalize = false           # true: white balance and exposure matched to each region's reference,
#                           #   the backdrop painted in the region's colour where the subject shows
# normalize_to = "backdrop" # what the gains match: "backdrop" (the camera; the skin's colour and
#                           #   its change between visits kept) or "subject" (the skin, shown at
#                           #   the region's typical colour: for scales that judge shape alone)

# A panel of raters (all optional; leave a section out to switch it off; docs/panel.md).
# [reference]               # photos with expert reference scores, kept on the coordinator's side
# photos = "reference.csv"  # columns file,region,score,use (optional view); use = "training" or
#                           # "calibration"; file relative to this folder, e.g. images-reference/face-07.jpg
#
# [qualification]           # a training worklist first (the [reference] photos with use = "training");
#                           # the live worklist opens once a rater qualifies
# min_kappa = 0.70          # weighted kappa against the reference scores
# min_kappa_lower = 0.50    # ... and the lower bound of its 95% confidence interval
# min_exact = 0.60          # share of training photos scored exactly as the reference
# min_within_one = 0.90     # share within one grade of the reference
# weights = "linear"        # kappa weights: "linear", "quadratic" or "none"
# attempts = 2              # attempts allowed (each reshuffled)
# feedback = "end"          # show the reference "each" photo, at the "end" of an attempt, or "none"
#
# [calibration]             # hidden reference photos among the live ones (the [reference] photos
#                           # with use = "calibration"; single photos only)
# rate = 0.1                # one in ten items of every live worklist, each block gets its share
# block = 20                # drift is reported per block of 20 worklist positions
# min_within_one = 0.8      # a block below this agreement with the reference is flagged
# min_exact = 0.5
#
# [consensus]
# rule = "median"           # how the panel's scores combine: "median", "mean" or "majority"
#
# [adjudication]
# adjudicator = "derm9"     # someone outside blinding.raters
# min_difference = 2        # highest minus lowest panel score that sends a photo to adjudication
# responder_change = 1      # also when raters disagree on responder status; the coordinator sends
#                           #   those photos with `assess adjudication queue RATER --key KEY --db DB`
# show_scores = true        # the adjudicator sees the panel's scores (never whose)

# A study's own scale (a new id; the shipped ids cannot be redefined):
# [scales.my-scale]
# name = "My scale"
# better = "lower"
# levels = [{value = 1, label = "None"}, {value = 2, label = "Mild"}, {value = 3, label = "Marked"}]
# kind = "ordinal"          # "ordinal", "categorical" (no distances) or "vas" (visual analogue scale)
# min = 0                   # instead of listing every level: a range, 0 to 1000, at most 101 levels;
# max = 10                  #   levels then label only the values they name (0 = "None", 10 = "Worst")
# step = 0.5                # half steps: 1, 1.5, 2, ... (every level a multiple of the step)
# A visual analogue scale has no levels: min/max (default 0-100), step (1, 0.5 or 0.1) and
# anchors = ["No wrinkles", "Worst imaginable wrinkles"]   # its two ends, required
# test = "paired-t"         # how its change is tested: "paired-t" (default) or "wilcoxon"
'''
