"""Benchmark of ``assess score``: 100,000 ratings (2 raters, disguised repeats) to every file.

Builds a synthetic blinded set at the file-format level (docs/formats.md: rater/set.json,
worklists, key/key.csv sealed with its sha256; no photos are needed to score), writes the two
raters' ratings into a real ratings database through ``assess.store`` (and locks the worklists),
then, in a fresh process as ``assess score`` runs, times :func:`assess.score.analyse` (checks,
unblinding and statistics) and :func:`assess.score.write_files` (CSV, XLSX, SAV, report) while
sampling the memory (PSS) of that process and of the ones it starts (worklists, charts).

Targets: statistics ≤ 2 s, all files ≤ 5 s, peak memory ≤ 500 MB.

    python bench/score.py [--ratings 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from assess import store  # noqa: E402
from assess.score import analyse, write_files  # noqa: E402
from assess.study import shipped_scales  # noqa: E402
from measure import TreeSampler  # noqa: E402

ALPHABET = np.array(list("ACDEFHJKMNPRTUVWXY3479"))
REGIONS = {"face": "wsrs", "neck": "wsrs", "hands": "merz-hand"}
TIMEPOINTS = ("baseline", "month12")
RATERS = ("derm1", "derm2")
ARMS = ("UC-MSC secretome", "UC-explant secretome")
REPEAT_FRACTION = 0.1
SET_ID = "BENCH-20261125"


def codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """n unique codes XXX-XXXX over the unambiguous alphabet."""
    out: set[str] = set()
    while len(out) < n:
        draw = rng.integers(0, len(ALPHABET), size=(n - len(out)) * 2 * 7).reshape(-1, 7)
        for row in ALPHABET[draw]:
            out.add("".join(row[:3]) + "-" + "".join(row[3:]))
            if len(out) == n:
                break
    return np.array(sorted(out))[rng.permutation(n)]


def build(root: Path, n_ratings: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    per_rater = n_ratings // len(RATERS)
    photos_per_participant = len(REGIONS) * len(TIMEPOINTS)
    n_participants = int(per_rater / (1 + REPEAT_FRACTION) / photos_per_participant)
    participants = np.array([f"S{10001 + i}" for i in range(n_participants)])
    grid = pd.MultiIndex.from_product([participants, list(REGIONS), TIMEPOINTS],
                                      names=["participant", "region", "timepoint"]).to_frame(index=False)
    n_photos = len(grid)
    n_repeats = per_rater - n_photos
    all_codes = codes(rng, n_photos + n_repeats)
    grid["code"] = all_codes[:n_photos]
    grid["view"] = ""
    scales = shipped_scales()
    # Truth: a baseline level per participant × region, improvement 0–2 levels at month12.
    truth = {}
    for region, sid in REGIONS.items():
        values = np.array(scales[sid].values)
        base = rng.integers(2, len(values), size=n_participants)
        gain = rng.choice([0, 1, 2], p=[0.3, 0.45, 0.25], size=n_participants)
        truth[(region, "baseline")] = values[base]
        truth[(region, "month12")] = values[np.maximum(base - gain, 0)]
    pidx = {p: i for i, p in enumerate(participants)}
    grid["truth"] = [truth[(r, t)][pidx[p]] for p, r, t in
                     zip(grid["participant"], grid["region"], grid["timepoint"])]
    repeat_rows = grid.sample(n=n_repeats, random_state=seed).copy()
    repeat_rows["repeat_of"] = repeat_rows["code"]
    repeat_rows["code"] = all_codes[n_photos:]
    grid["repeat_of"] = ""
    photos = pd.concat([grid, repeat_rows], ignore_index=True)

    set_id = SET_ID
    rater_dir, key_dir = root / set_id / "rater", root / set_id / "key"
    (rater_dir / "worklists").mkdir(parents=True)
    key_dir.mkdir(parents=True)
    key = pd.DataFrame({
        "code": photos["code"], "participant": photos["participant"],
        "timepoint": photos["timepoint"], "region": photos["region"], "view": "",
        "source_file": photos["participant"] + "_" + photos["timepoint"] + "_" + photos["region"]
        + ".jpg", "source_sha256": "0" * 64, "blinded_sha256": "1" * 64,
        "repeat_of": photos["repeat_of"], "pair": "", "pair_side": ""})
    key.sample(frac=1, random_state=seed).to_csv(key_dir / "key.csv", index=False,
                                                 lineterminator="\n")
    items = [{"item": c, "kind": "single", "scale": REGIONS[r], "region": r, "photos": [c]}
             for c, r in zip(photos["code"], photos["region"])]
    raters = {}
    for i, rater in enumerate(RATERS):
        order = np.random.default_rng([seed, i]).permutation(len(items))
        (rater_dir / "worklists" / f"{rater}.json").write_text(json.dumps(
            {"rater": rater, "set_id": set_id, "items": [items[j] for j in order]}))
        raters[rater] = {"salt": "00", "hash": "00", "items": len(items)}
    meta = {"format": 1, "set_id": set_id, "study_id": "NCT06217627", "title": "Benchmark study",
            "presentation": "single", "tool_version": "0.1.0", "created": "2026-11-25",
            "key_sha256": hashlib.sha256((key_dir / "key.csv").read_bytes()).hexdigest(),
            "scales": {s: scales[s].to_dict() for s in sorted(set(REGIONS.values()))},
            "regions": REGIONS,
            "counts": {"photos": n_photos, "repeats": n_repeats, "items": len(items), "pairs": 0},
            "raters": raters, "references": {}}
    (rater_dir / "set.json").write_text(json.dumps(meta, indent=2))
    # As `assess randomize` does, the key folder keeps the study file (the timepoint order).
    (key_dir / "study.toml").write_text(
        '[study]\nid = "NCT06217627"\ntitle = "Benchmark study"\n'
        f'timepoints = {json.dumps(list(TIMEPOINTS))}\n'
        + "".join(f'[regions.{r}]\nscale = "{sid}"\n' for r, sid in REGIONS.items())
        + f'[blinding]\nraters = {json.dumps(list(RATERS))}\nrepeat_fraction = {REPEAT_FRACTION}\n')
    arms = rng.permutation(np.resize(np.array(ARMS), n_participants))
    pd.DataFrame({"participant": participants, "arm": arms}).to_csv(
        root / "participants.csv", index=False, lineterminator="\n")

    # Ratings: the truth, one level off for ~20% of photos, clipped to the scale.
    db = root / "ratings.sqlite"
    conn = store.connect(db)
    conn.execute("PRAGMA synchronous = OFF")  # building the benchmark only
    t0 = time.perf_counter()
    for i, rater in enumerate(RATERS):
        r = np.random.default_rng([seed, 10 + i])
        noise = r.choice([-1, 0, 1], p=[0.1, 0.8, 0.1], size=len(photos))
        seconds = np.round(r.gamma(3, 4, size=len(photos)), 3)
        for j, (code, region, level) in enumerate(zip(photos["code"], photos["region"],
                                                      photos["truth"])):
            values = scales[REGIONS[region]].values
            score = int(min(max(level + noise[j], values[0]), values[-1]))
            store.record(conn, set_id, rater, code, score=score, seconds=float(seconds[j]),
                         answered_at=f"2026-11-{20 + i}T10:{j // 3600 % 60:02d}:{j % 60:02d}Z")
        store.lock(conn, set_id, rater, list(photos["code"]))
    conn.close()
    build_seconds = time.perf_counter() - t0
    return rater_dir, key_dir, db, root / "participants.csv", len(photos) * len(RATERS), build_seconds


def score_only(root: Path) -> None:
    """Run in a child process: score the built set and print the timings as JSON."""
    sid = SET_ID
    t0, c0 = time.perf_counter(), time.process_time()
    analysis = analyse(root / sid / "rater", root / sid / "key", db=root / "ratings.sqlite",
                       participants=root / "participants.csv")
    t1, c1 = time.perf_counter(), time.process_time()
    files = write_files(analysis, root / "out")
    t2, c2 = time.perf_counter(), time.process_time()
    print(json.dumps({"ratings": len(analysis.unblinded.long), "stats": [t1 - t0, c1 - c0],
                      "files": [t2 - t1, c2 - c1],
                      "sizes": [(f.name, f.stat().st_size) for f in files],
                      "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build the set in this folder and keep it")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip writing the long table with pandas for comparison")
    parser.add_argument("--score-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.score_only:
        score_only(args.score_only)
        return 0
    root = args.keep or Path(tempfile.mkdtemp(prefix="assess-bench-score-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        print(f"building a synthetic set with {args.ratings:,} ratings in {root} …", flush=True)
        rater_dir, key_dir, db, participants, n, build_s = build(root, args.ratings)
        print(f"  {n:,} ratings of 2 raters written through assess.store in {build_s:.1f} s")
        load = os.getloadavg()[0]
        # Scored in a fresh process (as `assess score` runs), whose memory is sampled with that
        # of the processes it starts.
        child = subprocess.Popen([sys.executable, __file__, "--score-only", str(root)],
                                 stdout=subprocess.PIPE, text=True)
        with TreeSampler(child.pid, interval=0.1) as mem:
            out, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"scoring failed (exit {child.returncode})")
        r = json.loads(out)
        (t_stats, c_stats), (t_files, c_files) = r["stats"], r["files"]
        print(f"ratings scored {r['ratings']:,}; {os.cpu_count()} cores, load average {load:.1f} "
              "at the start (wall time grows with other work on the machine)")
        print(f"{'':40} {'wall':>8} {'CPU':>8}")
        print(f"{'statistics (check, unblind, tables)':40} {t_stats:7.2f}s {c_stats:7.2f}s   "
              "target ≤ 2 s")
        print(f"{'all files (' + str(len(r['sizes'])) + ')':40} {t_files:7.2f}s {c_files:7.2f}s   "
              "target ≤ 5 s")
        print(f"{'total':40} {t_stats + t_files:7.2f}s {c_stats + c_files:7.2f}s")
        print(f"{'peak memory (PSS of the process tree)':40} {mem.peak_pss / 2**20:6.0f} MB"
              "            target ≤ 500 MB")
        print(f"{'  (max RSS of the scoring process)':40} {r['max_rss'] / 2**20:6.0f} MB")
        for name, size in r["sizes"]:
            print(f"  {name:<20} {size / 1e6:8.2f} MB")
        if args.reference:
            long = pd.read_csv(root / "out" / "ratings_long.csv", encoding="utf-8-sig",
                               keep_default_na=False)
            print("reference, the same long table written by pandas (to scale the numbers above "
                  "on a busy machine):")
            for label, write in (
                    ("DataFrame.to_csv", lambda p: long.to_csv(p, index=False)),
                    ("DataFrame.to_excel (xlsxwriter)",
                     lambda p: long.to_excel(p, index=False, engine="xlsxwriter"))):
                suffix = ".csv" if "csv" in label else ".xlsx"
                t, c = time.perf_counter(), time.process_time()
                write(root / f"reference{suffix}")
                print(f"  {label:38} {time.perf_counter() - t:7.2f}s {time.process_time() - c:7.2f}s")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
