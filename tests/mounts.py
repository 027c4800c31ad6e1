"""Small file systems for the tests of a full disk and a read-only folder."""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest


@contextlib.contextmanager
def tmpfs(path, options: str):
    """A small RAM file system mounted at ``path`` with ``options`` (``size=1m``, ``ro``, …).

    Needs root (read-only holds for root too, unlike file modes); skips where it cannot be made.
    """
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
