"""What is sealed and signed in a blinded set, and how it is verified: the one place for both folders.

At randomize time :func:`write_seal` writes ``key/seal.json``: the sha256 of every file of ``key/``
(``key.csv``, ``study.toml``, ``access.csv``, ``seed.txt``, ``visible.csv``, what was found of text in the frame:
``text.csv`` and ``text-found.jpg``, …) and of every file of ``rater/`` (``set.json``, worklists,
images, references), optionally signed with the coordinator's Ed25519
key (:func:`generate_key`, :func:`load_signing_key`). ``rater/set.json`` names only the seal's
format and the signing key's fingerprint (:func:`set_json_entry`), nothing of the key.

:func:`verify` checks both folders against the seal and raises :class:`SealError` naming every file
that differs, is missing or is extra; with ``fingerprint`` it also refuses a set that is unsigned
or signed with another key. Sets made before the seal (only ``key_sha256`` in ``set.json``) are
accepted with a warning; the scorer then checks ``key.csv`` against ``key_sha256`` as before.

>>> import tempfile
>>> from pathlib import Path
>>> tmp = Path(tempfile.mkdtemp())
>>> fp = generate_key(tmp / "coordinator.key")
>>> fp == load_signing_key(tmp / "coordinator.key").fingerprint
True
>>> FINGERPRINT_RE.match(fp) is not None
True
>>> import shutil; shutil.rmtree(tmp)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import AssessError

__all__ = [
    "SEAL_FILE",
    "SEAL_FORMAT",
    "ENV_SIGNING_KEY",
    "ENV_FINGERPRINT",
    "FINGERPRINT_RE",
    "SealError",
    "SigningKey",
    "Verified",
    "generate_key",
    "load_signing_key",
    "key_warnings",
    "fingerprint_of",
    "set_json_entry",
    "write_seal",
    "verify",
]

SEAL_FILE = "seal.json"
"""The seal's file name inside ``key/``."""
SEAL_FORMAT = 1
ENV_SIGNING_KEY = "ASSESS_SIGNING_KEY"
"""Environment variable naming the coordinator's signing key file (``randomize``)."""
ENV_FINGERPRINT = "ASSESS_FINGERPRINT"
"""Environment variable holding the expected fingerprint (``score``, ``status``, ``audit-set``)."""
FINGERPRINT_RE = re.compile(r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$")
_CONTEXT = b"assess seal v1\n"  # signed before the manifest: the key signs nothing else this way
_SLOW_DIRS = ("rater/images/", "rater/references/")


class SealError(AssessError):
    """A set's files do not match its seal, or its signature does not hold."""


# --------------------------------------------------------------------------- keys


def fingerprint_of(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: 80 bits of its sha256 in base32, ``XXXX-XXXX-XXXX-XXXX``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    text = base64.b32encode(hashlib.sha256(raw).digest()[:10]).decode("ascii")
    return "-".join(text[i:i + 4] for i in range(0, 16, 4))


@dataclass(frozen=True)
class SigningKey:
    """The coordinator's private key, loaded from its file."""

    path: Path
    private: Ed25519PrivateKey

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.private.public_key())

    @property
    def public_hex(self) -> str:
        return self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                      serialization.PublicFormat.Raw).hex()


def generate_key(path: str | Path) -> str:
    """Write a new Ed25519 private key (PEM, PKCS#8) to ``path`` with mode 0600 (its folder is
    made, 0700, when missing) and return its fingerprint. An existing file is never overwritten.

    Raises
    ------
    SealError
        When ``path`` exists or cannot be written.
    """
    path = Path(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SealError(f"{path}: exists already and is never overwritten; it may be the key "
                        "that signed your sets — choose another path") from None
    except OSError as exc:
        raise SealError(f"{path}: cannot be written ({exc.strerror}); give a path in a folder "
                        "you can write, outside every set") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(path, 0o600)
    return fingerprint_of(key.public_key())


def load_signing_key(path: str | Path) -> SigningKey:
    """Read the private key written by :func:`generate_key`.

    Raises
    ------
    SealError
        When the file is missing, unreadable, or not an unencrypted Ed25519 private key.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SealError(f"{path}: the signing key cannot be read ({exc.strerror}); give the file "
                        "written by `assess keygen`") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SealError(f"{path}: not a signing key written by `assess keygen` (an unencrypted "
                        "Ed25519 private key in PEM)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SealError(f"{path}: is a {type(key).__name__}, not an Ed25519 key; make one with "
                        "`assess keygen PATH`")
    return SigningKey(path, key)


def key_warnings(key: SigningKey, out_dir: str | Path) -> list[str]:
    """What is wrong with where the signing key is kept: readable by others than its owner, or
    inside the folder of the sets (which is copied and shared)."""
    warnings = []
    try:
        mode = key.path.stat().st_mode
    except OSError:
        mode = 0
    if os.name == "posix" and mode & 0o077:
        warnings.append(f"{key.path}: the signing key is readable by others than its owner; "
                        f"make it private: chmod 600 {key.path}")
    out = Path(out_dir).resolve()
    if out == key.path.resolve().parent or out in key.path.resolve().parents:
        warnings.append(f"{key.path}: the signing key lies inside {out_dir}, beside the sets; keep "
                        "it outside every folder that is copied or shared")
    return warnings


# --------------------------------------------------------------------------- manifest


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _listing(files: dict[str, Path]) -> dict[str, str]:
    """The sha256 of each file, by name; a few threads hash them (hashlib releases the GIL)."""
    names = sorted(files)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        digests = list(pool.map(lambda n: _sha256(files[n]), names))
    return dict(zip(names, digests))


def _files(rater_dir: Path, key_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """Every regular file of both folders as ``{"rater/…" | "key/…": path}`` (the seal file
    excluded), and the names of entries that are not regular files (symlinks, sockets, …)."""
    found: dict[str, Path] = {}
    odd: list[str] = []
    for prefix, root in (("rater", rater_dir), ("key", key_dir)):
        for dirpath, dirnames, filenames in os.walk(root):
            base = Path(dirpath)
            rel_dir = base.relative_to(root).as_posix()
            for name in sorted(dirnames + filenames):
                path = base / name
                rel = f"{prefix}/{name}" if rel_dir == "." else f"{prefix}/{rel_dir}/{name}"
                mode = path.lstat().st_mode
                if stat.S_ISDIR(mode):
                    continue
                if not stat.S_ISREG(mode):
                    odd.append(rel)
                elif rel != f"key/{SEAL_FILE}":
                    found[rel] = path
    return found, odd


def set_json_entry(signing_key: SigningKey | None) -> dict:
    """What ``rater/set.json`` says of the seal: its format and the signing key's fingerprint
    (``None`` when unsigned). It names nothing of the key folder."""
    return {"format": SEAL_FORMAT, "fingerprint": signing_key.fingerprint if signing_key else None}


def _body_bytes(body: dict) -> bytes:
    return _CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                 ensure_ascii=True).encode("ascii")


def write_seal(rater_dir: str | Path, key_dir: str | Path, set_id: str,
               signing_key: SigningKey | None = None) -> Path:
    """Write ``key/seal.json`` over every file of both folders, signed when a key is given.

    Call it last, once every other file of the set is written. Returns the seal's path.
    """
    rater_dir, key_dir = Path(rater_dir), Path(key_dir)
    found, odd = _files(rater_dir, key_dir)
    if odd:
        raise SealError(f"{odd[0]}: not a regular file; a set holds regular files only")
    body = {"format": SEAL_FORMAT, "set_id": set_id, "files": _listing(found)}
    seal = dict(body)
    seal["signature"] = None
    if signing_key is not None:
        seal["signature"] = {
            "algorithm": "Ed25519",
            "public_key": signing_key.public_hex,
            "fingerprint": signing_key.fingerprint,
            "value": signing_key.private.sign(_body_bytes(body)).hex(),
        }
    path = key_dir / SEAL_FILE
    path.write_text(json.dumps(seal, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return path


# --------------------------------------------------------------------------- verification


@dataclass
class Verified:
    """What :func:`verify` found: the set's seal holds.

    ``status``: ``"signed"``, ``"unsigned"`` (a seal without signature) or ``"legacy"`` (a set
    made before the seal: only ``key_sha256`` in ``set.json``); ``fingerprint``: the signing key's,
    when signed; ``files``: files whose sha256 was checked; ``warnings``: what the user must see.
    """

    status: str
    fingerprint: str | None = None
    files: int = 0
    warnings: list[str] = field(default_factory=list)
    seal_sha256: str | None = None

    def describe(self) -> str:
        """One line for the terminal and the report."""
        if self.status == "signed":
            return (f"{self.files} files of key/ and rater/ match the seal, signed by coordinator "
                    f"key {self.fingerprint}")
        if self.status == "unsigned":
            return f"{self.files} files of key/ and rater/ match the seal (not signed)"
        return "key.csv only (a set made before the seal)"


def _pinned(fingerprint: str | None) -> str | None:
    if fingerprint is None or not fingerprint.strip():
        return None
    value = fingerprint.strip().upper()
    if not FINGERPRINT_RE.match(value):
        raise SealError(f"--fingerprint {fingerprint!r}: not a fingerprint; give the one "
                        "`assess randomize` printed, like ABCD-EFGH-IJKL-MNOP")
    return value


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SealError(f"{path}: not found; give the {what}") from None
    except (OSError, ValueError) as exc:
        raise SealError(f"{path}: cannot be read ({exc}); restore it from the coordinator's "
                        "backup") from None
    if not isinstance(data, dict):
        raise SealError(f"{path}: not a JSON object; restore it from the coordinator's backup")
    return data


def _signer(seal: dict, seal_path: Path) -> str | None:
    """The fingerprint of the key whose signature over the seal holds, ``None`` when unsigned."""
    sig = seal.get("signature")
    if sig is None:
        return None
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(sig["public_key"]))
        value = bytes.fromhex(sig["value"])
    except (TypeError, KeyError, ValueError):
        raise SealError(f"{seal_path}: its signature is malformed; restore the key folder from the "
                        "coordinator's backup") from None
    body = {k: v for k, v in seal.items() if k != "signature"}
    try:
        public.verify(value, _body_bytes(body))
    except InvalidSignature:
        raise SealError(f"{seal_path}: the signature does not match the seal's content (key "
                        f"{fingerprint_of(public)}): the seal was edited after the set was made. "
                        "Restore the key folder from the coordinator's backup; never edit a set"
                        ) from None
    return fingerprint_of(public)


def _check_signer(signer: str | None, meta: dict, pinned: str | None, seal_path: Path,
                  meta_path: Path) -> list[str]:
    """Refuse a signature that is missing or of another key than ``set.json`` names or than the
    pinned fingerprint; return the warnings of an unsigned seal."""
    entry = meta.get("seal") if isinstance(meta.get("seal"), dict) else {}
    named = entry.get("fingerprint")
    if signer is None:
        if named:
            raise SealError(f"{seal_path}: carries no signature, but {meta_path} says the set was "
                            f"signed by coordinator key {named}; the seal was replaced — restore "
                            "the key folder from the coordinator's backup")
        if pinned:
            raise SealError(f"{seal_path}: the set is not signed, so it cannot be checked against "
                            f"the fingerprint {pinned}; ask the coordinator for the signed set")
        return [f"{seal_path}: the set is not signed: its seal catches changed, missing and extra "
                "files, but whoever can write the key folder could rewrite it (sign sets with "
                "`assess randomize --signing-key`)"]
    if named and named != signer:
        raise SealError(f"{seal_path}: is signed by key {signer}, but {meta_path} names key {named}: "
                        "the set was re-sealed with another key after it was made; restore both "
                        "folders from the coordinator's backup")
    if pinned and pinned != signer:
        raise SealError(f"{seal_path}: is signed by key {signer}, not by the expected coordinator "
                        f"key {pinned}: the set was re-signed, or is not this trial's; refused")
    return []


def _legacy(meta: dict, pinned: str | None, seal_path: Path, meta_path: Path) -> Verified:
    if "seal" in meta:
        raise SealError(f"{seal_path}: not found, but {meta_path} says the set was sealed; restore "
                        "the key folder from the coordinator's backup")
    if pinned:
        raise SealError(f"{seal_path}: not found: the set was made before sets were sealed and "
                        f"signed, so it cannot be checked against the fingerprint {pinned}")
    return Verified("legacy", warnings=[
        f"{seal_path.parent}: the set was made before sets were sealed: only key.csv is checked "
        "(against key_sha256 in set.json); study.toml, access.csv, seed.txt and the rater folder's "
        "files are not"])


def _mismatches(sealed: dict, found: dict[str, Path], odd: list[str], roots: dict[str, Path],
                images: bool) -> tuple[list[str], list[str], int]:
    """Problems (changed, missing, extra rater files, non-regular files), warnings (extra key
    files) and the number of files hashed."""

    def real(rel: str) -> Path:
        top, _, rest = rel.partition("/")
        return roots[top] / rest if top in roots else Path(rel)

    problems = [f"{real(n)}: not a regular file" for n in odd]
    problems += [f"{real(n)}: missing (sealed)" for n in sorted(set(sealed) - set(found))]
    extra = sorted(set(found) - set(sealed))
    problems += [f"{real(n)}: extra (not in the seal; remove it)" for n in extra
                 if n.startswith("rater/")]
    warnings = [f"{real(n)}: is not in the seal; no stage reads it — move it out of the key folder"
                for n in extra if n.startswith("key/")]
    check = {n: p for n, p in found.items() if n in sealed
             and (images or not n.startswith(_SLOW_DIRS))}
    digests = _listing(check)
    problems += [f"{real(n)}: changed since the set was sealed" for n in sorted(check)
                 if digests[n] != sealed[n]]
    return problems, warnings, len(check)


def verify(rater_dir: str | Path, key_dir: str | Path, *, fingerprint: str | None = None,
           images: bool = True) -> Verified:
    """Check the rater and key folders of one set against ``key/seal.json``.

    Parameters
    ----------
    rater_dir, key_dir
        The set's ``rater/`` and ``key/`` folders.
    fingerprint
        The coordinator key's fingerprint as written in the trial master file: a set that is not
        signed by that key is refused.
    images
        Also hash the images and reference photos (the other files are always hashed; images
        are always checked to be present).

    Raises
    ------
    SealError
        Naming every file that differs, is missing or is extra, or the signature that fails.
    """
    rater_dir, key_dir = Path(rater_dir), Path(key_dir)
    pinned = _pinned(fingerprint)
    meta_path, seal_path = rater_dir / "set.json", key_dir / SEAL_FILE
    meta = _read_json(meta_path, "rater/ folder of the set (the one holding set.json)")
    if not key_dir.is_dir() and "seal" in meta:
        raise SealError(f"{key_dir}: not a folder; give the key/ folder of the set")
    if not seal_path.exists():
        return _legacy(meta, pinned, seal_path, meta_path)
    seal = _read_json(seal_path, "key folder written by `assess randomize`")
    if seal.get("format") != SEAL_FORMAT or not isinstance(seal.get("files"), dict):
        raise SealError(f"{seal_path}: not a seal of format {SEAL_FORMAT}; it was written by "
                        "another version of assess, or damaged")
    if seal.get("set_id") != meta.get("set_id"):
        raise SealError(f"{seal_path}: seals set {seal.get('set_id')!r}, but {meta_path} is set "
                        f"{meta.get('set_id')!r}; give the key/ and rater/ folders of one set")
    signer = _signer(seal, seal_path)
    warnings = _check_signer(signer, meta, pinned, seal_path, meta_path)
    found, odd = _files(rater_dir, key_dir)
    problems, more, checked = _mismatches(seal["files"], found, odd,
                                          {"rater": rater_dir, "key": key_dir}, images)
    if problems:
        shown = "".join(f"\n  {p}" for p in problems[:20])
        rest = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise SealError(f"the set does not match its seal {seal_path} ({len(problems)} "
                        f"problem(s)):{shown}{rest}\nRestore the original files from the "
                        "coordinator's backup; a set is never edited after `assess randomize`")
    return Verified("signed" if signer else "unsigned", signer, checked, warnings + more,
                    _sha256(seal_path))
