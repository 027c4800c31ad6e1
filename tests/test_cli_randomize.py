"""`assess randomize` and `assess demo` through the command line."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from assess.blind import read_access, read_key
from assess.cli import cli
from assess.synth import make_study


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("raw") / "images", participants=3, size=(64, 48))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_randomize_prints_the_counts_then_where_the_rater_folder_and_the_key_went(synth, tmp_path):
    out = tmp_path / "assignments"
    result = run("randomize", "--study", synth.study_path, "--images", synth.root, "--out", out,
                 "--set-id", "trial-a", "--seed", 10**13)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("Visible differences"))
    last = next(i for i in range(first + 1, len(lines)) if not lines[i].startswith("  "))
    visible, rest = lines[first:last], "".join(lines[:first] + lines[last:])
    # the coordinator's summary of visible differences: where the table is, at most 5 rows, and
    # that 3 photos a visit are too few to judge
    assert f"({out / 'trial-a' / 'key' / 'visible.csv'})" in visible[0]
    assert 1 <= sum(line.startswith("  face: ") or line.startswith("  neck: ")
                    or line.startswith("  hands: ") for line in visible) <= 5
    assert "chance alone" in visible[-2] and "normalize = true" in visible[-1]
    assert rest == (
        f"Photos in {synth.root}:\n"
        "region  baseline  month12\n"
        "face           3        3\n"
        "neck           3        3\n"
        "hands          3        3\n"
        "total          9        9\n"
        "Warning: leak audit: 5 note(s) on codes or worklist places that differ between the "
        "timepoints by chance (AUC above 0.55, with too few photos or too weak to call a leak); "
        f"assess audit-set {out / 'trial-a' / 'rater'} --key {out / 'trial-a' / 'key'} lists them\n"
        "Blinded set trial-a: 18 photos + 2 disguised repeats = 20 items in each worklist "
        "(raters: derm1).\n"
        f"  Rater folder: {out / 'trial-a' / 'rater'}\n"
        "      copy this folder, and only this folder, to the rater's machine\n"
        f"  Key:          {out / 'trial-a' / 'key'}\n"
        "      keep it with the coordinator, never with a rater: it unblinds the set\n"
        f"Give each rater their access code from {out / 'trial-a' / 'key' / 'access.csv'}.\n"
        "Warning: sealed but not signed (no --signing-key): the seal in key/seal.json catches "
        "changed files, but whoever can write the key folder could rewrite it; make a key with "
        "`assess keygen PATH` and pass --signing-key PATH.\n")
    assert "De-identifying" in result.stderr
    assert len(read_key(out / "trial-a" / "key")) == 20


def test_randomize_prints_warnings_before_building(synth, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for p in synth.photos:
        if (p.participant, p.timepoint, p.region) != ("S1002", "month12", "hands"):
            (images / p.path).write_bytes((synth.root / p.path).read_bytes())
    result = run("randomize", "--study", synth.study_path, "--images", images, "--out",
                 tmp_path / "out", "--set-id", "w", "--seed", 7)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[6:8] == ["Warning: participant S1002 has no hands photo at month12",
                          "Warning: the seed 7 is short: whoever knows it and the photo names can "
                          "rebuild the key; keep it secret, or leave it out to draw a long one"]
    assert lines[8].startswith("Warning: leak audit: ")  # 3 photos a timepoint: too few to judge
    assert lines[9].startswith("Blinded set w: 17 photos")


def test_the_same_seed_on_the_command_line_gives_the_same_key(synth, tmp_path):
    for out in ("a", "b"):
        result = run("randomize", "--study", synth.study_path, "--images", synth.root, "--out",
                     tmp_path / out, "--set-id", "same", "--seed", 31415926535897)
        assert result.exit_code == 0, result.output
    key = [(tmp_path / o / "same" / "key" / "key.csv").read_bytes() for o in ("a", "b")]
    assert key[0] == key[1]
    work = [(tmp_path / o / "same" / "rater" / "worklists" / "derm1.json").read_bytes() for o in ("a", "b")]
    assert work[0] == work[1]


def test_randomize_names_every_bad_photo_and_leaves_nothing(synth, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for p in synth.photos:
        (images / p.path).write_bytes((synth.root / p.path).read_bytes())
    (images / "S1001_baseline_face.JPG").write_bytes(b"")
    (images / "S1009_week3_face.jpg").write_bytes((synth.root / synth.photos[1].path).read_bytes())
    out = tmp_path / "out"
    result = run("randomize", "--study", synth.study_path, "--images", images, "--out", out)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {images}: 3 photo file(s) cannot be used; nothing was "
                                    "written. Fix or remove them and run again:\n")
    for name in ("S1001_baseline_face.JPG", "S1009_week3_face.jpg", synth.photos[1].path.name):
        assert f"\n  {name}: " in result.stderr
    assert not out.exists()


def test_randomize_refuses_an_existing_set(synth, tmp_path):
    (tmp_path / "taken" / "rater").mkdir(parents=True)
    result = run("randomize", "--study", synth.study_path, "--images", synth.root, "--out", tmp_path,
                 "--set-id", "taken")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tmp_path / 'taken'}: a set with this id exists already and is "
                             "never overwritten; choose another --set-id\n")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["rater"]


def test_randomize_refuses_a_missing_study_file(tmp_path):
    result = run("randomize", "--study", tmp_path / "study.toml", "--images", tmp_path, "--out",
                 tmp_path / "out")
    assert result.exit_code == 1
    assert "no such study file" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_help_of_randomize_and_demo_ends_with_an_example():
    for command in ("randomize", "demo"):
        result = run(command, "-h")
        assert result.exit_code == 0
        description = result.output.split("Options:")[0]
        assert f"assess {command}" in description.split("Example:")[1]


def test_demo_builds_and_randomizes_a_study_and_prints_the_sign_in(tmp_path):
    images, out = tmp_path / "images" / "demo", tmp_path / "assignments"
    result = run("demo", "--dir", images, "--out", out, "--no-serve", "--size", 64, 48)
    assert result.exit_code == 0, result.output
    access = read_access(out / "demo" / "key")
    assert list(access) == ["derm1"]
    lines = result.stdout.splitlines()
    assert lines[0] == (f"Drawing a synthetic study into {images} (12 participants x 2 visits x face, "
                        "neck, hands) ...")
    assert lines[1] == ("Blinded set demo: 72 photos + 7 disguised repeats = 79 items in each "
                        "worklist (raters: derm1).")
    assert lines[-3:] == ["Rating app: http://localhost:8501",
                          f"  Sign in as rater derm1 with access code {access['derm1']}",
                          f"Start it with: assess rate {out / 'demo' / 'rater'} --port 8501"]
    assert (images / "truth.csv").is_file()
    assert not (out / "demo" / "rater" / "truth.csv").exists()

    again = run("demo", "--dir", images, "--out", out, "--no-serve", "--size", 64, 48, "--port", 8600)
    assert again.exit_code == 0, again.output
    assert again.stdout == (
        f"Using the synthetic study in {images}.\n"
        f"Using the blinded set {out / 'demo'} (delete it and results/demo to start over).\n"
        "\n"
        "Rating app: http://localhost:8600\n"
        f"  Sign in as rater derm1 with access code {access['derm1']}\n"
        f"Start it with: assess rate {out / 'demo' / 'rater'} --port 8600\n")
    data = json.loads((out / "demo" / "rater" / "set.json").read_text())
    assert data["counts"] == {"photos": 72, "repeats": 7, "items": 79, "pairs": 0}


def test_demo_refuses_a_folder_that_is_not_a_demo_study(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "P1_baseline_face.jpg").write_bytes(b"mine")
    result = run("demo", "--dir", tmp_path / "photos", "--out", tmp_path / "out", "--no-serve")
    assert result.exit_code == 1
    assert "folder is not empty" in result.stderr
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["P1_baseline_face.jpg"]


def test_a_terminated_randomize_leaves_nothing_behind(synth, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from assess.cli import cli; cli()", "randomize", "--study",
               str(synth.study_path), "--images", str(synth.root), "--out", str(out), "--set-id", "t"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None and not (out.is_dir() and any(out.glob(".t.partial-*"))):
            time.sleep(0.01)
        assert proc.poll() is None, "randomize finished before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert not out.exists()  # not even the output folder this run made


def _listener() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the app's server does
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server, server.getsockname()[1]


def test_the_demo_refuses_a_port_another_server_listens_on():
    from assess.cli import _check_port
    from assess.errors import AssessError

    server, port = _listener()
    with server, pytest.raises(AssessError, match=f"port {port} on 127.0.0.1 is in use"):
        _check_port("127.0.0.1", port)


@pytest.mark.skipif(sys.platform != "linux", reason="TIME_WAIT as Linux keeps it")
def test_the_demo_starts_again_at_once_on_the_port_its_stopped_server_used():
    from assess.cli import _check_port

    server, port = _listener()
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server closes first: its side of the connection waits (TIME_WAIT)
    client.close()
    server.close()
    with open("/proc/net/tcp") as fh:  # local address, state 06 = TIME_WAIT
        waiting = [f for f in (line.split() for line in fh) if f[1].endswith(f":{port:04X}")
                   and f[3] == "06"]
    assert waiting  # the port is held by a waiting connection, as after Ctrl+C
    _check_port("127.0.0.1", port)
