"""The files `prepare` writes: whole-or-nothing (NAME.<attempt>.tmp renamed into place), gzip that is the same
bytes on every run, JSON and JSON lines."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gptkit.files import temp_path

TMP_GLOB = ".*.tmp"  # appended to an output pattern: the attempt files temp_path makes for it


@contextmanager
def atomic_writer(path: Path, binary: bool = False, gz: bool = False) -> Iterator:
    """Write a temporary file, rename it to NAME only if the block completes (a file with its final name is
    whole). gzip files carry mtime 0 and no file name in their header, so a run's outputs compare by checksum."""
    tmp = temp_path(path)
    raw = open(tmp, "xb")  # noqa: SIM115 - closed below
    if gz:
        z = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0)
        # GzipFile compresses on every write: hand it 64 KiB at a time (text mode buffers already)
        f = io.BufferedWriter(z, 1 << 16) if binary else io.TextIOWrapper(z, encoding="utf-8")  # type: ignore[arg-type]
    else:
        f = raw if binary else io.TextIOWrapper(raw, encoding="utf-8")
    try:
        yield f
    except BaseException:
        f.close()
        raw.close()
        tmp.unlink(missing_ok=True)
        raise
    f.close()  # a GzipFile does not close the file object it was given
    raw.close()
    os.replace(tmp, path)


def write_json(path: Path, obj: object, indent: int | None = 1) -> None:
    """indent=None for data files: json's C encoder only writes without indentation (5x faster)."""
    with atomic_writer(path) as f:
        f.write(json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=True))


def read_json(path: Path) -> dict | None:
    """The file's JSON, or None when it is missing or unreadable (a marker that does not count)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
JSON_STR = json.encoder.encode_basestring  # a JSON string literal, in C (as ensure_ascii=False writes it)


def _json_value(v: object) -> str:
    return JSON_STR(v) if type(v) is str else str(v) if type(v) is int else _JSON_ENCODE(v)


def jsonl(obj: dict | list) -> str:
    """One JSON line, the same text as json.dumps(obj, ensure_ascii=False). Strings and ints, the values of the
    per-document lines, are written directly: json.dumps sets up an encoder per call, which costs more than this."""
    if isinstance(obj, dict):
        return "{" + ", ".join([JSON_STR(k) + ": " + _json_value(v) for k, v in obj.items()]) + "}\n"
    return "[" + ", ".join([_json_value(v) for v in obj]) + "]\n"


def sizes(out: Path, paths: list[Path]) -> dict[str, int]:
    """{path relative to out: size}: what a task wrote, checked before a finished stage is skipped."""
    return {str(p.relative_to(out)): p.stat().st_size for p in paths}
