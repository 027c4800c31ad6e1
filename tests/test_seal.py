"""The seal of a blinded set (``key/seal.json``) and the coordinator's signature over it.

Real sets made by ``assess.blind.randomize`` from a synthetic study, real Ed25519 keys, tampered
the way a careless coordinator or an attacker with write access would, checked by
``assess.seal.verify`` and by the commands that rely on it (``score``, ``status --key``,
``audit-set --key``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from assess import blind, seal, synth
from assess.cli import cli
from assess.score import score

SET_ID = "seal-20260101"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One signed and one unsigned set of the same study, and the signing key."""
    tmp = tmp_path_factory.mktemp("seal")
    study = synth.make_study(tmp / "images", participants=3, size=(64, 48),
                             regions={"face": "wsrs", "hands": "merz-hand"})
    key_path = tmp / "coordinator.key"
    seal.generate_key(key_path)
    key = seal.load_signing_key(key_path)
    signed = blind.randomize(study.study_path, study.root, tmp / "signed", set_id=SET_ID,
                             seed=10**13, workers=1, signing_key=key)
    unsigned = blind.randomize(study.study_path, study.root, tmp / "unsigned", set_id=SET_ID,
                               seed=10**13, workers=1)
    return {"signed": signed.path, "unsigned": unsigned.path, "key": key, "key_path": key_path}


@pytest.fixture
def signed(made, tmp_path) -> Path:
    shutil.copytree(made["signed"], tmp_path / SET_ID)
    return tmp_path / SET_ID


@pytest.fixture
def unsigned(made, tmp_path) -> Path:
    shutil.copytree(made["unsigned"], tmp_path / SET_ID)
    return tmp_path / SET_ID


def run(*args, env=None):
    return CliRunner(env=env).invoke(cli, [str(a) for a in args])


def ratings_csv(set_dir: Path) -> Path:
    """Every item of every worklist rated at the scale's lowest level."""
    meta = json.loads((set_dir / "rater" / "set.json").read_text())
    path = set_dir.parent / "ratings.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rater", "code", "score"])
        for rater in meta["raters"]:
            wl = json.loads((set_dir / "rater" / "worklists" / f"{rater}.json").read_text())
            for item in wl["items"]:
                w.writerow([rater, item["item"], meta["scales"][item["scale"]]["levels"][0]["value"]])
    return path


def score_cli(set_dir: Path, *extra, env=None):
    return run("score", "--rater-dir", set_dir / "rater", "--key", set_dir / "key",
               "--ratings", ratings_csv(set_dir), "--out", set_dir.parent / "results", *extra,
               env=env)


def reverse_timepoints(set_dir: Path) -> None:
    study = set_dir / "key" / "study.toml"
    text = study.read_text()
    assert 'timepoints = ["baseline", "month12"]' in text
    study.write_text(text.replace('timepoints = ["baseline", "month12"]',
                                  'timepoints = ["month12", "baseline"]'))


def rewrite_seal(set_dir: Path, signing_key=None) -> None:
    """What an attacker with write access does: recompute every sha256 into the seal (and sign it
    with their own key when given)."""
    key_dir = set_dir / "key"
    old = json.loads((key_dir / seal.SEAL_FILE).read_text())
    seal.write_seal(set_dir / "rater", key_dir, old["set_id"], signing_key)


# --------------------------------------------------------------------------- what is sealed


def test_the_seal_covers_every_file_of_both_folders_and_set_json_names_only_the_key(made):
    set_dir = made["signed"]
    sealed = json.loads((set_dir / "key" / "seal.json").read_text())
    on_disk = sorted(f"{top}/{p.relative_to(set_dir / top).as_posix()}"
                     for top in ("rater", "key") for p in (set_dir / top).rglob("*")
                     if p.is_file() and p.name != "seal.json")
    assert sorted(sealed["files"]) == on_disk
    for name in ("key/key.csv", "key/study.toml", "key/access.csv", "key/seed.txt",
                 "rater/set.json"):
        assert sealed["files"][name] == hashlib.sha256((set_dir / name).read_bytes()).hexdigest()
    assert stat.S_IMODE(os.stat(set_dir / "key" / "seal.json").st_mode) == 0o600
    meta = json.loads((set_dir / "rater" / "set.json").read_text())
    assert meta["seal"] == {"format": 1, "fingerprint": made["key"].fingerprint}


def test_a_signed_set_verifies_with_its_keys_fingerprint(signed, made):
    got = seal.verify(signed / "rater", signed / "key", fingerprint=made["key"].fingerprint.lower())
    assert (got.status, got.fingerprint, got.warnings) == ("signed", made["key"].fingerprint, [])
    assert got.files == len(json.loads((signed / "key" / "seal.json").read_text())["files"])


# --------------------------------------------------------------------------- what each check catches


def test_a_reversed_study_file_is_refused_naming_it(signed):
    reverse_timepoints(signed)
    with pytest.raises(seal.SealError, match=r"key/study.toml: changed since the set was sealed"):
        seal.verify(signed / "rater", signed / "key")
    result = score_cli(signed)
    assert result.exit_code == 1
    assert "study.toml: changed since the set was sealed" in result.output
    assert not (signed.parent / "results" / "summary.csv").exists()


def test_an_edited_key_with_its_sha256_rewritten_everywhere_is_refused_by_the_signature(signed):
    key_csv = signed / "key" / "key.csv"
    rows = key_csv.read_text().splitlines()
    swapped = [r.replace(",baseline,", ",@@,").replace(",month12,", ",baseline,")
               .replace(",@@,", ",month12,") for r in rows]
    key_csv.write_text("\n".join(swapped) + "\n")
    digest = hashlib.sha256(key_csv.read_bytes()).hexdigest()
    meta_path = signed / "rater" / "set.json"
    meta = json.loads(meta_path.read_text())
    meta["key_sha256"] = digest
    meta_path.write_text(json.dumps(meta, indent=2))
    seal_path = signed / "key" / "seal.json"
    sealed = json.loads(seal_path.read_text())
    sealed["files"]["key/key.csv"] = digest
    sealed["files"]["rater/set.json"] = hashlib.sha256(meta_path.read_bytes()).hexdigest()
    seal_path.write_text(json.dumps(sealed))
    with pytest.raises(seal.SealError, match=r"seal.json: the signature does not match the seal's "
                                             r"content .* edited after the set was made"):
        seal.verify(signed / "rater", signed / "key")
    result = score_cli(signed)
    assert result.exit_code == 1 and "the signature does not match" in result.output


def test_a_set_re_signed_with_another_key_is_refused_under_the_pinned_fingerprint(signed, made,
                                                                                  tmp_path):
    reverse_timepoints(signed)
    seal.generate_key(tmp_path / "other.key")
    other = seal.load_signing_key(tmp_path / "other.key")
    meta_path = signed / "rater" / "set.json"
    meta = json.loads(meta_path.read_text())
    meta["seal"]["fingerprint"] = other.fingerprint  # the attacker holds both folders
    meta_path.write_text(json.dumps(meta, indent=2))
    rewrite_seal(signed, other)
    assert seal.verify(signed / "rater", signed / "key").fingerprint == other.fingerprint
    with pytest.raises(seal.SealError, match=rf"signed by key {other.fingerprint}, not by the "
                                             rf"expected coordinator key {made['key'].fingerprint}"):
        seal.verify(signed / "rater", signed / "key", fingerprint=made["key"].fingerprint)
    result = score_cli(signed, "--fingerprint", made["key"].fingerprint)
    assert result.exit_code == 1 and f"not by the expected coordinator key" in result.output
    result = score_cli(signed, env={"ASSESS_FINGERPRINT": made["key"].fingerprint})
    assert result.exit_code == 1 and f"not by the expected coordinator key" in result.output


def test_a_key_folder_re_signed_with_another_key_is_refused_by_the_rater_folder(signed, tmp_path):
    reverse_timepoints(signed)
    seal.generate_key(tmp_path / "other.key")
    rewrite_seal(signed, seal.load_signing_key(tmp_path / "other.key"))
    with pytest.raises(seal.SealError, match=r"set.json names key .* re-sealed with another key"):
        seal.verify(signed / "rater", signed / "key")


def test_a_key_folder_resealed_unsigned_is_refused_by_the_rater_folder(signed):
    reverse_timepoints(signed)
    rewrite_seal(signed, None)
    with pytest.raises(seal.SealError, match=r"carries no signature, but .*set.json says the set "
                                             r"was signed"):
        seal.verify(signed / "rater", signed / "key")


def test_a_deleted_seal_of_a_sealed_set_is_refused(signed):
    (signed / "key" / "seal.json").unlink()
    with pytest.raises(seal.SealError, match=r"seal.json: not found, but .*set.json says the set "
                                             r"was sealed"):
        seal.verify(signed / "rater", signed / "key")


def test_an_extra_a_missing_and_a_changed_rater_file_are_each_named(signed):
    rater = signed / "rater"
    images = sorted((rater / "images" / "display").iterdir())
    images[0].unlink()
    changed = images[1]
    changed.write_bytes(changed.read_bytes() + b"\0")
    (rater / "images" / "full" / "notes.txt").write_text("P01 baseline")
    with pytest.raises(seal.SealError) as caught:
        seal.verify(rater, signed / "key")
    message = str(caught.value)
    assert "(3 problem(s))" in message
    assert f"{images[0]}: missing (sealed)" in message
    assert f"{changed}: changed since the set was sealed" in message
    assert f"{rater / 'images' / 'full' / 'notes.txt'}: extra (not in the seal; remove it)" in message


def test_a_symlink_in_the_rater_folder_is_named(signed):
    (signed / "rater" / "link.jpg").symlink_to(signed / "key" / "key.csv")
    with pytest.raises(seal.SealError, match=r"link.jpg: not a regular file"):
        seal.verify(signed / "rater", signed / "key")


def test_without_images_the_images_are_not_hashed_but_must_be_there(signed):
    rater = signed / "rater"
    image = sorted((rater / "images" / "full").iterdir())[0]
    image.write_bytes(image.read_bytes() + b"\0")
    seal.verify(rater, signed / "key", images=False)
    image.unlink()
    with pytest.raises(seal.SealError, match="missing"):
        seal.verify(rater, signed / "key", images=False)


def test_an_extra_file_in_the_key_folder_is_a_warning_only(signed):
    (signed / "key" / "notes.txt").write_text("call the site on Monday")
    got = seal.verify(signed / "rater", signed / "key")
    assert got.status == "signed"
    assert any("notes.txt: is not in the seal" in w for w in got.warnings)


def test_a_key_folder_of_another_set_is_refused_as_another_set(signed, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(signed, other)
    sealed = json.loads((other / "key" / "seal.json").read_text())
    sealed["set_id"] = "another-20260101"
    (other / "key" / "seal.json").write_text(json.dumps(sealed))
    with pytest.raises(seal.SealError, match="seals set 'another-20260101', but .* is set "
                                             f"'{SET_ID}'; give the key/ and rater/ folders of one"):
        seal.verify(signed / "rater", other / "key")


# --------------------------------------------------------------------------- unsigned and older sets


def test_an_unsigned_set_is_accepted_with_a_warning(unsigned):
    got = seal.verify(unsigned / "rater", unsigned / "key")
    assert got.status == "unsigned" and got.fingerprint is None
    assert "the set is not signed" in got.warnings[0]
    result = score_cli(unsigned)
    assert result.exit_code == 0, result.output
    assert "Warning: " in result.output and "the set is not signed" in result.output
    assert "not signed" in (unsigned.parent / "results" / "report.html").read_text()


def test_an_unsigned_set_is_refused_under_a_pinned_fingerprint(unsigned, made):
    with pytest.raises(seal.SealError, match="not signed, so it cannot be checked against the "
                                             "fingerprint"):
        seal.verify(unsigned / "rater", unsigned / "key", fingerprint=made["key"].fingerprint)


def test_a_set_made_before_the_seal_scores_with_a_warning_that_study_toml_is_unsealed(unsigned):
    (unsigned / "key" / "seal.json").unlink()
    meta_path = unsigned / "rater" / "set.json"
    meta = json.loads(meta_path.read_text())
    del meta["seal"]
    meta_path.write_text(json.dumps(meta, indent=2))
    got = seal.verify(unsigned / "rater", unsigned / "key")
    assert got.status == "legacy"
    assert "made before sets were sealed" in got.warnings[0]
    assert "study.toml" in got.warnings[0]
    result = score_cli(unsigned)
    assert result.exit_code == 0, result.output
    assert "made before sets were sealed" in result.output
    # the key is still checked against key_sha256 as before the seal
    key_csv = unsigned / "key" / "key.csv"
    key_csv.write_text(key_csv.read_text() + "\n")
    result = run("score", "--rater-dir", unsigned / "rater", "--key", unsigned / "key",
                 "--ratings", ratings_csv(unsigned), "--out", unsigned.parent / "results2")
    assert result.exit_code == 1 and "differs from the key_sha256" in result.output


def test_a_malformed_fingerprint_is_refused_with_the_expected_form(signed):
    with pytest.raises(seal.SealError, match=r"--fingerprint 'abc': not a fingerprint; .* like "
                                             r"ABCD-EFGH-IJKL-MNOP"):
        seal.verify(signed / "rater", signed / "key", fingerprint="abc")


# --------------------------------------------------------------------------- keys and commands


def test_keygen_writes_a_key_only_its_owner_reads_prints_its_fingerprint_and_never_overwrites(
        tmp_path):
    path = tmp_path / ".assess" / "coordinator.key"
    result = run("keygen", path)
    assert result.exit_code == 0, result.output
    fingerprint = seal.load_signing_key(path).fingerprint
    assert f"Fingerprint: {fingerprint}" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    before = path.read_bytes()
    result = run("keygen", path)
    assert result.exit_code == 1
    assert "exists already and is never overwritten" in result.output
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_signing_key_is_refused_naming_it(tmp_path):
    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    with pytest.raises(seal.SealError, match=r"key.pem: not a signing key written by `assess keygen`"):
        seal.load_signing_key(bad)
    with pytest.raises(seal.SealError, match=r"nope.key: the signing key cannot be read"):
        seal.load_signing_key(tmp_path / "nope.key")


def test_randomize_signs_with_the_key_of_the_environment_and_score_prints_its_fingerprint(
        tmp_path):
    study = synth.make_study(tmp_path / "images", participants=2, size=(64, 48),
                             regions={"face": "wsrs"})
    key = tmp_path / "coordinator.key"
    fingerprint = seal.generate_key(key)
    result = run("randomize", "--study", study.study_path, "--images", study.root, "--out",
                 tmp_path / "out", "--set-id", SET_ID, "--seed", 10**13,
                 env={"ASSESS_SIGNING_KEY": str(key)})
    assert result.exit_code == 0, result.output
    assert f"coordinator key fingerprint {fingerprint}" in result.stdout
    set_dir = tmp_path / "out" / SET_ID
    result = score_cli(set_dir, "--fingerprint", fingerprint)
    assert result.exit_code == 0, result.output
    assert f"signed by coordinator key {fingerprint}" in result.stdout
    assert fingerprint in (set_dir.parent / "results" / "report.html").read_text()


def test_randomize_without_a_key_says_the_set_is_not_signed(tmp_path):
    study = synth.make_study(tmp_path / "images", participants=2, size=(64, 48),
                             regions={"face": "wsrs"})
    result = run("randomize", "--study", study.study_path, "--images", study.root, "--out",
                 tmp_path / "out", "--set-id", SET_ID, "--seed", 10**13,
                 env={"ASSESS_SIGNING_KEY": ""})
    assert result.exit_code == 0, result.output
    assert "Warning: sealed but not signed" in result.stdout


def test_status_and_audit_set_with_the_key_refuse_a_tampered_set_naming_the_file(signed, made):
    ok = run("status", signed / "rater", "--key", signed / "key", "--db", signed / "none.sqlite",
             "--fingerprint", made["key"].fingerprint)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[0].split()[0] == "rater"  # the table first, then the seal
    assert f"signed by coordinator key {made['key'].fingerprint}" in ok.stdout.splitlines()[-1]
    reverse_timepoints(signed)
    for result in (run("status", signed / "rater", "--key", signed / "key"),
                   run("audit-set", signed / "rater", "--key", signed / "key")):
        assert result.exit_code == 1
        assert "study.toml: changed since the set was sealed" in result.output


def test_a_signing_key_readable_by_others_or_kept_beside_the_sets_is_warned_about(tmp_path):
    out = tmp_path / "assignments"
    out.mkdir()
    path = out / "coordinator.key"
    seal.generate_key(path)
    key = seal.load_signing_key(path)
    assert len(seal.key_warnings(key, out)) == 1
    assert "lies inside" in seal.key_warnings(key, out)[0]
    os.chmod(path, 0o644)
    assert any("chmod 600" in w for w in seal.key_warnings(key, out))
    assert seal.key_warnings(key, tmp_path / "elsewhere") == [seal.key_warnings(key, out)[0]]


def test_a_fingerprint_without_the_key_folder_is_said_to_go_unchecked(signed, made):
    result = run("status", signed / "rater", "--db", signed / "none.sqlite", "--fingerprint",
                 made["key"].fingerprint)
    assert result.exit_code == 0, result.output
    assert "--fingerprint is checked only with --key" in result.stderr


def test_a_seal_naming_a_file_outside_both_folders_is_refused_naming_it(unsigned):
    seal_path = unsigned / "key" / "seal.json"
    sealed = json.loads(seal_path.read_text())
    sealed["files"]["elsewhere/x.csv"] = "0" * 64
    seal_path.write_text(json.dumps(sealed))
    with pytest.raises(seal.SealError, match=r"elsewhere/x.csv: missing \(sealed\)"):
        seal.verify(unsigned / "rater", unsigned / "key")
