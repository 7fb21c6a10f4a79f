"""Crash-safe file writes, shared by every module that persists state (no heavy imports here)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def temp_path(path: str | os.PathLike) -> Path:
    """A name beside `path` for one attempt at writing it: NAME.PID-RANDOM.tmp. Unique per attempt, so two
    attempts at the same output (a task retried on another worker while the first still runs) never write
    into one file; `*.tmp` finds the leftovers of killed attempts."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the whole new one.

    The temporary file is opened like any new file (mode 0666 less the umask), so the result has the
    permissions a plain write would give it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
