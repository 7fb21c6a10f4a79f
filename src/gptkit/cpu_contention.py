"""How many CPU cores other work will take from this process: the CPU time that other processes at this
process's priority or higher use over a fraction of a second (Linux /proc).

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


def competing_threads(window_s: float = 0.3) -> float | None:
    """Cores' worth of CPU time that other processes at this process's nice value or lower used over the
    next `window_s` seconds; None where /proc is not available.

    CPU time used, not threads seen running: a process that wakes up briefly (a monitor scanning /proc, a
    kernel worker) is often caught in state R by a snapshot but takes a few percent of a core, which must
    not halve the demo's threads (it did once: a 0.04 s sampler saw a busy machine under the bench lock)."""
    if not (PROC / "self" / "stat").is_file():
        return None
    me, my_nice = os.getpid(), os.nice(0)
    t0, before = time.perf_counter(), _cpu_ticks(me, my_nice)
    time.sleep(window_s)
    t1, after = time.perf_counter(), _cpu_ticks(me, my_nice)
    used = sum(ticks - before[pid] for pid, ticks in after.items() if pid in before)
    return used / os.sysconf("SC_CLK_TCK") / (t1 - t0)


def _cpu_ticks(skip_pid: int, max_nice: int) -> dict[int, int]:
    """pid -> user + system CPU time (clock ticks) of every process but `skip_pid` at nice <= max_nice."""
    out = {}
    for proc in PROC.iterdir():
        if not proc.name.isdigit() or int(proc.name) == skip_pid:
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
        # Fields after the parenthesised command name: stat(5) field 3 (state) is index 0, so utime (14) and
        # stime (15) are indexes 11 and 12, nice (19) index 16.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[16]) <= max_nice:
            out[int(proc.name)] = int(fields[11]) + int(fields[12])
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
