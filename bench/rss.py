"""Peak resident memory of a process and its children (default: this process), sampled from /proc."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            for child in children:
                pids += _tree(int(child))
    except OSError:
        pass
    return pids


class RssSampler:
    """Samples the summed RSS of `pid`'s process tree every `interval` s; `samples` is [(monotonic, MiB)]."""

    def __init__(self, interval: float = 0.05, pid: int | None = None):
        self.interval = interval
        self.pid = pid or os.getpid()
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            kb = sum(_rss_kb(p) for p in _tree(self.pid))
            self.samples.append((time.monotonic(), kb / 1024))
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float | None = None, end: float | None = None) -> float:
        values = [mb for t, mb in self.samples if (start is None or t >= start) and (end is None or t <= end)]
        return round(max(values, default=0.0), 1)
