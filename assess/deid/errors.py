"""What goes wrong in the pixel pipeline: a photo that cannot be de-identified, a copy that
cannot be written.
"""

from __future__ import annotations

from ..errors import AssessError


class OutputError(AssessError):
    """A de-identified copy cannot be written (a full disk, a read-only folder): the output
    folder is at fault, not the photo. ``reason`` is the system's word for it, ``path`` the file,
    ``errno`` the error number (``errno.ENOSPC`` for a full disk).
    """

    def __init__(self, reason: str, path: str, errno: int | None = None):
        super().__init__(reason, path, errno)
        self.reason, self.path, self.errno = reason, path, errno

    def __str__(self) -> str:
        return f"{self.path}: cannot write the de-identified copy ({self.reason})"


class DeidError(AssessError):
    """A photo cannot be de-identified; the message names the file and says what to do.

    Raised by :func:`prepare_files` for a batch, it also carries ``failures`` (job index ->
    message naming the file) and ``results`` (the :class:`Result` of every job that succeeded,
    ``None`` for the others), so that a caller can report the failures together with its own
    checks of the rest.
    """

    def __init__(self, message: str, failures: dict[int, str] | None = None,
                 results: list | None = None):
        super().__init__(message)
        self.failures = dict(failures or {})
        self.results = list(results or [])
