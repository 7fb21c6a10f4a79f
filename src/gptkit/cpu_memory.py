"""Keep freed memory in the process on glibc, so a CPU training step does not page-fault its tensors in afresh.

glibc serves a large allocation (above its mmap threshold, which it raises on its own up to the largest block
freed) with a fresh mmap, and gives the top of its heap back to the kernel once more than its trim threshold is
free. A CPU training step allocates and frees the same large activations and logits chunks every step, so the
kernel maps and zero-fills them again each time: the demo's model (4 x 128, 8k vocabulary, batch 16 x 128) took
13-17 thousand minor page faults a step and 34-45 ms of system time (about 7% of its one-thread step). With
the mmap threshold fixed at glibc's maximum (32 MiB) and the trim threshold at 1 GiB the heap keeps what it
was given: about 1-2 thousand faults and 2-5 ms (docs/training.md, round 9). The cost is that the process keeps
its peak heap until it exits, which a training run would reach again next step anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 1024 * 1024 * 1024

_done = False


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed memory (once per process); False where that is not available (not Linux,
    not glibc: musl and others have no mallopt, or ignore these parameters)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
