"""Shared fixtures: the optional real-camera corpus and the optional external tools."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CHROMIUM = Path("/usr/bin/chromium")


def installed(command: str, packages: str) -> str:
    """Path of ``command``, an independent tool the tests check against; skip, naming the Debian
    ``packages`` that bring it, when it is not installed."""
    path = shutil.which(command)
    if path is None:
        pytest.skip(f"{command} not installed (apt-get install {packages})")
    return path


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-camera photos beside the project (``../shared/corpus``); skip when absent."""
    if not (CORPUS / "MANIFEST.md").is_file():
        pytest.skip(f"real-camera corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def exiftool() -> str:
    """Path to exiftool, the independent metadata check; skip when absent."""
    return installed("exiftool", "libimage-exiftool-perl")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path to Debian's Chromium for end-to-end tests; skip when absent."""
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    return str(CHROMIUM)


# ------------------------------------------------------------------------- blinded sets for the rater side


@pytest.fixture
def make_rater_set(tmp_path):
    """Build a small blinded set and return ``(rater_dir, key_dir, access)``.

    ``access`` maps each rater id to their access code (from ``key/access.csv``). Keyword
    arguments: ``raters`` (ids), ``participants``, ``presentation`` (``single`` | ``pairs``),
    ``name`` (a sub-folder of ``tmp_path``).
    """
    from rater_sets import build_rater_set

    def make(**kwargs):
        return build_rater_set(tmp_path / kwargs.pop("name", "set"), **kwargs)

    return make


@pytest.fixture(scope="session")
def pspp() -> str:
    """Path to GNU PSPP, the independent check of the SPSS files and syntax; skip when absent."""
    return installed("pspp", "pspp")


@pytest.fixture(scope="session")
def rscript() -> str:
    """Path to Rscript with the psych package, the independent check in R; skip when absent."""
    import subprocess

    path = installed("Rscript", "r-base-core r-cran-psych")
    if subprocess.run([path, "-e", "library(psych)"], capture_output=True).returncode != 0:
        pytest.skip("the R package psych is not installed (apt-get install r-cran-psych)")
    return path


# ------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the tests: ``(admin URL maker, cluster or None)``.

    ``ASSESS_TEST_PG_URL`` names an existing server; otherwise a throwaway cluster is started on
    127.0.0.1 (tests/pg_cluster.py) and stopped at the end. Skips, saying how to run the tests,
    when neither is possible.
    """
    import os
    from urllib.parse import urlsplit, urlunsplit

    from pg_cluster import HOW, Cluster

    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests skipped: pip install -r requirements.txt (psycopg)")
    given = os.environ.get("ASSESS_TEST_PG_URL")
    if given:
        parts = urlsplit(given)
        yield (lambda db: urlunsplit(parts._replace(path=f"/{db}"))), None
        return
    try:
        cluster = Cluster()
    except RuntimeError as exc:
        message = str(exc) if HOW in str(exc) else f"{HOW}; starting a cluster failed: {exc}"
        if os.environ.get("ASSESS_REQUIRE_PG"):  # CI: the contract suite must run on both
            pytest.fail(message)
        pytest.skip(message)
    old = os.environ.get("PGPASSFILE")
    os.environ["PGPASSFILE"] = str(cluster.passfile)
    try:
        yield cluster.url, cluster
    finally:
        from assess.store import postgres

        postgres.close_pools()
        if old is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = old
        cluster.stop()


@pytest.fixture
def pg_url(pg_server, request):
    """The URL of a fresh, empty database on the test server, dropped after the test."""
    import re

    import psycopg

    from assess.store import postgres

    make_url, _ = pg_server
    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    name += f"_{id(request) % 10**6}"
    with psycopg.connect(make_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_url(name)
    postgres.close_pools()
    postgres._READY.clear()
    with psycopg.connect(make_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
