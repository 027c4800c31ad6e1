"""The audit log: what the rating side records, and the coordinator's summary and export."""

from __future__ import annotations

import csv
import sqlite3
import time
from contextlib import closing

import pytest
from click.testing import CliRunner

from assess import rate, signins, store
from assess.cli import cli


@pytest.fixture
def rater_set(make_rater_set):
    rater_dir, key_dir, access = make_rater_set(raters=("derm1", "derm2"), participants=2)
    return rate.load_rater_set(rater_dir), key_dir, access


def entries(rs, db):
    return [(e.event, e.method, e.rater, e.account, e.client)
            for e in store.audit_log(db, rs.set_id)]


def test_every_sign_in_with_a_code_goes_to_the_audit_log_with_its_outcome(rater_set, tmp_path):
    rs, _, access = rater_set
    db = tmp_path / "r.sqlite"
    rate.sign_in(rs, db, "derm1", "WRONG-CODE", "10.0.0.7")
    rate.sign_in(rs, db, "derm1", access["derm1"], "10.0.0.7")
    assert entries(rs, db) == [("sign-in refused", "access code", "derm1", None, "10.0.0.7"),
                               ("sign-in", "access code", "derm1", None, "10.0.0.7")]
    assert store.audit_log(db, rs.set_id)[0].detail == "rater id or access code not recognised"


def test_an_attempt_refused_during_the_wait_is_audited_as_throttled(rater_set, tmp_path):
    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    for _ in range(rate.FREE_ATTEMPTS + 1):
        rate.sign_in(rs, db, "derm2", "WRONG", "10.0.0.1")
    assert [e[0] for e in entries(rs, db)] == ["sign-in refused"] * rate.FREE_ATTEMPTS + [
        "sign-in throttled"]
    assert rate.sign_in(rs, db, "derm2", "WRONG", "10.0.0.1").checked is False  # throttle holds


def test_a_single_sign_on_maps_the_account_and_is_recorded_once_per_sign_in(rater_set, tmp_path):
    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    accounts = {"a@clinic.example": "derm1"}
    claims = {"email": "A@Clinic.example", "sub": "1", "auth_time": 1_780_000_000}
    assert rate.sso_sign_in(rs, db, accounts, claims, "10.0.0.5") == "derm1"
    assert rate.sso_sign_in(rs, db, accounts, claims, "10.0.0.5") == "derm1"  # a reload
    assert rate.sso_sign_in(rs, db, accounts, dict(claims, auth_time=1_780_000_600), "x") == "derm1"
    assert [e[:4] for e in entries(rs, db)] == [
        ("sign-in", "single sign-on", "derm1", "a@clinic.example")] * 2
    assert store.audit_log(db, rs.set_id)[0].detail == \
        "signed in at the provider 2026-05-28T20:26:40.000Z"


def test_an_account_that_is_no_rater_is_refused_and_the_refusal_audited(rater_set, tmp_path):
    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    claims = {"email": "x@elsewhere.example", "iat": time.time()}
    assert rate.sso_sign_in(rs, db, {"a@clinic.example": "derm1"}, claims, "10.0.0.9") is None
    assert entries(rs, db) == [("sign-in refused", "single sign-on", None, "x@elsewhere.example",
                                "10.0.0.9")]


def test_signing_with_a_wrong_code_and_then_the_right_one_is_audited(rater_set, tmp_path):
    rs, _, access = rater_set
    db = tmp_path / "r.sqlite"
    wl = rs.worklist("derm1")
    for it in wl.items:
        wl.save(db, it.item, score=rs.scales[it.scale].values[0])
    with pytest.raises(rate.SignatureError):
        wl.sign_and_lock(db, code="WRONG", client="10.0.0.3")
    sig = wl.sign_and_lock(db, code=access["derm1"], client="10.0.0.3")
    wl.sign_and_lock(db, code=access["derm1"], client="10.0.0.3")  # twice: one lock, one entry
    assert entries(rs, db) == [("lock refused", "access code", "derm1", None, "10.0.0.3"),
                               ("lock", "access code", "derm1", None, "10.0.0.3")]
    assert store.audit_log(db, rs.set_id)[1].detail == f"receipt {sig.hash[:12]}"


def _settings(tmp_path, mode=0o600, **auth):
    values = {"redirect_uri": "https://rating.example.org/oauth2callback", "cookie_secret": "c" * 64,
              "client_id": "assess", "client_secret": "s3cret",
              "server_metadata_url": "https://login.example.org/.well-known/openid-configuration"}
    values.update(auth)
    path = tmp_path / "sso.toml"
    path.write_text("[auth]\n" + "".join(f'{k} = "{v}"\n' for k, v in values.items() if v))
    path.chmod(mode)
    return path


def test_single_sign_on_settings_are_checked_before_the_server_starts(rater_set, tmp_path):
    rs, _, _ = rater_set
    assert rate.load_sso_config(_settings(tmp_path), rs) == (tmp_path / "sso.toml").resolve()
    with pytest.raises(rate.RateError, match=r"sso\.toml: \[auth\] needs client_secret"):
        rate.load_sso_config(_settings(tmp_path, client_secret=""), rs)
    with pytest.raises(rate.RateError, match="redirect_uri must be the app's address followed by"):
        rate.load_sso_config(_settings(tmp_path, redirect_uri="https://x.example/"), rs)
    with pytest.raises(rate.RateError, match="run `chmod 600"):
        rate.load_sso_config(_settings(tmp_path, mode=0o644), rs)
    inside = rs.root / "sso.toml"
    inside.write_bytes(_settings(tmp_path).read_bytes())
    inside.chmod(0o600)
    with pytest.raises(rate.RateError, match="must not be in the rater folder"):
        rate.load_sso_config(inside, rs)


def test_assess_rate_refuses_settings_readable_by_others_without_a_traceback(rater_set, tmp_path):
    rs, _, _ = rater_set
    accounts = tmp_path / "raters.csv"
    accounts.write_text("account,rater\na@clinic.example,derm1\n")
    result = CliRunner().invoke(cli, ["rate", str(rs.root), "--db", str(tmp_path / "r.sqlite"),
                                      "--port", "1", "--sso-raters", str(accounts),
                                      "--sso-config", str(_settings(tmp_path, mode=0o640))])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "others than its owner may read it" in result.output


def _signed_in_set(rs, access, db):
    for rater, code in (("derm1", "WRONG"), ("derm1", access["derm1"]), ("derm2", "WRONG"),
                        ("mallory", "=cmd|' /C calc'!A0")):
        rate.sign_in(rs, db, rater, code, "10.0.0.1")
    rate.sso_sign_in(rs, db, {}, {"email": "x@elsewhere.example", "iat": 1}, "10.0.0.2")


def test_status_summarizes_sign_ins_per_rater_from_the_audit_log(rater_set, tmp_path):
    rs, _, access = rater_set
    db = tmp_path / "r.sqlite"
    _signed_in_set(rs, access, db)
    result = CliRunner().invoke(cli, ["status", str(rs.root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    table = result.output.split("Sign-ins (audit log; see `assess audit-log`):\n")[1].splitlines()
    last = store.audit_log(db, rs.set_id)[1].at[:16].replace("T", " ")
    assert table[:3] == ["rater  sign-ins  failed  last sign-in",
                         f"derm1  1         1       {last} UTC",
                         "derm2  0         1       -"]
    assert table[3] == "Refused sign-ins of ids or accounts that are no rater of this set: 2"


def test_the_audit_log_is_exported_whole_and_safe_to_open_in_a_spreadsheet(rater_set, tmp_path):
    rs, _, access = rater_set
    db = tmp_path / "r.sqlite"
    _signed_in_set(rs, access, db)
    out = tmp_path / "export" / "audit.csv"
    result = CliRunner().invoke(cli, ["audit-log", str(rs.root), "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{out}: 5 audit entries\n"
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == signins.EXPORT_COLUMNS
    assert [(r["event"], r["rater"], r["account"]) for r in rows] == [
        ("sign-in refused", "derm1", ""), ("sign-in", "derm1", ""), ("sign-in refused", "derm2", ""),
        ("sign-in refused", "mallory", ""), ("sign-in refused", "", "x@elsewhere.example")]
    assert rows[3]["rater"] == "mallory" and rows[0]["hash"] == store.audit_log(db)[0].hash


def test_a_formula_typed_as_rater_id_is_exported_prefixed(rater_set, tmp_path):
    rs, _, _ = rater_set
    db = tmp_path / "r.sqlite"
    rate.sign_in(rs, db, "=cmd|' /C calc'!A0", "WRONG", "10.0.0.1")
    out = tmp_path / "audit.csv"
    assert CliRunner().invoke(cli, ["audit-log", str(rs.root), "--db", str(db), "--out",
                                    str(out)]).exit_code == 0
    with open(out, newline="", encoding="utf-8") as f:
        assert next(csv.DictReader(f))["rater"] == "'=cmd|' /C calc'!A0"


def test_an_audit_log_changed_outside_assess_is_named_by_the_export(rater_set, tmp_path):
    rs, _, access = rater_set
    db = tmp_path / "r.sqlite"
    _signed_in_set(rs, access, db)
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TRIGGER audit_log_append_only_delete")
        conn.execute("DELETE FROM audit_log WHERE event = 'sign-in'")
        conn.commit()
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(cli, ["audit-log", str(rs.root), "--db", str(db), "--out", str(out)])
    assert result.exit_code == 1
    assert "Error: the audit log was changed outside assess: audit entry 2" in result.output
    assert "an entry was removed or inserted before it" in result.output
    assert len(out.read_text().splitlines()) == 5  # header and the four entries left
    status = CliRunner().invoke(cli, ["status", str(rs.root), "--db", str(db)])
    assert status.exit_code == 0
    assert "Warning: the audit log was changed outside assess: audit entry 2" in status.output


def test_the_export_of_a_set_without_any_sign_in_has_the_header_only(rater_set, tmp_path):
    rs, _, _ = rater_set
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(cli, ["audit-log", str(rs.root), "--db", str(tmp_path / "none.sqlite"),
                                      "--out", str(out)])
    assert result.exit_code == 0 and result.output == f"{out}: 0 audit entries\n"
    assert out.read_text().splitlines() == [",".join(signins.EXPORT_COLUMNS)]


def test_the_help_of_audit_log_ends_with_an_example():
    result = CliRunner().invoke(cli, ["audit-log", "-h"])
    assert result.exit_code == 0
    assert "assess audit-log" in result.output.split("Options:")[0].split("Example:")[1]
