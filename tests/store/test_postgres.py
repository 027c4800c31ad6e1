"""What only the PostgreSQL store has: the URL, the restricted role, its own guards, the commands.

Run against a throwaway cluster on 127.0.0.1 (tests/pg_cluster.py) or ``ASSESS_TEST_PG_URL``;
skipped with a message saying how when neither is possible.
"""

from __future__ import annotations

import socket
from contextlib import closing

import pytest
from click.testing import CliRunner

from assess import store
from assess.cli import cli

SET = "S1"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("url", ["postgresql://assess:s3cret@db.example.org:5432/trial",
                                 "postgresql://assess@db.example.org/trial?password=s3cret"])
def test_a_url_with_a_password_is_refused_saying_where_to_put_it(url, tmp_path):
    with pytest.raises(store.StoreError, match="a password must not be part of the URL") as caught:
        store.connect(url)
    assert "s3cret" not in str(caught.value) and "PGPASSWORD" in str(caught.value)
    for command in (["status", tmp_path], ["verify", tmp_path], ["rate", tmp_path],
                    ["db", "init"]):
        result = invoke(*command, *(["--db"] if command[0] != "db" else []), url)
        assert result.exit_code == 2, result.output
        assert "a password must not be part of the URL" in result.output
        assert "s3cret" not in result.output and "Traceback" not in result.output


def test_a_server_that_does_not_answer_is_one_clear_message():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    url = f"postgresql://assess@127.0.0.1:{port}/trial"
    with pytest.raises(store.StoreError, match=f"{url}: cannot connect to the ratings database"):
        store.connect(url)
    with pytest.raises(store.StoreError, match="cannot connect"):
        store.current_ratings(url)


def rate_some(url, n=2, rater="derm1"):
    with closing(store.connect(url)) as conn:
        for i in range(n):
            store.record(conn, SET, rater, f"AAA-{i:04d}", score=i)


def test_truncate_is_refused_and_a_disabled_or_replaced_guard_is_named(pg_url):
    import psycopg

    rate_some(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for table in ("events", "locks", "store_info"):
            with pytest.raises(psycopg.errors.RaiseException):
                conn.execute(f"TRUNCATE {table}")
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only_update")
        conn.execute("CREATE OR REPLACE FUNCTION locks_final_delete() RETURNS trigger "
                     "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$")
    assert store.verify(pg_url, SET).triggers == [
        "guard trigger events_append_only_update is disabled, so the events could be changed or "
        "deleted unseen",
        "guard trigger locks_final_delete was replaced by another one"]


def test_the_app_role_may_insert_and_select_but_not_update_delete_truncate_or_drop_a_guard(
        pg_url, pg_server):
    import psycopg

    result = invoke("db", "init", pg_url, "--app-role", "assess_app")
    assert result.exit_code == 0, result.output
    assert "role assess_app may INSERT and SELECT" in result.output
    rate_some(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET ROLE assess_app")
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 2
        for sql in ("UPDATE events SET score = 6 - score", "DELETE FROM events",
                    "TRUNCATE events", "UPDATE locks SET locked_at = 'x'", "DELETE FROM locks",
                    "DELETE FROM store_info", "DELETE FROM audit_log", "TRUNCATE audit_log",
                    "DROP TRIGGER events_append_only_update ON events",
                    "ALTER TABLE events DISABLE TRIGGER USER", "CREATE TABLE events_copy (x int)",
                    "DELETE FROM sessions", "UPDATE session_keys SET secret = 'x'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
    _, cluster = pg_server
    if cluster is None:
        return  # an existing server: its own authentication decides how the role signs in
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER ROLE assess_app PASSWORD 'app-secret'")
    cluster.add_password("assess_app", "app-secret")  # in the password file, not the URL
    app_url = pg_url.replace("postgresql://postgres@", "postgresql://assess_app@")
    with closing(store.connect(app_url)) as conn:  # the app works with INSERT and SELECT alone
        store.record(conn, SET, "derm1", "AAA-0009", score=3)
        store.lock(conn, SET, "derm1", ["AAA-0000", "AAA-0001", "AAA-0009"])
        store.log_audit(conn, SET, "lock", "access code", "10.0.0.1", rater="derm1")
        # ... and sign-in sessions with what they need besides
        assert store.session_secret(conn) == store.session_secret(conn)
        assert store.open_session(conn, "h1", SET, "derm1", "g1", "t0", "t9")
        store.save_position(conn, SET, "derm1", "AAA-0001")
        store.save_position(conn, SET, "derm1", "AAA-0009")
        assert store.end_sessions(conn, SET) == 1
    assert store.verify(app_url, SET).check().worklists[(SET, "derm1")].signed
    assert [e.event for e in store.audit_log(app_url, SET)] == ["lock"]
    assert invoke("db", "init", pg_url, "--app-role", "assess_app").exit_code == 0  # again: same


def test_db_init_refuses_a_sqlite_file_and_a_bad_role_name(tmp_path, pg_url):
    result = invoke("db", "init", tmp_path / "ratings.sqlite")
    assert result.exit_code == 1 and "a SQLite file needs no set-up" in result.output
    result = invoke("db", "init", pg_url, "--app-role", "App; DROP TABLE events")
    assert result.exit_code == 1 and "--app-role" in result.output
    assert "Traceback" not in result.output


def test_db_init_help_ends_with_an_example():
    for command in (["db", "-h"], ["db", "init", "-h"]):
        text = invoke(*command).output
        assert text.split("Options:")[0].split("Example:")[1].strip().startswith(
            ("assess db init", "PGPASSFILE=~/.pgpass assess db init"))


# ------------------------------------------------------------------------- the commands on a URL


@pytest.fixture
def rated_set_pg(make_rater_set, pg_url):
    """A real rater folder whose derm1 rated every item and signed, its ratings on PostgreSQL."""
    from assess import rate as rating

    rater_dir, key_dir, access = make_rater_set(raters=("derm1", "derm2"), participants=2)
    rs = rating.load_rater_set(rater_dir)
    for rater in rs.raters:
        wl = rs.worklist(rater)
        for it in wl.items:
            wl.save(pg_url, it.item, score=rs.scales[it.scale].values[0])
        signature = wl.sign_and_lock(pg_url, code=access[rater])
    return rater_dir, key_dir, pg_url, rs, signature


def test_assess_status_and_verify_read_a_postgresql_url(rated_set_pg):
    from assess import chain

    rater_dir, _, url, rs, signature = rated_set_pg
    status = invoke("status", rater_dir, "--db", url)
    assert status.exit_code == 0, status.output
    n = len(rs.worklist("derm1").items)
    table = status.output.split("\n\n")[0]  # the audit log's summary follows after a blank line
    assert [line.split()[:2] for line in table.splitlines()[1:]] == [
        ["derm1", f"{n}/{n}"], ["derm2", f"{len(rs.worklist('derm2').items)}/"
                                         f"{len(rs.worklist('derm2').items)}"]]
    verified = invoke("verify", rater_dir, "--db", url, "--expect",
                      f"derm2={chain.short(signature.hash)}")
    assert verified.exit_code == 0, verified.output
    assert "every guard trigger is in place" in verified.output


def test_assess_verify_and_score_refuse_a_changed_score_on_postgresql(rated_set_pg, tmp_path):
    import psycopg

    rater_dir, key_dir, url, rs, _ = rated_set_pg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER events_append_only_update ON events")
        item = conn.execute("SELECT item FROM events WHERE rater = 'derm1' ORDER BY id LIMIT 1"
                            ).fetchone()[0]
        conn.execute("UPDATE events SET score = score + 1 WHERE item = %s AND rater = 'derm1'",
                     (item,))
    for result in (invoke("verify", rater_dir, "--db", url),
                   invoke("score", "--rater-dir", rater_dir, "--key", key_dir, "--db", url,
                          "--out", tmp_path / "scores")):
        assert result.exit_code == 1, result.output
        assert f"derm1, item {item}, event 1: its content no longer matches its hash" in result.output
        assert "guard trigger events_append_only_update is missing" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "scores").exists()


def test_assess_score_reads_a_postgresql_url(rated_set_pg, tmp_path):
    rater_dir, key_dir, url, _, _ = rated_set_pg
    result = invoke("score", "--rater-dir", rater_dir, "--key", key_dir, "--db", url,
                    "--out", tmp_path / "scores")
    assert result.exit_code == 0, result.output
    assert "every rater's hash chain is whole" in result.output
    assert (tmp_path / "scores" / "ratings_long.csv").is_file()


def test_the_password_can_come_from_streamlit_secrets_instead_of_the_environment(
        pg_url, pg_server, tmp_path):
    import os
    import subprocess
    import sys

    _, cluster = pg_server
    if cluster is None:
        pytest.skip("needs the throwaway cluster, whose password the test knows")
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        f'[assess]\ndb_password = "{cluster.password}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSFILE", "PGPASSWORD")}
    env["PGPASSFILE"] = str(tmp_path / "none")  # no password file either
    code = ("import sys, streamlit\nfrom assess import store\n"
            "store.connect(sys.argv[1]).close()\nprint(len(store.current_ratings(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", code, pg_url], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
    (tmp_path / ".streamlit" / "secrets.toml").unlink()
    refused = subprocess.run([sys.executable, "-c", code, pg_url], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "cannot connect to the ratings database" in refused.stderr
    assert "password" in refused.stderr


def test_a_server_that_goes_away_is_unavailable_nothing_is_half_saved_and_the_pool_reconnects(
        pg_url, pg_server):
    import time

    from assess.store import postgres

    _, cluster = pg_server
    if cluster is None:
        pytest.skip("needs the throwaway cluster (ASSESS_TEST_PG_URL names a server not ours)")
    with closing(store.connect(pg_url)) as conn:
        store.record(conn, SET, "derm1", "AAA-AAAA", score=1)
    cluster.halt()
    try:
        start = time.monotonic()
        with pytest.raises(store.UnavailableError, match="cannot be reached") as caught:
            with closing(store.connect(pg_url)) as conn:
                store.record(conn, SET, "derm1", "BBB-BBBB", score=2)
        assert time.monotonic() - start < postgres.POOL_WAIT_S + 5  # said soon, not after minutes
        assert isinstance(caught.value, store.StoreError)
    finally:
        cluster.start()
    # Back: the next call connects at once (no back-off left over), and the answer can be given
    # again; the one that was refused is not in the database.
    with closing(store.connect(pg_url)) as conn:
        assert set(store.current(conn, SET, "derm1")) == {"AAA-AAAA"}
        store.record(conn, SET, "derm1", "BBB-BBBB", score=2)
    assert list(store.current_ratings(pg_url)["item"]) == ["AAA-AAAA", "BBB-BBBB"]
    store.verify(pg_url).check()
