"""Visible differences between visits: the threat table of the example, before and after
``[pixels] normalize``, the scripted rater's agreement with the truth, and what normalization costs.

The example is the synthetic trial of ``tests/test_pixels_visible.py``: face photos of
``--participants`` participants, whose follow-up camera is warmer and brighter
(``follow_up_look=(0.1, 0.2)``) and otherwise the baseline camera. It is randomized twice (without
and with normalization, ``[pixels] normalize_to`` as ``--normalize-to`` says); the script prints
the threat table of both as Markdown (for docs/pixels.md, "Visible differences between visits"),
the Spearman correlation of a rater answering from the pixels (fine L* detail inside the subject)
with the true level, and the time of each randomize. ``--seed`` draws another trial.

Usage::

    python bench/visible.py --participants 100 --size 200x150 [--seed 1] [--normalize-to backdrop]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.ndimage import binary_erosion, gaussian_filter  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from assess.blind import randomize  # noqa: E402
from assess.deid import read_pixels  # noqa: E402
from assess.pixels.visible import lab, subject_mask  # noqa: E402
from assess.synth import CAMERAS, make_study  # noqa: E402


def texture(rgb: np.ndarray) -> float:
    """The scripted rater's wrinkle score: mean fine L* detail inside the subject."""
    L = lab(rgb)[..., 0]
    mask, _, _ = subject_mask(lab(rgb))
    inner = binary_erosion(mask, iterations=4)
    detail = np.abs(L - gaussian_filter(L, 2.0))
    return float(detail[inner].mean()) if inner.any() else float(detail.mean())


def spearman(made, truth) -> float:
    levels, scores = [], []
    for r in csv.DictReader(open(made.key_dir / "key.csv", newline="")):
        if r["repeat_of"]:
            continue
        levels.append(truth[(r["participant"], r["timepoint"], r["region"], r["view"])])
        scores.append(texture(read_pixels(made.rater_dir / "images" / "display" / f"{r['code']}.jpg")))
    return float(spearmanr(levels, scores)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--size", default="200x150", help="baseline photo size WxH")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic trial")
    parser.add_argument("--normalize-to", default="backdrop", choices=("backdrop", "subject"),
                        help="[pixels] normalize_to")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    root = Path(tempfile.mkdtemp(prefix="assess-visible-"))
    base = replace(CAMERAS[0], sensor_noise=2.0)
    follow = replace(base, make="Apple", model="iPhone 13 Pro", serial="F17GK2XQ0D8M",
                     extension=".jpg")
    synth = make_study(root / "images", participants=args.participants, size=(w, h),
                       regions={"face": "wsrs"}, follow_up_look=(0.1, 0.2),
                       cameras=(base, follow), skin_tones=(3, 4, 5), rotated_fraction=0,
                       heic_fraction=0, repeat_fraction=0.05, seed=args.seed, workers=args.workers)
    pairs = [[f"{p}_baseline_face.JPG", f"{p}_month12_face.jpg"]
             for p in sorted({p.participant for p in synth.photos})]
    with open(synth.study_path, "a", encoding="utf-8") as fh:
        fh.write(f"\n[photos]\ndistinct = {json.dumps(pairs)}\n")
    runs = {}
    for name in ("plain", "normalized"):
        if name == "normalized":
            with open(synth.study_path, "a", encoding="utf-8") as fh:
                fh.write(f"\n[pixels]\nnormalize = true\nnormalize_to = \"{args.normalize_to}\"\n")
        start = time.perf_counter()
        made = randomize(synth.study_path, synth.images_dir, root / "sets", set_id=name, seed=5,
                         workers=args.workers)
        runs[name] = (made, time.perf_counter() - start)
    plain, normalized = runs["plain"][0], runs["normalized"][0]
    after = {t.property: t for t in normalized.visible}
    print(f"{args.participants} participants, {len(synth.photos)} photos of {w}x{h}, seed {args.seed}, "
          f"normalize_to {args.normalize_to}; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| property | without: AUC | medians baseline / month12 | with normalize: AUC "
          "| medians baseline / month12 |")
    print("|---|---:|---|---:|---|")
    for t in plain.visible:
        a = after[t.property]
        mark = lambda x: f"**{x.auc:.3f}**" if x.threat else f"{x.auc:.3f}"  # noqa: E731
        print(f"| {t.property} | {mark(t)} | {t.median_1:.4g} / {t.median_2:.4g} | {mark(a)} "
              f"| {a.median_1:.4g} / {a.median_2:.4g} |")
    truth = synth.truth
    print(f"\nscripted rater, Spearman with the truth: without {spearman(plain, truth):.3f}, "
          f"with normalize {spearman(normalized, truth):.3f}")
    print(f"randomize: without {runs['plain'][1]:.1f} s, with normalize {runs['normalized'][1]:.1f} s")


if __name__ == "__main__":
    main()
