"""Memory of a process tree, for the benchmarks: peak RSS and PSS sampled from ``/proc`` (Linux).

PSS counts pages shared between processes once, in shares, so it is the honest sum for a tree of
processes (a parent and its workers or helpers).
"""

from __future__ import annotations

import os
import threading

PAGE = os.sysconf("SC_PAGE_SIZE")


def _name(pid: int) -> str:
    """A short name for a process: a multiprocessing worker or resource tracker by its role, any
    other by its program and first argument."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            words = [w.decode(errors="replace") for w in fh.read().split(b"\0") if w]
    except OSError:
        return str(pid)
    text = " ".join(words)
    if "resource_tracker" in text:
        return "resource tracker"
    if "spawn_main" in text or "forkserver" in text:
        return "worker"
    return " ".join(os.path.basename(w) for w in words[:2]) or str(pid)


class TreeSampler:
    """Peak RSS and PSS of a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self.max_procs = 0
        self.at_peak: list[tuple[str, int]] = []  # (process name, PSS bytes) when PSS peaked
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    def _run(self) -> None:
        tick, tree = 0, [self.pid]
        while not self._stop.is_set():
            rss = pss = 0
            parts = []
            if tick % 5 == 0:  # the process list changes rarely; reading it is the costly part
                tree = self._tree()
            tick += 1
            for pid in tree:
                try:
                    with open(f"/proc/{pid}/statm") as fh:
                        rss += int(fh.read().split()[1]) * PAGE
                    with open(f"/proc/{pid}/smaps_rollup") as fh:
                        for line in fh:
                            if line.startswith("Pss:"):
                                share = int(line.split()[1]) * 1024
                                pss += share
                                parts.append((pid, share))
                                break
                except (OSError, ValueError, IndexError):
                    continue
            if pss > self.peak_pss:
                self.at_peak = [(_name(pid), share) for pid, share in parts]
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.max_procs = max(self.max_procs, len(tree))
            self._stop.wait(self.interval)
