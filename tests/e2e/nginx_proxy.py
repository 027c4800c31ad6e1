"""The documented nginx configuration (docs/nginx/assess.conf), run for real on 127.0.0.1.

The file is used as written, with only what a sponsor's IT changes replaced: the listening
ports, the host name, the certificate (a self-signed one for 127.0.0.1 made here) and the app
processes. nginx runs in the foreground from a temporary prefix.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import free_port

CONF = Path(__file__).resolve().parents[2] / "docs" / "nginx" / "assess.conf"
NGINX = "/usr/sbin/nginx"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (``cryptography``), valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    crt, pem = folder / "cert.pem", folder / "key.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def render(text: str, http_port: int, https_port: int, backends: list[int], cert: Path,
           key: Path) -> str:
    """The documented configuration with the places marked CHANGE filled in for 127.0.0.1."""
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n" for p in backends)
    text, n = re.subn(r"(?m)^    server 127\.0\.0\.1:\d+ .*\n(    server 127\.0\.0\.1:\d+ .*\n)*",
                      servers, text)
    assert n == 1, "the upstream block of docs/nginx/assess.conf changed"
    for old, new in ((r"listen \[::\]:\d+[^;]*;\n\s*", ""),
                     (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
                     (r"listen 443 ", f"listen 127.0.0.1:{https_port} "),
                     (r"server_name rating\.example\.org;", "server_name 127.0.0.1;"),
                     (r"/etc/ssl/assess/fullchain\.pem", str(cert)),
                     (r"/etc/ssl/assess/privkey\.pem", str(key))):
        text, n = re.subn(old, new, text)
        assert n, f"{old!r} not found in docs/nginx/assess.conf"
    return text


class Nginx:
    """nginx in front of the given app ports: ``https_url``, ``http_url``, ``upstreams()``."""

    def __init__(self, root: Path, backends: list[int]):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self.http_port, self.https_port = free_port(), free_port()
        cert, key = self_signed(root)
        site = root / "assess.conf"
        site.write_text(render(CONF.read_text(), self.http_port, self.https_port, backends,
                               cert, key))
        temp = "".join(f"{kind}_temp_path {root / kind};\n"
                       for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root;\n" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {root / 'nginx.pid'};\n"
            f"error_log {root / 'error.log'} info;\nevents {{ worker_connections 512; }}\n"
            f"http {{\n{temp}log_format up '$request_uri $status $upstream_addr';\n"
            f"access_log {root / 'access.log'} up;\ninclude {site};\n}}\n")
        self.proc: subprocess.Popen | None = None

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> "Nginx":
        conf = str(self.root / "nginx.conf")
        check = subprocess.run([NGINX, "-t", "-c", conf, "-p", str(self.root)],
                               capture_output=True, text=True)
        if check.returncode:
            raise RuntimeError(f"nginx -t refused the configuration:\n{check.stderr}")
        log = open(self.root / "stderr.log", "ab")
        self.proc = subprocess.Popen([NGINX, "-c", conf, "-p", str(self.root)], stdout=log,
                                     stderr=log)
        context = ssl._create_unverified_context()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=context))
        deadline = time.monotonic() + 30
        while True:
            try:
                with opener.open(self.https_url + "/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(self.root / 'error.log').read_text()}")
            time.sleep(0.1)

    def upstreams(self, path: str) -> list[str]:
        """The app processes (``127.0.0.1:port``) that answered requests for ``path``, in order."""
        lines = (self.root / "access.log").read_text().splitlines()
        return [line.split()[-1].split(",")[-1].strip() for line in lines
                if line.split()[0].startswith(path)]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
