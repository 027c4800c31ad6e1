"""Synthetic studies: a known truth, photos that show it, and the camera change of a real trial."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageOps
from PIL.JpegImagePlugin import get_sampling

from assess.ingest import discover
from assess.study import load_study
from assess.synth import SynthError, draw_skin, make_study

SMALL = (96, 72)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("synth") / "study", participants=8, size=SMALL)


def _truth(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_truth_file_lists_every_photo_with_its_level(small_study):
    rows = _truth(small_study.truth_path)
    assert len(rows) == len(small_study.photos) == 8 * 2 * 3
    for row in rows:
        stem = "_".join(x for x in (row["participant"], row["timepoint"], row["region"], row["view"]) if x)
        written = [p for p in small_study.root.iterdir() if p.stem == stem]
        assert len(written) == 1
        key = (row["participant"], row["timepoint"], row["region"], row["view"])
        assert small_study.truth[key] == int(row["level"])


def test_levels_are_levels_of_each_regions_scale(small_study):
    study = small_study.study
    for photo in small_study.photos:
        assert photo.level in study.scale_for(photo.region).values


def test_no_participant_gets_worse_and_most_improve(tmp_path):
    synth = make_study(tmp_path / "s", participants=40, size=(32, 32), regions={"face": "wsrs"},
                       rotated_fraction=0, heic_fraction=0)
    change = Counter()
    for p in synth.photos:
        if p.timepoint == "baseline":
            change[p.participant] += p.level
        else:
            change[p.participant] -= p.level
    gains = list(change.values())
    assert all(0 <= g <= 2 for g in gains)
    assert sum(g > 0 for g in gains) > len(gains) / 2


def test_the_written_study_file_is_valid_and_every_photo_is_found_by_name(small_study):
    study = load_study(small_study.study_path)
    assert study.timepoints == ("baseline", "month12")
    assert {r: study.regions[r].scale for r in study.regions} == {
        "face": "wsrs", "neck": "wsrs", "hands": "merz-hand"}
    inventory = discover(small_study.root, study)
    assert len(inventory.photos) == len(small_study.photos)
    assert inventory.warnings == []


def test_the_follow_up_visit_used_another_camera(small_study):
    def look(timepoint):
        photo = next(p for p in small_study.photos if p.timepoint == timepoint
                     and p.region == "neck" and p.path.suffix.lower() != ".heic" and p.orientation == 1)
        with Image.open(small_study.root / photo.path) as im:
            exif = im.getexif()
            return (im.size, get_sampling(im), exif.get(0x010F), exif.get(0x0110),
                    exif.get_ifd(0x8769).get(0xA431), exif.get_ifd(0x8769).get(0x9003),
                    exif.get_ifd(0x8825).get(2))
    base, follow = look("baseline"), look("month12")
    assert base[0] == SMALL
    assert follow[0][0] / follow[0][1] != pytest.approx(4 / 3, abs=0.01)  # another aspect
    assert base[1] != follow[1]  # chroma subsampling
    assert base[2:5] != follow[2:5]  # make, model, serial number
    assert all(base[2:]) and all(follow[2:])  # serial, capture date and GPS present in both
    assert base[5][:10] < follow[5][:10]  # the real visit dates, later at follow-up


def test_phone_photos_carry_a_comment_and_data_after_the_end_marker(small_study):
    photo = next(p for p in small_study.photos if p.timepoint == "month12"
                 and p.path.suffix.lower() == ".jpg")
    data = (small_study.root / photo.path).read_bytes()
    assert b"\xff\xfe" in data[:data.index(b"\xff\xda")]  # a COM segment before the scan
    assert not data.endswith(b"\xff\xd9")
    assert photo.participant.encode() in data.rsplit(b"\xff\xd9", 1)[1]


def test_rotated_photos_are_upright_once_their_exif_orientation_is_applied(tmp_path):
    rotated = make_study(tmp_path / "r", participants=6, size=SMALL, seed=3, rotated_fraction=1,
                         heic_fraction=0)
    upright = make_study(tmp_path / "u", participants=6, size=SMALL, seed=3, rotated_fraction=0,
                         heic_fraction=0)
    turned = [p for p in rotated.photos if p.orientation != 1]
    assert {p.orientation for p in turned} <= {3, 6, 8} and len(turned) == 6 * 3
    for p in turned:
        with Image.open(rotated.root / p.path) as im:
            assert im.getexif().get(0x0112) == p.orientation
            shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=float)
        with Image.open(upright.root / p.path) as im:
            reference = np.asarray(im.convert("RGB"), dtype=float)
        assert shown.shape == reference.shape
        assert np.abs(shown - reference).mean() < 4  # the same picture, up to JPEG noise


def test_a_share_of_follow_up_photos_are_heic(tmp_path):
    synth = make_study(tmp_path / "h", participants=5, size=SMALL, heic_fraction=0.2,
                       rotated_fraction=0)
    heic = [p for p in synth.photos if p.path.suffix == ".heic"]
    assert len(heic) == 3  # round(0.2 x 15 follow-up photos)
    assert all(p.timepoint == "month12" for p in heic)
    with Image.open(synth.root / heic[0].path) as im:
        assert im.format == "HEIF"
        assert im.getexif().get(0x0110) == "iPhone 13 Pro"


def test_arms_photograph_each_participant_only_on_their_arms_regions(tmp_path):
    synth = make_study(tmp_path / "trial", size=(32, 32), arms={
        "UC-MSC secretome": (19, ("face", "neck")), "UC-explant secretome": (30, ("hands",))},
        regions={"face": "wsrs", "neck": "wsrs", "hands": "merz-hand"}, study_id="NCT06217627")
    with open(synth.participants_path, newline="") as fh:
        arms = {r["participant"]: r["arm"] for r in csv.DictReader(fh)}
    assert Counter(arms.values()) == {"UC-MSC secretome": 19, "UC-explant secretome": 30}
    regions = {pid: set() for pid in arms}
    for p in synth.photos:
        regions[p.participant].add(p.region)
        assert p.arm == arms[p.participant]
    for pid, arm in arms.items():
        assert regions[pid] == ({"face", "neck"} if arm == "UC-MSC secretome" else {"hands"})
    assert len(synth.photos) == 19 * 2 * 2 + 30 * 2
    assert {r["arm"] for r in _truth(synth.truth_path)} == set(arms.values())


def test_the_same_seed_draws_the_same_study_byte_for_byte(tmp_path):
    a = make_study(tmp_path / "a", participants=3, size=SMALL, seed=11)
    b = make_study(tmp_path / "b", participants=3, size=SMALL, seed=11)
    c = make_study(tmp_path / "c", participants=3, size=SMALL, seed=12)
    files = sorted(p.name for p in a.root.iterdir())
    assert files == sorted(p.name for p in b.root.iterdir())
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in files)
    assert (a.root / "truth.csv").read_bytes() != (c.root / "truth.csv").read_bytes()


def _line_energy(pixels: np.ndarray) -> float:
    grey = pixels.astype(float).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


@pytest.mark.parametrize("kind", ["face", "neck", "hands"])
def test_a_worse_level_draws_more_and_deeper_lines(kind):
    seeds = {"geometry_seed": (1, 2), "visit_seed": (3, 4)}
    energy = [_line_energy(draw_skin(300, 400, kind, s, **seeds)) for s in (0.0, 0.5, 1.0)]
    assert energy[0] < energy[1] < energy[2]


def test_a_folder_that_is_not_empty_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(SynthError, match="not empty"):
        make_study(tmp_path, participants=2, size=SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
