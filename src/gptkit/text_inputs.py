"""Text for tokenizer training: paths (every input type `gptkit prepare` reads, directories of them,
builtin:NAME) or strings.

Paths are resolved by `gptkit.data.sources.resolve_inputs`, the one resolver of all commands (same suffixes,
same encoding detection). `iter_texts(inputs)` yields pieces of text in input order. A text file is yielded in
chunks of whole lines of about 1 MB (a file is not one document, and BPE training only counts pre-tokens, so
chunking changes its counts only where a pre-token would span a chunk boundary); a .jsonl(.gz) file yields the
"text" field of each line; other inputs (built-in corpora) yield their documents. With `progress=True` a rich
progress bar counts the bytes read from disk.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Union

from gptkit.data.encoding import WIDE_ENCODINGS
from gptkit.data.sources import (
    BUILTIN_PREFIX,
    SUPPORTED_SUFFIXES,
    InputFile,
    SourceError,
    plan_splits,
    read_split,
    resolve_inputs,
)

TextInputs = Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]
CHUNK_CHARS = 1 << 20
TextInputError = SourceError  # one error for a bad input, whichever command reads it


def resolve_paths(inputs: Iterable[str | os.PathLike]) -> list[InputFile]:
    """The files named by `inputs` (files, directories expanded sorted and recursively, builtin:NAME), with
    their kinds and encodings: `gptkit.data.sources.resolve_inputs`."""
    return resolve_inputs([os.fspath(item) for item in inputs])


def split_inputs(inputs: TextInputs) -> tuple[list[InputFile] | None, Iterable[str] | None]:
    """(paths, None) when `inputs` names files, else (None, the iterable of strings).

    A single str/PathLike is a path. An iterable is read as paths when its first item is a PathLike, or a
    str that names an existing file or directory, a builtin:NAME, or looks like a file name (no whitespace,
    ending in a supported suffix; a missing one is then an error, not a text); otherwise its items are the texts.
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
    if os.path.exists(item) or (item.startswith(BUILTIN_PREFIX) and " " not in item):
        return True
    return item.lower().endswith(SUPPORTED_SUFFIXES) and not any(c.isspace() for c in item)


def _chain_first(first: object, iterator: Iterator) -> Iterator:
    yield first
    yield from iterator


def iter_texts(inputs: TextInputs, *, progress: bool = False) -> Iterator[str]:
    """Texts from paths or strings (see `split_inputs`); strings must be str, files valid in their encoding."""
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
        task = bar.add_task("reading", total=sum(f.size for f in paths))
        for f in paths:
            bar.update(task, description=f"reading {Path(f.path).name}")
            yield from _iter_file(f, lambda n: bar.advance(task, n))


def _iter_file(f: InputFile, advance) -> Iterator[str]:
    """Texts of one input file; `advance(n)` is told the bytes read from disk as reading goes."""
    if f.kind not in ("file", "lines", "jsonl", "jsonl.gz") or f.encoding in WIDE_ENCODINGS:
        for split in plan_splits([f], max(1, f.size)):  # built-in corpora, UTF-16/32: the prepare readers
            for doc in read_split(split):
                yield doc.text
        if advance is not None:
            advance(f.size)
        return
    path = Path(f.path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below; we read its position for progress
    except OSError as e:
        raise TextInputError(f"{path}: cannot be read ({e.strerror})") from None
    with raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
        text = io.TextIOWrapper(stream, encoding=f.encoding, newline="")
        jsonl = f.kind in ("jsonl", "jsonl.gz")
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
            raise TextInputError(f"{path}: not valid {f.encoding} ({e.reason} at byte {e.start} of a block)") from None
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
