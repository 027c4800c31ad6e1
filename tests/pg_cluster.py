"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temporary folder.

Listens on 127.0.0.1 on a free port with password authentication (scram-sha-256); the passwords
are in a password file named by ``PGPASSFILE``, as a deployment would keep them. Run as the
``postgres`` user (``runuser``) when the tests run as root. ``ASSESS_TEST_PG_URL`` names an
existing server instead (a role that may create databases; its password from the environment).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

HOW = ("PostgreSQL tests skipped: install PostgreSQL (apt-get install postgresql; initdb and "
       "pg_ctl are looked for in /usr/lib/postgresql/*/bin) or set ASSESS_TEST_PG_URL="
       "postgresql://user@host:5432/dbname to a server where that user may create databases")


def _bin() -> Path | None:
    def major(path: str) -> int:
        name = Path(path).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A running cluster: ``url(db)`` for a database, ``stop()`` at the end."""

    def __init__(self) -> None:
        self.bin = _bin()
        if self.bin is None:
            raise RuntimeError(HOW)
        self.root = Path(tempfile.mkdtemp(prefix="assess-pg-"))
        self.port = _free_port()
        self.user = "postgres"
        self.password = secrets.token_hex(12)
        self.as_postgres = os.geteuid() == 0
        data = self.root / "data"
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(pwfile, "postgres")
        self._run("initdb", "-D", str(data), "-U", self.user, "-A", "scram-sha-256",
                  f"--pwfile={pwfile}", "-E", "UTF8", "--no-instructions")
        self.passfile = self.root / "pgpass"
        self.passfile.write_text(f"127.0.0.1:{self.port}:*:{self.user}:{self.password}\n")
        self.passfile.chmod(0o600)
        self.data = data
        self.start()

    def start(self) -> None:
        """Start the server (again, after :meth:`halt`) and wait until it takes connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start",
                  "-o", f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                  f"-c unix_socket_directories={self.root} -c fsync=off")

    def halt(self) -> None:
        """Stop the server at once, as a crash would (``pg_ctl stop -m immediate``)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr or done.stdout}")

    def add_password(self, role: str, password: str) -> None:
        with self.passfile.open("a") as fh:
            fh.write(f"127.0.0.1:{self.port}:*:{role}:{password}\n")

    def url(self, db: str = "postgres", user: str | None = None) -> str:
        return f"postgresql://{user or self.user}@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
