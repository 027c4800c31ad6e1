"""File properties compared: fixed by design, randomized, from the pixels, content — the files
unlike the rest of their region, and the AUC of every property between timepoints."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

from .auc import _auc, small_sample, timepoint_auc
from .findings import (ADVICE, AUC_EXTREME_LIMIT, AUC_LIMIT, P_LIMIT, AuditReport, Finding,
                       PropertyAUC)
from .identifiers import CALIBRATION, _Key
from .jpeg import JpegWalk


def _property_checks(report: AuditReport, key: _Key | None, info: dict[str, dict],
                     padding: dict[str, float], p_values: bool) -> list[Finding]:
    """Files unlike the rest of their region, and (with the key) the AUC table; notes go to
    ``report.notes``, the AUC rows to ``report.aucs``; returns the findings."""
    positions, regions = _read_worklists(report.rater_dir)
    if key is not None:
        for row in key.rows:
            regions.setdefault(row["code"], row["region"])
    findings, notes = _uniformity(info, regions)
    report.notes.extend(notes)
    if key is not None:
        report.aucs, auc_findings, auc_notes = _compare_timepoints(report.rater_dir, key, info, padding,
                                                                   p_values, positions)
        findings += auc_findings
        report.notes.extend(auc_notes)
    return findings


def _read_worklists(rater_dir: Path) -> tuple[dict[str, dict[str, tuple[int, int]]], dict[str, str]]:
    """rater -> photo code -> (position of its item, index within the item); and code -> region."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    regions: dict[str, str] = {}
    for wl in sorted((rater_dir / "worklists").glob("*.json")):
        try:
            data = json.loads(wl.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        pos: dict[str, tuple[int, int]] = {}
        for k, item in enumerate(data.get("items", [])):
            if not isinstance(item, dict):
                continue
            for side, code in enumerate(item.get("photos", [])):
                pos[str(code)] = (k, side)
                if isinstance(item.get("region"), str):
                    regions.setdefault(str(code), item["region"])
        name = str(data.get("rater", wl.stem))
        if "attempt" in data:  # a training worklist: its own positions, never the live ones
            name = f"{name} (training {data['attempt']})"
        out[name] = pos
    return out, regions


def _padding(path: Path) -> float:
    from ..deid import padding_fraction

    try:
        return padding_fraction(path)
    except Exception:
        return -1.0


# fixed properties that every file of a kind in a region shares: (name, value from the file's info)
_UNIFORM = (
    ("width", lambda p: p["walk"].size[0]),
    ("height", lambda p: p["walk"].size[1]),
    ("file size", lambda p: p["size"]),
    ("quantization tables", lambda p: p["walk"].dqt),
    ("Huffman tables", lambda p: p["walk"].dht),
    ("chroma subsampling", lambda p: p["walk"].sampling),
    ("JPEG segment layout", lambda p: p["walk"].layout),
    ("permissions", lambda p: p["mode"]),
)


def _shown(value: object, name: str) -> str:
    if name == "file size":
        return f"{value} bytes"
    if name == "permissions" and isinstance(value, int):
        return oct(value)
    if isinstance(value, bytes):
        return f"tables of {len(value)} bytes (sha256 {hashlib.sha256(value).hexdigest()[:12]})"
    return str(value)


def _uniformity(info: dict[str, dict], regions: dict[str, str]) -> tuple[list[Finding], list[str]]:
    """Findings for files whose fixed property differs from the rest of their kind and region,
    and for image files of one kind with the same bytes (a repeat must not be a copy).

    A rater folder written before file sizes were made equal and repeats disguised (no file has
    fill bytes before its end marker) gets notes instead: its file sizes are then judged by their
    AUC alone, and its byte-identical repeats are named once.
    """
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel in sorted(info):
        parts = rel.split("/")
        if info[rel]["walk"].problems:  # a finding already; its layout and size differ anyway
            continue
        if len(parts) == 3 and parts[0] == "images" and parts[1] in ("full", "display"):
            code = parts[2].rsplit(".", 1)[0]
            if code in regions:
                groups[(parts[1], regions[code])].append(rel)
    padded = any(p["walk"].fill > 0 for p in info.values())
    findings: list[Finding] = []
    unequal: list[str] = []
    for (copy, region), rels in sorted(groups.items()):
        for name, get in _UNIFORM:
            values = {rel: get(info[rel]) for rel in rels}
            counts = Counter(values.values())
            if len(counts) < 2:
                continue
            if name == "file size" and not padded:
                unequal.append(f"{copy} copies of {region}")
                continue
            common, _ = counts.most_common(1)[0]
            odd = [rel for rel, v in values.items() if v != common]
            label = name if copy == "full" else f"display {name}"
            examples = ", ".join(f"{rel} ({_shown(values[rel], name)})" for rel in odd[:3])
            findings.append(Finding(odd[0], "uniform-property",
                                    f"{label}: {len(odd)} of the {len(rels)} {copy} copies of region "
                                    f"{region} differ from the others' {_shown(common, name)}: "
                                    f"{examples}{' …' if len(odd) > 3 else ''}; every file of a "
                                    f"region is written with one {name}, so these were changed "
                                    f"afterwards — {ADVICE['uniform-property']}"))
    notes = []
    same: dict[tuple[str, bytes], list[str]] = defaultdict(list)
    for (copy, _), rels in groups.items():
        for rel in rels:
            same[(copy, info[rel]["sha256"])].append(rel)
    twins = sorted(rels for rels in same.values() if len(rels) > 1)
    if twins and not padded:
        notes.append(f"{len(twins)} group(s) of byte-identical image files (e.g. "
                     f"{' and '.join(twins[0][:2])}): this rater folder was written before assess "
                     "gave a disguised repeat bytes of its own, so a duplicate finder pairs each "
                     "repeat with its first showing; build the set again with assess randomize "
                     "(the same --seed gives the same codes and worklists)")
    elif twins:
        for rels in twins:
            findings.append(Finding(rels[0], "duplicate",
                                    f"byte-identical to {', '.join(rels[1:4])}"
                                    f"{' …' if len(rels) > 4 else ''}: a checksum or duplicate "
                                    "finder pairs them (a repeat with its first showing); "
                                    f"{ADVICE['duplicate']}"))
    if unequal:
        notes.append(f"file sizes differ among the {', '.join(unequal)}: this rater folder was "
                     "written before assess made every file of a region one size, so file size is "
                     "judged only by how it separates the timepoints (with --key); build the set "
                     "again with assess randomize (the same --seed gives the same codes and "
                     "worklists)")
    return findings, notes


_FIXED_HINT = ("assess randomize writes every file of a region alike, so a file was changed after "
               "it — build the set again with assess randomize (the same --seed gives the same "
               "codes and worklists)")
_OLD_SIZE_HINT = ("this rater folder was written before assess made every file of a region one "
                  "size — build it again with assess randomize (the same --seed gives the same "
                  "codes and worklists)")
_HINTS = {
    "padding border": "the cameras had other aspect ratios — set fit = \"crop\" in [normalize] of "
                      "study.toml and randomize again",
    "randomized": "randomize again with another --seed (or without blinding.seed in study.toml)",
}


def _properties(key: _Key, info: dict[str, dict], padding: dict[str, float], positions: dict
                ) -> tuple[dict[str, dict[str, object]], dict[str, tuple[str, bool]]]:
    """code -> property -> value, and property -> (kind, categorical), for every key row."""
    codes_sorted = sorted(row["code"] for row in [*key.rows, *key.calibration])
    code_rank = {c: i for i, c in enumerate(codes_sorted)}
    pairs = any(row.get("pair") for row in key.rows)
    props: dict[str, dict[str, object]] = {}  # code -> property -> value
    kinds: dict[str, tuple[str, bool]] = {}  # property -> (kind, categorical)

    def put(code: str, name: str, value: object, kind: str, categorical: bool) -> None:
        props.setdefault(code, {})[name] = value
        kinds[name] = (kind, categorical)

    paddings = {row["code"]: padding.get(f"images/display/{row['code']}.jpg", -1.0)
                for row in [*key.rows, *key.calibration]
                if f"images/display/{row['code']}.jpg" in info}

    for row in [*key.rows, *key.calibration]:
        code = row["code"]
        for copy in ("full", "display"):
            rel = f"images/{copy}/{code}.jpg"
            p = info.get(rel)
            label = "" if copy == "full" else "display "
            if p is None:
                put(code, f"{label}format", "missing or not JPEG", "fixed", True)
                continue
            walk: JpegWalk = p["walk"]
            put(code, f"{label}format", "JPEG", "fixed", True)
            put(code, f"{label}width", walk.size[0], "fixed", True)
            put(code, f"{label}height", walk.size[1], "fixed", True)
            put(code, f"{label}file size", p["size"], "fixed", False)
            put(code, f"{label}quantization tables", walk.dqt, "fixed", True)
            put(code, f"{label}Huffman tables", walk.dht, "fixed", True)
            put(code, f"{label}chroma subsampling", walk.sampling, "fixed", True)
            put(code, f"{label}JPEG segment layout", walk.layout, "fixed", True)
            put(code, f"{label}metadata segments", len(walk.problems), "fixed", False)
            put(code, f"{label}mtime", p["mtime"], "fixed", False)
            put(code, f"{label}permissions", p["mode"], "fixed", True)
            put(code, f"{label}image data length", walk.scan_bytes, "content", False)
            if copy == "display":
                put(code, "padding border", paddings.get(code, -1.0), "pixels", False)
        put(code, "code", code_rank[code], "randomized", False)
        for rater, pos in sorted(positions.items()):
            if code in pos:
                put(code, f"position in {rater}'s worklist", pos[code][0], "randomized", False)
                if pairs:
                    put(code, f"pair side in {rater}'s worklist", pos[code][1], "randomized", True)
    return props, kinds


def _compare_timepoints(rater_dir: Path, key: _Key, info: dict[str, dict], padding: dict[str, float],
                        p_values: bool = True, positions: dict | None = None
                        ) -> tuple[list[PropertyAUC], list[Finding], list[str]]:
    """The AUC of every property between the timepoints of each region, its findings and notes."""
    if positions is None:
        positions = _read_worklists(rater_dir)[0]
    props, kinds = _properties(key, info, padding, positions)
    padded = any(p["walk"].fill > 0 for p in info.values())
    cal_codes = {r["code"] for r in key.calibration}
    timepoints: list[str] = []
    for row in key.rows:
        if row["timepoint"] not in timepoints:
            timepoints.append(row["timepoint"])
    comparisons = ([(timepoints[0], timepoints[1])] if len(timepoints) == 2
                   else [(t, None) for t in timepoints])
    if key.calibration:  # calibration photos must not be told from the trial's photos
        comparisons.append((CALIBRATION, None))
    regions = sorted({row["region"] for row in key.rows})
    rows: list[PropertyAUC] = []
    findings: list[Finding] = []
    notes: list[str] = []
    for region in regions:
        in_region = [row for row in [*key.rows, *key.calibration] if row["region"] == region]
        for tp, other in comparisons:
            group_a = [r["code"] for r in in_region if r["timepoint"] == tp]
            group_b = [r["code"] for r in in_region if (r["timepoint"] == other if other else r["timepoint"] != tp)]
            label = f"{tp} vs {other}" if other else f"{tp} vs other timepoints"
            if tp == CALIBRATION:
                label = "calibration photos vs trial photos"
            elif not other:
                group_b = [c for c in group_b if c not in cal_codes]
            for name, (kind, categorical) in kinds.items():
                a = [props[c][name] for c in group_a if name in props.get(c, {})]
                b = [props[c][name] for c in group_b if name in props.get(c, {})]
                if not a or not b:
                    continue
                row = _judge(name, kind, categorical, a, b, region, label, p_values)
                rows.append(row)
                where = f"in region {region} with AUC {row.auc:.2f} (n={row.n1}+{row.n2}"
                if row.finding:
                    if kind == "randomized":
                        why, hint = f", p={row.p_value:.2g})", _HINTS["randomized"]
                    else:
                        limit = AUC_LIMIT if kind == "fixed" else AUC_EXTREME_LIMIT
                        small = "; few photos, " if small_sample(row.n1, row.n2) else "; "
                        why = (f"{small}judged by the AUC alone, above {limit:g} at any sample size)")
                        hint = _HINTS.get(name) or (_OLD_SIZE_HINT if name.endswith("file size")
                                                    and not padded else _FIXED_HINT)
                    findings.append(Finding(".", "timepoint-property",
                                            f"{name} separates {label} {where}{why}; {hint}"))
                elif kind == "randomized" and row.auc > AUC_LIMIT:
                    if small_sample(row.n1, row.n2):
                        notes.append(f"{name} separates {label} {where}): too few photos to tell a "
                                     "chance imbalance from a leak (at this n even an AUC of 1.00 "
                                     f"has p ≥ {P_LIMIT:g}); not counted as a finding")
                    else:
                        notes.append(f"{name} separates {label} {where}, p={row.p_value:.2g}): "
                                     "within chance for a property drawn at random; not counted as "
                                     f"a finding — {_HINTS['randomized']} for a balanced draw")
    return rows, findings, notes


def _judge(name: str, kind: str, categorical: bool, a: list, b: list, region: str, label: str,
           p_values: bool) -> PropertyAUC:
    """The AUC row of one property in one comparison, and whether it is a finding.

    Fixed properties are findings above :data:`AUC_LIMIT` and pixel-derived ones above
    :data:`AUC_EXTREME_LIMIT`, at any sample size; randomized ones also need p < :data:`P_LIMIT`;
    content is never a finding. Without ``p_values`` the p-value is computed only where it is
    reported (a randomized property above the limit).
    """
    if p_values:
        auc, p = _auc(a, b, categorical)
    else:
        auc, p = timepoint_auc(a, b, categorical, p_value=False)
        if kind == "randomized" and auc > AUC_LIMIT - 1e-9:
            auc, p = _auc(a, b, categorical)
    if kind == "fixed":
        flag = auc > AUC_LIMIT
    elif kind == "randomized":
        flag = auc > AUC_LIMIT and p < P_LIMIT
    elif kind == "pixels":
        flag = auc > AUC_EXTREME_LIMIT
    else:
        flag = False
    return PropertyAUC(name, kind, region, label, round(auc, 4), p, len(a), len(b), flag)
