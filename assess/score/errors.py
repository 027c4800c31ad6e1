"""What scoring refuses: :class:`ScoreError`, whose message names the file and says what to do."""

from __future__ import annotations

from ..errors import AssessError

__all__ = ["ScoreError", "listing"]


class ScoreError(AssessError):
    """The inputs of ``assess score`` do not fit together; the message says which file and why."""


def listing(values, limit: int = 10) -> str:
    values = list(values)
    head = ", ".join(map(str, values[:limit]))
    return head + (f", … ({len(values) - limit} more)" if len(values) > limit else "")
