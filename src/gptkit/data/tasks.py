"""The tasks of `prepare` (see gptkit.data.pipeline for the stages): plain top-level functions
`task(out, item, *settings, progress=None) -> stats`, so any executor (a local process pool, Ray) runs the same
functions. Each receives its settings as config dataclasses, whole, and writes its files whole-or-nothing.

  clean_task      per input split: read, normalise, remove boilerplate lines, filter documents, and compute each
                  kept document's exact hash and MinHash signature   work/clean/NNNNN.{jsonl,ids,hash,sig}
                                                                     rejected/docs-NNNNN.jsonl.gz, lines-NNNNN...
  (dedup: gptkit.data.dedup_tasks)
  documents_task  per split: the kept documents                      documents/NNNNN.jsonl.gz
                                                                     rejected/duplicates-NNNNN.jsonl.gz
  tokenizer_task  train on the train documents or copy one, saved so that `Tokenizer.load(out)` works
  tokenize_task   per split: train / val shards (split by document)  train_NNNNN_KKKKKK.bin, val_NNNNN_KKKKKK.bin

Train / val: a document is in val when a hash of its id falls below `val_fraction`: independent of the split
plan and of the number of workers.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from gptkit.data import shards
from gptkit.data.clean import CleanConfig, CleanResult, clean_document
from gptkit.data.dedup import NO_SIGNATURE, MinHasher, SignatureConfig, batch_shingles, exact_hash, rows_to_band_major
from gptkit.data.files import JSON_STR, atomic_writer, jsonl, sizes
from gptkit.data.line_counts import RULE as REPEATED_RULE
from gptkit.data.line_counts import LineCounter, drop_repeated_lines, load_repeated
from gptkit.data.runner import Ticker, release_between_stages
from gptkit.data.sources import InputSplit, read_split
from gptkit.files import temp_path

CACHE_MAX_CHARS = 1000  # the clean tasks reuse results for exact repeats of documents up to this size ...
CACHE_ENTRIES = 32768  # ... remembering this many (tens of MB at most)
TOKENIZE_BATCH_DOCS = 512  # documents per encode_batch call


@dataclass(frozen=True)
class TokenizerConfig:
    tokenizer: str | None = None  # a directory to copy the tokenizer from, or:
    vocab_size: int | None = None  # train one of this size on the train documents
    kind: str = "bpe"
    # BPE training holds counts of every distinct pre-token in memory: train on an even sample of the train
    # documents of at most this many bytes, so memory stays bounded on large corpora
    sample_bytes: int = 256_000_000
    val_fraction: float = 0.01  # which documents are train (BPE trains on train only)


@dataclass(frozen=True)
class ShardConfig:
    val_fraction: float = 0.01
    max_shard_tokens: int = shards.DEFAULT_MAX_TOKENS


def work_dir(out: Path) -> Path:
    return out / "work"


def clean_dir(out: Path) -> Path:
    return work_dir(out) / "clean"


def unit_hash(doc_id: str, salt: bytes) -> float:
    """A document's id hashed to [0, 1): selects documents evenly, independent of the split plan."""
    h = hashlib.blake2b(doc_id.encode(), digest_size=8, salt=salt).digest()
    return int.from_bytes(h, "little") / 2.0**64


def is_val(doc_id: str, val_fraction: float) -> bool:
    """Whether a document belongs to the validation split."""
    return val_fraction > 0 and unit_hash(doc_id, b"val") < val_fraction


class CleanCache:
    """Clean results for exact repeats of short documents, which are common (web pages, review sets). It lives at
    module level so that it outlives a task: a worker process runs many splits, and repeats often fall into
    different ones. `clean_document` is a pure function of the text and the settings, so a settings change
    empties it."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.cfg: CleanConfig | None = None
        self.results: OrderedDict[str, CleanResult] = OrderedDict()
        self.sig_cfg: SignatureConfig | None = None
        self.rows: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()  # (text, lang) -> MinHash signature

    def clean(self, text: str, cfg: CleanConfig) -> CleanResult:
        if cfg is not self.cfg:  # identity first: a task passes the same object each time
            if cfg != self.cfg:
                self.clear()
            self.cfg = cfg
        res = self.results.get(text)
        if res is not None:
            self.results.move_to_end(text)
            return res
        res = clean_document(text, cfg)
        if len(text) <= CACHE_MAX_CHARS:
            self.results[text] = res
            if len(self.results) > CACHE_ENTRIES:
                self.results.popitem(last=False)
        return res

    def signatures(self, hasher: MinHasher, docs: list[tuple[str, str]]) -> np.ndarray:
        """(len(docs), num_perm) uint32: hasher's signatures of (text, lang), those of the short texts computed
        before reused (a repeat of a document of an earlier split is cleaned by the cache above, and its kept
        text is hashed again unless it is remembered here; a document's signature does not depend on the others
        in its batch)."""
        if hasher.cfg is not self.sig_cfg:
            if hasher.cfg != self.sig_cfg:
                self.rows.clear()
            self.sig_cfg = hasher.cfg
        out = np.empty((len(docs), hasher.cfg.num_perm), dtype=np.uint32)
        todo = []
        for k, doc in enumerate(docs):
            row = self.rows.get(doc)
            if row is None:
                todo.append(k)
            else:
                self.rows.move_to_end(doc)
                out[k] = row
        if todo:
            texts, langs = zip(*[docs[k] for k in todo], strict=True)
            new = hasher.signatures(batch_shingles(texts, langs, hasher.cfg.ngram))
            out[todo] = new
            for k, row in zip(todo, new, strict=True):
                if len(docs[k][0]) <= CACHE_MAX_CHARS:
                    self.rows[docs[k]] = row.copy()
                    if len(self.rows) > CACHE_ENTRIES:
                        self.rows.popitem(last=False)
        return out


CLEAN_CACHE = CleanCache()
release_between_stages(CLEAN_CACHE.clear)  # a worker that turns to the next stage's tasks lets the results go


def clean_task(
    out: str, item: list, cfg: CleanConfig, dcfg: SignatureConfig, progress: Callable[[int], None] | None = None
) -> dict:
    """Clean one input split (item: [split number, InputSplit JSON]). Writes work/clean/NNNNN.{jsonl,ids,hash,sig}
    (kept documents; per document a JSON line [id, lang, source, text bytes]; exact hashes (n, 2) uint64;
    MinHash signatures band-major (bands, n, rows) uint32), rejected/{docs,lines}-NNNNN.jsonl.gz, and the kept
    documents' line counts work/lines/NNNNN.npy (gptkit.data.line_counts: counted here, as the documents are
    written, instead of reading them back in a stage of their own)."""
    index, sp = item[0], InputSplit.from_json(item[1])
    outp = Path(out)
    hasher = MinHasher(dcfg) if dcfg.near else None
    pending: list[tuple[str, str]] = []  # (text, lang) of kept documents whose signatures are not written yet
    pending_size = 0  # their characters: about one shingle each
    seen_hashes: set[bytes] = set()  # exact hashes of this split's kept documents (16 B + overhead each)
    line_counter = LineCounter()
    stem = f"{index:05d}"
    cdir, rdir = clean_dir(outp), outp / "rejected"
    tick = Ticker(progress)
    # counts in local variables: this loop runs per document, and dict updates would cost more than the rest
    docs_in = bytes_in = docs_out = bytes_out = invalid_utf8 = entities = mojibake_docs = control_chars = 0
    doc_rules, doc_rule_bytes, line_rules, langs = Counter(), Counter(), Counter(), Counter()
    source_json = JSON_STR(sp.source)  # every document of a split comes from its one input
    t0 = time.perf_counter()
    with (
        atomic_writer(cdir / f"{stem}.jsonl") as kept_f,
        atomic_writer(cdir / f"{stem}.ids") as ids_f,
        atomic_writer(cdir / f"{stem}.hash", binary=True) as hash_f,
        atomic_writer(cdir / f"{stem}.sig.rows", binary=True) as sig_f,
        atomic_writer(rdir / f"docs-{stem}.jsonl.gz", gz=True) as rdoc_f,
        atomic_writer(rdir / f"lines-{stem}.jsonl.gz", gz=True) as rline_f,
    ):

        def flush_signatures() -> None:
            nonlocal pending_size
            if pending:
                if hasher:
                    sig_f.write(CLEAN_CACHE.signatures(hasher, pending).tobytes())
                else:
                    sig_f.write(np.full((len(pending), dcfg.num_perm), NO_SIGNATURE, dtype=np.uint32).tobytes())
                pending.clear()
                pending_size = 0

        for doc in read_split(sp):
            res = CLEAN_CACHE.clean(doc.text, cfg)
            docs_in += 1
            bytes_in += doc.n_bytes
            invalid_utf8 += doc.bad_bytes
            entities += res.stats.entities
            mojibake_docs += res.stats.mojibake_fixed
            control_chars += res.stats.removed_chars
            for line_no, rule, text in res.dropped_lines:
                line_rules[rule] += 1
                rline_f.write(jsonl({"id": doc.id, "line": line_no, "rule": rule, "text": text}))
            if res.text is None:
                doc_rules[res.rule] += 1
                doc_rule_bytes[res.rule] += doc.n_bytes
                rdoc_f.write(
                    jsonl(
                        {"id": doc.id, "source": doc.source, "lang": res.lang, "rule": res.rule, "text": res.normalized}
                    )
                )
            else:
                n_bytes = len(res.text.encode())
                docs_out += 1
                bytes_out += n_bytes
                langs[res.lang] += 1
                # the lines jsonl() would write for {"id", "text", "source", "lang"} and [id, lang, source, bytes],
                # formatted here: they are written for every kept document
                id_json, text_json, lang_json = JSON_STR(doc.id), JSON_STR(res.text), JSON_STR(res.lang)
                kept_f.write(
                    f'{{"id": {id_json}, "text": {text_json}, "source": {source_json}, "lang": {lang_json}}}\n'
                )
                ids_f.write(f"[{id_json}, {lang_json}, {source_json}, {n_bytes}]\n")
                line_counter.add(res.text)
                eh = exact_hash(res.text)
                hash_f.write(eh)
                # an exact repeat of a document earlier in this split is dropped by exact dedup and never
                # compared by MinHash: it needs no signature
                repeat = dcfg.exact and eh in seen_hashes
                seen_hashes.add(eh)
                pending.append(("", "zh") if repeat else (res.text, res.lang))  # "" has no shingles
                pending_size += len(res.text)
                if pending_size >= MinHasher.BATCH_SHINGLES:
                    flush_signatures()
            tick(doc.n_bytes)
        flush_signatures()
    rows_path = cdir / f"{stem}.sig.rows"
    with atomic_writer(cdir / f"{stem}.sig", binary=True) as f:  # band-major for the dedup task
        rows_to_band_major(rows_path, f, dcfg.num_perm, dcfg.bands)
    rows_path.unlink()
    line_counter.save(outp, index)
    tick.flush()
    totals = {"docs_in": docs_in, "bytes_in": bytes_in, "docs_out": docs_out, "bytes_out": bytes_out}
    st = {
        **totals, "sources": {sp.source: totals} if docs_in else {}, "doc_rules": doc_rules,
        "doc_rule_bytes": doc_rule_bytes, "line_rules": line_rules, "lang": langs, "invalid_utf8": invalid_utf8,
        "entities": entities, "mojibake_docs": mojibake_docs, "control_chars": control_chars,
        "seconds": time.perf_counter() - t0,
    }  # fmt: skip
    return json.loads(json.dumps(st))  # Counters -> plain dicts


def documents_task(out: str, index: int, progress: Callable[[int], None] | None = None) -> dict:
    """Write the documents of one split that survived dedup -> documents/NNNNN.jsonl.gz; the duplicates ->
    rejected/duplicates-NNNNN.jsonl.gz (with the id of the document kept in their place)."""
    outp = Path(out)
    stem = f"{index:05d}"
    drops = {
        int(local): (rule, of)
        for local, rule, of in json.loads((work_dir(outp) / "dedup" / f"{stem}.json").read_text())
    }
    st: dict = {"docs": 0, "bytes": 0, "lang": Counter(), "sources": {}, "duplicates": Counter(), "seconds": 0.0,
                "repeated_lines": 0, "emptied_by_repeated_lines": 0}  # fmt: skip
    tick = Ticker(progress)
    t0 = time.perf_counter()
    cdir = clean_dir(outp)
    repeated = load_repeated(outp)  # corpus-level repeated lines (gptkit.data.line_counts); usually few or none
    with (
        open(cdir / f"{stem}.jsonl", "rb") as src,  # bytes: kept lines are copied without decoding them
        open(cdir / f"{stem}.ids", "rb") as meta,
        atomic_writer(outp / "documents" / f"{stem}.jsonl.gz", binary=True, gz=True) as kept_f,
        atomic_writer(outp / "rejected" / f"duplicates-{stem}.jsonl.gz", binary=True, gz=True) as dup_f,
        atomic_writer(outp / "rejected" / f"corpus-lines-{stem}.jsonl.gz", gz=True) as rline_f,
    ):
        if not repeated:  # (nearly always) the kept lines are copied in runs between the dropped ones
            _copy_documents(src, meta, drops, st, tick, kept_f, dup_f)
        else:
            _edit_documents(src, meta, drops, repeated, st, tick, kept_f, dup_f, rline_f)
    tick.flush()
    st["seconds"] = time.perf_counter() - t0
    st["outputs"] = sizes(outp, [outp / "documents" / f"{stem}.jsonl.gz"])
    return json.loads(json.dumps(st))


def _duplicate_line(line: bytes, rule: str, of: str) -> bytes:
    """A kept document's JSON line as a duplicate's: two more fields appended without parsing it (b'...}\\n')."""
    return line[:-2] + f', "rule": {JSON_STR(rule)}, "duplicate_of": {JSON_STR(of)}}}\n'.encode()


def _count_kept(st: dict, infos: list) -> None:
    """Add kept documents' [id, lang, source, bytes] to the documents task's stats (in their order, so the
    counts' keys come in the order _edit_documents adds them)."""
    st["docs"] += len(infos)
    st["lang"].update(info[1] for info in infos)
    sources = dict.fromkeys(info[2] for info in infos)  # one, unless the split is a group of files
    for source in sources:
        mine = infos if len(sources) == 1 else [info for info in infos if info[2] == source]
        n = sum(info[3] for info in mine)
        s = st["sources"].setdefault(source, {"docs": 0, "bytes": 0})
        s["docs"] += len(mine)
        s["bytes"] += n
        st["bytes"] += n


DOCUMENTS_CHUNK_BYTES = 1 << 20  # _copy_documents reads the kept lines this much at a time


def _copy_documents(src, meta, drops: dict, st: dict, tick: Ticker, kept_f, dup_f) -> None:
    """documents_task without corpus-repeated lines: the kept lines are copied in runs between the duplicates,
    their [id, lang, source, bytes] parsed a chunk at a time (the same files and stats as _edit_documents with
    nothing to edit: tests/test_prepare_structure.py)."""
    drop_at = sorted(drops)
    d = 0  # drop_at[d]: the next duplicate
    base = 0  # local index of the chunk's first line
    while True:
        lines = src.readlines(DOCUMENTS_CHUNK_BYTES)
        if not lines:
            break
        infos_raw = list(itertools.islice(meta, len(lines)))
        if len(infos_raw) != len(lines):
            raise ValueError(f"documents_task: {len(infos_raw)} id lines for {len(lines)} documents")
        infos = orjson.loads(b"[" + b",".join(infos_raw) + b"]")  # our own JSON lines: read as json reads them
        end = base + len(lines)
        prev = 0
        kept_infos = []
        while d < len(drop_at) and drop_at[d] < end:
            k = drop_at[d] - base
            kept_f.write(b"".join(lines[prev:k]))
            kept_infos += infos[prev:k]
            rule, of = drops[drop_at[d]]
            st["duplicates"][rule] += 1
            dup_f.write(_duplicate_line(lines[k], rule, of))
            prev = k + 1
            d += 1
        kept_f.write(b"".join(lines[prev:]))
        kept_infos += infos[prev:]
        _count_kept(st, kept_infos)
        tick(sum(map(len, lines)))
        base = end
    if meta.readline():
        raise ValueError("documents_task: more id lines than documents")


def _edit_documents(src, meta, drops: dict, repeated: frozenset[int], st: dict, tick: Ticker, kept_f, dup_f,
                    rline_f) -> None:  # fmt: skip
    """documents_task with corpus-repeated lines to drop: each kept document parsed, edited, written again."""
    for local, (line, info) in enumerate(zip(src, meta, strict=True)):
        if local in drops:
            rule, of = drops[local]
            st["duplicates"][rule] += 1
            dup_f.write(_duplicate_line(line, rule, of))
        else:
            _, lang, source, n = orjson.loads(info)  # our own JSON: orjson reads it as json does
            doc = json.loads(line)
            text, dropped = drop_repeated_lines(doc["text"], repeated)
            if dropped:
                st["repeated_lines"] += len(dropped)
                for line_no, t in dropped:
                    rline_f.write(jsonl({"id": doc["id"], "line": line_no, "rule": REPEATED_RULE, "text": t}))
                if not text.strip():
                    st["emptied_by_repeated_lines"] += 1
                    continue
                doc["text"] = text
                line = jsonl(doc).encode()
                n = len(text.encode())
            st["docs"] += 1
            st["bytes"] += n
            st["lang"][lang] += 1
            s = st["sources"].setdefault(source, {"docs": 0, "bytes": 0})
            s["docs"] += 1
            s["bytes"] += n
            kept_f.write(line)
        tick(len(line))


def iter_documents(out: Path, split: str | None = None, val_fraction: float = 0.0) -> Iterator[dict]:
    """The kept documents of a prepared directory, in order; `split` = "train" / "val" selects by id."""
    for path in sorted((out / "documents").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                if split is None or (split == "val") == is_val(doc["id"], val_fraction):
                    yield doc


def tokenizer_task(
    out: str,
    item: int,
    cfg: TokenizerConfig,
    source: list | None,
    train_bytes: int,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Train a tokenizer on the train documents (cfg.vocab_size; train_bytes: their total, for the sample rate)
    or copy one (cfg.tokenizer; source: its files' names, sizes and times, so that a changed one re-runs this)
    into the output directory. A progress callback turns on the trainer's own progress bar."""
    from gptkit.tokenizer import Tokenizer

    outp = Path(out)
    t0 = time.perf_counter()
    sampled = 0
    if cfg.tokenizer:
        tok = Tokenizer.load(cfg.tokenizer)
    else:
        # a char tokenizer can only encode characters it has seen: its vocabulary comes from every document
        # (train and val, no sampling); BPE is byte-level and trains on a sample of the train documents
        char = cfg.kind == "char"
        rate = 1.0 if char else min(1.0, cfg.sample_bytes / max(1, train_bytes))

        def texts() -> Iterator[str]:
            nonlocal sampled
            for d in iter_documents(outp, None if char else "train", cfg.val_fraction):
                if rate >= 1.0 or unit_hash(d["id"], b"tokenizer") < rate:
                    sampled += len(d["text"].encode())
                    yield d["text"]

        tok = Tokenizer.train(texts(), cfg.vocab_size, kind=cfg.kind, progress=progress is not None)
    scratch = temp_path(work_dir(outp) / "tokenizer")
    tok.save(scratch)
    written = sorted(p.name for p in scratch.iterdir())
    for name in written:
        os.replace(scratch / name, outp / name)
    scratch.rmdir()
    return {
        "vocab_size": tok.vocab_size, "fingerprint": tok.fingerprint, "eot_id": tok.eot_id, "kind": tok.kind,
        "files": written, "trained_on_bytes": sampled, "seconds": time.perf_counter() - t0,
    }  # fmt: skip


def tokenize_task(out: str, index: int, cfg: ShardConfig, progress: Callable[[int], None] | None = None) -> dict:
    """Encode one split's documents -> train_NNNNN_KKKKKK.bin and val_NNNNN_KKKKKK.bin (every document starts
    with the end-of-text token, which is also BOS)."""
    from gptkit.tokenizer import Tokenizer

    outp = Path(out)
    tok = Tokenizer.load(outp)
    path = outp / "documents" / f"{index:05d}.jsonl.gz"
    frac = cfg.val_fraction
    st = {"tokens": {"train": 0, "val": 0}, "docs": {"train": 0, "val": 0}, "shards": {"train": 0, "val": 0}}
    t0 = time.perf_counter()
    tick = Ticker(progress)
    batch = TOKENIZE_BATCH_DOCS
    written_all: list[Path] = []
    for split in ("train", "val"):

        def encoded(split: str = split) -> Iterator[np.ndarray]:
            texts: list[str] = []

            def flush() -> Iterator[np.ndarray]:
                for ids in tok.encode_batch(texts):
                    arr = np.empty(len(ids) + 1, dtype=np.int64)
                    arr[0] = tok.eot_id
                    arr[1:] = ids
                    st["tokens"][split] += len(arr)
                    st["docs"][split] += 1
                    yield arr
                texts.clear()

            with gzip.open(path, "rt", encoding="utf-8") as f:
                for line in f:
                    doc = json.loads(line)
                    if (split == "val") == is_val(doc["id"], frac):
                        texts.append(doc["text"])
                        if split == "train":
                            tick(len(line))
                        if len(texts) >= batch:
                            yield from flush()
            if texts:
                yield from flush()

        written = shards.write_shards(
            outp, f"{split}_{index:05d}", encoded(), vocab_size=tok.vocab_size, bos_id=tok.eot_id,
            tokenizer_fingerprint=tok.fingerprint, max_tokens=cfg.max_shard_tokens,
        )  # fmt: skip
        st["shards"][split] = len(written)
        written_all += written
    tick.flush()
    st["seconds"] = time.perf_counter() - t0
    st["outputs"] = sizes(outp, written_all)
    return st
