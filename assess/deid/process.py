"""Process setup through the C library: a worker that ends with its parent, one C heap for all
threads, and the heap trim that returns freed memory.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable


def _glibc(name: str) -> Callable | None:
    """The C library function ``name`` of glibc (Linux), or ``None`` elsewhere."""
    try:
        import ctypes

        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


PARENT_CHECK_SECONDS = 0.5
"""How often a worker checks that the process that started it still runs."""


def end_with_parent(parent: int) -> None:
    """End this process as soon as ``parent`` (the process that started it) ends, killed included.

    A worker waits for photos on a pipe that it holds open itself, so a parent killed outright
    (SIGKILL, the out-of-memory killer) would leave it blocked forever. On Linux the kernel ends it
    with the parent's thread that started it (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon
    thread also checks every :data:`PARENT_CHECK_SECONDS` that the parent is still its parent and
    ends the process otherwise. A parent already gone ends it at once.
    """
    prctl = _glibc("prctl")
    if prctl is not None:
        import signal

        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # gone before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="assess-parent-watch", daemon=True).start()


def share_one_heap() -> None:
    """Make every thread of this process allocate from one C heap (glibc's ``M_ARENA_MAX = 1``).

    By default glibc gives each new thread a heap (arena) of its own. What a thread frees at the
    top of its heap stays resident, and ``malloc_trim`` does not return it: a thread that read a
    few large files keeps 10-15 MB for the life of the process. With one heap, a trim returns
    everything free. The threads of assess read files, run decoders that allocate a few large
    buffers per photo, or run Python, which allocates under its global lock anyway, so they seldom
    wait for each other's allocations (randomize ran as fast with it as without, bench/deid.py).
    It applies to the whole process for the rest of its life (``assess demo`` serves the rating
    app from the same process afterwards) and only to heaps not made yet; elsewhere than glibc it
    does nothing.
    """
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(-8, 1)  # M_ARENA_MAX


def _heap_trimmer() -> Callable[[], object] | None:
    """glibc's ``malloc_trim`` when available (Linux), else ``None``.

    A freed image leaves its pages in the C heap; without a trim a worker's resident memory stays
    at the high-water mark of the largest photo it ever decoded, and two workers that each met a
    large HEIC or TIFF sit at that mark together. Workers trim only above :data:`KEEP_RESIDENT`
    (see :func:`_job`).
    """
    trim = _glibc("malloc_trim")
    return None if trim is None else lambda: trim(0)
