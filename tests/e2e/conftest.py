"""A real ``assess rate`` server and a real Chromium for the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RaterServer:
    """``assess rate RATER_DIR --db DB --host 127.0.0.1 --port PORT`` as a subprocess."""

    def __init__(self, rater_dir: Path, db: Path, cwd: Path):
        self.rater_dir, self.db, self.cwd = rater_dir, db, cwd
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = cwd / f"server-{self.port}.log"
        self.extra: list[str] = []  # more options of `assess rate`

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "RaterServer":
        exe = shutil.which("assess")
        cmd = [exe] if exe else [sys.executable, "-c", "from assess.cli import cli; cli()"]
        cmd += ["rate", str(self.rater_dir), "--db", str(self.db), "--host", "127.0.0.1",
                "--port", str(self.port), *self.extra]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            try:
                with _DIRECT.open(self.url + "/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()  # a server that never answered is not left running
                raise RuntimeError(f"assess rate did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def fresh_rater(self) -> str:
        """A rater of the set that no test has used on this server yet: tests that share one
        server (a module-scoped fixture) each take their own rater, so none sees another's
        ratings, sign-in or position."""
        used = self.__dict__.setdefault("_used", set())
        rater = next((r for r in self.set[2] if r not in used), None)
        if rater is None:
            raise RuntimeError(f"every rater of {self.rater_dir} is used: give the set more raters")
        used.add(rater)
        return rater

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


@pytest.fixture
def rater_server(make_rater_set, tmp_path):
    """Start servers on a fresh small set; returns a factory ``(presentation="single") -> server``.

    The server has ``.set`` (``(rater_dir, key_dir, access)``); every server is stopped at the end.
    """
    servers = []

    def start(presentation: str = "single", raters=("derm1", "derm2", "derm3"),
              participants: int = 3) -> RaterServer:
        rater_dir, key_dir, access = make_rater_set(raters=raters, participants=participants,
                                                    presentation=presentation, size=(640, 480))
        server = RaterServer(rater_dir, tmp_path / "results" / "ratings.sqlite", tmp_path).start()
        server.set = (rater_dir, key_dir, access)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


#: Raters of the set a module's tests share: more than any module's tests take.
SHARED_RATERS = tuple(f"derm{i}" for i in range(1, 17))


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for a whole test module, on a small set (3 participants, 12 items a rater) of
    many raters; each test takes a rater of its own (:meth:`RaterServer.fresh_rater`) instead of
    starting a server of its own. A test that stops the server, or counts what every rater did,
    uses :func:`rater_server` instead."""
    from rater_sets import build_rater_set

    work = tmp_path_factory.mktemp("shared")
    rater_dir, key_dir, access = build_rater_set(work / "set", raters=SHARED_RATERS,
                                                 participants=3, size=(640, 480))
    server = RaterServer(rater_dir, work / "results" / "ratings.sqlite", work).start()
    server.set = (rater_dir, key_dir, access)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    """Open pages in fresh browser contexts (one context per rater); closed at the end."""
    contexts = []

    def open_page(**options):
        """``options`` go to ``browser.new_context`` (default viewport 1280 × 860)."""
        context = browser.new_context(**{"viewport": {"width": 1280, "height": 860}, **options})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        return page

    yield open_page
    for context in contexts:
        context.close()
