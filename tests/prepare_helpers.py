"""Helpers of the prepare tests: small corpora cut from the built-in ones, output trees compared byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

from gptkit.data.sources import plan_splits, read_split, resolve_inputs


def write_news_corpus(path: Path, max_docs: int) -> None:
    """The first `max_docs` articles of builtin:zh-news as a JSONL file."""
    files = resolve_inputs(["builtin:zh-news"])
    docs = [d.text for s in plan_splits(files, 1 << 30) for d in read_split(s)][:max_docs]
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in docs), encoding="utf-8")


def output_tree(out: Path) -> dict[str, bytes]:
    """Every output file's bytes (documents, rejected, tokenizer files, shards; gzip is deterministic), the work
    directory and the timed report left out."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.relative_to(out).parts[0] != "work" and p.name != "report.json"
    }
