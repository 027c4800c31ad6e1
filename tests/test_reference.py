"""Reference photos: the CSV's checks, and how randomize codes, de-identifies and keys them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from assess.blind import (CODE_RE, REFERENCE_COLUMNS, BlindError, randomize, read_key,
                          read_reference_key, reference_commitment)
from assess.reference import ReferenceError, read_reference
from assess.study import load_study
from assess.synth import make_study

from rater_sets import add_reference_photos

SIZE = (96, 72)
QUALIFICATION = "[qualification]\nmin_exact = 0.5\nattempts = 2\nfeedback = \"each\"\n"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """2 participants x 2 visits x face, two raters, four training photos."""
    synth = make_study(tmp_path_factory.mktemp("raw") / "images", participants=2,
                       regions={"face": "wsrs"}, size=SIZE, repeat_fraction=0,
                       raters=("derm1", "derm2"), heic_fraction=0, rotated_fraction=0)
    add_reference_photos(synth.study_path, "face", (1, 2, 4, 5), SIZE)
    with open(synth.study_path, "a", encoding="utf-8") as fh:
        fh.write("\n" + QUALIFICATION)
    return synth


@pytest.fixture(scope="module")
def built(study, tmp_path_factory):
    return randomize(study.study_path, study.root, tmp_path_factory.mktemp("sets"), set_id="q1",
                     seed=424242424242424, workers=1)


# ----------------------------------------------------------------------------- the CSV


def _csv(folder: Path, body: str) -> Path:
    path = folder / "other-reference.csv"  # the study's own reference.csv is left as it is
    path.write_text("file,region,score,use\n" + body, encoding="utf-8")
    return path


@pytest.mark.parametrize("row, field, says", [
    ("images-reference/nope.jpg,face,3,training", "file", "does not exist"),
    ("images-reference/face-00.jpg,elbow,3,training", "region", "not a region"),
    ("images-reference/face-00.jpg,face,9,training", "score", "not a level"),
    ("images-reference/face-00.jpg,face,3,practice", "use", "training or calibration"),
    ("study.toml,face,3,training", "file", "not a photo"),
])
def test_a_wrong_row_is_refused_naming_the_csv_the_row_and_the_field(study, row, field, says):
    path = _csv(study.root, "images-reference/face-01.jpg,face,2,training\n" + row + "\n")
    with pytest.raises(ReferenceError) as err:
        read_reference(path, study.study)
    message = str(err.value)
    assert message.startswith(f"{path}: row 3: {field}:"), message
    assert says in message


def test_a_photo_listed_twice_is_refused_even_for_another_use(study):
    path = _csv(study.root, "images-reference/face-01.jpg,face,2,training\n"
                            "images-reference/face-01.jpg,face,2,calibration\n")
    with pytest.raises(ReferenceError, match=r"row 3: file: .* listed already in row 2"):
        read_reference(path, study.study)


def test_the_reader_gives_each_photo_with_its_region_view_score_and_use(study):
    path = _csv(study.root, "images-reference/face-01.jpg,face,2,training\n"
                            "images-reference/face-02.jpg,face,4,calibration\n")
    refs = read_reference(path, study.study)
    assert [(r.file, r.region, r.view, r.score, r.use) for r in refs] == [
        ("images-reference/face-01.jpg", "face", "", 2, "training"),
        ("images-reference/face-02.jpg", "face", "", 4, "calibration")]
    assert refs[0].path == study.root / "images-reference" / "face-01.jpg"


# ----------------------------------------------------------------------------- the set


def test_every_training_photo_gets_a_new_code_for_each_rater_and_attempt(built):
    rows = read_reference_key(built.key_dir / "reference.csv")
    assert len(rows) == 4 * 2 * 2  # photos x raters x attempts
    codes = [r.code for r in rows]
    trial = {r.code for r in read_key(built.key_dir)}
    assert len(set(codes)) == len(codes) and not set(codes) & trial
    assert all(CODE_RE.match(c) for c in codes)
    per_photo = {}
    for r in rows:
        per_photo.setdefault(r.source_file, set()).add((r.rater, r.attempt))
    assert all(len(v) == 4 for v in per_photo.values())
    assert {r.score for r in rows} == {"1", "2", "4", "5"}
    header = (built.key_dir / "reference.csv").read_text(encoding="utf-8").splitlines()[0]
    assert tuple(header.split(",")) == REFERENCE_COLUMNS


def test_the_training_photos_are_not_trial_photos_of_the_set(built):
    key = read_key(built.key_dir)
    assert all("reference" not in r.source_file for r in key)
    assert len(key) == 2 * 2


def test_training_copies_look_like_trial_copies_size_dimensions_and_bytes_per_kind(built):
    rows = read_reference_key(built.key_dir / "reference.csv")
    trial = read_key(built.key_dir)
    for kind in ("full", "display"):
        sizes, dims = set(), set()
        for code in [r.code for r in rows] + [r.code for r in trial]:
            path = built.rater_dir / "images" / kind / f"{code}.jpg"
            sizes.add(path.stat().st_size)
            with Image.open(path) as img:
                dims.add(img.size)
        assert len(sizes) == 1 and len(dims) == 1, (kind, sizes, dims)
    # the same photo under two codes is a disguised copy: other bytes
    by_photo = {}
    for r in rows:
        by_photo.setdefault(r.source_file, []).append(r.blinded_sha256)
    assert all(len(set(v)) == len(v) for v in by_photo.values())


def test_each_rater_has_a_training_worklist_per_attempt_in_its_own_order(built):
    rows = read_reference_key(built.key_dir / "reference.csv")
    manifest = json.loads((built.rater_dir / "set.json").read_text(encoding="utf-8"))
    training = manifest["training"]
    assert training["attempts"] == 2 and training["feedback"] == "each"
    for rater in ("derm1", "derm2"):
        for n in (1, 2):
            rel = f"worklists/{rater}.training-{n}.json"
            assert rel in training["worklists"][rater]
            data = json.loads((built.rater_dir / rel).read_text(encoding="utf-8"))
            mine = {r.code for r in rows if r.rater == rater and r.attempt == str(n)}
            assert {it["item"] for it in data["items"]} == mine
            assert set(data["items"][0]) == {"item", "kind", "scale", "region", "photos"}
    live = json.loads((built.rater_dir / "worklists" / "derm1.json").read_text(encoding="utf-8"))
    assert {it["item"] for it in live["items"]} == {r.code for r in read_key(built.key_dir)}


def test_the_rater_folder_holds_commitments_never_the_reference_scores_or_salts(built):
    rows = read_reference_key(built.key_dir / "reference.csv")
    manifest = json.loads((built.rater_dir / "set.json").read_text(encoding="utf-8"))
    commitments = manifest["training"]["commitments"]
    assert set(commitments) == {r.code for r in rows}
    for r in rows:
        assert commitments[r.code] == reference_commitment(r.code, r.score, r.salt)
        # without the salt no level of the scale gives the commitment back
        assert all(reference_commitment(r.code, str(v), "") != commitments[r.code]
                   for v in range(1, 6))
    blob = b"".join(p.read_bytes() for p in built.rater_dir.rglob("*") if p.is_file())
    for r in rows:
        assert r.salt.encode() not in blob
        assert r.source_file.encode() not in blob
    assert not list(built.rater_dir.rglob("reference.csv"))
    assert b'"score"' not in (built.rater_dir / "set.json").read_bytes()


def test_the_seal_covers_the_reference_key(built):
    seal = json.loads((built.key_dir / "seal.json").read_text(encoding="utf-8"))
    assert "key/reference.csv" in seal["files"]
    assert "rater/worklists/derm2.training-2.json" in seal["files"]


def test_a_reference_photo_with_the_pixels_of_a_trial_photo_is_refused_and_nothing_is_left(
        study, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(study.root, root)
    trial = sorted(root.glob("*.jpg"))[0]
    shutil.copy(trial, root / "images-reference" / "face-01.jpg")
    out = tmp_path / "sets"
    with pytest.raises(BlindError, match=r"reference\.csv: row 3: file: images-reference/face-01"
                                         r"\.jpg has the pixels of the trial photo"):
        randomize(root / "study.toml", root, out, set_id="q2", seed=424242424242424, workers=1)
    assert not (out / "q2").exists()


def test_qualification_without_training_photos_is_refused(study, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(study.root, root)
    text = (root / "study.toml").read_text(encoding="utf-8")
    (root / "study.toml").write_text(text.replace('[reference]\nphotos = "reference.csv"\n', ""),
                                     encoding="utf-8")
    shutil.rmtree(root / "images-reference")
    with pytest.raises(BlindError, match=r"\[qualification\] needs training photos"):
        randomize(root / "study.toml", root, tmp_path / "sets", set_id="q3", seed=1, workers=1)


def test_the_study_resolves_the_reference_csv_against_its_folder(study):
    assert load_study(study.study_path).reference == study.root / "reference.csv"
