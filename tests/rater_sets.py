"""Small blinded sets for the rater-side tests (the rating store, app, status and browser tests)."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

from assess.study import shipped_scales

ALPHABET = "ACDEFHJKMNPRTUVWXY3479"


def _code(rng: random.Random, used: set[str]) -> str:
    while True:
        code = "".join(rng.choice(ALPHABET) for _ in range(3)) + "-" + "".join(
            rng.choice(ALPHABET) for _ in range(4))
        if code not in used:
            used.add(code)
            return code


def build_rater_set(out: Path, raters=("derm1",), participants: int = 3, presentation: str = "single",
                    seed: int = 7, size=(96, 72)):
    """Write ``out/rater`` and ``out/key`` per docs/formats.md; return (rater_dir, key_dir, access)."""
    rng = random.Random(seed)
    rater_dir, key_dir = out / "rater", out / "key"
    for sub in ("images/full", "images/display", "worklists"):
        (rater_dir / sub).mkdir(parents=True)
    key_dir.mkdir(parents=True)
    regions = {"face": "wsrs", "hands": "merz-hand"}
    timepoints = ("baseline", "month12")
    used: set[str] = set()
    rows, photos = [], []
    for p in range(1, participants + 1):
        for region in regions:
            for tp in timepoints:
                code = _code(rng, used)
                img = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
                ImageDraw.Draw(img).ellipse((10, 10, size[0] - 10, size[1] - 10), fill=(200, 160, 140))
                img.save(rater_dir / "images/full" / f"{code}.jpg", quality=90)
                img.resize((size[0] // 2, size[1] // 2)).save(rater_dir / "images/display" / f"{code}.jpg")
                photo = {"code": code, "participant": f"P{p:02d}", "timepoint": tp, "region": region,
                         "view": "", "source_file": f"P{p:02d}_{tp}_{region}.jpg", "repeat_of": "",
                         "pair": "", "pair_side": ""}
                photos.append(photo)
                rows.append(photo)
    items = []
    if presentation == "pairs":
        for p in range(1, participants + 1):
            for region, scale in regions.items():
                two = [ph for ph in photos if ph["participant"] == f"P{p:02d}" and ph["region"] == region]
                rng.shuffle(two)
                pair = _code(rng, used)
                for side, ph in zip(("left", "right"), two):
                    ph["pair"], ph["pair_side"] = pair, side
                items.append({"item": pair, "kind": "pair", "scale": scale, "region": region,
                              "photos": [two[0]["code"], two[1]["code"]]})
    else:
        for ph in photos:
            items.append({"item": ph["code"], "kind": "single", "scale": regions[ph["region"]],
                          "region": ph["region"], "photos": [ph["code"]]})
    with open(key_dir / "key.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["code", "participant", "timepoint", "region", "view", "source_file",
                         "source_sha256", "blinded_sha256", "repeat_of", "pair", "pair_side"])
        for ph in rows:
            full = (rater_dir / "images/full" / f"{ph['code']}.jpg").read_bytes()
            writer.writerow([ph["code"], ph["participant"], ph["timepoint"], ph["region"], ph["view"],
                             ph["source_file"], "0" * 64, hashlib.sha256(full).hexdigest(),
                             ph["repeat_of"], ph["pair"], ph["pair_side"]])
    (key_dir / "seed.txt").write_text(f"{seed}\n")
    access, rater_entries = {}, {}
    set_id = "test-set"
    for rater in raters:
        code = "".join(rng.choice(ALPHABET) for _ in range(4)) + "-" + "".join(
            rng.choice(ALPHABET) for _ in range(4))
        salt = bytes(rng.randrange(256) for _ in range(16))
        access[rater] = code
        order = list(items)
        rng.shuffle(order)
        rater_entries[rater] = {"salt": salt.hex(), "hash": hashlib.pbkdf2_hmac(
            "sha256", code.encode(), salt, 200_000).hex(), "items": len(order)}
        (rater_dir / "worklists" / f"{rater}.json").write_text(json.dumps(
            {"rater": rater, "set_id": set_id, "items": order}, indent=1))
    with open(key_dir / "access.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["rater", "access_code"])
        writer.writerows(access.items())
    scales = shipped_scales()
    manifest = {
        "format": 1, "set_id": set_id, "study_id": "TEST-STUDY", "title": "Test", "presentation":
        presentation, "tool_version": "0.1.0", "created": "2026-01-01",
        "key_sha256": hashlib.sha256((key_dir / "key.csv").read_bytes()).hexdigest(),
        "scales": {s: scales[s].to_dict() for s in set(regions.values())}, "regions": regions,
        "counts": {"photos": len(photos), "repeats": 0, "items": len(items),
                   "pairs": len(items) if presentation == "pairs" else 0},
        "raters": rater_entries, "references": {},
    }
    (rater_dir / "set.json").write_text(json.dumps(manifest, indent=1))
    return rater_dir, key_dir, access
