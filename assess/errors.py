"""The base of every error a user can act on.

Each stage raises its own subclass (``StudyError``, ``IngestError``, ``DeidError``, ``BlindError``,
``StoreError``, ``ScoreError``); the message names the file or field and says what to do. The CLI
prints the message and exits with status 1 instead of a traceback.
"""


class AssessError(Exception):
    """An error caused by the input, explained for the person who can fix it."""
