"""Every CSV file assess reads is read strictly, and what it writes is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import pytest
from click.testing import CliRunner

from assess import blind
from assess.audit import audit_report
from assess.blind import BlindError, read_access, read_key
from assess.cli import cli
from assess.csvfile import from_spreadsheet_safe, parse_table, plain_table, spreadsheet_safe
from assess.errors import AssessError
from assess.ingest import IngestError, discover
from assess.rate import RateError, load_rater_set, load_sso_raters, status
from assess.score.unblind import (ScoreError, read_participants, read_ratings_csv,
                                  read_key as score_read_key)
from assess.study import TEMPLATE, parse_study
from assess.synth import make_study

HEADER = "participant,timepoint,region,file\n"


def _raises(exc_type, call, *needles):
    with pytest.raises(exc_type) as info:
        call()
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    return str(info.value)


# ----------------------------------------------------------------------------- the reader itself


@pytest.mark.parametrize("data, line", [
    (b"a,b,c\n1,2,3\n4,5,6,7\n", 3),
    (b"a,b,c\n1,2,3,4\n4,5,6\n", 2),  # pandas would take the first column as an index here
    (b"a,b,c\n1,2,3\n\n4,5\n", 4),
    (b'a,b,c\n"x\ny",2,3\n4,5\n', 4),  # a value over two lines: the line where the row starts
])
def test_a_row_with_a_field_too_many_or_too_few_is_refused_naming_the_line(data, line):
    message = _raises(AssessError, lambda: parse_table(data, "f.csv", ("a",)),
                      f"f.csv: line {line} has ", "but the header has 3 (a,b,c)")
    assert plain_table(data, "f.csv", ("a",)) is None  # the fast check lets parse_table say it
    assert message


@pytest.mark.parametrize("data, needles", [
    (b"", ["f.csv: the CSV file is empty", "a,b"]),
    (b"  \n\n", ["is empty"]),
    (b"a,b\n1,2\n3,\xe9\n", ["f.csv: line 3 is not UTF-8 text (byte 0xe9)", "CSV UTF-8"]),
    (b"a,b,a\n1,2,3\n", ["f.csv: line 1: column(s) a named twice"]),
    (b"a,,b\n1,2,3\n", ["f.csv: line 1: column 2 of the header has no name"]),
    (b"b,c\n1,2\n", ["f.csv: line 1: column a missing"]),
    (b'a,b\n1,"2"x\n', ["f.csv: line 2:"]),
    (b"a,b\n1,2\x00\n", ["f.csv: line 2 holds a NUL byte"]),
])
def test_a_file_that_cannot_be_read_rightly_is_refused_saying_why(data, needles):
    _raises(AssessError, lambda: parse_table(data, "f.csv", ("a", "b")), *needles)


def test_a_byte_order_mark_and_blank_lines_are_allowed_and_lines_keep_their_numbers():
    data = "\ufeffa,b\r\n1,2\r\n\r\n,\r\n3,4\r\n".encode("utf-8")
    table = parse_table(data, "f.csv", ("a", "b"))
    assert table.header == ("a", "b")
    assert list(table.records()) == [(2, {"a": "1", "b": "2"}), (5, {"a": "3", "b": "4"})]
    header, lines = plain_table(b"\xef\xbb\xbfa,b\n1,2\n\n3,4\n", "f.csv", ("a", "b"))
    assert header == ("a", "b") and lines.tolist() == [2, 4]


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx",
                                  "'=1", "''-1", "'plain", "it's", "plain", "", "="])
def test_spreadsheet_safe_text_never_starts_a_formula_and_reads_back_exactly(text):
    safe = spreadsheet_safe(text)
    assert not safe[:1] in ("=", "+", "-", "@", "\t", "\r")
    assert from_spreadsheet_safe(safe) == text


# ----------------------------------------------------------------------------- each file read


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """A randomized set whose photos are listed by a manifest under hostile file names."""
    root = tmp_path_factory.mktemp("hostile")
    study = make_study(root / "images", participants=3, size=(64, 48),
                       regions={"face": "wsrs"})
    names = ["=HYPERLINK(\"evil\")", "+cmd", "-x", "@A1", "'=quoted", "plain,comma"]
    rows = []
    for n, p in enumerate(study.photos):
        new = f"{names[n % len(names)]} {n}.jpg"
        (study.root / p.path).rename(study.root / new)
        rows.append([p.participant, p.timepoint, p.region, new])
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["participant", "timepoint", "region", "file"], *rows])
    made = blind.randomize(study.study_path, study.root, root / "out", set_id="h", seed=10**13,
                           manifest=manifest, workers=1)
    return made, {r[3] for r in rows}


def test_source_file_names_in_the_key_never_start_a_formula_yet_read_back_whole(small_set):
    made, names = small_set
    with open(made.key_dir / "key.csv", newline="", encoding="utf-8") as fh:
        raw = [row["source_file"] for row in csv.DictReader(fh)]
    assert all(not v[:1] in "=+-@\t\r" for v in raw)
    assert "'=HYPERLINK(\"evil\") 0.jpg" in raw and "''=quoted 4.jpg" in raw
    assert {r.source_file for r in read_key(made.key_dir)} == names
    key, _ = score_read_key(made.key_dir)
    assert set(key["source_file"]) == names


def test_the_leak_audit_searches_the_rater_folder_for_the_true_file_names(small_set, tmp_path):
    made, _ = small_set
    target = tmp_path / "h"
    shutil.copytree(made.path, target)
    leaked = target / "rater" / "notes.txt"
    leaked.write_text("see =HYPERLINK(\"evil\") 0.jpg\n", encoding="utf-8")
    report = audit_report(target / "rater", target / "key")
    assert any(f.file.endswith("notes.txt") and "=HYPERLINK" in f.message for f in report.findings), \
        [f.message for f in report.findings]


def _copy_set(made, tmp_path):
    target = tmp_path / "s"
    shutil.copytree(made.path, target)
    return target / "rater", target / "key"


def test_a_key_row_with_a_field_too_many_is_refused_by_every_reader_naming_the_line(small_set,
                                                                                    tmp_path):
    made, _ = small_set
    rater, key = _copy_set(made, tmp_path)
    lines = (key / "key.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].rstrip("\n") + ",extra\n"
    (key / "key.csv").write_text("".join(lines), encoding="utf-8")
    for exc_type, call in [(BlindError, lambda: read_key(key)),
                           (ScoreError, lambda: score_read_key(key)),
                           (AssessError, lambda: audit_report(rater, key))]:
        _raises(exc_type, call, f"{key / 'key.csv'}: line 2 has 12 fields but the header has 11")


def test_a_key_row_with_a_field_missing_is_refused_by_the_scorer_naming_the_line(small_set, tmp_path):
    made, _ = small_set
    _, key = _copy_set(made, tmp_path)
    lines = (key / "key.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3].rstrip("\n").rsplit(",", 1)[0] + "\n"
    (key / "key.csv").write_text("".join(lines), encoding="utf-8")
    _raises(ScoreError, lambda: score_read_key(key),
            f"{key / 'key.csv'}: line 4 has 10 fields but the header has 11")


def test_a_key_that_is_not_utf8_is_refused_by_the_coordinators_status_naming_the_line(small_set,
                                                                                      tmp_path):
    made, _ = small_set
    rater, key = _copy_set(made, tmp_path)
    data = (key / "key.csv").read_bytes().replace(b"\n", b"\n\xff", 2)
    (key / "key.csv").write_bytes(data)
    sealed = json.loads((rater / "set.json").read_text(encoding="utf-8"))
    sealed["key_sha256"] = hashlib.sha256(data).hexdigest()  # the check after the seal
    (rater / "set.json").write_text(json.dumps(sealed), encoding="utf-8")
    _raises(RateError, lambda: status(rater, db=tmp_path / "r.sqlite", key_dir=key),
            "key.csv: line 2 is not UTF-8 text")


def test_an_access_codes_row_with_a_field_too_many_is_refused_naming_the_line(small_set, tmp_path):
    made, _ = small_set
    _, key = _copy_set(made, tmp_path)
    (key / "access.csv").write_text("rater,access_code\nderm1,AAAA-AAAA-AAAA,oops\n",
                                    encoding="utf-8")
    _raises(BlindError, lambda: read_access(key), "access.csv: line 2 has 3 fields")


def test_a_manifest_row_with_a_field_too_many_is_refused_naming_the_file_and_line(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(HEADER + "S1,baseline,face,a.jpg\nS1,month12,face,b.jpg,front\n")
    _raises(IngestError, lambda: discover(tmp_path, parse_study(TEMPLATE), manifest=manifest),
            f"{manifest}: line 3 has 5 fields but the header has 4")


def test_a_manifest_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(HEADER.encode() + b"S1,baseline,face,caf\xe9.jpg\n")
    _raises(IngestError, lambda: discover(tmp_path, parse_study(TEMPLATE), manifest=manifest),
            f"{manifest}: line 2 is not UTF-8 text", "CSV UTF-8")


def test_a_participants_file_row_with_a_field_missing_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_text("participant,arm\nP1,A\nP2\nP3,B\n")
    _raises(ScoreError, lambda: read_participants(path),
            f"{path}: line 3 has 1 field but the header has 2")


def test_a_participants_file_with_an_extra_field_in_the_first_row_is_refused(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_text("participant,arm\nP1,A,x\nP2,B\n")
    _raises(ScoreError, lambda: read_participants(path), f"{path}: line 2 has 3 fields")


@pytest.mark.parametrize("content, needle", [
    (b"", "the participants file is empty"),
    (b"participant,arm,participant\nP1,A,P1\n", "participant named twice"),
    (b"participant,arm\nP1,Gr\xfcn\n", "line 2 is not UTF-8 text"),
])
def test_a_participants_file_that_cannot_be_read_rightly_says_why(tmp_path, content, needle):
    path = tmp_path / "participants.csv"
    path.write_bytes(content)
    _raises(ScoreError, lambda: read_participants(path), str(path), needle)


def test_a_participants_file_saved_by_excel_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_bytes("\ufeffParticipant,Arm\r\nP1,A\r\nP2,B\r\n".encode("utf-8"))
    assert read_participants(path)[["participant", "arm"]].values.tolist() == [["P1", "A"],
                                                                                ["P2", "B"]]


def test_a_ratings_file_row_with_a_field_too_many_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("rater,code,score\nderm1,ACD-EFHJ,3\nderm1,ACD-EFHK,3,4\n")
    _raises(ScoreError, lambda: read_ratings_csv(path), f"{path}: line 3 has 4 fields")


def test_an_accounts_file_row_with_a_field_too_many_is_refused_naming_the_line(small_set, tmp_path):
    made, _ = small_set
    path = tmp_path / "accounts.csv"
    path.write_text("account,rater\na@example.org,derm1,extra\n")
    _raises(RateError, lambda: load_sso_raters(path, load_rater_set(made.rater_dir)),
            f"{path}: line 2 has 3 fields")


def test_randomize_with_a_broken_manifest_says_file_and_line_without_a_traceback(tmp_path):
    study = make_study(tmp_path / "images", participants=1, size=(64, 48), regions={"face": "wsrs"})
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(HEADER + "".join(f"{p.participant},{p.timepoint},{p.region},{p.path}\n"
                                         for p in study.photos) + "S9,baseline,face,x.jpg,front\n")
    result = CliRunner().invoke(cli, ["randomize", "--study", str(study.study_path), "--images",
                                      str(study.root), "--out", str(tmp_path / "out"),
                                      "--manifest", str(manifest)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"Error: {manifest}: line 4 has 5 fields but the header has 4 "
                                     "(participant,timepoint,region,file); give one value per "
                                     "column and put a value holding a comma in double quotes")
    assert not (tmp_path / "out").exists()
