"""``assess status`` against one central database: every rater at every site, never a score.

Run on a real SQLite file and on a real PostgreSQL database (tests/pg_cluster.py).
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from assess import rate, store
from assess.cli import cli
from assess.study import TEMPLATE, StudyError, parse_study

SITES = {"derm1": "Paris", "derm2": "Boston", "derm3": "Paris"}


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "central.sqlite")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def site_set(make_rater_set):
    rater_dir, key_dir, access = make_rater_set(raters=("derm1", "derm2", "derm3"),
                                                participants=2, sites=SITES)
    return rate.load_rater_set(rater_dir), key_dir, access


def _status(rs, db, *extra):
    result = CliRunner().invoke(cli, ["status", str(rs.root), "--db", db, *extra])
    return result.exit_code, result.output


def test_status_with_the_key_groups_raters_by_site_with_progress_activity_lock_and_failures(
        site_set, db):
    rs, key_dir, access = site_set
    one, two = rs.worklist("derm1"), rs.worklist("derm2")
    for it in one.items[:3]:
        one.save(db, it.item, score=rs.scales[it.scale].values[-1])
    for it in two.items:
        two.save(db, it.item, score=rs.scales[it.scale].values[0])
    locked_at = two.lock(db)
    rate.sign_in(rs, db, "derm3", "WRONG", "10.0.0.9")
    code, out = _status(rs, db, "--key", str(key_dir))
    assert code == 0, out
    table = [line for line in out.splitlines() if line.split()[:1] in (["site"], ["Paris"],
                                                                       ["Boston"])]
    assert table[0].split()[:2] == ["site", "rater"] and "last activity" in table[0]
    assert [line.split()[:2] for line in table[1:]] == [
        ["Boston", "derm2"], ["Paris", "derm1"], ["Paris", "derm3"]]
    rows = {r.rater: r for r in rate.status(rs.root, db, key_dir)}
    events = store.all_events(db)
    assert rows["derm1"].last_activity == max(events.query("rater == 'derm1'")["answered_at"])
    assert rows["derm2"].last_activity == locked_at and rows["derm2"].locked_at == locked_at
    assert rows["derm3"].last_activity is None and rows["derm3"].failed_sign_ins == 1
    assert f"{locked_at[:16].replace('T', ' ')} UTC" in table[1]
    assert table[3].split()[-1] == "1" and " - " in table[3]


def test_status_without_the_key_has_no_site_column(site_set, db):
    rs, _, _ = site_set
    wl = rs.worklist("derm1")
    wl.save(db, wl.items[0].item, score=rs.scales[wl.items[0].scale].values[0])
    code, out = _status(rs, db)
    assert code == 0
    assert out.splitlines()[0].startswith("rater  rated")
    assert [line.split()[0] for line in out.splitlines()[1:4]] == ["derm1", "derm2", "derm3"]


def test_a_site_for_someone_who_is_not_a_rater_is_refused_naming_the_field():
    text = TEMPLATE.replace('raters = ["derm1"]', 'raters = ["derm1"]\nsites = {derm9 = "Rome"}')
    with pytest.raises(StudyError, match=r"blinding\.sites\.derm9: not one of blinding\.raters"):
        parse_study(text)


def test_sites_are_read_from_the_study_and_kept_in_rater_order():
    text = TEMPLATE.replace('raters = ["derm1"]', 'raters = ["derm1", "derm2"]\n'
                            'sites = {derm2 = "Boston", derm1 = " Paris "}')
    assert parse_study(text).blinding.sites == (("derm1", "Paris"), ("derm2", "Boston"))
