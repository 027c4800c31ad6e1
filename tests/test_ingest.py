"""Finding and checking raw photos before anything is written."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from assess.ingest import (IngestError, Photo, check_decoded, check_pixel_duplicates, discover,
                           format_counts, parse_name)
from assess.study import parse_study

STUDY = parse_study('''
[study]
id = "T1"
timepoints = ["baseline", "month12"]
[regions.face]
scale = "wsrs"
[regions.hands]
scale = "merz-hand"
''')


def photo(path: Path, colour=(200, 150, 120), size=(40, 30), fmt=None) -> Path:
    """A small real image; each colour gives other pixels and other bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour)
    img.putpixel((0, 0), (colour[2], colour[0], colour[1]))
    img.save(path, format=fmt)
    return path


def full_set(folder: Path, participants=("S1", "S2")) -> None:
    n = 0
    for p in participants:
        for t in ("baseline", "month12"):
            for r in ("face", "hands"):
                n += 1
                photo(folder / f"{p}_{t}_{r}.jpg", colour=(10 * n, 100, 200 - 5 * n))


def bomb_png(path: Path, width=20000, height=20000) -> Path:
    """A PNG header announcing 400 megapixels, as a decompression bomb does."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def problems_of(excinfo) -> dict[str, str]:
    return dict(excinfo.value.problems)


def test_photos_are_found_by_name_whatever_the_case_of_extension_timepoint_and_region(tmp_path):
    photo(tmp_path / "S1_Baseline_FACE.JPG")
    photo(tmp_path / "S1_month12_face.jpeg", colour=(1, 2, 3))
    photo(tmp_path / "S1_BASELINE_hands_left.PNG", colour=(4, 5, 6))
    photo(tmp_path / "S1_month12_Hands_left.tif", colour=(7, 8, 9), fmt="TIFF")
    inv = discover(tmp_path, STUDY)
    assert [(p.participant, p.timepoint, p.region, p.view, p.path.name) for p in inv.photos] == [
        ("S1", "baseline", "face", "", "S1_Baseline_FACE.JPG"),
        ("S1", "month12", "face", "", "S1_month12_face.jpeg"),
        ("S1", "baseline", "hands", "left", "S1_BASELINE_hands_left.PNG"),
        ("S1", "month12", "hands", "left", "S1_month12_Hands_left.tif"),
    ]
    assert inv.warnings == []
    assert all(p.width == 40 and p.height == 30 and len(p.sha256) == 64 for p in inv.photos)


def test_a_heic_photo_is_found_and_read(tmp_path):
    import pillow_heif

    pillow_heif.register_heif_opener()
    photo(tmp_path / "S1_baseline_face.heic", fmt="HEIF", size=(64, 48))
    photo(tmp_path / "S1_month12_face.jpg")
    inv = discover(tmp_path, STUDY)
    assert [p.format for p in inv.photos] == ["HEIF", "JPEG"]


def test_files_that_are_not_photos_are_left_alone(tmp_path):
    full_set(tmp_path)
    for name in ("study.toml", "README.md", "truth.csv", "manifest.csv", "notes.txt", ".DS_Store",
                 "S1_baseline_face.txt"):
        (tmp_path / name).write_text("participant S1 baseline\n")
    photo(tmp_path / "refs" / "face" / "1.jpg")
    study = parse_study(f'''
[study]
id = "T1"
timepoints = ["baseline", "month12"]
[regions.face]
scale = "wsrs"
references = "{tmp_path / 'refs' / 'face'}"
[regions.hands]
scale = "merz-hand"
''')
    inv = discover(tmp_path, study)
    assert len(inv.photos) == 8
    assert inv.warnings == []


def test_an_image_type_assess_does_not_read_is_a_warning_so_no_photo_is_lost_silently(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "S3_baseline_face.webp", fmt="WEBP")
    inv = discover(tmp_path, STUDY)
    assert len(inv.photos) == 8
    assert inv.warnings == ["1 file(s) of an image type assess does not read are left out: "
                            "S3_baseline_face.webp; export them as JPEG, PNG, TIFF or HEIC if they "
                            "are trial photos"]


def test_a_photo_whose_name_does_not_fit_the_convention_is_an_error_naming_it(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "IMG_0042.jpg")
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY)
    assert list(problems_of(exc)) == ["IMG_0042.jpg"]
    assert "IMG_0042.jpg: the name does not fit <participant>_<timepoint>_<region>" in str(exc.value)


def test_every_unusable_file_is_named_in_one_error(tmp_path):
    full_set(tmp_path)
    (tmp_path / "S3_baseline_face.jpg").write_bytes(b"")
    (tmp_path / "S3_month12_face.jpg").write_text("not a photo at all")
    good = photo(tmp_path / "S4_baseline_face.jpg", colour=(9, 9, 9), size=(400, 300))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])  # truncated
    photo(tmp_path / "S4_week6_face.jpg", colour=(8, 8, 8))
    photo(tmp_path / "S4_month12_elbow.jpg", colour=(7, 7, 7))
    bomb_png(tmp_path / "S5_baseline_face.png")
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY)
    problems = problems_of(exc)
    assert sorted(problems) == ["S3_baseline_face.jpg", "S3_month12_face.jpg", "S4_baseline_face.jpg",
                                "S4_month12_elbow.jpg", "S4_week6_face.jpg", "S5_baseline_face.png"]
    assert "empty" in problems["S3_baseline_face.jpg"]
    assert "not an image" in problems["S3_month12_face.jpg"]
    assert "truncated" in problems["S4_baseline_face.jpg"]
    assert "unknown timepoint 'week6'" in problems["S4_week6_face.jpg"]
    assert "unknown region 'elbow'" in problems["S4_month12_elbow.jpg"]
    assert "decompression bomb" in problems["S5_baseline_face.png"]
    message = str(exc.value)
    assert message.startswith(f"{tmp_path}: 6 photo file(s) cannot be used; nothing was written.")
    assert all(f"\n  {name}: " in message for name in problems)


def test_the_same_photo_in_two_slots_is_refused_naming_both_files(tmp_path):
    full_set(tmp_path)
    (tmp_path / "S3_baseline_face.jpg").write_bytes((tmp_path / "S1_baseline_face.jpg").read_bytes())
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY)
    problems = problems_of(exc)
    assert sorted(problems) == ["S1_baseline_face.jpg", "S3_baseline_face.jpg"]
    assert "identical bytes" in problems["S3_baseline_face.jpg"]
    assert "S1_baseline_face.jpg" in problems["S3_baseline_face.jpg"]


def test_two_files_for_one_slot_are_refused(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "S1_Baseline_face.png", colour=(1, 1, 1))
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY)
    assert sorted(problems_of(exc)) == ["S1_Baseline_face.png", "S1_baseline_face.jpg"]
    assert "participant S1, baseline, face has 2 files" in str(exc.value)


def test_a_link_leaving_the_images_folder_is_refused(tmp_path):
    images = tmp_path / "images"
    full_set(images)
    outside = photo(tmp_path / "elsewhere" / "private.jpg", colour=(3, 3, 3))
    (images / "S3_baseline_face.jpg").symlink_to(outside)
    with pytest.raises(IngestError) as exc:
        discover(images, STUDY)
    assert list(problems_of(exc)) == ["S3_baseline_face.jpg"]
    assert "a link that leaves the images folder" in str(exc.value)


def test_a_link_inside_the_images_folder_is_followed(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "originals" / "x.jpg", colour=(3, 3, 3))
    (tmp_path / "S3_baseline_face.jpg").symlink_to(tmp_path / "originals" / "x.jpg")
    assert len(discover(tmp_path, STUDY).photos) == 9


def test_a_manifest_maps_any_file_names_to_slots(tmp_path):
    photo(tmp_path / "visit1" / "DSC_0001.JPG", colour=(1, 2, 3))
    photo(tmp_path / "visit2" / "IMG_7788.jpg", colour=(4, 5, 6))
    photo(tmp_path / "stray.jpg", colour=(7, 8, 9))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("participant,timepoint,region,file,view\n"
                        "S1,baseline,face,visit1/DSC_0001.JPG,\n"
                        "S1,Month12,Face,visit2/IMG_7788.jpg,\n")
    inv = discover(tmp_path, STUDY, manifest=manifest)
    assert [(p.participant, p.timepoint, p.region, p.path.as_posix()) for p in inv.photos] == [
        ("S1", "baseline", "face", "visit1/DSC_0001.JPG"),
        ("S1", "month12", "face", "visit2/IMG_7788.jpg")]
    assert inv.warnings == [f"1 photo file(s) in {tmp_path} are not in the manifest and are left "
                            "out: stray.jpg"]


def test_manifest_paths_that_leave_the_images_folder_are_refused(tmp_path):
    images = tmp_path / "images"
    photo(images / "a.jpg")
    photo(tmp_path / "outside.jpg", colour=(1, 1, 1))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("participant,timepoint,region,file\n"
                        "S1,baseline,face,a.jpg\n"
                        "S1,month12,face,../outside.jpg\n"
                        f"S2,baseline,face,{tmp_path / 'outside.jpg'}\n"
                        "S2,month12,face,missing.jpg\n")
    with pytest.raises(IngestError) as exc:
        discover(images, STUDY, manifest=manifest)
    problems = problems_of(exc)
    assert sorted(problems) == sorted(["../outside.jpg", str(tmp_path / "outside.jpg"), "missing.jpg"])
    assert "leaves the images folder" in problems["../outside.jpg"]
    assert "absolute path" in problems[str(tmp_path / "outside.jpg")]
    assert "no such file" in problems["missing.jpg"]


def test_a_manifest_without_the_needed_columns_is_refused(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("subject,visit,file\nS1,baseline,a.jpg\n")
    with pytest.raises(IngestError, match="columns participant, timepoint, region missing"):
        discover(tmp_path, STUDY, manifest=manifest)


def test_a_participant_missing_a_timepoint_is_a_warning_not_an_error(tmp_path):
    full_set(tmp_path)
    (tmp_path / "S2_month12_hands.jpg").unlink()
    inv = discover(tmp_path, STUDY)
    assert len(inv.photos) == 7
    assert inv.warnings == ["participant S2 has no hands photo at month12"]


def test_an_empty_folder_is_an_error(tmp_path):
    with pytest.raises(IngestError, match="no photos found"):
        discover(tmp_path, STUDY)


def test_the_counts_table_has_every_region_and_timepoint(tmp_path):
    full_set(tmp_path, participants=("S1", "S2", "S3"))
    (tmp_path / "S3_month12_face.jpg").unlink()
    inv = discover(tmp_path, STUDY)
    assert format_counts(inv) == ("region  baseline  month12\n"
                                  "face           3        2\n"
                                  "hands          3        3\n"
                                  "total          6        5")


def test_the_same_pixels_under_other_bytes_are_refused_after_decoding():
    a = Photo("S1", "baseline", "face", "", Path("S1_baseline_face.png"))
    b = Photo("S2", "baseline", "face", "", Path("S2_baseline_face.png"))
    c = Photo("S2", "month12", "face", "", Path("S2_month12_face.png"))
    check_pixel_duplicates([a, b, c], ["x", "y", "z"])
    with pytest.raises(IngestError) as exc:
        check_pixel_duplicates([a, b, c], ["x", "y", "x"])
    assert sorted(problems_of(exc)) == ["S1_baseline_face.png", "S2_month12_face.png"]
    assert "identical pixels" in str(exc.value)


def test_names_with_too_many_or_too_few_parts_do_not_parse():
    assert parse_name("S1_baseline.jpg") is None
    assert parse_name("S1_baseline_face_left_extra.jpg") is None
    assert parse_name("S-1_baseline_face.jpg") is None
    assert parse_name("S1_baseline_face-lower_left.jpg") == ("S1", "baseline", "face-lower", "left")


def test_a_file_listed_twice_in_the_manifest_is_refused(tmp_path):
    photo(tmp_path / "a.jpg")
    photo(tmp_path / "b.jpg", colour=(1, 1, 1))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("participant,timepoint,region,file\n"
                        "S1,baseline,face,a.jpg\nS1,month12,face,b.jpg\nS2,baseline,face,a.jpg\n")
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY, manifest=manifest)
    assert problems_of(exc) == {"a.jpg": "listed 2 times in manifest.csv; list each photo once"}


def truncate(path: Path) -> Path:
    """Cut a JPEG in the middle of its compressed data (its header stays whole)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def test_reading_headers_only_leaves_truncated_data_to_the_caller_that_decodes(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "S3_baseline_face.jpg", colour=(9, 9, 9), size=(400, 300))
    truncate(tmp_path / "S3_baseline_face.jpg")
    inv = discover(tmp_path, STUDY, decode=False)
    assert "S3_baseline_face.jpg" in {str(p.path) for p in inv.photos}
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY)
    assert "truncated" in problems_of(exc)["S3_baseline_face.jpg"]


def test_reading_headers_only_still_names_truncated_photos_when_another_is_refused(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "S3_baseline_face.jpg", colour=(9, 9, 9), size=(400, 300))
    truncate(tmp_path / "S3_baseline_face.jpg")
    (tmp_path / "S3_month12_face.jpg").write_bytes(b"")
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY, decode=False)
    problems = problems_of(exc)
    assert sorted(problems) == ["S3_baseline_face.jpg", "S3_month12_face.jpg"]
    assert "truncated" in problems["S3_baseline_face.jpg"]
    assert "empty" in problems["S3_month12_face.jpg"]


def test_photos_that_failed_to_decode_and_the_same_pixels_in_two_slots_are_named_in_one_error():
    photos = [Photo("S1", "baseline", "face", "", Path("S1_baseline_face.jpg")),
              Photo("S2", "baseline", "face", "", Path("S2_baseline_face.png")),
              Photo("S3", "baseline", "face", "", Path("S3_baseline_face.jpg")),
              Photo("S4", "baseline", "face", "", Path("S4_baseline_face.jpg"))]
    with pytest.raises(IngestError) as exc:
        check_decoded(Path("images"), photos, ["a", "a", None, "b"],
                      {2: "images/S3_baseline_face.jpg: the image data is truncated or corrupt"})
    problems = problems_of(exc)
    assert sorted(problems) == ["S1_baseline_face.jpg", "S2_baseline_face.png", "S3_baseline_face.jpg"]
    assert problems["S3_baseline_face.jpg"] == "the image data is truncated or corrupt"
    assert "identical pixels" in problems["S1_baseline_face.jpg"]
    assert str(exc.value).startswith("images: 3 photo file(s) cannot be used; nothing was written.")


# ----------------------------------------------------------------- every file accounted for


def test_jpeg_aliases_jfif_jpe_and_hif_are_read_as_photos(tmp_path):
    photo(tmp_path / "S1_baseline_face.jfif", fmt="JPEG")
    photo(tmp_path / "S1_month12_face.JPE", colour=(1, 2, 3), fmt="JPEG")
    inv = discover(tmp_path, STUDY)
    assert [p.path.name for p in inv.photos] == ["S1_baseline_face.jfif", "S1_month12_face.JPE"]
    assert all(p.format == "JPEG" for p in inv.photos)


def test_a_photo_whose_name_ends_in_a_space_is_refused_naming_it(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "S3_month12_face.jpg ", colour=(9, 9, 9), fmt="JPEG")
    photo(tmp_path / " S3_baseline_face.jpg", colour=(8, 9, 9), fmt="JPEG")
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY)
    problems = problems_of(exc)
    assert set(problems) == {"'S3_month12_face.jpg '", "' S3_baseline_face.jpg'"}
    assert "rename it, e.g. to 'S3_month12_face.jpg'" in problems["'S3_month12_face.jpg '"]


def test_a_photo_with_a_newline_before_its_extension_is_refused_not_read_as_its_slot(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "S3_month12_face\n.jpg", colour=(9, 9, 9), fmt="JPEG")
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY)
    assert list(problems_of(exc)) == ["'S3_month12_face\\n.jpg'"]


def test_an_image_without_a_photo_extension_is_refused_when_its_name_fits_a_slot(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "S3_month12_face", colour=(9, 9, 9), fmt="JPEG")
    photo(tmp_path / "S3_baseline_face.jpg.bak", colour=(9, 8, 9), fmt="PNG")
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY)
    assert {f: why.split(";")[0] for f, why in problems_of(exc).items()} == {
        "S3_month12_face": "an image without a photo extension",
        "S3_baseline_face.jpg.bak": "an image without a photo extension"}


def test_an_image_without_a_photo_extension_and_another_name_is_named_in_a_warning(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "scan0001.dat", colour=(9, 9, 9), fmt="TIFF")
    inv = discover(tmp_path, STUDY)
    assert len(inv.photos) == 8
    assert inv.warnings == ["1 file(s) hold an image but have no photo extension and are left out: "
                            "scan0001.dat; give them their extension and a "
                            "<participant>_<timepoint>_<region> name if they are trial photos"]


def test_photos_in_a_sub_folder_are_named_in_a_warning(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "month12" / "S3_month12_face.jpg", colour=(9, 9, 9))
    photo(tmp_path / "month12" / "more" / "S4_month12_face.jpg", colour=(9, 9, 8))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "protocol.pdf").write_text("x")
    inv = discover(tmp_path, STUDY)
    assert len(inv.photos) == 8
    assert inv.warnings == [f"photos in 1 sub-folder(s) are left out (only the top of {tmp_path} is "
                            "read by name): month12/ (2); move them up or list them in a manifest "
                            "(--manifest)"]


def test_a_hidden_image_is_named_in_a_warning_and_a_hidden_non_image_is_not(tmp_path):
    full_set(tmp_path)
    photo(tmp_path / "._S1_baseline_face.jpg", colour=(9, 9, 9))
    (tmp_path / ".hidden-notes").write_text("x")
    inv = discover(tmp_path, STUDY)
    assert inv.warnings == ["1 hidden file(s) are left out: ._S1_baseline_face.jpg"]


def test_every_file_of_a_messy_folder_is_ingested_or_named(tmp_path):
    """The property itself: each image file appears in the photos, the refusal or a warning."""
    full_set(tmp_path)
    names = ["S3_baseline_face.jfif", "S3_month12_face.jpe", "odd.webp", "noext", ".x.png",
             "sub/S9_baseline_face.jpg"]
    for n, name in enumerate(names):
        photo(tmp_path / name, colour=(n, 9, 9), fmt="JPEG")
    inv = discover(tmp_path, STUDY)
    said = " ".join(inv.warnings) + " ".join(str(p.path) for p in inv.photos)
    for name in names:
        assert name.split("/")[0] in said, name


def test_a_manifest_names_unlisted_photos_in_sub_folders_too(tmp_path):
    photo(tmp_path / "visit1" / "DSC_0001.JPG", colour=(1, 2, 3))
    photo(tmp_path / "visit2" / "IMG_7788.jfif", colour=(4, 5, 6))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("participant,timepoint,region,file\nS1,baseline,face,visit1/DSC_0001.JPG\n")
    inv = discover(tmp_path, STUDY, manifest=manifest)
    assert inv.warnings[0] == (f"1 photo file(s) in {tmp_path} are not in the manifest and are "
                               "left out: visit2/IMG_7788.jfif")


# ----------------------------------------------------------------- frames and near-duplicates


def two_page_tiff(path: Path) -> Path:
    frames = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (32, 24), (30, 200, 30))]
    frames[0].save(path, format="TIFF", save_all=True, append_images=frames[1:])
    return path


def test_a_multi_page_tiff_is_refused_naming_its_frames_and_the_setting(tmp_path):
    full_set(tmp_path)
    two_page_tiff(tmp_path / "S3_baseline_face.tif")
    with pytest.raises(IngestError) as exc:
        discover(tmp_path, STUDY)
    assert problems_of(exc) == {"S3_baseline_face.tif": (
        'holds 2 frames (1: 64x48, 2: 32x24); say which is the photo in study.toml: [photos] '
        'frames = {"S3_baseline_face.tif" = 1}, or save that frame alone')}


def test_a_multi_page_tiff_is_read_at_the_frame_the_study_names(tmp_path):
    two_page_tiff(tmp_path / "S3_baseline_face.tif")
    study = parse_study(STUDY.text + '[photos]\nframes = {"S3_baseline_face.tif" = 2, "gone.tif" = 1}\n')
    inv = discover(tmp_path, study)
    assert [(p.frame, p.width, p.height) for p in inv.photos] == [(1, 32, 24)]
    assert ("[photos] in the study file names 1 file(s) that are not photos of the folder: gone.tif; "
            "check the names") in inv.warnings


def skin_photo(path: Path, visit: int, size=(480, 360), quality=92) -> Path:
    from assess.synth import draw_skin

    img = Image.fromarray(draw_skin(size[1], size[0], "face", 0.5, geometry_seed=(3,),
                                    visit_seed=(3, visit)))
    img.save(path, quality=quality)
    return path


def near_set(folder: Path) -> None:
    """S1's follow-up "filled in" from the baseline (re-saved at quality 60, halved); S2 genuine."""
    folder.mkdir(parents=True, exist_ok=True)
    base = skin_photo(folder / "S1_baseline_face.jpg", 1)
    with Image.open(base) as img:
        img.resize((240, 180)).save(folder / "S1_month12_face.jpg", quality=60)
    skin_photo(folder / "S2_baseline_face.jpg", 1, size=(400, 300))
    skin_photo(folder / "S2_month12_face.jpg", 2, size=(400, 300))


NEAR_STUDY = '''
[study]
id = "T2"
timepoints = ["baseline", "month12"]
[regions.face]
scale = "wsrs"
[blinding]
raters = ["derm1"]
repeat_fraction = 0
seed = 12345678901234
[normalize]
long_edge = 480
display_long_edge = 320
'''


def test_a_follow_up_filled_in_from_the_baseline_is_refused_naming_both_files(tmp_path):
    from assess.blind import randomize

    near_set(tmp_path / "images")
    with pytest.raises(IngestError) as exc:
        randomize(parse_study(NEAR_STUDY), tmp_path / "images", tmp_path / "out", set_id="near",
                  workers=1)
    problems = problems_of(exc)
    assert set(problems) == {"S1_baseline_face.jpg", "S1_month12_face.jpg"}
    assert problems["S1_month12_face.jpg"].startswith("looks like the same photo as "
                                                      "S1_baseline_face.jpg")
    assert '[photos] distinct = [["S1_baseline_face.jpg", "S1_month12_face.jpg"]]' in \
        problems["S1_month12_face.jpg"]
    assert not (tmp_path / "out" / "near").exists()


def test_a_pair_confirmed_distinct_in_the_study_passes_with_a_warning_and_is_kept_in_the_key(tmp_path):
    from assess.blind import randomize

    near_set(tmp_path / "images")
    text = NEAR_STUDY + '[photos]\ndistinct = [["S1_month12_face.jpg", "S1_baseline_face.jpg"]]\n'
    made = randomize(parse_study(text), tmp_path / "images", tmp_path / "out", set_id="near", workers=1)
    assert any(w.startswith("S1_baseline_face.jpg and S1_month12_face.jpg look like the same photo")
               for w in made.warnings)
    assert "distinct = [[" in (made.key_dir / "study.toml").read_text()
