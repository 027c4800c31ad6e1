"""A Python child process that works beside this one (standard library only).

The child is told what to do in one line of JSON on its standard input, typically the paths of an
input and an output file in :attr:`Child.dir`, a private folder removed by :meth:`Child.close`.
:meth:`Child.wait` says whether it finished well; whoever uses it does the work itself otherwise.

>>> with Child("import json, sys; print(json.loads(sys.stdin.readline())['n'] + 1)") as child:
...     child.send({"n": 1})
...     child.wait()
True
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["Child"]


class Child:
    """Start ``python [flags] -c code`` at once; :meth:`send` its instructions later."""

    def __init__(self, code: str, *, prefix: str = "assess-child-", flags: tuple[str, ...] = ()
                 ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, *flags, "-c", code], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None

    def send(self, message) -> None:
        """Write ``message`` as one line of JSON and close the child's input."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.close()
        except OSError:
            self.stop()

    def wait(self, timeout: float = 600) -> bool:
        """Wait for the child to end; ``True`` when it ended well. Nothing sent: it ends now."""
        if self.proc is None:
            return False
        try:
            if not self.proc.stdin.closed:
                self.proc.stdin.close()
            return self.proc.wait(timeout=timeout) == 0
        except (OSError, subprocess.TimeoutExpired):
            return False
        finally:
            self.stop()

    def stop(self) -> None:
        """End the child now (if it still runs)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
