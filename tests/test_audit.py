"""The leak audit: every file of a rater folder, every byte, every property that could tell a timepoint."""

from __future__ import annotations

import csv
import io
import json
import os
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, PngImagePlugin

from assess.audit import AuditError, audit_report, audit_set, contact_sheet, walk_jpeg
from assess.cli import cli
from assess.deid import Spec, equalize_sizes, prepare_file, render_contact_sheet

SPEC = Spec(long_edge=256, display_long_edge=128, quality=90, aspect=(4, 3), fit="pad", portrait=False)
FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z
ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
KEY_COLUMNS = ["code", "participant", "timepoint", "region", "view", "source_file", "source_sha256",
               "blinded_sha256", "repeat_of", "pair", "pair_side"]


def photo(path: Path, seed: int, size=(320, 240), noisy: bool = False, **save) -> Path:
    rnd = random.Random(seed)
    img = Image.new("RGB", size, (rnd.randrange(90, 200), rnd.randrange(60, 160), rnd.randrange(50, 140)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        draw.line((x, y, x + rnd.randrange(-80, 80), y + rnd.randrange(-20, 20)), fill=(60, 40, 30), width=2)
    if noisy:  # a grainier camera: same scene, larger files
        grain = Image.effect_noise(size, 40).convert("RGB")
        img = Image.blend(img, grain, 0.25)
    img.save(path, "JPEG", **save)
    return path


def make_set(root: Path, participants: int = 12, worklist_order: str = "shuffled",
             followup_spec: Spec = SPEC, noisy_followup: bool = False,
             pad: bool = True, followup_size: tuple[int, int] = (320, 240)) -> tuple[Path, Path]:
    """A small blinded set in the formats.md layout, built with the real pixel pipeline.

    ``pad``: every file of a kind padded to one size, as ``assess randomize`` does (``False``:
    as sets were written before it did).
    """
    rater, key = root / "set" / "rater", root / "set" / "key"
    raw = root / "raw"
    raw.mkdir(parents=True)
    rnd = random.Random(7)
    codes: set[str] = set()
    rows = []
    for i in range(1, participants + 1):
        for timepoint in ("baseline", "month12"):
            code = ""
            while not code or code in codes:
                code = "".join(rnd.choice(ALPHABET) for _ in range(3)) + "-" + \
                       "".join(rnd.choice(ALPHABET) for _ in range(4))
            codes.add(code)
            name = f"P{i:02d}_{timepoint}_face.jpg"
            src = photo(raw / name, seed=i * 10 + (timepoint == "month12"),
                        size=(320, 240) if timepoint == "baseline" else followup_size,
                        noisy=noisy_followup and timepoint == "month12")
            spec = SPEC if timepoint == "baseline" else followup_spec
            res = prepare_file(src, rater / "images" / "full" / f"{code}.jpg",
                               rater / "images" / "display" / f"{code}.jpg", spec)
            rows.append({"code": code, "participant": f"P{i:02d}", "timepoint": timepoint, "region": "face",
                         "view": "", "source_file": name, "source_sha256": "", "blinded_sha256": res.full_sha256,
                         "repeat_of": "", "pair": "", "pair_side": ""})
    if pad:
        for copy in ("full", "display"):
            hashes = equalize_sizes(sorted((rater / "images" / copy).glob("*.jpg")))
            if copy == "full":
                for r in rows:
                    r["blinded_sha256"] = hashes[rater / "images" / "full" / f"{r['code']}.jpg"]
    items = [{"item": r["code"], "kind": "single", "scale": "wsrs", "region": "face", "photos": [r["code"]]}
             for r in rows]
    if worklist_order == "shuffled":
        random.Random(3).shuffle(items)
    else:  # every baseline photo first
        items.sort(key=lambda it: next(r["timepoint"] != "baseline" for r in rows if r["code"] == it["item"]))
    (rater / "worklists").mkdir(parents=True)
    (rater / "worklists" / "derm1.json").write_text(json.dumps({"rater": "derm1", "set_id": "trial-1",
                                                               "items": items}))
    (rater / "set.json").write_text(json.dumps({"format": 1, "set_id": "trial-1", "study_id": "NCT06217627",
                                                "title": "Skin study", "counts": {"photos": len(rows)}}))
    key.mkdir(parents=True)
    with open(key / "key.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=KEY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (key / "seed.txt").write_text("20261125\n")
    (key / "access.csv").write_text("rater,access_code\nderm1,HYPER-CACTUS-41\n")
    fix_mtimes(rater)
    return rater, key


def fix_mtimes(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (FIXED_MTIME, FIXED_MTIME))


def kinds(findings) -> list[tuple[str, str]]:
    """(file, kind) of each finding; exiftool's second opinion is left out (tested on its own)."""
    return sorted((f.file, f.kind) for f in findings if f.kind != "exiftool")


def some_image(rater: Path) -> Path:
    return sorted((rater / "images" / "full").glob("*.jpg"))[0]


# --------------------------------------------------------------------------- clean


def test_a_clean_rater_folder_has_no_findings_with_or_without_the_key(tmp_path):
    rater, key = make_set(tmp_path)
    assert audit_set(rater) == []
    report = audit_report(rater, key)
    assert report.findings == []
    assert report.files_checked == 12 * 2 * 2 + 2
    assert {row.property for row in report.aucs} >= {"width", "quantization tables", "chroma subsampling",
                                                      "mtime", "file size", "code",
                                                      "position in derm1's worklist", "padding border"}
    assert not any(row.finding for row in report.aucs)


# --------------------------------------------------------------------------- metadata in images


def test_a_jpeg_with_exif_is_a_metadata_finding(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    exif = Image.Exif()
    exif[0x0110] = "iPhone 13 Pro"
    target = some_image(rater)
    Image.open(target).save(target, "JPEG", exif=exif.tobytes())
    fix_mtimes(rater)
    findings = [f for f in audit_set(rater) if f.kind == "metadata"]
    assert len(findings) == 1 and findings[0].file == target.relative_to(rater).as_posix()
    assert "APP1 segment (EXIF" in findings[0].message


def test_bytes_after_the_end_marker_are_a_trailer_finding(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    target = some_image(rater)
    target.write_bytes(target.read_bytes() + b"\x00\x00SEFT")
    fix_mtimes(rater)
    assert kinds(audit_set(rater)) == [(target.relative_to(rater).as_posix(), "trailer")]


def test_a_comment_segment_is_a_metadata_finding(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    target = some_image(rater)
    data = target.read_bytes()
    com = b"\xff\xfe" + (len(b"visit 2") + 2).to_bytes(2, "big") + b"visit 2"
    target.write_bytes(data[:2] + com + data[2:])
    fix_mtimes(rater)
    findings = [f for f in audit_set(rater) if f.kind != "exiftool"]
    assert kinds(findings) == [(target.relative_to(rater).as_posix(), "metadata")]
    assert "COM comment segment" in findings[0].message and "visit 2" in findings[0].message


def test_a_png_is_a_finding_and_its_text_chunks_are_searched_for_the_key(tmp_path):
    rater, key = make_set(tmp_path, participants=2)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "P02 after treatment")
    Image.new("RGB", (8, 8)).save(rater / "images" / "full" / "XXX-XXXX.png", pnginfo=info)
    fix_mtimes(rater)
    assert kinds(audit_set(rater)) == [("images/full/XXX-XXXX.png", "not-jpeg")]
    findings = audit_set(rater, key)
    assert kinds(findings) == [("images/full/XXX-XXXX.png", "identifier"), ("images/full/XXX-XXXX.png", "not-jpeg")]
    assert "'P02'" in next(f.message for f in findings if f.kind == "identifier")


def test_a_progressive_jpeg_is_a_structure_finding():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(buf, "JPEG", progressive=True)
    assert ("jpeg-structure" in {kind for kind, _ in walk_jpeg(buf.getvalue()).problems})


def test_a_truncated_jpeg_is_a_structure_finding():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(buf, "JPEG")
    problems = walk_jpeg(buf.getvalue()[:-40]).problems
    assert problems and problems[0][0] == "jpeg-structure" and "truncated" in problems[0][1]


def test_exiftool_gives_an_independent_second_opinion_when_installed(tmp_path, exiftool):
    rater, _ = make_set(tmp_path, participants=2)
    target = some_image(rater)
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    Image.open(target).save(target, "JPEG", exif=exif.tobytes())
    fix_mtimes(rater)
    report = audit_report(rater)
    assert report.exiftool
    second = [f for f in report.findings if f.kind == "exiftool"]
    assert len(second) == 1 and "IFD0:Make=Canon" in second[0].message


# --------------------------------------------------------------------------- identifiers


def test_a_participant_id_inside_set_json_is_an_identifier_finding(tmp_path):
    rater, key = make_set(tmp_path, participants=2)
    data = json.loads((rater / "set.json").read_text())
    data["title"] = "Follow-up of p01"
    (rater / "set.json").write_text(json.dumps(data))
    fix_mtimes(rater)
    assert audit_set(rater) == []  # without the key nobody knows P01 is an id
    findings = audit_set(rater, key)
    assert kinds(findings) == [("set.json", "identifier")] and len(findings) == 1
    assert "'p01'" in findings[0].message


def test_a_timepoint_name_or_access_code_in_a_worklist_is_an_identifier_finding(tmp_path):
    rater, key = make_set(tmp_path, participants=2)
    wl = rater / "worklists" / "derm1.json"
    data = json.loads(wl.read_text())
    data["items"][0]["note"] = "month12"
    data["password"] = "HYPER-CACTUS-41"
    wl.write_text(json.dumps(data))
    fix_mtimes(rater)
    messages = [f.message for f in audit_set(rater, key)]
    assert messages == ["contains 'month12', 'HYPER-CACTUS-41' from the key"]


def test_an_id_that_is_only_part_of_a_longer_word_is_not_a_finding(tmp_path):
    rater, key = make_set(tmp_path, participants=2)
    data = json.loads((rater / "set.json").read_text())
    data["note"] = "P010 and XP01 and baselines"
    (rater / "set.json").write_text(json.dumps(data))
    fix_mtimes(rater)
    assert audit_set(rater, key) == []


def test_long_key_terms_are_found_inside_compressed_data_and_short_ids_are_not_searched_there(tmp_path):
    rater, key = make_set(tmp_path, participants=2)
    target = some_image(rater)
    data = bytearray(target.read_bytes())
    start, end = walk_jpeg(bytes(data)).scans[0]
    middle = (start + end) // 2
    data[middle:middle + 5] = b" P01 "  # by chance, a short id: not searched in scan data
    target.write_bytes(bytes(data))
    fix_mtimes(rater)
    assert audit_set(rater, key) == []
    data[middle + 40:middle + 40 + len(b" P01_baseline_face ")] = b" P01_baseline_face "
    target.write_bytes(bytes(data))
    fix_mtimes(rater)
    findings = audit_set(rater, key)
    assert kinds(findings) == [(target.relative_to(rater).as_posix(), "identifier")]
    assert findings[0].message == "contains 'P01_baseline_face' from the key"


def test_a_file_name_from_the_key_is_a_finding(tmp_path):
    rater, key = make_set(tmp_path, participants=2)
    (rater / "P02_month12_face.txt").write_text("x")
    fix_mtimes(rater)
    assert ("P02_month12_face.txt", "identifier") in kinds(audit_set(rater, key))


# --------------------------------------------------------------------------- file system


def test_files_with_different_modification_times_are_a_finding(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    os.utime(some_image(rater), (FIXED_MTIME + 60, FIXED_MTIME + 60))
    findings = audit_set(rater)
    assert kinds(findings) == [(".", "mtime")]
    assert findings[0].message.startswith("1 of 10 files have another modification time")


def test_a_symbolic_link_is_a_finding(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    (rater / "images" / "full" / "link.jpg").symlink_to(some_image(rater))
    assert ("images/full/link.jpg", "symlink") in kinds(audit_set(rater))


def test_a_missing_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(AuditError, match="nope: no such folder"):
        audit_set(tmp_path / "nope")


# --------------------------------------------------------------------------- timepoint properties


def test_follow_up_photos_encoded_differently_are_a_timepoint_property_finding(tmp_path):
    other = Spec(256, 128, 70, (4, 3), "pad", False)
    rater, key = make_set(tmp_path, participants=6, followup_spec=other)
    report = audit_report(rater, key)
    flagged = {row.property for row in report.aucs if row.finding}
    assert {"quantization tables", "display quantization tables"} <= flagged
    assert "chroma subsampling" not in flagged
    assert any("quantization tables separates baseline vs month12 in region face with AUC 1.00 "
               "(n=6+6; few photos, judged by the AUC alone" in f.message for f in report.findings)


def test_a_worklist_showing_every_baseline_photo_first_is_a_finding(tmp_path):
    rater, key = make_set(tmp_path, participants=12, worklist_order="baseline-first")
    report = audit_report(rater, key)
    row = next(r for r in report.aucs if r.property == "position in derm1's worklist")
    assert row.auc == 1.0 and row.finding and row.kind == "randomized"
    assert [f.kind for f in report.findings] == ["timepoint-property"]


def test_a_grainier_follow_up_camera_at_6_plus_6_is_a_file_size_finding_with_advice_on_the_command_line(
        tmp_path):
    rater, key = make_set(tmp_path, participants=6, noisy_followup=True, pad=False)
    report = audit_report(rater, key)
    findings = report.findings
    assert {f.message.split(" separates")[0] for f in findings} == {"file size", "display file size"}
    for f in findings:
        assert "with AUC 1.00 (n=6+6; few photos, judged by the AUC alone, above 0.55" in f.message
        assert "build it again with assess randomize" in f.message
        assert "equalize_sizes" not in f.message and "assess." not in f.message
    # a folder from before equal file sizes says so rather than naming every file
    assert [n for n in report.notes if "written before assess made every file" in n]
    assert not [f for f in findings if f.kind == "uniform-property"]
    for copy in ("full", "display"):
        equalize_sizes(sorted((rater / "images" / copy).glob("*.jpg")))
    fix_mtimes(rater)
    report = audit_report(rater, key)
    assert report.findings == [] and not [n for n in report.notes if "written before" in n]
    sizes = next(r for r in report.aucs if r.property == "display file size")
    assert sizes.auc == 0.5 and sizes.kind == "fixed"
    # the padding hides the size, not the compressed data, which only a JPEG parser reads
    content = next(r for r in report.aucs if r.property == "display image data length")
    assert content.auc == 1.0 and content.kind == "content" and not content.finding


def test_one_tampered_file_at_6_plus_6_is_a_timepoint_finding_and_is_named(tmp_path):
    rater, key = make_set(tmp_path, participants=6)
    target = sorted((rater / "images" / "display").glob("*.jpg"))[3]
    data = target.read_bytes()
    target.write_bytes(data[:-2] + b"\xff" * 300 + b"\xff\xd9")  # still a valid, padded JPEG
    fix_mtimes(rater)
    findings = audit_set(rater, key)
    rel = target.relative_to(rater).as_posix()
    named = [f for f in findings if f.kind == "uniform-property"]
    assert [(f.file, f.message.split(":")[0]) for f in named] == [(rel, "display file size")]
    assert f"{len(data) + 300} bytes" in named[0].message and "assess randomize" in named[0].message
    timed = [f for f in findings if f.kind == "timepoint-property"]
    assert [f.message.split(" separates")[0] for f in timed] == ["display file size"]
    assert "AUC 0.58 (n=6+6" in timed[0].message
    assert audit_set(rater) == named  # without the key too: the worklist gives each file's region


def test_one_tampered_file_among_many_is_named_although_its_auc_stays_under_the_limit(tmp_path):
    rater, key = make_set(tmp_path, participants=12)
    target = sorted((rater / "images" / "full").glob("*.jpg"))[5]
    with Image.open(target) as img:
        img.convert("RGB").save(target, "JPEG", quality=90)  # re-saved by another program
    fix_mtimes(rater)
    report = audit_report(rater, key)
    rel = target.relative_to(rater).as_posix()
    size = next(r for r in report.aucs if r.property == "file size")
    assert size.auc <= 0.55 and not size.finding
    named = [(f.file, f.message.split(":")[0]) for f in report.findings if f.kind == "uniform-property"]
    assert (rel, "file size") in named


def test_an_image_file_copied_under_another_code_is_a_duplicate_finding(tmp_path):
    rater, key = make_set(tmp_path, participants=3)
    a, b = sorted((rater / "images" / "display").glob("*.jpg"))[:2]
    b.write_bytes(a.read_bytes())
    fix_mtimes(rater)
    found = [f for f in audit_set(rater) if f.kind == "duplicate"]
    assert [(f.file, f.message.split(":")[0]) for f in found] == [
        (a.relative_to(rater).as_posix(), f"byte-identical to {b.relative_to(rater).as_posix()}")]
    assert "assess randomize" in found[0].message


def test_byte_identical_repeats_of_a_folder_from_before_disguised_repeats_are_a_note(tmp_path):
    rater, key = make_set(tmp_path, participants=3, pad=False)
    a, b = sorted((rater / "images" / "full").glob("*.jpg"))[:2]
    b.write_bytes(a.read_bytes())
    fix_mtimes(rater)
    report = audit_report(rater)
    assert not [f for f in report.findings if f.kind == "duplicate"]
    assert [n for n in report.notes if n.startswith("1 group(s) of byte-identical image files")]


def test_a_follow_up_camera_of_another_aspect_at_6_plus_6_is_a_padding_border_finding(tmp_path):
    rater, key = make_set(tmp_path, participants=6, followup_size=(320, 180))
    findings = [f for f in audit_set(rater, key) if f.kind == "timepoint-property"]
    assert [f.message.split(" separates")[0] for f in findings] == ["padding border"]
    assert "AUC 1.00 (n=6+6; few photos, judged by the AUC alone, above 0.8" in findings[0].message
    assert 'set fit = "crop" in [normalize] of study.toml' in findings[0].message


def test_a_randomized_property_above_the_limit_at_3_plus_3_is_a_note_and_never_clean(tmp_path):
    rater, key = make_set(tmp_path, participants=3, worklist_order="baseline-first")
    report = audit_report(rater, key)
    row = next(r for r in report.aucs if r.property == "position in derm1's worklist")
    assert row.auc == 1.0 and not row.finding and row.p_value > 1e-4
    assert not report.clean and report.findings == []
    note = next(n for n in report.notes if n.startswith("position in derm1's worklist"))
    assert "AUC 1.00 (n=3+3): too few photos to tell a chance imbalance from a leak" in note
    result = CliRunner().invoke(cli, ["audit-set", str(rater), "--key", str(key)])
    assert result.exit_code == 0
    assert f"note: {note}" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1].startswith("no finding in 14 files checked, ")
    assert "clean" not in result.stdout


def test_small_sample_means_no_auc_could_reach_the_p_value_limit():
    from scipy.stats import mannwhitneyu

    from assess.audit import P_LIMIT, small_sample

    for n1 in range(1, 16):
        for n2 in range(1, 16):
            best = mannwhitneyu(list(range(n1)), list(range(n1, n1 + n2)), method="asymptotic").pvalue
            assert small_sample(n1, n2) == (best >= P_LIMIT), (n1, n2)


def test_fill_bytes_before_the_end_marker_are_padding_and_anywhere_else_a_structure_finding(tmp_path):
    rater, _ = make_set(tmp_path, participants=2, pad=False)
    target = some_image(rater)
    data = target.read_bytes()
    plain = walk_jpeg(data)
    padded = walk_jpeg(data[:-2] + b"\xff" * 50 + b"\xff\xd9")
    assert (padded.fill, padded.scan_bytes, padded.problems) == (50, plain.scan_bytes, [])
    sos = data.index(b"\xff\xda")
    hidden = walk_jpeg(data[:sos] + b"\xff" * 7 + data[sos:])
    assert [k for k, _ in hidden.problems] == ["jpeg-structure"]
    assert "7 fill byte(s) before the SOS marker" in hidden.problems[0][1]


def test_a_chance_difference_in_a_randomized_property_is_not_a_finding(tmp_path):
    rater, key = make_set(tmp_path, participants=12)
    report = audit_report(rater, key)
    row = next(r for r in report.aucs if r.property == "code")
    assert row.p_value > 1e-4 and not row.finding


# --------------------------------------------------------------------------- command line


def test_the_command_says_clean_and_exits_0_for_a_clean_folder(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    result = CliRunner().invoke(cli, ["audit-set", str(rater)])
    assert result.exit_code == 0
    assert result.stdout == "clean: 10 files checked\n"


def test_the_command_lists_findings_and_exits_1(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    target = some_image(rater)
    target.write_bytes(target.read_bytes() + b"xy")
    fix_mtimes(rater)
    result = CliRunner().invoke(cli, ["audit-set", str(rater)])
    assert result.exit_code == 1
    rel = target.relative_to(rater).as_posix()
    assert result.stdout == (f"{rel}: trailer: 2 byte(s) after the end-of-image marker (starting b'xy')\n"
                             "what to do (trailer): build the set with assess randomize and copy "
                             "the rater folder as it is\n"
                             "1 finding(s) in 10 files checked\n")


def test_the_command_prints_the_auc_table_with_the_key(tmp_path):
    rater, key = make_set(tmp_path, participants=2)
    result = CliRunner().invoke(cli, ["audit-set", str(rater), "--key", str(key)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["property", "kind", "AUC", "p-value", "n", "region", "timepoints"]
    assert any(line.startswith("file size ") and " 0.50 " in line and " 2+2 " in line for line in lines)
    assert any(line.startswith("quantization tables ") and " 0.50 " in line for line in lines)
    # the codes' order is AUC 0.75 by chance at 2+2: too few photos to call the folder clean
    assert lines[-2].startswith("note: code separates baseline vs month12 in region face with AUC 0.75 "
                                "(n=2+2): too few photos")
    assert lines[-1] == "no finding in 10 files checked, 1 note(s) above"


def test_the_command_reports_a_missing_key_file(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    result = CliRunner().invoke(cli, ["audit-set", str(rater), "--key", str(tmp_path)])
    assert result.exit_code == 1
    assert "key.csv: no key file" in result.output


# --------------------------------------------------------------------------- contact sheet


def test_the_contact_sheet_is_written_beside_the_rater_folder_by_default(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    result = CliRunner().invoke(cli, ["contact-sheet", str(rater)])
    assert result.exit_code == 0, result.output
    sheet = rater.parent / "contact-sheet.jpg"
    assert result.stdout == f"Wrote {sheet}\n"
    with Image.open(sheet) as img:
        assert img.format == "JPEG" and img.width > 4 * 128
    assert not any(p.name.startswith("contact-sheet") for p in rater.rglob("*"))


def test_the_contact_sheet_refuses_to_write_inside_the_rater_folder(tmp_path):
    rater, _ = make_set(tmp_path, participants=2)
    with pytest.raises(AuditError, match="inside the rater folder"):
        contact_sheet(rater, rater / "images" / "sheet.jpg")


def test_a_large_contact_sheet_is_split_into_pages(tmp_path):
    rater, _ = make_set(tmp_path, participants=1)
    one = some_image(rater)
    pages = render_contact_sheet([(f"C{i}", one) for i in range(25)], tmp_path / "sheet.jpg", columns=2,
                                 tile=64, rows_per_page=12)
    assert [p.name for p in pages] == ["sheet.jpg", "sheet-2.jpg"]
    with Image.open(pages[1]) as last:
        assert last.height < Image.open(pages[0]).height  # one photo on the second page


def test_the_auc_without_scipy_equals_mann_whitney_u_over_n1_n2():
    from assess.audit import timepoint_auc

    rnd = random.Random(5)
    for _ in range(50):
        a = [rnd.randrange(6) for _ in range(rnd.randrange(1, 15))]
        b = [rnd.randrange(6) for _ in range(rnd.randrange(1, 15))]
        for categorical in (False, True):
            fast, p = timepoint_auc(a, b, categorical, p_value=False)
            assert fast == pytest.approx(timepoint_auc(a, b, categorical)[0]) and p != p


# --------------------------------------------------------------------------- the worked example


def _example_generator():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "nct06217627" / "generate.py"
    spec = importlib.util.spec_from_file_location("nct06217627_generate_audit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_nct06217627_example_shows_every_fixed_property_at_auc_0_50_and_repeats_differ(tmp_path):
    import hashlib
    import re

    example = _example_generator()
    images = tmp_path / "images"
    example.generate(images, size=(480, 360), workers=1,
                     arms={"UC-MSC secretome": (6, ("face", "neck")),
                           "UC-explant secretome": (6, ("hands",))},
                     normalize={"long_edge": 432, "display_long_edge": 320, "quality": 90,
                                "aspect": "4:3", "fit": "crop"})
    made = CliRunner().invoke(cli, ["randomize", "--study", str(images / "study.toml"), "--images",
                                    str(images), "--out", str(tmp_path / "sets"), "--set-id", "nct",
                                    "--seed", "5270611913214"])
    assert made.exit_code == 0, made.output
    rater, key = tmp_path / "sets" / "nct" / "rater", tmp_path / "sets" / "nct" / "key"
    result = CliRunner().invoke(cli, ["audit-set", str(rater), "--key", str(key)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("clean: ")
    table = {}
    for line in result.stdout.splitlines():
        m = re.match(r"^(.+?)\s{2,}(fixed|randomized|pixels|content)\s+([\d.]+)\s", line)
        if m:
            table[m.group(1)] = (m.group(2), float(m.group(3)))
    fixed = {name for name, (kind, _) in table.items() if kind == "fixed"}
    for copy in ("", "display "):
        assert {f"{copy}{p}" for p in ("format", "width", "height", "file size", "quantization tables",
                                       "Huffman tables", "chroma subsampling", "JPEG segment layout",
                                       "metadata segments", "mtime", "permissions")} <= fixed
    assert all(table[name][1] == 0.5 for name in fixed), {n: table[n] for n in fixed}
    # the follow-up camera does give other compressed data: unpadded, file size would be a finding
    assert table["display image data length"][1] > 0.55
    rows = list(csv.DictReader(open(key / "key.csv", newline="")))
    first = {r["code"]: r for r in rows}
    repeats = [r for r in rows if r["repeat_of"]]
    assert repeats
    for r in repeats:
        for copy in ("full", "display"):
            mine = (rater / "images" / copy / f"{r['code']}.jpg").read_bytes()
            theirs = (rater / "images" / copy / f"{r['repeat_of']}.jpg").read_bytes()
            assert mine != theirs and len(mine) == len(theirs)
        assert r["blinded_sha256"] != first[r["repeat_of"]]["blinded_sha256"]
        assert r["blinded_sha256"] == hashlib.sha256(
            (rater / "images" / "full" / f"{r['code']}.jpg").read_bytes()).hexdigest()
