"""CSV files that people write by hand or open in a spreadsheet: read strictly, written safely.

Every CSV that ``assess`` reads (a manifest, ``participants.csv``, ``key.csv``, ``access.csv``,
ratings made elsewhere, the single sign-on accounts) goes through :func:`read_table`, which
refuses, naming the file and the line, whatever would otherwise be read wrongly in silence: a row
with more or fewer fields than the header, a file that is not UTF-8, an empty file, a header
naming a column twice or not at all, broken quoting. A byte-order mark (Excel's "CSV UTF-8"
writes one) is allowed.

Text that a spreadsheet would run as a formula (CWE-1236: a cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) is written with a leading ``'`` by
:func:`spreadsheet_safe`, in the scorer's exports and in the key folder's files alike. In the
files ``assess`` reads back (``key.csv``, ``access.csv``) the prefix is undone by
:func:`from_spreadsheet_safe`; so that this gives back exactly the text written, a value that
already starts with apostrophes followed by such a character gets one more.

>>> spreadsheet_safe("=HYPERLINK(1)"), spreadsheet_safe("P01_baseline_face.jpg")
("'=HYPERLINK(1)", 'P01_baseline_face.jpg')
>>> all(from_spreadsheet_safe(spreadsheet_safe(v)) == v for v in ["=1", "'=1", "''+1", "'a", "-"])
True
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import AssessError

__all__ = ["Table", "read_table", "parse_table", "plain_table", "spreadsheet_safe",
           "from_spreadsheet_safe"]

_RESTORE = ("`assess randomize` wrote this file and it is never edited by hand: restore it from "
            "the coordinator's backup")
# a cell a spreadsheet would read as a formula starts with one of =+-@, a tab or a carriage return
_ESCAPED = re.compile(r"^'+[=+\-@\t\r]")
_NEEDS_PREFIX = re.compile(r"^'*[=+\-@\t\r]")


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula (or when it is
    such a text already prefixed, so that :func:`from_spreadsheet_safe` gives it back whole).

    >>> spreadsheet_safe("-fine"), spreadsheet_safe("'=x"), spreadsheet_safe("it's")
    ("'-fine", "''=x", "it's")
    """
    return "'" + text if _NEEDS_PREFIX.match(text) else text


def from_spreadsheet_safe(text: str) -> str:
    """The text that :func:`spreadsheet_safe` was given.

    >>> from_spreadsheet_safe("'=x"), from_spreadsheet_safe("''=x"), from_spreadsheet_safe("'a")
    ('=x', "'=x", "'a")
    """
    return text[1:] if _ESCAPED.match(text) else text


@dataclass
class Table:
    """A CSV file read by :func:`read_table`: the header and the rows, each with its line number
    (where the row starts in the file, the header being line 1)."""

    path: Path
    header: tuple[str, ...]
    rows: list[list[str]]
    lines: list[int]

    def column(self, name: str) -> list[str]:
        """Every row's value of column ``name``."""
        return list(map(itemgetter(self.header.index(name)), self.rows))

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        """``(line number, {column: value})`` for each row."""
        for line, row in zip(self.lines, self.rows):
            yield line, dict(zip(self.header, row))


def read_table(path: str | Path, required: Sequence[str] = (), *,
               allowed: Sequence[str] | None = None, error: type[AssessError] = AssessError,
               what: str = "CSV file", fold_case: bool = False, written_safe: bool = False,
               skip_initial_space: bool = False) -> Table:
    """Read a CSV file strictly; see :func:`parse_table` for the parameters.

    Raises
    ------
    AssessError
        (of class ``error``) naming the file, and the line where there is one.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such file; give the {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder; give the {what} (a .csv file)") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
    return parse_table(data, path, required, allowed=allowed, error=error, what=what,
                       fold_case=fold_case, written_safe=written_safe,
                       skip_initial_space=skip_initial_space)


def parse_table(data: bytes, path: str | Path, required: Sequence[str] = (), *,
                allowed: Sequence[str] | None = None, error: type[AssessError] = AssessError,
                what: str = "CSV file", fold_case: bool = False, written_safe: bool = False,
                skip_initial_space: bool = False) -> Table:
    """Parse the bytes of a CSV file strictly.

    Parameters
    ----------
    data, path
        The file's bytes and its path (for the messages).
    required
        Columns that must be in the header.
    allowed
        Every column the header may name (``required`` included); ``None``: any.
    error
        The :class:`AssessError` subclass raised.
    what
        What the file is, for the messages ("manifest", "key", …).
    fold_case
        Header names are compared in lower case (and returned so); they are always stripped.
    written_safe
        The file was written with :func:`spreadsheet_safe` cells: undo it in every cell.
    skip_initial_space
        Spaces after a comma are ignored (so ``a, "b, c"`` is two fields).

    Returns
    -------
    Table
        Blank lines are left out.
    """
    path = Path(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        advice = _RESTORE if written_safe else f"save the {what} as \"CSV UTF-8\""
        raise error(f"{path}: line {line} is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                    f"{advice}") from None
    if not text.strip():
        columns = f": {','.join(required)}" if required else ""
        advice = f"; {_RESTORE}" if written_safe else ""
        raise error(f"{path}: the {what} is empty; it needs a header row{columns}{advice}")
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise error(f"{path}: line {line} holds a NUL byte; this is not a CSV text file")
    header_row, rows, lines = _records(text, path, error, what, skip_initial_space)
    header = tuple((h.strip().lower() if fold_case else h.strip()) for h in header_row)
    _check_header(path, header, required, allowed, error, what)
    width = len(header)
    if set(map(len, rows)) - {width}:
        line, row = next((n, r) for n, r in zip(lines, rows) if len(r) != width)
        advice = _RESTORE if written_safe else ("give one value per column and put a value "
                                                "holding a comma in double quotes")
        raise error(f"{path}: line {line} has {len(row)} field{'s' * (len(row) != 1)} but the "
                    f"header has {width} ({','.join(header)}); {advice}")
    if written_safe and "'" in text:
        rows = [[from_spreadsheet_safe(v) if v[:1] == "'" else v for v in row] for row in rows]
    return Table(path, header, rows, lines)


def plain_table(data: bytes, path: str | Path, required: Sequence[str] = (), *,
                allowed: Sequence[str] | None = None, error: type[AssessError] = AssessError,
                what: str = "CSV file", fold_case: bool = False
                ) -> tuple[tuple[str, ...], np.ndarray] | None:
    """Check a large CSV file fast when it is plain: ``(header, line of each row)``, else ``None``.

    Plain: UTF-8 (a byte-order mark allowed) without double quotes, carriage returns or NUL bytes,
    so that each line is a row and each comma a separator; the header is checked as by
    :func:`parse_table` and every line that is not empty must have as many fields. A fast parser
    (``pandas.read_csv``, which pads a short row in silence) may then read it. ``None``: the file is
    not plain or has a fault; :func:`parse_table` reads it, or names the fault and its line.
    """
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if b'"' in body or b"\r" in body or b"\x00" in body:
        return None
    try:
        first = body[:body.find(b"\n")] if b"\n" in body else body
        header = tuple((h.strip().lower() if fold_case else h.strip())
                       for h in first.decode("utf-8").split(","))
        body.decode("utf-8")
        _check_header(Path(path), header, required, allowed, error, what)
    except (UnicodeDecodeError, AssessError):
        return None
    raw = np.frombuffer(body, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    if not len(body) or body[-1:] != b"\n":
        ends = np.append(ends, len(body))
    starts = np.concatenate(([0], ends[:-1] + 1))

    def per_line(found: np.ndarray) -> np.ndarray:  # how many of the offsets ``found`` per line
        return np.searchsorted(found, ends) - np.searchsorted(found, starts)

    commas = per_line(np.flatnonzero(raw == 44))
    length = ends - starts
    blank = length == 0
    if (~blank & (commas != len(header) - 1)).any():
        return None  # a field too many or too few
    first = raw[np.minimum(starts, len(raw) - 1)] if len(raw) else raw
    if (~blank & ((first == 44) | (first == 32) | (first == 9))).any():  # may hold no value
        spaces = per_line(np.flatnonzero((raw == 32) | (raw == 9)))
        if (~blank & (commas + spaces == length)).any():
            return None  # a row of empty fields or spaces only
    lines = np.flatnonzero(~blank) + 1
    return header, lines[1:]


def _records(text: str, path: Path, error: type[AssessError], what: str, skip_initial_space: bool
             ) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the rows that are not blank and the line where each starts."""
    def reader():
        return csv.reader(io.StringIO(text, newline=""), strict=True,
                          skipinitialspace=skip_initial_space)

    parsed = reader()
    try:
        records = list(parsed)
    except csv.Error as exc:
        raise error(f"{path}: line {parsed.line_num}: {exc}; save the {what} as CSV") from None
    if text.count("\n") + (not text.endswith("\n")) == len(records):
        lines = list(range(1, len(records) + 1))  # one line per record, the common case
    else:  # values over several lines, or lines ended by a lone carriage return
        parsed, lines, start = reader(), [], 0
        for _ in parsed:
            lines.append(start + 1)
            start = parsed.line_num
    header, rows, lines = records[0], records[1:], lines[1:]
    if not all(map(any, rows)) or any(map(str.isspace, map("".join, rows))):
        kept = [(n, r) for n, r in zip(lines, rows) if any(v.strip() for v in r)]
        lines, rows = [n for n, _ in kept], [r for _, r in kept]
    return header, rows, lines


def _check_header(path: Path, header: tuple[str, ...], required: Sequence[str],
                  allowed: Sequence[str] | None, error: type[AssessError], what: str) -> None:
    blank = [str(n) for n, h in enumerate(header, start=1) if not h]
    if blank:
        raise error(f"{path}: line 1: column {', '.join(blank)} of the header has no name; name "
                    "every column or remove the empty ones")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise error(f"{path}: line 1: column(s) {', '.join(twice)} named twice in the header; "
                    "keep one of each")
    missing = [c for c in required if c not in header]
    if missing:
        raise error(f"{path}: line 1: column{'s' * (len(missing) > 1)} {', '.join(missing)} "
                    f"missing; the {what} needs the columns {','.join(required)}")
    if allowed is not None:
        unknown = [h for h in header if h not in allowed]
        if unknown:
            raise error(f"{path}: line 1: unknown column(s) {', '.join(unknown)}; allowed are "
                        f"{', '.join(allowed)}")
