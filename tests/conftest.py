"""Shared fixtures: the optional real-camera corpus and the optional external tools."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-camera photos beside the project (``../shared/corpus``); skip when absent."""
    if not (CORPUS / "MANIFEST.md").is_file():
        pytest.skip(f"real-camera corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def exiftool() -> str:
    """Path to exiftool, the independent metadata check; skip when absent."""
    path = shutil.which("exiftool")
    if path is None:
        pytest.skip("exiftool not installed (apt-get install libimage-exiftool-perl)")
    return path


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
    path = shutil.which("pspp")
    if path is None:
        pytest.skip("pspp not installed (apt-get install pspp)")
    return path


@pytest.fixture(scope="session")
def rscript() -> str:
    """Path to Rscript with the psych package, the independent check in R; skip when absent."""
    import subprocess

    path = shutil.which("Rscript")
    if path is None:
        pytest.skip("R not installed (apt-get install r-base-core r-cran-psych)")
    if subprocess.run([path, "-e", "library(psych)"], capture_output=True).returncode != 0:
        pytest.skip("the R package psych is not installed (apt-get install r-cran-psych)")
    return path
