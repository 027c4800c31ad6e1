"""The blinded set: codes, worklists, repeats, pairs, the key, the seal and atomic writes."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assess.audit import audit_set
from assess.blind import (ALPHABET, CODE_RE, FIXED_MTIME, KEY_COLUMNS, BlindError, access_hash,
                          constrained_order, default_set_id, min_repeat_gap, plan, randomize,
                          read_access, read_key)
from assess.ingest import IngestError, Photo
from assess.study import load_study, parse_study
from assess.synth import make_study

SMALL = (64, 48)


def study_text(presentation="single", repeat_fraction=0.25, raters=("derm1", "derm2"),
               timepoints=("baseline", "month12"), extra=""):
    return f'''
[study]
id = "T-01"
timepoints = {json.dumps(list(timepoints))}
[regions.face]
scale = "wsrs"
[regions.hands]
scale = "merz-hand"
[blinding]
raters = {json.dumps(list(raters))}
repeat_fraction = {repeat_fraction}
presentation = "{presentation}"
[normalize]
long_edge = 256
display_long_edge = 256
fit = "crop"
{extra}'''


def photos_for(participants, regions=("face", "hands"), timepoints=("baseline", "month12")):
    return [Photo(p, t, r, "", Path(f"{p}_{t}_{r}.jpg"), sha256=f"{p}-{t}-{r}")
            for p in participants for r in regions for t in timepoints]


def adjacent_ok(items, order):
    return all(items[a].group != items[b].group for a, b in zip(order, order[1:]))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A small synthetic study (5 participants x 2 visits x face, neck, hands)."""
    return make_study(tmp_path_factory.mktemp("raw") / "images", participants=5, size=SMALL,
                      repeat_fraction=0.2, raters=("derm1", "derm2"))


@pytest.fixture(scope="module")
def built(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("sets")
    return randomize(synth.study_path, synth.root, out, set_id="s1", seed=123456789012345, workers=1)


# --------------------------------------------------------------------------- planning


def test_codes_are_unique_readable_and_drawn_from_the_seed():
    study = parse_study(study_text())
    photos = photos_for([f"S{i}" for i in range(30)])
    a, b, c = plan(study, photos, 1), plan(study, photos, 1), plan(study, photos, 2)
    codes = [r.code for r in a.rows]
    assert len(set(codes)) == len(codes) == 120 + 30
    assert all(CODE_RE.match(code) for code in codes)
    assert set("".join(codes).replace("-", "")) <= set(ALPHABET)
    assert not set("015268OILZSGB") & set("".join(codes))
    assert codes == [r.code for r in b.rows]
    assert not set(codes) & {r.code for r in c.rows}


def test_codes_do_not_follow_the_order_of_the_photos():
    study = parse_study(study_text(repeat_fraction=0))
    rows = plan(study, photos_for([f"S{i:02d}" for i in range(50)]), 5).rows
    codes = [r.code for r in rows]
    assert codes != sorted(codes) and codes != sorted(codes, reverse=True)


@pytest.mark.parametrize("presentation", ["single", "pairs"])
@pytest.mark.parametrize("fraction", [0, 0.1, 0.5, 1])
@pytest.mark.parametrize("n", [2, 3, 7])
def test_no_two_items_of_one_participant_and_region_are_neighbours_and_repeats_come_late(
        presentation, fraction, n):
    study = parse_study(study_text(presentation, fraction, timepoints=("baseline", "month6", "month12")))
    photos = photos_for([f"S{i}" for i in range(n)], timepoints=("baseline", "month6", "month12"))
    for seed in range(25):
        p = plan(study, photos, seed)
        gap = min_repeat_gap(len(p.items))
        for order in p.orders.values():
            assert sorted(order) == list(range(len(p.items)))
            assert adjacent_ok(p.items, order)
            where = {item: k for k, item in enumerate(order)}
            for i, item in enumerate(p.items):
                if item.repeat_of is not None:
                    assert where[i] - where[item.repeat_of] >= gap
                    assert where[i] >= len(order) / 3


def test_the_number_of_repeats_follows_the_fraction():
    photos = photos_for([f"S{i}" for i in range(9)])  # 36 photos
    counts = {f: plan(parse_study(study_text(repeat_fraction=f)), photos, 3).counts["repeats"]
              for f in (0, 0.01, 0.1, 0.5, 1)}
    assert counts == {0: 0, 0.01: 1, 0.1: 4, 0.5: 18, 1: 36}


def test_every_rater_gets_the_same_items_and_repeats_in_their_own_order():
    study = parse_study(study_text(raters=("derm1", "derm2", "derm3")))
    p = plan(study, photos_for([f"S{i}" for i in range(10)]), 9)
    orders = list(p.orders.values())
    assert all(sorted(o) == sorted(orders[0]) for o in orders)
    assert len({tuple(o) for o in orders}) == 3


def test_repeats_are_chosen_at_random_not_by_position():
    study = parse_study(study_text(repeat_fraction=0.1))
    photos = photos_for([f"S{i}" for i in range(30)])
    chosen = {tuple(sorted(it.repeat_of for it in plan(study, photos, s).items if it.repeat_of is not None))
              for s in range(10)}
    assert len(chosen) == 10


def test_an_impossible_worklist_is_refused_with_a_clear_error():
    study = parse_study(study_text(repeat_fraction=0))
    with pytest.raises(BlindError, match="2 of its 2 items show participant S1, face"):
        plan(study, photos_for(["S1"], regions=("face",)), 1)


def test_the_constrained_order_is_uniform_over_allowed_first_items():
    groups = ["a", "a", "b", "b", "c", "c"]
    firsts = Counter(constrained_order(groups, [None] * 6, np.random.default_rng(s))[0]
                     for s in range(600))
    assert set(firsts) == set(range(6))
    assert min(firsts.values()) > 60


def test_pairs_put_baseline_against_each_follow_up_with_sides_at_random():
    study = parse_study(study_text("pairs", 0, timepoints=("baseline", "month6", "month12")))
    photos = photos_for([f"S{i}" for i in range(6)], timepoints=("baseline", "month6", "month12"))
    p = plan(study, photos, 4)
    assert p.counts == {"photos": 36, "repeats": 0, "items": 24, "pairs": 24}
    by_pair: dict[str, list] = {}
    for row in p.rows:
        by_pair.setdefault(row.pair, []).append(row)
    assert len(by_pair) == 24
    for item in p.items:
        rows = by_pair[item.item]
        assert [r.code for r in rows] == list(item.photos)  # [left, right]
        assert [r.pair_side for r in rows] == ["left", "right"]
        assert sorted(r.timepoint for r in rows)[0] == "baseline"
        assert len({(r.participant, r.region) for r in rows}) == 1
    left_is_baseline = Counter(by_pair[it.item][0].timepoint == "baseline" for it in p.items)
    assert left_is_baseline[True] > 4 and left_is_baseline[False] > 4
    # every photo in every pair has its own code: a baseline photo in two pairs has two codes
    assert len({r.code for r in p.rows}) == 48


def test_a_repeated_pair_gets_new_pair_and_photo_codes_naming_what_it_repeats():
    study = parse_study(study_text("pairs", 1))
    p = plan(study, photos_for([f"S{i}" for i in range(5)]), 8)
    assert p.counts == {"photos": 20, "repeats": 10, "items": 20, "pairs": 10}
    first_rows = {r.code: r for r in p.rows if not r.repeat_of}
    for row in (r for r in p.rows if r.repeat_of):
        first = first_rows[row.repeat_of]
        assert row.pair != first.pair and row.code != first.code
        assert (row.participant, row.timepoint, row.region) == (
            first.participant, first.timepoint, first.region)


def test_in_pairs_a_photo_without_partner_is_left_out_with_a_warning():
    study = parse_study(study_text("pairs", 0))
    photos = photos_for(["S1", "S2", "S3"])
    photos = [p for p in photos if (p.participant, p.timepoint, p.region) != ("S3", "month12", "face")]
    p = plan(study, photos, 1)
    assert p.counts["pairs"] == 5
    assert p.warnings == ["1 photo(s) have no baseline or no follow-up partner and are left out of "
                          "the pairs: S3_baseline_face.jpg"]


def test_default_set_id_is_the_study_id_and_date_and_never_an_existing_set(tmp_path):
    study = parse_study(study_text())
    assert default_set_id(study, tmp_path, date(2026, 3, 4)) == "t-01-20260304"
    (tmp_path / "t-01-20260304").mkdir()
    assert default_set_id(study, tmp_path, date(2026, 3, 4)) == "t-01-20260304-2"


# --------------------------------------------------------------------------- a written set


def test_a_set_has_the_documented_layout(built):
    assert sorted(p.name for p in built.path.iterdir()) == ["key", "rater"]
    assert sorted(p.name for p in built.key_dir.iterdir()) == ["access.csv", "key.csv", "seal.json",
                                                               "seed.txt", "study.toml",
                                                               "visible.csv"]
    assert sorted(p.name for p in built.rater_dir.iterdir()) == ["images", "set.json", "worklists"]
    assert sorted(p.name for p in (built.rater_dir / "worklists").iterdir()) == ["derm1.json", "derm2.json"]
    rows = read_key(built.key_dir)
    codes = {r.code for r in rows}
    for kind in ("full", "display"):
        files = {p.stem for p in (built.rater_dir / "images" / kind).iterdir()}
        assert files == codes
    assert built.counts == {"photos": 30, "repeats": 6, "items": 36, "pairs": 0}
    with open(built.key_dir / "key.csv", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == KEY_COLUMNS
    assert (built.key_dir / "seed.txt").read_text() == "123456789012345\n"


def test_the_worklists_show_each_photo_once_and_each_repeat_under_its_new_code(built):
    rows = {r.code: r for r in read_key(built.key_dir)}
    for rater in ("derm1", "derm2"):
        data = json.loads((built.rater_dir / "worklists" / f"{rater}.json").read_text())
        assert data["rater"] == rater and data["set_id"] == "s1"
        items = data["items"]
        assert sorted(i["item"] for i in items) == sorted(rows)
        for a, b in zip(items, items[1:]):
            ra, rb = rows[a["item"]], rows[b["item"]]
            assert (ra.participant, ra.region) != (rb.participant, rb.region)
        for k, item in enumerate(items):
            assert item["kind"] == "single" and item["photos"] == [item["item"]]
            assert item["scale"] == {"face": "wsrs", "neck": "wsrs", "hands": "merz-hand"}[item["region"]]
            if rows[item["item"]].repeat_of:
                first = next(j for j, it in enumerate(items) if it["item"] == rows[item["item"]].repeat_of)
                assert k - first >= min_repeat_gap(len(items))


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_a_repeat_has_other_bytes_than_its_first_showing_the_same_size_and_pixels_within_two_levels(built):
    rows = read_key(built.key_dir)
    repeats = [r for r in rows if r.repeat_of]
    assert len(repeats) == 6
    first = {r.code: r for r in rows}
    images = built.rater_dir / "images"
    for r in repeats:
        original = first[r.repeat_of]
        assert r.source_file == original.source_file
        assert r.blinded_sha256 != original.blinded_sha256
        for kind in ("full", "display"):
            mine, theirs = images / kind / f"{r.code}.jpg", images / kind / f"{original.code}.jpg"
            assert mine.read_bytes() != theirs.read_bytes()
            assert mine.stat().st_size == theirs.stat().st_size
            diff = np.abs(_pixels(mine) - _pixels(theirs))
            assert diff.shape == _pixels(theirs).shape
            assert diff.max() <= 2 and diff.mean() < 0.1, (r.code, kind, diff.max(), diff.mean())
    for r in rows:  # blinded_sha256 stays the sha256 of the code's full copy
        full = (images / "full" / f"{r.code}.jpg").read_bytes()
        assert hashlib.sha256(full).hexdigest() == r.blinded_sha256


def test_every_file_of_a_kind_in_a_region_has_one_size_dimensions_and_encoding_whatever_the_camera(built):
    from assess.audit import walk_jpeg

    rows = read_key(built.key_dir)
    for region in ("face", "neck", "hands"):
        codes = [r.code for r in rows if r.region == region]
        for kind in ("full", "display"):
            walks = {c: walk_jpeg((built.rater_dir / "images" / kind / f"{c}.jpg").read_bytes())
                     for c in codes}
            sizes = {(built.rater_dir / "images" / kind / f"{c}.jpg").stat().st_size for c in codes}
            assert len(sizes) == 1, (region, kind, sizes)
            for prop in ("size", "dqt", "dht", "sampling", "layout"):
                assert len({getattr(w, prop) for w in walks.values()}) == 1, (region, kind, prop)
            assert all(w.problems == [] for w in walks.values())
            # the cameras did give data of other lengths: the padding is what makes them equal
            assert len({w.scan_bytes for w in walks.values()}) > len(codes) // 2
            assert min(w.fill for w in walks.values()) == 0 < max(w.fill for w in walks.values())


def test_a_baseline_photo_in_two_pairs_has_other_bytes_under_each_of_its_codes(tmp_path):
    synth = make_study(tmp_path / "raw", participants=3, size=SMALL, regions={"face": "wsrs"},
                       timepoints=("baseline", "month6", "month12"), presentation="pairs",
                       repeat_fraction=0.0)
    made = randomize(synth.study_path, synth.root, tmp_path / "out", set_id="p3", seed=10**13,
                     workers=1)
    rows = read_key(made.key_dir)
    baselines = [r for r in rows if r.timepoint == "baseline"]
    assert len(baselines) == 6 and len({r.source_file for r in baselines}) == 3
    assert len({r.blinded_sha256 for r in rows}) == len(rows)
    displays = {(made.rater_dir / "images" / "display" / f"{r.code}.jpg").read_bytes() for r in rows}
    assert len(displays) == len(rows)
    assert audit_set(made.rater_dir, made.key_dir) == []


def test_set_json_seals_the_key_and_verifies_each_access_code(built):
    data = json.loads((built.rater_dir / "set.json").read_text())
    assert data["key_sha256"] == hashlib.sha256((built.key_dir / "key.csv").read_bytes()).hexdigest()
    assert data["set_id"] == "s1" and data["study_id"] == "DEMO" and data["format"] == 1
    assert data["counts"] == built.counts
    assert data["regions"] == {"face": "wsrs", "neck": "wsrs", "hands": "merz-hand"}
    assert set(data["scales"]) == {"wsrs", "merz-hand"}
    access = read_access(built.key_dir)
    assert access == built.access and set(access) == {"derm1", "derm2"}
    for rater, code in access.items():
        entry = data["raters"][rater]
        assert entry["hash"] == access_hash(code, entry["salt"])
        assert entry["items"] == 36
        assert code not in (built.rater_dir / "set.json").read_text()


def test_the_rater_folder_names_no_participant_timepoint_or_file(built, synth):
    blob = b"".join(p.read_bytes() for p in built.rater_dir.rglob("*") if p.is_file())
    names = b"".join(p.name.encode() for p in built.rater_dir.rglob("*"))
    for photo in synth.photos:
        for term in (photo.participant, photo.path.name, photo.path.stem):
            assert term.encode() not in blob and term.encode() not in names
    for timepoint in synth.study.timepoints:
        assert timepoint.encode() not in names
        assert timepoint.encode() not in (built.rater_dir / "set.json").read_bytes()
    assert audit_set(built.rater_dir, built.key_dir) == []


def test_the_key_is_never_in_the_rater_folder(built):
    key_bytes = [(built.key_dir / n).read_bytes() for n in ("key.csv", "seed.txt", "access.csv")]
    for path in built.rater_dir.rglob("*"):
        assert path.name not in ("key.csv", "seed.txt", "access.csv", "key")
        if path.is_file():
            assert path.read_bytes() not in key_bytes


def test_the_key_keeps_the_study_file_the_set_was_built_from(synth, built):
    assert (built.key_dir / "study.toml").read_text(encoding="utf-8") == \
        synth.study_path.read_text(encoding="utf-8")


def test_every_rater_file_has_the_fixed_time_and_permissions_and_the_key_is_private(built):
    for path in [built.rater_dir, *built.rater_dir.rglob("*")]:
        st = path.stat()
        assert st.st_mtime == FIXED_MTIME
        assert stat.S_IMODE(st.st_mode) == (0o755 if path.is_dir() else 0o644)
    assert stat.S_IMODE(built.key_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in built.key_dir.iterdir())


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_gives_the_same_set_except_the_access_codes(synth, built, tmp_path):
    again = randomize(synth.study_path, synth.root, tmp_path, set_id="s1", seed=123456789012345,
                      workers=2)
    a, b = _tree(built.path), _tree(again.path)
    assert a.keys() == b.keys()
    differ = sorted(k for k in a if a[k] != b[k])
    # the seal differs only through the sha256 of those two files
    assert differ == ["key/access.csv", "key/seal.json", "rater/set.json"]
    sa, sb = (json.loads(t["key/seal.json"]) for t in (a, b))
    assert {k for k in sa["files"] if sa["files"][k] != sb["files"][k]} == {"key/access.csv",
                                                                           "rater/set.json"}
    ja, jb = (json.loads(t["rater/set.json"]) for t in (a, b))
    ja.pop("raters"), jb.pop("raters")
    assert ja == jb
    assert again.access != built.access


def test_another_seed_gives_other_codes_and_orders(synth, built, tmp_path):
    other = randomize(synth.study_path, synth.root, tmp_path, set_id="s1", seed=987654321098765,
                      workers=1)
    assert not {r.code for r in read_key(built.key_dir)} & {r.code for r in read_key(other.key_dir)}


def test_without_a_seed_a_long_one_is_drawn_and_kept_only_in_the_key(synth, tmp_path):
    made = randomize(synth.study_path, synth.root, tmp_path, set_id="s2", workers=1)
    seed = (made.key_dir / "seed.txt").read_text().strip()
    assert seed == str(made.seed) and made.seed > 2**64
    assert not [w for w in made.warnings if "is short" in w]  # no warning about the seed drawn
    assert all(seed.encode() not in p.read_bytes() for p in made.rater_dir.rglob("*") if p.is_file())


def test_a_short_seed_is_used_with_a_warning(synth, tmp_path):
    made = randomize(synth.study_path, synth.root, tmp_path, set_id="s3", seed=42, workers=1)
    assert (made.key_dir / "seed.txt").read_text() == "42\n"
    assert made.warnings == ["the seed 42 is short: whoever knows it and the photo names can rebuild "
                             "the key; keep it secret, or leave it out to draw a long one"]


def test_the_seed_in_the_study_file_is_used_when_none_is_given(synth, tmp_path):
    study = replace(synth.study, blinding=replace(synth.study.blinding, seed=5555555555555))
    made = randomize(study, synth.root, tmp_path, set_id="s4", workers=1)
    assert (made.key_dir / "seed.txt").read_text() == "5555555555555\n"


def test_an_existing_set_is_never_overwritten(synth, built):
    before = _tree(built.path)
    with pytest.raises(BlindError, match="exists already and is never overwritten"):
        randomize(synth.study_path, synth.root, built.path.parent, set_id="s1", seed=1, workers=1)
    assert _tree(built.path) == before


def test_a_set_id_that_is_not_a_plain_name_is_refused(synth, tmp_path):
    with pytest.raises(BlindError, match="letters, digits and dashes"):
        randomize(synth.study_path, synth.root, tmp_path, set_id="../escape", workers=1)
    assert list(tmp_path.iterdir()) == []


def _copy_photos(synth, dest: Path) -> Path:
    dest.mkdir()
    for p in synth.photos:
        (dest / p.path.name).write_bytes((synth.root / p.path).read_bytes())
    return dest


def test_the_same_pixels_in_two_slots_fail_after_deid_and_leave_nothing(synth, tmp_path):
    images = _copy_photos(synth, tmp_path / "images")
    target = next(p for p in synth.photos if p.path.suffix.lower() == ".jpg"
                  and p.timepoint == "month12" and p.orientation == 1)
    source = next(p for p in synth.photos if p.participant != target.participant
                  and p.region == target.region and p.timepoint == "baseline")
    # the same pixels saved as PNG under the other participant's name: other bytes, same pixels
    (images / target.path).unlink()
    png = images / target.path.with_suffix(".png").name
    with Image.open(synth.root / source.path) as im:
        im.save(png)
    (images / source.path).unlink()
    with Image.open(png) as im:
        im.save(images / source.path.with_suffix(".png").name, compress_level=1)
    out = tmp_path / "out"
    with pytest.raises(IngestError, match="identical pixels") as exc:
        randomize(synth.study_path, images, out, set_id="dup", seed=10**13, workers=1)
    assert png.name in str(exc.value)
    assert not out.exists()  # not even the output folder this run made


def test_a_photo_truncated_in_its_image_data_is_refused_by_name_after_decoding_and_leaves_nothing(
        synth, tmp_path):
    images = _copy_photos(synth, tmp_path / "images")
    victim = images / next(p.path.name for p in synth.photos if p.path.suffix.lower() == ".jpg")
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out"
    with pytest.raises(IngestError) as exc:
        randomize(synth.study_path, images, out, set_id="cut", seed=10**13, workers=2)
    assert str(exc.value).startswith(f"{images}: 1 photo file(s) cannot be used; nothing was written.")
    assert f"\n  {victim.name}: the image data is truncated" in str(exc.value)
    assert not out.exists()


def test_bad_photos_are_refused_before_anything_is_written(synth, tmp_path):
    images = _copy_photos(synth, tmp_path / "images")
    (images / "S1001_month12_elbow.jpg").write_bytes(b"")
    out = tmp_path / "out"
    with pytest.raises(IngestError, match="S1001_month12_elbow.jpg"):
        randomize(synth.study_path, images, out, set_id="bad", workers=1)
    assert not out.exists()


def test_an_interruption_midway_leaves_nothing_behind(synth, tmp_path):
    def interrupt(done, total):
        if done == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        randomize(synth.study_path, synth.root, tmp_path, set_id="int", seed=10**13, workers=1,
                  progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_reference_photos_per_level_are_deidentified_into_the_rater_folder(synth, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    for value in (1, 3, 5):
        img = Image.new("RGB", (80, 60), (40 * value, 90, 120))
        exif = Image.Exif()
        exif[0x010E] = f"reference S1001 level {value}"
        img.save(refs / f"{value}.jpg", exif=exif)
    text = synth.study_path.read_text().replace(
        '[regions.face]\nscale = "wsrs"', f'[regions.face]\nscale = "wsrs"\nreferences = "{refs}"')
    study = parse_study(text)
    made = randomize(study, synth.root, tmp_path / "out", set_id="refs", seed=10**13, workers=1)
    data = json.loads((made.rater_dir / "set.json").read_text())
    assert data["references"] == {"wsrs": {str(v): f"references/wsrs/{v}.jpg" for v in (1, 3, 5)}}
    for v in (1, 3, 5):
        path = made.rater_dir / "references" / "wsrs" / f"{v}.jpg"
        assert b"S1001" not in path.read_bytes()
        with Image.open(path) as im:
            assert im.format == "JPEG" and not im.getexif()


def test_a_reference_photo_not_named_after_a_level_is_refused(synth, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    Image.new("RGB", (20, 20)).save(refs / "7.jpg")
    text = synth.study_path.read_text().replace(
        '[regions.face]\nscale = "wsrs"', f'[regions.face]\nscale = "wsrs"\nreferences = "{refs}"')
    with pytest.raises(BlindError, match="7 is not a level of wsrs"):
        randomize(parse_study(text), synth.root, tmp_path / "out", set_id="r", workers=1)
    assert not (tmp_path / "out" / "r").exists()


def test_a_pairs_set_shows_baseline_and_follow_up_side_by_side(synth, tmp_path):
    study = replace(synth.study, blinding=replace(synth.study.blinding, presentation="pairs",
                                                  repeat_fraction=0.2))
    made = randomize(study, synth.root, tmp_path, set_id="pairs", seed=10**13, workers=1)
    assert made.counts == {"photos": 30, "repeats": 3, "items": 18, "pairs": 15}
    rows = read_key(made.key_dir)
    data = json.loads((made.rater_dir / "worklists" / "derm1.json").read_text())
    assert len(data["items"]) == 18
    by_code = {r.code: r for r in rows}
    for item in data["items"]:
        assert item["kind"] == "pair" and len(item["photos"]) == 2
        left, right = (by_code[c] for c in item["photos"])
        assert left.pair == right.pair == item["item"]
        assert (left.pair_side, right.pair_side) == ("left", "right")
        assert {left.timepoint, right.timepoint} == {"baseline", "month12"}
        assert left.participant == right.participant and left.region == right.region
    assert json.loads((made.rater_dir / "set.json").read_text())["presentation"] == "pairs"
    assert audit_set(made.rater_dir, made.key_dir) == []


def test_a_study_of_regions_per_arm_is_blinded(tmp_path):
    synth = make_study(tmp_path / "trial", size=(48, 36), arms={
        "UC-MSC secretome": (4, ("face", "neck")), "UC-explant secretome": (5, ("hands",))},
        study_id="NCT06217627")
    made = randomize(load_study(synth.study_path), synth.root, tmp_path / "out", set_id="arms",
                     seed=10**13, workers=1)
    assert made.counts["photos"] == 4 * 2 * 2 + 5 * 2
    assert audit_set(made.rater_dir, made.key_dir) == []


def test_no_stray_folder_is_left_in_the_output_folder(built):
    assert [p.name for p in built.path.parent.iterdir()] == ["s1"]
    assert not any(name.startswith(".") for name in os.listdir(built.path.parent))


BAD_INPUTS = {
    "empty": lambda d, good: (d / "S1009_baseline_face.jpg").write_bytes(b""),
    "not an image": lambda d, good: (d / "S1009_baseline_face.jpg").write_text("hello"),
    "truncated": lambda d, good: (d / "S1009_baseline_face.jpg").write_bytes(good.read_bytes()[:400]),
    "unknown timepoint": lambda d, good: (d / "S1009_week2_face.jpg").write_bytes(b"x" + good.read_bytes()),
    "unknown region": lambda d, good: (d / "S1009_baseline_knee.jpg").write_bytes(b"x" + good.read_bytes()),
    "same bytes": lambda d, good: (d / "S1009_baseline_face.jpg").write_bytes(good.read_bytes()),
    "two files": lambda d, good: (d / f"{good.stem}.png").write_bytes(good.read_bytes()),
    "link outside": lambda d, good: (d / "S1009_baseline_face.jpg").symlink_to(d.parent / "outside.jpg"),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_each_bad_input_is_refused_naming_the_file_and_nothing_is_written(kind, synth, tmp_path):
    images = _copy_photos(synth, tmp_path / "images")
    good = images / next(p.path for p in synth.photos if p.path.suffix == ".JPG")
    (tmp_path / "outside.jpg").write_bytes(good.read_bytes() + b"\0")
    before = set(images.iterdir())
    BAD_INPUTS[kind](images, good)
    (added,) = set(images.iterdir()) - before
    out = tmp_path / "out"
    with pytest.raises(IngestError) as exc:
        randomize(synth.study_path, images, out, set_id="bad", seed=10**13, workers=1)
    assert f"\n  {added.name}: " in str(exc.value)
    assert not out.exists()
