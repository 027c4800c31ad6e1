"""The blinded set: codes, worklists, disguised repeats, pairs, the key and the sealed manifest.

This is the only module that writes a set (layout and file formats: ``docs/formats.md``).
:func:`randomize` runs the coordinator's stage end to end: find and check the photos
(:mod:`assess.ingest`), plan the set from the seed (:func:`plan`), de-identify every photo
(:mod:`assess.deid`), write the rater folder and the key, audit the result (:mod:`assess.audit`) and
only then move it into place. It is atomic: the set is built in a hidden folder beside the target and
renamed at the end; on any error, Ctrl+C included, the hidden folder is removed and nothing is left
under ``<out>/<set-id>``. An existing set is never overwritten.

Reproducible: the same seed and the same photos give the same codes, worklists, repeats, pair sides,
``set.json`` (but for the access-code hashes) and byte-identical images. The access codes are secrets
and are drawn with :mod:`secrets` every time, seed or not.

>>> from assess.ingest import Photo
>>> from assess.study import parse_study, TEMPLATE
>>> from pathlib import Path
>>> study = parse_study(TEMPLATE)
>>> photos = [Photo(p, t, r, "", Path(f"{p}_{t}_{r}.jpg"), sha256=f"{p}{t}{r}")
...           for p in ("S1", "S2", "S3") for r in ("face", "hands") for t in study.timepoints]
>>> a, b = plan(study, photos, seed=7), plan(study, photos, seed=7)
>>> a.orders == b.orders and [r.code for r in a.rows] == [r.code for r in b.rows]
True
>>> a.counts
{'photos': 12, 'repeats': 1, 'items': 13, 'pairs': 0}
>>> all(CODE_RE.match(row.code) for row in a.rows)
True
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import __version__, panel, seal
from . import calibration as cal_
from .reference import ReferencePhoto, by_use, study_reference
from .csvfile import read_table, spreadsheet_safe
from .errors import AssessError
from .ingest import EXTENSIONS, Inventory, Photo, check_decoded, discover
from .seal import SigningKey
from .study import NAME_RE, Study, load_study

__all__ = [
    "ALPHABET",
    "CODE_RE",
    "KEY_COLUMNS",
    "FIXED_MTIME",
    "PBKDF2_ITERATIONS",
    "BlindError",
    "KeyRow",
    "Item",
    "Plan",
    "BlindedSet",
    "plan",
    "constrained_order",
    "randomize",
    "default_set_id",
    "access_hash",
    "read_access",
    "read_key",
    "REFERENCE_COLUMNS",
    "ReferenceRow",
    "reference_rows",
    "reference_item",
    "reference_jobs",
    "reference_commitment",
    "read_reference_key",
    "training_worklist_name",
]

ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
"""Letters and digits of a code: none that is easily confused (0/O, 1/I/L, 2/Z, 5/S, 6/G, 8/B)."""
CODE_RE = re.compile(rf"^[{ALPHABET}]{{3}}-[{ALPHABET}]{{4}}$")
ACCESS_RE = re.compile(rf"^[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")
KEY_COLUMNS = ("code", "participant", "timepoint", "region", "view", "source_file", "source_sha256",
               "blinded_sha256", "repeat_of", "pair", "pair_side")
REFERENCE_COLUMNS = ("code", "rater", "use", "attempt", "region", "view", "score", "source_file",
                     "source_sha256", "blinded_sha256", "salt")
"""Columns of ``key/reference.csv``: one row per code a reference photo is shown under."""
FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z: every file and folder under rater/
PBKDF2_ITERATIONS = 200_000
FILE_MODE, DIR_MODE = 0o644, 0o755  # rater folder
KEY_FILE_MODE, KEY_DIR_MODE = 0o600, 0o700  # key folder: the coordinator's only
SHORT_SEED = 10**12  # a given seed below this can be guessed


class BlindError(AssessError):
    """The set cannot be built as asked (existing set, impossible worklist, failed audit, …)."""


@dataclass(frozen=True)
class KeyRow:
    """One row of ``key/key.csv``: one blinded photo file."""

    code: str
    participant: str
    timepoint: str
    region: str
    view: str
    source_file: str
    source_sha256: str
    blinded_sha256: str = ""
    repeat_of: str = ""
    pair: str = ""
    pair_side: str = ""


@dataclass(frozen=True)
class ReferenceRow:
    """One row of ``key/reference.csv``: one code under which a reference photo is shown.

    ``rater`` and ``attempt`` are empty for a code shown to every rater; ``salt`` makes the
    commitment in ``set.json`` (:func:`reference_commitment`) impossible to invert without the key.
    """

    code: str
    rater: str
    use: str
    attempt: str
    region: str
    view: str
    score: str
    source_file: str
    source_sha256: str
    blinded_sha256: str = ""
    salt: str = ""


@dataclass(frozen=True)
class Item:
    """One entry of a worklist; ``group`` (participant, region) and ``repeat_of`` (index of the
    first showing) are for planning only and never written to the rater folder."""

    item: str
    kind: str
    scale: str
    region: str
    photos: tuple[str, ...]
    group: tuple[str, str]
    repeat_of: int | None = None
    view: str = ""  # the same at every timepoint, so shown to the rater with the region

    def to_json(self) -> dict:
        out = {"item": self.item, "kind": self.kind, "scale": self.scale, "region": self.region,
               "photos": list(self.photos)}
        return {**out, "view": self.view} if self.view else out


@dataclass
class Plan:
    """Everything the seed decides, before any pixel is touched.

    ``rows``: key rows (without ``blinded_sha256``); ``sources``: for each row, the index of its
    photo in ``photos``; ``items``: originals then repeats; ``orders``: per rater, the item indices
    in presentation order.
    """

    photos: list[Photo]
    rows: list[KeyRow]
    sources: list[int]
    items: list[Item]
    orders: dict[str, list[int]]
    counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)


@dataclass
class BlindedSet:
    """What :func:`randomize` wrote."""

    set_id: str
    path: Path
    counts: dict[str, int]
    raters: tuple[str, ...]
    access: dict[str, str]  # rater -> access code (also in key/access.csv)
    seed: int
    warnings: list[str] = field(default_factory=list)
    fingerprint: str | None = None  # of the coordinator key that signed the seal; None: unsigned
    #: the visible differences between visits (:func:`assess.audit.visible.threats`), also in
    #: ``key/visible.csv``
    visible: list = field(default_factory=list)

    @property
    def rater_dir(self) -> Path:
        return self.path / "rater"

    @property
    def key_dir(self) -> Path:
        return self.path / "key"


# --------------------------------------------------------------------------- planning


def _code(rng: np.random.Generator, taken: set[str]) -> str:
    """A new code ``XXX-XXXX`` over :data:`ALPHABET`, unique in ``taken`` (which it joins)."""
    while True:
        idx = rng.integers(0, len(ALPHABET), size=7)
        chars = "".join(ALPHABET[i] for i in idx)
        code = f"{chars[:3]}-{chars[3:]}"
        if code not in taken:
            taken.add(code)
            return code


def _n_repeats(fraction: float, n: int) -> int:
    """round(fraction × n), at least 1 when the fraction is above zero and there is anything.

    >>> _n_repeats(0.1, 72), _n_repeats(0.1, 4), _n_repeats(0, 10), _n_repeats(1, 10), _n_repeats(0.05, 10)
    (7, 1, 0, 10, 1)
    """
    if fraction <= 0 or n == 0:
        return 0
    return min(n, max(1, math.floor(fraction * n + 0.5)))


def plan(study: Study, photos: Sequence[Photo], seed: int) -> Plan:
    """Draw codes, repeats, pair sides and every rater's order from ``seed``.

    Random streams are separate (codes; repeats; sides; one per rater's order), each a NumPy
    ``Generator`` seeded with ``[seed, stream]``; codes are drawn, never derived from an identifier.
    ``photos`` must be in a fixed order (``discover`` sorts them).
    """
    photos = list(photos)
    rng_codes = np.random.default_rng([seed, 1])
    rng_repeats = np.random.default_rng([seed, 2])
    rng_sides = np.random.default_rng([seed, 3])
    taken: set[str] = set()
    rows: list[KeyRow] = []
    sources: list[int] = []
    items: list[Item] = []
    warnings: list[str] = []
    fraction = study.blinding.repeat_fraction

    def row(i: int, code: str, **extra) -> KeyRow:
        p = photos[i]
        r = KeyRow(code, p.participant, p.timepoint, p.region, p.view, p.path.as_posix(), p.sha256,
                   **extra)
        rows.append(r)
        sources.append(i)
        return r

    if study.blinding.presentation == "single":
        for i, p in enumerate(photos):
            code = _code(rng_codes, taken)
            row(i, code)
            items.append(Item(code, "single", study.regions[p.region].scale, p.region, (code,),
                              (p.participant, p.region), view=p.view))
        n_orig = len(items)
        chosen = sorted(int(i) for i in rng_repeats.choice(n_orig, _n_repeats(fraction, n_orig),
                                                           replace=False)) if n_orig else []
        for k in chosen:
            code = _code(rng_codes, taken)
            row(k, code, repeat_of=items[k].item)
            first = items[k]
            items.append(Item(code, "single", first.scale, first.region, (code,), first.group, k,
                              view=first.view))
        counts = {"photos": n_orig, "repeats": len(chosen), "items": len(items), "pairs": 0}
    else:
        order = {t: n for n, t in enumerate(study.timepoints)}
        by_unit: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)
        for i, p in enumerate(photos):
            by_unit[(p.participant, p.region, p.view)][p.timepoint] = i
        units: list[tuple[int, int]] = []  # (baseline photo, follow-up photo)
        unpaired: list[str] = []
        for key in sorted(by_unit):
            tps = by_unit[key]
            base = tps.get(study.baseline)
            follow = sorted((t for t in tps if t != study.baseline), key=order.get)
            if base is None:
                unpaired += [photos[tps[t]].path.as_posix() for t in follow]
                continue
            if not follow:
                unpaired.append(photos[base].path.as_posix())
            units += [(base, tps[t]) for t in follow]
        if unpaired:
            warnings.append(f"{len(unpaired)} photo(s) have no baseline or no follow-up partner and "
                            f"are left out of the pairs: {', '.join(unpaired[:5])}"
                            + (f" and {len(unpaired) - 5} more" if len(unpaired) > 5 else ""))

        photo_code: dict[tuple[str, int], str] = {}  # (pair code, photo index) -> photo code
        n_units = len(units)
        chosen = sorted(int(i) for i in rng_repeats.choice(n_units, _n_repeats(fraction, n_units),
                                                           replace=False)) if n_units else []
        showings = list(range(n_units)) + chosen
        sides = iter(balanced_sides([photos[units[u][0]].region for u in showings], rng_sides))

        def pair_item(unit: tuple[int, int], repeat_of: int | None) -> Item:
            base, follow = unit
            pair_code = _code(rng_codes, taken)
            left_first = next(sides)
            left, right = (base, follow) if left_first else (follow, base)
            codes = []
            for side, i in (("left", left), ("right", right)):
                code = _code(rng_codes, taken)
                # a repeat names the code of the same photo in the first showing of the pair
                rep = "" if repeat_of is None else photo_code[(items[repeat_of].item, i)]
                row(i, code, repeat_of=rep, pair=pair_code, pair_side=side)
                photo_code[(pair_code, i)] = code
                codes.append(code)
            p = photos[base]
            return Item(pair_code, "pair", study.regions[p.region].scale, p.region, tuple(codes),
                        (p.participant, p.region), repeat_of, view=p.view)

        for unit in units:
            items.append(pair_item(unit, None))
        n_orig = len(items)
        for k in chosen:
            items.append(pair_item(units[k], k))
        used = {s for s in sources}
        counts = {"photos": len(used), "repeats": len(chosen), "items": len(items), "pairs": n_orig}

    if not items:
        raise BlindError("no items to rate: with presentation = \"pairs\" every participant needs a "
                         f"{study.baseline} photo and a follow-up photo of the same region")
    rows, items = _balance_codes(study, rows, items, np.random.default_rng([seed, 5]))
    groups = [it.group for it in items]
    repeat_of = [it.repeat_of for it in items]
    item_of = {code: k for k, it in enumerate(items) for code in it.photos}
    tries = balance_tries(study, rows)
    orders = {}
    for r_index, rater in enumerate(study.blinding.raters):
        rng = np.random.default_rng([seed, 4, r_index])

        def draw() -> list[int]:
            return constrained_order(groups, repeat_of, rng)

        def worst(order: list[int]) -> float:
            place = {k: t for t, k in enumerate(order)}
            return worst_timepoint_auc(study, rows, [place[item_of[r.code]] for r in rows])

        orders[rater] = most_balanced(draw, worst, tries=tries)
    return Plan(photos, rows, sources, items, orders, counts, warnings)


# --------------------------------------------------------------------------- balance

BALANCE_TRIES = 300
"""Draws tried before the most balanced one found is kept."""
BALANCE_MIN_PHOTOS = 5
"""Fewest photos of a timepoint in a region for which codes and places are balanced."""


def worst_timepoint_auc(study: Study, rows: Sequence[KeyRow], values: Sequence,
                        categorical: bool = False) -> float:
    """The largest AUC, over regions and follow-up timepoints, with which ``values`` (one per key
    row) separate the baseline photos from the follow-up photos — the measure the leak audit applies.

    >>> from assess.study import parse_study, TEMPLATE
    >>> rows = [KeyRow(str(i), "P", t, "face", "", "", "") for i, t in enumerate(["baseline", "month12"] * 4)]
    >>> worst_timepoint_auc(parse_study(TEMPLATE), rows, [0, 1, 2, 3, 4, 5, 6, 7])
    0.625
    """
    from .audit import timepoint_auc

    worst = 0.5
    by_region: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_region[r.region].append(i)
    for idx in by_region.values():
        base = [values[i] for i in idx if rows[i].timepoint == study.baseline]
        for tp in study.followups:
            other = [values[i] for i in idx if rows[i].timepoint == tp]
            if base and other:
                worst = max(worst, timepoint_auc(base, other, categorical, p_value=False)[0])
    return worst


def most_balanced(draw: Callable[[], object], worst: Callable[[object], float],
                  limit: float = 0.55, tries: int | None = None):
    """Restricted randomization: draw until ``worst(draw()) <= limit`` and return that draw, or
    the best of ``tries`` draws.

    Codes, worklist positions and pair sides are random, so in a set of a few dozen photos they
    would separate baseline from follow-up by chance (an AUC of 0.6 or more is common with 20
    photos a group). Keeping only draws in which no region's timepoints differ in these properties
    (AUC ≤ 0.55) removes that chance signal; which photo gets which code or place stays random.
    Very small sets cannot reach the limit (with 3 + 3 photos no AUC lies between 0.45 and 0.55):
    the most balanced draw is kept; :func:`balance_tries` gives them a single draw.
    """
    tries = BALANCE_TRIES if tries is None else tries
    if tries <= 1:
        return draw()
    best, best_score = None, math.inf
    for _ in range(tries):
        candidate = draw()
        score = worst(candidate)
        if score <= limit:
            return candidate
        if score < best_score:
            best, best_score = candidate, score
    return best


def balance_tries(study: Study, rows: Sequence[KeyRow]) -> int:
    """:data:`BALANCE_TRIES`, or 1 when some region has fewer than :data:`BALANCE_MIN_PHOTOS` photos
    of a timepoint (too few for an AUC near 0.5 to mean anything).

    >>> from assess.study import parse_study, TEMPLATE
    >>> rows = [KeyRow(str(i), "P", t, "face", "", "", "") for i, t in enumerate(["baseline", "month12"] * 4)]
    >>> balance_tries(parse_study(TEMPLATE), rows)
    1
    """
    counts = Counter((r.region, r.timepoint) for r in rows)
    regions = {r.region for r in rows}
    small = any(0 < counts[(reg, tp)] < BALANCE_MIN_PHOTOS
                for reg in regions for tp in study.timepoints)
    return 1 if small else BALANCE_TRIES


def _balance_codes(study: Study, rows: list[KeyRow], items: list[Item],
                   rng: np.random.Generator) -> tuple[list[KeyRow], list[Item]]:
    """Re-deal the photo codes among the photos so that code order says nothing of the timepoint."""
    codes = [r.code for r in rows]
    ranked = sorted(codes)

    def draw() -> list[str]:
        return [ranked[i] for i in rng.permutation(len(ranked))]

    def worst(dealt: list[str]) -> float:
        rank = {c: i for i, c in enumerate(sorted(dealt))}
        return worst_timepoint_auc(study, rows, [rank[c] for c in dealt])

    dealt = most_balanced(draw, worst, tries=balance_tries(study, rows))
    new = dict(zip(codes, dealt))
    rows = [replace(r, code=new[r.code], repeat_of=new.get(r.repeat_of, r.repeat_of)) for r in rows]
    items = [replace(it, item=new.get(it.item, it.item), photos=tuple(new[c] for c in it.photos))
             for it in items]
    return rows, items


def balanced_sides(regions: Sequence[str], rng: np.random.Generator) -> list[bool]:
    """Whether the baseline photo goes left, for each pair: half of each region's pairs each way
    (the odd one at random), in random order.

    >>> sides = balanced_sides(["face"] * 6 + ["hands"] * 3, np.random.default_rng(1))
    >>> sum(sides[:6]), sum(sides[6:]) in (1, 2)
    (3, True)
    """
    out: list[bool] = [False] * len(regions)
    by_region: dict[str, list[int]] = defaultdict(list)
    for i, region in enumerate(regions):
        by_region[region].append(i)
    for region in sorted(by_region):
        idx = by_region[region]
        n_left = len(idx) // 2 + (int(rng.integers(0, 2)) if len(idx) % 2 else 0)
        lefts = [True] * n_left + [False] * (len(idx) - n_left)
        for i, side in zip(idx, rng.permutation(lefts)):
            out[i] = bool(side)
    return out


def min_repeat_gap(n_items: int) -> int:
    """Least distance between a disguised repeat and its first showing: a third of the worklist.

    >>> min_repeat_gap(79), min_repeat_gap(9)
    (27, 3)
    """
    return max(2, math.ceil(n_items / 3))


def constrained_order(groups: Sequence, repeat_of: Sequence[int | None], rng: np.random.Generator,
                      gap: int | None = None, attempts: int = 500) -> list[int]:
    """A random order of the items in which no two neighbours share a group (participant and
    region) and every repeat comes at least ``gap`` places after its first showing.

    Items are drawn one at a time, uniformly among those allowed at that place, with two rules that
    keep the draw from running into a dead end: a group that would otherwise no longer fit between
    the others is drawn first, and first showings of repeated items are drawn before their last
    possible place. A draw that still fails is repeated (up to ``attempts`` times).

    Parameters
    ----------
    groups
        Group of each item; neighbours must differ.
    repeat_of
        For each item, the index of the item it repeats, or ``None``.
    rng
        The generator (seeded for a reproducible order).
    gap
        Least distance between a repeat and its first showing (default :func:`min_repeat_gap`).

    Returns
    -------
    list[int]
        Item indices in presentation order.

    Raises
    ------
    BlindError
        when no such order exists (one group holds more than half of the items) or none was found.

    >>> order = constrained_order(["a", "a", "b", "b", "c"], [None] * 5, np.random.default_rng(1))
    >>> sorted(order), all(["aabbc"[i] != "aabbc"[j] for i, j in zip(order, order[1:])])
    ([0, 1, 2, 3, 4], True)
    """
    n = len(groups)
    if n == 0:
        return []
    gap = min_repeat_gap(n) if gap is None else gap
    sizes = Counter(groups)
    biggest, size = sizes.most_common(1)[0]
    if 2 * size - 1 > n:
        what = (f"participant {biggest[0]}, {biggest[1]}" if isinstance(biggest, tuple)
                and len(biggest) == 2 else str(biggest))
        raise BlindError(f"cannot order the worklist: {size} of its {n} items show {what}, so two "
                         "of them would have to follow each other; add participants or regions, or "
                         "lower blinding.repeat_fraction")
    repeats_of: dict[int, list[int]] = defaultdict(list)
    for i, orig in enumerate(repeat_of):
        if orig is not None:
            repeats_of[orig].append(i)
    if repeats_of and any(len(v) > 1 for v in repeats_of.values()):
        raise BlindError("an item is repeated more than once")
    for _ in range(attempts):
        order = _draw(groups, repeat_of, repeats_of, rng, gap, size)
        if order is not None:
            return order
    raise BlindError(f"could not order a worklist of {n} items so that repeats come at least {gap} "
                     "places after their first showing and no two photos of the same participant "
                     "and region follow each other; lower blinding.repeat_fraction")


def _draw(groups, repeat_of, repeats_of, rng, gap, biggest) -> list[int] | None:
    n = len(groups)
    left = Counter(groups)
    pool = [i for i in range(n) if repeat_of[i] is None]  # available now
    waiting: dict[int, list[int]] = defaultdict(list)  # place -> repeats released there
    deadline = n - 1 - gap  # last place for a first showing that has a repeat
    pending_firsts = set(repeats_of)
    order: list[int] = []
    last = None
    for t in range(n):
        for r in waiting.pop(t, ()):
            pool.append(r)
        remaining = n - t
        allowed = None
        if 2 * biggest - 1 >= remaining:  # only then can a group be forced
            forced = {g for g, c in left.items() if c > 0 and 2 * c - 1 >= remaining}
            if forced:
                allowed = [i for i in pool if groups[i] in forced and groups[i] != last]
        if allowed is None and pending_firsts and deadline - t + 1 <= len(pending_firsts):
            allowed = [i for i in pool if i in pending_firsts and groups[i] != last]
        if allowed is None:
            pick = None
            for _ in range(12):  # rejection sampling is enough almost always
                i = pool[int(rng.integers(len(pool)))] if pool else None
                if i is not None and groups[i] != last:
                    pick = i
                    break
            if pick is None:
                allowed = [i for i in pool if groups[i] != last]
        if allowed is not None:
            if not allowed:
                return None
            pick = allowed[int(rng.integers(len(allowed)))]
        pool.remove(pick)
        order.append(pick)
        left[groups[pick]] -= 1
        last = groups[pick]
        if pick in pending_firsts:
            pending_firsts.discard(pick)
            for r in repeats_of[pick]:
                release = t + gap
                if release > n - 1:
                    return None
                waiting[release].append(r)
    return order


# --------------------------------------------------------------------------- access codes


def _access_code() -> str:
    """A rater's access code: three groups of four from :data:`ALPHABET`, drawn with ``secrets``."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def access_hash(code: str, salt_hex: str) -> str:
    """The hash of an access code kept in ``set.json`` (PBKDF2-HMAC-SHA256, 200 000 rounds).

    >>> access_hash("AAAA-AAAA-AAAA", "00" * 16)[:16]
    '7d8df668919e97cb'
    """
    return hashlib.pbkdf2_hmac("sha256", code.encode(), bytes.fromhex(salt_hex),
                               PBKDF2_ITERATIONS).hex()


def read_access(key_dir: str | Path) -> dict[str, str]:
    """Rater → access code from ``key/access.csv``."""
    table = read_table(Path(key_dir) / "access.csv", ("rater", "access_code"), error=BlindError,
                       what="access codes file", written_safe=True)
    return dict(zip(table.column("rater"), table.column("access_code")))


def read_key(key_dir: str | Path) -> list[KeyRow]:
    """The rows of ``key/key.csv``."""
    path = Path(key_dir) / "key.csv"
    table = read_table(path, error=BlindError, what="key", written_safe=True)
    if table.header != KEY_COLUMNS:
        raise BlindError(f"{path}: columns must be {','.join(KEY_COLUMNS)}")
    return [KeyRow(*row) for row in table.rows]


# --------------------------------------------------------------------------- reference photos


def score_text(value: int | float) -> str:
    """A reference score as ``key/reference.csv`` and the commitments write it.

    >>> score_text(3), score_text(3.0), score_text(42.5)
    ('3', '3', '42.5')
    """
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def reference_commitment(code: str, score: str, salt: str) -> str:
    """The salted commitment to a reference score kept in ``set.json``: it lets the rating server
    check the reference it is given against the sealed set, and tells the rater folder nothing
    (the 128-bit salt is in ``key/reference.csv`` only).

    >>> reference_commitment("ACD-EFHJ", "3", "00" * 16)[:16]
    '155b55a67b07d9f7'
    """
    return hashlib.sha256(f"assess-reference\n{code}\n{score}\n{salt}".encode()).hexdigest()


def training_worklist_name(rater: str, attempt: int) -> str:
    """File name of a rater's training worklist for one attempt, under ``worklists/``.

    >>> training_worklist_name("derm1", 2)
    'derm1.training-2.json'
    """
    return f"{rater}.training-{attempt}.json"


def reference_rows(refs: Sequence[ReferencePhoto], showings: Sequence[tuple[int, str, str]],
                   rng: np.random.Generator, taken: set[str]) -> tuple[list[ReferenceRow], list[int]]:
    """One code per showing ``(index in refs, rater, attempt)``, drawn from ``rng`` like the trial
    codes (same alphabet, same form, unique among ``taken``, which they join), so that nothing in a
    code tells a reference photo from a trial photo. Returns the key rows (with a fresh salt each,
    without ``blinded_sha256``) and, for each row, the index of its photo in ``refs``.

    >>> from assess.reference import ReferencePhoto
    >>> refs = [ReferencePhoto("r1.jpg", "face", "", 3, "training", Path("r1.jpg"), "ab")]
    >>> rows, src = reference_rows(refs, [(0, "derm1", "1"), (0, "derm1", "2")],
    ...                            np.random.default_rng(1), set())
    >>> [(r.rater, r.attempt, r.score, bool(CODE_RE.match(r.code))) for r in rows], src
    ([('derm1', '1', '3', True), ('derm1', '2', '3', True)], [0, 0])
    """
    rows, sources = [], []
    for i, rater, attempt in showings:
        ref = refs[i]
        rows.append(ReferenceRow(_code(rng, taken), rater, ref.use, str(attempt), ref.region,
                                 ref.view, score_text(ref.score), ref.file, ref.sha256,
                                 salt=secrets.token_hex(16)))
        sources.append(i)
    return rows, sources


def reference_item(study: Study, row: ReferenceRow) -> Item:
    """The worklist item of a reference code: a single photo, in the same format as a trial item."""
    return Item(row.code, "single", study.regions[row.region].scale, row.region, (row.code,),
                ("", row.code))


def reference_jobs(refs: Sequence[ReferencePhoto], rows: Sequence[ReferenceRow],
                   sources: Sequence[int], specs: dict, study: Study, work: Path, seed: int
                   ) -> tuple[list[tuple], list[tuple[str, str, str]]]:
    """The :func:`assess.deid.prepare_files` jobs of the reference photos, through the same pipeline
    and with the same region specs as the trial photos: a plain copy for a photo's first code and a
    disguised copy for each further one (generator ``[seed, 8]``).

    Returns the jobs (one per photo, in ``refs`` order of first use) and the moves
    ``(code, region, stem)`` for :func:`_place_images`: ``work/<stem>.full.jpg`` becomes
    ``images/full/<code>.jpg`` (and so for display).
    """
    variant_seeds = np.random.default_rng([seed, 8])
    codes_of: dict[int, list[str]] = defaultdict(list)
    for r, i in zip(rows, sources):
        codes_of[i].append(r.code)
    jobs, moves = [], []
    for n, (i, codes) in enumerate(sorted(codes_of.items())):
        ref = refs[i]
        spec = specs.get(ref.region) or _spec_for(study, [], ref.region)
        stem = f"ref{n}"
        jobs.append((ref.path, work / f"{stem}.full.jpg", work / f"{stem}.display.jpg", spec,
                     tuple((work / f"{stem}-{k}.full.jpg", work / f"{stem}-{k}.display.jpg",
                            int(variant_seeds.integers(2**62))) for k in range(1, len(codes))),
                     None))
        moves += [(code, ref.region, stem if k == 0 else f"{stem}-{k}")
                  for k, code in enumerate(codes)]
    return jobs, moves


def check_reference_pixels(refs: Sequence[ReferencePhoto], ref_pixels: dict[int, str],
                           trial_pixels: dict[str, str], csv_path: Path | None) -> None:
    """Refuse a reference photo whose decoded pixels are those of a trial photo (``trial_pixels``:
    pixel hash → the trial photo's file) or of another reference photo."""
    where = csv_path or "[reference] photos"
    seen: dict[str, int] = {}
    for i, digest in sorted(ref_pixels.items()):
        ref = refs[i]
        if digest in trial_pixels:
            raise BlindError(f"{where}: row {ref.row}: file: {ref.file} has the pixels of the trial "
                             f"photo {trial_pixels[digest]}; a reference photo must not be a photo "
                             "of the trial: take it out of the reference CSV")
        if digest in seen:
            raise BlindError(f"{where}: row {ref.row}: file: {ref.file} has the pixels of "
                             f"{refs[seen[digest]].file} (row {refs[seen[digest]].row}); list each "
                             "reference photo once")
        seen[digest] = i


def _training_plan(study: Study, refs: Sequence[ReferencePhoto], seed: int, taken: set[str]
                   ) -> tuple[list[ReferenceRow], list[int], dict[tuple[str, int], list[Item]]]:
    """Codes of the training photos — one per photo, rater and attempt, so that an attempt never
    shows a code seen before — and each rater's worklist per attempt, shuffled for that attempt
    (generator ``[seed, 9, rater index, attempt]``)."""
    rule = study.panel.qualification
    training = [i for i, r in enumerate(refs) if r.use == "training"]
    if rule is None or not training:
        return [], [], {}
    showings = [(i, rater, str(n)) for rater in study.blinding.raters
                for n in range(1, rule.attempts + 1) for i in training]
    rows, sources = reference_rows(refs, showings, np.random.default_rng([seed, 7]), taken)
    lists: dict[tuple[str, int], list[Item]] = {}
    for r_index, rater in enumerate(study.blinding.raters):
        for n in range(1, rule.attempts + 1):
            mine = [reference_item(study, row) for row in rows
                    if row.rater == rater and row.attempt == str(n)]
            order = np.random.default_rng([seed, 9, r_index, n]).permutation(len(mine))
            lists[(rater, n)] = [mine[int(k)] for k in order]
    return rows, sources, lists


def _training_json(study: Study, lists: dict[tuple[str, int], list[Item]],
                   rows: Sequence[ReferenceRow]) -> dict | None:
    """``set.json`` ``"training"``: each rater's training worklists and a salted commitment per
    training code; never a reference score."""
    if not lists:
        return None
    rule = study.panel.qualification
    worklists: dict[str, list[str]] = defaultdict(list)
    for rater, n in sorted(lists):
        worklists[rater].append(f"worklists/{training_worklist_name(rater, n)}")
    return {"attempts": rule.attempts, "feedback": rule.feedback, "worklists": dict(worklists),
            "commitments": {r.code: reference_commitment(r.code, r.score, r.salt)
                            for r in sorted(rows, key=lambda r: r.code)}}


def read_reference_key(path: str | Path) -> list[ReferenceRow]:
    """The rows of ``key/reference.csv`` (:data:`REFERENCE_COLUMNS`)."""
    path = Path(path)
    table = read_table(path, error=BlindError, what="reference key", written_safe=True)
    if table.header != REFERENCE_COLUMNS:
        raise BlindError(f"{path}: columns must be {','.join(REFERENCE_COLUMNS)}; give the "
                         "reference.csv of the set's key folder")
    return [ReferenceRow(*row) for row in table.rows]


# --------------------------------------------------------------------------- writing a set


def default_set_id(study: Study, out_dir: str | Path, today: date | None = None) -> str:
    """``<study id>-<YYYYMMDD>`` in lower case, with ``-2``, ``-3``, … when that set exists.

    >>> from assess.study import parse_study, TEMPLATE
    >>> default_set_id(parse_study(TEMPLATE), "/nonexistent", date(2026, 11, 25))
    'nct06217627-20261125'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", study.id.lower()).strip("-") or "set"
    base = f"{slug}-{(today or date.today()).strftime('%Y%m%d')}"
    out_dir = Path(out_dir)
    candidate, n = base, 1
    while (out_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _check_set_id(set_id: str) -> None:
    if not NAME_RE.match(set_id) or len(set_id) > 64:
        raise BlindError(f"set id {set_id!r}: use letters, digits and dashes (at most 64), "
                         "e.g. nct06217627-20261125")


def _check_out_dir(out_dir: Path) -> None:
    """Refuse an ``--out`` inside a set's rater folder (the new key would travel to the rater with
    it) or key folder."""
    for folder in (out_dir.resolve(), *out_dir.resolve().parents):
        if (folder / "set.json").is_file() and (folder / "worklists").is_dir():
            raise BlindError(f"{out_dir}: is inside the rater folder {folder} of a set, and the new "
                             "set's key would be copied to the rater with it; give --out a folder "
                             "outside any set, e.g. assignments")
        if (folder / "key.csv").is_file() and (folder / "access.csv").is_file():
            raise BlindError(f"{out_dir}: is inside the key folder {folder} of a set; give --out a "
                             "folder outside any set, e.g. assignments")


def _spec_for(study: Study, photos: Sequence[Photo], region: str):
    """The region's Spec: its canvas upright where most of its photos are, and its full copies
    :func:`full_long_edge` long."""
    from .deid import Spec

    mine = [p for p in photos if p.region == region]
    portrait = sum(p.portrait for p in mine) > len(mine) / 2
    nm = study.normalize
    return replace(Spec.from_normalize(nm, portrait), long_edge=full_long_edge(study, mine, region, portrait),
                   decode_long_edge=nm.long_edge)


def full_long_edge(study: Study, photos: Sequence[Photo], region: str, portrait: bool) -> int:
    """Long edge of a region's full copies: ``[regions.<name>] full_long_edge`` when given, else
    the largest that every photo of the region reaches without being enlarged
    (:func:`assess.deid.largest_long_edge`), at most ``normalize.long_edge`` and at least
    ``normalize.display_long_edge``. So no photo is blown up, and all copies of a region have one
    size whatever camera took them."""
    from .deid import largest_long_edge

    given = study.regions[region].full_long_edge if region in study.regions else None
    nm = study.normalize
    if given is not None:
        return given
    reach = [largest_long_edge((p.width, p.height), nm.aspect, nm.fit, portrait)
             for p in photos if p.region == region and p.width > 0 and p.height > 0]
    return max(nm.display_long_edge, min([nm.long_edge, *reach]))


def _references(study: Study, regions: Sequence[str]) -> dict[str, tuple[str, dict[int, Path]]]:
    """scale -> (region whose spec is used, value -> reference photo) for the regions in the set."""
    out: dict[str, tuple[str, dict[int, Path]]] = {}
    folders: dict[str, Path] = {}
    for region in regions:
        folder = study.regions[region].references
        if folder is None:
            continue
        scale = study.scale_for(region)
        if scale.id in folders and folders[scale.id].resolve() != folder.resolve():
            raise BlindError(f"regions.{region}.references: scale {scale.id} already has reference "
                             f"photos from {folders[scale.id]}; regions rated on one scale share one "
                             "references folder")
        folders[scale.id] = folder
        if not folder.is_dir():
            raise BlindError(f"regions.{region}.references: {folder} is not a folder; give a folder "
                             "with one photo per level named <value>.jpg")
        found: dict[int, Path] = {}
        for entry in sorted(folder.iterdir()):
            if not entry.is_file() or entry.name.startswith("."):
                continue
            if entry.suffix.lower() not in EXTENSIONS:
                continue
            try:
                value = int(entry.stem)
            except ValueError:
                raise BlindError(f"{entry}: a reference photo must be named after its level, e.g. "
                                 f"{scale.values[0]}{entry.suffix}") from None
            if value not in scale.values:
                raise BlindError(f"{entry}: {value} is not a level of {scale.id} "
                                 f"({', '.join(map(str, scale.values))})")
            if value in found:
                raise BlindError(f"{entry}: level {value} has two reference photos "
                                 f"({found[value].name}, {entry.name}); keep one")
            found[value] = entry
        if found:
            out[scale.id] = (region, found)
    return out


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A key-folder CSV; every cell spreadsheet-safe (the readers undo it: ``written_safe``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([spreadsheet_safe(v) for v in row] for row in rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _reference_plan(study: Study, the_plan: Plan, seed: int, warnings: list[str]):
    """The study's reference photos and the codes and training worklists built from them:
    ``(refs, rows, sources, training)`` (see :func:`_training_plan`)."""
    refs = study_reference(study)
    rule = study.panel.qualification
    if rule is not None and not by_use(refs, "training"):
        raise BlindError(f"{study.path or 'study.toml'}: [qualification] needs training photos: "
                         "name a CSV in [reference] photos with rows of use = training")
    if rule is not None and study.blinding.presentation != "single":
        raise BlindError(f"{study.path or 'study.toml'}: [qualification]: training worklists are "
                         "built for presentation = \"single\" only; remove [qualification] or "
                         "rate single photos")
    if rule is None and by_use(refs, "training"):
        warnings.append(f"{study.reference}: {len(by_use(refs, 'training'))} training photo(s) are "
                        "not used: the study has no [qualification] section")
    taken = {c for r in the_plan.rows for c in (r.code, r.pair) if c} | {
        it.item for it in the_plan.items}
    rows, sources, training = _training_plan(study, refs, seed, taken)
    return refs, rows, sources, training


def _calibration_plan(study: Study, refs: Sequence[ReferencePhoto], the_plan: Plan, seed: int,
                      training_rows: Sequence[ReferenceRow], warnings: list[str]) -> cal_.Placement:
    """The hidden calibration photos of the live worklists (:mod:`assess.calibration`): one code
    per showing, drawn from the same pool as every other code (generator ``[seed, 10]``), shown
    to every rater, each rater at places of their own."""
    rule = study.panel.calibration
    pool = [i for i, r in enumerate(refs) if r.use == "calibration"]
    where = study.path or "study.toml"
    if rule is None:
        if pool:
            warnings.append(f"{study.reference}: {len(pool)} calibration photo(s) are not used: "
                            "the study has no [calibration] section")
        return cal_.Placement()
    if not pool:
        raise BlindError(f"{where}: [calibration] needs calibration photos: name a CSV in "
                         "[reference] photos with rows of use = calibration")
    if study.blinding.presentation != "single":
        raise BlindError(f"{where}: [calibration]: calibration photos are hidden among single "
                         "photos only (presentation = \"single\"); remove [calibration] or rate "
                         "single photos")
    n = len(next(iter(the_plan.orders.values())))
    m = cal_.count(n, rule.rate)
    if m > len(pool):
        warnings.append(f"{study.reference}: {len(pool)} calibration photo(s) for {m} calibration "
                        "items a worklist: some are shown under more than one code (disguised)")
    taken = ({c for r in the_plan.rows for c in (r.code, r.pair) if c}
             | {it.item for it in the_plan.items} | {r.code for r in training_rows})
    rng = np.random.default_rng([seed, 10])
    chosen = [pool[int(k)] for k in rng.permutation(len(pool))]
    rows, sources = reference_rows(refs, [(chosen[j % len(chosen)], "", "") for j in range(m)],
                                   rng, taken)
    try:
        places = cal_.place(study.blinding.raters, n, m, rule.block, seed)
    except cal_.CalibrationError as exc:
        raise BlindError(f"{where}: {exc}") from None
    return cal_.Placement([reference_item(study, r) for r in rows], rows, sources, places,
                          rule.block)


def _refuse_unbuilt(study: Study) -> None:
    """Refuse, before any photo is read, a panel section that cannot be built as declared."""
    if study.panel.qualification is not None and study.reference is None:
        raise BlindError(f"{study.path or 'study.toml'}: [qualification] needs training photos: "
                         "name a CSV in [reference] photos with rows of use = training")


def _panel_json(study: Study, key: Path) -> dict:
    """The panel rules for ``set.json``; the adjudicator's access code goes to
    ``key/adjudicator.csv``, its hash beside the rules (``panel.adjudication.access``)."""
    data = panel.rules_json(study.panel)
    who = study.panel.adjudication.adjudicator if study.panel.adjudication else None
    if who:
        code, salt = _access_code(), secrets.token_hex(16)
        _write_csv(key / "adjudicator.csv", ("adjudicator", "access_code"), [(who, code)])
        data["adjudication"]["access"] = {"salt": salt, "hash": access_hash(code, salt)}
    return data


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _showings(the_plan: Plan) -> dict[int, list[str]]:
    """Photo index -> the codes it is shown under: first showings first, then in code order.

    The first code gets the photo's plain copy, every further one a disguised copy
    (:func:`assess.deid.disguise`).
    """
    shown: dict[int, list[KeyRow]] = defaultdict(list)
    for r, src in zip(the_plan.rows, the_plan.sources):
        shown[src].append(r)
    return {src: [r.code for r in sorted(rs, key=lambda r: (r.repeat_of != "", r.code))]
            for src, rs in shown.items()}


def _deid_jobs(inventory: Inventory, used: list[int], specs: dict, shown_as: dict[int, list[str]],
               work: Path, seed: int) -> list[tuple]:
    """The :func:`assess.deid.prepare_files` job of each photo in the set: its plain copy into
    ``work/<n>.full.jpg`` and ``work/<n>.display.jpg``, and a disguised copy ``<n>-<k>`` for each
    further code it is shown under, drawn from generator ``[seed, 6]``."""
    variant_seeds = np.random.default_rng([seed, 6])
    return [(inventory.source(inventory.photos[i]), work / f"{n}.full.jpg", work / f"{n}.display.jpg",
             specs[inventory.photos[i].region],
             tuple((work / f"{n}-{k}.full.jpg", work / f"{n}-{k}.display.jpg",
                    int(variant_seeds.integers(2**62))) for k in range(1, len(shown_as[i]))),
             inventory.photos[i].frame)
            for n, i in enumerate(used)]


def _place_images(the_plan: Plan, shown_as: dict[int, list[str]], staged: dict[int, int], work: Path,
                  rater: Path, extra: Sequence[tuple[str, str, str]] = (),
                  extra_sha: dict[str, str] | None = None) -> list[KeyRow]:
    """Move each code's staged files into ``rater/images`` in code order, pad every file of a kind
    in a region to one size (:func:`assess.deid.equalize_sizes`) and return the key rows with the
    sha256 of each code's full copy as written. Removes ``work``.

    ``extra``: further codes ``(code, region, stem)`` (the reference photos), moved and padded
    with the trial photos of their region; their sha256 go to ``extra_sha``."""
    from .deid import equalize_sizes

    copy_of = {code: (src, k) for src, codes in shown_as.items() for k, code in enumerate(codes)}
    moves = [(r.code, r.region, f"{staged[copy_of[r.code][0]]}" if copy_of[r.code][1] == 0
              else f"{staged[copy_of[r.code][0]]}-{copy_of[r.code][1]}") for r in the_plan.rows]
    by_group: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for code, region, stem in sorted([*moves, *extra]):
        for kind in ("full", "display"):
            final = rater / "images" / kind / f"{code}.jpg"
            os.replace(work / f"{stem}.{kind}.jpg", final)
            by_group[(kind, region)].append(final)
    shutil.rmtree(work)
    sha_of: dict[Path, str] = {}
    for group in by_group.values():
        sha_of.update(equalize_sizes(group))
    if extra_sha is not None:
        extra_sha.update({code: sha_of[rater / "images" / "full" / f"{code}.jpg"]
                          for code, _, _ in extra})
    return [replace(r, blinded_sha256=sha_of[rater / "images" / "full" / f"{r.code}.jpg"])
            for r in the_plan.rows]


TEXT_FILE = "text.csv"
"""``key/text.csv``: the text found in the photos of a set, what was done about it and why."""

TEXT_COLUMNS = ("file", "code", "box", "text", "confidence", "action", "reason")
"""``box`` is ``left top right bottom`` in the full copy's pixels; ``action`` is ``masked`` or
``allowed`` (with the study's ``reason``)."""

TEXT_SHEET = "text-found.jpg"
"""``key/text-found.jpg``: the rater copies of the photos in which text was found, outlined."""


def _text_action(study: Study, name: str) -> str:
    """What deid does about text in photo ``name``: ``off``, ``find`` (refused or allowed) or ``mask``."""
    mode = study.pixels.text
    if mode == "off":
        return "off"
    if study.pixels.text_allowed(name) is not None:
        return "find"
    return "mask" if mode == "mask" else "find"


def _with_text(jobs: Sequence[tuple], names: Sequence[str], study: Study) -> list[tuple]:
    """Each :func:`assess.deid.prepare_file` job with its text action (:func:`_text_action`).

    A job of :func:`_normalized_jobs` keeps its gains and backdrop colour: ``(src, full, display,
    spec, variants, frame, gains, backdrop)`` becomes ``(src, full, display, spec, variants, frame,
    text, gains, backdrop)``.
    """
    out = []
    for job, name in zip(jobs, names):
        job = tuple(job)
        rest = (job[4] if len(job) > 4 else (), job[5] if len(job) > 5 else None)
        gains = job[6] if len(job) > 6 else None
        backdrop = job[7] if len(job) > 7 else None
        out.append(job[:4] + rest + (_text_action(study, name), gains, backdrop))
    return out


def _where(box: Sequence[int], size: tuple[int, int]) -> str:
    """``"lower right"``-style words for where a box lies on a canvas of ``size``."""
    cx, cy = (box[0] + box[2]) / 2 / size[0], (box[1] + box[3]) / 2 / size[1]
    row = "upper" if cy < 1 / 3 else "lower" if cy > 2 / 3 else "middle"
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    return "centre" if (row, col) == ("middle", "centre") else f"{row} {col}"


def text_records(study: Study, photos: Sequence[tuple[str, Sequence[str], object]]
                 ) -> tuple[list[list[str]], list[tuple[str, object]]]:
    """Split what the text search found into rows of ``key/text.csv`` and refusals.

    ``photos``: ``(file name, codes, deid Result)`` of every photo sent to raters. A photo whose
    file is in ``[pixels] allow_text`` is recorded as ``allowed`` with its reason; under
    ``text = "mask"`` the others are recorded as ``masked``; under ``"refuse"`` they are returned
    as refusals ``(file name, Result)``.
    """
    rows, refused = [], []
    for name, codes, result in photos:
        if not result.text:
            continue
        reason = study.pixels.text_allowed(name)
        if reason is None and study.pixels.text != "mask":
            refused.append((name, result))
            continue
        action = "allowed" if reason is not None else "masked"
        for code in codes:
            for f in result.text:
                rows.append([name, code, " ".join(str(v) for v in f.box), f.text,
                             f"{f.confidence:.0f}", action, reason or ""])
    return rows, refused


def text_refusal(images_dir: Path, refused: Sequence[tuple[str, object]]) -> BlindError:
    """The one error that names every photo showing text, where, what was read and what to do."""
    from .pixels.text import BESIDE

    lines = []
    for name, result in refused:
        where = "; ".join(f"{f.text!r} at {_where(f.box, result.size)} (box {' '.join(map(str, f.box))} "
                          f"of the {result.size[0]}x{result.size[1]} copy, confidence "
                          f"{f.confidence:.0f})" for f in result.text if f.text != BESIDE)
        lines.append(f"\n  {Path(images_dir) / name}: {where}")
    return BlindError(
        f"{len(refused)} photo(s) show text in the frame, which can unblind a rater; nothing was "
        f"written:{''.join(lines)}\nFor each photo: retake or crop it without the text; or set "
        "[pixels] text = \"mask\" in study.toml to cover the text in the blinded copies (recorded "
        "in key/text.csv); or, if the text is harmless, name the file with the reason under [pixels] "
        "allow_text = {\"<file>\" = \"<reason>\"}")


def _text_found(names: Sequence[str], trial_codes: Sequence[Sequence[str]],
                ref_moves: Sequence[tuple[str, str, str]], scale_names: Sequence[str],
                scale_paths: Sequence[str], results: Sequence, n_trial: int, n_photos: int
                ) -> list[tuple[str, Sequence[str], object]]:
    """``(file name, codes, deid Result)`` of every photo sent to raters, for :func:`text_records`:
    the trial photos (``names[:n_trial]``), the reference photos (``names[n_trial:]``, their codes
    from ``ref_moves``) and each scale's level references (named by their source, shown under their
    path in the rater folder), in the order of ``results``."""
    ref_codes: dict[int, list[str]] = defaultdict(list)
    for code, _, stem in ref_moves:
        ref_codes[int(stem[3:].split("-")[0])].append(code)
    return ([(names[n], trial_codes[n], r) for n, r in enumerate(results[:n_trial])]
            + [(names[n_trial + n], ref_codes[n], r)
               for n, r in enumerate(results[n_trial:n_photos])]
            + [(name, [rel], r) for name, rel, r in zip(scale_names, scale_paths,
                                                        results[n_photos:])])


def _text_sheet(key: Path, rater: Path, found: Sequence[tuple[str, object]]) -> None:
    """Write ``key/`` :data:`TEXT_SHEET`: each code's rater copy with what was found outlined."""
    from .deid import render_contact_sheet

    tiles, outlines = [], {}
    for code, result in sorted(found, key=lambda cr: cr[0]):
        w, h = result.size
        path = rater / "images" / "display" / f"{code}.jpg"
        if not path.is_file():
            path = rater / code  # a scale's reference photo: its path in the rater folder
        tiles.append((code, path))
        outlines[code] = [(f.box[0] / w, f.box[1] / h, f.box[2] / w, f.box[3] / h)
                          for f in result.text]
    if tiles:
        render_contact_sheet(tiles, key / TEXT_SHEET, columns=4, tile=360, outlines=outlines)


def _normalized_jobs(jobs: list[tuple], regions: Sequence[str], participants: Sequence[str],
                     pool, to: str = "backdrop") -> list[tuple]:
    """``[pixels] normalize``: each trial photo's job with the gains that match its white balance
    and exposure to its region's reference (:mod:`assess.pixels.visible`).

    A first, cheap pass measures every photo as it will be shown, decoded for a canvas of
    :data:`assess.deid.GAINS_EDGE` pixels (:func:`assess.deid.look_files`); the region's reference
    is the median of its photos. A photo whose subject mask is reliable (in a region where most
    are) gets its backdrop painted in the region's backdrop colour
    (:func:`assess.pixels.visible.backdrop_colour`), and gains that match its skin to the region's
    (``to = "subject"``, :func:`assess.pixels.visible.subject_reference`) or its backdrop's,
    moved towards the participant's own skin colour over their visits by at most
    :data:`assess.pixels.visible.TRIM` (``"backdrop"``: the skin's colour kept); any other photo
    gets the gains that match its backdrop or whole frame and keeps its backdrop. The pixel
    pipeline applies both before encoding. A photo that cannot be decoded gets neither (the
    pipeline refuses it). Reference and calibration photos are left as they are.
    """
    from . import deid
    from .pixels import visible

    looks = deid.look_files([(job[0], job[3], job[5]) for job in jobs], pool)
    by_region: dict[str, list] = defaultdict(list)
    for region, look in zip(regions, looks):
        if look is not None:
            by_region[region].append(look)
    refs = {r: visible.reference(ls) for r, ls in by_region.items()}
    backdrops = {r: visible.backdrop_colour(ls) for r, ls in by_region.items()}
    # the skin's reference: the region's ("subject"), or each participant's own in the region
    # over their visits ("backdrop")
    keys = [(r, None if to == "subject" else p) for r, p in zip(regions, participants)]
    skins: dict[tuple, list] = defaultdict(list)
    for key, look in zip(keys, looks):
        if look is not None:
            skins[key].append(look)
    skin = {key: visible.subject_reference(ls, painted=backdrops[key[0]] is not None)
            for key, ls in skins.items()}
    trim = None if to == "subject" else visible.TRIM
    out = []
    for job, region, look, key in zip(jobs, regions, looks, keys):
        paint = backdrops[region] if look is not None and look.reliable else None
        g = None if look is None else visible.gains(look, *refs[region],
                                                    skin.get(key) if paint else None, trim)
        out.append((*job[:6], g, paint))
    return out


def _unpainted(names: Sequence[str], results: Sequence) -> list[str]:
    """The warning for ``[pixels] normalize`` photos whose backdrop was left as it is (no reliable
    subject mask, or too few in their region): they got white balance and exposure only."""
    left = [name for name, r in zip(names, results) if not r.neutralized]
    if not left:
        return []
    more = f" and {len(left) - 3} more" if len(left) > 3 else ""
    return [f"[pixels] normalize: the backdrop of {len(left)} of {len(names)} photo(s) was left as "
            f"it is, their subject mask not reliable (e.g. {', '.join(left[:3])}{more}); they "
            "got white balance and exposure only"]


def _visible_table(rater: Path, key: Path, rows: Sequence[KeyRow]) -> tuple[dict, list]:
    """Measure every display copy, write the threat table ``key/visible.csv`` (sealed with the
    key) and return the looks by code and the table."""
    from .audit.visible import TABLE_FILE, measure_set, threats, write_table

    looks = measure_set(rater, [r.code for r in rows])
    table = threats([{"code": r.code, "timepoint": r.timepoint, "region": r.region,
                      "repeat_of": r.repeat_of} for r in rows], looks)
    write_table(key / TABLE_FILE, table)
    return looks, table


def _seal_rater_folder(rater_dir: Path) -> None:
    """Fixed permissions and the fixed mtime on every file and folder (deepest first)."""
    for dirpath, dirnames, filenames in os.walk(rater_dir, topdown=False):
        for name in filenames:
            p = os.path.join(dirpath, name)
            os.chmod(p, FILE_MODE)
            os.utime(p, (FIXED_MTIME, FIXED_MTIME))
        os.chmod(dirpath, DIR_MODE)
        os.utime(dirpath, (FIXED_MTIME, FIXED_MTIME))


def _write_failed(exc: BaseException, out_dir: Path, tmp: Path | None) -> BlindError:
    """The error for a set that could not be written or moved into place (full disk, …)."""
    import errno

    from .deid import OutputError

    if isinstance(exc, OutputError):
        number, reason = exc.errno, exc.reason
    else:
        number, reason = getattr(exc, "errno", None), getattr(exc, "strerror", None) or str(exc)
    if number in (errno.ENOSPC, errno.EDQUOT):
        advice = "free space there, or give --out a folder on another disk, and run it again"
    elif number in (errno.EROFS, errno.EACCES, errno.EPERM):
        advice = "give --out a folder you can write to"
    else:
        advice = "fix that and run it again"
    left = (f"; the unfinished folder {tmp} could not be removed: delete it"
            if tmp is not None and tmp.exists() else "; nothing was left behind")
    return BlindError(f"{out_dir}: the set could not be written ({reason}){left}; {advice}")


def _raise_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into ``SystemExit`` while a set is built, so that the half-built folder is
    removed as on Ctrl+C; returns the function that restores the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except (ValueError, OSError):  # pragma: no cover - no signals here
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)


def randomize(
    study: Study | str | Path,
    images_dir: str | Path,
    out_dir: str | Path,
    set_id: str | None = None,
    seed: int | None = None,
    manifest: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    inventory: Inventory | None = None,
    workers: int | None = None,
    today: date | None = None,
    announce: Callable[[Inventory], None] | None = None,
    signing_key: SigningKey | None = None,
) -> BlindedSet:
    """Build a blinded set ``<out_dir>/<set_id>/`` with ``rater/`` and ``key/`` (docs/formats.md).

    Parameters
    ----------
    study
        The study (or the path of its ``study.toml``).
    images_dir
        The raw photos; read, never changed.
    out_dir
        Where sets live (``assignments``); created if needed.
    set_id
        Name of the set; default ``<study id>-<YYYYMMDD>`` (``-2``, ``-3`` … when taken). An
        existing set is refused.
    seed
        Overrides the study's ``blinding.seed``; when neither is given a 128-bit seed is drawn.
        Only ``key/seed.txt`` keeps it.
    manifest
        Optional manifest CSV instead of file names (see :func:`assess.ingest.discover`).
    progress
        Called as ``progress(done, total)`` while photos are de-identified (for a progress bar).
    inventory
        The result of :func:`assess.ingest.discover` when the caller has it already (with
        ``decode=False`` it reads headers only: the pixel pipeline decodes every photo anyway and
        the photos that fail there are refused as :func:`assess.ingest.discover` would refuse
        them, together with any photo whose pixels are in two slots).
    workers
        Processes for de-identification (default: every core). They are started first, so that
        they are ready when the photos have been found and checked.
    announce
        Called with the inventory once the photos are found and checked, before anything is
        written (the command prints the counts per region and timepoint with it).
    signing_key
        The coordinator's key (:func:`assess.seal.load_signing_key`): it signs ``key/seal.json``,
        the sha256 of every file of both folders. Without it the seal is written unsigned.

    Raises
    ------
    IngestError, DeidError, BlindError
        naming the file or setting to fix; nothing is left under ``<out_dir>/<set_id>``.
    """
    from . import deid

    if not isinstance(study, Study):
        study = load_study(study)
    _refuse_unbuilt(study)
    # ingest's and the audit's reading threads would each keep a C heap of 10-15 MB for the whole
    # run, beside the workers; in one heap it is returned before the batch (prepare_files trims)
    deid.share_one_heap()
    restore = _raise_on_sigterm()
    try:
        with deid.Workers(workers, text=study.pixels.text != "off") as pool:
            if inventory is None:
                inventory = discover(images_dir, study, manifest, decode=False)
            if announce is not None:
                announce(inventory)
            return _build(study, inventory, Path(out_dir), set_id, seed, progress, pool, today,
                          signing_key)
    finally:
        restore()


def _build(study: Study, inventory: Inventory, out_dir: Path, set_id: str | None, seed: int | None,
           progress: Callable[[int, int], None] | None, pool, today: date | None,
           signing_key: SigningKey | None = None) -> BlindedSet:
    """:func:`randomize` once the photos are found and the workers started."""
    from . import deid
    from .audit import audit_report

    warnings = list(inventory.warnings)
    seed_given = seed if seed is not None else study.blinding.seed
    if seed_given is not None:
        if isinstance(seed_given, bool) or not isinstance(seed_given, int) or seed_given < 0:
            raise BlindError(f"seed: must be a whole number >= 0, not {seed_given!r}")
        seed_value = seed_given
        if seed_value < SHORT_SEED:
            warnings.append(f"the seed {seed_value} is short: whoever knows it and the photo names "
                            "can rebuild the key; keep it secret, or leave it out to draw a long one")
    else:
        seed_value = secrets.randbits(128)

    the_plan = plan(study, inventory.photos, seed_value)
    warnings += the_plan.warnings
    if signing_key is not None:
        warnings += seal.key_warnings(signing_key, out_dir)

    if set_id is None:
        set_id = default_set_id(study, out_dir, today)
    _check_set_id(set_id)
    _check_out_dir(out_dir)
    target = out_dir / set_id
    if target.exists() or target.is_symlink():
        raise BlindError(f"{target}: a set with this id exists already and is never overwritten; "
                         "choose another --set-id")
    refs, ref_rows, ref_sources, training = _reference_plan(study, the_plan, seed_value, warnings)
    placement = _calibration_plan(study, refs, the_plan, seed_value, ref_rows, warnings)
    all_rows, all_sources = ref_rows + placement.rows, ref_sources + placement.sources
    references = _references(study, sorted({it.region for it in the_plan.items}))
    used = sorted(set(the_plan.sources))  # photo indices in the set
    regions = [r for r in study.regions if any(inventory.photos[i].region == r for i in used)]
    specs = {r: _spec_for(study, [inventory.photos[i] for i in used], r) for r in regions}

    out_created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BlindError(f"{out_dir}: is a file, not a folder; give --out a folder for the sets"
                         ) from None
    except OSError as exc:
        raise BlindError(f"{out_dir}: cannot make the folder ({exc.strerror}); give --out a folder "
                         "you can write to") from None
    stale = sorted(p.name for p in out_dir.glob(".*.partial-*"))
    if stale:
        warnings.append(f"{len(stale)} unfinished set folder(s) from an interrupted run in {out_dir}: "
                        f"{', '.join(stale[:3])}; delete them when no other randomize is running")
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{set_id}.partial-", dir=out_dir))
        rater, key, work = tmp / "rater", tmp / "key", tmp / "work"
        for d in (rater / "images" / "full", rater / "images" / "display", rater / "worklists",
                  key, work):
            d.mkdir(parents=True)

        # 1. de-identify every photo once, into the work folder; a photo shown under more codes
        #    than one (a disguised repeat, a baseline in several pairs) gets a disguised copy for
        #    each further code, with other bytes and no visible change
        shown_as = _showings(the_plan)
        jobs = _deid_jobs(inventory, used, specs, shown_as, work, seed_value)
        if study.pixels.normalize:
            jobs = _normalized_jobs(jobs, [inventory.photos[i].region for i in used],
                                    [inventory.photos[i].participant for i in used], pool,
                                    study.pixels.normalize_to)
        ref_photo_jobs, ref_moves = reference_jobs(refs, all_rows, all_sources, specs, study, work,
                                                   seed_value)
        jobs_trial = len(jobs)
        jobs = jobs + ref_photo_jobs
        names = ([inventory.photos[i].path.as_posix() for i in used]
                 + [refs[i].file for i in sorted(dict.fromkeys(all_sources))])
        jobs = _with_text(jobs, names, study)
        ref_jobs = []
        ref_paths: dict[str, dict[str, str]] = {}
        for scale_id, (region, files) in sorted(references.items()):
            (rater / "references" / scale_id).mkdir(parents=True)
            spec = specs.get(region) or _spec_for(study, [], region)
            for value, src in sorted(files.items()):
                rel = f"references/{scale_id}/{value}.jpg"
                ref_jobs.append((src, work / f"ref-{scale_id}-{value}.full.jpg", rater / rel, spec))
                ref_paths.setdefault(scale_id, {})[str(value)] = rel
        total, done = len(jobs) + len(ref_jobs), [0]

        def advance(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], total)

        ref_names = [str(job[0]) for job in ref_jobs]
        ref_jobs = _with_text(ref_jobs, ref_names, study)
        if study.pixels.text != "off":
            from .pixels.text import TextEngineError, check_engine

            try:
                check_engine()
            except TextEngineError as exc:
                raise BlindError(str(exc)) from None
        if progress is not None:
            progress(0, total)
        try:
            results = deid.prepare_files(jobs + ref_jobs, progress=advance, pool=pool)
        except deid.DeidError as exc:
            photo_failures = {i: why for i, why in exc.failures.items() if i < jobs_trial}
            if not photo_failures:
                raise
            # photos that cannot be decoded are refused as ingest refuses any unusable photo,
            # together with the same pixels in two slots among the others
            done = exc.results[:jobs_trial]
            check_decoded(inventory.images_dir, [inventory.photos[i] for i in used],
                          [r.pixel_sha256 if r is not None else None for r in done], photo_failures,
                          fingerprints=[r.fingerprint if r is not None else None for r in done],
                          study=study)
            raise  # pragma: no cover - check_decoded raises
        finally:
            pool.close()  # the workers' memory is free for the rest
        photo_results = results[:jobs_trial]
        if study.pixels.normalize:
            warnings += _unpainted(names[:jobs_trial], photo_results)
        warnings += check_decoded(inventory.images_dir, [inventory.photos[i] for i in used],
                                  [r.pixel_sha256 for r in photo_results],
                                  fingerprints=[r.fingerprint for r in photo_results], study=study)
        staged = {i: n for n, i in enumerate(used)}
        trial_pixels = {r.pixel_sha256: inventory.photos[i].path.as_posix()
                        for i, r in zip(used, photo_results)}
        first_use = sorted(dict.fromkeys(all_sources))
        check_reference_pixels(refs, {i: r.pixel_sha256 for i, r in
                                      zip(first_use, results[jobs_trial:len(jobs)])},
                               trial_pixels, study.reference)

        text_found = _text_found(names, [shown_as[i] for i in used], ref_moves, ref_names,
                                 [p for paths in ref_paths.values() for p in paths.values()],
                                 results, jobs_trial, len(jobs))
        text_rows, refused = text_records(study, text_found)
        if refused:
            raise text_refusal(inventory.images_dir, refused)

        # 2. one file per code, moved in code order (a folder's entry order says nothing), then
        #    every file of a kind in a region padded to one size
        ref_sha: dict[str, str] = {}
        rows = _place_images(the_plan, shown_as, staged, work, rater, ref_moves, ref_sha)
        ref_rows = [replace(r, blinded_sha256=ref_sha[r.code]) for r in ref_rows]
        all_rows = [replace(r, blinded_sha256=ref_sha[r.code]) for r in all_rows]

        # 3. the key
        order_tp = {t: n for n, t in enumerate(study.timepoints)}
        rows.sort(key=lambda r: (r.participant, r.region, r.view, r.repeat_of != "", r.pair,
                                 order_tp[r.timepoint], r.code))
        _write_csv(key / "key.csv", KEY_COLUMNS, [[getattr(r, c) for c in KEY_COLUMNS] for r in rows])
        (key / "seed.txt").write_text(f"{seed_value}\n", encoding="utf-8")
        # the design the set was built from: the scorer reads the timepoint order from it
        (key / "study.toml").write_text(study.text, encoding="utf-8")
        access = {r: _access_code() for r in study.blinding.raters}
        _write_csv(key / "access.csv", ("rater", "access_code"), list(access.items()))
        if all_rows:
            _write_csv(key / "reference.csv", REFERENCE_COLUMNS,
                       [[getattr(r, c) for c in REFERENCE_COLUMNS]
                        for r in sorted(all_rows, key=lambda r: (r.use, r.rater, r.attempt, r.code))])
        if text_rows:  # what text was found where, and what was done about it
            _write_csv(key / TEXT_FILE, TEXT_COLUMNS, text_rows)
            _text_sheet(key, rater, [(code, r) for _, codes, r in text_found if r.text
                                     for code in codes])
        if placement.items:  # which code is a calibration photo where in whose worklist
            _write_csv(key / cal_.KEY_FILE, cal_.KEY_COLUMNS, placement.key_rows())
        key_sha256 = hashlib.sha256((key / "key.csv").read_bytes()).hexdigest()
        looks, visible = _visible_table(rater, key, rows)

        # 4. worklists and the sealed manifest
        for rater_id, order in the_plan.orders.items():
            _write_json(rater / "worklists" / f"{rater_id}.json", {
                "rater": rater_id, "set_id": set_id,
                "items": [it.to_json() for it in
                          placement.worklist(rater_id, [the_plan.items[i] for i in order])]})
        for (rater_id, n), items in sorted(training.items()):
            _write_json(rater / "worklists" / training_worklist_name(rater_id, n), {
                "rater": rater_id, "set_id": set_id, "attempt": n,
                "items": [it.to_json() for it in items]})
        raters_json = {}
        for rater_id, code in access.items():
            salt = secrets.token_hex(16)
            raters_json[rater_id] = {"salt": salt, "hash": access_hash(code, salt),
                                     "items": len(the_plan.orders[rater_id])
                                     + len(placement.items)}
        scale_ids = sorted({study.regions[r].scale for r in regions})
        manifest_json = {
            "format": 1,
            "set_id": set_id,
            "study_id": study.id,
            "title": study.title,
            "presentation": study.blinding.presentation,
            "tool_version": __version__,
            "created": (today or date.today()).isoformat(),
            "key_sha256": key_sha256,
            "scales": {s: study.scales[s].to_dict() for s in scale_ids},
            "regions": {r: study.regions[r].scale for r in regions},
            "counts": placement.rater_counts(the_plan.counts),
            "raters": raters_json,
            "references": ref_paths,
            "seal": seal.set_json_entry(signing_key),
            "rating": {"min_view_ms": study.rating.min_view_ms,
                       "session_hours": study.rating.session_hours},
            "panel": _panel_json(study, key),
        }
        training_json = _training_json(study, training, ref_rows)
        if training_json is not None:
            manifest_json["training"] = training_json
        _write_json(rater / "set.json", manifest_json)
        _seal_rater_folder(rater)
        for p in key.iterdir():
            os.chmod(p, KEY_FILE_MODE)
        os.chmod(key, KEY_DIR_MODE)
        seal.write_seal(rater, key, set_id, signing_key)  # last: it covers every file above

        # 5. audit, then move into place
        audit = audit_report(rater, key, p_values=False, looks=looks)
        findings = audit.findings
        if audit.notes:
            warnings.append(f"leak audit: {len(audit.notes)} note(s) on codes or worklist places "
                            "that differ between the timepoints by chance (AUC above 0.55, with too "
                            "few photos or too weak to call a leak); assess audit-set "
                            f"{target / 'rater'} --key {target / 'key'} lists them")
        if findings:
            lines = "".join(f"\n  {f.file}: {f.kind}: {f.message}" for f in findings[:30])
            more = f"\n  … and {len(findings) - 30} more" if len(findings) > 30 else ""
            raise BlindError(f"the leak audit of the new set found {len(findings)} problem(s); "
                             f"nothing was written:{lines}{more}")
        if target.exists() or target.is_symlink():
            raise BlindError(f"{target}: a set with this id appeared while this one was built; "
                             "it is left alone — choose another --set-id")
        os.chmod(tmp, DIR_MODE)
        os.rename(tmp, target)
    except BaseException as exc:
        # the workers finish the photo in hand first: one still writing into the folder after it
        # is removed would leave it (and so the output folder) behind
        pool.close(cancel=True)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if out_created:
            try:
                out_dir.rmdir()  # only if this run made it and nothing else is in it
            except OSError:
                pass
        if isinstance(exc, (OSError, deid.OutputError)):
            raise _write_failed(exc, out_dir, tmp) from None
        raise
    return BlindedSet(set_id, target, placement.coordinator_counts(the_plan.counts),
                      tuple(study.blinding.raters), access,
                      seed_value, warnings, signing_key.fingerprint if signing_key else None,
                      visible)
