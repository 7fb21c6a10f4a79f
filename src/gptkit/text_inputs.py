"""Text for tokenizer training: paths (.txt, .jsonl, .jsonl.gz, directories of them) or strings.

`iter_texts(inputs)` yields pieces of text in input order. A .txt file is yielded in chunks of whole
lines of about 1 MB (a file is not one document, and BPE training only counts pre-tokens, so chunking
changes its counts only where a pre-token would span a chunk boundary); a .jsonl(.gz) file yields the
"text" field of each line. With `progress=True` a rich progress bar counts the bytes read from disk.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Union

from gptkit.errors import GptkitError

TextInputs = Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]
TEXT_SUFFIXES = (".txt", ".jsonl", ".jsonl.gz")
CHUNK_CHARS = 1 << 20


class TextInputError(GptkitError, ValueError):
    """An input path is missing or unreadable, or a .jsonl line has no "text" string."""


def _is_text_file(path: Path) -> bool:
    return path.name.endswith(TEXT_SUFFIXES)


def resolve_paths(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named by `inputs`, directories expanded (sorted, recursively) to their .txt/.jsonl(.gz) files."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_text_file(p))
            if not found:
                raise TextInputError(f"{path}: directory holds no {', '.join(TEXT_SUFFIXES)} files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise TextInputError(f"{path}: no such file or directory")
    return files


def split_inputs(inputs: TextInputs) -> tuple[list[Path] | None, Iterable[str] | None]:
    """(paths, None) when `inputs` names files, else (None, the iterable of strings).

    A single str/PathLike is a path. An iterable is read as paths when its first item is a PathLike, or a
    str that names an existing file or directory or looks like a file name (no whitespace, ending in .txt,
    .jsonl or .jsonl.gz; a missing one is then an error, not a text); otherwise its items are the texts.
    """
    if isinstance(inputs, (str, os.PathLike)):
        return resolve_paths([inputs]), None
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise TextInputError("no inputs given (an empty list)")
        if _is_path(inputs[0]):
            return resolve_paths(inputs), None
        return None, inputs
    # A generator or other one-shot iterable: peek at the first item without losing it.
    iterator = iter(inputs)
    try:
        first = next(iterator)
    except StopIteration:
        raise TextInputError("no inputs given (an empty iterable)") from None
    rest = _chain_first(first, iterator)
    if _is_path(first):
        return resolve_paths(list(rest)), None
    return None, rest


def _is_path(item: object) -> bool:
    if isinstance(item, os.PathLike):
        return True
    if not isinstance(item, str) or len(item) > 4096 or "\0" in item or "\n" in item:
        return False
    return os.path.exists(item) or (item.endswith(TEXT_SUFFIXES) and not any(c.isspace() for c in item))


def _chain_first(first: object, iterator: Iterator) -> Iterator:
    yield first
    yield from iterator


def iter_texts(inputs: TextInputs, *, progress: bool = False) -> Iterator[str]:
    """Texts from paths or strings (see `split_inputs`); strings must be str, files valid UTF-8."""
    paths, texts = split_inputs(inputs)
    if texts is not None:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TextInputError(f"input item {i} is {type(text).__name__}, expected str (a text or a path)")
            yield text
        return
    assert paths is not None
    if not progress:
        for path in paths:
            yield from _iter_file(path, None)
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("reading", total=sum(p.stat().st_size for p in paths))
        for path in paths:
            bar.update(task, description=f"reading {path.name}")
            yield from _iter_file(path, lambda n: bar.advance(task, n))


def _iter_file(path: Path, advance) -> Iterator[str]:
    """Texts of one file; `advance(n)` is told the bytes read from disk as reading goes."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below; we read its position for progress
    except OSError as e:
        raise TextInputError(f"{path}: cannot be read ({e.strerror})") from None
    with raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        jsonl = path.name.endswith((".jsonl", ".jsonl.gz"))
        done = 0
        try:
            chunk: list[str] = []
            size = 0
            for lineno, line in enumerate(text, 1):
                if jsonl:
                    if line.strip():
                        yield _jsonl_text(line, path, lineno)
                else:
                    chunk.append(line)
                    size += len(line)
                    if size >= CHUNK_CHARS:
                        yield "".join(chunk)
                        chunk, size = [], 0
                if advance is not None and lineno % 1024 == 0:
                    pos = raw.tell()
                    advance(pos - done)
                    done = pos
            if chunk:
                yield "".join(chunk)
        except UnicodeDecodeError as e:
            raise TextInputError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start} of a block)") from None
        except (OSError, EOFError) as e:
            raise TextInputError(f"{path}: cannot be read ({e})") from None
        if advance is not None:
            advance(raw.tell() - done)


def _jsonl_text(line: str, path: Path, lineno: int) -> str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise TextInputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    text = obj.get("text") if isinstance(obj, dict) else None
    if not isinstance(text, str):
        raise TextInputError(f'{path}:{lineno}: expected an object with a string "text" field')
    return text
