"""Careless or hostile input on the command line ends in one clear message, never a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess

import pytest
from click.testing import CliRunner

from assess.cli import cli
from assess.synth import make_study


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("raw") / "images", participants=3, size=(64, 48))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_message(result, exit_code: int = 1) -> str:
    """The single error line of a command that failed as a user should see it fail."""
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@contextlib.contextmanager
def read_only_folder(path):
    """A folder nobody can write to, root included: a read-only tmpfs (skips where not root)."""
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_randomize_into_a_rater_folder_is_refused_so_no_key_travels_to_the_rater(synth, tmp_path,
                                                                                make_rater_set):
    rater, key, _ = make_rater_set()
    before = sorted(p.relative_to(rater) for p in rater.rglob("*"))
    message = one_message(run("randomize", "--study", synth.study_path, "--images", synth.root,
                              "--out", rater / "images", "--set-id", "inner"))
    assert message == (f"Error: {rater / 'images'}: is inside the rater folder {rater.resolve()} "
                       "of a set, and the new set's key would be copied to the rater with it; "
                       "give --out a folder outside any set, e.g. assignments")
    assert sorted(p.relative_to(rater) for p in rater.rglob("*")) == before


def test_randomize_into_a_key_folder_is_refused(synth, make_rater_set):
    _, key, _ = make_rater_set()
    message = one_message(run("randomize", "--study", synth.study_path, "--images", synth.root,
                              "--out", key, "--set-id", "inner"))
    assert message.startswith(f"Error: {key}: is inside the key folder {key.resolve()} of a set")
    assert not (key / "inner").exists()


def test_init_into_a_read_only_folder_names_it_in_one_line(tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        message = one_message(run("init", ro / "trial"))
    assert message == f"Error: {ro / 'trial'}: Read-only file system"


def test_a_contact_sheet_that_cannot_be_written_names_the_file_in_one_line(tmp_path,
                                                                         make_rater_set):
    rater, _, _ = make_rater_set()
    with read_only_folder(tmp_path / "ro") as ro:
        message = one_message(run("contact-sheet", rater, "--out", ro / "sheet.jpg"))
    assert message.startswith(f"Error: {ro / 'sheet.jpg'}")
    assert "Read-only file system" in message


def test_score_into_a_read_only_folder_names_it_in_one_line(tmp_path, make_rater_set):
    rater, key, _ = make_rater_set()
    items = json.loads((rater / "worklists" / "derm1.json").read_text())["items"]
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("rater,code,score\n" + "".join(f"derm1,{it['item']},2\n" for it in items))
    with read_only_folder(tmp_path / "ro") as ro:
        message = one_message(run("score", "--rater-dir", rater, "--key", key, "--ratings",
                                  ratings, "--out", ro / "results"))
    assert message.startswith(f"Error: {ro / 'results'}")
    assert "Read-only file system" in message


def test_status_with_a_database_that_does_not_exist_says_so_beside_the_progress(tmp_path,
                                                                               make_rater_set):
    rater, _, _ = make_rater_set()
    result = run("status", rater, "--db", tmp_path / "ratngs.sqlite")
    assert result.exit_code == 0  # before any rating there is no database yet
    assert result.stderr.startswith(f"note: {tmp_path / 'ratngs.sqlite'} does not exist (yet): "
                                    "no rating has been saved there")
    assert result.stdout.splitlines()[1].startswith("derm1  0/")


@pytest.mark.parametrize("content", [b"", b"not a database at all, just text\n"])
def test_status_and_score_with_a_database_that_is_not_one_name_it(tmp_path, make_rater_set,
                                                                  content):
    rater, key, _ = make_rater_set()
    db = tmp_path / "ratings.sqlite"
    db.write_bytes(content)
    for args in (("status", rater, "--db", db),
                 ("score", "--rater-dir", rater, "--key", key, "--db", db, "--out", tmp_path / "r")):
        assert one_message(run(*args)).startswith(f"Error: {db}: not a readable ratings database")
    assert not (tmp_path / "r").exists()


def test_a_link_loop_beside_a_manifest_is_named_as_left_out_not_a_traceback(synth, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for p in synth.photos:
        (images / p.path).write_bytes((synth.root / p.path).read_bytes())
    (images / "S9_baseline_face.jpg").symlink_to("loop.jpg")
    (images / "loop.jpg").symlink_to("S9_baseline_face.jpg")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("participant,timepoint,region,file\n" + "".join(
        f"{p.participant},{p.timepoint},{p.region},{p.path}\n" for p in synth.photos))
    result = run("randomize", "--study", synth.study_path, "--images", images, "--out",
                 tmp_path / "out", "--set-id", "m", "--seed", 10**13, "--manifest", manifest)
    assert result.exit_code == 0, result.output
    assert (f"Warning: 2 photo file(s) in {images} are not in the manifest and are left out: "
            "S9_baseline_face.jpg, loop.jpg") in result.stdout


@pytest.mark.parametrize("host, needle", [
    ("999.999.1.1", "--host 999.999.1.1: not an address or name this machine knows"),
    ("192.0.2.1", "--host 192.0.2.1 --port 65012: cannot listen there"),  # TEST-NET, not ours
])
def test_rate_on_an_address_that_is_not_this_machines_says_so_before_serving(make_rater_set,
                                                                            tmp_path, host,
                                                                            needle):
    rater, _, _ = make_rater_set()
    message = one_message(run("rate", rater, "--db", tmp_path / "r.sqlite", "--host", host,
                              "--port", 65012))
    assert message.startswith(f"Error: {needle}")
    assert not (tmp_path / "r.sqlite").exists()
