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
    """Turn an ``AssessError`` into ``Error: <message>`` and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except AssessError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="assess")
def cli():
    """Blinded photo assessment for clinical trials.

    \b
    Coordinator:  init, randomize, audit-set, contact-sheet
    Rater:        rate
    Coordinator:  status
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


@cli.command("audit-set", context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--key", "key_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The set's key folder: also search for participant ids, timepoints and file names "
                   "and compare file properties between timepoints.")
@friendly
def audit_set_command(rater_dir: Path, key_dir: Path | None):
    """Check that a rater folder shows nothing but pixels.

    Every file is scanned: metadata of any kind in the images (own JPEG marker walk, plus exiftool
    when installed), data after the JPEG end marker, non-JPEG images, differing file times. With
    --key, also every participant id, timepoint name and source file name anywhere in any byte, and
    whether a file property (size, dimensions, encoding, worklist position, ...) separates the
    timepoints (AUC table). Exit status 1 when anything is found, 0 when clean.

    Example:

    \b
        assess audit-set assignments/demo-20261125/rater --key assignments/demo-20261125/key
    """
    from .audit import audit_report

    report = audit_report(rater_dir, key_dir)
    if not report.exiftool:
        click.echo("note: exiftool not found; ran the built-in checks only", err=True)
    for finding in report.findings:
        click.echo(f"{finding.file}: {finding.kind}: {finding.message}")
    if report.aucs:
        click.echo(format_auc_table(report.worst_aucs()))
    if report.findings:
        click.echo(f"{len(report.findings)} finding(s) in {report.files_checked} files checked")
        sys.exit(1)
    click.echo(f"clean: {report.files_checked} files checked")


def format_auc_table(rows) -> str:
    """The AUC table of ``assess audit-set --key``: one line per property, its worst region."""
    lines = ["property                              kind         AUC   p-value  region      timepoints",
             "------------------------------------  ----------  -----  -------  ----------  ----------"]
    for row in rows:
        mark = "  <- finding" if row.finding else ""
        lines.append(f"{row.property[:36]:<36}  {row.kind:<10}  {row.auc:5.2f}  {row.p_value:7.2g}  "
                     f"{row.region[:10]:<10}  {row.comparison}{mark}")
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
        assess contact-sheet assignments/demo-20261125/rater
    """
    from .audit import contact_sheet

    target = out or rater_dir.resolve().parent / "contact-sheet.jpg"
    pages = contact_sheet(rater_dir, target, columns=columns)
    for page in pages:
        click.echo(f"Wrote {page}")


# --------------------------------------------------------------------------- rater


@cli.command(context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ratings database [default: results/<set-id>/ratings.sqlite].")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 serves the whole network.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True,
              help="Port to listen on.")
@friendly
def rate(rater_dir: Path, db: Path | None, host: str, port: int):
    """Serve the rating app for the rater folder RATER_DIR.

    Raters open the printed address in a browser and sign in with their rater id and access
    code. Every rating is saved the moment it is given; stop the server with Ctrl+C and start it
    again at any time, raters resume where they were.

    Example:

    \b
        assess rate assignments/demo-20261125/rater
    """
    from . import rate as rating

    rater_set = rating.load_rater_set(rater_dir)
    db = db if db is not None else rating.default_db(rater_set)
    click.echo(f"Ratings database: {db}", err=True)
    rating.serve(rater_dir, db=db, host=host, port=port)


@cli.command(context_settings=CONTEXT)
@click.argument("rater_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ratings database [default: results/<set-id>/ratings.sqlite].")
@click.option("--key", "key_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The set's key folder, to count the disguised repeats rated (read only when given).")
@friendly
def status(rater_dir: Path, db: Path | None, key_dir: Path | None):
    """Show each rater's progress on the set in RATER_DIR; never a score.

    Per rater: items rated of the worklist, cannot-assess answers, disguised repeats rated
    (only with --key: the rater folder does not say which items are repeats), time spent on the
    photos, and whether the worklist is submitted and locked.

    Example:

    \b
        assess status assignments/demo-20261125/rater --key assignments/demo-20261125/key
    """
    from . import rate as rating

    click.echo(rating.format_status(rating.status(rater_dir, db=db, key_dir=key_dir)))


# --------------------------------------------------------------------------- statistician


@cli.command("score", context_settings=CONTEXT)
@click.option("--rater-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The set's rater/ folder (set.json, worklists/).")
@click.option("--key", "key_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The set's key/ folder (key.csv), kept by the coordinator.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The rating app's database (results/<set-id>/ratings.sqlite).")
@click.option("--ratings", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Or: a CSV of ratings made elsewhere (rater,code,score; see docs/formats.md).")
@click.option("--participants", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV participant,arm; without it all participants form one arm.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the results; existing results are never overwritten.")
@click.option("--allow-unlocked", is_flag=True,
              help="Score although a worklist is not locked yet (interim look; a warning says so).")
@friendly
def score_command(rater_dir: Path, key_dir: Path, db: Path | None, ratings: Path | None,
                  participants: Path | None, out: Path, allow_unlocked: bool):
    """Unblind the ratings, check their integrity and write the trial's tables and report.

    Refuses when the key does not match the seal in the rater folder, when key and rater folder
    belong to different sets, when a rated code is not in the key or not in that rater's
    worklist, or when a worklist is not locked (unless --allow-unlocked). Warns about unrated
    items, participants with a missing timepoint and ratings "cannot assess".

    Writes ratings_long.csv, summary.csv, reliability.csv, distribution.csv, ratings.xlsx,
    ratings.sav (SPSS) and report.html into --out.

    Example:

    \b
        assess score --rater-dir assignments/demo-20261125/rater \\
            --key assignments/demo-20261125/key \\
            --db results/demo-20261125/ratings.sqlite \\
            --participants images/demo/participants.csv --out results/demo-20261125
    """
    from .score import STEPS, score

    with click.progressbar(length=len(STEPS), label="Scoring", file=sys.stderr) as bar:
        result = score(rater_dir, key_dir, out, db=db, ratings=ratings, participants=participants,
                       allow_unlocked=allow_unlocked, progress=lambda step: bar.update(1))
    u = result.analysis.unblinded
    c = u.counts
    click.echo(f"Checked: key.csv matches the seal in set.json; {c['ratings']:,} ratings by "
               f"{c['raters']} rater(s) of {c['participants']:,} participants in "
               f"{len(u.arms)} arm(s) unblinded.")
    for finding in result.findings:
        click.echo(f"Warning: {finding.short(5)}")
    click.echo(f"Wrote {out}: {', '.join(f.name for f in result.files)}")
