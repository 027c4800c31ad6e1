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
