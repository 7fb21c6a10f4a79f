"""`prepare`: raw text -> clean, deduplicated documents -> tokenizer -> token shards, with a report.

Stages, each a set of independent tasks. A task is a plain top-level function (input split -> files in the
output directory -> a stats dict), so a cluster engine can run the same functions elsewhere:

  plan        inputs -> input splits                               work/plan.json
  clean       per split: read, normalise, remove boilerplate lines, filter documents, and compute each kept
              document's exact hash and MinHash signature          work/clean/NNNNN.{jsonl,ids,hash,sig}
                                                                   rejected/docs-NNNNN.jsonl.gz, lines-NNNNN...
  dedup       one task over all splits: exact + near duplicates    work/dedup/NNNNN.json
  documents   per split: the kept documents                       documents/NNNNN.jsonl.gz
                                                                   rejected/duplicates-NNNNN.jsonl.gz
  tokenizer   train on the train documents (vocab_size) or load one; saved into the output directory so
              that `Tokenizer.load(out)` works                      gptkit_tokenizer.json, tokenizer.json, ...
  tokenize    per split: train / val shards (split by document)    train_NNNNN_KKKKKK.bin, val_NNNNN_KKKKKK.bin

Resuming: every task writes NAME.tmp and renames it when complete, then the runner writes the task's
marker (work/state/STAGE/NNNNN.json) holding the stage's hash. The stage marker (work/state/STAGE.json) is
written last. A stage's hash covers its settings, the rules version and the hash of the stage before it, so
re-running with the same arguments skips finished stages and finished tasks, and changing an argument
re-runs that stage and everything after it (after removing the stale outputs).

Train / val: a document is in val when a hash of its id falls below `val_fraction`: independent of the
split plan and of the number of workers.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gptkit.data import shards
from gptkit.data.clean import RULES_VERSION, CleanConfig, CleanResult, clean_document
from gptkit.data.dedup import (
    NO_SIGNATURE,
    RULES,
    DedupConfig,
    MinHasher,
    batch_shingles,
    exact_hash,
    find_duplicates,
    rows_to_band_major,
)
from gptkit.data.filters import FilterConfig
from gptkit.data.sources import (
    InputFile,
    InputSplit,
    default_split_bytes,
    encodings_of,
    inputs_fingerprint,
    plan_splits,
    read_split,
    resolve_inputs,
    total_bytes,
)
from gptkit.errors import GptkitError

PIPELINE_VERSION = 3  # bump when an output or intermediate format changes
STAGES = ("clean", "dedup", "documents", "tokenizer", "tokenize")
CACHE_MAX_CHARS = 1000  # the clean tasks reuse results for exact repeats of documents up to this size ...
CACHE_ENTRIES = 32768  # ... remembering this many (tens of MB at most)


class PrepareError(GptkitError):
    """Bad prepare settings, or an output directory that belongs to something else."""


@dataclass(frozen=True)
class PrepareConfig:
    inputs: tuple[str, ...]
    out: str
    doc_per_line: bool = False
    lang: str = "auto"
    t2s: bool = False
    min_words: int = FilterConfig.min_words
    min_chars: int = FilterConfig.min_chars
    exact_dedup: bool = True
    near_dedup: bool = True
    dedup_threshold: float = DedupConfig.threshold
    val_fraction: float = 0.01
    tokenizer: str | None = None  # a directory to load the tokenizer from
    vocab_size: int | None = None  # train a tokenizer of this size on the train documents
    tokenizer_kind: str = "bpe"
    # BPE training holds counts of every distinct pre-token in memory: train on an even sample of the train
    # documents of at most this many bytes, so memory stays bounded on large corpora
    tokenizer_sample_bytes: int = 256_000_000
    workers: int = 1
    split_bytes: int | None = None  # default: about four splits per worker
    max_shard_tokens: int = shards.DEFAULT_MAX_TOKENS
    progress: bool = True

    def validate(self) -> None:
        if not self.inputs:
            raise PrepareError("no --input given")
        if self.lang not in ("zh", "en", "auto"):
            raise PrepareError(f"--lang must be zh, en or auto, not {self.lang!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise PrepareError(f"--val-fraction must be in [0, 1), not {self.val_fraction}")
        if self.tokenizer and self.vocab_size:
            raise PrepareError("give --tokenizer DIR or --vocab-size N, not both")
        if self.vocab_size is not None and self.vocab_size < 1:
            raise PrepareError(f"--vocab-size must be positive, not {self.vocab_size}")
        if self.workers < 1:
            raise PrepareError(f"--workers must be at least 1, not {self.workers}")
        if not 0.0 < self.dedup_threshold <= 1.0:
            raise PrepareError(f"--dedup-threshold must be in (0, 1], not {self.dedup_threshold}")
        if self.tokenizer_sample_bytes < 1:
            raise PrepareError(f"--tokenizer-sample-mb must be positive, not {self.tokenizer_sample_bytes / 1e6}")
        if self.tokenizer_kind not in ("bpe", "char"):
            raise PrepareError(f"--tokenizer-kind must be bpe or char, not {self.tokenizer_kind!r}")

    def clean_config(self) -> CleanConfig:
        return CleanConfig(
            filters=FilterConfig(lang=self.lang, min_words=self.min_words, min_chars=self.min_chars), t2s=self.t2s
        )

    def dedup_config(self) -> DedupConfig:
        return DedupConfig(exact=self.exact_dedup, near=self.near_dedup, threshold=self.dedup_threshold)

    @property
    def tokenizes(self) -> bool:
        return bool(self.tokenizer or self.vocab_size)


# --- small helpers --------------------------------------------------------------------------------------


def _hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _write_json(path: Path, obj: object, indent: int | None = 1) -> None:
    """indent=None for data files: json's C encoder only writes without indentation (5x faster)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


@contextmanager
def atomic_writer(path: Path, binary: bool = False, gz: bool = False) -> Iterator:
    """Write NAME.tmp, rename it to NAME only if the block completes (a file with its final name is whole)."""
    tmp = path.with_name(path.name + ".tmp")
    if gz:
        f = gzip.open(tmp, "wb" if binary else "wt", compresslevel=1, **({} if binary else {"encoding": "utf-8"}))  # noqa: SIM115
        if binary:  # GzipFile compresses on every write: hand it 64 KiB at a time (text mode buffers already)
            f = io.BufferedWriter(f, 1 << 16)  # type: ignore[arg-type]
    else:
        f = open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"}))  # noqa: SIM115
    try:
        yield f
    except BaseException:
        f.close()
        tmp.unlink(missing_ok=True)
        raise
    f.close()
    os.replace(tmp, path)


_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
_JSON_STR = json.encoder.encode_basestring  # a JSON string literal, in C (as ensure_ascii=False writes it)


def _json_value(v: object) -> str:
    return _JSON_STR(v) if type(v) is str else str(v) if type(v) is int else _JSON_ENCODE(v)


def _jsonl(obj: dict | list) -> str:
    """One JSON line, the same text as json.dumps(obj, ensure_ascii=False). Strings and ints, the values of the
    per-document lines, are written directly: json.dumps sets up an encoder per call, which costs more than this."""
    if isinstance(obj, dict):
        return "{" + ", ".join([_JSON_STR(k) + ": " + _json_value(v) for k, v in obj.items()]) + "}\n"
    return "[" + ", ".join([_json_value(v) for v in obj]) + "]\n"


def _unit_hash(doc_id: str, salt: bytes) -> float:
    """A document's id hashed to [0, 1): selects documents evenly, independent of the split plan."""
    h = hashlib.blake2b(doc_id.encode(), digest_size=8, salt=salt).digest()
    return int.from_bytes(h, "little") / 2.0**64


def is_val(doc_id: str, val_fraction: float) -> bool:
    """Whether a document belongs to the validation split."""
    return val_fraction > 0 and _unit_hash(doc_id, b"val") < val_fraction


def _merge(into: dict, other: dict) -> dict:
    """Add numeric leaves of `other` into `into` (nested dicts of counts)."""
    for k, v in other.items():
        if isinstance(v, dict):
            _merge(into.setdefault(k, {}), v)
        elif isinstance(v, (int, float)):
            into[k] = into.get(k, 0) + v
        else:
            into[k] = v
    return into


# --- progress from worker processes ---------------------------------------------------------------------

_PROGRESS_QUEUE = None


class _Ticker:
    """Reports processed bytes to the parent's progress bar, in batches (a queue put per document is slow)."""

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self.callback = callback
        self.pending = 0
        self.last = time.monotonic()

    def __call__(self, n: int) -> None:
        self.pending += n
        now = time.monotonic()
        if self.pending >= 1 << 20 or now - self.last > 0.25:
            self.flush()
            self.last = now

    def flush(self) -> None:
        if self.pending:
            if self.callback is not None:
                self.callback(self.pending)
            elif _PROGRESS_QUEUE is not None:
                _PROGRESS_QUEUE.put(self.pending)
            self.pending = 0


def _init_worker(queue) -> None:
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = queue


# --- the tasks ------------------------------------------------------------------------------------------


class _CleanCache:
    """Clean results for exact repeats of short documents, which are common (web pages, review sets). It lives at
    module level so that it outlives a task: a worker process runs many splits, and repeats often fall into
    different ones. `clean_document` is a pure function of the text and the settings, so a settings change
    empties it."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.cfg: CleanConfig | None = None
        self.results: OrderedDict[str, CleanResult] = OrderedDict()

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


_CLEAN_CACHE = _CleanCache()


def work_dir(out: Path) -> Path:
    return out / "work"


def clean_task(split: dict, index: int, out: str, params: dict, progress: Callable[[int], None] | None = None) -> dict:
    """Clean one input split. Writes work/clean/NNNNN.{jsonl,ids,hash,sig} (kept documents; per document a JSON
    line [id, lang, source, text bytes]; exact hashes (n, 2) uint64; MinHash signatures band-major
    (bands, n, rows) uint32) and rejected/{docs,lines}-NNNNN.jsonl.gz."""
    sp = InputSplit.from_json(split)
    outp = Path(out)
    cfg = CleanConfig(filters=FilterConfig(**params["filters"]), t2s=params["t2s"])
    dcfg = DedupConfig(**params["dedup"])
    hasher = MinHasher(dcfg) if dcfg.near else None
    pending: list[tuple[str, str]] = []  # (text, lang) of kept documents whose signatures are not written yet
    pending_size = 0  # their characters: about one shingle each
    seen_hashes: set[bytes] = set()  # exact hashes of this split's kept documents (16 B + overhead each)
    stem = f"{index:05d}"
    cdir, rdir = work_dir(outp) / "clean", outp / "rejected"
    tick = _Ticker(progress)
    # counts in local variables: this loop runs per document, and dict updates would cost more than the rest
    docs_in = bytes_in = docs_out = bytes_out = invalid_utf8 = entities = mojibake_docs = control_chars = 0
    doc_rules, doc_rule_bytes, line_rules, langs = Counter(), Counter(), Counter(), Counter()
    source_json = _JSON_STR(sp.source)  # every document of a split comes from its one input
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
                    texts, langs = zip(*pending, strict=True)
                    sig_f.write(hasher.signatures(batch_shingles(texts, langs, dcfg.ngram)).tobytes())
                else:
                    sig_f.write(np.full((len(pending), dcfg.num_perm), NO_SIGNATURE, dtype=np.uint32).tobytes())
                pending.clear()
                pending_size = 0

        for doc in read_split(sp):
            res = _CLEAN_CACHE.clean(doc.text, cfg)
            docs_in += 1
            bytes_in += doc.n_bytes
            invalid_utf8 += doc.bad_bytes
            entities += res.stats.entities
            mojibake_docs += res.stats.mojibake_fixed
            control_chars += res.stats.removed_chars
            for line_no, rule, text in res.dropped_lines:
                line_rules[rule] += 1
                rline_f.write(_jsonl({"id": doc.id, "line": line_no, "rule": rule, "text": text}))
            if res.text is None:
                doc_rules[res.rule] += 1
                doc_rule_bytes[res.rule] += doc.n_bytes
                rdoc_f.write(
                    _jsonl(
                        {"id": doc.id, "source": doc.source, "lang": res.lang, "rule": res.rule, "text": res.normalized}
                    )
                )
            else:
                n_bytes = len(res.text.encode())
                docs_out += 1
                bytes_out += n_bytes
                langs[res.lang] += 1
                # the lines _jsonl would write for {"id", "text", "source", "lang"} and [id, lang, source, bytes],
                # formatted here: they are written for every kept document
                id_json, text_json, lang_json = _JSON_STR(doc.id), _JSON_STR(res.text), _JSON_STR(res.lang)
                kept_f.write(
                    f'{{"id": {id_json}, "text": {text_json}, "source": {source_json}, "lang": {lang_json}}}\n'
                )
                ids_f.write(f"[{id_json}, {lang_json}, {source_json}, {n_bytes}]\n")
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
    tick.flush()
    totals = {"docs_in": docs_in, "bytes_in": bytes_in, "docs_out": docs_out, "bytes_out": bytes_out}
    st = {
        **totals, "sources": {sp.source: totals} if docs_in else {}, "doc_rules": doc_rules,
        "doc_rule_bytes": doc_rule_bytes, "line_rules": line_rules, "lang": langs, "invalid_utf8": invalid_utf8,
        "entities": entities, "mojibake_docs": mojibake_docs, "control_chars": control_chars,
        "seconds": time.perf_counter() - t0,
    }  # fmt: skip
    return json.loads(json.dumps(st))  # Counters -> plain dicts


def dedup_task(n_splits: int, out: str, params: dict, progress: Callable[[float], None] | None = None) -> dict:
    """The global task: exact and near duplicates across all splits -> work/dedup/NNNNN.json per split,
    each a list of [local index, rule, id of the document kept in its place]."""
    outp = Path(out)
    cdir, ddir = work_dir(outp) / "clean", work_dir(outp) / "dedup"
    cfg = DedupConfig(**params["dedup"])
    t0 = time.perf_counter()
    res = find_duplicates(
        [cdir / f"{i:05d}.sig" for i in range(n_splits)], [cdir / f"{i:05d}.hash" for i in range(n_splits)], cfg,
        progress=progress,
    )  # fmt: skip
    # the ids of the kept documents that dropped ones point to: one streaming pass over the id files
    wanted = set(np.concatenate([kept for _, _, kept in res.drops]).tolist()) if res.drops else set()
    ids: dict[int, str] = {}
    g = 0
    for i in range(n_splits):
        if len(ids) == len(wanted):
            break
        with open(cdir / f"{i:05d}.ids", encoding="utf-8") as f:
            for line in f:
                if g in wanted:
                    ids[g] = json.loads(line)[0]
                g += 1
    for i, (local, code, kept) in enumerate(res.drops):
        rows = [[lo, RULES[c], ids[g]] for lo, c, g in zip(local.tolist(), code.tolist(), kept.tolist(), strict=True)]
        _write_json(ddir / f"{i:05d}.json", rows, indent=None)
    return {
        "exact_duplicates": res.exact_removed, "near_duplicates": res.near_removed, "clusters": res.clusters,
        "candidate_pairs": res.candidate_pairs, "seconds": time.perf_counter() - t0,
    }  # fmt: skip


def documents_task(index: int, out: str, params: dict, progress: Callable[[int], None] | None = None) -> dict:
    """Write the documents of one split that survived dedup -> documents/NNNNN.jsonl.gz; the duplicates ->
    rejected/duplicates-NNNNN.jsonl.gz (with the id of the document kept in their place)."""
    outp = Path(out)
    stem = f"{index:05d}"
    drops = {
        int(local): (rule, of)
        for local, rule, of in json.loads((work_dir(outp) / "dedup" / f"{stem}.json").read_text())
    }
    st: dict = {"docs": 0, "bytes": 0, "lang": Counter(), "sources": {}, "duplicates": Counter(), "seconds": 0.0}
    tick = _Ticker(progress)
    t0 = time.perf_counter()
    cdir = work_dir(outp) / "clean"
    with (
        open(cdir / f"{stem}.jsonl", "rb") as src,  # bytes: kept lines are copied without decoding them
        open(cdir / f"{stem}.ids", encoding="utf-8") as meta,
        atomic_writer(outp / "documents" / f"{stem}.jsonl.gz", binary=True, gz=True) as kept_f,
        atomic_writer(outp / "rejected" / f"duplicates-{stem}.jsonl.gz", binary=True, gz=True) as dup_f,
    ):
        for local, (line, info) in enumerate(zip(src, meta, strict=True)):
            if local in drops:
                rule, of = drops[local]
                st["duplicates"][rule] += 1
                # the document's JSON object with two more fields, appended without parsing it: b'...}\n'
                extra = f', "rule": {_JSON_STR(rule)}, "duplicate_of": {_JSON_STR(of)}}}\n'
                dup_f.write(line[:-2] + extra.encode())
            else:
                _, lang, source, n = json.loads(info)  # the kept line is copied without parsing its text
                st["docs"] += 1
                st["bytes"] += n
                st["lang"][lang] += 1
                s = st["sources"].setdefault(source, {"docs": 0, "bytes": 0})
                s["docs"] += 1
                s["bytes"] += n
                kept_f.write(line)
            tick(len(line))
    tick.flush()
    st["seconds"] = time.perf_counter() - t0
    st["outputs"] = _sizes(outp, [outp / "documents" / f"{stem}.jsonl.gz"])
    return json.loads(json.dumps(st))


def _sizes(out: Path, paths: list[Path]) -> dict[str, int]:
    """{path relative to out: size}: what a task wrote, checked before a finished stage is skipped."""
    return {str(p.relative_to(out)): p.stat().st_size for p in paths}


def iter_documents(out: Path, split: str | None = None, val_fraction: float = 0.0) -> Iterator[dict]:
    """The kept documents of a prepared directory, in order; `split` = "train" / "val" selects by id."""
    for path in sorted((out / "documents").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                if split is None or (split == "val") == is_val(doc["id"], val_fraction):
                    yield doc


def tokenizer_task(out: str, params: dict) -> dict:
    """Train a tokenizer on the train documents (params["vocab_size"]) or copy one (params["tokenizer"])
    into the output directory."""
    from gptkit.tokenizer import Tokenizer

    outp = Path(out)
    t0 = time.perf_counter()
    sampled = 0
    if params.get("tokenizer"):
        tok = Tokenizer.load(params["tokenizer"])
    else:
        # a char tokenizer can only encode characters it has seen: its vocabulary comes from every document
        # (train and val, no sampling); BPE is byte-level and trains on a sample of the train documents
        char = params["kind"] == "char"
        rate = 1.0 if char else min(1.0, params["sample_bytes"] / max(1, params["train_bytes"]))

        def texts() -> Iterator[str]:
            nonlocal sampled
            for d in iter_documents(outp, None if char else "train", params["val_fraction"]):
                if rate >= 1.0 or _unit_hash(d["id"], b"tokenizer") < rate:
                    sampled += len(d["text"].encode())
                    yield d["text"]

        tok = Tokenizer.train(
            texts(), params["vocab_size"], kind=params["kind"], progress=params.get("progress", False)
        )
    scratch = work_dir(outp) / "tokenizer.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    tok.save(scratch)
    written = sorted(p.name for p in scratch.iterdir())
    for name in written:
        os.replace(scratch / name, outp / name)
    scratch.rmdir()
    return {
        "vocab_size": tok.vocab_size, "fingerprint": tok.fingerprint, "eot_id": tok.eot_id, "kind": tok.kind,
        "files": written, "trained_on_bytes": sampled, "seconds": time.perf_counter() - t0,
    }  # fmt: skip


def tokenize_task(index: int, out: str, params: dict, progress: Callable[[int], None] | None = None) -> dict:
    """Encode one split's documents -> train_NNNNN_KKKKKK.bin and val_NNNNN_KKKKKK.bin (every document starts
    with the end-of-text token, which is also BOS)."""
    from gptkit.tokenizer import Tokenizer

    outp = Path(out)
    tok = Tokenizer.load(outp)
    path = outp / "documents" / f"{index:05d}.jsonl.gz"
    frac = params["val_fraction"]
    st = {"tokens": {"train": 0, "val": 0}, "docs": {"train": 0, "val": 0}, "shards": {"train": 0, "val": 0}}
    t0 = time.perf_counter()
    tick = _Ticker(progress)
    batch = params.get("batch_docs", 512)
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
            tokenizer_fingerprint=tok.fingerprint, max_tokens=params["max_shard_tokens"],
        )  # fmt: skip
        st["shards"][split] = len(written)
        written_all += written
    tick.flush()
    st["seconds"] = time.perf_counter() - t0
    st["outputs"] = _sizes(outp, written_all)
    return st


# --- running stages -------------------------------------------------------------------------------------


@contextmanager
def _frozen_gc() -> Iterator[None]:
    """Run a stage with the objects that exist now (every imported module's: ~50k, ~200k once torch is loaded)
    moved out of the garbage collector's sight: its full collections would otherwise traverse them again and
    again during the tasks, and in forked workers also write to every page holding them, copying the parent's
    memory page by page (the gc module's documentation recommends freezing before fork for this reason).
    They stay reachable and return to the collector after the stage."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class StageOutcome:
    name: str
    stats: list[dict]
    seconds: float
    skipped: bool
    tasks_run: int = 0
    tasks_skipped: int = 0
    bytes: int = 0


@dataclass
class _Runner:
    out: Path
    workers: int
    show_progress: bool
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return work_dir(self.out) / "state"

    def run(
        self,
        name: str,
        h: str,
        tasks: list[tuple[Callable, tuple]],
        *,
        outputs: list[str],
        total_bytes: int = 0,
        parallel: bool = True,
    ) -> StageOutcome:
        """Run a stage's tasks unless its marker says it is done with this hash; skip finished tasks."""
        marker = self.state / f"{name}.json"
        tdir = self.state / name
        done = _read_json(marker)
        if done and done.get("hash") == h:
            damaged = self._damaged_tasks(done["stats"])
            if not damaged:
                out = StageOutcome(name, done["stats"], done["seconds"], True, 0, len(tasks), done.get("bytes", 0))
                self.outcomes[name] = out
                return out
            marker.unlink()  # an output was deleted or changed since: redo the tasks that wrote it
            for i in damaged:
                (tdir / f"{i:05d}.json").unlink(missing_ok=True)
        tdir.mkdir(parents=True, exist_ok=True)
        task_done = {p.stem: _read_json(p) for p in tdir.glob("*.json")}
        if marker.exists() or any(not m or m.get("hash") != h for m in task_done.values()):
            self._wipe(outputs, tdir)  # stale results of other settings
            marker.unlink(missing_ok=True)
            task_done = {}
        for pattern in outputs:  # half-written files of an interrupted run
            for p in self.out.glob(pattern + ".tmp"):
                p.unlink()
        stats: list[dict | None] = [None] * len(tasks)
        todo = []
        for i in range(len(tasks)):
            m = task_done.get(f"{i:05d}")
            if m and m.get("hash") == h:
                stats[i] = m["stats"]
            else:
                todo.append(i)
        t0 = time.perf_counter()
        with self._progress(name, total_bytes, len(tasks)) as advance, _frozen_gc():

            def finish(i: int, result: dict) -> None:
                stats[i] = result
                _write_json(tdir / f"{i:05d}.json", {"hash": h, "stats": result})
                advance(0, 1)

            if parallel and self.workers > 1 and len(todo) > 1:
                self._run_parallel(tasks, todo, finish, advance)
            else:
                for i in todo:
                    fn, args = tasks[i]
                    finish(i, fn(*args, progress=lambda n: advance(n, 0)))
        seconds = time.perf_counter() - t0
        result = [s for s in stats if s is not None]
        _write_json(marker, {"hash": h, "stats": result, "seconds": seconds, "bytes": total_bytes})
        out = StageOutcome(name, result, seconds, False, len(todo), len(tasks) - len(todo), total_bytes)
        self.outcomes[name] = out
        return out

    def _damaged_tasks(self, stats: list[dict]) -> list[int]:
        """Tasks whose recorded outputs ({relative path: size}) are missing or have another size."""
        damaged = []
        for i, st in enumerate(stats):
            for rel, size in st.get("outputs", {}).items():
                p = self.out / rel
                if not p.is_file() or p.stat().st_size != size:
                    damaged.append(i)
                    break
        return damaged

    def _run_parallel(self, tasks, todo, finish, advance) -> None:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
        queue = ctx.Queue()
        stop = threading.Event()

        def drain() -> None:
            while not stop.is_set() or not queue.empty():
                try:  # a short timeout: the stage waits for this thread to notice `stop` (0.1 s cost 0.1 s a stage)
                    advance(queue.get(timeout=0.01), 0)
                except Exception:
                    continue

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(queue,)) as pool:
                pending: dict[Future, int] = {}
                for i in todo:
                    fn, args = tasks[i]
                    pending[pool.submit(fn, *args)] = i
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        finish(pending.pop(fut), fut.result())
        finally:
            stop.set()
            reader.join()

    def _wipe(self, outputs: list[str], tdir: Path) -> None:
        for pattern in outputs:
            for p in self.out.glob(pattern):
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        for p in tdir.glob("*.json"):
            p.unlink()

    @contextmanager
    def _progress(self, name: str, total_bytes: int, n_tasks: int) -> Iterator[Callable[[int, int], None]]:
        if not self.show_progress:
            yield lambda nbytes, ntasks: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        by_bytes = total_bytes > 0
        columns = [TextColumn(f"{name:<10}"), BarColumn()]
        columns += [TransferSpeedColumn()] if by_bytes else [MofNCompleteColumn()]
        columns += [TimeElapsedColumn(), TimeRemainingColumn()]
        lock = threading.Lock()
        from rich.console import Console

        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            task = bar.add_task(name, total=total_bytes if by_bytes else n_tasks)

            def advance(nbytes: int, ntasks: int) -> None:
                with lock:
                    bar.advance(task, nbytes if by_bytes else ntasks)

            yield advance
            bar.update(task, completed=total_bytes if by_bytes else n_tasks)


# --- prepare ----------------------------------------------------------------------------------------------


def _plan(cfg: PrepareConfig, out: Path, files: list[InputFile]) -> tuple[list[InputSplit], str, int]:
    """The split plan: reused when the inputs are unchanged (so --workers does not change the plan)."""
    fp = _hash({"inputs": inputs_fingerprint(files), "doc_per_line": cfg.doc_per_line, "split": cfg.split_bytes})
    path = work_dir(out) / "plan.json"
    old = _read_json(path)
    if old and old.get("fingerprint") == fp:
        splits = [InputSplit.from_json(s) for s in old["splits"]]
    else:
        size = cfg.split_bytes or default_split_bytes(total_bytes(files), cfg.workers)
        splits = plan_splits(files, size)
        _write_json(path, {"fingerprint": fp, "split_bytes": size, "splits": [s.to_json() for s in splits]})
    return splits, _hash([s.to_json() for s in splits]), total_bytes(files)


LOCK_NAME = "prepare.lock"  # in OUT/work: held by the run writing OUT


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise PrepareError(f"--out {out}: exists and is not a directory")
    made_by_us = (work_dir(out) / "plan.json").exists() or (work_dir(out) / LOCK_NAME).exists()
    if out.is_dir() and any(out.iterdir()) and not made_by_us:
        # refuse to mix our files (and our wiping of stale outputs) into somebody else's directory
        raise PrepareError(f"--out {out}: directory is not empty and was not made by `gptkit prepare`")


def _lock_file(f) -> None:
    """An exclusive lock on an open file, without waiting: OSError when another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold OUT/work/prepare.lock while a run writes OUT: a second run on the same directory stops with a clear
    error instead of interleaving its files and its wiping of stale outputs with the first run's. The operating
    system drops the lock when the process ends, however it ends, so a crashed run leaves no stale lock."""
    path = work_dir(out) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:  # closing it releases the lock
        try:
            _lock_file(f)
        except OSError:
            raise PrepareError(
                f"--out {out}: another `gptkit prepare` is writing this directory (it holds {path}); "
                "wait for it to finish or choose another --out"
            ) from None
        yield


def prepare(cfg: PrepareConfig) -> dict:
    """Run (or resume) the pipeline; returns the report (also written to OUT/report.json)."""
    cfg.validate()
    out = Path(cfg.out)
    _check_out_dir(out)
    files = resolve_inputs(list(cfg.inputs), doc_per_line=cfg.doc_per_line)  # bad inputs: refused before OUT is made
    with output_lock(out):
        return _prepare_locked(cfg, out, files)


def _prepare_locked(cfg: PrepareConfig, out: Path, files: list[InputFile]) -> dict:
    for d in ("work/clean", "work/dedup", "work/state", "documents", "rejected"):
        (out / d).mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    splits, plan_hash, n_bytes = _plan(cfg, out, files)
    runner = _Runner(out, cfg.workers, cfg.progress and sys.stderr.isatty())
    ccfg, dcfg = cfg.clean_config(), cfg.dedup_config()
    clean_params = {"filters": asdict(ccfg.filters), "t2s": ccfg.t2s, "dedup": asdict(dcfg)}
    base = {"pipeline": PIPELINE_VERSION, "rules": RULES_VERSION}
    h_clean = _hash({**base, "plan": plan_hash, "filters": clean_params["filters"], "t2s": cfg.t2s,
                     "sig": [dcfg.near, dcfg.num_perm, dcfg.ngram, dcfg.seed]})  # fmt: skip
    try:
        runner.run(
            "clean",
            h_clean,
            [(clean_task, (s.to_json(), i, str(out), clean_params)) for i, s in enumerate(splits)],
            outputs=["work/clean/*", "rejected/docs-*", "rejected/lines-*"],
            total_bytes=n_bytes,
        )
    finally:
        _CLEAN_CACHE.clear()  # tasks that ran in this process (one worker) leave their results behind
    h_dedup = _hash({"clean": h_clean, "dedup": asdict(dcfg)})
    dedup_params = {"dedup": asdict(dcfg)}
    runner.run(
        "dedup", h_dedup, [(_dedup_as_task, (len(splits), str(out), dedup_params))], outputs=["work/dedup/*"],
        parallel=False,
    )  # fmt: skip
    h_docs = _hash({"dedup": h_dedup})
    clean_bytes = sum(s["bytes_out"] for s in runner.outcomes["clean"].stats)
    runner.run(
        "documents",
        h_docs, [(documents_task, (i, str(out), {})) for i in range(len(splits))],
        outputs=["documents/*", "rejected/duplicates-*"], total_bytes=clean_bytes,
    )  # fmt: skip
    if cfg.tokenizes:
        if not any(st["docs"] for st in runner.outcomes["documents"].stats):
            _write_json(out / "report.json", build_report(cfg, runner, splits, time.perf_counter() - t_start))
            raise PrepareError(
                f"no document survived cleaning and deduplication ({n_bytes / 1e6:.1f} MB in): nothing to tokenize; "
                f"see {out / 'report.json'} and {out / 'rejected'} for what dropped them"
            )
        tok_src = None
        if cfg.tokenizer:
            tdir = Path(cfg.tokenizer)
            if not tdir.is_dir():
                raise PrepareError(f"--tokenizer {tdir}: not a directory")
            tok_src = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(tdir.iterdir()) if p.is_file()]
        prev = _read_json(work_dir(out) / "state" / "tokenizer.json")
        prev_files = prev["stats"][0].get("files", []) if prev and prev.get("stats") else []
        train_bytes = sum(s["bytes"] for s in runner.outcomes["documents"].stats)
        tok_params = {
            "tokenizer": cfg.tokenizer, "vocab_size": cfg.vocab_size, "kind": cfg.tokenizer_kind,
            "val_fraction": cfg.val_fraction, "progress": runner.show_progress, "train_bytes": train_bytes,
            "sample_bytes": cfg.tokenizer_sample_bytes,
        }  # fmt: skip
        h_tok = _hash({"docs": h_docs, "src": tok_src, "vocab": cfg.vocab_size, "kind": cfg.tokenizer_kind,
                       "val": cfg.val_fraction if not cfg.tokenizer else None,
                       "sample": cfg.tokenizer_sample_bytes if not cfg.tokenizer else None})  # fmt: skip
        runner.run(
            "tokenizer", h_tok, [(_tokenizer_as_task, (str(out), tok_params))],
            outputs=prev_files, parallel=False,
        )  # fmt: skip
        tok_params_run = {"val_fraction": cfg.val_fraction, "max_shard_tokens": cfg.max_shard_tokens}
        h_tokenize = _hash({"tokenizer": h_tok, **tok_params_run})
        docs_bytes = sum(s["bytes"] for s in runner.outcomes["documents"].stats)
        runner.run(
            "tokenize", h_tokenize, [(tokenize_task, (i, str(out), tok_params_run)) for i in range(len(splits))],
            outputs=["train_*.bin", "val_*.bin"], total_bytes=docs_bytes, parallel=False,
        )  # fmt: skip
    report = build_report(cfg, runner, splits, time.perf_counter() - t_start)
    _write_json(out / "report.json", report)
    return report


def _dedup_as_task(n_splits: int, out: str, params: dict, progress=None) -> dict:
    return dedup_task(n_splits, out, params)


def _tokenizer_as_task(out: str, params: dict, progress=None) -> dict:
    return tokenizer_task(out, params)


def peak_rss_mb() -> dict:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss it does not carry over the peak of the
    process that exec'd us) and of the largest finished worker process."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / (1 << 20)  # ru_maxrss: KiB on Linux, bytes on macOS
    main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                main = int(line.split()[1]) / 1024
    except OSError:
        pass
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"main": round(main, 1), "largest_worker": round(workers, 1)}


def build_report(cfg: PrepareConfig, runner: _Runner, splits: list[InputSplit], seconds: float) -> dict:
    o = runner.outcomes
    clean: dict = {}
    for s in o["clean"].stats:
        _merge(clean, s)
    docs: dict = {}
    for s in o["documents"].stats:
        _merge(docs, s)
    stages = {}
    mb = sum(sp.n_bytes for sp in splits) / 1e6  # every stage's MB/s is of the raw input, so they compare
    for name, oc in o.items():
        stages[name] = {
            "seconds": round(oc.seconds, 3), "skipped": oc.skipped, "tasks_run": oc.tasks_run,
            "tasks_skipped": oc.tasks_skipped,
            "mb_per_s": round(mb / oc.seconds, 3) if oc.seconds > 0 and mb else None,
        }  # fmt: skip
    dedup = o["dedup"].stats[0] if o["dedup"].stats else {}
    report = {
        "inputs": list(cfg.inputs),
        "encodings": encodings_of(splits),  # input files that are not UTF-8 -> the encoding they were decoded with
        "splits": len(splits),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("progress",)},
        "documents": {
            "in": clean.get("docs_in", 0),
            "after_cleaning": clean.get("docs_out", 0),
            "out": docs.get("docs", 0),
            "bytes_in": clean.get("bytes_in", 0),
            "bytes_after_cleaning": clean.get("bytes_out", 0),
            "bytes_out": docs.get("bytes", 0),
        },
        "sources": {
            name: {
                **v,
                "docs_out": docs.get("sources", {}).get(name, {}).get("docs", 0),
                "bytes_out": docs.get("sources", {}).get(name, {}).get("bytes", 0),
            }
            for name, v in clean.get("sources", {}).items()
        },
        "languages": docs.get("lang", {}),
        "dropped_documents": dict(sorted(clean.get("doc_rules", {}).items(), key=lambda kv: -kv[1])),
        "dropped_lines": dict(sorted(clean.get("line_rules", {}).items(), key=lambda kv: -kv[1])),
        "repairs": {k: clean.get(k, 0) for k in ("invalid_utf8", "entities", "mojibake_docs", "control_chars")},
        "dedup": {k: dedup.get(k, 0) for k in ("exact_duplicates", "near_duplicates", "clusters", "candidate_pairs")},
        "stages": stages,
        "input_mb": round(mb, 3),
        "seconds": round(seconds, 3),
        "mb_per_s": round(mb / seconds, 3) if seconds > 0 and not all(oc.skipped for oc in o.values()) else None,
        "peak_rss_mb": peak_rss_mb(),
    }
    if "tokenize" in o:
        tk: dict = {}
        for s in o["tokenize"].stats:
            _merge(tk, s)
        tok = o["tokenizer"].stats[0]
        report["tokenizer"] = {
            k: tok.get(k) for k in ("kind", "vocab_size", "eot_id", "fingerprint", "trained_on_bytes")
        }
        report["tokens"] = tk.get("tokens", {})
        report["token_documents"] = tk.get("docs", {})
        report["shards"] = tk.get("shards", {})
    return report
