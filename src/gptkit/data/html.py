"""HTML and WARC input: the main text of web pages, which then goes through the same cleaner as text input.

    extract_text(raw)        main content of one HTML page (bytes, any encoding) as plain text, one block a line
    iter_warc_pages(path)    (target URI, HTML bytes) of every HTML response record of a .warc / .warc.gz file

Main-content extraction is a library's job. Both well-kept candidates were measured on the same ~1,000 real
pages (benchmarks/html_extract.py, trafilatura's evaluation set): `EXTRACTORS` holds both so the benchmark
runs them side by side; `extract_text` uses resiliparse (HTML2Text with main_content=True: its DOM is in C++;
it was ~11x faster there and found slightly more of the content, leaving more boilerplate for gptkit's cleaner
to remove: see docs/prepare.md). WARC archives are read with FastWARC (a dependency of resiliparse). Both need
the `html` extra: pip install "gptkit[html]".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from gptkit.errors import GptkitError

HTML_SUFFIXES = (".html", ".htm")
WARC_SUFFIXES = (".warc", ".warc.gz")


class HtmlInputError(GptkitError, ValueError):
    """HTML / WARC input without the library that reads it, or a file that is not a readable WARC."""


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise HtmlInputError(f"HTML and WARC input need {module.split('.')[0]}: pip install 'gptkit[html]'") from None


def extract_resiliparse(raw: bytes) -> str:
    encoding = _need("resiliparse.parse.encoding")
    html2text = _need("resiliparse.extract.html2text")
    tree = _need("resiliparse.parse.html").HTMLTree.parse(encoding.bytes_to_str(raw, encoding.detect_encoding(raw)))
    return html2text.extract_plain_text(tree, main_content=True, alt_texts=False, links=False, noscript=False)


def extract_trafilatura(raw: bytes) -> str:
    trafilatura = _need("trafilatura")
    text = trafilatura.extract(raw, include_comments=False, include_tables=True, deduplicate=False)
    return text or ""


EXTRACTORS: dict[str, Callable[[bytes], str]] = {"resiliparse": extract_resiliparse, "trafilatura": extract_trafilatura}
extract_text = extract_resiliparse


def iter_warc_pages(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """(URI, HTML payload) of the HTML response records of a WARC file (gzip-compressed or not)."""
    warc = _need("fastwarc.warc")
    try:
        with open(path, "rb") as f:
            for record in warc.ArchiveIterator(f, record_types=warc.WarcRecordType.response, parse_http=True):
                content_type = (record.http_headers.get("Content-Type") or "") if record.http_headers else ""
                if "html" not in content_type.lower():
                    continue
                yield record.headers.get("WARC-Target-URI") or "", record.reader.read()
    except OSError as e:
        raise HtmlInputError(f"{path}: not a readable WARC file ({e})") from None


__all__ = ["EXTRACTORS", "HTML_SUFFIXES", "WARC_SUFFIXES", "HtmlInputError", "extract_text", "iter_warc_pages"]
