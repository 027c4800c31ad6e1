"""Synthetic raw photos for the worked example NCT06217627, with a known truth.

The design comes from ``study.toml`` beside this script (timepoints, regions and scales, rater,
repeats, normalization) and from :data:`ARMS` and :data:`VIEWS` below (who is photographed where).
The photos are drawn by :func:`assess.synth.make_study` from a seed: every participant has a true
level per region, view and visit, and the follow-up visit used another camera (other resolution and
aspect, JPEG quality and chroma subsampling, make, model and serial number in the EXIF, real visit
dates, GPS, some photos stored rotated with an EXIF orientation tag, a few HEIC files).

Written into the output folder (default ``images/nct06217627``):

* the raw photos, ``<participant>_<timepoint>_<region>[_<view>].<ext>``;
* ``study.toml``: the design of ``study.toml`` beside this script;
* ``participants.csv`` (``participant,arm``): for ``assess score --participants``;
* ``truth.csv`` (``participant,timepoint,region,view,level,arm``): the true levels. It stays with
  the raw photos; ``assess randomize`` reads photos only, so it never reaches a rater.

Run from the project folder::

    python examples/nct06217627/generate.py images/nct06217627
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Mapping, Sequence

from assess.study import load_study
from assess.synth import SynthStudy, make_study

HERE = Path(__file__).resolve().parent
STUDY = HERE / "study.toml"
SEED = 6217627

#: The trial's arms: participants and the regions photographed (49 women in all).
ARMS: dict[str, tuple[int, tuple[str, ...]]] = {
    "UC-MSC secretome": (19, ("face", "neck")),
    "UC-explant secretome": (30, ("hands",)),
}

#: One photo per hand: the Merz hand grading scale grades each hand on its own.
VIEWS: dict[str, tuple[str, ...]] = {"hands": ("left", "right")}


def design_normalize(study_path: Path = STUDY) -> dict[str, object]:
    """The ``[normalize]`` table of the example's study file, as :func:`make_study` takes it.

    >>> design_normalize()["fit"]
    'crop'
    """
    nm = load_study(study_path).normalize
    return {"long_edge": nm.long_edge, "display_long_edge": nm.display_long_edge,
            "quality": nm.quality, "aspect": f"{nm.aspect[0]}:{nm.aspect[1]}", "fit": nm.fit}


def generate(out_dir: str | Path, *, seed: int = SEED, size: tuple[int, int] = (1600, 1200),
             arms: Mapping[str, tuple[int, Sequence[str]]] = ARMS,
             presentation: str | None = None, normalize: Mapping[str, object] | None = None,
             workers: int | None = None) -> SynthStudy:
    """Write the example's raw photos, study file, participants and truth into ``out_dir``.

    Parameters
    ----------
    out_dir
        A new or empty folder.
    seed
        Levels, skin, cameras and dates follow from it.
    size
        ``(width, height)`` of a baseline photo; the follow-up phone's are bigger and 16:9.
    arms
        ``{"arm": (participants, regions)}``; :data:`ARMS` is the trial's design (a smaller one
        makes a quick trial run of the same design).
    presentation
        ``"single"`` (the study file's) or ``"pairs"``.
    normalize
        Overrides the study file's ``[normalize]`` table (smaller photos for a quick run).
    workers
        Processes drawing the photos (default: one per core).
    """
    study = load_study(STUDY)
    return make_study(
        out_dir,
        regions={name: region.scale for name, region in study.regions.items()},
        timepoints=study.timepoints,
        seed=seed,
        size=size,
        arms=dict(arms),
        views=VIEWS,
        study_id=study.id,
        title=study.title,
        raters=study.blinding.raters,
        repeat_fraction=study.blinding.repeat_fraction,
        presentation=presentation or study.blinding.presentation,
        blinding_seed=study.blinding.seed,
        normalize=dict(normalize) if normalize is not None else design_normalize(),
        workers=workers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write synthetic raw photos with a known truth for the NCT06217627 example.",
        epilog="Example: python examples/nct06217627/generate.py images/nct06217627")
    parser.add_argument("out_dir", nargs="?", default="images/nct06217627", type=Path,
                        help="new or empty folder for the photos [default: %(default)s]")
    parser.add_argument("--seed", type=int, default=SEED, help="[default: %(default)s]")
    parser.add_argument("--pairs", action="store_true",
                        help="write a study file with presentation = \"pairs\" (side by side)")
    args = parser.parse_args(argv)
    try:
        synth = generate(args.out_dir, seed=args.seed, presentation="pairs" if args.pairs else None)
    except Exception as exc:  # an AssessError names what to fix
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    n_participants = len({p.participant for p in synth.photos})
    print(f"Wrote {len(synth.photos)} photos of {n_participants} participants to {synth.root}, "
          f"with {synth.study_path.name}, {synth.participants_path.name} and "
          f"{synth.truth_path.name} (the truth: keep it away from the rater)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
