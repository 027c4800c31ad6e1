"""The pixel pipeline's worker processes never outlive the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from assess.synth import make_study

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="needs /proc to find the child processes")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan whose new parent does not reap it stays one)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _descendants(pid: int) -> set[int]:
    parent_of = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent_of[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent_of.items() if pp in frontier} - found
        found |= frontier
    return found


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = {p for p in pids if _alive(p)}
        if not left:
            return left
        time.sleep(0.1)
    return {p for p in pids if _alive(p)}


def test_every_worker_ends_within_seconds_when_randomize_is_killed_outright(tmp_path):
    synth = make_study(tmp_path / "images", participants=6, size=(1600, 1200))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from assess.cli import cli; cli()", "randomize", "--study",
         str(synth.study_path), "--images", str(synth.root), "--out", str(out), "--set-id", "k"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        busy = False
        while time.monotonic() < deadline and proc.poll() is None:
            # busy: the workers have written de-identified photos into the set being built
            if any(out.glob(".k.partial-*/work/*.jpg")):
                busy = True
                break
            time.sleep(0.05)
        assert busy, "randomize ended before its workers were busy; make the set bigger"
        children = _descendants(proc.pid)
        assert len(children) >= 2  # the workers (and multiprocessing's resource tracker)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _wait_gone(children, 5) == set()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_worker_ends_when_its_parent_is_killed_without_the_linux_only_signal(tmp_path):
    # the portable check alone: the parent starts a child that watches it with prctl unavailable
    child_code = textwrap.dedent("""
        import os, sys, time
        from assess.deid import process
        process._glibc = lambda name: None
        process.end_with_parent(int(sys.argv[1]))
        print("watching", flush=True)
        time.sleep(60)
    """)
    parent_code = textwrap.dedent(f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {child_code!r}, str(os.getpid())],
                                 stdout=sys.stdout)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=_env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "watching"
        children = _descendants(parent.pid)
        assert len(children) == 1
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_gone(children, 3) == set()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
