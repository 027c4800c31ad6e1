"""A set that cannot be written (a full disk, a read-only folder) ends in one message, leaving nothing."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess

import pytest
from click.testing import CliRunner

from assess import blind
from assess.blind import BlindError
from assess.cli import cli
from assess.synth import make_study


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("raw") / "images", participants=3, size=(64, 48))


@contextlib.contextmanager
def tmpfs(path, options: str):
    """A small RAM file system mounted at ``path`` (needs root); skip where it cannot be made."""
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _randomize(synth, out):
    return CliRunner().invoke(cli, ["randomize", "--study", str(synth.study_path), "--images",
                                    str(synth.root), "--out", str(out), "--set-id", "s",
                                    "--seed", str(10**13)])


def _size(folder) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_a_disk_that_fills_up_while_the_set_is_written_gives_one_message_and_leaves_nothing(
        synth, tmp_path):
    assert _randomize(synth, tmp_path / "roomy").exit_code == 0
    half = _size(tmp_path / "roomy") // 2
    with tmpfs(tmp_path / "small", f"size={half}") as disk:
        out = disk / "assignments"
        result = _randomize(synth, out)
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        message = result.stderr.strip().splitlines()[-1]  # after the progress bar's label
        assert message.startswith(f"Error: {out}: the set could not be written (No space left on "
                                  "device); nothing was left behind; free space there"), message
        assert "Traceback" not in result.output
        assert os.listdir(disk) == []  # not even the --out folder this run made


def test_a_read_only_disk_gives_one_message_naming_the_folder(synth, tmp_path):
    with tmpfs(tmp_path / "ro", "size=1m,ro") as disk:
        result = _randomize(synth, disk / "assignments")
        assert result.exit_code == 1, result.output
        assert result.stderr.strip() == (f"Error: {disk / 'assignments'}: cannot make the folder "
                                         "(Read-only file system); give --out a folder you can "
                                         "write to")


def test_a_full_disk_when_the_set_is_moved_into_place_leaves_no_partial_folder(synth, tmp_path,
                                                                               monkeypatch):
    real_rename = os.rename

    def full(src, dst, *args, **kwargs):
        if ".partial-" in str(src):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", full)
    out = tmp_path / "assignments"
    out.mkdir()
    with pytest.raises(BlindError) as info:
        blind.randomize(synth.study_path, synth.root, out, set_id="s", seed=10**13, workers=1)
    assert str(info.value) == (f"{out}: the set could not be written (No space left on device); "
                               "nothing was left behind; free space there, or give --out a folder "
                               "on another disk, and run it again")
    assert os.listdir(out) == []


def test_an_out_folder_that_is_a_file_is_refused_naming_it(synth, tmp_path):
    out = tmp_path / "assignments"
    out.write_text("not a folder")
    with pytest.raises(BlindError, match=f"^{out}: is a file, not a folder; give --out a folder"):
        blind.randomize(synth.study_path, synth.root, out, set_id="s", seed=10**13, workers=1)
    result = _randomize(synth, out)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Invalid value for '--out'" in result.stderr and str(out) in result.stderr
