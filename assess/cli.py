"""The ``assess`` command: a thin click layer over the library.

Each command parses its options, calls one library function, prints the outcome. Errors a user can
act on (``AssessError``) become a one-line message and exit status 1.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from . import __version__
from .errors import AssessError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def friendly(func):
    """Turn an ``AssessError`` into ``Error: <message>`` and exit status 1; so too a file that
    cannot be read or written where no stage said more (``Error: <file>: <reason>``)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except AssessError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
            sys.exit(1)

    return wrapper


class Database(click.ParamType):
    """``--db``: a SQLite file (a path) or a PostgreSQL URL without a password (kept as text)."""

    name = "FILE|URL"

    def convert(self, value, param, ctx):
        if isinstance(value, Path) or not str(value).startswith(("postgresql://", "postgres://")):
            return Path(value)
        from .store import StoreError, location

        try:
            return location(str(value))
        except StoreError as exc:
            self.fail(str(exc), param, ctx)


DB_HELP = ("Ratings database: a SQLite file or postgresql://user@host:5432/dbname (password from "
           "PGPASSWORD, ~/.pgpass or a service file)")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="assess")
def cli():
    """Blinded photo assessment for clinical trials.

    \b
    Coordinator:  keygen, init, randomize, audit-set, contact-sheet, status, verify, db init,
                  sessions revoke, audit-log, adjudication queue
    Rater:        rate
    Statistician: score
    Try it:       demo

    Example:

    \b
        assess demo
    """


# --------------------------------------------------------------------------- coordinator


@cli.command(context_settings=CONTEXT)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@friendly
def init(directory: Path):
    """Write a commented study.toml into DIRECTORY.

    Example:

    \b
        assess init images/NCT06217627
    """
    from .study import TEMPLATE, StudyError

    target = directory / "study.toml"
    if target.exists():
        raise StudyError(f"{target}: already exists; edit it, or remove it first to start over")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(TEMPLATE, encoding="utf-8")
    click.echo(f"Wrote {target}: edit it, then run "
               f"assess randomize --study {target} --images {directory} --out assignments")


FINGERPRINT_HELP = ("The coordinator key's fingerprint as filed at randomization (XXXX-XXXX-XXXX-XXXX; "
                    "or $ASSESS_FINGERPRINT): a set not signed by that key is refused.")


def _check_seal(rater_dir: Path, key_dir: Path | None, fingerprint: str | None,
                images: bool = True, show: bool = True):
    """Verify the set against its seal; print what was checked (on stderr) unless ``show`` is
    false (then :func:`_show_seal` prints it later)."""
    from .seal import verify

    if key_dir is None:
        if fingerprint:
            click.echo("Warning: --fingerprint is checked only with --key (the seal is in the key "
                       "folder)", err=True)
        return None
    sealed = verify(rater_dir, key_dir, fingerprint=fingerprint, images=images)
    if show:
        _show_seal(sealed, err=True)
    return sealed


def _show_seal(sealed, err: bool = False) -> None:
    click.echo(f"Seal: {sealed.describe()}", err=err)
    for warning in sealed.warnings:
        click.echo(f"Warning: {warning}", err=err)


@cli.command(context_settings=CONTEXT)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@friendly
def keygen(path: Path):
    """Write a new coordinator signing key to PATH and print its fingerprint.

    The key (Ed25519, mode 0600) signs the seal of every set made with
    `assess randomize --signing-key PATH`. Keep it with the coordinator, outside assignments/ and
    outside every rater and key folder, and file the fingerprint in the trial master file: the
    statistician gives it to `assess score --fingerprint`. An existing file is never overwritten.

    Example:

    \b
        assess keygen ~/.assess/coordinator.key
    """
    from .seal import generate_key

    fingerprint = generate_key(path)
    click.echo(f"Wrote the signing key {path} (keep it secret, outside every set).")
    click.echo(f"Fingerprint: {fingerprint}  (file it in the trial master file)")


@cli.command("audit-set", context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--key", "key_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The set's key folder: also search for participant ids, timepoints and file names "
                   "and compare file properties between timepoints.")
@click.option("--fingerprint", envvar="ASSESS_FINGERPRINT", default=None, help=FINGERPRINT_HELP)
@friendly
def audit_set_command(rater_dir: Path, key_dir: Path | None, fingerprint: str | None):
    """Check that a rater folder shows nothing but pixels.

    Every file is scanned: metadata of any kind in the images (own JPEG marker walk, plus exiftool
    when installed), data after the JPEG end marker, non-JPEG images, differing file times. With
    --key, also every participant id, timepoint name and source file name anywhere in any byte, and
    whether a file property (size, dimensions, encoding, worklist position, ...) separates the
    timepoints (AUC table, with the number of photos compared). A property fixed by design (size,
    dimensions, tables) is a finding when its AUC is above 0.55, whatever the number of photos; a
    file that differs from the others of its region is named. Exit status 1 when anything is
    found, with what to do; 0 otherwise ("clean" only when there is no note either: a note says
    when too few photos were compared to judge a randomized property).
    With --key, every file of both folders is first checked against the seal key/seal.json and its
    signature.

    Example:

    \b
        assess audit-set assignments/demo/rater --key assignments/demo/key
    """
    from .audit import ADVICE, audit_report

    _check_seal(rater_dir, key_dir, fingerprint)
    report = audit_report(rater_dir, key_dir)
    if not report.exiftool:
        click.echo("note: exiftool not found; ran the built-in checks only", err=True)
    for finding in report.findings:
        click.echo(f"{finding.file}: {finding.kind}: {finding.message}")
    if report.aucs:
        click.echo(format_auc_table(report.worst_aucs(), report.visible))
    for line in _visible_lines(report.visible):
        click.echo(line)
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.findings:
        for kind in dict.fromkeys(f.kind for f in report.findings):
            if kind in ADVICE and kind not in ("timepoint-property", "uniform-property", "duplicate"):
                click.echo(f"what to do ({kind}): {ADVICE[kind]}")
        click.echo(f"{len(report.findings)} finding(s) in {report.files_checked} files checked")
        sys.exit(1)
    if report.notes:
        click.echo(f"no finding in {report.files_checked} files checked, {len(report.notes)} "
                   "note(s) above")
        return
    click.echo(f"clean: {report.files_checked} files checked")


def _visible_lines(table, where: str = "", limit: int = 12) -> list[str]:
    """The visible differences between visits, for the terminal (:mod:`assess.audit.visible`)."""
    from .audit.visible import summary

    lines = summary(table, where, limit)
    if any(t.threat for t in table):
        lines.append("  (reported, not a finding; normalize = true under [pixels] in study.toml "
                     "matches white balance and exposure: docs/pixels.md)")
    return lines


def format_auc_table(rows, visible=()) -> str:
    """The AUC table of ``assess audit-set --key``: one line per property, its worst region;
    ``visible``: the visible-difference rows (:mod:`assess.audit.visible`), whose threats are marked."""
    from .audit.visible import VISIBLE_LIMIT

    threats = {(t.property, t.region, t.comparison) for t in visible if t.threat}
    lines = ["property                              kind         AUC   p-value        n  region      timepoints",
             "------------------------------------  ----------  -----  -------  -------  ----------  ----------"]
    for row in rows:
        mark = "  <- finding" if row.finding else ""
        if row.kind == "visible" and row.auc > VISIBLE_LIMIT:
            mark = "  <- visible" if (row.property, row.region, row.comparison) in threats else ""
        n = f"{row.n1}+{row.n2}"
        p = "      -" if row.p_value != row.p_value else f"{row.p_value:7.2g}"
        lines.append(f"{row.property[:36]:<36}  {row.kind:<10}  {row.auc:5.2f}  {p}  "
                     f"{n:>7}  {row.region[:10]:<10}  {row.comparison}{mark}")
    return "\n".join(lines)


@cli.command("contact-sheet", context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Picture to write [default: contact-sheet.jpg beside rater/ and key/].")
@click.option("--columns", type=click.IntRange(1, 40), default=8, show_default=True,
              help="Photos per row.")
@friendly
def contact_sheet_command(rater_dir: Path, out: Path | None, columns: int):
    """Write one picture of all blinded photos, labelled with their codes.

    Look through it for what no file check can see: dates burned into the pixels, name tags or
    wristbands in frame, tattoos. Photos are in code order, not worklist order. The picture is never
    written inside the rater folder (it would travel to the rater); large sets get several pages.

    Example:

    \b
        assess contact-sheet assignments/demo/rater
    """
    from .audit import contact_sheet

    target = out or rater_dir.resolve().parent / "contact-sheet.jpg"
    pages = contact_sheet(rater_dir, target, columns=columns)
    for page in pages:
        click.echo(f"Wrote {page}")


@cli.command(context_settings=CONTEXT)
@click.option("--study", "study_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The study file (study.toml).")
@click.option("--images", "images_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder of the raw photos (read, never changed).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder of the blinded sets, e.g. assignments.")
@click.option("--set-id", default=None,
              help="Name of the new set [default: <study id>-<YYYYMMDD>]; an existing set is refused.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed for a reproducible set [default: blinding.seed, else a long random one].")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV participant,timepoint,region,file[,view] instead of file names.")
@click.option("--signing-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="ASSESS_SIGNING_KEY",
              help="The coordinator's key from `assess keygen` (or $ASSESS_SIGNING_KEY): signs the "
                   "seal of the set. Without it the set is sealed but not signed.")
@friendly
def randomize(study_file: Path, images_dir: Path, out_dir: Path, set_id: str | None,
              seed: int | None, manifest: Path | None, signing_key: Path | None):
    """De-identify, code and shuffle a study's photos into a blinded set.

    Checks every photo first (counts per region and timepoint, then one error naming every
    file that cannot be used), writes OUT/<set-id>/rater (photos with nothing but pixels under
    random codes, one shuffled worklist per rater, set.json) and OUT/<set-id>/key (key.csv,
    seed.txt, access.csv, study.toml, visible.csv, and seal.json: the sha256 of every file of
    both folders, signed with --signing-key), audits the rater folder for leaks and only then
    moves the set into place: on any error nothing is left behind. Photos are named
    <participant>_<timepoint>_<region>[_<view>].<ext>, or listed in --manifest.
    Every photo is searched for text in the frame (a date imprint, a label card, a ruler):
    by default a photo showing text is refused, naming where; [pixels] text = "mask" covers it
    in the blinded copies and records it in key/text.csv and key/text-found.jpg, allow_text
    lets a harmless one pass with its reason, text = "off" skips the search.
    visible.csv and the summary printed at the end say which visible properties (white balance,
    exposure, sharpness, framing, ...) tell baseline from follow-up; [pixels] normalize = true
    in the study file matches white balance and exposure (docs/pixels.md).

    Example:

    \b
        assess randomize --study images/NCT06217627/study.toml \\
            --images images/NCT06217627 --out assignments \\
            --signing-key ~/.assess/coordinator.key
    """
    from .blind import randomize as build
    from .ingest import format_counts
    from .seal import load_signing_key
    from .study import load_study

    study = load_study(study_file)
    key = load_signing_key(signing_key) if signing_key is not None else None
    shown: list[str] = []

    def announce(inventory) -> None:
        click.echo(f"Photos in {images_dir}:")
        click.echo(format_counts(inventory))
        for warning in inventory.warnings:
            click.echo(f"Warning: {warning}")
        shown.extend(inventory.warnings)

    with _ProgressBar("De-identifying") as bar:
        made = build(study, images_dir, out_dir, set_id=set_id, seed=seed, manifest=manifest,
                     progress=bar, announce=announce, signing_key=key)
    for warning in made.warnings[len(shown):]:
        click.echo(f"Warning: {warning}")
    click.echo(_set_summary(made))
    for line in _visible_lines(made.visible, f" ({made.key_dir / 'visible.csv'})", limit=5):
        click.echo(line)
    click.echo(_seal_line(made))


def _seal_line(made) -> str:
    if made.fingerprint:
        return (f"Sealed and signed: coordinator key fingerprint {made.fingerprint} — file it in the "
                "trial master file; the statistician checks it with assess score --fingerprint.")
    return ("Warning: sealed but not signed (no --signing-key): the seal in key/seal.json catches "
            "changed files, but whoever can write the key folder could rewrite it; make a key "
            "with `assess keygen PATH` and pass --signing-key PATH.")


def _set_summary(made) -> str:
    c = made.counts
    what = (f"{c['pairs']} pairs" if c.get("pairs") else f"{c['photos']} photos")
    raters = ", ".join(made.raters)
    return "\n".join([
        f"Blinded set {made.set_id}: {what} + {c['repeats']} disguised repeats"
        + (f" + {c['calibration']} hidden calibration photos" if c.get("calibration") else "")
        + f" = {c['items']} items in each worklist (raters: {raters}).",
        f"  Rater folder: {made.rater_dir}",
        "      copy this folder, and only this folder, to the rater's machine",
        f"  Key:          {made.key_dir}",
        "      keep it with the coordinator, never with a rater: it unblinds the set",
        f"Give each rater their access code from {made.key_dir / 'access.csv'}.",
    ])


class _ProgressBar:
    """A click progress bar (on stderr) fed with ``(done, total)``; opened at the first call."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None

    def __enter__(self):
        return self

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


@cli.command(context_settings=CONTEXT)
@click.option("--dir", "images_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("images/demo"), show_default=True,
              help="Folder of the synthetic study's raw photos (made if missing).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("assignments"), show_default=True, help="Folder of the blinded sets.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the app listens on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True,
              help="Port the app listens on.")
@click.option("--no-serve", is_flag=True, help="Build and randomize only; do not start the app.")
@click.option("--size", type=(int, int), default=(1600, 1200), hidden=True,
              help="Width and height of a baseline photo (small ones keep tests fast).")
@friendly
def demo(images_dir: Path, out_dir: Path, host: str, port: int, no_serve: bool,
         size: tuple[int, int]):
    """Try assess on a synthetic study: build it, blind it, serve the rating app.

    Draws 12 participants x 2 visits (baseline, month12) x face, neck and hands with a known
    true severity (truth.csv beside the photos, never in the set), photographed with a DSLR at
    baseline and phones at follow-up (GPS, dates and serial numbers in the files, some rotated,
    some HEIC). Randomizes them into OUT/demo and serves the app with sign-in details. Running it
    again reuses the study and the set, so ratings already given are kept; delete OUT/demo and
    results/demo to start over.

    Example:

    \b
        assess demo
    """
    from .blind import BlindError, randomize as build, read_access
    from .study import load_study
    from .synth import make_study

    study_file = images_dir / "study.toml"
    if (images_dir / "truth.csv").is_file() and study_file.is_file():
        click.echo(f"Using the synthetic study in {images_dir}.")
    else:
        click.echo(f"Drawing a synthetic study into {images_dir} (12 participants x 2 visits x "
                   "face, neck, hands) ...")
        make_study(images_dir, participants=12, size=size, workers=None, guide=True)
    target = out_dir / "demo"
    if (target / "rater" / "set.json").is_file() and (target / "key" / "access.csv").is_file():
        click.echo(f"Using the blinded set {target} (delete it and results/demo to start over).")
        access = read_access(target / "key")
    elif target.exists():
        raise BlindError(f"{target}: exists but is not a complete set; delete it and run "
                         "`assess demo` again")
    else:
        study = load_study(study_file)
        with _ProgressBar("De-identifying") as bar:
            made = build(study, images_dir, out_dir, set_id="demo", progress=bar)
        for warning in made.warnings:
            click.echo(f"Warning: {warning}")
        click.echo(_set_summary(made))
        access = made.access
    rater_dir = target / "rater"
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    click.echo("")
    click.echo(f"Rating app: http://{shown}:{port}")
    for rater, code in access.items():
        click.echo(f"  Sign in as rater {rater} with access code {code}")
    if no_serve:
        click.echo(f"Start it with: assess rate {rater_dir} --port {port}")
        return
    from . import rate as rating

    _check_port(host, port)
    click.echo("Stop it with Ctrl+C; run `assess demo` again to continue where you left off.")
    rating.serve(rater_dir, host=host, port=port)


def _free_port(host: str, port: int) -> int | None:
    """The first port after ``port`` that is free on ``host`` (of the next 50), if any."""
    import socket

    for candidate in range(port + 1, min(port + 51, 65536)):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            return candidate
    return None


def _check_port(host: str, port: int) -> None:
    import errno
    import os
    import socket

    from .errors import AssessError

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        if os.name == "posix":  # as the server binds: connections of a stopped server (TIME_WAIT)
            # do not hold the port, so `assess demo` restarts at once after Ctrl+C
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror:
            raise AssessError(f"--host {host}: not an address or name this machine knows; give "
                              "one such as 127.0.0.1 (this machine only) or 0.0.0.0") from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                free = _free_port(host, port)
                raise AssessError(f"port {port} on {host} is in use (another app running?); stop "
                                  "it or give another port" + (f", e.g. --port {free}" if free else
                                                              " with --port")) from None
            raise AssessError(f"--host {host} --port {port}: cannot listen there "
                              f"({exc.strerror}); give an address of this machine such as "
                              "127.0.0.1 or 0.0.0.0") from None


# --------------------------------------------------------------------------- rater


@cli.command(context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--db", type=Database(), default=None,
              help=DB_HELP + " [default: results/<set-id>/ratings.sqlite].")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 serves the whole network.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True,
              help="Port to listen on.")
@click.option("--sso-raters", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Sign in through the site's single sign-on instead of access codes: a CSV "
                   "account,rater (see docs/rating.md).")
@click.option("--sso-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="ASSESS_SSO_CONFIG", show_envvar=True,
              help="The identity provider's settings for --sso-raters: a TOML file with an [auth] "
                   "section, readable by its owner only, outside the rater folder (see "
                   "docs/deploy.md).")
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The set's key/reference.csv, for a set with a training worklist "
                   "([qualification]): the server scores the training attempts with it; it must "
                   "not be inside the rater folder.")
@friendly
def rate(rater_dir: Path, db: Path | str | None, host: str, port: int, sso_raters: Path | None,
         sso_config: Path | None, reference: Path | None):
    """Serve the rating app for the rater folder RATER_DIR.

    Raters open the printed address in a browser and sign in with their rater id and access
    code. Every rating is saved the moment it is given; stop the server with Ctrl+C and start it
    again at any time, raters resume where they were. The app is given the rater folder only,
    never the key.

    Example:

    \b
        assess rate assignments/demo/rater
        assess rate assignments/demo/rater --sso-raters raters.csv --sso-config /etc/assess/sso.toml
        assess rate assignments/demo/rater --reference assignments/demo/key/reference.csv
    """
    from . import rate as rating

    rater_set = rating.load_rater_set(rater_dir)
    db = db if db is not None else rating.default_db(rater_set)
    _check_port(host, port)
    click.echo(f"Ratings database: {db}", err=True)
    rating.serve(rater_dir, db=db, host=host, port=port, sso_raters=sso_raters,
                 sso_config=sso_config, reference=reference)


def _panel_status(rater_dir: Path, db: Path | str | None) -> None:
    """The panel's lines of ``assess status`` (qualification, adjudication queue), when the set
    has a panel."""
    from . import adjudication, training

    text = training.format_status(rater_dir, db)
    if text:
        click.echo(text)

    text = adjudication.format_status(rater_dir, db)
    if text:
        click.echo(text)


@cli.group("adjudication", context_settings=CONTEXT)
def adjudication_group():
    """The coordinator's side of adjudication (docs/panel.md).

    Example:

    \b
        assess adjudication queue assignments/demo/rater --key assignments/demo/key \\
            --db results/demo/ratings.sqlite
    """


@adjudication_group.command("queue", context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--key", "key_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The set's key folder (kept by the coordinator): it says which photos are a "
                   "participant's baseline and follow-up.")
@click.option("--db", type=Database(), required=True, help=DB_HELP + ".")
@click.option("--fingerprint", envvar="ASSESS_FINGERPRINT", default=None, help=FINGERPRINT_HELP)
@friendly
def adjudication_queue(rater_dir: Path, key_dir: Path, db, fingerprint: str | None):
    """Send the photos on whose responder status the panel disagrees to the adjudicator.

    For a study with [adjudication] responder_change: reads the panel's current ratings with the
    key, finds each participant whose raters disagree on whether the change from baseline reaches
    responder_change, and records the codes of both photos (or of the pair) in the ratings
    database, where the adjudicator's queue picks them up. Only codes are recorded, never a
    participant, timepoint or score. Run it again as the panel rates on: only new codes are added.

    Example:

    \b
        assess adjudication queue assignments/demo/rater --key assignments/demo/key \\
            --db results/demo/ratings.sqlite
    """
    from .score import responders

    sent = responders.send(rater_dir, key_dir, db, fingerprint=fingerprint)
    click.echo(f"Set {sent.set_id}: {len(sent.codes)} photo(s) on which the panel disagrees on "
               f"responder status are in the adjudicator's queue ({len(sent.new)} new)")
    if sent.new:
        click.echo("  new: " + ", ".join(sent.new))


@cli.command(context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--db", type=Database(), default=None,
              help=DB_HELP + " [default: results/<set-id>/ratings.sqlite].")
@click.option("--key", "key_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The set's key folder, to count the disguised repeats rated (read only when given).")
@click.option("--fingerprint", envvar="ASSESS_FINGERPRINT", default=None, help=FINGERPRINT_HELP)
@friendly
def status(rater_dir: Path, db: Path | str | None, key_dir: Path | None,
           fingerprint: str | None):
    """Show each rater's progress on the set in RATER_DIR; never a score.

    Per rater: items rated of the worklist, cannot-assess answers, disguised repeats rated
    (only with --key: the rater folder does not say which items are repeats), time spent on the
    photos, last activity (the last answer saved or the signature), whether the worklist is
    submitted and locked, and refused sign-in attempts under the rater's id (wrong access code,
    or tried again during the wait that follows). With --key, both folders are checked against
    the seal key/seal.json and its signature first, and the raters are grouped by their site
    (blinding.sites of the study). With a PostgreSQL --db, every rater at every site is shown
    from the one central database. A set whose study
    declares [adjudication] also shows the photos the panel's scores send to the adjudicator
    (codes, never scores) and how many are adjudicated; one that declares [qualification] shows
    each rater's qualification state (training, qualified, refused) and attempts used.

    Example:

    \b
        assess status assignments/demo/rater --key assignments/demo/key
    """
    from . import rate as rating

    sealed = _check_seal(rater_dir, key_dir, fingerprint, images=False, show=False)
    rows = rating.status(rater_dir, db=db, key_dir=key_dir)
    if db is not None and isinstance(db, Path) and not db.exists():  # a mistyped --db shows none
        click.echo(f"note: {db} does not exist (yet): no rating has been saved there; is it the "
                   "file `assess rate` writes?", err=True)
    click.echo(rating.format_status(rows))
    others = rating.other_sign_in_failures(rater_dir, db=db)
    if others:
        click.echo(f"Refused sign-in attempts under ids that are no rater of this set: {others}")
    _show_sign_ins(rater_dir, db)
    _panel_status(rater_dir, db)
    if key_dir is not None:  # which items are calibration photos only the key says
        from .score import calibration

        text = calibration.format_status(rater_dir, key_dir, db if db is not None else
                                         rating.default_db(rating.load_rater_set(rater_dir)))
        if text:
            click.echo(text)
    if sealed is not None:
        _show_seal(sealed)


def _show_sign_ins(rater_dir: Path, db: Path | str | None) -> None:
    """The audit log's sign-ins per rater, below the status table (nothing when it is empty)."""
    from . import signins

    raters, entries, problems = signins.read(rater_dir, db)
    if not entries:
        return
    click.echo("\nSign-ins (audit log; see `assess audit-log`):")
    click.echo(signins.format_summary(signins.summarize(entries, raters)))
    refused = sum(1 for e in entries if e.failed and e.rater not in raters)
    if refused:
        click.echo(f"Refused sign-ins of ids or accounts that are no rater of this set: {refused}")
    for problem in problems:
        click.echo(f"Warning: the audit log was changed outside assess: {problem}", err=True)


@cli.command("audit-log", context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--db", type=Database(), default=None,
              help=DB_HELP + " [default: results/<set-id>/ratings.sqlite].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The CSV file to write (replaced whole).")
@friendly
def audit_log(rater_dir: Path, db: Path | str | None, out: Path):
    """Export the audit log of the set in RATER_DIR: every sign-in, refused sign-in, lock, sign-out.

    One row per entry, oldest first: time (UTC), set, event, method (access code or single
    sign-on), rater id, single sign-on account, client address, detail and the entry's hash.
    Cells a spreadsheet would run as formulas are prefixed with '. The database is only read;
    the entries are chained, and one changed or removed outside assess is named (exit status 1,
    the file is written all the same).

    Example:

    \b
        assess audit-log assignments/demo/rater --db results/demo/ratings.sqlite --out audit.csv
    """
    from . import signins

    _, entries, problems = signins.read(rater_dir, db)
    n = signins.export(entries, out)
    click.echo(f"{out}: {n} audit entr{'y' if n == 1 else 'ies'}")
    if problems:
        for problem in problems:
            click.echo(f"Error: the audit log was changed outside assess: {problem}", err=True)
        raise SystemExit(1)


@cli.command(context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--db", type=Database(), default=None,
              help=DB_HELP + " [default: results/<set-id>/ratings.sqlite].")
@click.option("--expect", "expected", multiple=True, metavar="RATER=HEAD",
              help="A chain head noted when the rater signed (their receipt); refused when the "
                   "ratings now end in another. Repeat for each rater.")
@friendly
def verify(rater_dir: Path, db: Path | str | None, expected: tuple[str, ...]):
    """Check that the ratings of the set in RATER_DIR are as the raters saved and signed them.

    Recomputes the hash chain of every rater's worklist and the signature of every lock, and checks
    the database's guard triggers. Refuses (exit status 1), naming the rater, the item and the
    event, when an event was edited, deleted, reordered or inserted, when an event came after its
    lock, or when a guard trigger is missing. Prints each rater's chain head: note it in the trial
    master file when the rater submits, and give it again with --expect to prove that nothing was
    rewritten since. The database is only read.

    Example:

    \b
        assess verify assignments/demo/rater --db results/demo/ratings.sqlite \\
            --expect derm1=3f2a9c1e7b04
    """
    from . import rate as rating
    from .errors import AssessError

    expect = {}
    for given in expected:
        rater, sep, head = given.partition("=")
        if not sep:
            raise AssessError(f"--expect {given}: write RATER=HEAD, e.g. derm1=3f2a9c1e7b04")
        expect[rater.strip()] = head
    report = rating.verify(rater_dir, db=db, expect=expect)
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(rating.format_chains(report, rating.load_rater_set(rater_dir).raters))
    click.echo(f"Verified: {sum(wl.events for wl in report.worklists.values())} events in "
               f"{len(report.worklists)} chain(s) are whole and every guard trigger is in place.")


@cli.group(context_settings=CONTEXT)
def db():
    """Set up a central ratings database on PostgreSQL (docs/deploy.md).

    The embedded default, a SQLite file, needs no set-up: `assess rate` creates it.

    Example:

    \b
        assess db init postgresql://assess_owner@db.example.org/trial --app-role assess_app
    """


@db.command("init", context_settings=CONTEXT)
@click.argument("url", type=Database())
@click.option("--app-role", default=None, metavar="NAME",
              help="Also create (or reset) role NAME that may only INSERT and SELECT the ratings: "
                   "the role the rating app connects as.")
@friendly
def db_init(url, app_role: str | None):
    """Create or migrate the ratings schema in the PostgreSQL database URL.

    Run it as the database's owner. Creates the tables, the guard triggers and the schema version
    (or migrates an older schema forward); with --app-role, a role that may INSERT and SELECT the
    ratings and locks and nothing else, so that the app cannot change or delete a rating even
    through a flaw of its own. The password comes from PGPASSWORD, ~/.pgpass or a service file,
    never from the URL.

    Example:

    \b
        PGPASSFILE=~/.pgpass assess db init \\
            postgresql://assess_owner@db.example.org:5432/trial --app-role assess_app
    """
    from .store import StoreError, is_url

    if not is_url(url):
        raise StoreError(f"{url}: give a postgresql://user@host:5432/dbname URL; a SQLite file "
                         "needs no set-up")
    from .store import postgres

    for line in postgres.init(url, app_role):
        click.echo(line)


@cli.group(context_settings=CONTEXT)
def sessions():
    """Manage the raters' sign-in sessions of a set (they hold across reloads and restarts).

    Example:

    \b
        assess sessions revoke assignments/demo/rater
    """


@sessions.command("revoke", context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--db", type=Database(), default=None,
              help=DB_HELP + " [default: results/<set-id>/ratings.sqlite].")
@friendly
def sessions_revoke(rater_dir: Path, db: Path | str | None):
    """Sign every rater of the set in RATER_DIR out, on every app process of the database.

    Every live session ends at once: the next page or photo each rater asks for is refused and
    they sign in again. Ratings saved are not touched.

    Example:

    \b
        assess sessions revoke assignments/demo/rater --db results/demo/ratings.sqlite
    """
    from . import rate as rating
    from . import session, store

    rater_set = rating.load_rater_set(rater_dir)
    db = store.location(db) if db is not None else rating.default_db(rater_set)
    if not store.exists(db):
        raise rating.RateError(f"{db}: no ratings database here, so no session to end; give the "
                               "--db the app runs with")
    ended = session.revoke_all(db, rater_set.set_id)
    click.echo(f"Ended {ended} session{'' if ended == 1 else 's'} of set {rater_set.set_id}; "
               "every rater signs in again.")


# --------------------------------------------------------------------------- statistician


@cli.command("score", context_settings=CONTEXT)
@click.option("--rater-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The set's rater/ folder, complete (set.json, worklists/, images/).")
@click.option("--key", "key_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The set's key/ folder (key.csv), kept by the coordinator.")
@click.option("--db", type=Database(), default=None,
              help="The rating app's database, a file or a postgresql:// URL "
                   "[default: results/<set-id>/ratings.sqlite].")
@click.option("--ratings", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Or: a CSV of ratings made elsewhere (rater,code,score; see docs/formats.md).")
@click.option("--participants", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV participant,arm; without it all participants form one arm.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the results [default: a fresh results/<set-id>/scores-<UTC time>]; "
                   "existing results are never overwritten.")
@click.option("--allow-unlocked", is_flag=True,
              help="Score although a worklist is not locked yet (interim look; a warning says so).")
@click.option("--fingerprint", envvar="ASSESS_FINGERPRINT", default=None, help=FINGERPRINT_HELP)
@friendly
def score_command(rater_dir: Path, key_dir: Path, db: Path | str | None, ratings: Path | None,
                  participants: Path | None, out: Path | None, allow_unlocked: bool,
                  fingerprint: str | None):
    """Unblind the ratings, check their integrity and write the trial's tables and report.

    Refuses when a file of the key or rater folder differs from, is missing from or is extra to
    the seal key/seal.json, when its signature fails or is not by the key of --fingerprint, when
    the ratings database fails its integrity check (see assess verify), when the key does not
    match the key_sha256 in set.json, when key and rater folder belong to different sets, when a
    rated code is not in the key or not in that rater's worklist, or when a worklist is not locked (unless --allow-unlocked). Warns about unrated
    items, participants with a missing timepoint and ratings "cannot assess".

    Writes the tables (CSV, XLSX), SPSS files with analysis.sps, a Stata file, analysis.R, the
    ratings as an SDTM-style QS dataset (SAS transport) with define.xml, and report.html into
    --out (docs/analysis.md says which file to open in which package).

    Example:

    \b
        assess score --rater-dir assignments/demo/rater --key assignments/demo/key
    """
    from .score import STEPS, default_inputs, score

    db, ratings, out = default_inputs(rater_dir, db, ratings, out)
    with click.progressbar(length=len(STEPS), label="Scoring", file=sys.stderr) as bar:
        result = score(rater_dir, key_dir, out, db=db, ratings=ratings, participants=participants,
                       allow_unlocked=allow_unlocked, progress=lambda step: bar.update(1),
                       fingerprint=fingerprint)
    u = result.analysis.unblinded
    c = u.counts
    _show_seal(u.sealed)
    click.echo(f"Checked: key.csv matches the seal in set.json; {c['ratings']:,} ratings by "
               f"{c['raters']} rater(s) of {c['participants']:,} participants in "
               f"{len(u.arms)} arm(s) unblinded.")
    if c.get("chains"):
        from .chain import short

        heads = ", ".join(f"{rater} {short(ch['head'])}{' (signed)' if ch['signed_at'] else ''}"
                          for rater, ch in c["chains"].items())
        click.echo(f"Checked: every rater's hash chain is whole and the guard triggers are in "
                   f"place; chain heads: {heads}.")
    click.echo(f"Timepoints: {' → '.join(u.timepoints)} (order from "
               f"{c['timepoint_order_from']}).")
    for finding in result.findings:
        click.echo(f"Warning: {finding.short(5)}")
    click.echo(f"Wrote {out}: {', '.join(f.name for f in result.files)}")
