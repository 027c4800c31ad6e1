"""Small blinded sets written per docs/formats.md, for the scorer's tests.

``make_set`` writes ``rater/set.json``, ``rater/worklists/<rater>.json`` and ``key/key.csv`` (sealed
with its sha256) for a design given in code, and returns the codes of every photo so a test can
write ratings with a known answer. Codes are drawn like the real ones (``XXX-XXXX`` over the
unambiguous alphabet) from a seeded generator.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from assess.study import shipped_scales

ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
KEY_HEADER = ["code", "participant", "timepoint", "region", "view", "source_file", "source_sha256",
              "blinded_sha256", "repeat_of", "pair", "pair_side"]


@dataclass
class FixtureSet:
    root: Path
    rater_dir: Path
    key_dir: Path
    set_id: str
    codes: dict = field(default_factory=dict)  # (participant, timepoint, region, view) -> code
    repeats: dict = field(default_factory=dict)  # repeat code -> first code
    pairs: dict = field(default_factory=dict)  # (participant, followup, region, view) -> pair info
    items: dict = field(default_factory=dict)  # rater -> [item codes]

    def code(self, participant, timepoint, region, view=""):
        return self.codes[(participant, timepoint, region, view)]

    def repeat_of(self, first_code):
        return next(r for r, f in self.repeats.items() if f == first_code)

    def reseal(self) -> None:
        """Write the key's current sha256 into set.json (to test checks behind the seal)."""
        meta_path = self.rater_dir / "set.json"
        meta = json.loads(meta_path.read_text())
        meta["key_sha256"] = hashlib.sha256((self.key_dir / "key.csv").read_bytes()).hexdigest()
        meta_path.write_text(json.dumps(meta, indent=2))


def _codes(rng: random.Random):
    seen = set()
    while True:
        c = "".join(rng.choice(ALPHABET) for _ in range(7))
        c = c[:3] + "-" + c[3:]
        if c not in seen:
            seen.add(c)
            yield c


def make_set(root: Path, *, participants=("P01", "P02", "P03"), regions=None,
             timepoints=("baseline", "month12"), raters=("derm1",), repeat=(),
             presentation="single", missing=(), set_id="TEST-20260101", study_id="NCT0000001",
             seed=1, views=None, scales=None) -> FixtureSet:
    """Write a set. ``repeat``: slots (participant, timepoint, region[, view]) shown again;
    ``missing``: slots without a photo; ``views``: region -> view names; ``scales``: a study's own
    scales (id -> Scale) besides the shipped ones."""
    regions = dict(regions or {"face": "wsrs"})
    views = dict(views or {})
    scales = {**shipped_scales(), **(scales or {})}
    rng = random.Random(seed)
    gen = _codes(rng)
    root = Path(root)
    rater_dir, key_dir = root / set_id / "rater", root / set_id / "key"
    (rater_dir / "worklists").mkdir(parents=True)
    key_dir.mkdir(parents=True)
    fx = FixtureSet(root / set_id, rater_dir, key_dir, set_id)
    key_rows = []
    missing = {tuple(m) + (("",) if len(m) == 3 else ()) for m in missing}
    repeat = [tuple(r) + (("",) if len(r) == 3 else ()) for r in repeat]
    items = []  # worklist items common to all raters
    for p in participants:
        for region in regions:
            for view in views.get(region, ("",)):
                slots = [(p, t, region, view) for t in timepoints if (p, t, region, view) not in missing]
                for slot in slots:
                    code = next(gen)
                    fx.codes[slot] = code
                    src = "_".join(x for x in slot if x) + ".jpg"
                    if presentation != "single":
                        continue  # pairs show fresh copies under their own codes (below)
                    key_rows.append({"code": code, "participant": p, "timepoint": slot[1],
                                     "region": region, "view": view, "source_file": src,
                                     "source_sha256": "0" * 64, "blinded_sha256": "1" * 64,
                                     "repeat_of": "", "pair": "", "pair_side": ""})
                if presentation == "single":
                    for slot in slots:
                        items.append({"item": fx.codes[slot], "kind": "single",
                                      "scale": regions[region], "region": region,
                                      "photos": [fx.codes[slot]]})
                else:
                    base = (p, timepoints[0], region, view)
                    for t in timepoints[1:]:
                        fu = (p, t, region, view)
                        if base not in fx.codes or fu not in fx.codes:
                            continue
                        pair = next(gen)
                        left_is_base = rng.random() < 0.5
                        # A pair shows fresh copies of both photos under their own codes.
                        lc, rc = next(gen), next(gen)
                        left, right = (base, fu) if left_is_base else (fu, base)
                        for c, slot, side in ((lc, left, "left"), (rc, right, "right")):
                            key_rows.append({"code": c, "participant": p, "timepoint": slot[1],
                                             "region": region, "view": view,
                                             "source_file": "_".join(x for x in slot if x) + ".jpg",
                                             "source_sha256": "0" * 64, "blinded_sha256": "1" * 64,
                                             "repeat_of": "", "pair": pair, "pair_side": side})
                        fx.pairs[(p, t, region, view)] = {"pair": pair, "left": lc, "right": rc,
                                                          "baseline_side": "left" if left_is_base
                                                          else "right"}
                        items.append({"item": pair, "kind": "pair", "scale": regions[region],
                                      "region": region, "photos": [lc, rc]})
    for slot in repeat:
        if presentation == "single":
            first = fx.codes[slot]
            code = next(gen)
            fx.repeats[code] = first
            row = next(r for r in key_rows if r["code"] == first)
            key_rows.append({**row, "code": code, "repeat_of": first})
            items.append({"item": code, "kind": "single", "scale": regions[slot[2]],
                          "region": slot[2], "photos": [code]})
        else:
            info = fx.pairs[slot]
            pair, lc, rc = next(gen), next(gen), next(gen)
            fx.repeats[pair] = info["pair"]
            for c, orig, side in ((lc, info["left"], "left"), (rc, info["right"], "right")):
                row = next(r for r in key_rows if r["code"] == orig)
                key_rows.append({**row, "code": c, "repeat_of": orig, "pair": pair,
                                 "pair_side": side})
            items.append({"item": pair, "kind": "pair", "scale": regions[slot[2]],
                          "region": slot[2], "photos": [lc, rc]})
    key_path = key_dir / "key.csv"
    rng.shuffle(key_rows)
    with key_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, KEY_HEADER, lineterminator="\n")
        w.writeheader()
        w.writerows(key_rows)
    (key_dir / "seed.txt").write_text(str(seed))
    rater_info = {}
    for r in raters:
        mine = list(items)
        rng.shuffle(mine)
        fx.items[r] = [it["item"] for it in mine]
        (rater_dir / "worklists" / f"{r}.json").write_text(json.dumps(
            {"rater": r, "set_id": set_id, "items": mine}, indent=1))
        rater_info[r] = {"salt": "00", "hash": "00", "items": len(mine)}
    used = sorted(set(regions.values()))
    meta = {
        "format": 1, "set_id": set_id, "study_id": study_id, "title": "Test study",
        "presentation": presentation, "tool_version": "0.1.0", "created": "2026-01-01",
        "key_sha256": hashlib.sha256(key_path.read_bytes()).hexdigest(),
        "scales": {s: scales[s].to_dict() for s in used},
        "regions": regions,
        "counts": {"photos": len(fx.codes), "repeats": len(fx.repeats), "items": len(items),
                   "pairs": len(fx.pairs)},
        "raters": rater_info,
        "references": {},
    }
    (rater_dir / "set.json").write_text(json.dumps(meta, indent=2))
    return fx


def write_ratings(path: Path, rows, columns=("rater", "code", "score")) -> Path:
    """Write a ratings CSV from dicts (or tuples in ``columns`` order)."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow([row.get(c, "") for c in columns] if isinstance(row, dict) else row)
    return Path(path)


def slot_of(fx: FixtureSet, code: str):
    """(participant, timepoint, region, view) of a single photo code (repeats: of the first)."""
    first = fx.repeats.get(code, code)
    return next(slot for slot, c in fx.codes.items() if c == first)


def rate_all(fx: FixtureSet, rater: str, score=lambda slot: 3, skip=()) -> list[dict]:
    """One rating row per item of the rater's worklist (single presentation)."""
    return [{"rater": rater, "code": code, "score": score(slot_of(fx, code))}
            for code in fx.items[rater] if code not in skip]


def write_db(path: Path, fx: FixtureSet, rows, lock=()) -> Path:
    """Write rating rows through assess.store (the rating app's own writer); lock raters."""
    from assess import store

    conn = store.connect(path)
    try:
        for row in rows:
            kwargs = {k: row[k] for k in ("score", "better", "first", "cannot_assess", "comment")
                      if row.get(k) not in (None, "")}
            if "score" in kwargs:
                kwargs["score"] = float(kwargs["score"])  # the store keeps whole ones whole
            store.record(conn, fx.set_id, row["rater"], row["code"], seconds=4.0, **kwargs)
        for rater in lock:
            store.lock(conn, fx.set_id, rater, fx.items[rater])
    finally:
        conn.close()
    return Path(path)
