"""Processes from /proc (Linux): a process and everything it started, and their resident memory."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path


def process_tree(root: int) -> list[int]:
    """`root` and every live process descended from it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakMemory:
    """Peak resident memory (MiB) of groups of processes while the `with` block runs, sampled every 20 ms.

    `groups()` names the processes to watch ({name: pids}, summed per name); it is asked again at
    every sample, so processes started inside the block count too.
    """

    def __init__(self, groups: Callable[[], dict[str, list[int]]]):
        self.groups = groups
        self.before = self._sizes()
        self.peak = dict(self.before)
        self._done = threading.Event()

    def _sizes(self) -> dict[str, float]:
        return {name: sum(rss_mb(pid) for pid in pids) for name, pids in self.groups().items()}

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            for name, size in self._sizes().items():
                self.peak[name] = max(self.peak.get(name, 0.0), size)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()
