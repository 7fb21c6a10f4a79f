"""How many CPU cores other work will take from this process: the threads of other processes that are running
now at this process's priority or higher (Linux /proc), sampled a few times.

Why not the load average: it lags by minutes and counts every runnable thread, including background jobs at
nice 19 that a normal-priority process preempts at once. On a 2-core machine whose other core runs such a job,
PyTorch's 2 threads still run at full speed; with a job at the same priority they wait for each other at every
operation (one run here: 407 s at 2 threads against 241 s at 1).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")


def competing_threads(samples: int = 5, interval_s: float = 0.04) -> float | None:
    """Mean number of other running threads at this process's nice value or lower over `samples` looks;
    None where /proc is not available."""
    if not (PROC / "self" / "task").is_dir():
        return None
    me, my_nice = os.getpid(), os.nice(0)
    counts = []
    for i in range(samples):
        if i:
            time.sleep(interval_s)
        counts.append(sum(1 for state, nice in _thread_states(me) if state == "R" and nice <= my_nice))
    return sum(counts) / len(counts)


def _thread_states(skip_pid: int) -> list[tuple[str, int]]:
    """(state, nice) of every thread of every process but `skip_pid`."""
    out = []
    for proc in PROC.iterdir():
        if not proc.name.isdigit() or int(proc.name) == skip_pid:
            continue
        try:
            tasks = list((proc / "task").iterdir())
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
        for task in tasks:
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            # Fields after the parenthesised command name: state is field 3 of stat(5), nice field 19.
            fields = stat[stat.rindex(")") + 2 :].split()
            out.append((fields[0], int(fields[16])))
    return out


def cpu_threads_to_use() -> int:
    """Torch threads for a CPU job: 0 (PyTorch's default, one per core) when no other work at this priority is
    running; else the cores left, at least 1. Falls back on the load average where /proc is missing."""
    cores = os.cpu_count() or 1
    busy = competing_threads()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:  # not available on this platform either
            return 0
    if busy < 0.5:
        return 0
    return max(1, cores - round(busy))
