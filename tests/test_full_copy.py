"""The full copy for zoom: per region as large as every photo reaches without being enlarged."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from PIL import Image, ImageOps

from assess.audit import audit_set
from assess.blind import randomize, read_key
from assess.study import StudyError, parse_study
from assess.synth import make_study

NORMALIZE = {"long_edge": 3000, "display_long_edge": 256, "quality": 90, "aspect": "4:3",
             "fit": "crop"}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    # baseline photos 400 x 300 (faces upright), follow-up phones larger and wider
    return make_study(tmp_path_factory.mktemp("raw") / "images", participants=3, size=(400, 300),
                      regions={"face": "wsrs", "hands": "merz-hand"}, repeat_fraction=0,
                      normalize=NORMALIZE)


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory):
    return randomize(raw.study_path, raw.root, tmp_path_factory.mktemp("sets"), set_id="z1", seed=5,
                     workers=1)


def _sizes(made, kind):
    """region -> {(width, height) of its copies of ``kind``}."""
    rows = read_key(made.key_dir)
    out = defaultdict(set)
    for r in rows:
        with Image.open(made.rater_dir / "images" / kind / f"{r.code}.jpg") as im:
            out[r.region].add(im.size)
    return out


def _sources(raw, made):
    """region -> upright (width, height) of each raw photo in the set."""
    out = defaultdict(list)
    for r in read_key(made.key_dir):
        with Image.open(raw.root / r.source_file) as im:
            out[r.region].append(ImageOps.exif_transpose(im).size)
    return out


def test_every_full_copy_of_a_region_has_one_size_and_no_photo_is_enlarged(raw, built):
    full = _sizes(built, "full")
    for region, sources in _sources(raw, built).items():
        assert len(full[region]) == 1, region  # the files cannot tell the cameras apart
        (cw, ch), = full[region]
        # "crop": the canvas is filled, so every photo covers it at its own size or larger
        assert all(cw <= w + 1 and ch <= h + 1 for w, h in sources), (region, (cw, ch), sources)
        # and it is the largest such: the smallest photo fills it exactly in one direction
        assert any(abs(cw - w) <= 1 or abs(ch - h) <= 1 for w, h in sources)


def test_the_full_copy_is_larger_than_the_display_copy(built):
    full, display = _sizes(built, "full"), _sizes(built, "display")
    for region in full:
        (fw, fh), = full[region]
        (dw, dh), = display[region]
        assert max(dw, dh) == 256 and max(fw, fh) == 400 > max(dw, dh)


def test_the_full_copies_pass_the_leak_audit(built):
    assert audit_set(built.rater_dir, built.key_dir) == []


def test_the_study_file_sets_a_regions_full_copy(raw, tmp_path):
    text = raw.study_path.read_text(encoding="utf-8")
    study_path = raw.root / "study-600.toml"
    study_path.write_text(text.replace('[regions.hands]\nscale = "merz-hand"\n',
                                       '[regions.hands]\nscale = "merz-hand"\nfull_long_edge = 320\n'),
                          encoding="utf-8")
    made = randomize(study_path, raw.root, tmp_path, set_id="z2", seed=5, workers=1)
    full = _sizes(made, "full")
    assert full["hands"] == {(320, 240)}
    assert full["face"] == {(300, 400)}  # chosen from the photos
    set_json = json.loads((made.rater_dir / "set.json").read_text(encoding="utf-8"))
    assert "full_long_edge" not in json.dumps(set_json)  # nothing new reaches the rater's folder


BASE = '''
[study]
id = "T"
timepoints = ["baseline", "month12"]
[regions.face]
scale = "wsrs"
{extra}
[normalize]
display_long_edge = 1600
'''


def test_a_regions_full_long_edge_is_read_from_the_study_file():
    study = parse_study(BASE.format(extra="full_long_edge = 4000"))
    assert study.regions["face"].full_long_edge == 4000
    assert parse_study(BASE.format(extra="")).regions["face"].full_long_edge is None


@pytest.mark.parametrize("value, message", [
    ('"big"', "whole number of pixels"),
    ("100", "whole number of pixels"),
    ("99999", "whole number of pixels"),
    ("true", "whole number of pixels"),
    ("1000", r"must not be below normalize\.display_long_edge \(1600\)"),
])
def test_a_wrong_full_long_edge_is_refused_naming_the_field(value, message):
    with pytest.raises(StudyError, match=r"regions\.face\.full_long_edge: .*" + message):
        parse_study(BASE.format(extra=f"full_long_edge = {value}"))


def test_the_template_documents_full_long_edge():
    from assess.study import KNOWN_KEYS, TEMPLATE

    assert "full_long_edge" in KNOWN_KEYS["regions.*"]
    assert "full_long_edge = " in TEMPLATE
