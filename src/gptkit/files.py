"""Crash-safe file and directory writes, shared by every module that persists state (no heavy imports here)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
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


def check_destination(out: str | os.PathLike, sources: tuple[str | os.PathLike, ...], force: bool) -> None:
    """Refuse to write directory `out` where that would destroy an input or another directory's files: `out` is
    one of `sources`, inside one, or holds one (even with `force`); or `out` is a non-empty directory or a
    file (unless `force`, which replaces it). Raises GptkitError naming `out`."""
    from gptkit.errors import GptkitError

    dest = Path(out).resolve()
    for src in sources:
        s = Path(src).resolve()
        if dest == s:
            raise GptkitError(f"{out}: is the source directory itself; write to another directory")
        if s in dest.parents:
            raise GptkitError(f"{out}: is inside the source directory {src}; write to another directory")
        if dest in s.parents:
            raise GptkitError(f"{out}: holds the source directory {src}; write to another directory")
    if dest.is_file() or dest.is_symlink():
        if not force:
            raise GptkitError(f"{out}: exists and is not a directory; pass --force to replace it")
    elif dest.is_dir() and any(dest.iterdir()) and not force:
        raise GptkitError(f"{out}: exists and is not empty; pass --force to replace its contents")


@contextmanager
def directory_written_atomically(out: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside `out`; when the block succeeds, it replaces `out` (whatever
    was there is removed only then), and when it fails, it is removed and `out` stays as it was."""
    dest = Path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.{secrets.token_hex(4)}"
    tmp = dest.with_name(f".{dest.name}.tmp-{tag}")
    tmp.mkdir()
    try:
        yield tmp
        old = dest.with_name(f".{dest.name}.old-{tag}")
        moved = dest.is_dir() and not dest.is_symlink()
        if moved:
            os.rename(dest, old)
        elif dest.exists() or dest.is_symlink():
            dest.unlink()
        try:
            os.rename(tmp, dest)
        except BaseException:
            if moved:
                os.rename(old, dest)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
