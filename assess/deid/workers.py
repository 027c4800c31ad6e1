"""The worker pool: processes that each hold one photo at a time, trim their heap after a large one
and end with their parent; :func:`prepare_files` runs a batch on them.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from .decode import _set_gate
from .errors import DeidError, OutputError
from .fit import Spec
from .prepare import Result, prepare_file
from .process import _heap_trimmer, end_with_parent, share_one_heap


def _init_worker(gate, parent: int | None = None, text: bool = False) -> None:
    global _TRIM_HEAP, _READY_RESIDENT
    if parent is not None:
        end_with_parent(parent)
    _set_gate(gate)
    _TRIM_HEAP = _heap_trimmer()
    share_one_heap()  # libheif's decoding threads: the worker's memory stays flat
    if text:  # while the caller still reads the photos' headers, not when the first photo waits
        from ..pixels import text as text_

        text_.preload()
    _READY_RESIDENT = _resident() or 0


_TRIM_HEAP: Callable[[], object] | None = None

KEEP_RESIDENT = 96 * 2**20
"""Resident memory (bytes) a worker keeps between photos beyond what it holds once ready
(:data:`_READY_RESIDENT`: the libraries, and the text search's model when it is on). The pages
freed by one photo are reused by the next; returning them to the system after every photo and
faulting them in again cost about 6% of the pipeline's CPU time. A worker holds about 70 MB between
ordinary photos beyond its libraries; above this limit, after an unusually large photo, it trims
its heap."""

_READY_RESIDENT = 0
"""This worker's resident memory once it was ready for its first photo (0 outside a worker)."""


def _resident() -> int | None:
    """This process's resident memory in bytes (``None`` where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _job(job: tuple[Path, Path, Path, Spec]) -> tuple[bool, object]:
    try:
        return _job_inner(job)
    finally:
        if _TRIM_HEAP is not None:
            resident = _resident()
            if resident is None or resident > _READY_RESIDENT + KEEP_RESIDENT:
                _TRIM_HEAP()


def _job_inner(job: tuple[Path, Path, Path, Spec]) -> tuple[bool, object]:
    try:
        return True, prepare_file(*job)
    except OutputError:
        raise  # the output folder, not the photo: the whole batch stops
    except DeidError as exc:
        return False, str(exc)
    except MemoryError:
        return False, f"{job[0]}: not enough memory to decode the image; close other programs and retry"
    except Exception as exc:  # an unexpected decoder failure is still reported per file
        return False, f"{job[0]}: cannot process the image ({type(exc).__name__}: {exc})"


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_FULL_SIZE_TYPES = (".heic", ".heif", ".png", ".tif", ".tiff")
"""Photos decoded at full size whatever the canvas (no DCT scaling as for JPEG)."""


QUICK_TAIL = 12
"""Jobs at the end of a batch that hold no photo decoded at full size."""


def _spread_full_size_decodes(jobs: list[tuple[Path, Path, Path, Spec]]) -> list[int]:
    """The order in which to hand out jobs: photos decoded at full size spread evenly among the
    others, and the batch ending with photos that are quick to do.

    Only one worker at a time decodes at full size (the gate in :func:`_fitted`); two such photos
    handed out together would leave one worker waiting for the other. Evenly spread, each comes
    long after the one before. They are spread over all but the last :data:`QUICK_TAIL` jobs (or
    the last half of the quick ones, when there are fewer), so that no worker is still decoding a
    large photo while the other has nothing left to do.

    >>> names = ["a.heic", "b.heic", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]
    >>> [names[i] for i in _spread_full_size_decodes([(Path(n),) for n in names])]
    ['c.jpg', 'a.heic', 'd.jpg', 'b.heic', 'e.jpg', 'f.jpg']
    """
    heavy = [i for i, job in enumerate(jobs) if Path(job[0]).suffix.lower() in _FULL_SIZE_TYPES]
    if not heavy or len(heavy) == len(jobs):
        return list(range(len(jobs)))
    chosen = set(heavy)
    light = [i for i in range(len(jobs)) if i not in chosen]
    n = len(jobs)
    span = n - min(QUICK_TAIL, len(light) // 2)
    keyed = [((k + 0.5) * span / len(heavy), 1, i) for k, i in enumerate(heavy)]
    keyed += [((k + 0.5) * n / len(light), 0, i) for k, i in enumerate(light)]
    return [i for _, _, i in sorted(keyed)]


def _ready() -> None:
    """A job that does nothing: submitting it makes the pool start a worker."""


class Workers:
    """Worker processes for :func:`prepare_files`, started ahead of the batch.

    Starting a worker (a fresh interpreter that imports Pillow and libheif) takes a few tenths of
    a second. A caller with other work to do before the batch (reading the photos' headers) starts
    the workers first, so they are ready when the batch comes; ``with Workers() as pool: …``
    stops them at the end, dropping photos not started yet if the block fails.

    With one worker (``workers=1`` or a one-core machine) no process is started and
    :func:`prepare_files` works in the calling process. With ``text``, each worker loads the text
    search (:func:`assess.pixels.text.preload`) as it starts. The workers end with this process even
    when it is killed outright (:func:`end_with_parent`); on Linux also with the thread that made
    the pool, so make it in a thread that outlives it.
    """

    def __init__(self, workers: int | None = None, text: bool = False) -> None:
        self.size = max(1, workers or _default_workers())
        self.executor: ProcessPoolExecutor | None = None
        if self.size > 1:
            ctx = get_context("spawn")
            # no max_tasks_per_child: on Python 3.11-3.13 a worker that retires is not replaced and
            # the pool hangs once more than workers x limit jobs are queued (CPython gh-115634)
            gate = ctx.BoundedSemaphore(1)
            self.executor = ProcessPoolExecutor(max_workers=self.size, mp_context=ctx,
                                                initializer=_init_worker,
                                                initargs=(gate, os.getpid(), text))
            for _ in range(self.size):  # workers are started on demand: one per job submitted
                self.executor.submit(_ready)

    def close(self, cancel: bool = False) -> None:
        """Stop the workers (at once for photos not started yet when ``cancel``)."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=cancel)
            self.executor = None

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, exc_type, *exc) -> bool:
        self.close(cancel=exc_type is not None)
        return False


def prepare_files(jobs: list[tuple[Path, Path, Path, Spec]], workers: int | None = None,
                  progress: Callable[[int], None] | None = None,
                  pool: Workers | None = None) -> list[Result]:
    """Run :func:`prepare_file` over many photos on all cores; results in job order.

    Each job is the arguments of :func:`prepare_file`: ``(src, full_out, display_out, spec)``,
    with a fifth, ``variants``, for a photo that is shown under more than one code, then
    ``frame`` and ``gains`` (``[pixels] normalize``) when given.

    Workers are fresh processes (``spawn``) that hold one photo at a time, so memory stays flat
    whatever the batch size; only one worker at a time decodes an image at full size (HEIC, PNG,
    TIFF, or a JPEG that DCT scaling cannot reduce), so two large decodes never add up, and such
    photos are handed out spread through the batch (:func:`_spread_full_size_decodes`).
    ``progress(n)`` is called with the number of photos just finished (1 each time). ``pool``:
    :class:`Workers` started earlier by the caller, who stops them; without it the workers are
    started here (``workers`` of them, default one per core) and stopped at the end. On an error,
    Ctrl+C or SIGTERM, photos not started yet are dropped, not waited for.

    Raises
    ------
    DeidError
        once, after every photo has been tried, listing every failing file and why. Files already
        written for other photos are left for the caller (who builds the set aside) to discard.
    OutputError
        at once when a copy cannot be written (a full disk): the photos not started are dropped.
    """
    jobs = list(jobs)
    if not jobs:
        return []
    results: list[Result | None] = [None] * len(jobs)
    errors: list[tuple[int, str]] = []
    trim = _heap_trimmer()
    if trim is not None:  # whatever the caller freed (e.g. ingest's reading threads) goes back first
        trim()
    own = pool is None
    if pool is None:
        pool = Workers(max(1, min(workers or _default_workers(), len(jobs))))
    futures: dict = {}

    def outcomes():
        """``(job index, ok, result or error)`` of each photo as it is done."""
        if pool.executor is None:
            for i, job in enumerate(jobs):
                yield (i, *_job(job))
            return
        futures.update({pool.executor.submit(_job, jobs[i]): i
                        for i in _spread_full_size_decodes(jobs)})
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                ok, value = fut.result()
            except OutputError:
                raise
            except Exception as exc:  # a worker died (e.g. killed for memory)
                ok, value = False, f"{jobs[i][0]}: the worker processing it stopped ({exc}); retry"
            yield i, ok, value

    try:
        for i, ok, value in outcomes():
            if ok:
                results[i] = value
            else:
                errors.append((i, value))
            if progress:
                progress(1)
    except BaseException:
        for fut in futures:  # photos not started yet are dropped, not waited for
            fut.cancel()
        if own:
            pool.close(cancel=True)
        raise
    if own:
        pool.close()
    if errors:
        errors.sort()
        lines = "\n".join(f"  {msg}" for _, msg in errors)
        raise DeidError(f"{len(errors)} of {len(jobs)} photo(s) could not be de-identified:\n{lines}",
                        failures=dict(errors), results=results)
    return results  # type: ignore[return-value]
