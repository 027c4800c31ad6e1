"""Worklist files (``rater/worklists/<rater>.json``, docs/formats.md) read as columns.

Standard library only, so that the scorer can read a trial's worklists (hundreds of thousands of
items) in a second process while it reads the ratings database, and take them over as columns:
:class:`Reader`. Whatever goes wrong there, the caller reads the files itself and reports the
problem with its own words.

>>> import json, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "derm1.json"
>>> _ = path.write_text(json.dumps({"rater": "derm1", "set_id": "S1", "items": [
...     {"item": "KX7-4MPA", "kind": "single", "scale": "wsrs", "region": "face",
...      "photos": ["KX7-4MPA"]}]}))
>>> read(path)["columns"]["left"]
['KX7-4MPA']
>>> with Reader([path, path]) as reader:
...     [w["rater"] for w in reader.result()]
['derm1', 'derm1']
"""

from __future__ import annotations

import gc
import json
import pickle
import sys
from pathlib import Path

from .child import Child

__all__ = ["FIELDS", "columns", "read", "Reader"]

#: Text fields of every worklist item besides its photos.
FIELDS = ("item", "kind", "scale", "region")


def columns(data: dict) -> dict[str, list[str]]:
    """The items of a parsed worklist as columns: item, kind, scale, region, left, right.

    ``right`` is ``""`` for a single photo. Raises :class:`ValueError` when an item lacks a field
    or a field is not text.
    """
    items = data.get("items", [])
    try:
        cols = {name: [it[name] for it in items] for name in FIELDS}
        photos = [it["photos"] for it in items]
        cols["left"] = [p[0] for p in photos]
        cols["right"] = [p[1] if len(p) > 1 else "" for p in photos]
    except (KeyError, TypeError, IndexError):
        raise ValueError("an item lacks a field") from None
    for name, values in cols.items():
        if set(map(type, values)) - {str} or (name != "right" and "" in values):
            raise ValueError(f"an item's {name} is missing or not text")
    return cols


def read(path: str | Path) -> dict:
    """``{"rater", "set_id", "columns"}`` of one worklist file (:func:`columns`)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return {"rater": data.get("rater"), "set_id": data.get("set_id"), "columns": columns(data)}


# Run by Reader in a child process.
_CHILD = """
import sys
sys.path.insert(0, {root!r})
from assess.worklists import _serve
_serve()
"""


def _serve() -> None:
    """Read the worklists named on stdin and write what :func:`read` gives (or ``None``)."""
    gc.disable()  # many small objects, all freed by reference counting
    paths, dst = json.loads(sys.stdin.readline())
    out = []
    for path in paths:
        try:
            out.append(read(path))
        except (OSError, ValueError):
            out.append(None)
    # Pickled: the fastest hand-over, into a private folder of the process that reads it back.
    with open(dst, "wb") as fh:
        pickle.dump(out, fh, protocol=pickle.HIGHEST_PROTOCOL)


class Reader:
    """Read worklist files in a child process; :meth:`result` waits for them.

    :meth:`result` gives one :func:`read` result per path (``None`` for a file that could not be
    read), or ``None`` when the child process could not do its work.
    """

    def __init__(self, paths: list[str | Path]) -> None:
        self._paths = [str(p) for p in paths]
        root = str(Path(__file__).resolve().parents[1])
        self._child = Child(_CHILD.format(root=root), prefix="assess-worklists-", flags=("-S",))
        self._child.send([self._paths, str(self._child.dir / "out.pickle")])

    def result(self, timeout: float = 600) -> list[dict | None] | None:
        if not self._child.wait(timeout):
            return None
        try:
            with open(self._child.dir / "out.pickle", "rb") as fh:
                out = pickle.load(fh)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError):
            return None
        return out if isinstance(out, list) and len(out) == len(self._paths) else None

    def close(self) -> None:
        self._child.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
